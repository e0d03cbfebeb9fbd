"""The fields of the simulated Ontraport objects, their meta and field-editor shapes, and value normalisation.

Contacts carry the connector guide's field list (First Name `firstname`, Email `email`, ... Timezone `timezone`), a
few system fields and the account's custom fields (`f` + digits). Every value is kept the way the API answers it: a
string, or None when unset.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pycountry

FIELD_TYPES = frozenset(
    {
        "text", "longtext", "email", "phone", "sms", "numeric", "price", "check", "country", "state", "fulldate",
        "timestamp", "list", "drop", "address", "mergefield", "subscription",
    }
)  # fmt: skip
CUSTOM_KEY = re.compile(r"^f\d+$")
Value = str | None


@dataclass(frozen=True, slots=True)
class FieldDef:
    """One field of an object, as `/meta` and `/fieldeditor` describe it."""

    key: str
    alias: str
    type: str = "text"
    editable: bool = True
    required: bool = False
    unique: bool = False
    deletable: bool = False
    options: Mapping[str, str] = field(default_factory=dict)
    section: str = "Contact Information"

    def meta(self) -> dict[str, Any]:
        """The entry under `data["0"]["fields"][key]` of `GET /1/Contacts/meta`."""
        entry: dict[str, Any] = {
            "alias": self.alias,
            "type": self.type,
            "required": _flag(self.required),
            "unique": _flag(self.unique),
            "editable": _flag(self.editable),
            "deletable": _flag(self.deletable),
        }
        if self.options:
            entry["options"] = dict(self.options)
        return entry

    def editor(self, field_id: int) -> dict[str, Any]:
        """The entry of a section column in `GET /1/Contacts/fieldeditor`."""
        return {"id": str(field_id), "field": self.key, **self.meta()}


def _flag(value: bool) -> str:
    return "1" if value else "0"


def custom_field_from_json(data: Mapping[str, Any]) -> FieldDef:
    """A custom field posted to `POST /_sandbox/fields` (raises ValueError when unusable)."""
    key = data.get("field", data.get("key"))
    if not isinstance(key, str) or not CUSTOM_KEY.match(key):
        raise ValueError('a custom field needs "field": "f" followed by digits')
    kind = data.get("type", "text")
    if kind not in FIELD_TYPES:
        raise ValueError(f"unknown field type {kind!r}")
    options = data.get("options") or {}
    if not isinstance(options, dict) or not all(isinstance(v, str) for v in options.values()):
        raise ValueError("options must map option ids to names")
    return FieldDef(
        key=key,
        alias=str(data.get("alias") or key),
        type=kind,
        editable=_truthy(data.get("editable", True)),
        required=_truthy(data.get("required", False)),
        unique=_truthy(data.get("unique", False)),
        deletable=True,
        options={str(k): v for k, v in options.items()},
        section=str(data.get("section") or "Custom Fields"),
    )


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


_PRIORITY = {"0": "None", "8": "High", "9": "Medium", "10": "Low"}
_SALES_STAGE = {
    "1": "Closed - Lost", "2": "Closed - Won", "3": "Committed", "4": "Consideration", "5": "Demo Scheduled",
    "6": "Qualified Lead", "7": "New Prospect",
}  # fmt: skip
_BULK_MAIL = {
    "0": "Transactional Only",
    "1": "Opted-in",
    "2": "Double opt-in",
    "-2": "Hard bounce",
    "-5": "Under review",
}
_BULK_SMS = {"0": "Unconfirmed", "1": "Opted-in", "2": "Double opt-in", "-2": "Hard bounce"}

_INFO, _LEAD, _AFFILIATE, _SYSTEM = "Contact Information", "Lead Information", "Affiliate Data", "System Information"

CONTACT_FIELDS: tuple[FieldDef, ...] = (
    FieldDef("firstname", "First Name"),
    FieldDef("lastname", "Last Name"),
    FieldDef("email", "Email", "email"),
    FieldDef("address", "Address", "address"),
    FieldDef("address2", "Address 2"),
    FieldDef("city", "City"),
    FieldDef("state", "State", "state"),
    FieldDef("zip", "Zip Code"),
    FieldDef("country", "Country", "country"),
    FieldDef("birthday", "Birthday", "fulldate"),
    FieldDef("cell_phone", "Cell Phone", "phone"),
    FieldDef("home_phone", "Home Phone", "phone"),
    FieldDef("sms_number", "SMS Number", "sms"),
    FieldDef("office_phone", "Office Phone", "phone"),
    FieldDef("fax", "Fax", "phone"),
    FieldDef("company", "Company"),
    FieldDef("title", "Title"),
    FieldDef("website", "Website"),
    FieldDef("timezone", "Timezone"),
    FieldDef("bulk_mail", "Bulk Email Status", "subscription", options=_BULK_MAIL),
    FieldDef("bulk_sms", "Bulk SMS Status", "subscription", options=_BULK_SMS),
    FieldDef("priority", "Priority", "drop", options=_PRIORITY, section=_LEAD),
    FieldDef("status", "Sales Stage", "drop", options=_SALES_STAGE, section=_LEAD),
    FieldDef("freferrer", "F-Referrer", "numeric", section=_LEAD),
    FieldDef("lreferrer", "L-Referrer", "numeric", section=_LEAD),
    FieldDef("n_lead_source", "New Lead Source", "numeric", section=_LEAD),
    FieldDef("n_content", "New Content", "numeric", section=_LEAD),
    FieldDef("n_medium", "New Medium", "numeric", section=_LEAD),
    FieldDef("n_campaign", "New Campaign", "numeric", section=_LEAD),
    FieldDef("n_term", "New Term", "numeric", section=_LEAD),
    FieldDef("l_lead_source", "Last Lead Source", "numeric", section=_LEAD),
    FieldDef("l_content", "Last Content", "numeric", section=_LEAD),
    FieldDef("l_medium", "Last Medium", "numeric", section=_LEAD),
    FieldDef("l_campaign", "Last Campaign", "numeric", section=_LEAD),
    FieldDef("l_term", "Last Term", "numeric", section=_LEAD),
    FieldDef("use_utm_names", "Use UTM Names", "check", section=_LEAD),
    FieldDef("referral_page", "Referral Page", section=_LEAD),
    FieldDef("aff_sales", "Affiliate Sales", "numeric", section=_AFFILIATE),
    FieldDef("aff_amount", "Affiliate Amount", "price", section=_AFFILIATE),
    FieldDef("program_id", "Program ID", "numeric", section=_AFFILIATE),
    FieldDef("aff_paypal", "Affiliate Paypal", "email", section=_AFFILIATE),
    FieldDef("num_purchased", "Number Purchased", "numeric", editable=False, section=_SYSTEM),
    FieldDef("owner", "Owner", "numeric", section=_SYSTEM),
    FieldDef("date", "Date Added", "timestamp", editable=False, section=_SYSTEM),
    FieldDef("dla", "Date of Last Activity", "timestamp", editable=False, section=_SYSTEM),
    FieldDef("dlm", "Date Modified", "timestamp", editable=False, section=_SYSTEM),
)

DEFAULT_CUSTOM_FIELDS: tuple[FieldDef, ...] = (
    FieldDef("f1557", "Membership Level", "drop", deletable=True, options={"1": "Gold", "2": "Silver"},
             section="Custom Fields"),
    FieldDef("f1558", "Sell ID", deletable=True, section="Custom Fields"),
    FieldDef("f1559", "Industry", deletable=True, section="Custom Fields"),
    FieldDef("f1560", "Interests", "list", deletable=True, options={"1": "Email", "2": "Events", "3": "Webinars"},
             section="Custom Fields"),
    FieldDef("f1561", "Lead Score", "numeric", editable=False, deletable=True, section="Custom Fields"),
)  # fmt: skip


def contact_defaults(now: str) -> dict[str, Value]:
    """A new contact before the written fields apply."""
    record: dict[str, Value] = {f.key: None for f in CONTACT_FIELDS}
    record.update(
        owner="1", date=now, dla=now, dlm=now, bulk_mail="0", bulk_sms="0", priority="0", num_purchased="0",
        freferrer="0", lreferrer="0",
    )  # fmt: skip
    return record


def sections(fields: Iterable[FieldDef]) -> list[dict[str, Any]]:
    """`GET /1/Contacts/fieldeditor`: fields grouped in sections, each in two columns."""
    grouped: dict[str, list[FieldDef]] = {}
    for f in fields:
        grouped.setdefault(f.section, []).append(f)
    answer: list[dict[str, Any]] = []
    field_id = 0
    for name, members in grouped.items():
        half = (len(members) + 1) // 2
        columns: list[list[dict[str, Any]]] = [[], []]
        for i, f in enumerate(members):
            field_id += 1
            columns[0 if i < half else 1].append(f.editor(field_id))
        answer.append({"name": name, "description": "", "fields": [c for c in columns if c]})
    return answer


# ---------------------------------------------------------------------------------------------------------------
# values


def to_text(value: Any) -> Value:
    """A written value as the API keeps it (None means the value is unusable and the key is ignored)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, str):
        return value
    return None


def list_value(value: Any) -> Value:
    """A `list` field: several option ids, kept in Ontraport's `*/*1*/*2*/*` form."""
    if isinstance(value, list):
        ids = [to_text(v) for v in value]
        if any(i is None for i in ids):
            return None
        return "*/*" + "*/*".join(i for i in ids if i) + "*/*" if ids else ""
    return to_text(value)


_COUNTRY_ALIASES = {
    "russia": "RU", "uk": "GB", "great britain": "GB", "england": "GB", "scotland": "GB", "wales": "GB",
    "northern ireland": "GB", "turkey": "TR", "macedonia": "MK", "ivory coast": "CI", "holland": "NL",
    "brunei": "BN", "cape verde": "CV", "micronesia": "FM", "palestine": "PS", "vatican": "VA", "swaziland": "SZ",
    "burma": "MM",
}  # fmt: skip


def country_code(value: str) -> str:
    """ISO 3166-1 alpha-2 for a country name or code ("Australia" -> "AU"); unknown text is kept as written."""
    text = value.strip()
    if not text:
        return ""
    alias = _COUNTRY_ALIASES.get(text.casefold())
    if alias:
        return alias
    try:
        return str(pycountry.countries.lookup(text).alpha_2)
    except LookupError:
        return text


_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s.]+$")


def valid_email(value: str) -> bool:
    """A plausible address within RFC 5321's limits (64 characters before the @, 254 in all)."""
    text = value.strip()
    local, _, _ = text.partition("@")
    return _EMAIL.match(text) is not None and len(local) <= 64 and len(text) <= 254
