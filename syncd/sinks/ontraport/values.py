"""Values as Ontraport wants them: every value a string, shaped by the destination field's type. Pure.

`to_field(value, field, country=...)` turns a normalised Sell value (text, bool, Decimal, date, datetime, list,
Address, None) into the text an Ontraport field of `field.type` takes (types from `GET /1/Contacts/meta`):

- text, longtext, email, phone, sms, address, mergefield (and anything unknown): plain text;
- numeric, price: a decimal string ("1250.5");
- check: "1" or "0";
- fulldate, timestamp: Unix epoch seconds (a date is its midnight UTC);
- drop, subscription: the option id, from an option id or its label ("Gold" → "1"); priority also takes
  high/medium/low/none;
- list: several option ids in Ontraport's `*/*1*/*3*/*` form;
- country: the ISO 3166-1 alpha-2 code; state: the state code (both as written when unknown).

A few keys are shaped by what they mean whatever their type: the UTM fields (`n_lead_source`, ...) carry names
(syncd sets `use_utm_names`), `timezone` must be an IANA name, `bulk_mail` may only be "0".

An unset value is "" (a blank overwrites in Ontraport: it clears what Sell cleared), except a check box, which is "0".
A value that cannot be converted raises `ValueError` whose text never repeats the value (it ends up in logs).
"""

from __future__ import annotations

import calendar
import zoneinfo
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from functools import cache
from typing import Any

from syncd.dates import US_DATE
from syncd.sinks.base import DestinationField
from syncd.sinks.countries import country_code, state_code
from syncd.sinks.mapping import as_text

UTM_KEYS = frozenset(
    f"{prefix}_{part}" for prefix in ("n", "l") for part in ("lead_source", "content", "medium", "campaign", "term")
)
NUMBER_TYPES = frozenset({"numeric", "price"})
DATE_TYPES = frozenset({"fulldate", "timestamp"})
OPTION_TYPES = frozenset({"drop", "subscription"})
PRIORITY_NAMES = {"none": "0", "high": "8", "medium": "9", "low": "10"}
_TRUE = frozenset({"1", "true", "yes", "y", "on", "checked", "x"})
_FALSE = frozenset({"", "0", "false", "no", "n", "off", "unchecked"})


def to_field(value: Any, field: DestinationField, *, country: str | None = None) -> str:
    """`value` as the text Ontraport's `field` takes; `country` (alpha-2) helps read a state name."""
    key = field.key
    if key in UTM_KEYS:
        return text(value)
    if key == "timezone":
        return timezone(value)
    if key == "bulk_mail":
        chosen = option(value, field)
        if chosen != "0":
            raise ValueError('the API may only set bulk_mail to "0" (transactional only)')
        return chosen
    if key == "country" or field.type == "country":
        return country_text(value)
    if key == "state" or field.type == "state":
        return state_text(value, country)
    if field.type in NUMBER_TYPES:
        return decimal_text(value)
    if field.type == "check":
        return check_text(value)
    if field.type in DATE_TYPES:
        return epoch_text(value)
    if field.type in OPTION_TYPES:
        return option(value, field)
    if field.type == "list":
        return option_list(value, field)
    return text(value)


def text(value: Any) -> str:
    """Plain text: "" for unset, "1"/"0" for booleans, ISO dates, comma-joined lists, a one-line address."""
    return as_text(value).strip()


def is_unset(value: Any) -> bool:
    """No value: None, or text that is blank."""
    return value is None or (isinstance(value, str) and not value.strip())


def decimal_text(value: Any) -> str:
    if is_unset(value):
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        return str(value)
    if not isinstance(value, str | Decimal | float):
        raise ValueError("expected a number")
    try:
        number = Decimal(str(value).strip())
    except InvalidOperation:
        raise ValueError("expected a number") from None
    if not number.is_finite():
        raise ValueError("expected a finite number")
    return format(number, "f")


def check_text(value: Any) -> str:
    if value is None:
        return "0"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int):
        if value in (0, 1):
            return str(value)
        raise ValueError("expected a yes/no value")
    if isinstance(value, str):
        folded = value.strip().casefold()
        if folded in _TRUE:
            return "1"
        if folded in _FALSE:
            return "0"
    raise ValueError("expected a yes/no value (true/false, yes/no, 1/0)")


def epoch_text(value: Any) -> str:
    """Unix epoch seconds: a date at midnight UTC, a datetime (naive ones read as UTC), or ISO text."""
    if is_unset(value):
        return ""
    if isinstance(value, datetime):
        moment = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
        return str(int(moment.timestamp()))
    if isinstance(value, date):
        return str(calendar.timegm(value.timetuple()))
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise ValueError("expected a date")
    if isinstance(value, int):
        return str(value)
    raw = value.strip()
    if raw.isdigit():
        return raw
    us = US_DATE.match(raw)
    if us:
        month, day, year = (int(g) for g in us.groups())
        try:
            return epoch_text(date(year, month, day))
        except ValueError:
            raise ValueError("expected a date") from None
    try:
        return epoch_text(date.fromisoformat(raw)) if len(raw) == 10 else epoch_text(datetime.fromisoformat(raw))
    except ValueError:
        raise ValueError("expected a date (YYYY-MM-DD) or a date and time (ISO 8601)") from None


def option(value: Any, field: DestinationField) -> str:
    """The id of the option named by `value` (an id or a label, any case)."""
    if isinstance(value, list | tuple):
        if len(value) > 1:
            raise ValueError("expected one option, got several")
        value = value[0] if value else None
    wanted = text(value)
    if not wanted:
        return ""
    found = _option_id(wanted, field)
    if found is None:
        raise ValueError(f"the value matches no option of the field (options: {_labels(field)})")
    return found


def option_list(value: Any, field: DestinationField) -> str:
    """Several option ids as Ontraport keeps them: `*/*1*/*3*/*` ("" for none)."""
    if value is None:
        return ""
    if isinstance(value, list | tuple):
        items = [text(v) for v in value]
    else:
        whole = text(value)
        items = [whole] if not whole or _option_id(whole, field) is not None else whole.split(",")
    ids: list[str] = []
    for item in (i.strip() for i in items):
        if not item:
            continue
        found = _option_id(item, field)
        if found is None:
            raise ValueError(f"a value matches no option of the field (options: {_labels(field)})")
        if found not in ids:
            ids.append(found)
    return "*/*" + "*/*".join(ids) + "*/*" if ids else ""


def country_text(value: Any) -> str:
    written = text(value)
    return (country_code(written) or written) if written else ""


def state_text(value: Any, country: str | None) -> str:
    written = text(value)
    return (state_code(country or None, written) or written) if written else ""


def timezone(value: Any) -> str:
    name = text(value)
    if name and name not in _zones():
        raise ValueError('expected an IANA time zone name such as "Europe/Warsaw"')
    return name


def _option_id(wanted: str, field: DestinationField) -> str | None:
    options: Mapping[str, str] = field.options or {}
    if wanted in options:
        return wanted
    folded = wanted.casefold()
    for option_id, label in options.items():
        if label.strip().casefold() == folded:
            return option_id
    if field.key == "priority":
        named = PRIORITY_NAMES.get(folded)
        if named is not None and (not options or named in options):
            return named
        if not options and wanted in PRIORITY_NAMES.values():
            return wanted
    return None


def _labels(field: DestinationField) -> str:
    return ", ".join((field.options or {}).values()) or "none defined"


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())
