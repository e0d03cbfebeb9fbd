"""The store on a real SQLite file, fed and read through the ledger: one-transaction ingest, the shadow, claims,
outcomes and upkeep."""

from __future__ import annotations

import os
import sqlite3
import stat
import threading
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from state import SCHEMA_VERSION, EventRow, Outcome, Quarantined, RecordRow, Route, Store
from state.db import WAL_CHECKPOINT_PAGES, WAL_KEEP_BYTES, _prepare, open_database
from syncd.errors import StoreError
from syncd.ledger import Ledger
from syncd.work import Dead, Deferred, Done, Released, Retry, Skipped
from tests.factories import event, schema_at

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
async def ledger(tmp_path: Path, clock: Clock) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_path / "state" / "syncd.db", sinks=SINKS, clock=clock)
    yield opened
    await opened.close()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


async def test_file_is_private_and_in_wal_mode(ledger: Ledger) -> None:
    """The database is created with mode 0600, in WAL mode, at the current schema version."""
    assert stat.S_IMODE(os.stat(ledger.path).st_mode) == 0o600
    assert rows(ledger.path, "PRAGMA journal_mode") == [("wal",)]
    assert rows(ledger.path, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]


async def test_a_writers_wal_is_checkpointed_in_large_steps_and_cut_back_after(tmp_path: Path) -> None:
    """A writing connection lets the WAL grow to WAL_CHECKPOINT_PAGES before copying it into the database, and
    keeps at most WAL_KEEP_BYTES of it after."""
    conn = await open_database(tmp_path / "syncd.db")
    try:
        for pragma, value in (("wal_autocheckpoint", WAL_CHECKPOINT_PAGES), ("journal_size_limit", WAL_KEEP_BYTES)):
            async with conn.execute(f"PRAGMA {pragma}") as cur:
                assert await cur.fetchone() == (value,)
    finally:
        await conn.close()


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


async def test_ingest_stores_events_shadow_deliveries_and_position(ledger: Ledger) -> None:
    """One page: events stored, shadow updated, one delivery per destination per event, position moved."""
    page = [
        event("lead", 1, 1, "created", email="a@example.org"),
        event("lead", 1, 2, email="a@example.org", first_name="Ada"),
        event("lead", 2, 1, "created", email="b@example.org"),
    ]
    result = await ledger.ingest("leads", page, position="p1", at_top=False)
    assert (result.new, result.duplicates, result.deliveries) == (3, 0, 6)
    position = await ledger.position("leads")
    assert position is not None and (position.position, position.at_top) == ("p1", False)
    shadow = await ledger.shadow("lead", 1)
    assert shadow is not None and shadow.sequence == 2 and shadow.record.first_name == "Ada"  # type: ignore[union-attr]
    assert await ledger.pending("salesmanago") == 3 and await ledger.pending("ontraport") == 3


async def test_repeated_events_are_absorbed(ledger: Ledger) -> None:
    """A repeated (kind, id, sequence, action), in one page or across pages, is stored and queued once."""
    first = event("lead", 1, 1, "created", email="a@example.org")
    result = await ledger.ingest("leads", [first, first], position="p1", at_top=False)
    assert (result.new, result.duplicates) == (1, 1)
    again = await ledger.ingest("leads", [first], position="p2", at_top=True)
    assert (again.new, again.duplicates, again.deliveries) == (0, 1, 0)
    assert rows(ledger.path, "SELECT COUNT(*) FROM events") == [(1,)]
    assert await ledger.pending() == 2
    position = await ledger.position("leads")
    assert position is not None and position.position == "p2" and position.at_top


async def test_stale_sequence_never_overwrites_the_shadow(ledger: Ledger) -> None:
    """An event older than the shadow is kept for the record but neither applied nor delivered."""
    await ledger.ingest("leads", [event("lead", 1, 5, email="new@example.org")], position="p1", at_top=False)
    result = await ledger.ingest("leads", [event("lead", 1, 3, email="old@example.org")], position="p2", at_top=False)
    assert (result.new, result.stale, result.deliveries) == (1, 1, 0)
    shadow = await ledger.shadow("lead", 1)
    assert shadow is not None and shadow.sequence == 5 and shadow.record.email == "new@example.org"  # type: ignore[union-attr]


async def test_the_shadows_email_column_follows_the_winning_change(ledger: Ledger) -> None:
    """The e-mail the shadow is searched by is the winning change's: a later page's, the newest of one page's
    (whatever their order), never a stale change's, and an unchanged one stays."""
    emails = "SELECT record_id, email FROM records ORDER BY record_id"
    first = [event("lead", 1, 1, email="a@x.org"), event("lead", 2, 1, email="b@x.org")]
    await ledger.ingest("leads", first, position="p1", at_top=False)
    await ledger.ingest(
        "leads",
        [
            event("lead", 1, 3, email="a3@x.org"),
            event("lead", 1, 2, email="a2@x.org"),
            event("lead", 2, 2, email="b@x.org"),
            event("lead", 3, 1, email="c@x.org"),
            event("lead", 3, 2, email="c2@x.org"),
        ],
        position="p2",
        at_top=False,
    )
    assert rows(ledger.path, emails) == [(1, "a3@x.org"), (2, "b@x.org"), (3, "c2@x.org")]
    await ledger.ingest("leads", [event("lead", 1, 2, "created", email="old@x.org")], position="p3", at_top=False)
    assert rows(ledger.path, emails)[0] == (1, "a3@x.org")


async def test_bare_delete_keeps_the_last_snapshot(ledger: Ledger) -> None:
    """A delete carrying only the id marks the shadow deleted and keeps the last known e-mail."""
    await ledger.ingest(
        "contacts", [event("contact", 7, 1, "created", email="c@example.org")], position="p1", at_top=False
    )
    await ledger.ingest("contacts", [event("contact", 7, 2, "deleted")], position="p2", at_top=False)
    shadow = await ledger.shadow("contact", 7)
    assert shadow is not None and shadow.deleted and shadow.record.email == "c@example.org"  # type: ignore[union-attr]
    assert rows(ledger.path, "SELECT email, deleted FROM records WHERE record_id = 7") == [("c@example.org", 1)]


async def test_only_routed_events_get_deliveries(ledger: Ledger) -> None:
    """Stages are stored but no destination takes them; an organisation goes to every destination, as a contact
    does (each decides whether it writes organisations)."""
    page = [event("stage", 3, 1, "created", name="Won", category="won")]
    assert (await ledger.ingest("stages", page, position="s1", at_top=True)).deliveries == 0
    org = [event("contact", 9, 1, "created", is_organization=True, name="ACME")]
    assert (await ledger.ingest("contacts", org, position="c1", at_top=True)).deliveries == len(SINKS)


async def test_quarantined_items_are_kept_with_their_raw_body(ledger: Ledger) -> None:
    """Items that could not be normalised are stored with the reason, in the same transaction as the page."""
    bad = Quarantined("lead.id: expected int", b'{"data": {"id": "x"}}')
    result = await ledger.ingest("leads", [], position="p9", at_top=True, quarantined=[bad])
    assert result.quarantined == 1
    assert rows(ledger.path, "SELECT stream, reason, raw FROM quarantine") == [
        ("leads", "lead.id: expected int", b'{"data": {"id": "x"}}')
    ]
    assert (await ledger.store.status()).quarantined == 1


async def test_claims_are_exclusive_and_oldest_first(ledger: Ledger) -> None:
    """A claimed key is not handed out again; keys come oldest first; claims do not survive their owner."""
    await ledger.ingest(
        "leads", [event("lead", i, 1, "created", email=f"{i}@x.org") for i in (3, 1, 2)], position="p", at_top=True
    )
    assert await ledger.claim("salesmanago", 2) == ["lead:3", "lead:1"]
    assert await ledger.claim("salesmanago", 5) == ["lead:2"]
    assert await ledger.claim("salesmanago", 5) == []
    assert await ledger.claim("ontraport", 5) == ["lead:3", "lead:1", "lead:2"]
    await ledger.close()  # the owner goes, its claims still in the file (as a SIGKILL leaves them)
    reopened = await Ledger.open(ledger.path, sinks=SINKS)
    try:
        assert await reopened.claim("salesmanago", 5) == ["lead:3", "lead:1", "lead:2"]
    finally:
        await reopened.close()


async def test_done_retires_the_key_unless_more_arrived_meanwhile(ledger: Ledger) -> None:
    """A delivered key leaves the outbox; deliveries queued while it was in flight keep it due."""
    await ledger.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="p1", at_top=True)
    [work] = await ledger.load_work("salesmanago", await ledger.claim("salesmanago", 1))
    await ledger.ingest("leads", [event("lead", 1, 2, email="a@x.org", title="CTO")], position="p2", at_top=True)
    await ledger.commit("salesmanago", [Done(work.key, work.seqs, remote_id="uuid-1", digest="d1", sent={"e": 1})])
    [again] = await ledger.load_work("salesmanago", await ledger.claim("salesmanago", 1))
    assert again.key == "lead:1" and len(again.seqs) == 1 and again.seqs != work.seqs
    assert again.link is not None and (again.link.remote_id, again.link.digest, again.link.sent) == (
        "uuid-1",
        "d1",
        {"e": 1},
    )
    await ledger.commit("salesmanago", [Done(again.key, again.seqs)])
    assert await ledger.claim("salesmanago", 1) == []
    status = {s.sink: s for s in (await ledger.store.status()).sinks}
    assert (status["salesmanago"].pending, status["salesmanago"].done) == (0, 2)


async def test_a_key_counts_as_tried_from_its_second_claim_until_an_outcome_finishes_it(ledger: Ledger) -> None:
    """A key's first claim hands out work never tried; once claimed before (a retry, a claim a crash lost) it is
    tried, across restarts, until an outcome finishes it; deliveries that arrived meanwhile start untried."""
    await ledger.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="p1", at_top=True)
    [first] = await ledger.load_work("salesmanago", await ledger.claim("salesmanago", 1))
    assert not first.tried
    await ledger.close()  # the owner goes without an outcome, as a SIGKILL would end it
    reopened = await Ledger.open(ledger.path, sinks=SINKS)  # the next owner lapses the claim
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


async def test_a_claim_that_sent_nothing_does_not_make_a_key_tried(ledger: Ledger) -> None:
    """Claims that ended sending nothing with effect (refused at connect, a deferral, a release) leave a key
    untried; a claim before them whose outcome was lost still makes it tried, however many such claims follow."""
    await ledger.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="p1", at_top=True)
    for outcome in (
        Retry("lead:1", at=0.0, error="refused", sent_nothing=True),
        Deferred("lead:1", at=0.0, reason="later", sent_nothing=True),
        Released("lead:1", sent_nothing=True),
    ):
        [work] = await ledger.load_work("salesmanago", await ledger.claim("salesmanago", 1))
        assert not work.tried
        await ledger.commit("salesmanago", [outcome, outcome])  # a key's outcomes count it off once
    await ledger.claim("salesmanago", 1)
    await ledger.close()  # this claim's outcome is lost
    reopened = await Ledger.open(ledger.path, sinks=SINKS)
    try:
        for _ in range(3):
            [work] = await reopened.load_work("salesmanago", await reopened.claim("salesmanago", 1))
            assert work.tried
            await reopened.commit("salesmanago", [Retry(work.key, at=0.0, error="refused", sent_nothing=True)])
    finally:
        await reopened.close()


async def test_a_database_of_the_first_schema_is_upgraded_and_its_queued_keys_count_as_tried(tmp_path: Path) -> None:
    """Opening a schema-1 file applies the later migrations; keys it had queued count as tried (unknown before)."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        schema_at(conn, 1)
        conn.execute("INSERT INTO outbox (sink, key, first_seq, due_at) VALUES ('salesmanago', 'lead:1', 1, 0)")
    upgraded = await Ledger.open(path, sinks=SINKS)
    try:
        assert rows(path, "SELECT version FROM schema_version") == [(SCHEMA_VERSION,)]
        [work] = await upgraded.load_work("salesmanago", await upgraded.claim("salesmanago", 1))
        assert work.tried
    finally:
        await upgraded.close()


def test_the_key_first_migration_keeps_every_outbox_row_and_delivery_as_it_was(tmp_path: Path) -> None:
    """Upgrading a schema-10 file rebuilds the outbox and the deliveries' key index key first, every row and
    column kept, and the outbox still refuses a second row of the same destination and key."""
    path = tmp_path / "old.db"
    with sqlite3.connect(path) as conn:
        schema_at(conn, 10)
        conn.executemany(
            "INSERT INTO outbox (sink, key, first_seq, due_at, attempts, claimed, last_error, claims, claimed_at,"
            " claimed_by, unsure, verify_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            [
                ("salesmanago", "lead:1", 3, 10.5, 2, 1, "timed out", 4, 9.0, "owner-a", 1, 12.0),
                ("ontraport", "lead:1", 3, 11.0, 0, 0, None, 0, None, None, 0, None),
            ],
        )
        conn.execute(
            "INSERT INTO deliveries (sink, seq, key, status, created_at)"
            " VALUES ('ontraport', 3, 'lead:1', 'pending', 1)"
        )
        before = sorted(conn.execute("SELECT * FROM outbox"))
    _prepare(path)
    assert sorted(rows(path, "SELECT * FROM outbox")) == before
    assert rows(path, "SELECT sink, seq, key, status FROM deliveries") == [("ontraport", 3, "lead:1", "pending")]
    assert [r[2] for r in rows(path, "PRAGMA index_info(sqlite_autoindex_outbox_1)")] == ["key", "sink"]
    assert [r[2] for r in rows(path, "PRAGMA index_info(deliveries_key)")] == ["key", "sink", "status"]
    with sqlite3.connect(path) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO outbox (sink, key, first_seq, due_at) VALUES ('ontraport', 'lead:1', 4, 0)")


async def _claim_one(ledger: Ledger, window: float = 60.0) -> Any:
    [work] = await ledger.load_work("salesmanago", await ledger.claim("salesmanago", 1, late_window=window))
    return work


@pytest.mark.parametrize("how", ["unsure retry", "lost claim"])
async def test_a_key_whose_write_may_still_land_is_written_again_after_the_window(
    ledger: Ledger, clock: Clock, how: str
) -> None:
    """After a write of unknown outcome (a retry marked unsure, or a claim the process died with), the next claim
    starts the late-write window: a Done before it ends keeps the key, due when it ends and counted as a check
    pending; that claim is a reassert, and its Done retires the key. A certain retry starts nothing."""
    await ledger.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="p", at_top=True)
    first = await _claim_one(ledger)
    assert not first.reassert
    if how == "unsure retry":
        await ledger.commit("salesmanago", [Retry(first.key, clock.now, "timed out", unsure=True)])
        opened = ledger
    else:
        await ledger.close()  # the owner goes without an outcome, as a SIGKILL would end it
        opened = await Ledger.open(ledger.path, sinks=SINKS, clock=clock)  # the next owner lapses the claim
    try:
        clock.now += 1
        second = await _claim_one(opened)
        assert not second.reassert
        await opened.commit("salesmanago", [Done(second.key, second.seqs, remote_id="c1", digest="d2")])
        assert await opened.store.checks_pending("salesmanago") == 1
        assert await opened.claim("salesmanago", 1) == []
        assert await opened.store.next_due("salesmanago") == clock.now + 60
        clock.now += 60
        check = await _claim_one(opened)
        assert check.reassert and check.seqs == () and check.link is not None and check.link.digest == "d2"
        await opened.commit("salesmanago", [Done(check.key, ())])
        assert await opened.store.checks_pending() == 0
        assert rows(ledger.path, "SELECT COUNT(*) FROM outbox WHERE sink = 'salesmanago'") == [(0,)]
    finally:
        if opened is not ledger:
            await opened.close()


async def test_deliveries_during_the_window_are_written_and_the_check_still_comes(ledger: Ledger, clock: Clock) -> None:
    """A change stored while a key waits for its check is written when it comes (and the key still gets its check
    after the window); a key dead-lettered is never checked; a certain retry leaves nothing to check."""
    await ledger.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="p", at_top=True)
    work = await _claim_one(ledger)
    await ledger.commit("salesmanago", [Retry(work.key, clock.now, "HTTP 502", 502, unsure=True)])
    work = await _claim_one(ledger)
    await ledger.ingest("leads", [event("lead", 1, 2, email="a@x.org", title="CTO")], position="p2", at_top=True)
    await ledger.commit("salesmanago", [Done(work.key, work.seqs)])
    newer = await _claim_one(ledger)  # due at once: a change arrived while it was in flight
    assert len(newer.seqs) == 1 and not newer.reassert
    await ledger.commit("salesmanago", [Done(newer.key, newer.seqs)])
    assert await ledger.store.checks_pending() == 1
    clock.now += 60
    check = await _claim_one(ledger)
    assert check.reassert
    await ledger.commit("salesmanago", [Dead(check.key, (), "refused")])
    assert await ledger.store.checks_pending() == 0 and await ledger.claim("salesmanago", 1) == []
    await ledger.ingest("leads", [event("lead", 2, 1, "created", email="b@x.org")], position="p3", at_top=True)
    work = await _claim_one(ledger)
    await ledger.commit("salesmanago", [Retry(work.key, clock.now, "HTTP 429 in a 5xx", 503)])
    work = await _claim_one(ledger)
    await ledger.commit("salesmanago", [Done(work.key, work.seqs)])
    assert await ledger.store.checks_pending() == 0


async def test_retry_and_deferred_reschedule(ledger: Ledger, clock: Clock) -> None:
    """A retry counts an attempt and waits; a deferral waits without counting; a release is due at once."""
    await ledger.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="p", at_top=True)
    key = (await ledger.claim("ontraport", 1))[0]
    await ledger.commit("ontraport", [Retry(key, clock.now + 30, "503", 503)])
    assert await ledger.claim("ontraport", 1) == []
    clock.now += 31
    [work] = await ledger.load_work("ontraport", await ledger.claim("ontraport", 1))
    assert work.attempts == 1
    await ledger.commit("ontraport", [Deferred(key, clock.now + 5, "waiting")])
    clock.now += 5
    [work] = await ledger.load_work("ontraport", await ledger.claim("ontraport", 1))
    assert work.attempts == 1
    await ledger.commit("ontraport", [Released(key)])
    assert await ledger.claim("ontraport", 1) == [key]


async def test_dead_and_skipped_are_recorded_with_reasons(ledger: Ledger) -> None:
    """Dead letters keep the reason, status and request; skips keep their reason; both retire the key."""
    page = [event("lead", 1, 1, "created", email="bad@x"), event("lead", 2, 1, "created")]
    await ledger.ingest("leads", page, position="p", at_top=True)
    works = await ledger.load_work("salesmanago", await ledger.claim("salesmanago", 2))
    await ledger.commit(
        "salesmanago",
        [
            Dead(works[0].key, works[0].seqs, "invalid e-mail", 200, '{"contact": {}}', 1),
            Skipped(works[1].key, works[1].seqs, "no e-mail"),
        ],
    )
    assert rows(ledger.path, "SELECT key, reason, http_status, request FROM dead_letters") == [
        ("lead:1", "invalid e-mail", 200, '{"contact": {}}')
    ]
    assert rows(ledger.path, "SELECT status, reason FROM deliveries WHERE sink = 'salesmanago' ORDER BY seq") == [
        ("dead", "invalid e-mail"),
        ("skipped", "no e-mail"),
    ]
    status = {s.sink: s for s in (await ledger.store.status()).sinks}["salesmanago"]
    assert (status.pending, status.dead, status.skipped, status.dead_letters) == (0, 1, 1, 1)


async def test_guard_lookups(ledger: Ledger, clock: Clock) -> None:
    """Live peers share an e-mail or a remote id; catching up means every stream reached top after a time."""
    await ledger.ingest("leads", [event("lead", 1, 1, "created", email="Ada@X.org")], position="l", at_top=True)
    await ledger.ingest("contacts", [event("contact", 5, 1, "created", email="ada@x.org")], position="c", at_top=False)
    assert await ledger.live_peers("ontraport", "lead", 1, email="ada@x.org", remote_id=None) == ["contact:5"]
    assert not await ledger.streams_caught_up_since(["leads", "contacts"], clock.now)
    await ledger.ingest("contacts", [], position="c2", at_top=True)
    assert await ledger.streams_caught_up_since(["leads", "contacts"], clock.now)
    assert not await ledger.streams_caught_up_since(["leads", "contacts"], clock.now + 1)
    await ledger.ingest("contacts", [event("contact", 5, 2, "deleted")], position="c3", at_top=True)
    assert await ledger.live_peers("ontraport", "lead", 1, email="ada@x.org", remote_id=None) == []


async def test_prune_keeps_pending_and_dead(ledger: Ledger, clock: Clock) -> None:
    """Old events whose deliveries are finished go; pending and dead-lettered ones stay, and totals survive."""
    page = [event("lead", i, 1, "created", email=f"{i}@x.org") for i in (1, 2, 3)]
    await ledger.ingest("leads", page, position="p", at_top=True)
    for sink in SINKS:
        works = await ledger.load_work(sink, await ledger.claim(sink, 3))
        await ledger.commit(sink, [Done(works[0].key, works[0].seqs), Dead(works[1].key, works[1].seqs, "bad")])
    clock.now += 1000
    assert await ledger.store.prune(clock.now - 10) == 1
    assert rows(ledger.path, "SELECT record_id FROM events ORDER BY record_id") == [(2,), (3,)]
    status = {s.sink: s for s in (await ledger.store.status()).sinks}
    assert status["ontraport"].done == 1 and status["ontraport"].pending == 1


# ---------------------------------------------------------------------------------------------------------------
# the store in its own vocabulary: rows with opaque bodies, routes, outcomes


def row(kind: str, record_id: int, sequence: int, *, email: str = "", deleted: bool = False) -> EventRow:
    """A stored change whose bodies the store cannot read (it never tries)."""
    return EventRow(
        kind=kind,
        record_id=record_id,
        action="deleted" if deleted else "changed",
        sequence=sequence,
        event_id=f"{kind}-{record_id}-{sequence}",
        occurred_at=f"2026-11-01T12:00:{sequence:02d}+00:00",
        body=f"change {kind} {record_id} {sequence}".encode(),
        record=f"state {kind} {record_id} {sequence}".encode(),
        email=email,
        deleted=deleted,
        bare=False,
    )


@pytest.fixture
async def raw(tmp_path: Path, clock: Clock) -> AsyncIterator[Store]:
    opened = await Store.open(tmp_path / "raw.db", sinks=("a", "b"), clock=clock)
    yield opened
    await opened.close()


async def test_the_store_queues_exactly_the_routes_it_is_given(raw: Store) -> None:
    """Routes decide the deliveries: a change without a route is stored but queued nowhere, a stale one never."""
    page = [row("widget", 1, 2), row("widget", 2, 1), row("widget", 1, 1)]  # the last is older than the first
    routes = [Route(0, "a", "widget:1"), Route(0, "b", "widget:1"), Route(2, "a", "widget:1")]
    result = await raw.ingest("widgets", page, routes, position="w1", at_top=True)
    assert (result.new, result.stale, result.deliveries) == (3, 1, 2)
    assert await raw.claim("a", 5) == ["widget:1"] and await raw.claim("b", 5) == ["widget:1"]
    [work] = await raw.load_work("a", ["widget:1"])
    assert [p.body for p in work.deliveries] == [b"change widget 1 2"]
    assert work.record == RecordRow("widget", 1, 2, False, b"state widget 1 2")
    assert (work.link, work.tried, work.attempts) == (None, False, 0)


async def test_the_store_answers_with_rows_and_keys(raw: Store) -> None:
    """Record, records of a kind, live peers among the kinds asked for, and a record every destination links."""
    await raw.ingest(
        "people",
        [row("person", 1, 1, email="ada@x.org"), row("person", 2, 1, email="ada@x.org"), row("robot", 3, 1)],
        [Route(0, "a", "person:1"), Route(1, "a", "person:2")],
        position="p1",
        at_top=True,
    )
    assert await raw.record("person", 9) is None
    assert [r.record_id for r in await raw.records_of_kind("person")] == [1, 2]
    peers = await raw.live_peers("a", "person", 1, email="ada@x.org", remote_id=None, kinds=["person"])
    assert peers == ["person:2"]
    assert await raw.live_peers("a", "person", 1, email="ada@x.org", remote_id=None, kinds=["robot"]) == []
    assert await raw.linked_record(["person"], {"a": True}) is None
    works = await raw.load_work("a", await raw.claim("a", 5))
    await raw.commit("a", [Done(works[0].key, works[0].seqs, remote_id="r1"), Done(works[1].key, works[1].seqs)])
    found = await raw.linked_record(["person"], {"a": True})
    assert found is not None
    assert (found.record.record_id, found.email, found.remote_ids) == (1, "ada@x.org", {"a": "r1"})
    assert await raw.linked_record(["person"], {"a": False, "b": False}) is None  # b links nothing
    assert await raw.events_by_stream() == {"people": 3}
    assert await raw.deliveries_by_sink() == {"a": 2}


async def test_replay_routes_through_the_callers_function(raw: Store) -> None:
    """Replay asks the caller where each stored change goes, queues those, and forgets the links' digests."""
    await raw.ingest("people", [row("person", 1, 1), row("person", 2, 1)], [Route(0, "a", "person:1")],
                     position="p1", at_top=True)  # fmt: skip
    [work] = await raw.load_work("a", await raw.claim("a", 5))
    await raw.commit("a", [Done(work.key, work.seqs, remote_id="r1", digest="d1")])
    seen: list[bytes] = []

    def route(body: bytes) -> str | None:
        seen.append(body)
        return "person:1" if body.startswith(b"change person 1") else None

    replayed = await raw.replay("a", route, record=("person", 1))
    assert (replayed.events, replayed.keys) == (1, 1)
    assert seen == [b"change person 1 1"]
    [again] = await raw.load_work("a", await raw.claim("a", 5))
    assert again.link is not None and (again.link.remote_id, again.link.digest) == ("r1", None)
    assert (await raw.replay("a", route, since=datetime(2026, 1, 1, tzinfo=UTC))).keys == 1


async def test_skip_reasons_are_counted_per_destination(raw: Store) -> None:
    """Skipped deliveries still stored are counted by destination and reason."""
    await raw.ingest("people", [row("person", 1, 1), row("person", 2, 1)],
                     [Route(0, "a", "person:1"), Route(1, "a", "person:2")], position="p1", at_top=True)  # fmt: skip
    works = await raw.load_work("a", await raw.claim("a", 5))
    await raw.commit("a", [Skipped(w.key, w.seqs, "no e-mail") for w in works])
    assert await raw.skip_reasons() == [("a", "no e-mail", 2)]


@pytest.mark.parametrize(
    ("outcomes", "outbox", "statuses", "totals"),
    [
        pytest.param(
            lambda seqs: [Done("widget:1", seqs, remote_id="r1")],
            [],
            ["done"],
            [("done", 1), ("writes", 1)],
            id="done",
        ),
        pytest.param(
            lambda seqs: [Skipped("widget:1", seqs, "nothing to send")], [], ["skipped"], [("skipped", 1)], id="skipped"
        ),
        pytest.param(lambda seqs: [Dead("widget:1", seqs, "refused")], [], ["dead"], [("dead", 1)], id="dead"),
        pytest.param(lambda seqs: [Retry("widget:1", 2e6, "503")], [(0, 1, 2e6, "503")], ["pending"], [], id="retry"),
        pytest.param(
            lambda seqs: [Deferred("widget:1", 2e6, "waiting")],
            [(0, 0, 2e6, "waiting")],
            ["pending"],
            [],
            id="deferred",
        ),
        pytest.param(lambda seqs: [Released("widget:1")], [(0, 0, 1e6, None)], ["pending"], [], id="released"),
        pytest.param(
            lambda seqs: [Done("widget:1", seqs, wrote=False), Retry("widget:1", 2e6, "timed out")],
            [(0, 1, 2e6, "timed out")],
            ["done"],
            [("done", 1)],
            id="finished-and-rescheduled-stays-queued",
        ),
    ],
)
async def test_each_outcome_kind_is_one_step_of_the_commit(
    raw: Store,
    outcomes: Callable[[tuple[int, ...]], list[Outcome]],
    outbox: list[tuple[object, ...]],
    statuses: list[str],
    totals: list[tuple[str, int]],
) -> None:
    """What each outcome does to the key's outbox row (claimed, attempts, due, last error), its deliveries and the
    totals; a key one outcome finishes and another reschedules in the same batch stays queued."""
    await raw.ingest("widgets", [row("widget", 1, 1)], [Route(0, "a", "widget:1")], position="w1", at_top=True)
    [work] = await raw.load_work("a", await raw.claim("a", 1))
    await raw.commit("a", outcomes(work.seqs))
    assert rows(raw.path, "SELECT claimed, attempts, due_at, last_error FROM outbox WHERE sink = 'a'") == outbox
    assert [s for (s,) in rows(raw.path, "SELECT status FROM deliveries WHERE sink = 'a'")] == statuses
    assert rows(raw.path, "SELECT outcome, n FROM totals WHERE sink = 'a' ORDER BY outcome") == totals


async def test_a_clock_step_back_moves_stored_times_ahead_of_now_back_by_the_step(ledger: Ledger, clock: Clock) -> None:
    """After the wall clock stepped back a day, a retry due in 30 s is due in 30 s again, the times things were
    written lie in the past again, and what lay behind the new now stays where it was."""
    await ledger.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="p", at_top=True)
    [key] = await ledger.claim("salesmanago", 1)
    await ledger.commit("salesmanago", [Retry(key, clock.now + 30, "HTTP 500", 500)])
    written = clock.now
    clock.now -= 86_400  # the step back
    assert await ledger.store.ahead() == 86_400
    assert await ledger.store.next_due("salesmanago") == written + 30
    assert await ledger.store.shift_back(86_400) > 0
    assert await ledger.store.next_due("salesmanago") == clock.now + 30
    assert await ledger.store.ahead() == 0
    assert rows(ledger.path, "SELECT MAX(ingested_at) FROM events") == [(clock.now,)]
    clock.now += 31
    assert await ledger.claim("salesmanago", 1) == [key]


async def test_a_peek_reads_on_the_loops_thread_and_never_inside_another_tasks_transaction(raw: Store) -> None:
    """A point read (`peek`) runs on the event loop's own thread, and waits while another task holds a write
    transaction open: it sees that transaction's rows only once it committed."""
    await raw.ingest("people", [row("person", 1, 1)], [], position="p1", at_top=True)
    threads: list[str] = []
    seen: list[object] = []

    def read(db: sqlite3.Connection) -> object:
        threads.append(threading.current_thread().name)
        return db.execute("SELECT COUNT(*) FROM records").fetchone()[0]

    opened, release = anyio.Event(), anyio.Event()

    async def writer() -> None:
        async with raw.transaction() as db:
            await db.execute("DELETE FROM records")
            opened.set()
            await release.wait()

    async def reader() -> None:
        await opened.wait()
        seen.append(await raw.peek(read))

    async with anyio.create_task_group() as tasks:
        tasks.start_soon(writer)
        tasks.start_soon(reader)
        await opened.wait()
        await anyio.wait_all_tasks_blocked()
        assert seen == []  # the reader waits on the open transaction
        release.set()
    assert seen == [0] and threads == [threading.current_thread().name]
    assert await raw.record("person", 1) is None
