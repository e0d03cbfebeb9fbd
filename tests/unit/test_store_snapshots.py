"""Snapshots (records read from the Core API by a backfill) and stream changes of the same record, in both orders,
on a real SQLite file: a snapshot never overwrites a newer stream change, and a stream change older than a snapshot
is stale. Sell's v2 version is never compared with the Firehose sequence, so both readings of it hold."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from state import Cursor
from syncd.events import SNAPSHOT_CAUSE, Action, ChangeEvent, Lead
from syncd.ledger import Ledger

SINKS = ("salesmanago",)
T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC).timestamp()
READINGS = [pytest.param(0, id="version-is-the-sequence"), pytest.param(1000, id="version-counts-apart")]


def at(seconds: float) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def change(sequence: int, seconds: float, name: str, action: Action = "updated") -> ChangeEvent:
    """A change of lead 1 read from the Firehose."""
    return ChangeEvent(
        stream="leads",
        kind="lead",
        record_id=1,
        action=action,
        sequence=sequence,
        event_id=f"e{sequence}",
        occurred_at=at(seconds),
        record=Lead(id=1, first_name=name, email="ada@example.org"),
    )


def snap(version: int, seconds: float, name: str) -> ChangeEvent:
    """Lead 1 as read from the Core API (`updated_at` = `seconds`)."""
    return ChangeEvent(
        stream="leads",
        kind="lead",
        record_id=1,
        action="snapshot",
        sequence=version,
        event_id=f"v{version}",
        occurred_at=at(seconds),
        record=Lead(id=1, first_name=name, email="ada@example.org"),
        cause=SNAPSHOT_CAUSE,
    )


class Harness:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.capture_seq = 0
        self.job = 0

    async def stream(self, *events: ChangeEvent) -> int:
        return (await self.ledger.ingest("leads", list(events), position="p", at_top=False)).stale

    async def capture(self) -> None:
        job = await self.ledger.store.request_job("backfill", '{"streams": ["leads"]}')
        self.job = job.id
        self.capture_seq = await self.ledger.store.capture(job.id, {}, ["leads"])

    async def backfill(self, *events: ChangeEvent) -> int:
        result = await self.ledger.ingest_snapshots(
            self.job, "leads", "leads", list(events), capture_seq=self.capture_seq, cursor=Cursor(0, 1)
        )
        return result.stale

    async def name(self) -> str:
        shadow = await self.ledger.shadow("lead", 1)
        assert shadow is not None and isinstance(shadow.record, Lead)
        return shadow.record.first_name

    def delivered(self) -> list[str]:
        """The names queued for delivery, in order."""
        with sqlite3.connect(self.ledger.path) as conn:
            bodies = conn.execute(
                "SELECT e.body FROM deliveries d JOIN events e ON e.seq = d.seq ORDER BY d.seq"
            ).fetchall()
        from syncd.events import decode_event

        names = []
        for (body,) in bodies:
            record = decode_event(body).record
            assert isinstance(record, Lead)
            names.append(record.first_name)
        return names


@pytest.fixture
async def h(tmp_path: Path) -> AsyncIterator[Harness]:
    ledger = await Ledger.open(tmp_path / "syncd.db", sinks=SINKS)
    yield Harness(ledger)
    await ledger.close()


@pytest.mark.parametrize("offset", READINGS)
async def test_a_snapshot_replaces_what_the_stream_wrote_before_the_capture(h: Harness, offset: int) -> None:
    """A change read before the backfill captured the positions is older than any snapshot read after it."""
    await h.stream(change(1, 10, "Old"))
    await h.capture()
    assert await h.backfill(snap(3 + offset, 30, "Snap")) == 0
    assert await h.name() == "Snap"
    assert h.delivered() == ["Old", "Snap"]


@pytest.mark.parametrize("offset", READINGS)
async def test_a_stream_change_older_than_the_snapshot_is_stale(h: Harness, offset: int) -> None:
    """After the snapshot: a change that occurred before its updated_at is already in it (stale, not delivered);
    one at the same second or later wins, whatever the version says."""
    await h.capture()
    await h.backfill(snap(3 + offset, 30, "Snap"))
    assert await h.stream(change(2, 20, "Older")) == 1
    assert await h.name() == "Snap"
    assert await h.stream(change(3, 30, "SameSecond")) == 0
    assert await h.name() == "SameSecond"
    assert await h.stream(change(4, 40, "Newer")) == 0
    assert await h.name() == "Newer"
    assert h.delivered() == ["Snap", "SameSecond", "Newer"]


@pytest.mark.parametrize("offset", READINGS)
async def test_a_snapshot_never_overwrites_a_change_read_after_the_capture(h: Harness, offset: int) -> None:
    """Before the snapshot: a change read after the capture keeps the shadow, whether the snapshot is older or
    newer (a newer one's changes come from the stream too); the snapshot is stored stale, never delivered."""
    await h.capture()
    await h.stream(change(5, 50, "Stream"))
    assert await h.backfill(snap(4 + offset, 40, "OlderSnap")) == 1
    assert await h.name() == "Stream"
    assert await h.backfill(snap(6 + offset, 60, "NewerSnap")) == 1
    assert await h.name() == "Stream"
    assert await h.stream(change(6, 60, "Later")) == 0
    assert await h.name() == "Later"
    assert h.delivered() == ["Stream", "Later"]


async def test_a_snapshot_older_than_what_the_shadow_holds_is_stale_even_before_the_capture(h: Harness) -> None:
    """A shadow provably newer (a later time) than the snapshot keeps it, wherever it came from."""
    await h.stream(change(9, 90, "Newest"))
    await h.capture()
    assert await h.backfill(snap(8, 80, "Lagging")) == 1
    assert await h.name() == "Newest"


async def test_between_snapshots_the_later_one_wins_and_a_repeat_is_absorbed(h: Harness) -> None:
    """A page read twice (a backfill that stopped before storing its checkpoint) changes nothing; a later
    snapshot of the record replaces an earlier one."""
    await h.capture()
    await h.backfill(snap(2, 20, "First"))
    assert await h.backfill(snap(2, 20, "First")) == 0
    assert await h.backfill(snap(3, 25, "Second")) == 0
    assert await h.backfill(snap(1, 10, "Stale")) == 1
    assert await h.name() == "Second"
    assert h.delivered() == ["First", "Second"]


async def test_a_record_no_scan_saw_is_found_and_marked_seen(h: Harness) -> None:
    """Live records a job's scans did not see, and no change after the capture wrote, are what it checks."""
    await h.stream(change(1, 10, "Old"))
    await h.capture()
    [unseen] = await h.ledger.store.unseen(h.job, "lead", h.capture_seq)
    assert (unseen.record_id, unseen.origin, unseen.version_at) == (1, "stream", T0 + 10)
    await h.backfill(snap(2, 20, "Seen"))
    assert await h.ledger.store.unseen(h.job, "lead", h.capture_seq) == []
