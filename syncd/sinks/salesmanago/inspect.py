"""What a SALESmanago account holds of Sell's people, read back for `syncd reconcile`, and how it differs from what
the writer writes (salesmanago.map: the one mapping).

Reads are `contact/list` calls of up to `BATCH` e-mails each, through the account's limiter. The comparison takes
SALESmanago's own rules: contacts are keyed by lower-case e-mail; syncd never sends a blank value, so a value Sell
has cleared keeps its last value there and only the values the writer sends are compared; tags and properties syncd
did not write may be there too (only the writer's must be); what `contact/list` does not return (dictionary
properties, consents) cannot be compared. Soft-deleted contacts count as absent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from syncd.sinks.salesmanago.http import SalesmanagoApi
from syncd.sinks.salesmanago.map import MappedContact

BATCH = 100  # e-mails asked for in one contact/list


async def held(api: SalesmanagoApi, emails: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The live contacts the account holds under `emails`, by lower-case e-mail."""
    found: dict[str, dict[str, Any]] = {}
    wanted = list(dict.fromkeys(e.lower() for e in emails if e))
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        reply = await api.call("contact/list", {"email": chunk}, known=chunk)
        contacts = reply.body.get("contacts") if reply.body is not None else None
        for contact in contacts or []:
            if isinstance(contact, dict) and isinstance(contact.get("email"), str) and not contact.get("deleted"):
                found[contact["email"].strip().lower()] = contact
    return found


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _same(want: Any, have: Any, key: str) -> bool:
    if key == "country":
        return _text(want).upper() == _text(have).upper()
    return _text(want) == _text(have)


def differences(mapped: MappedContact, contact: Mapping[str, Any]) -> list[str]:
    """The fields in which the held `contact` (as `contact/list` answers it) differs from what the writer writes."""
    want = mapped.desired()
    found: list[str] = []
    for key, value in want["contact"].items():
        if key == "email":
            continue  # the identity the contact was found by
        if key == "address":
            address = contact.get("address")
            have: Mapping[str, Any] = address if isinstance(address, dict) else {}
            found += [f"address.{part}" for part, text in value.items() if not _same(text, have.get(part), part)]
        elif not _same(value, contact.get(key), key):
            found.append(key)
    if want.get("province") and not _same(want["province"], contact.get("province"), "province"):
        found.append("province")
    tags = {_text(t.get("tag") if isinstance(t, dict) else t).upper() for t in contact.get("contactTags") or []}
    if any(_text(tag).upper() not in tags for tag in want.get("tags", [])):
        found.append("tags")
    properties = {
        _text(p.get("name")): _text(p.get("value")) for p in contact.get("properties") or [] if isinstance(p, dict)
    }
    found += [f"properties.{name}" for name, text in want.get("properties", {}).items() if properties.get(name) != text]
    return found
