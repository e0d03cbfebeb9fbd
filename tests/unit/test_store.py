"""The store on a real SQLite file: one-transaction ingest, the shadow, claims, outcomes and upkeep."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from state import SCHEMA_VERSION, Store
from state.db import migrations
from state.store import Quarantined
from syncd.errors import StoreError
from syncd.work import Dead, Deferred, Done, Released, Retry, Skipped
from tests.factories import event

SINKS = ("salesmanago", "ontraport")


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
async def store(tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "state" / "syncd.db", sinks=SINKS, clock=clock)
    yield opened
    await opened.close()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_file_is_private_and_in_wal_mode(store: Store) -> None:
    """The database is created with mode 0600, in WAL mode, at the current schema version."""
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o600
    assert rows(store.path, "PRAGMA journal_mode") == [("wal",)]
    assert rows(store.path, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


async def test_newer_database_is_refused(tmp_path: Path) -> None:
    """A database written by a newer syncd is refused with a clear error, not migrated or damaged."""
    path = tmp_path / "syncd.db"
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION + 1,))
    with pytest.raises(StoreError, match="newer than this syncd"):
        await Store.open(path)
    with pytest.raises(StoreError, match="newer than this syncd"):
        await Store.open(path, readonly=True)


async def test_ingest_stores_events_shadow_deliveries_and_position(store: Store) -> None:
    """One page: events stored, shadow updated, one delivery per destination per event, position moved."""
    page = [
        event("lead", 1, 1, "created", email="a@example.org"),
        event("lead", 1, 2, email="a@example.org", first_name="Ada"),
        event("lead", 2, 1, "created", email="b@example.org"),
    ]
    result = await store.ingest("leads", page, position="p1", at_top=False)
    assert (result.new, result.duplicates, result.deliveries) == (3, 0, 6)
    position = await store.position("leads")
    assert position is not None and (position.position, position.at_top) == ("p1", False)
    shadow = await store.shadow("lead", 1)
    assert shadow is not None and shadow.sequence == 2 and shadow.record.first_name == "Ada"  # type: ignore[union-attr]
    assert await store.pending("salesmanago") == 3 and await store.pending("ontraport") == 3


async def test_repeated_events_are_absorbed(store: Store) -> None:
    """A repeated (kind, id, sequence, action), in one page or across pages, is stored and queued once."""
    first = event("lead", 1, 1, "created", email="a@example.org")
    result = await store.ingest("leads", [first, first], position="p1", at_top=False)
    assert (result.new, result.duplicates) == (1, 1)
    again = await store.ingest("leads", [first], position="p2", at_top=True)
    assert (again.new, again.duplicates, again.deliveries) == (0, 1, 0)
    assert rows(store.path, "SELECT COUNT(*) FROM events") == [(1,)]
    assert await store.pending() == 2
    position = await store.position("leads")
    assert position is not None and position.position == "p2" and position.at_top


async def test_stale_sequence_never_overwrites_the_shadow(store: Store) -> None:
    """An event older than the shadow is kept for the record but neither applied nor delivered."""
    await store.ingest("leads", [event("lead", 1, 5, email="new@example.org")], position="p1", at_top=False)
    result = await store.ingest("leads", [event("lead", 1, 3, email="old@example.org")], position="p2", at_top=False)
    assert (result.new, result.stale, result.deliveries) == (1, 1, 0)
    shadow = await store.shadow("lead", 1)
    assert shadow is not None and shadow.sequence == 5 and shadow.record.email == "new@example.org"  # type: ignore[union-attr]


async def test_bare_delete_keeps_the_last_snapshot(store: Store) -> None:
    """A delete carrying only the id marks the shadow deleted and keeps the last known e-mail."""
    await store.ingest(
        "contacts", [event("contact", 7, 1, "created", email="c@example.org")], position="p1", at_top=False
    )
    await store.ingest("contacts", [event("contact", 7, 2, "deleted")], position="p2", at_top=False)
    shadow = await store.shadow("contact", 7)
    assert shadow is not None and shadow.deleted and shadow.record.email == "c@example.org"  # type: ignore[union-attr]
    assert rows(store.path, "SELECT email, deleted FROM records WHERE record_id = 7") == [("c@example.org", 1)]


async def test_only_routed_events_get_deliveries(store: Store) -> None:
    """Stages and organisations are stored but no destination takes them (today)."""
    page = [event("stage", 3, 1, "created", name="Won", category="won")]
    assert (await store.ingest("stages", page, position="s1", at_top=True)).deliveries == 0
    org = [event("contact", 9, 1, "created", is_organization=True, name="ACME")]
    assert (await store.ingest("contacts", org, position="c1", at_top=True)).deliveries == 0


async def test_quarantined_items_are_kept_with_their_raw_body(store: Store) -> None:
    """Items that could not be normalised are stored with the reason, in the same transaction as the page."""
    bad = Quarantined("lead.id: expected int", b'{"data": {"id": "x"}}')
    result = await store.ingest("leads", [], position="p9", at_top=True, quarantined=[bad])
    assert result.quarantined == 1
    assert rows(store.path, "SELECT stream, reason, raw FROM quarantine") == [
        ("leads", "lead.id: expected int", b'{"data": {"id": "x"}}')
    ]
    assert (await store.status()).quarantined == 1


async def test_claims_are_exclusive_and_oldest_first(store: Store) -> None:
    """A claimed key is not handed out again; keys come oldest first; claims do not survive a restart."""
    await store.ingest(
        "leads", [event("lead", i, 1, "created", email=f"{i}@x.org") for i in (3, 1, 2)], position="p", at_top=True
    )
    assert await store.claim("salesmanago", 2) == ["lead:3", "lead:1"]
    assert await store.claim("salesmanago", 5) == ["lead:2"]
    assert await store.claim("salesmanago", 5) == []
    assert await store.claim("ontraport", 5) == ["lead:3", "lead:1", "lead:2"]
    reopened = await Store.open(store.path, sinks=SINKS)
    try:
        assert await reopened.claim("salesmanago", 5) == ["lead:3", "lead:1", "lead:2"]
    finally:
        await reopened.close()


async def test_done_retires_the_key_unless_more_arrived_meanwhile(store: Store) -> None:
    """A delivered key leaves the outbox; deliveries queued while it was in flight keep it due."""
    await store.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="p1", at_top=True)
    [work] = await store.load_work("salesmanago", await store.claim("salesmanago", 1))
    await store.ingest("leads", [event("lead", 1, 2, email="a@x.org", title="CTO")], position="p2", at_top=True)
    await store.commit("salesmanago", [Done(work.key, work.seqs, remote_id="uuid-1", digest="d1", sent={"e": 1})])
    [again] = await store.load_work("salesmanago", await store.claim("salesmanago", 1))
    assert again.key == "lead:1" and len(again.seqs) == 1 and again.seqs != work.seqs
    assert again.link is not None and (again.link.remote_id, again.link.digest, again.link.sent) == (
        "uuid-1",
        "d1",
        {"e": 1},
    )
    await store.commit("salesmanago", [Done(again.key, again.seqs)])
    assert await store.claim("salesmanago", 1) == []
    status = {s.sink: s for s in (await store.status()).sinks}
    assert (status["salesmanago"].pending, status["salesmanago"].done) == (0, 2)


async def test_a_key_counts_as_tried_from_its_second_claim_until_an_outcome_finishes_it(store: Store) -> None:
    """A key's first claim hands out work never tried; once claimed before (a retry, a claim a crash lost) it is
    tried, across restarts, until an outcome finishes it; deliveries that arrived meanwhile start untried."""
    await store.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="p1", at_top=True)
    [first] = await store.load_work("salesmanago", await store.claim("salesmanago", 1))
    assert not first.tried
    reopened = await Store.open(store.path, sinks=SINKS)  # the claim lapses, as after a SIGKILL
    try:
        [again] = await reopened.load_work("salesmanago", await reopened.claim("salesmanago", 1))
        assert again.tried
        await reopened.commit("salesmanago", [Retry(again.key, at=0.0, error="timed out")])
        [third] = await reopened.load_work("salesmanago", await reopened.claim("salesmanago", 1))
        assert third.tried
        await reopened.ingest("leads", [event("lead", 1, 2, email="b@x.org")], position="p2", at_top=True)
        await reopened.commit("salesmanago", [Done(third.key, third.seqs, remote_id="uuid-1")])
        [fresh] = await reopened.load_work("salesmanago", await reopened.claim("salesmanago", 1))
        assert fresh.seqs != third.seqs and not fresh.tried
    finally:
        await reopened.close()


async def test_a_database_of_the_first_schema_is_upgraded_and_its_queued_keys_count_as_tried(tmp_path: Path) -> None:
    """Opening a schema-1 file applies the later migrations; keys it had queued count as tried (unknown before)."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        conn.executescript(migrations()[0][2])
        conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        conn.execute("INSERT INTO schema_version (version) VALUES (1)")
        conn.execute("INSERT INTO outbox (sink, key, first_seq, due_at) VALUES ('salesmanago', 'lead:1', 1, 0)")
    upgraded = await Store.open(path, sinks=SINKS)
    try:
        assert rows(path, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
        [work] = await upgraded.load_work("salesmanago", await upgraded.claim("salesmanago", 1))
        assert work.tried
    finally:
        await upgraded.close()


async def test_retry_and_deferred_reschedule(store: Store, clock: Clock) -> None:
    """A retry counts an attempt and waits; a deferral waits without counting; a release is due at once."""
    await store.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="p", at_top=True)
    key = (await store.claim("ontraport", 1))[0]
    await store.commit("ontraport", [Retry(key, clock.now + 30, "503", 503)])
    assert await store.claim("ontraport", 1) == []
    clock.now += 31
    [work] = await store.load_work("ontraport", await store.claim("ontraport", 1))
    assert work.attempts == 1
    await store.commit("ontraport", [Deferred(key, clock.now + 5, "waiting")])
    clock.now += 5
    [work] = await store.load_work("ontraport", await store.claim("ontraport", 1))
    assert work.attempts == 1
    await store.commit("ontraport", [Released(key)])
    assert await store.claim("ontraport", 1) == [key]


async def test_dead_and_skipped_are_recorded_with_reasons(store: Store) -> None:
    """Dead letters keep the reason, status and request; skips keep their reason; both retire the key."""
    page = [event("lead", 1, 1, "created", email="bad@x"), event("lead", 2, 1, "created")]
    await store.ingest("leads", page, position="p", at_top=True)
    works = await store.load_work("salesmanago", await store.claim("salesmanago", 2))
    await store.commit(
        "salesmanago",
        [
            Dead(works[0].key, works[0].seqs, "invalid e-mail", 200, '{"contact": {}}', 1),
            Skipped(works[1].key, works[1].seqs, "no e-mail"),
        ],
    )
    assert rows(store.path, "SELECT key, reason, http_status, request FROM dead_letters") == [
        ("lead:1", "invalid e-mail", 200, '{"contact": {}}')
    ]
    assert rows(store.path, "SELECT status, reason FROM deliveries WHERE sink = 'salesmanago' ORDER BY seq") == [
        ("dead", "invalid e-mail"),
        ("skipped", "no e-mail"),
    ]
    status = {s.sink: s for s in (await store.status()).sinks}["salesmanago"]
    assert (status.pending, status.dead, status.skipped, status.dead_letters) == (0, 1, 1, 1)


async def test_guard_lookups(store: Store, clock: Clock) -> None:
    """Live peers share an e-mail or a remote id; catching up means every stream reached top after a time."""
    await store.ingest("leads", [event("lead", 1, 1, "created", email="Ada@X.org")], position="l", at_top=True)
    await store.ingest("contacts", [event("contact", 5, 1, "created", email="ada@x.org")], position="c", at_top=False)
    assert await store.live_peers("ontraport", "lead", 1, email="ada@x.org", remote_id=None) == ["contact:5"]
    assert not await store.streams_caught_up_since(["leads", "contacts"], clock.now)
    await store.ingest("contacts", [], position="c2", at_top=True)
    assert await store.streams_caught_up_since(["leads", "contacts"], clock.now)
    assert not await store.streams_caught_up_since(["leads", "contacts"], clock.now + 1)
    await store.ingest("contacts", [event("contact", 5, 2, "deleted")], position="c3", at_top=True)
    assert await store.live_peers("ontraport", "lead", 1, email="ada@x.org", remote_id=None) == []


async def test_prune_keeps_pending_and_dead(store: Store, clock: Clock) -> None:
    """Old events whose deliveries are finished go; pending and dead-lettered ones stay, and totals survive."""
    page = [event("lead", i, 1, "created", email=f"{i}@x.org") for i in (1, 2, 3)]
    await store.ingest("leads", page, position="p", at_top=True)
    for sink in SINKS:
        works = await store.load_work(sink, await store.claim(sink, 3))
        await store.commit(sink, [Done(works[0].key, works[0].seqs), Dead(works[1].key, works[1].seqs, "bad")])
    clock.now += 1000
    assert await store.prune(clock.now - 10) == 1
    assert rows(store.path, "SELECT record_id FROM events ORDER BY record_id") == [(2,), (3,)]
    status = {s.sink: s for s in (await store.status()).sinks}
    assert status["ontraport"].done == 1 and status["ontraport"].pending == 1
