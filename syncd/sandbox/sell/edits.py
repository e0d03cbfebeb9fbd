"""What a Core API v2 write does to a lead or a contact (pure): the attributes Sell accepts, the values it refuses,
and the new Firehose-shape snapshot with what the write replaced.

Sell's semantics: a `PUT` changes only the attributes it names; `tags` replaces the whole set (names, duplicates
collapsed); `custom_fields` names fields by their current name and replaces each named field's value, a
multi-select's whole set included; an address replaces the whole address (parts not sent become ""). An attribute
Sell does not know, or may not be written (`id`, `creator_id`, `created_at`, `updated_at`), is `unknown_attribute`;
a value of the wrong type or outside its choices is `incorrect_value`. Every problem of a body is reported at once.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from syncd.sandbox.sell import catalogue

_PERSON = frozenset({"first_name", "last_name", "title", "description", "industry", "website", "email", "phone",
                     "mobile", "fax", "twitter", "facebook", "linkedin", "skype", "owner_id", "address", "tags",
                     "custom_fields"})  # fmt: skip
WRITABLE: dict[str, frozenset[str]] = {
    "lead": _PERSON | {"organization_name", "status", "source_id", "unqualified_reason_id"},
    "contact": _PERSON | {"name", "contact_id", "parent_organization_id", "customer_status", "prospect_status",
                          "is_organization", "billing_address", "shipping_address"},
}  # fmt: skip
READ_ONLY = frozenset({"id", "creator_id", "created_at", "updated_at"})
CUSTOM_RESOURCES = {"lead": ("lead",), "contact": ("contact", "prospect_and_customer")}
_CHOICES = {"customer_status": ("none", "current", "past"), "prospect_status": ("none", "current", "lost")}
_IDS = ("owner_id", "source_id", "contact_id", "parent_organization_id", "unqualified_reason_id")
_ADDRESSES = ("address", "billing_address", "shipping_address")
_ADDRESS_PARTS = ("line1", "city", "postal_code", "state", "country")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")
_MAX_TEXT = 255
_MAX_ID = 2**63 - 1


@dataclass(frozen=True)
class Problem:
    """One reason Sell refuses a write: its code, the body pointer it is about, and a message."""

    code: str  # unknown_attribute | incorrect_value
    field: str  # "/custom_fields/Tier"
    message: str


@dataclass(frozen=True)
class Lookups:
    """What validating references needs from the account."""

    exists: Callable[[str, int], bool]  # (kind, id) -> a live record
    is_organization: Callable[[int], bool]  # a contact id -> it is an organisation
    definitions: list[dict[str, Any]]  # the live custom field definitions of the record's resource, by id
    tag_id: Callable[[str], int]  # a tag name -> its id (known, or new)


@dataclass(frozen=True)
class Edit:
    """A valid write: the new snapshot, the Firehose names of the attributes written, and those it changed."""

    data: dict[str, Any]
    previous: dict[str, Any]  # written attribute (Firehose name) -> its value before
    changed: list[str] = field(default_factory=list)


def edit(kind: str, current: Mapping[str, Any], attrs: Any, lookups: Lookups) -> Edit | list[Problem]:
    """Apply v2 attributes `attrs` (the body's `data`) to the Firehose-shape snapshot `current`."""
    if not isinstance(attrs, dict):
        return [Problem("incorrect_value", "/data", "data must be an object of attributes")]
    problems: list[Problem] = []
    new = dict(current)
    previous: dict[str, Any] = {}
    for name, value in attrs.items():
        if name not in WRITABLE[kind]:
            why = "is read-only" if name in READ_ONLY else f"is not an attribute of a {kind}"
            problems.append(Problem("unknown_attribute", f"/{name}", f"{name} {why}"))
            continue
        if name == "custom_fields":
            values = _custom_fields(current, value, lookups, problems)
            if values is not None:
                previous["custom_field_values"] = current.get("custom_field_values")
                new["custom_field_values"] = values
            continue
        stored = _value(kind, name, value, current, lookups, problems)
        if stored is not _INVALID:
            previous[name] = current.get(name)
            new[name] = stored
    if problems:
        return problems
    changed = [name for name in previous if new.get(name) != current.get(name)]
    return Edit(new, previous, changed)


_INVALID = object()


def _value(
    kind: str, name: str, value: Any, current: Mapping[str, Any], lookups: Lookups, problems: list[Problem]
) -> Any:
    def bad(message: str) -> object:
        problems.append(Problem("incorrect_value", f"/{name}", message))
        return _INVALID

    if name == "tags":
        return _tags(kind, value, current.get("tags"), lookups, bad)
    if name in _ADDRESSES:
        return _address(name, value, problems)
    if value is None:
        return None
    if name in _IDS:
        if type(value) is not int or not 0 < value <= _MAX_ID:
            return bad(f"{name} must be a positive whole number (an id), got {value!r}")
        if name == "source_id" and not lookups.exists("lead_source", value):
            return bad(f"source_id {value} is not a lead source")
        if name in ("contact_id", "parent_organization_id") and not lookups.is_organization(value):
            return bad(f"{name} {value} is not an organisation")
        return value
    if name == "is_organization":
        if value is not current.get("is_organization"):
            return bad("is_organization cannot be changed after the contact was created")
        return value
    if not isinstance(value, str):
        return bad(f"{name} must be a string or null, got {type(value).__name__}")
    if name in _CHOICES and value not in _CHOICES[name]:
        return bad(f"{name} must be one of {', '.join(_CHOICES[name])}, got {value!r}")
    if name != "description" and len(value) > _MAX_TEXT:
        return bad(f"{name} is longer than {_MAX_TEXT} characters")
    if name == "email" and value and not _EMAIL.match(value):
        return bad(f"{value!r} is not an e-mail address")
    return value


def _tags(kind: str, value: Any, current: Any, lookups: Lookups, bad: Callable[[str], object]) -> Any:
    if not isinstance(value, list) or not all(isinstance(t, str) and t.strip() for t in value):
        return bad("tags must be a list of non-empty strings (the whole set)")
    if any(len(t) > _MAX_TEXT for t in value):
        return bad(f"a tag is longer than {_MAX_TEXT} characters")
    known = {t["data"]["name"]: t for t in current or () if isinstance(t, dict) and isinstance(t.get("data"), dict)}
    tags = []
    for name in dict.fromkeys(t.strip() for t in value):
        made = {"data": {"id": lookups.tag_id(name), "name": name, "resource_type": kind}, "meta": {"type": "tag"}}
        tags.append(known.get(name) or made)
    return tags


def _address(name: str, value: Any, problems: list[Problem]) -> Any:
    if value is None:
        return None
    if not isinstance(value, dict):
        problems.append(Problem("incorrect_value", f"/{name}", f"{name} must be an object or null"))
        return _INVALID
    address = dict.fromkeys(_ADDRESS_PARTS, "")
    ok = True
    for part, text in value.items():
        if part not in _ADDRESS_PARTS:
            problems.append(Problem("unknown_attribute", f"/{name}/{part}", f"{part} is not a part of an address"))
            ok = False
        elif text is not None and (not isinstance(text, str) or len(text) > _MAX_TEXT):
            problems.append(Problem("incorrect_value", f"/{name}/{part}", f"{part} must be a string or null"))
            ok = False
        else:
            address[part] = text or ""
    return address if ok else _INVALID


def _custom_fields(
    current: Mapping[str, Any], value: Any, lookups: Lookups, problems: list[Problem]
) -> list[dict[str, Any]] | None:
    """The new `custom_field_values` (every defined field, null when unset), or None when something is wrong."""
    if not isinstance(value, dict):
        problems.append(Problem("incorrect_value", "/custom_fields", "custom_fields must be an object: name -> value"))
        return None
    by_name = {str(d["name"]): d for d in lookups.definitions}
    values = {_field_id(e): e.get("value") for e in current.get("custom_field_values") or () if _field_id(e)}
    before = len(problems)
    for name, given in value.items():
        definition = by_name.get(name)
        if definition is None:
            problems.append(Problem("unknown_attribute", f"/custom_fields/{name}", f"no custom field {name!r}"))
            continue
        stored = _custom_value(definition, given)
        if stored is _INVALID:
            problems.append(Problem(
                "incorrect_value", f"/custom_fields/{name}",
                f"{given!r} is not a value of the {definition['type']} field {name!r}",
            ))  # fmt: skip
        else:
            values[int(definition["id"])] = stored
    if len(problems) > before:
        return None
    return [
        {"value": values.get(int(d["id"])), "custom_field": {"data": d, "meta": {"type": "custom_field"}}}
        for d in lookups.definitions
    ]


def _field_id(entry: Any) -> int | None:
    try:
        return int(entry["custom_field"]["data"]["id"])
    except (KeyError, TypeError, ValueError):
        return None


def choices(definition: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A list field's options: the definition's own `choices`, else the sandbox catalogue's for its type."""
    given = definition.get("choices")
    if isinstance(given, list):
        return [c for c in given if isinstance(c, dict) and "id" in c and "name" in c]
    names = catalogue.OPTIONS.get(str(definition.get("type")), ())
    return [{"id": n, "name": name} for n, name in enumerate(names, 1)]


def _custom_value(definition: Mapping[str, Any], value: Any) -> Any:
    """A v2 custom field value as the Firehose stores it (`_INVALID` when the field's type refuses it)."""
    kind = definition.get("type")
    if value is None:
        return None
    if kind == "bool":
        return value if isinstance(value, bool) else _INVALID
    if kind == "number":
        return _number(value)
    if kind in ("date", "datetime"):
        formats = ("%m/%d/%Y",) if kind == "date" else ("%m/%d/%Y %H:%M",)
        return value if isinstance(value, str) and _parses(value, formats) else _INVALID
    if kind == "list":
        return next((c for c in choices(definition) if c["name"] == value), _INVALID)
    if kind == "multi_select_list":
        options = {c["name"]: c for c in choices(definition)}
        if not isinstance(value, list) or not all(isinstance(v, str) and v in options for v in value):
            return _INVALID
        return [options[v] for v in dict.fromkeys(value)]
    if kind == "address":
        return _address("address", value, [])
    if not isinstance(value, str) or len(value) > (_MAX_TEXT if kind != "text" else 65_535):
        return _INVALID
    return value


def _number(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return _INVALID
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        return _INVALID
    return str(number) if number.is_finite() else _INVALID


def _parses(text: str, formats: tuple[str, ...]) -> bool:
    for pattern in formats:
        try:
            datetime.strptime(text, pattern)
        except ValueError:
            continue
        return True
    return False
