"""A writer-level harness for Ontraport's history (purchases, notes, products): the Ontraport sandbox over real
loopback HTTP, a real store on a SQLite file, and the dispatcher's claim → load → deliver → commit round."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx

from syncd.config import Duration, OntraportConfig, OntraportNotes, OntraportPurchases, Secret
from syncd.events import ChangeEvent
from syncd.ledger import Ledger
from syncd.ratelimit import Limiter
from syncd.sinks.ontraport.writer import OntraportWriter
from syncd.work import Failed, Released, Result, Waiting
from tests.factories import event
from tests.support import FakeClock

APP_ID = "2_AppID_history"
API_KEY = "HistoryKey-8d2e"
SINK = "ontraport"
START = 1_800_000_000.0
STREAMS = ("leads", "contacts", "deals", "orders", "line_items", "notes", "products", "stages")
WON_AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
WON_MS = int(WON_AT.timestamp() * 1000)
OPEN, WON, LOST = 1, 2, 3


class History:
    """Writers for one account, and rounds of the dispatcher's work on the store."""

    def __init__(self, store: Ledger, url: str, clock: FakeClock, control: httpx.AsyncClient) -> None:
        self.store = store
        self.url = url
        self.clock = clock
        self.control = control
        self.limiter = Limiter(SINK, None)
        self.writers: list[OntraportWriter] = []
        self._positions = itertools.count(1)

    def writer(
        self, *, notes: dict[str, Any] | None = None, sink: dict[str, Any] | None = None, **purchases: Any
    ) -> OntraportWriter:
        """A writer with these `purchases` and `notes` settings (and others of the destination in `sink`)."""
        purchases.setdefault("settle", Duration(0))
        config = OntraportConfig(
            base_url=self.url,
            app_id=APP_ID,
            api_key=Secret(API_KEY),
            timeout=Duration(2),
            purchases=OntraportPurchases(**purchases),
            notes=OntraportNotes(**(notes or {})),
            **(sink or {}),
        )
        made = OntraportWriter(config, lookups=self.store, limiter=self.limiter, streams=STREAMS, clock=self.clock)
        self.writers.append(made)
        return made

    async def ingest(self, *events: ChangeEvent) -> None:
        """One page per stream (every stream marked at its top, so a won deal's line items count as arrived)."""
        for stream in STREAMS:
            page = [e for e in events if e.stream == stream]
            await self.store.ingest(stream, page, position=f"p{next(self._positions)}", at_top=True)

    async def round(self, writer: OntraportWriter, *, commit: bool = True) -> dict[str, Result]:
        """Claim every due key, deliver, commit (a failed key goes back to the queue; without `commit` every
        outcome is lost, as when the daemon is killed after its calls)."""
        works = await self.store.load_work(SINK, await self.store.claim(SINK, 100))
        results = await writer.deliver(works)
        assert [r.key for r in results] == [w.key for w in works]
        if commit:
            outcomes = [Released(r.key) if isinstance(r, Failed) else r for r in results]
            await self.store.commit(SINK, outcomes)
        else:
            await self.store.commit(SINK, [Released(r.key) for r in results])
        return {r.key: r for r in results}

    async def settle(self, writer: OntraportWriter, rounds: int = 6) -> dict[str, Result]:
        """Rounds until nothing is due; every key's last result."""
        seen: dict[str, Result] = {}
        for _ in range(rounds):
            found = await self.round(writer)
            if not found:
                break
            seen.update(found)
            if all(isinstance(r, Waiting) for r in found.values()):
                break
        return seen

    async def link(self, key: str) -> Any:
        return (await self.store.load_work(SINK, [key]))[0].link

    async def purchases(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(transactions, purchases) as the sandbox holds them."""
        body = (await self.control.get("/_sandbox/purchases")).json()
        return body["transactions"], body["purchases"]

    async def live(self) -> list[dict[str, Any]]:
        """Transactions not reversed (paid or unpaid)."""
        return [t for t in (await self.purchases())[0] if t["status"] in ("0", "1")]

    async def invoices_emailed(self) -> int:
        return int((await self.control.get("/_sandbox/invoices")).json()["emailed"])

    async def behave(self, **switches: Any) -> None:
        assert (await self.control.post("/_sandbox/behaviour", json=switches)).status_code == 200

    async def contacts(self) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = (await self.control.get("/_sandbox/contacts")).json()["contacts"]
        return found


# ---------------------------------------------------------------------------------------------------------------
# Sell records


def stages() -> list[ChangeEvent]:
    return [
        event("stage", OPEN, 1, "created", name="Qualified", category="qualified", pipeline_id=1),
        event("stage", WON, 1, "created", name="Won", category="won", pipeline_id=1),
        event("stage", LOST, 1, "created", name="Lost", category="lost", pipeline_id=1),
    ]


def contact(contact_id: int, sequence: int = 1, **fields: Any) -> ChangeEvent:
    data = {"first_name": "Ada", "last_name": "Lovelace", "email": f"contact{contact_id}@example.org", **fields}
    return event("contact", contact_id, sequence, "created" if sequence == 1 else "updated", **data)


def deal(deal_id: int, sequence: int, stage: int, contact_id: int = 5, **fields: Any) -> ChangeEvent:
    data: dict[str, Any] = {
        "name": f"Deal {deal_id}",
        "contact_id": contact_id,
        "stage_id": stage,
        "currency": "USD",
        "last_stage_change_at": WON_AT,
        "created_at": datetime(2026, 11, 1, tzinfo=UTC),
        **fields,
    }
    return event("deal", deal_id, sequence, "created" if sequence == 1 else "updated", **data)


def order(order_id: int, deal_id: int, sequence: int = 1, **fields: Any) -> ChangeEvent:
    data = {"deal_id": deal_id, "discount": Decimal(0), "created_at": datetime(2026, 11, 20, 9, tzinfo=UTC), **fields}
    return event("order", order_id, sequence, "created" if sequence == 1 else "updated", **data)


def line(
    line_id: int, order_id: int, deal_id: int, product_id: int | None, price: str, quantity: int, **fields: Any
) -> ChangeEvent:
    data: dict[str, Any] = {
        "order_id": order_id,
        "deal_id": deal_id,
        "product_id": product_id,
        "name": f"Product {product_id}" if product_id is not None else f"Service {line_id}",
        "sku": f"SKU-{product_id}" if product_id is not None else "",
        "quantity": Decimal(quantity),
        "price": Decimal(price),
        "value": Decimal(price) * quantity,
        "currency": "USD",
        **fields,
    }
    return event("line_item", line_id, 1, "created", **data)
