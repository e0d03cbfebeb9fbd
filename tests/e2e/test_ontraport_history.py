"""Sell deals, orders and notes as Ontraport purchase history and notes, end to end: the daemon against the three
sandboxes over loopback with a real SQLite file. A deal through its stages to won is exactly one logged purchase
with its products and total, also when its events are delivered twice and after a SIGKILL in the middle of logging
it (a real `syncd run` process); reopened, the purchase is voided; a deal read before its contact is logged after
the contact, never orphaned; a note on a lead follows it through update and delete. No invoice is ever e-mailed
(the suite's own guard checks every test)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from syncd.commands.cli import main
from syncd.daemon import EXIT_OK
from syncd.sandbox.sell.history import item
from tests.e2e.world import World, person, world
from tests.support import Processes, wait_until

STREAMS = ("leads", "contacts", "deals", "stages", "orders", "line_items", "notes")
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
STAGES = [
    {"id": n, "name": name, "category": category, "active": True, "position": n, "pipeline_id": 1}
    for n, name, category in ((1, "Incoming", "incoming"), (2, "Qualified", "qualified"), (4, "Won", "won"),
                              (5, "Lost", "lost"))
]  # fmt: skip
PRODUCTS = [(1001, "Pro licence", "249.00", 2), (1002, "Onboarding", "300.00", 1), (1003, "Support hours", "25.00", 4)]
TOTAL = "898.00"  # 2 × 249 + 300 + 4 × 25
EMAIL = "contact5@example.org"
PURCHASES = '\n[sinks.ontraport.purchases]\nsettle = "100ms"\n'


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def wire(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def deal(sequence: int, stage: int, minutes: int, action: str = "updated", **fields: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": 77, "name": "Pro for Lovelace", "value": "1348.00", "currency": "EUR", "hot": False,
        "stage_id": stage, "contact_id": 5, "organization_id": None, "last_stage_change_at": wire(at(minutes)),
        "created_at": wire(at(0)), "tags": [], "custom_field_values": [],
    }  # fmt: skip
    data.update(fields)
    return item("deal", data, action=action, sequence=sequence, event_time=at(minutes))


def order_items(minutes: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    order = {"id": 50, "deal_id": 77, "discount": 0, "created_at": wire(at(minutes))}
    lines = [
        item(
            "line_item",
            {"id": 60 + n, "order_id": 50, "deal_id": 77, "product_id": pid, "name": name, "sku": f"SKU-{pid}",
             "description": "", "quantity": quantity, "price": price,
             "value": f"{float(price) * quantity:.2f}", "variation": "0.00", "currency": "EUR"},
            event_time=at(minutes),
        )
        for n, (pid, name, price, quantity) in enumerate(PRODUCTS)
    ]  # fmt: skip
    return [item("order", order, event_time=at(minutes))], lines


def setup(w: World, *, contact: bool = True) -> None:
    w.append("stages", *(item("stage", s, event_time=at(-60)) for s in STAGES))
    if contact:
        w.append("contacts", person("contact", 5))


def won_deal(w: World) -> None:
    """Created in Incoming, qualified, won at minute 30; an order with three line items a minute later."""
    w.append("deals", deal(1, 1, 0, "created"), deal(2, 2, 10), deal(3, 4, 30))
    orders, lines = order_items(31)
    w.append("orders", *orders)
    w.append("line_items", *lines)


def transactions(w: World) -> list[dict[str, Any]]:
    return list(w.op.get("purchases")["transactions"])


def live(w: World) -> list[dict[str, Any]]:
    return [t for t in transactions(w) if t["status"] in ("0", "1")]


def lines_of(transaction: dict[str, Any]) -> list[tuple[str, str, str]]:
    offer = json.loads(transaction["offer_data"])
    return [(p["name"], p["quantity"], p["price"][0]["price"]) for p in offer["products"]]


def ontraport_id(w: World, email: str = EMAIL) -> str:
    return str(w.op_by_email()[email]["id"])


async def run(w: World) -> None:
    assert await w.run(w.config(streams=STREAMS, op=PURCHASES)) == EXIT_OK


async def cli(*args: str) -> int:
    """A `syncd` command, in a worker thread (it runs its own event loop)."""
    return await anyio.to_thread.run_sync(main, list(args))


# ---------------------------------------------------------------------------------------------------------------


async def test_a_deal_through_its_stages_to_won_is_one_logged_purchase_with_its_products(w: World) -> None:
    """Created, qualified, won, then an order of three line items: ONE logged (never charged) transaction on the
    deal's contact with the three products at their prices and quantities, the order's total, dated at the order
    (it came after the won change), its external order id, and no invoice e-mailed."""
    setup(w)
    won_deal(w)
    await run(w)
    [transaction] = transactions(w)
    assert (transaction["contact_id"], transaction["status"], transaction["total"]) == (ontraport_id(w), "1", TOTAL)
    assert (transaction["template_id"], transaction["external_order_id"]) == ("-1", "sell-order-50")
    assert transaction["date"] == str(int(at(31).timestamp()))
    assert lines_of(transaction) == [("Pro licence", "2", "249.00"), ("Onboarding", "1", "300.00"),
                                     ("Support hours", "4", "25.00")]  # fmt: skip
    assert len(w.op.get("purchases")["purchases"]) == 3
    assert w.op.get("invoices")["emailed"] == 0


async def test_delivered_twice_it_is_still_one_purchase(w: World) -> None:
    """The same Firehose items served again are absorbed, and a replay of every stored event to Ontraport finds the
    purchase logged: still one transaction, never a second sale."""
    setup(w)
    won_deal(w)
    await run(w)
    won_deal(w)  # the same items again
    await run(w)
    config = w.config_file(streams=STREAMS, op=PURCHASES)
    assert await cli("replay", "--config", str(config), "--sink", "ontraport", "--since", "2000-01-01T00:00:00Z") == 0
    await run(w)
    assert [(t["external_order_id"], t["total"]) for t in transactions(w)] == [("sell-order-50", TOTAL)]
    assert w.op.get("state")["requests"]["POST /1/transaction/processManual"] == {"200": 1}


async def test_won_then_reopened_voids_the_purchase_and_won_again_logs_it_anew(w: World) -> None:
    """A deal that leaves won has its purchase voided (never left logged); won again, it is logged again."""
    setup(w)
    won_deal(w)
    await run(w)
    w.append("deals", deal(4, 2, 40))
    await run(w)
    assert [t["status"] for t in transactions(w)] == ["4"]
    assert live(w) == []
    w.append("deals", deal(5, 4, 50))
    await run(w)
    assert [t["status"] for t in transactions(w)] == ["4", "1"]
    assert live(w)[0]["total"] == TOTAL


async def test_a_deal_read_before_its_contact_waits_and_is_logged_after_it(w: World) -> None:
    """A won deal whose contact Sell has not sent yet waits (reported, never failed, no contact made for it); once
    the contact comes and is written, the purchase is logged on that contact."""
    setup(w, contact=False)
    won_deal(w)
    await run(w)
    assert w.op_contacts() == [] and transactions(w) == []
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        waiting = conn.execute("SELECT key, on_key FROM waits WHERE sink = 'ontraport'").fetchall()
        dead = conn.execute("SELECT COUNT(*) FROM dead_letters WHERE sink = 'ontraport'").fetchone()
    assert waiting == [("deal:77", "contact:5")] and dead == (0,)
    w.append("contacts", person("contact", 5))
    with capture_logs() as logs:
        await run(w)
    done = [e["key"] for e in logs if e["event"] == "delivery_done" and e.get("sink") == "ontraport"]
    assert done.index("contact:5") < done.index("deal:77")
    [transaction] = transactions(w)
    assert transaction["contact_id"] == ontraport_id(w)
    assert len(w.op_contacts()) == 1


async def test_a_note_on_a_lead_follows_it_through_update_and_delete(w: World) -> None:
    """A note on a lead is an Ontraport note on that lead's contact (its text, Sell's time); its edit updates the
    same note; its delete deletes it."""
    w.append("leads", person("lead", 9))
    note = {"id": 12, "creator_id": 1, "content": "Call back on Tuesday", "resource_type": "lead", "resource_id": 9,
            "type": "regular", "created_at": wire(at(5))}  # fmt: skip
    w.append("notes", item("note", note, event_time=at(5)))
    await run(w)
    [written] = w.op.get("notes")["notes"]
    lead = w.op_by_email()["lead9@example.org"]
    assert (written["contact_id"], written["object_type_id"], written["data"]) == (lead["id"], "0", note["content"])
    assert (written["time"], written["author"]) == (str(int(at(5).timestamp())), "1")
    w.append("notes", item("note", {**note, "content": "Call back on Wednesday"}, sequence=2, action="updated"))
    await run(w)
    assert [(n["id"], n["data"]) for n in w.op.get("notes")["notes"]] == [(written["id"], "Call back on Wednesday")]
    w.append("notes", item("note", {"id": 12}, sequence=3, action="deleted"))
    await run(w)
    assert w.op.get("notes")["notes"] == []


def fault_counts(w: World) -> tuple[int, int]:
    """(hits, finished) of the one active Ontraport fault ((0, 0) when there is none)."""
    listed = w.op.get("faults")["faults"]
    return (int(listed[0]["hits"]), int(listed[0]["finished"])) if listed else (0, 0)


def test_a_sigkill_while_the_purchase_is_logged_still_leaves_one_purchase(w: World, processes: Processes) -> None:
    """`syncd run` SIGKILLed while Ontraport is logging the deal's purchase (the sale lands after the process died,
    its invoice id never read): the next run finds it by its external order id and keeps it, so the deal has
    exactly one logged purchase with its products."""
    setup(w)
    won_deal(w)
    config = w.tmp_path / "syncd.toml"
    text = w.config_text(streams=STREAMS, op=PURCHASES)
    config.write_text(text.replace('timeout = "2s"', 'timeout = "60s"', 2))  # a client that waits for its answer
    w.op.fault(path="/1/transaction/processManual", until_disconnect=True, complete=True)
    log = w.tmp_path / "killed.log"
    with log.open("wb") as out:
        proc = processes.syncd("run", "--config", str(config), stdout=out)
    wait_until(lambda: fault_counts(w)[0] >= 1 or proc.poll() is not None, timeout=60, what="the processManual call")
    assert proc.poll() is None, log.read_text()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    wait_until(lambda: fault_counts(w)[1] >= 1, timeout=60, what="the late sale to land")
    assert len(transactions(w)) == 1  # logged, answer lost
    w.op.clear_faults()
    final_log = w.tmp_path / "final.log"
    with final_log.open("wb") as out:
        final = processes.syncd("run", "--config", str(config), "--until-idle", stdout=out)
    assert final.wait(timeout=120) == 0, final_log.read_text()[-3000:]
    [transaction] = transactions(w)
    assert (transaction["status"], transaction["total"]) == ("1", TOTAL)
    assert transaction["external_order_id"] == "sell-order-50"
    assert w.op.get("state")["requests"]["POST /1/transaction/processManual"] == {"200": 1}
    assert w.op.get("invoices")["emailed"] == 0
