"""Sell's plain values made plain: money and numbers, US-style dates, UTC times, addresses, tags, custom values.

Pure helpers of `syncd.sell.normalise`. A value that cannot be read raises `BadValue`, whose message starts with
where it was found ("deal.value: not a decimal: 'abc'"); normalise turns it into a NormaliseError.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import msgspec

from syncd.dates import US_DATE as _US_DATE
from syncd.events import Address, CustomValue
from syncd.sell.wire import CustomValues, Money, Ref, Tags, WireAddress, explain

TEXT_TYPES: Final = frozenset({"email", "phone", "string", "text", "url"})
MAX_ID: Final = 2**63 - 1  # the store keeps ids as SQLite integers (signed 64-bit)


class BadValue(ValueError):
    """A value that does not fit its Sell type; the message says where and why."""


def decimal_of(value: Money, where: str) -> Decimal | None:
    """Sell money/quantity ("1250.00", or a number) as a Decimal, keeping its scale; null or "" -> None."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
    else:
        text = repr(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise BadValue(f"{where}: not a decimal: {value!r}") from None
    if not number.is_finite():
        raise BadValue(f"{where}: not a decimal: {value!r}")
    return number


def ref_of(value: Ref, where: str) -> int | None:
    """The id of another Sell record (a number, or its decimal digits as a string) as an int; null or "" -> None.
    Anything else, and ids outside 1..2^63-1, raise BadValue."""
    if value is None:
        return None
    if isinstance(value, str):
        text = value.strip()
        if not text:
            return None
        if not (text.isascii() and text.isdigit()):
            raise BadValue(f"{where}: not an id: {value!r}")
        number = int(text)
    else:
        number = value
    if not 1 <= number <= MAX_ID:
        raise BadValue(f"{where}: not an id (1..2^63-1): {value!r}")
    return number


def canonical_decimal(value: Any, where: str) -> str:
    """A custom "number" value as a canonical decimal string: "123.450" -> "123.45", "1E+2" -> "100"."""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise BadValue(f"{where}: not a decimal: {value!r}")
    number = decimal_of(value, where)
    if number is None:
        raise BadValue(f"{where}: not a decimal: {value!r}")
    if number.is_zero():
        return "0"
    return format(number.normalize(), "f")


_US_DATETIME = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})[ T](\d{1,2}):(\d{2})(?::(\d{2}))?\s*([AaPp][Mm])?$")


def date_of(value: str, where: str) -> date:
    """Sell's "4/27/2016" (or ISO "2016-04-27") as a date."""
    text = value.strip()
    try:
        match = _US_DATE.match(text)
        if match:
            month, day, year = (int(g) for g in match.groups())
            return date(year, month, day)
        return date.fromisoformat(text)
    except ValueError:
        raise BadValue(f"{where}: not a date: {value!r}") from None


def datetime_text(value: str, where: str) -> str:
    """Sell's "4/28/2016 6:00" (or ISO) as an ISO datetime string "2016-04-28T06:00:00"."""
    text = value.strip()
    try:
        match = _US_DATETIME.match(text)
        if match:
            month, day, year, hour, minute = (int(g) for g in match.groups()[:5])
            second = int(match.group(6) or 0)
            half = (match.group(7) or "").lower()
            if half and not 1 <= hour <= 12:
                raise ValueError(text)
            if half == "pm" and hour != 12:
                hour += 12
            elif half == "am" and hour == 12:
                hour = 0
            return datetime(year, month, day, hour, minute, second).isoformat()
        return datetime.fromisoformat(text).isoformat()
    except ValueError:
        raise BadValue(f"{where}: not a date and time: {value!r}") from None


def utc(moment: datetime) -> datetime:
    """An aware UTC datetime (Sell's times are UTC; a naive one is taken as UTC)."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def utc_or_none(moment: datetime | None) -> datetime | None:
    return None if moment is None else utc(moment)


def address_of(value: WireAddress | None) -> Address | None:
    if value is None:
        return None
    postal = value.postal_code
    return Address(
        line1=value.line1 or "",
        city=value.city or "",
        postal_code="" if postal is None else str(postal),
        state=value.state or "",
        country=value.country or "",
    )


def tag_names(tags: Tags) -> list[str]:
    if not tags:
        return []
    return [tag if isinstance(tag, str) else tag.data.name for tag in tags]


def _option_name(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and isinstance(value.get("name"), str):
        return str(value["name"])
    raise BadValue(f"{where}: not a list option: {value!r}")


def _text(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise BadValue(f"{where}: not text: {value!r}")
    return value


def _bool(value: Any, where: str) -> CustomValue:
    if not isinstance(value, bool):
        raise BadValue(f"{where}: not true or false: {value!r}")
    return value


def _date(value: Any, where: str) -> CustomValue:
    return date_of(_text(value, where), where).isoformat()


def _datetime(value: Any, where: str) -> CustomValue:
    return datetime_text(_text(value, where), where)


def _options(value: Any, where: str) -> CustomValue:
    if not isinstance(value, list):
        raise BadValue(f"{where}: not a list of options: {value!r}")
    return [_option_name(option, where) for option in value]


def _address(value: Any, where: str) -> CustomValue:
    try:
        return address_of(msgspec.convert(value, WireAddress))
    except msgspec.ValidationError as exc:
        raise BadValue(f"{where}: not an address: {explain(exc)}") from None


# Sell custom field type -> how its (non-null) value is read: one look-up per value instead of a chain of tests.
_READERS: Final[dict[str, Callable[[Any, str], CustomValue]]] = {
    "bool": _bool,
    "number": canonical_decimal,
    "date": _date,
    "datetime": _datetime,
    "list": _option_name,
    "multi_select_list": _options,
    "address": _address,
    **dict.fromkeys(TEXT_TYPES, _text),
}


def _unknown(kind: str, value: Any, where: str) -> CustomValue:
    """A type this code does not know yet (Sell adds them): keep what has an obvious plain form."""
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return canonical_decimal(value, where)
    if isinstance(value, list):
        return [_option_name(option, where) for option in value]
    return _option_name(value, f"{where} (unknown type {kind!r})")


def custom_value(kind: str, value: Any, where: str) -> CustomValue:
    """One custom field value (already JSON-decoded) as a plain value, by the field's Sell type."""
    if value is None:
        return None
    read = _READERS.get(kind)
    return _unknown(kind, value, where) if read is None else read(value, where)


def custom_values(values: CustomValues, where: str) -> dict[str, CustomValue]:
    if not values:
        return {}
    plain: dict[str, CustomValue] = {}
    for entry in values:
        field = entry.custom_field.data
        try:
            # Where a value was found is only said when it is bad: the text is not built for every good one.
            plain[field.name] = custom_value(field.type, entry.value, "")
        except BadValue:
            custom_value(field.type, entry.value, f"{where}[{field.name}]")  # the same reading, raising where it was
            raise
    return plain
