"""The store in syncd's terms: ChangeEvents in, KeyWork out, outcomes recorded, writers' look-ups answered with
decoded records.

`Ledger` wraps a `state.Store`, which speaks only its own rows: routing and decoding happen here (through the
pure functions of syncd.stored), the SQL there. It is what the pollers (`PollStore`), the dispatchers
(`DispatchStore`) and the writers (`syncd.sinks.base.Lookups`) are given.

Text the daemon stores (an outcome's error, reason, request or detail, a pause or stop reason, a quarantine reason,
mapping drift) passes the ledger's redactor first: commands that read the store resolve no secrets, so the file
must hold none.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
import time
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any, Self

import anyio

from state import (
    Cursor,
    Dead,
    Deferred,
    Done,
    DriftRow,
    FeedbackMark,
    IngestResult,
    Link,
    NotedOutcome,
    Outcome,
    Quarantined,
    Replayed,
    Retry,
    Skipped,
    Store,
    StreamPosition,
    Waiting,
)
from state.base import Clock
from state.keys import split_key
from syncd.config import FeedbackSink
from syncd.diskspace import Usage
from syncd.drift import Definitions
from syncd.events import PERSON_KINDS, ChangeEvent
from syncd.feedback.plan import PEOPLE, Status, is_echo, noted
from syncd.logs import get_logger
from syncd.redact import NOTHING, Redactor
from syncd.stored import (
    PageRows,
    custom_field_names,
    key_work,
    live_stages,
    needs_stored_ref,
    page_rows,
    record_reference,
    replay_key,
    requeue_row,
    shadow_of,
)
from syncd.work import KeyWork, Shadow

# The kinds a destination contact may be written from: who counts as another live person behind it.
_PEOPLE = tuple(sorted(PERSON_KINDS))


class Ledger:
    """One store, for the daemon's pollers, dispatchers and writers and for the commands that route."""

    def __init__(
        self, store: Store, *, redact: Redactor = NOTHING, feedback: Mapping[str, FeedbackSink] | None = None
    ) -> None:
        self.store = store
        self.redact = redact
        # The destinations whose outcomes go back to Sell, and the custom fields feedback writes there.
        self.feedback = dict(feedback or {})
        self.feedback_fields = frozenset(s.field for s in self.feedback.values() if s.field)
        self.echoes = 0  # Firehose echoes of syncd's own feedback writes recognised (not delivered)

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        sinks: Sequence[str] = (),
        clock: Clock = time.time,
        readonly: bool = False,
        redact: Redactor = NOTHING,
    ) -> Ledger:
        """Open the store at `path`; `sinks` are the enabled destinations (each page is routed to them); every
        text it stores passes `redact`. Opened for writing, the references of records stored by an older version
        are filled in first."""
        ledger = cls(await Store.open(path, sinks=sinks, clock=clock, readonly=readonly), redact=redact)
        if not readonly:
            await ledger.fill_references()
        return ledger

    async def fill_references(self, chunk: int = 500) -> int:
        """Compute the reference (the record it belongs to) of every stored record that has none yet (stored by
        an older version); how many were filled in."""
        filled = 0
        while rows := await self.store.unreferenced(chunk):
            await self.store.set_references([(row.kind, row.record_id, record_reference(row)) for row in rows])
            filled += len(rows)
        return filled

    async def close(self) -> None:
        await self.store.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @property
    def path(self) -> Path:
        return self.store.path

    # -----------------------------------------------------------------------------------------------------------
    # pollers

    async def position(self, stream: str) -> StreamPosition | None:
        return await self.store.position(stream)

    async def ingest(
        self,
        stream: str,
        events: Sequence[ChangeEvent],
        *,
        position: str,
        at_top: bool,
        quarantined: Sequence[Quarantined] = (),
    ) -> IngestResult:
        """Store one Firehose page in ONE transaction, with a pending delivery for every enabled destination that
        routes each new event (a change that does not say what its record belongs to is routed by what the shadow
        kept)."""
        asked = [(e.kind, e.record_id) for e in events if needs_stored_ref(e)]
        stored = await self.store.references(asked) if asked else {}
        rows = await self._without_echoes(events, page_rows(events, self.store.sinks, stored))
        clean = [Quarantined(self.redact(q.reason), q.raw) for q in quarantined]
        return await self.store.ingest(
            stream, rows.events, rows.routes, position=position, at_top=at_top, quarantined=clean
        )

    async def _without_echoes(self, events: Sequence[ChangeEvent], rows: PageRows) -> PageRows:
        """The page's routes without those of the Firehose's echoes of syncd's own feedback writes (stored, so the
        shadow shows the tags, and delivered nowhere). Only while feedback is on, and only changes of nothing but
        tags and custom fields are looked up."""
        if not self.feedback:
            return rows
        candidates = [
            (pos, e)
            for pos, e in enumerate(events)
            if e.action == "updated" and e.kind in PEOPLE and e.previous and set(e.previous) <= {"tags", "custom"}
        ]
        if not candidates:
            return rows
        marks = await self.store.feedback_marks([(e.kind, e.record_id) for _, e in candidates])
        echoes = set()
        for pos, event in candidates:
            mark = marks.get((event.kind, event.record_id))
            if mark is not None and is_echo(event, mark.writes, self.feedback_fields):
                echoes.add(pos)
                get_logger(sink="feedback").info(
                    "feedback_echo_ignored", key=f"{event.kind}:{event.record_id}", sequence=event.sequence
                )
        if not echoes:
            return rows
        self.echoes += len(echoes)
        return PageRows(rows.events, tuple(r for r in rows.routes if r.pos not in echoes))

    async def mark_stream(self, stream: str, *, expired: bool = False, stopped: str | None = None) -> None:
        await self.store.mark_stream(stream, expired=expired, stopped=self.redact.optional(stopped))

    async def note_failure(self, stream: str, failures: int, error: str) -> None:
        await self.store.note_failure(stream, failures, self.redact(error))

    async def usage(self) -> Usage:
        """Bytes the state file uses, and bytes free on its filesystem (None when that cannot be read)."""
        try:
            free: int | None = (await anyio.to_thread.run_sync(shutil.disk_usage, self.store.path.parent)).free
        except OSError:
            free = None
        return Usage(await self.store.used_bytes(), free)

    async def prune_finished(self) -> int:
        """Delete every finished event whatever its age (to make room; quarantined items stay)."""
        return await self.store.prune(math.inf, quarantine=False)

    async def pending(self, sink: str | None = None, *, blocked: bool = True) -> int:
        return await self.store.pending(sink, blocked=blocked)

    # -----------------------------------------------------------------------------------------------------------
    # dispatchers

    async def claim(self, sink: str, limit: int, *, late_window: float = 0.0) -> list[str]:
        return await self.store.claim(sink, limit, late_window=late_window)

    async def next_due(self, sink: str) -> float | None:
        return await self.store.next_due(sink)

    async def load_work(self, sink: str, keys: Sequence[str]) -> list[KeyWork]:
        """The pending work of each claimed key, decoded."""
        return [key_work(stored) for stored in await self.store.load_work(sink, keys)]

    async def commit(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        """Record a batch of outcomes; of a destination that feeds back, the people's outcomes are noted for
        feedback in the same transaction (a changed one queues the key for it)."""
        clean = [redacted(outcome, self.redact) for outcome in outcomes]
        await self.store.commit(sink, clean, noted=self._noted(sink, clean))

    def _noted(self, sink: str, outcomes: Sequence[Outcome]) -> list[NotedOutcome]:
        if sink not in self.feedback:
            return []
        found = []
        for outcome in outcomes:
            status = noted(outcome)
            seqs = getattr(outcome, "seqs", ())
            if status is None or not seqs or outcome.key.partition(":")[0] not in PEOPLE:
                continue
            found.append(NotedOutcome(outcome.key, status.outcome, status.reason, max(seqs)))
        return found

    # -----------------------------------------------------------------------------------------------------------
    # feedback (syncd.feedback.writer.FeedbackLookups)

    async def outcomes(self, key: str) -> dict[str, Status]:
        """The latest outcome of `key` in each destination that feeds back."""
        return {
            row.sink: Status(row.outcome, row.reason)
            for row in await self.store.outcomes(key)
            if row.sink in self.feedback
        }

    async def feedback_mark(self, kind: str, record_id: int) -> FeedbackMark | None:
        return (await self.store.feedback_marks([(kind, record_id)])).get((kind, record_id))

    async def note_feedback_write(
        self, kind: str, record_id: int, *, owned: Sequence[str], write: dict[str, Any] | None
    ) -> None:
        """Before a feedback write (`write`; None: only what syncd owns changed): durably, for its echo and for
        the next merge."""
        await self.store.note_feedback_write(kind, record_id, owned=owned, write=write)

    async def set_throttle(self, api: str, until: float) -> None:
        await self.store.set_throttle(api, until)

    async def set_sink_state(self, sink: str, *, paused: str | None, until: float | None = None) -> None:
        await self.store.set_sink_state(sink, paused=self.redact.optional(paused), until=until)

    # -----------------------------------------------------------------------------------------------------------
    # writers' look-ups (syncd.sinks.base.Lookups)

    async def shadow(self, kind: str, record_id: int) -> Shadow | None:
        row = await self.store.record(kind, record_id)
        return shadow_of(row) if row is not None else None

    async def live_peers(self, sink: str, kind: str, record_id: int, *, email: str, remote_id: str | None) -> list[str]:
        """Other live Sell people (leads, contacts) that map to the same destination contact, as keys."""
        return await self.store.live_peers(sink, kind, record_id, email=email, remote_id=remote_id, kinds=_PEOPLE)

    async def streams_caught_up_since(self, streams: Iterable[str], since: float) -> bool:
        return await self.store.streams_caught_up_since(streams, since)

    async def link(self, sink: str, key: str) -> Link | None:
        """What `sink` holds of the record `key` names (None when it holds nothing: not written there yet)."""
        return await self.store.link(sink, *split_key(key))

    async def belonging_to(self, kind: str, keys: Sequence[str]) -> list[Shadow]:
        """The stored records of `kind` that belong to one of `keys` (a deal's orders, line items and notes),
        deleted ones included, by id; found through the shadow's reference index."""
        return [shadow_of(row) for row in await self.store.referring(kind, keys)]

    async def requeue(self, sink: str, keys: Sequence[str], *, cause: str) -> int:
        """Queue `keys` (people) to be written to `sink` again from their records' stored state, though no change
        of theirs arrived (`cause`: why); records never seen or deleted are left out. How many were queued."""
        at = datetime.now(UTC)
        rows = []
        for key in dict.fromkeys(keys):
            row = await self.store.record(*split_key(key))
            if row is not None and not row.deleted:
                rows.append(requeue_row(key, shadow_of(row), cause=cause, at=at))
        return await self.store.requeue(sink, rows)

    async def repair(self, sink: str, keys: Sequence[str], *, cause: str) -> int:
        """Queue `keys` for `sink` again from their stored state (`cause`: why; the writers write a repair even if
        unchanged since the last write): what `syncd reconcile --repair` found different or missing, or still
        there though its record is deleted (then the delivery deletes it). How many deliveries became pending."""
        at = datetime.now(UTC)
        rows = []
        for key in dict.fromkeys(keys):
            row = await self.store.record(*split_key(key))
            if row is not None:
                rows.append(requeue_row(key, shadow_of(row), cause=cause, at=at))
        return await self.store.requeue(sink, rows)

    async def report_drift(self, scope: str, subject: str, problem: str | None) -> None:
        """Mapping drift `scope` (a destination) found about `subject` (None: it is fine again)."""
        await self.store.report_drift(scope, self.redact(subject), self.redact.optional(problem))

    # -----------------------------------------------------------------------------------------------------------
    # the daemon and the commands

    async def set_drift(self, scope: str, problems: Mapping[str, str]) -> None:
        """Everything `scope` finds drifted now (subject -> problem); the rest of its drift is resolved."""
        await self.store.set_drift(scope, {self.redact(k): self.redact(v) for k, v in problems.items()})

    async def drift(self) -> list[DriftRow]:
        return await self.store.drift()

    async def custom_field_names(self) -> frozenset[str] | None:
        """Names of the Sell custom fields defined now (None when no definition has been read yet)."""
        return custom_field_names(await self.store.records_of_kind("custom_field"))

    async def definitions(self) -> Definitions:
        """What Sell defines now as far as the store knows: custom field names and live stages (for drift)."""
        return Definitions(
            custom_fields=await self.custom_field_names(),
            stages=live_stages(await self.store.records_of_kind("stage")),
        )

    async def replay(
        self, sink: str, *, since: datetime | None = None, record: tuple[str, int] | None = None
    ) -> Replayed:
        """Queue the stored events of `sink` again (those that occurred at or after `since`, or those of one
        record), routed as at ingest, and forget what was last written for their records."""
        return await self.store.replay(sink, partial(replay_key, sink), since=since, record=record)

    # -----------------------------------------------------------------------------------------------------------
    # backfills

    async def ingest_snapshots(
        self,
        job: int,
        part: str,
        stream: str,
        events: Sequence[ChangeEvent],
        *,
        capture_seq: int,
        cursor: Cursor,
        requests: int = 1,
        quarantined: Sequence[Quarantined] = (),
        finished: bool = False,
    ) -> IngestResult:
        """Store one page of a backfill (snapshots, or deletes of records found gone) in ONE transaction with its
        checkpoint, routed to every enabled destination like a stream page."""
        asked = [(e.kind, e.record_id) for e in events if needs_stored_ref(e)]
        stored = await self.store.references(asked) if asked else {}
        rows = page_rows(events, self.store.sinks, stored)
        return await self.store.ingest_snapshots(
            job,
            part,
            stream,
            rows.events,
            rows.routes,
            capture_seq=capture_seq,
            cursor=cursor,
            requests=requests,
            quarantined=[Quarantined(self.redact(q.reason), q.raw) for q in quarantined],
            finished=finished,
        )


def redacted(outcome: Outcome, redact: Redactor) -> Outcome:
    """`outcome` with every text it stores passed through `redact` (the same outcome when there is nothing to do)."""
    if not redact:
        return outcome
    match outcome:
        case Done():
            return dataclasses.replace(outcome, detail=redact(outcome.detail))
        case Skipped():
            return dataclasses.replace(outcome, reason=redact(outcome.reason))
        case Retry():
            return dataclasses.replace(outcome, error=redact(outcome.error))
        case Deferred() | Waiting():
            return dataclasses.replace(outcome, reason=redact(outcome.reason))
        case Dead():
            return dataclasses.replace(outcome, reason=redact(outcome.reason), request=redact.optional(outcome.request))
    return outcome
