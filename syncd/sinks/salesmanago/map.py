"""Sell lead/contact → one SALESmanago contact upsert. Pure.

Defaults (then the user's `[sinks.salesmanago.fields]` rows add or override, see salesmanago/targets.py):

- email → contact.email (lower-case: the contact's identity).
- first_name + last_name (else a lead's organization_name, an organisation's name) → contact.name.
- phone (else mobile) → contact.phone; fax → contact.fax.
- a lead's organization_name / a contact's organisation's name / an organisation's own name → contact.company.
- contact customer_status "current" → contact.state CUSTOMER; a lead, or a contact with prospect_status "current"
  → PROSPECT; otherwise OTHER.
- the record id → contact.externalId "sell-lead-<id>" / "sell-contact-<id>".
- address.line1, postal_code, city → contact.address.streetAddress, zipCode, city; address.country (free text) →
  contact.address.country as ISO 3166-1 alpha-2 (unknown text as written); address.state → province.
- tags (upper-case, spaces as `_`) + tags.always + tags.lead / tags.contact (a person) / tags.organisation (an
  organisation) + tags.customer (current customers) → tags.
- title, industry, website, mobile, twitter, facebook, linkedin, skype, description (clipped to 255) →
  properties of the same names; a lead's status → properties.lead_status; a contact's customer_status and
  prospect_status → properties of the same names.

No value is ever sent blank: a contact field, an address part, `province`, a property or a birthday that Sell
has no value for is left out of the upsert, as SALESmanago's own library leaves out empty values. What the server
does with `""` is unconfirmed (it may clear the field, ignore it, or refuse the whole upsert), so a value cleared in
Sell keeps its last value in SALESmanago under every reading, rather than failing the contact under one of them.
Tags syncd wrote before and no longer wants go in `removeTags` (tags are never blank); tags syncd never wrote are
never removed. What was written (e-mail, tags, property names) is kept in the link's `sent` so the next write can
tell.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.config import SalesmanagoConfig
from syncd.events import Contact, Lead, email_of
from syncd.sinks.mapping import CUSTOM_PREFIX, FieldMapping, MappingProblem, digest, external_id, resolve
from syncd.sinks.salesmanago.targets import (
    ADDRESS_PARTS,
    Target,
    check_mapping,
    clip_detail,
    parse_target,
    tag_name,
    to_birthday,
    to_country,
    to_epoch_ms,
    to_number,
    to_state,
    to_tags,
    to_text,
)

__all__ = [
    "LastWrite",
    "MappedContact",
    "MappingProblem",
    "check_mapping",
    "map_person",
    "wanted_tags",
]

PROPERTY_FIELDS = ("title", "industry", "website", "mobile", "twitter", "facebook", "linkedin", "skype")


@dataclass(frozen=True, slots=True)
class LastWrite:
    """What syncd last wrote for a Sell record (the link's `sent`): the e-mail, tags and property names."""

    email: str = ""
    tags: tuple[str, ...] = ()
    properties: tuple[str, ...] = ()

    @classmethod
    def from_sent(cls, sent: Mapping[str, Any] | None) -> LastWrite:
        """Read a link's `sent` defensively (a missing or odd entry reads as nothing written)."""
        if not sent:
            return cls()
        email = sent.get("email")
        return cls(
            email=email if isinstance(email, str) else "",
            tags=_strings(sent.get("tags")),
            properties=_strings(sent.get("properties")),
        )


def _strings(value: object) -> tuple[str, ...]:
    return tuple(v for v in value if isinstance(v, str)) if isinstance(value, list | tuple) else ()


@dataclass(frozen=True, slots=True)
class MappedContact:
    """The state one Sell person should have in SALESmanago."""

    email: str  # lower-case
    contact: dict[str, Any]  # `contact` without its e-mail: name, phone, fax, company, state, externalId, address
    # (every key present, "" where Sell has nothing: `desired()` leaves those out)
    tags: tuple[str, ...]
    properties: dict[str, str] = field(default_factory=dict)
    dictionary: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {name, type, value}
    province: str = ""
    birthday: str | None = None

    def desired(self) -> dict[str, Any]:
        """The upsert item that states this contact, with no reference to earlier writes: every value Sell has, and
        none that is blank (see the module docstring)."""
        contact: dict[str, Any] = {"email": self.email}
        for key, value in self.contact.items():
            if key == "address":
                address = {part: text for part, text in value.items() if text}
                if address:
                    contact["address"] = address
            elif value:
                contact[key] = value
        item: dict[str, Any] = {"contact": contact, "tags": list(self.tags)}
        properties = {name: text for name, text in self.properties.items() if text}
        if properties:
            item["properties"] = properties
        if self.province:
            item["province"] = self.province
        if self.dictionary:
            item["dictionaryProperties"] = [dict(entry) for entry in self.dictionary.values()]
        if self.birthday is not None:
            item["birthday"] = self.birthday
        return item

    @property
    def digest(self) -> str:
        """The digest of `desired()`: equal digests mean nothing to send."""
        return digest(self.desired())

    def upsert(self, last: LastWrite, *, rename_from: str | None = None) -> dict[str, Any]:
        """The item to send after `last`: a rename (`contact.email` = `rename_from`, `newEmail` = the current
        e-mail) when asked, and our stale tags in `removeTags`."""
        item = self.desired()
        if rename_from and rename_from != self.email:
            item["contact"]["email"] = rename_from
            item["newEmail"] = self.email
        stale_tags = [tag for tag in last.tags if tag not in self.tags]
        if stale_tags:
            item["removeTags"] = stale_tags
        return item

    def sent(self) -> dict[str, Any]:
        """What to keep in the link for the next write."""
        return {"email": self.email, "tags": list(self.tags), "properties": sorted(self.properties)}


def _state(record: Lead | Contact) -> str:
    if isinstance(record, Lead):
        return "PROSPECT"
    if record.customer_status == "current":
        return "CUSTOMER"
    if record.prospect_status == "current":
        return "PROSPECT"
    return "OTHER"


def _company(record: Lead | Contact, organization: str) -> str:
    if isinstance(record, Lead):
        return record.organization_name
    return record.name if record.is_organization else organization


def _is_customer(record: Lead | Contact) -> bool:
    return isinstance(record, Contact) and record.customer_status == "current"


def _name(record: Lead | Contact) -> str:
    person = " ".join(part for part in (record.first_name.strip(), record.last_name.strip()) if part)
    if person:
        return person
    return (record.organization_name if isinstance(record, Lead) else record.name).strip()


def _dedupe(tags: Sequence[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(tag for tag in tags if tag))


def wanted_tags(record: Lead | Contact, config: SalesmanagoConfig) -> tuple[str, ...]:
    """The default tags of a record: its Sell tags (but those of tags.skip), then tags.always, the kind's tags (a
    lead's, a person's or an organisation's) and tags.customer."""
    skip = set(config.tags.skip)
    tags = [*(tag for tag in record.tags if tag not in skip), *config.tags.always]
    if isinstance(record, Lead):
        tags += config.tags.lead
    else:
        tags += config.tags.organisation if record.is_organization else config.tags.contact
    if _is_customer(record):
        tags += config.tags.customer
    return _dedupe([tag_name(tag) for tag in tags])


def _default_properties(record: Lead | Contact) -> dict[str, str]:
    values: dict[str, str] = {name: getattr(record, name).strip() for name in PROPERTY_FIELDS}
    if isinstance(record, Lead):
        values["lead_status"] = record.status.strip()
    else:
        values["customer_status"] = record.customer_status.strip()
        values["prospect_status"] = record.prospect_status.strip()
    values["description"] = record.description.strip()
    return {name: clip_detail(value) for name, value in values.items() if value}


def map_person(
    record: Lead | Contact,
    *,
    config: SalesmanagoConfig,
    rows: Sequence[FieldMapping] = (),
    organization: str = "",
) -> MappedContact:
    """The SALESmanago contact for a Sell lead or contact. `organization` is the name of a contact's
    organisation (the writer looks it up); `rows` are the parsed `[sinks.salesmanago.fields]`."""
    address = record.address
    contact: dict[str, Any] = {
        "name": _name(record),
        "phone": (record.phone or record.mobile).strip(),
        "fax": record.fax.strip(),
        "company": _company(record, organization).strip(),
        "state": _state(record),
        "externalId": external_id(record),
        "address": {
            "streetAddress": address.line1.strip() if address else "",
            "zipCode": address.postal_code.strip() if address else "",
            "city": address.city.strip() if address else "",
            "country": (to_country(address.country) or "") if address else "",
        },
    }
    mapped = _Build(
        contact=contact,
        tags=list(wanted_tags(record, config)),
        properties=_default_properties(record),
        province=address.state.strip() if address else "",
    )
    for row in rows:
        target = parse_target(row.target)
        if isinstance(target, Target):
            mapped.apply(target, resolve(record, row.sell), _field_name(row.sell))
    return MappedContact(
        email=email_of(record),
        contact=mapped.contact,
        tags=_dedupe([tag_name(tag) for tag in mapped.tags]),
        properties=mapped.properties,
        dictionary=mapped.dictionary,
        province=mapped.province,
        birthday=mapped.birthday,
    )


def _field_name(path: str) -> str:
    return path[len(CUSTOM_PREFIX) :] if path.startswith(CUSTOM_PREFIX) else path.rsplit(".", 1)[-1]


@dataclass
class _Build:
    """A contact under construction while the user's rows apply."""

    contact: dict[str, Any]
    tags: list[str]
    properties: dict[str, str]
    province: str
    dictionary: dict[str, dict[str, Any]] = field(default_factory=dict)
    birthday: str | None = None

    def apply(self, target: Target, value: Any, field_name: str) -> None:
        """Put one converted value in place; an unset or unconvertible value changes nothing."""
        form, name = target.form, target.name
        if form == "contact":
            text = to_state(value) if name == "state" else to_text(value)
            if text is not None:
                self.contact[name] = text
        elif form == "address":
            text = to_country(value) if name == "country" else to_text(value, ADDRESS_PARTS[name])
            if text is not None:
                self.contact["address"][name] = text
        elif form == "province":
            text = to_text(value, "state")
            if text is not None:
                self.province = text
        elif form == "birthday":
            self.birthday = to_birthday(value) or self.birthday
        elif form == "property":
            text = to_text(value)
            if text is not None:
                self.properties[name] = clip_detail(text)
        elif form in ("number", "date"):
            converted = to_number(value) if form == "number" else to_epoch_ms(value)
            if converted is not None:
                self.dictionary[name] = {"name": name, "type": form.upper(), "value": converted}
        elif form == "tags":
            self.tags += to_tags(value, field_name)
