"""User field mappings: `[sinks.<name>.fields]` tables of Sell field → destination key. Pure.

A Sell field is written as a path on the normalised record: a plain attribute (`industry`, `mobile`), a part of an
address (`address.city`, `billing_address.country`), or a custom field by its name (`custom.Referral partner`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import msgspec

from syncd.config import CUSTOM_PREFIX, FieldMapping, parse_fields
from syncd.events import Address, Contact, Lead

__all__ = ["CUSTOM_PREFIX", "FieldMapping", "MappingProblem", "parse_fields"]  # and the functions below

_ADDRESS_PARTS = tuple(Address.__struct_fields__)
_SKIP = {"custom", "kind"}


def _paths(cls: type[msgspec.Struct]) -> frozenset[str]:
    found: set[str] = set()
    for name in cls.__struct_fields__:
        if name in _SKIP:
            continue
        if name in ("address", "billing_address", "shipping_address"):
            found.update(f"{name}.{part}" for part in _ADDRESS_PARTS)
        else:
            found.add(name)
    return frozenset(found)


SELL_FIELDS: dict[str, frozenset[str]] = {"lead": _paths(Lead), "contact": _paths(Contact)}
ALL_PERSON_FIELDS = SELL_FIELDS["lead"] | SELL_FIELDS["contact"]


@dataclass(frozen=True, slots=True)
class MappingProblem:
    """A `[sinks.<name>.fields]` row (or mapping setting) that cannot work, named by its config key."""

    key: str  # the config key, e.g. sinks.ontraport.fields."custom.Tier"
    message: str

    def __str__(self) -> str:
        return f"{self.key}: {self.message}"


def sell_field_problem(path: str, *, custom_names: frozenset[str] | None = None) -> str | None:
    """Why `path` is not a Sell person field (None when it is). `custom_names`, when known, are the custom
    fields Sell has defined; without them any `custom.<name>` is accepted."""
    if path.startswith(CUSTOM_PREFIX):
        name = path[len(CUSTOM_PREFIX) :]
        if not name:
            return "a custom field needs its name after 'custom.'"
        if custom_names is not None and name not in custom_names:
            known = ", ".join(sorted(custom_names)) or "none known yet"
            return f"Sell has no custom field named {name!r} (known: {known})"
        return None
    if path not in ALL_PERSON_FIELDS:
        return f"unknown Sell field {path!r}; expected one of {', '.join(sorted(ALL_PERSON_FIELDS))} or custom.<name>"
    return None


def resolve(record: Lead | Contact, path: str) -> Any:
    """The value at `path` on a normalised record (None when the record has no such field or it is unset)."""
    if path.startswith(CUSTOM_PREFIX):
        return record.custom.get(path[len(CUSTOM_PREFIX) :])
    head, _, part = path.partition(".")
    value = getattr(record, head, None)
    if part:
        return getattr(value, part, None) if isinstance(value, Address) else None
    return value


def external_id(record: Lead | Contact) -> str:
    """The Sell identity a destination keeps for a record (SALESmanago's externalId, Ontraport's external id
    field): "sell-lead-9", "sell-contact-5"."""
    return f"sell-{'lead' if isinstance(record, Lead) else 'contact'}-{record.id}"


def digest(payload: Any) -> str:
    """sha256 of a payload as canonical JSON (sorted keys, no blanks): equal digests mean nothing to send."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def as_text(value: Any) -> str:
    """A plain value as destination text: "" for unset, "1"/"0" for booleans, ISO dates, comma-joined lists,
    a one-line address."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Address):
        parts = (value.line1, value.postal_code, value.city, value.state, value.country)
        return ", ".join(p for p in parts if p)
    if isinstance(value, list | tuple):
        return ",".join(as_text(v) for v in value)
    return str(value)
