"""Sell deals and notes as SALESmanago external events, end to end (the daemon against the three sandboxes over
loopback, a real SQLite file): a deal through its stages to won is exactly one PURCHASE with its products, also
when its events are delivered twice; reopened, the PURCHASE goes; lost is a CANCELLED; a deal read before its
contact waits and goes out right after the contact, never creating it; notes as OTHER events when asked; all of it
under every reading of SALESmanago's unconfirmed rules."""

from __future__ import annotations

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
from syncd.daemon import EXIT_OK, Daemon
from syncd.health import problems
from syncd.runtime import Runtime
from syncd.sandbox.sell.history import item
from tests.e2e.world import World, person, world
from tests.support import Processes, await_until, wait_until

STREAMS = ("leads", "contacts", "deals", "stages", "orders", "line_items", "notes")
# Ontraport (on beside SALESmanago) logs a won deal once its line items had `settle` to arrive (5 s by default, at
# least 1 s): each run here stopped only after it. What these tests check is SALESmanago's events.
PURCHASES = '\n[sinks.ontraport.purchases]\nsettle = "100ms"\n'
T0 = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=2)
STAGES = [
    {"id": n, "name": name, "category": category, "active": True, "position": n, "pipeline_id": 1}
    for n, name, category in ((1, "Incoming", "incoming"), (2, "Qualified", "qualified"), (4, "Won", "won"),
                              (5, "Lost", "lost"))
]  # fmt: skip
PRODUCTS = [(1001, "Pro licence", "249.00", 2), (1002, "Onboarding", "300.00", 1), (1003, "Support hours", "25.00", 4)]
EMAIL = "contact5@example.org"


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


def wire(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


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
    orders = [item("order", order, event_time=at(minutes))]
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
    return orders, lines


def setup(w: World, *, contact: bool = True) -> None:
    w.append("stages", *(item("stage", s, event_time=at(-60)) for s in STAGES))
    if contact:
        w.append("contacts", person("contact", 5))


def won_deal(w: World) -> None:
    """Created in Incoming, qualified, won at minute 30; an order with three line items right after."""
    w.append("deals", deal(1, 1, 0, "created"), deal(2, 2, 10), deal(3, 4, 30))
    orders, lines = order_items(31)
    w.append("orders", *orders)
    w.append("line_items", *lines)


def events(w: World, email: str = EMAIL) -> list[dict[str, Any]]:
    return list(w.sm.get("events", email=email)["events"])


def by_external(w: World, email: str = EMAIL) -> dict[str, list[dict[str, Any]]]:
    found: dict[str, list[dict[str, Any]]] = {}
    for event in events(w, email):
        found.setdefault(event.get("externalId", ""), []).append(event)
    return found


async def cli(*args: str) -> int:
    """A `syncd` command, in a worker thread (it runs its own event loop)."""
    return await anyio.to_thread.run_sync(main, list(args))


async def run(w: World, **extra: str) -> None:
    assert await w.run(w.config(streams=STREAMS, op=PURCHASES, **extra)) == EXIT_OK


# ---------------------------------------------------------------------------------------------------------------


async def test_a_deal_through_its_stages_to_won_is_one_purchase_with_its_products(w: World) -> None:
    """Created -> OFFER; through Qualified to Won -> exactly one PURCHASE, filled like the e-commerce plugin: the
    total as value, the product ids, names and quantities, the won time, the shop id and the deal's name; the
    order's line items that came after the won change update that same PURCHASE."""
    setup(w)
    won_deal(w)
    await run(w)
    found = by_external(w)
    assert sorted(found) == ["sell-deal-77-created", "sell-deal-77-won"]
    [purchase] = found["sell-deal-77-won"]
    [offer] = found["sell-deal-77-created"]
    assert (offer["contactExtEventType"], offer["date"]) == ("OFFER", ms(at(0)))
    assert {k: purchase[k] for k in ("contactExtEventType", "value", "products", "detail1", "detail2", "detail3")} == {
        "contactExtEventType": "PURCHASE",
        "value": 1348,
        "products": "1001,1002,1003",
        "detail1": "Pro licence,Onboarding,Support hours",
        "detail2": "EUR",
        "detail3": "2/1/4",
    }
    assert (purchase["date"], purchase["location"], purchase["description"]) == (
        ms(at(30)), "zendesk_sell", "Pro for Lovelace",
    )  # fmt: skip


async def test_delivered_twice_it_is_still_one_purchase(w: World, tmp_path: Path) -> None:
    """The same Firehose items served again are absorbed, and a replay of every stored event to SALESmanago
    updates the events it added (same eventIds) instead of adding second ones."""
    setup(w)
    won_deal(w)
    await run(w)
    first = {e["externalId"]: e["eventId"] for e in events(w)}
    won_deal(w)  # the same items again
    await run(w)
    config = w.config_file(streams=STREAMS, op=PURCHASES)
    assert await cli("replay", "--config", str(config), "--sink", "salesmanago", "--since", "2000-01-01T00:00:00Z") == 0
    with capture_logs() as logs:
        await run(w)
    assert {e["externalId"]: e["eventId"] for e in events(w)} == first
    replayed = [e for e in logs if e["event"] == "delivery_done" and e.get("key") == "deal:77"]
    assert replayed and "updated PURCHASE sell-deal-77-won" in replayed[-1]["detail"]


async def test_won_then_reopened_removes_the_purchase_and_won_again_adds_it_back(w: World) -> None:
    """A deal that leaves won has its PURCHASE deleted (the OFFER stays); won again, a new PURCHASE with the new
    won time."""
    setup(w)
    won_deal(w)
    await run(w)
    w.append("deals", deal(4, 2, 40))
    await run(w)
    assert sorted(by_external(w)) == ["sell-deal-77-created"]
    assert w.sm.get("state")["events_deleted"] == 1
    w.append("deals", deal(5, 4, 50))
    await run(w)
    [purchase] = by_external(w)["sell-deal-77-won"]
    assert purchase["date"] == ms(at(50))


async def test_a_lost_deal_is_a_cancelled_event(w: World) -> None:
    """Lost -> CANCELLED at the lost time; reopened, the CANCELLED stays (it happened); no PURCHASE ever."""
    setup(w)
    w.append("deals", deal(1, 1, 0, "created"), deal(2, 5, 20, loss_reason_id=3))
    await run(w)
    [cancelled] = by_external(w)["sell-deal-77-lost"]
    assert (cancelled["contactExtEventType"], cancelled["date"], cancelled["value"]) == ("CANCELLED", ms(at(20)), 1348)
    w.append("deals", deal(3, 2, 25))
    await run(w)
    assert sorted(by_external(w)) == ["sell-deal-77-created", "sell-deal-77-lost"]


async def test_a_deal_read_before_its_contact_waits_and_follows_it(w: World) -> None:
    """A won deal whose contact Sell has not sent yet waits (reported, never failed, nothing created in
    SALESmanago); once the contact comes and is written, the deal's events follow on that contact."""
    setup(w, contact=False)
    won_deal(w)
    await run(w)
    assert EMAIL not in w.sm_contacts()
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        waiting = conn.execute("SELECT key, on_key FROM waits WHERE sink = 'salesmanago'").fetchall()
        dead = conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone()
    assert waiting == [("deal:77", "contact:5")] and dead == (0,)
    w.append("contacts", person("contact", 5))
    with capture_logs() as logs:
        await run(w)
    assert sorted(by_external(w)) == ["sell-deal-77-created", "sell-deal-77-won"]
    done = [e["key"] for e in logs if e["event"] == "delivery_done" and e.get("sink") == "salesmanago"]
    assert done.index("contact:5") < done.index("deal:77")
    assert w.sm.get("state")["requests_by_method"].get("contact/upsert", 0) == 1


async def test_a_deal_and_its_contact_in_one_run_go_contact_first_at_once(w: World) -> None:
    """Deals read before the contact stream catches up wait; the contact's write releases them at once: every
    wait ends with the deal delivered in the same run, on the one contact written."""
    setup(w, contact=False)
    won_deal(w)
    w.append("contacts", person("contact", 5))
    w.sell.fault(path="/v3/contacts/stream", latency=0.5, times=1)
    with capture_logs() as logs:
        await run(w)
    names = [(e["event"], e.get("key")) for e in logs if e.get("sink") == "salesmanago"]
    assert ("delivery_waiting", "deal:77") in names
    assert names.index(("delivery_done", "contact:5")) < names.index(("delivery_done", "deal:77"))
    assert sorted(by_external(w)) == ["sell-deal-77-created", "sell-deal-77-won"]
    assert [c for c in w.sm_contacts() if c == EMAIL] == [EMAIL]


async def test_notes_become_other_events_updated_and_deleted_with_them(w: World) -> None:
    """With notes = "OTHER", a note on a lead is one OTHER event on that lead's contact; its edit updates the same
    event; its delete removes it. Without the setting, notes make no events."""
    w.append("leads", person("lead", 9))
    note = {"id": 12, "creator_id": 1, "content": "Call back on Tuesday", "resource_type": "lead", "resource_id": 9,
            "type": "regular", "created_at": wire(at(5))}  # fmt: skip
    w.append("notes", item("note", note, event_time=at(5)))
    await run(w)
    assert events(w, "lead9@example.org") == []
    extra = '[sinks.salesmanago.events]\nnotes = "OTHER"'
    config = w.config_file(streams=STREAMS, sm=extra, op=PURCHASES)
    assert await cli("replay", "--config", str(config), "--sink", "salesmanago", "--record", "note:12") == 0
    await run(w, sm=extra)
    [added] = events(w, "lead9@example.org")
    assert (added["contactExtEventType"], added["description"]) == ("OTHER", "Call back on Tuesday")
    assert added["date"] == ms(at(5))
    edit = {**note, "content": "Call back on Wednesday"}
    w.append("notes", item("note", edit, action="updated", sequence=2, event_time=at(6)))
    await run(w, sm=extra)
    [edited] = events(w, "lead9@example.org")
    assert (edited["eventId"], edited["description"]) == (added["eventId"], "Call back on Wednesday")
    w.append("notes", item("note", {"id": 12}, action="deleted", sequence=3, event_time=at(7)))
    await run(w, sm=extra)
    assert events(w, "lead9@example.org") == []


@pytest.mark.parametrize(
    "behaviour",
    [
        {"location_rule": "feed36", "value_decimals": "refuse", "delete_external_id": "refuse", "list_event_id": "id"},
        {"location_rule": "wordpress", "value_decimals": "round", "delete_external_id": "newest"},
        {"location_rule": "length", "batch_invalid": "partial", "delete_external_id": "all", "list_event_id": "id"},
        {"batch_invalid": "reject_all", "value_decimals": "refuse", "list_event_id": "eventId"},
    ],
)
async def test_every_reading_of_salesmanagos_rules(w: World, behaviour: dict[str, str]) -> None:
    """Under each reading of the location rule, value decimals, delete by externalId, batch refusals and the
    listed event id: a won deal whose total has three decimals is one PURCHASE (value rounded to 2), a lost
    write is found again and taken over (no second event), reopening deletes it."""
    w.sm.post("behaviour", behaviour)
    setup(w)
    w.append("deals", deal(1, 1, 0, "created", value=None), deal(2, 4, 30, value=None))
    orders, lines = order_items(31)
    orders[0]["data"]["discount"] = 10
    lines = lines[:1]
    lines[0]["data"].update(quantity=1, price="33.33", value="33.33")
    w.append("orders", *orders)
    w.append("line_items", *lines)
    # The first event write lands but its answer is lost (the client gives up): the retry must not add it twice.
    w.sm.fault(path="/api/contact/batchAddContactExtEvent", latency_after=3, times=1)
    with capture_logs() as logs:
        await run(w)
    assert any(e["event"] == "delivery_failed" and e.get("key") == "deal:77" for e in logs)
    assert w.sm.get("state")["requests_by_method"]["contact/batchAddContactExtEvent"] == 1
    found = by_external(w)
    assert sorted(found) == ["sell-deal-77-created", "sell-deal-77-won"]
    assert [e["value"] for e in found["sell-deal-77-won"]] == [30]  # 33.33 less 10 % = 29.997
    w.append("deals", deal(3, 2, 40, value=None))
    await run(w)
    assert sorted(by_external(w)) == ["sell-deal-77-created"]


def test_a_sigkill_while_the_events_are_added_still_leaves_one_purchase(w: World, processes: Processes) -> None:
    """`syncd run` SIGKILLed after SALESmanago added the deal's events but before their answer was read (the
    process dies waiting for it): the next run finds them by externalId and takes them over, so the deal has exactly
    one OFFER and one PURCHASE, complete with its products."""
    setup(w)
    won_deal(w)
    # A client that waits for its answer (the default timeout of these tests gives up after 2 s).
    config = w.tmp_path / "syncd.toml"
    text = w.config_text(streams=STREAMS, op=PURCHASES)
    config.write_text(text.replace('timeout = "2s"', 'timeout = "60s"', 1))
    w.sm.fault(path="/api/contact/batchAddContactExtEvent", latency_after=60, times=1)
    log = w.tmp_path / "killed.log"
    with log.open("wb") as out:
        proc = processes.syncd("run", "--config", str(config), stdout=out)
    wait_until(lambda: len(events(w)) >= 2 or proc.poll() is not None, timeout=60, what="the events to be added")
    assert proc.poll() is None, log.read_text()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert sorted(by_external(w)) == ["sell-deal-77-created", "sell-deal-77-won"]  # added, answer never read
    w.sm.clear_faults()
    final_log = w.tmp_path / "final.log"
    with final_log.open("wb") as out:
        final = processes.syncd("run", "--config", str(config), "--until-idle", stdout=out)
    assert final.wait(timeout=120) == 0, final_log.read_text()[-3000:]
    found = by_external(w)
    assert {name: len(copies) for name, copies in found.items()} == {"sell-deal-77-created": 1, "sell-deal-77-won": 1}
    assert found["sell-deal-77-won"][0]["products"] == "1001,1002,1003"


async def test_a_deal_salesmanago_cannot_take_is_dead_lettered_with_the_reason(w: World) -> None:
    """A won deal whose value has 20 integer digits is dead-lettered with a reason that says so, before any call;
    the other deal of the same contact goes out."""
    setup(w)
    w.append("deals", deal(1, 4, 30, "created", value="12345678901234567890.00"))
    other = deal(1, 4, 31, "created")
    other["data"]["id"] = 78
    w.append("deals", other)
    await run(w)
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        letters = conn.execute("SELECT key, reason FROM dead_letters WHERE sink = 'salesmanago'").fetchall()
    assert letters == [("deal:77", "SALESmanago cannot take this deal: the deal's value 12345678901234567890.00 is"
                        " beyond what SALESmanago takes (under 10^19)")]  # fmt: skip
    assert sorted(by_external(w)) == ["sell-deal-78-created", "sell-deal-78-won"]


async def test_a_named_stage_renamed_in_sell_is_mapping_drift_until_it_is_back(w: World) -> None:
    """A stage `[sinks.salesmanago.events.stages]` names, renamed in Sell, is mapping drift: logged, in the store
    for `syncd status`, and in readiness; deals keep flowing; renaming it back resolves it."""
    setup(w)
    extra = '[sinks.salesmanago.events.stages]\n"Qualified" = "MEETING"'
    daemon = Daemon(w.config(streams=STREAMS, sm=extra, op=PURCHASES), handle_signals=False)
    key = 'sinks.salesmanago.events.stages."Qualified"'

    def rename(name: str, sequence: int) -> None:
        stage = {**STAGES[1], "name": name}
        w.append("stages", item("stage", stage, action="updated", sequence=sequence, event_time=datetime.now(UTC)))

    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            runtime: Runtime = await tg.start(daemon.run)
            await await_until(lambda: _true(all(p.state.at_top for p in runtime.pollers)), deadline=20, what="top")
            assert not problems(runtime)
            rename("Qualified (old)", 2)
            await await_until(lambda: _true(bool(runtime.drift)), deadline=20, what="drift")
            assert any(key in p for p in problems(runtime))
            with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
                assert conn.execute("SELECT scope, subject FROM drift").fetchall() == [("sell", key)]
            w.append("deals", deal(1, 4, 30, "created"))
            await await_until(lambda: _true("sell-deal-77-won" in by_external(w)), deadline=20, what="deals flowing")
            rename("Qualified", 3)
            await await_until(lambda: _true(not runtime.drift), deadline=20, what="drift resolved")
            daemon.stop()
    drift = [e for e in logs if e["event"] in ("mapping_drift", "mapping_drift_resolved")]
    assert [e["event"] for e in drift] == ["mapping_drift", "mapping_drift_resolved"]
    assert all(key in e["problem"] for e in drift)


async def _true(value: bool) -> bool:
    return value


async def test_a_deal_in_a_stage_older_than_the_firehose_waits_until_a_backfill_of_stages_reads_it(w: World) -> None:
    """The stages' events have expired (they exist only in the Core API): a won deal in one waits on the stage,
    saying that `syncd backfill --streams stages` reads it, never failing; that backfill reads the stages and the
    deal's events go out."""
    w.append("stages", *(item("stage", s, event_time=at(-60)) for s in STAGES))
    assert w.box is not None and w.box.expire("stages") == len(STAGES)
    w.append("contacts", person("contact", 5))
    won_deal(w)
    config = w.config(streams=STREAMS, op=PURCHASES)
    assert await w.run(config) == EXIT_OK
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        waits = conn.execute("SELECT sink, on_key, reason FROM waits WHERE key = 'deal:77' ORDER BY sink").fetchall()
        assert conn.execute("SELECT COUNT(*) FROM dead_letters").fetchone() == (0,)
    assert [(sink, on) for sink, on, _ in waits] == [("ontraport", "stage:4"), ("salesmanago", "stage:4")]
    assert all("syncd backfill --streams stages" in reason for _, _, reason in waits)
    assert EMAIL in w.sm_contacts() and by_external(w) == {}
    assert await Daemon(config, until_idle=True, handle_signals=False, backfill=["stages"]).run() == EXIT_OK
    assert sorted(by_external(w)) == ["sell-deal-77-created", "sell-deal-77-won"]
