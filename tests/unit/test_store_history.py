"""The store's history parts on a real SQLite file, through the ledger: what a record belongs to (found through an
index, kept by bare deletes, filled in for records an older version stored), keys waiting on other keys (recorded,
released by the awaited key's outcome, by a link written after the claim, or by a change of the awaited record,
and left out of an idle check when nothing can release them), and mapping drift."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from state import Store
from syncd.ledger import Ledger
from syncd.work import Dead, Deferred, Done, Retry, Skipped, Waiting
from tests.factories import event

SINK = "salesmanago"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def ledger(tmp_path: Path, clock: Clock) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_path / "syncd.db", sinks=(SINK,), clock=clock)
    yield opened
    await opened.close()


def rows(path: Path, sql: str, params: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql, params).fetchall()


def due(ledger: Ledger, key: str) -> float | None:
    found = rows(ledger.path, "SELECT due_at FROM outbox WHERE sink = ? AND key = ?", (SINK, key))
    return float(found[0][0]) if found else None  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------------------------
# references


async def order_and_items(ledger: Ledger) -> None:
    await ledger.ingest("orders", [event("order", 5, 1, "created", deal_id=77)], position="o", at_top=True)
    items = [
        event("line_item", 11, 1, "created", order_id=5, deal_id=77, name="Pro"),
        event("line_item", 12, 1, "created", order_id=5, deal_id=77, name="Basic"),
        event("line_item", 13, 1, "created", order_id=6, deal_id=78, name="Other deal"),
        event("line_item", 14, 1, "created", order_id=9, name="No deal named"),
    ]
    await ledger.ingest("line_items", items, position="l", at_top=True)


async def test_a_deals_orders_and_line_items_are_found_by_reference(ledger: Ledger) -> None:
    """Orders and line items are found by the deal they belong to (a line item naming no deal by its order)."""
    await order_and_items(ledger)
    assert [s.record_id for s in await ledger.belonging_to("line_item", ["deal:77"])] == [11, 12]
    assert [s.record_id for s in await ledger.belonging_to("order", ["deal:77"])] == [5]
    assert [s.record_id for s in await ledger.belonging_to("line_item", ["order:9"])] == [14]
    assert await ledger.belonging_to("line_item", ["deal:1"]) == []


async def test_looking_up_by_reference_uses_the_index(ledger: Ledger) -> None:
    """The look-up walks the reference index instead of scanning every record of the kind."""
    plan = rows(
        ledger.path,
        "EXPLAIN QUERY PLAN SELECT kind, record_id FROM records WHERE ref IN (?) AND ref <> '' AND kind = ?",
        ("deal:77", "line_item"),
    )
    assert any("records_ref" in str(step[-1]) for step in plan), plan


async def test_a_bare_delete_keeps_what_the_record_belonged_to(ledger: Ledger) -> None:
    """A delete carrying only the id keeps the record's reference, so the deal's deleted line items are found."""
    await order_and_items(ledger)
    await ledger.ingest("line_items", [event("line_item", 11, 2, "deleted")], position="l2", at_top=True)
    found = await ledger.belonging_to("line_item", ["deal:77"])
    assert [(s.record_id, s.deleted) for s in found] == [(11, True), (12, False)]


async def test_a_change_moves_a_record_to_what_it_belongs_to_now(ledger: Ledger) -> None:
    """A line item moved to another order and deal is found under the new deal only."""
    await order_and_items(ledger)
    moved = event("line_item", 12, 2, order_id=6, deal_id=78, name="Basic")
    await ledger.ingest("line_items", [moved], position="l2", at_top=True)
    assert [s.record_id for s in await ledger.belonging_to("line_item", ["deal:78"])] == [12, 13]


async def test_references_of_records_stored_by_an_older_version_are_filled_in(tmp_path: Path) -> None:
    """Records stored before references were kept (NULL) get theirs when the ledger opens for writing."""
    path = tmp_path / "syncd.db"
    async with await Ledger.open(path, sinks=(SINK,)) as ledger:
        await order_and_items(ledger)
        await ledger.ingest("deals", [event("deal", 77, 1, "created", contact_id=3)], position="d", at_top=True)
        note = event("note", 4, 1, "created", resource_type="lead", resource_id=9)
        await ledger.ingest("notes", [note], position="n", at_top=True)
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE records SET ref = NULL")
    async with await Ledger.open(path, sinks=(SINK,), readonly=True) as reader:
        assert await reader.belonging_to("line_item", ["deal:77"]) == []  # a reader changes nothing
    async with await Ledger.open(path, sinks=(SINK,)) as ledger:
        assert [s.record_id for s in await ledger.belonging_to("line_item", ["deal:77"])] == [11, 12]
        assert [s.record_id for s in await ledger.belonging_to("deal", ["contact:3"])] == [77]
        assert [s.record_id for s in await ledger.belonging_to("note", ["lead:9"])] == [4]
    assert rows(path, "SELECT COUNT(*) FROM records WHERE ref IS NULL") == [(0,)]


# ---------------------------------------------------------------------------------------------------------------
# waits


async def queue(ledger: Ledger, clock: Clock, *keys: tuple[str, int]) -> None:
    """Ingest a change of each record (queued for SINK), then let a second pass."""
    for n, (kind, record_id) in enumerate(keys):
        page = [event(kind, record_id, 1, "created", email=f"{kind}{record_id}@x.org")]
        await ledger.ingest(f"{kind}s", page, position=f"p{n}", at_top=True)
    clock.now += 1


async def test_a_waiting_key_is_due_at_its_recheck_and_counts_no_attempt(ledger: Ledger, clock: Clock) -> None:
    """Waiting records what the key waits on and why, puts it back at `at` unclaimed, with no attempt counted."""
    await queue(ledger, clock, ("lead", 1))
    assert await ledger.claim(SINK, 10) == ["lead:1"]
    await ledger.commit(SINK, [Waiting("lead:1", "contact:2", "contact:2 is not in SALESmanago yet", clock.now + 5)])
    assert rows(ledger.path, "SELECT attempts, claimed, due_at, last_error FROM outbox") == [
        (0, 0, clock.now + 5, "contact:2 is not in SALESmanago yet")
    ]
    assert await ledger.claim(SINK, 10) == []
    work = (await ledger.load_work(SINK, ["lead:1"]))[0]
    assert work.waiting is not None and (work.waiting.on, work.waiting.checks) == ("contact:2", 1)
    status = (await ledger.store.status()).sinks[0]
    assert (status.waiting, [w.key for w in status.waits], status.waits[0].wait.on) == (1, ["lead:1"], "contact:2")


async def test_waiting_again_on_the_same_key_counts_checks_and_keeps_since(ledger: Ledger, clock: Clock) -> None:
    """A key found still waiting on the same key counts one check more and keeps its `since`; another key starts
    afresh."""
    await queue(ledger, clock, ("lead", 1))
    for n, on in enumerate(("contact:2", "contact:2", "stage:4")):
        clock.now += 10
        assert await ledger.claim(SINK, 10) == ["lead:1"]
        await ledger.commit(SINK, [Waiting("lead:1", on, "not yet", clock.now)])
        waits = rows(ledger.path, "SELECT on_key, since, checks FROM waits")
        expected = [("contact:2", 1_000_011.0, n + 1)] if on == "contact:2" else [("stage:4", clock.now, 1)]
        assert waits == expected


@pytest.mark.parametrize(
    "finish",
    [
        pytest.param(lambda seqs: Done("contact:2", seqs, remote_id="c-2"), id="done"),
        pytest.param(lambda seqs: Skipped("contact:2", seqs, "unchanged"), id="skipped"),
        pytest.param(lambda seqs: Dead("contact:2", seqs, "refused"), id="dead"),
    ],
)
async def test_the_awaited_keys_finishing_outcome_releases_its_waiters_at_once(
    ledger: Ledger, clock: Clock, finish: object
) -> None:
    """When the awaited key's outcome is committed, every key waiting on it is due at once (its writer decides
    again); the waits stay until the waiter's own outcome."""
    await queue(ledger, clock, ("lead", 1), ("lead", 3), ("contact", 2))
    claimed = await ledger.claim(SINK, 10)
    works = {w.key: w for w in await ledger.load_work(SINK, claimed)}
    later = clock.now + 300
    await ledger.commit(SINK, [Waiting("lead:1", "contact:2", "x", later), Waiting("lead:3", "contact:2", "x", later)])
    clock.now += 1
    await ledger.commit(SINK, [finish(works["contact:2"].seqs)])  # type: ignore[operator]
    assert (due(ledger, "lead:1"), due(ledger, "lead:3")) == (clock.now, clock.now)
    assert sorted(await ledger.claim(SINK, 10)) == ["lead:1", "lead:3"]
    assert rows(ledger.path, "SELECT COUNT(*) FROM waits") == [(2,)]


async def test_a_waiters_own_outcome_ends_its_wait(ledger: Ledger, clock: Clock) -> None:
    """A waiting key that is then written, fails and is retried, or is deferred (on time: a deal waiting for its
    line items), waits no more: a deferred key is not blocked for an idle check."""
    await queue(ledger, clock, ("lead", 1), ("lead", 3), ("lead", 5))
    await ledger.claim(SINK, 10)
    now = clock.now
    await ledger.commit(SINK, [Waiting(f"lead:{n}", "contact:2", "x", now) for n in (1, 3, 5)])
    works = {w.key: w for w in await ledger.load_work(SINK, await ledger.claim(SINK, 10))}
    later = clock.now + 300
    outcomes = [Done("lead:1", works["lead:1"].seqs), Retry("lead:3", later, "boom"), Deferred("lead:5", later, "x")]
    await ledger.commit(SINK, outcomes)
    assert rows(ledger.path, "SELECT COUNT(*) FROM waits") == [(0,)]
    assert await ledger.pending(blocked=False) == 2


async def test_a_link_written_after_the_claim_makes_a_waiter_due_at_once(ledger: Ledger, clock: Clock) -> None:
    """The awaited key written while the waiter was in flight (its writer looked too early): the Waiting that
    follows makes the waiter due at once instead of after the recheck."""
    await queue(ledger, clock, ("lead", 1), ("contact", 2))
    assert await ledger.claim(SINK, 1) == ["lead:1"]
    works = {w.key: w for w in await ledger.load_work(SINK, await ledger.claim(SINK, 1))}
    clock.now += 1
    await ledger.commit(SINK, [Done("contact:2", works["contact:2"].seqs, remote_id="c-2")])
    clock.now += 1
    await ledger.commit(SINK, [Waiting("lead:1", "contact:2", "not yet", clock.now + 300)])
    assert due(ledger, "lead:1") == clock.now


async def test_a_link_written_before_the_claim_does_not_release(ledger: Ledger, clock: Clock) -> None:
    """A link the writer could already see releases nothing: the waiter waits for its recheck (no busy loop)."""
    await queue(ledger, clock, ("contact", 2), ("lead", 1))
    works = {w.key: w for w in await ledger.load_work(SINK, await ledger.claim(SINK, 1))}
    await ledger.commit(SINK, [Done("contact:2", works["contact:2"].seqs, remote_id="c-2")])
    clock.now += 1
    assert await ledger.claim(SINK, 1) == ["lead:1"]
    await ledger.commit(SINK, [Waiting("lead:1", "contact:2", "not yet", clock.now + 300)])
    assert due(ledger, "lead:1") == clock.now + 300


async def test_a_change_of_the_awaited_record_releases_its_waiters(ledger: Ledger, clock: Clock) -> None:
    """A key waiting on a Sell record (a deal on its stage) is due at once when a change of that record is
    stored."""
    await queue(ledger, clock, ("lead", 1))
    await ledger.claim(SINK, 1)
    await ledger.commit(SINK, [Waiting("lead:1", "stage:4", "stage 4 is not known yet", clock.now + 300)])
    clock.now += 1
    await ledger.ingest("stages", [event("stage", 5, 1, "created", name="Other")], position="s1", at_top=True)
    assert due(ledger, "lead:1") == clock.now + 299
    clock.now += 1
    await ledger.ingest("stages", [event("stage", 4, 1, "created", name="Won")], position="s2", at_top=True)
    assert due(ledger, "lead:1") == clock.now


async def test_blocked_waiters_do_not_count_for_an_idle_check(ledger: Ledger, clock: Clock) -> None:
    """Deliveries of a key waiting on a key with nothing queued are left out of `pending(blocked=False)`; while
    the awaited key is queued (it may release the waiter), or once the waiter is due, they count."""
    await queue(ledger, clock, ("lead", 1), ("contact", 2))
    assert await ledger.claim(SINK, 1) == ["lead:1"]
    await ledger.commit(SINK, [Waiting("lead:1", "contact:2", "not yet", clock.now + 300)])
    assert (await ledger.pending(), await ledger.pending(blocked=False)) == (2, 2)
    works = {w.key: w for w in await ledger.load_work(SINK, await ledger.claim(SINK, 1))}
    await ledger.commit(SINK, [Dead("contact:2", works["contact:2"].seqs, "refused")])
    assert await ledger.pending(blocked=False) == 1  # released: due now
    assert await ledger.claim(SINK, 1) == ["lead:1"]
    await ledger.commit(SINK, [Waiting("lead:1", "contact:2", "not yet", clock.now + 300)])
    assert (await ledger.pending(), await ledger.pending(blocked=False)) == (1, 0)
    clock.now += 301
    assert await ledger.pending(blocked=False) == 1


async def test_waits_survive_a_restart(tmp_path: Path, clock: Clock) -> None:
    """A wait is in the file: after a restart the waiter is still waiting, and still released by the awaited key."""
    path = tmp_path / "syncd.db"
    async with await Ledger.open(path, sinks=(SINK,), clock=clock) as ledger:
        await queue(ledger, clock, ("lead", 1), ("contact", 2))
        await ledger.claim(SINK, 1)
        await ledger.commit(SINK, [Waiting("lead:1", "contact:2", "not yet", clock.now + 300)])
    async with await Ledger.open(path, sinks=(SINK,), clock=clock) as ledger:
        works = {w.key: w for w in await ledger.load_work(SINK, await ledger.claim(SINK, 5))}
        assert list(works) == ["contact:2"]
        await ledger.commit(SINK, [Done("contact:2", works["contact:2"].seqs, remote_id="c")])
        assert await ledger.claim(SINK, 5) == ["lead:1"]


# ---------------------------------------------------------------------------------------------------------------
# drift


async def test_drift_is_kept_per_scope_with_its_first_sighting(ledger: Ledger, clock: Clock) -> None:
    """A scope's findings replace what it found before (the rest is resolved) and keep when each was first seen;
    a destination reports and clears single subjects; status shows all of it."""
    await ledger.set_drift("sell", {"a": "gone", "b": "renamed"})
    clock.now += 5
    await ledger.set_drift("sell", {"b": "renamed again", "c": "new"})
    await ledger.report_drift("ontraport", "product Pro", "no longer in Ontraport")
    await ledger.report_drift("ontraport", "field f1", "gone")
    await ledger.report_drift("ontraport", "field f1", None)
    found = [(d.scope, d.subject, d.problem, d.since) for d in await ledger.drift()]
    assert found == [
        ("ontraport", "product Pro", "no longer in Ontraport", 1_000_005.0),
        ("sell", "b", "renamed again", 1_000_000.0),
        ("sell", "c", "new", 1_000_005.0),
    ]
    assert [d.subject for d in (await ledger.store.status()).drift] == ["product Pro", "b", "c"]
    await ledger.set_drift("sell", {})
    assert [d.scope for d in await ledger.drift()] == ["ontraport"]


async def test_status_reads_waits_and_drift_read_only(tmp_path: Path, clock: Clock) -> None:
    """A read-only status reader (another process) sees waiting keys and drift."""
    path = tmp_path / "syncd.db"
    async with await Ledger.open(path, sinks=(SINK,), clock=clock) as ledger:
        await queue(ledger, clock, ("lead", 1))
        await ledger.claim(SINK, 1)
        await ledger.commit(SINK, [Waiting("lead:1", "contact:2", "not yet", clock.now + 300)])
        await ledger.set_drift("sell", {"sinks.salesmanago.events.stages.Demo": "Sell has no stage 'Demo'"})
    reader = await Store.open(path, readonly=True)
    try:
        status = await reader.status()
    finally:
        await reader.close()
    assert status.sinks[0].waits[0].due_at == clock.now + 300
    assert [d.problem for d in status.drift] == ["Sell has no stage 'Demo'"]
