"""What the crash tests share: how far delivery got, Sell's people as its own API gives them, and the check that
every destination holds the latest state of each."""

from __future__ import annotations

import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

import httpx


def settled(db: Path) -> int:
    """Deliveries with a recorded outcome (both destinations)."""
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM deliveries WHERE status <> 'pending'").fetchone()[0])
    except sqlite3.OperationalError:
        return 0


def sell_people(url: str, token: str) -> list[dict[str, Any]]:
    """Every live lead and contact (organisations included: they are written too), read back through Sell's own v2
    API."""
    people = []
    headers = {"Authorization": f"Bearer {token}", "User-Agent": "crash-test/1"}
    with httpx.Client(base_url=url, headers=headers, timeout=30) as http:
        for kind, resource in (("lead", "leads"), ("contact", "contacts")):
            page = 1
            while True:
                body = http.get(f"/v2/{resource}", params={"page": page, "per_page": 100}).json()
                for entry in body["items"]:
                    people.append({"kind": kind, **entry["data"]})
                if not body["meta"]["links"].get("next_page"):
                    break
                page += 1
    return people


def assert_latest_state(people: list[dict[str, Any]], sm: httpx.Client, op: httpx.Client) -> None:
    """Both destinations hold Sell's latest state: every live person is there (by e-mail, or in Ontraport by its
    external id), with its latest name when it is the only Sell person behind its destination contact; a person
    deleted in Sell (and held by no one else) is deleted in SALESmanago, and absent from Ontraport."""
    emails = Counter(p["email"].lower() for p in people if p.get("email"))
    sm_contacts = {c["email"]: c for c in sm.get("/_sandbox/contacts").json()["contacts"]}
    op_contacts = op.get("/_sandbox/contacts").json()["contacts"]
    op_by_email = {c["email"]: c for c in op_contacts if c.get("email")}
    op_by_external = {c["f1558"]: c for c in op_contacts if c.get("f1558")}
    for person in people:
        email = (person.get("email") or "").lower()
        if not email:
            if not person.get("is_organization"):  # an organisation is only ever written by its e-mail
                assert f"sell-{person['kind']}-{person['id']}" in op_by_external
            continue
        assert sm_contacts[email]["deleted"] is False
        assert email in op_by_email
        if emails[email] == 1:  # one Sell person per destination contact: its latest state is what arrived
            if person.get("is_organization"):
                name = first = person["name"]
            else:
                name = " ".join(p for p in (person.get("first_name"), person.get("last_name")) if p)
                first = person.get("first_name") or None
            assert sm_contacts[email]["name"] == name, (email, sm_contacts[email])
            assert op_by_email[email]["firstname"] == first, (email, op_by_email[email])
    live = set(emails)
    for email, contact in sm_contacts.items():
        if email not in live:
            assert contact["deleted"] is True, email
    assert set(op_by_email) <= live
