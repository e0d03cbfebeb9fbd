"""Validation of what a SALESmanago contact upsert carries, as the simulator enforces it (pure functions).

`parse_upsert` turns one upsert body (or one `upsertDetails` item) into an `Upsert`, or raises `Refused` with the
`message` SALESmanago answers. Nothing here touches the contact store.

Blank strings (`""`) in the contact's text fields, its address parts, `properties`, `province` and `birthday` follow
the `blank_strings` reading: `clear` (the field becomes empty; `birthday` is removed), `ignore` (left as it is) or
`refuse`. `contact.state` is an enumeration: `""` is refused as an invalid state under every reading. A blank
`newEmail` means no rename (SALESmanago's own documented upsert example sends `"newEmail": ""`).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from syncd.errors import SyncdError

STATES = frozenset({"CUSTOMER", "PROSPECT", "PARTNER", "OTHER", "UNKNOWN"})
TEXT_KEYS = ("name", "phone", "fax", "company", "externalId")  # plain strings under `contact`
ADDRESS_KEYS = ("streetAddress", "zipCode", "city", "country")
DICTIONARY_TYPES = frozenset({"NUMBER", "DATE"})
# Top-level flags -> (the contact attribute they force, the value they force it to); later entries win.
OPT_FLAGS = {
    "forceOptIn": ("opted_out", False),
    "forceOptOut": ("opted_out", True),
    "forcePhoneOptIn": ("opted_out_phone", False),
    "forcePhoneOptOut": ("opted_out_phone", True),
}

_LOCAL = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]+$")
_LABEL = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_TOP_LABEL = re.compile(r"^(?:[A-Za-z]{2,63}|xn--[A-Za-z0-9-]{1,59})$")
_BIRTHDAY = re.compile(r"^(\d{4})?(\d{2})(\d{2})$")
_NUMBER = re.compile(r"^-?\d+(?:\.\d+)?$")
_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


BLANKS = ("clear", "ignore", "refuse")


class Refused(SyncdError):
    """A call SALESmanago answers with HTTP 200 and `success: false`; `messages` become its `message` list."""

    def __init__(self, *messages: str) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)


def utf16_length(text: str) -> int:
    """The length of `text` as Java counts it: UTF-16 code units (a character beyond the BMP counts twice)."""
    return len(text) + sum(1 for char in text if ord(char) > 0xFFFF)


def email_problem(email: str) -> str | None:
    """Why SALESmanago would refuse this e-mail address, or None when it is acceptable."""
    if len(email) > 254:
        return "longer than 254 characters"
    local, at, domain = email.rpartition("@")
    if not at or "@" in local:
        return "an e-mail address needs exactly one @"
    if not local:
        return "nothing before the @"
    if len(local) > 64:
        return "more than 64 characters before the @"
    if not _LOCAL.match(local) or local.startswith(".") or local.endswith(".") or ".." in local:
        return "the part before the @ is not valid"
    labels = domain.split(".")
    if len(labels) < 2 or not all(_LABEL.match(label) for label in labels) or not _TOP_LABEL.match(labels[-1]):
        return "the domain is not valid"
    return None


def checked_email(value: object, where: str, reject: Collection[str] = ()) -> str:
    """A valid e-mail from `value`, lower-cased; `reject` holds lower-case e-mails an operator marked invalid."""
    if not isinstance(value, str) or not value:
        raise Refused(f"{where} is required")
    problem = email_problem(value)
    if problem is not None:
        raise Refused(f"Invalid email: {value} ({problem})")
    if value.lower() in reject:
        raise Refused(f"Invalid email: {value}")
    return value.lower()


def tag_name(tag: str) -> str:
    """A tag as SALESmanago shows it: upper-case, spaces as underscores."""
    return tag.strip().upper().replace(" ", "_")


@dataclass(frozen=True, slots=True)
class Upsert:
    """One validated contact upsert: what to match and what to change (absent keys change nothing)."""

    email: str  # lower-case
    new_email: str | None = None  # lower-case
    text: dict[str, str] = field(default_factory=dict)  # TEXT_KEYS and "state"
    address: dict[str, str] = field(default_factory=dict)
    province: str | None = None
    add_tags: tuple[str, ...] = ()
    remove_tags: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict)
    dictionary: dict[str, dict[str, Any]] = field(default_factory=dict)
    birthday: tuple[int | None, int, int] | None = None
    clear_birthday: bool = False  # a blank birthday under blank_strings = clear
    flags: dict[str, bool] = field(default_factory=dict)  # contact attribute -> forced value

    @property
    def final_email(self) -> str:
        """The e-mail the contact has once this upsert is applied."""
        return self.new_email or self.email


def parse_upsert(item: object, reject: Collection[str] = (), blanks: str = "clear") -> Upsert:
    """Validate one upsert body or `upsertDetails` item; `blanks` is the blank_strings reading."""
    if not isinstance(item, dict):
        raise Refused("an upsert must be a JSON object")
    contact = item.get("contact")
    if not isinstance(contact, dict):
        raise Refused("contact is required")
    email = checked_email(contact.get("email"), "contact.email", reject)
    new_email = item.get("newEmail")
    text = _texts(contact, TEXT_KEYS, "contact.", blanks)
    if contact.get("state") is not None:
        text["state"] = _text(contact, "state", "contact.")
        if text["state"] not in STATES:
            raise Refused(f"Invalid contact state: {text['state']} (one of {', '.join(sorted(STATES))})")
    province = _texts(item, ("province",), "", blanks).get("province")
    birthday = item.get("birthday")
    blank_birthday = birthday == "" and _blank("birthday", blanks)
    return Upsert(
        email=email,
        new_email=None if new_email in (None, "") else checked_email(new_email, "newEmail", reject),
        text=text,
        address=_address(contact.get("address"), blanks),
        province=province,
        add_tags=_tags(item.get("tags"), "tags"),
        remove_tags=_tags(item.get("removeTags"), "removeTags"),
        properties=_properties(item.get("properties"), blanks),
        dictionary=_dictionary(item.get("dictionaryProperties")),
        birthday=None if birthday == "" else _birthday(birthday),
        clear_birthday=blank_birthday and blanks == "clear",
        flags=_flags(item),
    )


def _blank(where: str, blanks: str) -> bool:
    """True when a blank value at `where` is applied (clear), False when it is skipped (ignore); refuse raises."""
    if blanks == "refuse":
        raise Refused(f"{where} must not be blank")
    return blanks == "clear"


def _text(data: dict[str, Any], key: str, where: str = "") -> str:
    value = data[key]
    if not isinstance(value, str):
        raise Refused(f"{where}{key} must be a string")
    return value


def _texts(data: dict[str, Any], keys: tuple[str, ...], where: str, blanks: str) -> dict[str, str]:
    """The string fields `keys` of `data` that are present (not null), blanks per the reading."""
    out: dict[str, str] = {}
    for key in keys:
        if data.get(key) is None:
            continue
        value = _text(data, key, where)
        if value or _blank(f"{where}{key}", blanks):
            out[key] = value
    return out


def _address(value: object, blanks: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise Refused("contact.address must be an object")
    return _texts(value, ADDRESS_KEYS, "contact.address.", blanks)


def _tags(value: object, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(tag, str) for tag in value):
        raise Refused(f"{where} must be a list of strings")
    return tuple(name for name in map(tag_name, value) if name)


def _properties(value: object, blanks: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise Refused("properties must be an object of strings")
    return {key: text for key, text in value.items() if text or _blank(f"properties.{key}", blanks)}


def _dictionary(value: object) -> dict[str, dict[str, Any]]:
    if value is None:
        return {}
    if not isinstance(value, list):
        raise Refused("dictionaryProperties must be a list")
    out: dict[str, dict[str, Any]] = {}
    for entry in value:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise Refused("each dictionaryProperties entry needs a name")
        name, kind, item = entry["name"], entry.get("type"), entry.get("value")
        if kind not in DICTIONARY_TYPES:
            raise Refused(f"dictionaryProperties {name}: type must be NUMBER or DATE")
        if not _dictionary_value_ok(kind, item):
            raise Refused(f"dictionaryProperties {name}: {item!r} is not a valid {kind}")
        out[name] = {"name": name, "type": kind, "value": item}
    return out


def _dictionary_value_ok(kind: str, value: object) -> bool:
    """NUMBER: a JSON number or numeric string; DATE: epoch milliseconds or "yyyy-MM-dd"."""
    if isinstance(value, bool):
        return False
    if kind == "NUMBER":
        return isinstance(value, int | float) or (isinstance(value, str) and bool(_NUMBER.match(value)))
    if isinstance(value, int):
        return True
    return isinstance(value, str) and bool(_ISO_DATE.match(value)) and _is_date(*map(int, value.split("-")))


def _birthday(value: object) -> tuple[int | None, int, int] | None:
    """(year or None, month, day) from "yyyyMMdd" or "MMdd"."""
    if value is None:
        return None
    match = _BIRTHDAY.match(value) if isinstance(value, str) else None
    if match is None:
        raise Refused(f"birthday must be yyyyMMdd or MMdd, got {value!r}")
    year = int(match.group(1)) if match.group(1) else None
    month, day = int(match.group(2)), int(match.group(3))
    if not _is_date(year or 2000, month, day):  # 2000 is a leap year: "0229" is a birthday
        raise Refused(f"birthday {value} is not a date")
    return year, month, day


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def _flags(item: dict[str, Any]) -> dict[str, bool]:
    flags: dict[str, bool] = {}
    for key, (attribute, forced) in OPT_FLAGS.items():
        value = item.get(key)
        if value is None:
            continue
        if not isinstance(value, bool):
            raise Refused(f"{key} must be true or false")
        if value:
            flags[attribute] = forced
    return flags
