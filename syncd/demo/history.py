"""What the demo shows of Sell's history once the daemon stops: SALESmanago external events by type, Ontraport
purchases (logged and reversed, their lines, the products made for them), Ontraport notes, the invoices e-mailed
(always none), and a sample won deal and a sample note as each destination holds them.

The totals are read from the sandboxes' control routes; the samples through the real read endpoints
(`contact/list` for a contact's external events, `GET /1/Transaction`, `/1/Purchases` and `/1/Note`), found through
the store (read-only) by the links syncd keeps. Counting is pure.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import msgspec

from state import Store
from syncd.demo.world import OWNER, Credentials, Ports
from syncd.events import Contact, Deal, Note, Stage, decode_record
from syncd.sinks.salesmanago.protocol import auth_fields

LIVE = ("0", "1")  # a transaction's status while it stands: unpaid or paid (reversed ones are 2 to 6)
DEAL_FIELDS = ("name", "value", "currency", "last_stage_change_at", "contact_id")


@dataclass(frozen=True, slots=True)
class HistoryTotals:
    """What the destinations hold of Sell's deals, orders and notes after the run."""

    events: tuple[tuple[str, int], ...] = ()  # SALESmanago external events by type, most first
    purchases: int = 0  # Ontraport transactions standing (logged, not reversed)
    reversed: int = 0  # Ontraport transactions voided or refunded
    purchase_lines: int = 0  # Ontraport purchase records (one per line of a transaction)
    value: str = "0.00"  # the standing transactions' total
    products: int = 0
    notes: int = 0  # Ontraport notes
    invoices_emailed: int = 0  # Ontraport invoice e-mails sent to customers (syncd never causes one)

    def as_json(self) -> dict[str, Any]:
        return {
            "salesmanago_events": dict(self.events),
            "ontraport_purchases": self.purchases,
            "ontraport_purchases_reversed": self.reversed,
            "ontraport_purchase_lines": self.purchase_lines,
            "ontraport_purchases_value": self.value,
            "ontraport_products": self.products,
            "ontraport_notes": self.notes,
            "ontraport_invoices_emailed": self.invoices_emailed,
        }


def totals(
    events: Iterable[Mapping[str, Any]],
    transactions: Iterable[Mapping[str, Any]],
    purchases: int,
    products: int,
    notes: int,
    invoices: int,
) -> HistoryTotals:
    """The counts, from what the sandboxes hold."""
    by_type = Counter(str(e.get("contactExtEventType") or "?") for e in events)
    standing = [t for t in transactions if str(t.get("status")) in LIVE]
    reversed_ = sum(1 for t in transactions if str(t.get("status")) not in LIVE)
    value = sum((_amount(t.get("total")) for t in standing), 0.0)
    return HistoryTotals(
        events=tuple(sorted(by_type.items(), key=lambda item: (-item[1], item[0]))),
        purchases=len(standing),
        reversed=reversed_,
        purchase_lines=purchases,
        value=f"{value:.2f}",
        products=products,
        notes=notes,
        invoices_emailed=invoices,
    )


async def fetch_totals(ports: Ports) -> HistoryTotals:
    """The totals, read from the sandboxes' control routes."""
    async with httpx.AsyncClient(timeout=10.0) as http:
        sm = f"http://127.0.0.1:{ports.salesmanago}/_sandbox"
        op = f"http://127.0.0.1:{ports.ontraport}/_sandbox"
        events = (await http.get(f"{sm}/events")).json().get("events", [])
        sales = (await http.get(f"{op}/purchases")).json()
        products = (await http.get(f"{op}/products")).json().get("products", [])
        notes = (await http.get(f"{op}/notes")).json().get("notes", [])
        invoices = (await http.get(f"{op}/invoices")).json().get("emailed", 0)
    return totals(events, sales.get("transactions", []), len(sales.get("purchases", [])), len(products),
                  len(notes), int(invoices))  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# samples


@dataclass(frozen=True, slots=True)
class SampleDeal:
    """A won deal both destinations hold history of."""

    key: str
    sell: dict[str, Any]
    email: str  # its contact's (SALESmanago keys its events by the contact)
    invoices: tuple[str, ...]  # its Ontraport transactions


@dataclass(frozen=True, slots=True)
class SampleNote:
    key: str
    sell: dict[str, Any]
    ontraport_id: str


async def find_samples(store: Store) -> tuple[SampleDeal | None, SampleNote | None]:
    """A deal with a purchase logged in Ontraport and events in SALESmanago (the lowest id), and a note written
    to Ontraport (the lowest id), from the store's links."""
    deal = None
    for row in await store.records_of_kind("deal"):
        record = decode_record(row.body)
        op = await store.link("ontraport", "deal", row.record_id)
        sm = await store.link("salesmanago", "deal", row.record_id)
        if row.deleted or not isinstance(record, Deal) or op is None or not op.remote_id or sm is None:
            continue
        contact = await store.record("contact", record.contact_id) if record.contact_id is not None else None
        person = decode_record(contact.body) if contact is not None else None
        if not isinstance(person, Contact) or not person.email:
            continue
        stage = await store.record("stage", record.stage_id) if record.stage_id is not None else None
        sell = {k: v for k, v in msgspec.to_builtins(record).items() if k in DEAL_FIELDS and v not in (None, "")}
        stage_record = decode_record(stage.body) if stage is not None else None
        if isinstance(stage_record, Stage):
            sell["stage"] = f"{stage_record.name} ({stage_record.category})"
        deal = SampleDeal(f"deal:{row.record_id}", sell, person.email, tuple(op.remote_id.split(",")))
        break
    note = None
    for row in await store.records_of_kind("note"):
        record = decode_record(row.body)
        link = await store.link("ontraport", "note", row.record_id)
        if row.deleted or not isinstance(record, Note) or link is None or not link.remote_id:
            continue
        sell = {"content": record.content, "on": f"{record.resource_type}:{record.resource_id}"}
        note = SampleNote(f"note:{row.record_id}", sell, link.remote_id)
        break
    return deal, note


async def fetch_samples(
    deal: SampleDeal | None, note: SampleNote | None, ports: Ports, creds: Credentials
) -> dict[str, Any]:
    """The sample deal as Sell sent it, its SALESmanago external events and its Ontraport purchases; the sample note
    as Sell sent it and as Ontraport holds it."""
    found: dict[str, Any] = {}
    op = f"http://127.0.0.1:{ports.ontraport}"
    headers = {"Api-Appid": creds.op_app_id, "Api-Key": creds.op_key}
    async with httpx.AsyncClient(timeout=10.0, headers=headers) as http, httpx.AsyncClient(timeout=10.0) as sm:
        if deal is not None:
            found["deal"] = {
                "record": deal.key,
                "sell": deal.sell,
                "salesmanago": await _events(sm, ports.salesmanago, creds, deal),
                "ontraport": [await _purchase(http, op, invoice) for invoice in deal.invoices],
            }
        if note is not None:
            answer = await http.get(f"{op}/1/Note", params={"id": note.ontraport_id})
            data = answer.json().get("data") if answer.status_code == 200 else None
            shown = {k: data[k] for k in ("id", "contact_id", "data", "author", "time") if k in data} if data else {}
            found["note"] = {"record": note.key, "sell": note.sell, "ontraport": shown}
    return found


async def _events(http: httpx.AsyncClient, port: int, creds: Credentials, deal: SampleDeal) -> list[dict[str, Any]]:
    """The deal's external events on its contact (`contact/list`, signed as the real API wants)."""
    body = {
        **auth_fields(client_id=creds.sm_client_id, api_secret=creds.sm_secret, owner=OWNER, now=time.time()),
        "email": [deal.email],
    }
    reply = (await http.post(f"http://127.0.0.1:{port}/api/contact/list", json=body)).json()
    contacts = reply.get("contacts") or []
    prefix = f"sell-{deal.key.replace(':', '-')}-"
    keep = ("contactExtEventType", "externalId", "value", "products", "detail1", "detail3", "date")
    return [
        {k: e[k] for k in keep if e.get(k) not in (None, "")}
        for contact in contacts
        for e in contact.get("contactExtEvents") or []
        if str(e.get("externalId") or "").startswith(prefix)
    ]


async def _purchase(http: httpx.AsyncClient, base: str, invoice: str) -> dict[str, Any]:
    """One logged transaction (`GET /1/Transaction?id=`) with its lines (`GET /1/Purchases?condition=...`)."""
    answer = await http.get(f"{base}/1/Transaction", params={"id": invoice})
    data = answer.json().get("data") if answer.status_code == 200 else None
    if not isinstance(data, dict):
        return {"invoice": invoice, "error": f"GET /1/Transaction answered {answer.status_code}"}
    condition = json.dumps([{"field": {"field": "invoice_id"}, "op": "=", "value": {"value": invoice}}])
    rows = (await http.get(f"{base}/1/Purchases", params={"condition": condition})).json().get("data") or []
    keep = ("id", "status", "total", "date", "external_order_id", "template_id", "contact_id")
    return {
        **{k: data[k] for k in keep if k in data},
        "lines": [f"{r.get('quantity')} × {r.get('name')} at {r.get('price')}" for r in rows if isinstance(r, dict)],
    }


def _amount(value: Any) -> float:
    try:
        return float(str(value))
    except ValueError:
        return 0.0
