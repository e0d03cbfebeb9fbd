"""What an Ontraport account holds of Sell's people, read back for `syncd reconcile`, and how it differs from what
the writer writes (ontraport.map: the one mapping, converted by the account's field types).

Contacts are read by the ids syncd keeps for them, `BATCH` at a time (`GET /1/Contacts?ids=...`, Ontraport's
largest page), and those syncd holds no id for by their e-mails (`condition` email IN (...), `BATCH` e-mails a
call), through the account's limiter. Every mapped key is compared: the writer sends each of them on every write
("" when Sell has no value), so Ontraport should hold exactly that; e-mails compare without case, like Ontraport
matches them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

from syncd.sinks.ontraport.http import OntraportApi

BATCH = 50  # contacts in one GET /1/Contacts (Ontraport's `range` at most)


async def held(api: OntraportApi, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The contacts the account holds with `ids`, by id (ids it does not hold are left out)."""
    found: dict[str, dict[str, Any]] = {}
    wanted = list(dict.fromkeys(i for i in ids if i))
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        params = {"ids": ",".join(chunk), "range": str(BATCH), "start": "0"}
        answer = await api.call("GET", "/1/Contacts", params=params)
        for contact in answer.data if isinstance(answer.data, list) else []:
            if isinstance(contact, dict) and contact.get("id") not in (None, ""):
                found[str(contact["id"])] = contact
    return found


async def by_emails(api: OntraportApi, emails: Sequence[str]) -> dict[str, dict[str, Any]]:
    """The contacts the account holds under `emails`, by case-folded e-mail (the lowest id when several)."""
    found: dict[str, dict[str, Any]] = {}
    wanted = list(dict.fromkeys(e.strip() for e in emails if e.strip()))
    for start in range(0, len(wanted), BATCH):
        chunk = wanted[start : start + BATCH]
        condition = [{"field": {"field": "email"}, "op": "IN", "value": {"list": [{"value": e} for e in chunk]}}]
        offset = 0
        while True:
            params = {
                "condition": json.dumps(condition),
                "range": str(BATCH),
                "start": str(offset),
                "sort": "id",
                "sortDir": "asc",
            }
            answer = await api.call("GET", "/1/Contacts", params=params)
            page = [c for c in answer.data if isinstance(c, dict)] if isinstance(answer.data, list) else []
            for contact in page:
                email = str(contact.get("email") or "").strip().casefold()
                if email and email not in found:
                    found[email] = contact
            if len(page) < BATCH:
                break
            offset += BATCH
    return found


def _text(key: str, value: Any) -> str:
    text = "" if value is None else str(value).strip()
    return text.casefold() if key == "email" else text


def differences(payload: Mapping[str, str], contact: Mapping[str, Any]) -> list[str]:
    """The keys in which the held `contact` differs from the fields the writer writes."""
    return [key for key, value in payload.items() if _text(key, value) != _text(key, contact.get(key))]
