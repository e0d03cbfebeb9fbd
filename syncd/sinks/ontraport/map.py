"""A Sell lead or contact as Ontraport contact fields, and the check of a `[sinks.ontraport.fields]` table. Pure.

The connector's field list is covered by default: firstname, lastname, email, address (line 1), city, state (code),
zip, country (ISO alpha-2), office_phone, cell_phone and sms_number (the mobile), fax, company (the lead's
organisation name, or the name of the organisation a contact belongs to; an organisation's own name, which is also
its firstname), title, website, and for leads the lead
source by name (`n_lead_source`, `l_lead_source` with `use_utm_names` = "1"); plus the external id field when one
is configured ("sell-lead-9"). The `[sinks.ontraport.fields]` table maps further Sell fields (or a constant written
`"=0"`) to any editable contact field: address2, home_phone, birthday, priority, status, bulk_mail (only "=0"),
bulk_sms, the UTM fields, referral page, affiliate fields, timezone, custom `f` fields; its rows win over the
defaults. Values are converted by the destination field's type from `GET /1/Contacts/meta` (ontraport/values.py).

The mapping owns exactly the keys it writes: each is sent on every write, "" when Sell has no value (a blank
overwrites in Ontraport, so a value cleared in Sell is cleared there too), and no other key is ever sent. Keys the
account does not have (or cannot write) are left out; `check_mapping` reports them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncd.errors import PermanentError
from syncd.events import Address, Contact, Lead
from syncd.sinks.base import DestinationField
from syncd.sinks.countries import country_code
from syncd.sinks.mapping import FieldMapping, MappingProblem, as_text, external_id, resolve, sell_field_problem
from syncd.sinks.ontraport.values import UTM_KEYS, to_field

SINK = "ontraport"
CONSTANT_PREFIX = "="
EXTERNAL_ID_KEY = f"sinks.{SINK}.external_id_field"
TEXT_TYPES = frozenset({"text", "longtext"})
LEAD_SOURCE_KEYS = ("n_lead_source", "l_lead_source")


@dataclass(frozen=True, slots=True)
class Related:
    """What the writer looked up for a person; None when unknown (the key is then not written at all)."""

    company: str | None = None  # a contact's organisation name ("" when it belongs to none)
    source: str | None = None  # a lead's source name ("" when it has none)


def parse_meta(data: Any) -> dict[str, DestinationField]:
    """The contact fields of a `GET /1/Contacts/meta` answer's `data`, by key."""
    section = data.get("0") if isinstance(data, dict) else None
    if section is None and isinstance(data, dict) and len(data) == 1:
        section = next(iter(data.values()))
    fields = section.get("fields") if isinstance(section, dict) else None
    if not isinstance(fields, dict):
        raise ValueError("the contact meta has no fields")
    found: dict[str, DestinationField] = {}
    for key, entry in fields.items():
        if not isinstance(entry, dict):
            continue
        options = entry.get("options")
        found[str(key)] = DestinationField(
            key=str(key),
            label=str(entry.get("alias") or key),
            type=str(entry.get("type") or "text"),
            editable=str(entry.get("editable", "1")).strip().lower() not in ("0", "false", ""),
            options={str(k): str(v) for k, v in options.items()} if isinstance(options, dict) else None,
        )
    return found


def defaults(record: Lead | Contact, related: Related, *, external_id_field: str | None) -> dict[str, Any]:
    """The connector's default fields: destination key -> raw Sell value (converted later by field type)."""
    address = record.address or Address()
    organisation = record.name if isinstance(record, Contact) and record.is_organization else None
    values: dict[str, Any] = {
        "firstname": record.first_name if organisation is None else organisation,
        "lastname": record.last_name if organisation is None else "",
        "email": record.email.strip(),
        "address": address.line1,
        "city": address.city,
        "state": address.state,
        "zip": address.postal_code,
        "country": address.country,
        "office_phone": record.phone,
        "cell_phone": record.mobile,
        "sms_number": record.mobile,
        "fax": record.fax,
        "title": record.title,
        "website": record.website,
    }
    company = record.organization_name if isinstance(record, Lead) else organisation or related.company
    if company is not None:
        values["company"] = company
    if isinstance(record, Lead) and related.source is not None:
        values.update(dict.fromkeys(LEAD_SOURCE_KEYS, related.source))
    if external_id_field:
        values[external_id_field] = external_id(record)
    return values


def map_person(
    record: Lead | Contact,
    *,
    rows: Sequence[FieldMapping],
    meta: Mapping[str, DestinationField],
    related: Related | None = None,
    external_id_field: str | None = None,
) -> dict[str, str]:
    """The Ontraport fields for `record`, every value a string. Raises PermanentError naming the field when a
    value cannot be converted (a label that matches no option, text in a number field, ...)."""
    country = country_code(record.address.country) if record.address and record.address.country else None
    payload: dict[str, str] = {}
    for key, raw in defaults(record, related or Related(), external_id_field=external_id_field).items():
        field = _writable(meta, key)
        if field is not None:
            payload[key] = _convert(raw, field, country, origin=f"the default mapping of {key}", sell=key)
    user_owns_utm_flag = False
    for row in rows:
        field = _writable(meta, row.target)
        if field is None:
            continue
        constant = _constant(row)
        raw = constant if constant is not None else resolve(record, row.sell)
        payload[row.target] = _convert(raw, field, country, origin=row.config_key, sell=row.sell)
        user_owns_utm_flag = user_owns_utm_flag or row.target == "use_utm_names"
    if not user_owns_utm_flag and any(k in UTM_KEYS for k in payload) and _writable(meta, "use_utm_names"):
        payload["use_utm_names"] = "1"  # syncd writes UTM values as names, never Ontraport ids
    return payload


def missing_targets(
    rows: Sequence[FieldMapping], meta: Mapping[str, DestinationField], *, external_id_field: str | None
) -> list[str]:
    """Configured destination keys the meta does not list (a reason to fetch the meta again)."""
    wanted = [row.target for row in rows] + ([external_id_field] if external_id_field else [])
    return sorted({key for key in wanted if key not in meta})


def check_mapping(
    rows: Sequence[FieldMapping],
    meta_fields: Mapping[str, DestinationField],
    *,
    custom_names: frozenset[str] | None,
    external_id_field: str | None = None,
) -> list[MappingProblem]:
    """Every problem of the `[sinks.ontraport.fields]` table (and the external id field) against the account's
    contact fields: an unknown Sell field, an unknown or read-only destination key, a constant the field cannot
    take (bulk_mail other than 0), a key mapped twice."""
    problems: list[MappingProblem] = []
    owner: dict[str, str] = {}
    for row in rows:
        constant = _constant(row)
        if constant is None:
            problem = sell_field_problem(row.sell, custom_names=custom_names)
            if problem:
                problems.append(MappingProblem(row.config_key, problem))
        field = meta_fields.get(row.target)
        if field is None:
            problems.append(MappingProblem(row.config_key, _unknown(row.target)))
        elif not field.editable:
            problems.append(MappingProblem(row.config_key, f"{_name(field)} is read-only in Ontraport (editable 0)"))
        elif row.target == "bulk_mail" and constant is None:
            problems.append(
                MappingProblem(
                    row.config_key,
                    'bulk_mail can only be set to 0 (transactional only) through the API: map the constant "=0"',
                )
            )
        elif constant is not None:
            try:
                to_field(constant, field)
            except ValueError as exc:
                problems.append(MappingProblem(row.config_key, f"the constant does not fit {_name(field)}: {exc}"))
        if row.target in owner:
            problems.append(MappingProblem(row.config_key, f"{row.target} is already mapped by {owner[row.target]}"))
        owner.setdefault(row.target, row.config_key)
        if external_id_field and row.target == external_id_field:
            problems.append(
                MappingProblem(row.config_key, f"{row.target} is the external id field, which syncd writes itself")
            )
    if external_id_field:
        field = meta_fields.get(external_id_field)
        if field is None:
            problems.append(MappingProblem(EXTERNAL_ID_KEY, _unknown(external_id_field)))
        elif not field.editable:
            problems.append(MappingProblem(EXTERNAL_ID_KEY, f"{_name(field)} is read-only in Ontraport (editable 0)"))
        elif field.type not in TEXT_TYPES:
            problems.append(
                MappingProblem(EXTERNAL_ID_KEY, f"{_name(field)} is a {field.type} field; it must hold text")
            )
    return problems


def _constant(row: FieldMapping) -> str | None:
    return row.sell[len(CONSTANT_PREFIX) :] if row.sell.startswith(CONSTANT_PREFIX) else None


def _writable(meta: Mapping[str, DestinationField], key: str) -> DestinationField | None:
    field = meta.get(key)
    return field if field is not None and field.editable else None


def _convert(raw: Any, field: DestinationField, country: str | None, *, origin: str, sell: str) -> str:
    try:
        return to_field(raw, field, country=country)
    except ValueError as exc:
        request = json.dumps({"field": field.key, "sell_field": sell, "value": as_text(raw)}, ensure_ascii=False)
        raise PermanentError(f"{origin}: {_name(field)}: {exc}", request=request) from None


def _name(field: DestinationField) -> str:
    return f"{field.key} ({field.label})" if field.label and field.label != field.key else field.key


def _unknown(key: str) -> str:
    return f"Ontraport has no contact field {key!r} (`syncd fields` lists them)"
