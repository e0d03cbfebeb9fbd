"""Feedback in the store, on a real SQLite file through the ledger: a changed outcome of a person in a destination
that feeds back queues the key for the feedback queue in the outcome's own transaction, an unchanged one (or an
"unchanged since the last write") queues nothing, a new outcome supersedes an earlier feedback dead letter, and the
echo of syncd's own write is stored but routed nowhere while a person's change is delivered."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import pytest

from state import FEEDBACK_QUEUE, Store
from syncd.config import FeedbackSink
from syncd.feedback.plan import Status
from syncd.ledger import Ledger
from syncd.work import Dead, Done, Retry, Skipped
from tests.factories import event

SINKS = ("salesmanago", "ontraport")
T = datetime(2026, 11, 1, 12, 0, 0, tzinfo=UTC).timestamp()


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    store = await Store.open(tmp_path / "syncd.db", sinks=(*SINKS, FEEDBACK_QUEUE), clock=lambda: T)
    feedback = {"salesmanago": FeedbackSink(), "ontraport": FeedbackSink(field="Ontraport status")}
    opened = Ledger(store, feedback=feedback)
    yield opened
    await opened.close()


def rows(path: Path, sql: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute(sql).fetchall()


def queued(ledger: Ledger) -> list[tuple[object, ...]]:
    return rows(ledger.path, f"SELECT key, seq, status FROM deliveries WHERE sink = '{FEEDBACK_QUEUE}' ORDER BY seq")


async def lead(ledger: Ledger, sequence: int = 1, **fields: object) -> int:
    change = event("lead", 1, sequence, "created" if sequence == 1 else "updated", email="ada@example.org", **fields)
    await ledger.ingest("leads", [change], position=f"p{sequence}", at_top=True)
    [(seq,)] = rows(ledger.path, f"SELECT seq FROM events WHERE kind = 'lead' AND sequence = {sequence}")
    return int(seq)  # type: ignore[call-overload]


async def test_a_changed_outcome_queues_feedback_once(ledger: Ledger) -> None:
    """Delivered to SALESmanago: the key is queued for feedback with that event; delivered again unchanged (or
    answered "unchanged since the last write") queues nothing more; a retry never does."""
    seq = await lead(ledger)
    await ledger.commit("salesmanago", [Done("lead:1", (seq,))])
    assert queued(ledger) == [("lead:1", seq, "pending")]
    assert await ledger.outcomes("lead:1") == {"salesmanago": Status("delivered")}
    seq2 = await lead(ledger, 2)
    await ledger.commit("salesmanago", [Skipped("lead:1", (seq2,), "unchanged since the last write")])
    await ledger.commit("ontraport", [Retry("lead:1", T + 5, "503")])
    assert queued(ledger) == [("lead:1", seq, "pending")]
    assert rows(ledger.path, f"SELECT key FROM outbox WHERE sink = '{FEEDBACK_QUEUE}'") == [("lead:1",)]


async def test_a_new_outcome_requeues_done_feedback_and_supersedes_its_dead_letter(ledger: Ledger) -> None:
    """Feedback written (done) or refused (dead) for an event: another destination's outcome of the same event
    queues it again, and the old feedback dead letter goes."""
    seq = await lead(ledger)
    await ledger.commit("salesmanago", [Done("lead:1", (seq,))])
    await ledger.commit(FEEDBACK_QUEUE, [Dead("lead:1", (seq,), "unknown_attribute: no custom field", 422)])
    assert queued(ledger) == [("lead:1", seq, "dead")]
    await ledger.commit("ontraport", [Dead("lead:1", (seq,), "bad Tier")])
    assert queued(ledger) == [("lead:1", seq, "pending")]
    assert rows(ledger.path, f"SELECT COUNT(*) FROM dead_letters WHERE sink = '{FEEDBACK_QUEUE}'") == [(0,)]
    assert {s: o.outcome for s, o in (await ledger.outcomes("lead:1")).items()} == {
        "salesmanago": "delivered",
        "ontraport": "dead",
    }


async def test_only_people_of_destinations_that_feed_back_are_noted(tmp_path: Path) -> None:
    """A deal's outcome, or any outcome while feedback is off, queues nothing."""
    store = await Store.open(tmp_path / "off.db", sinks=SINKS, clock=lambda: T)
    async with Ledger(store) as off:
        seq = await lead(off)
        await off.commit("salesmanago", [Done("lead:1", (seq,))])
        assert queued(off) == []
    async with Ledger(
        await Store.open(tmp_path / "on.db", sinks=SINKS), feedback={"salesmanago": FeedbackSink()}
    ) as on:
        await on.ingest("deals", [event("deal", 7, 1, "created", name="x")], position="d", at_top=True)
        [(seq,)] = rows(on.path, "SELECT seq FROM events WHERE kind = 'deal'")
        await on.commit("salesmanago", [Done("deal:7", (int(seq),))])  # type: ignore[call-overload]
        assert queued(on) == []


async def test_the_echo_of_syncds_write_is_stored_and_routed_nowhere(ledger: Ledger) -> None:
    """After syncd noted its write, the Firehose's `updated` showing exactly it is stored (the shadow has the tags)
    with no delivery; a person's tag change in the same page is delivered to both destinations."""
    await lead(ledger, tags=["vip"])
    await ledger.note_feedback_write(
        "lead", 1, owned=["synced-salesmanago"], write={"tags": ["vip", "synced-salesmanago"], "fields": {}}
    )
    echo = msgspec.structs.replace(
        event("lead", 1, 2, previous={"tags": ["vip"]}, tags=["vip", "synced-salesmanago"], email="ada@example.org"),
        occurred_at=datetime.fromtimestamp(T + 1, UTC),
    )
    person = msgspec.structs.replace(
        event("lead", 1, 3, previous={"tags": ["vip", "synced-salesmanago"]}, tags=["vip", "synced-salesmanago", "hot"],
              email="ada@example.org"),
        occurred_at=datetime.fromtimestamp(T + 2, UTC),
    )  # fmt: skip
    await ledger.ingest("leads", [echo, person], position="p", at_top=True)
    routed = rows(
        ledger.path,
        "SELECT e.sequence, d.sink FROM deliveries d JOIN events e ON e.seq = d.seq WHERE e.sequence > 1 ORDER BY 1, 2",
    )
    assert routed == [(3, "ontraport"), (3, "salesmanago")]
    shadow = await ledger.shadow("lead", 1)
    assert shadow is not None and shadow.sequence == 3
    assert ledger.echoes == 1
