"""The SALESmanago side of `[sinks.salesmanago.fields]`: the target grammar, its checks, and value conversion. Pure.

A target names where a Sell value lands in a contact upsert, and how the value is converted:

- `contact.name`, `contact.phone`, `contact.fax`, `contact.company`, `contact.externalId` → `contact.<name>`: text.
- `contact.state` → `contact.state`: CUSTOMER, PROSPECT, PARTNER, OTHER or UNKNOWN (any case, spaces as `_`);
  any other value is ignored (the default state stays).
- `address.streetAddress`, `address.zipCode`, `address.city` → `contact.address.<name>`: text (a Sell address
  value gives its matching part).
- `address.country` → `contact.address.country`: ISO 3166-1 alpha-2 from free text (unknown text as written).
- `province` → `province` (top level): text.
- `birthday` → `birthday`: a date → "yyyyMMdd", a month and day ("12-10") → "MMdd"; anything else is ignored.
- `property.<name>` → `properties.<name>`: text, clipped to 255 characters.
- `number.<name>` → `dictionaryProperties` NUMBER: a JSON number (a checkbox as 1/0); non-numbers are ignored.
- `date.<name>` → `dictionaryProperties` DATE: epoch milliseconds (UTC midnight for a date).
- `tags` → `tags` (added): each value of a list, or the value; a ticked checkbox adds the Sell field's name.

An unset Sell value never overrides a default; it leaves the target out (a property syncd wrote before is then
cleared, see salesmanago/map.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from syncd.events import Address
from syncd.sinks.countries import country_code
from syncd.sinks.mapping import FieldMapping, MappingProblem, as_text, sell_field_problem

STATES = ("CUSTOMER", "PROSPECT", "PARTNER", "OTHER", "UNKNOWN")
CONTACT_KEYS = ("name", "phone", "fax", "company", "state", "externalId")
ADDRESS_KEYS = ("streetAddress", "zipCode", "city", "country")
NAMED_FORMS = ("property", "number", "date")  # `<form>.<free-form name>`
SINGLE_FORMS = ("province", "birthday", "tags")
TEXT_LIMIT = 255  # SALESmanago's usual limit for a contact detail; longer text is clipped
# A Sell address part for each SALESmanago address key (for a Sell address value mapped onto an address target).
ADDRESS_PARTS = {"streetAddress": "line1", "zipCode": "postal_code", "city": "city", "country": "country"}
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_MONTH_DAY = re.compile(r"^-{0,2}(\d{2})-?(\d{2})$")
_COMPACT_DATE = re.compile(r"^\d{8}$")


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed target: its form (`contact`, `address`, `property`, `number`, `date`, `province`, `birthday`,
    `tags`) and, for the forms that have one, the name after the dot (canonical spelling)."""

    form: str
    name: str = ""


_CANONICAL = {
    "contact": {key.lower(): key for key in CONTACT_KEYS},
    "address": {key.lower(): key for key in ADDRESS_KEYS},
}
EXPECTED = (
    "contact.<name|phone|fax|company|state|externalId>, address.<streetAddress|zipCode|city|country>, province,"
    " birthday, property.<name>, number.<name>, date.<name> or tags"
)


def parse_target(text: str) -> Target | str:
    """The Target `text` names, or why it names none."""
    stripped = text.strip()
    lowered = stripped.lower()
    if lowered in SINGLE_FORMS:
        return Target(lowered)
    form, dot, name = stripped.partition(".")
    form = form.lower()
    if not dot:
        return f"unknown SALESmanago target {text!r}; expected {EXPECTED}"
    if form == "contact" and name.lower() == "email":
        return "contact.email is how SALESmanago identifies a contact; syncd always writes the Sell e-mail there"
    if form in _CANONICAL:
        canonical = _CANONICAL[form].get(name.lower())
        if canonical is None:
            known = "|".join(_CANONICAL[form].values())
            return f"unknown SALESmanago target {text!r}; {form}.<{known}> are the {form} fields"
        return Target(form, canonical)
    if form in NAMED_FORMS:
        if not name.strip():
            return f"{form}.<name> needs the name of the SALESmanago {_describe(form)} after the dot"
        return Target(form, name.strip())
    return f"unknown SALESmanago target {text!r}; expected {EXPECTED}"


def _describe(form: str) -> str:
    return {"property": "contact detail", "number": "NUMBER property", "date": "DATE property"}[form]


def check_mapping(rows: Iterable[FieldMapping], *, custom_names: frozenset[str] | None) -> list[MappingProblem]:
    """Every problem of the user's rows: an unknown target form, or a Sell field that does not exist."""
    problems: list[MappingProblem] = []
    for row in rows:
        target = parse_target(row.target)
        if isinstance(target, str):
            problems.append(MappingProblem(row.config_key, target))
        sell = sell_field_problem(row.sell, custom_names=custom_names)
        if sell is not None:
            problems.append(MappingProblem(row.config_key, sell))
    return problems


# ---------------------------------------------------------------------------------------------------------------
# value conversion, per target type; None means "leave the target out"


def clip_detail(text: str) -> str:
    """Text as a SALESmanago contact detail takes it: at most TEXT_LIMIT characters, the end replaced by "…"; line
    breaks are kept (unlike `httpclient.clip`, which makes one-line excerpts of replies for messages)."""
    return text if len(text) <= TEXT_LIMIT else text[: TEXT_LIMIT - 1] + "…"


def to_text(value: Any, part: str = "") -> str | None:
    """Text for a text target; an address value gives its `part` when one is named, else one line."""
    if isinstance(value, Address) and part:
        value = getattr(value, part)
    text = as_text(value).strip()
    return text or None


def to_country(value: Any) -> str | None:
    text = to_text(value, "country")
    return None if text is None else (country_code(text) or text)


def to_state(value: Any) -> str | None:
    text = to_text(value)
    state = None if text is None else text.upper().replace(" ", "_")
    return state if state in STATES else None


def to_birthday(value: Any) -> str | None:
    """ "yyyyMMdd" from a date, a datetime or their ISO text; "MMdd" from a month and day ("12-10", "--12-10")."""
    if isinstance(value, datetime | date):
        return value.strftime("%Y%m%d")
    if not isinstance(value, str):
        return None
    text = value.strip()
    parsed = _iso(text)
    if parsed is not None:
        return parsed.strftime("%Y%m%d")
    if _COMPACT_DATE.match(text) and _iso(f"{text[:4]}-{text[4:6]}-{text[6:]}") is not None:
        return text
    month_day = _MONTH_DAY.match(text)
    if month_day and _is_date(2000, int(month_day.group(1)), int(month_day.group(2))):
        return month_day.group(1) + month_day.group(2)
    return None


def to_number(value: Any) -> int | float | None:
    """A JSON number: integral values as integers; a checkbox as 1/0; numeric text parsed."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        return value
    if isinstance(value, float | Decimal):
        number = Decimal(str(value)) if isinstance(value, float) else value
    elif isinstance(value, str) and _NUMBER.match(value.strip()):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:  # pragma: no cover - the pattern admits only valid decimals
            return None
    else:
        return None
    if not number.is_finite():
        return None
    return int(number) if number == number.to_integral_value() else float(number)


def to_epoch_ms(value: Any) -> int | None:
    """Epoch milliseconds from a date (UTC midnight), a datetime (naive ones read as UTC) or their ISO text."""
    if isinstance(value, str):
        parsed: date | datetime | None = _iso(value.strip())
    elif isinstance(value, datetime | date):
        parsed = value
    else:
        return None
    if parsed is None:
        return None
    if not isinstance(parsed, datetime):
        parsed = datetime(parsed.year, parsed.month, parsed.day, tzinfo=UTC)
    elif parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return int(parsed.timestamp() * 1000)


def to_tags(value: Any, field_name: str) -> list[str]:
    """Tags from a value: each item of a list, the text of a value, the field's own name for a ticked checkbox."""
    if isinstance(value, bool):
        return [field_name] if value else []
    if isinstance(value, list | tuple):
        return [text for item in value if (text := to_text(item))]
    text = to_text(value)
    return [text] if text else []


def tag_name(tag: str) -> str:
    """A tag as SALESmanago shows it: upper-case, spaces as underscores."""
    return "_".join(tag.strip().upper().split())


def _iso(text: str) -> date | datetime | None:
    try:
        if "T" in text or " " in text:
            return datetime.fromisoformat(text)
        return date.fromisoformat(text) if len(text) == 10 else None
    except ValueError:
        return None


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True
