"""One backfill: what Sell's Core API holds for some streams, written as snapshots through the same store, routing
and delivery as the Firehose's changes, with the Firehose taking over where the backfill began.

1. Capture: each stream without a usable position (none yet, or expired) gets the Firehose's head (`position=top`)
   as its position BEFORE anything is read, in one transaction with the job's capture point (the highest event
   seq so far). Every change made from then on comes from the stream; a stream that still has its position keeps
   reading from it (an earlier point: nothing is missed either).
2. Scan: the parts (syncd.backfill.parts) in order, each listing read in id order by pages that reach back to the
   last record stored (syncd.backfill.scan), each page stored with its checkpoint in one transaction, so a stopped
   backfill goes on where it stopped. A snapshot never replaces what a change read after the capture wrote
   (state.ingest explains the rule); what cannot be read is quarantined with its raw body.
3. Check: records the shadow holds as live that no scan saw (and no change after the capture touched) are asked
   for by id: those Sell still has were skipped and are stored now; those it has not are gone (their deletes were
   lost with an expired position) and are deleted, like a delete read from the stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from state import Cursor, JobRow, PartRow, Quarantined, RecordRow
from syncd.backfill.parts import PARTS, Part, parts_for
from syncd.backfill.scan import Page, ScanFailed, Scanner
from syncd.errors import CallError, PermanentError
from syncd.events import SNAPSHOT_CAUSE, ChangeEvent, CustomField, Order, decode_record
from syncd.ledger import Ledger
from syncd.logs import get_logger
from syncd.ratelimit import Limiter
from syncd.sell.normalise import NormaliseError
from syncd.sell.poller import FirehoseClient
from syncd.sell.snapshot import Context, decode_collection, item_id, served_at, snapshot
from syncd.sell.wire import decode_page

PROGRESS_EVERY = 5.0  # seconds between progress log events
CHECK_BATCH = 100  # records asked for by id in one request


def job_params(streams: Sequence[str]) -> str:
    """A backfill job's params (canonical JSON, so asking twice for the same streams queues one job)."""
    return json.dumps({"streams": sorted(set(streams))}, sort_keys=True)


def job_streams(job: JobRow) -> list[str]:
    streams = json.loads(job.params).get("streams")
    return [str(s) for s in streams] if isinstance(streams, list) else []


@dataclass
class Tally:
    """What a backfill did, for its result and its log events."""

    records: int = 0
    quarantined: int = 0
    stale: int = 0
    requests: int = 0
    found_again: int = 0  # live records a scan skipped, found by id
    gone: int = 0  # records the shadow held that Sell no longer has
    parts: dict[str, int] = field(default_factory=dict)


class Backfill:
    """Runs one backfill job to its end (or until cancelled: it goes on from its checkpoints next time)."""

    def __init__(
        self,
        job: JobRow,
        *,
        ledger: Ledger,
        scanner: Scanner,
        firehose: FirehoseClient,
        limiter: Limiter,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.job = job
        self.ledger = ledger
        self.store = ledger.store
        self.scanner = scanner
        self.firehose = firehose
        self.limiter = limiter
        self.clock = clock
        self.streams = job_streams(job)
        self.parts = parts_for(self.streams)
        self.tally = Tally()
        self.capture_seq = job.capture_seq if job.capture_seq is not None else 0
        self._types: dict[str, dict[str, str]] = {}
        self._started = time.monotonic()
        self._reported = 0.0
        self._log = get_logger(job=job.id)

    async def run(self) -> dict[str, Any]:
        """Capture (once), scan every part not done yet, check what no scan saw; the job's result."""
        if self.job.capture_seq is None:
            await self._capture()
        rows = {row.part: row for row in await self.store.parts(self.job.id)}
        for part in self.parts:
            row = rows.get(part.name)
            if row is None or row.state != "done":
                await self._read_part(part, row)
                await self.store.finish_part(self.job.id, part.name)
                self._log.info("backfill_part_done", part=part.name, records=self.tally.parts.get(part.name, 0))
        await self._check_unseen()
        seconds = time.monotonic() - self._started
        rows = {row.part: row for row in await self.store.parts(self.job.id)}
        return {
            "streams": self.streams,
            "records": sum(r.records for r in rows.values()),
            "requests": sum(r.requests for r in rows.values()) + self.tally.requests,
            "parts": {name: {"records": r.records, "requests": r.requests} for name, r in rows.items()},
            "found_again": self.tally.found_again,
            "gone": self.tally.gone,
            "quarantined": self.tally.quarantined,
            "seconds_this_run": round(seconds, 3),
        }

    # -----------------------------------------------------------------------------------------------------------
    # capture

    async def _capture(self) -> None:
        positions: dict[str, str] = {}
        for stream in self.streams:
            stored = await self.ledger.position(stream)
            if stored is None or not stored.position or stored.expired:
                positions[stream] = await self._head(stream)
        self.capture_seq = await self.store.capture(self.job.id, positions, [p.name for p in self.parts])
        self._log.info(
            "backfill_started",
            streams=self.streams,
            captured=sorted(positions),
            parts=[p.name for p in self.parts],
            reason=self.job.reason,
        )

    async def _head(self, stream: str) -> str:
        """The Firehose's head of `stream` (`position=top`), retried while Sell fails transiently."""
        failures = 0
        while True:
            await self.limiter.acquire()
            try:
                return decode_page(await self.firehose.fetch_page(stream, "top", 1)).position
            except CallError as exc:
                if isinstance(exc, PermanentError) or exc.http_status in (401, 403):
                    raise ScanFailed(exc) from None
                failures += 1
                await self.scanner.back_off(exc, failures, f"{stream} head")

    # -----------------------------------------------------------------------------------------------------------
    # parts

    async def _read_part(self, part: Part, row: PartRow | None) -> None:
        if part.kind == "custom_field" and not part.paged:
            await self._definitions(part)
        elif part.name == "line_items":
            await self._line_items(part, row)
        else:
            await self._listing(part, row, part.path, dict(part.params), await self._context(part, {}))

    async def _context(self, part: Part, implied: dict[str, Any]) -> Context:
        if not self._types:
            self._types = await self._custom_types()
        return Context(self._types, {**dict(part.implied), **implied}, datetime.fromtimestamp(self.clock(), UTC))

    async def _custom_types(self) -> dict[str, dict[str, str]]:
        """Custom field types by resource and name, from the definitions the shadow holds (read first)."""
        types: dict[str, dict[str, str]] = {}
        for row in await self.store.records_of_kind("custom_field"):
            record = decode_record(row.body)
            if not row.deleted and isinstance(record, CustomField) and record.name:
                types.setdefault(record.resource_type, {})[record.name] = record.type
        contact = {**types.get("prospect_and_customer", {}), **types.get("contact", {})}
        return {**types, "contact": contact}

    async def _definitions(self, part: Part) -> None:
        """One answer holds every definition of a resource."""
        answer = await self.scanner.get(part.path, {}, what=part.name)
        try:
            items = [bytes(item) for item in decode_collection(answer.body).items]
        except CallError as exc:
            raise ScanFailed(exc) from None
        context = Context({}, dict(part.implied), served_at(answer.date, self.clock()))
        page = Page([(item_id(i), i) for i in items], answer.date, Cursor(len(items) - 1, None), True, 1)
        await self._store(part, page, context)
        self._types = {}  # read again, with these

    async def _listing(
        self, part: Part, row: PartRow | None, path: str, params: dict[str, str], context: Context
    ) -> None:
        cursor = Cursor(row.cursor_offset, row.cursor_id) if row is not None else Cursor(-1, None)
        first_known = row is not None and row.first_id is not None
        top = row.top_id if row is not None else None

        async def store(page: Page) -> None:
            nonlocal first_known, top
            if not first_known:
                first = next((i for i, _ in page.items if i is not None), None)
                await self.store.begin_part(self.job.id, part.name, first_id=first, top_id=None)
                first_known = True
            await self._store(part, page, context)
            if top is None and not page.last:
                # More than one page: the highest id the listing holds says how far it goes (progress, and
                # where asking ahead stops), one request.
                top = await self.scanner.top_id(path, params, what=part.name)
                await self.store.begin_part(self.job.id, part.name, first_id=None, top_id=top)
                await self.store.count_requests(self.job.id, part.name, 1)

        await self.scanner.scan(path, params, cursor, store, what=part.name, top=lambda: top)

    async def _line_items(self, part: Part, row: PartRow | None) -> None:
        """Each live order's line items (`/v2/orders/:id/line_items`), orders in id order; the checkpoint is the
        last order done."""
        if row is None or row.top_id is None:
            first, last = await self.store.id_range("order")
            await self.store.begin_part(self.job.id, part.name, first_id=first, top_id=last)
        after = row.cursor_id if row is not None and row.cursor_id is not None else 0
        while batch := await self.store.live_ids("order", after=after, limit=500):
            for order_id in batch:
                shadow = await self.ledger.shadow("order", order_id)
                deal_id = shadow.record.deal_id if shadow is not None and isinstance(shadow.record, Order) else None
                context = await self._context(part, {"order_id": order_id, "deal_id": deal_id})
                path = part.path.format(order=order_id)

                async def store(
                    page: Page, order_id: int = order_id, context: Context = context, before: int = after
                ) -> None:
                    done = Cursor(-1, order_id if page.last else before)
                    await self._store(part, Page(page.items, page.date, done, False, page.requests), context)

                try:
                    await self.scanner.scan(path, {}, Cursor(-1, None), store, what=part.name)
                except ScanFailed as exc:
                    if exc.error.http_status != 404:
                        raise
                    # The order was deleted meanwhile: its line items go with it (the stream says so too).
                    await self.ledger.ingest_snapshots(
                        self.job.id, part.name, part.stream, [], capture_seq=self.capture_seq,
                        cursor=Cursor(-1, order_id),
                    )  # fmt: skip
                after = order_id

    async def _store(self, part: Part, page: Page, context: Context) -> None:
        """One page's items as snapshots (what cannot be read quarantined), stored with the page's checkpoint."""
        context = Context(context.custom_types, context.implied, served_at(page.date, self.clock()))
        events: list[ChangeEvent] = []
        quarantined: list[Quarantined] = []
        for record_id, raw in page.items:
            if record_id is None:
                quarantined.append(Quarantined(f"{part.kind}.id: missing or not an id", raw))
                continue
            try:
                events.append(snapshot(part.stream, part.kind, raw, context))
            except NormaliseError as exc:
                quarantined.append(Quarantined(str(exc), raw))
                self._log.warning("item_quarantined", part=part.name, reason=str(exc))
        result = await self.ledger.ingest_snapshots(
            self.job.id,
            part.name,
            part.stream,
            events,
            capture_seq=self.capture_seq,
            cursor=page.cursor,
            requests=page.requests,
            quarantined=quarantined,
            finished=page.last,
        )
        tally = self.tally
        tally.records += result.received
        tally.quarantined += result.quarantined
        tally.stale += result.stale
        tally.parts[part.name] = tally.parts.get(part.name, 0) + result.received
        self._log.debug(
            "backfill_page_stored",
            part=part.name,
            records=result.received,
            new=result.new,
            stale=result.stale,
            deliveries=result.deliveries,
            quarantined=result.quarantined,
        )
        await self._progress(part)

    async def _progress(self, part: Part) -> None:
        now = time.monotonic()
        if now - self._reported < PROGRESS_EVERY:
            return
        self._reported = now
        rows = {row.part: row for row in await self.store.parts(self.job.id)}
        row = rows.get(part.name)
        if row is None:
            return
        estimate = estimate_part(row)
        elapsed = now - self._started
        self._log.info(
            "backfill_progress",
            part=part.name,
            records=row.records,
            part_total=estimate.total,
            percent=round(estimate.fraction * 100, 1) if estimate.fraction is not None else None,
            records_total=sum(r.records for r in rows.values()),
            rate_per_s=round(self.tally.records / elapsed, 1) if elapsed > 0 else None,
        )

    # -----------------------------------------------------------------------------------------------------------
    # the check of what no scan saw

    async def _check_unseen(self) -> None:
        """Only kinds the job read whole: every part that lists records of the kind was among its parts (a job of
        the leads stream reads the lead custom field definitions, not the contact ones)."""
        checked: set[str] = set()
        read = {part.name for part in self.parts}
        for part in self.parts:
            kind = part.stored_kind
            if kind in checked or not all(p.name in read for p in PARTS if p.stored_kind == kind):
                continue
            checked.add(kind)
            after = 0
            while batch := await self.store.unseen(self.job.id, kind, self.capture_seq, after=after, limit=CHECK_BATCH):
                after = batch[-1].record_id
                present = await self._ask(part, batch) if part.verify else {}
                await self._settle(part, batch, present)

    async def _ask(self, part: Part, batch: Sequence[RecordRow]) -> dict[int, bytes]:
        """The records of `batch` Sell still has (by `ids`), as raw v2 items by id."""
        ids = ",".join(str(row.record_id) for row in batch)
        path = "/v2/contacts" if part.kind == "contact" else part.path
        answer = await self.scanner.get(path, {"ids": ids, "page": "1", "per_page": str(CHECK_BATCH)}, what=part.name)
        self.tally.requests += 1
        try:
            items = [bytes(item) for item in decode_collection(answer.body).items]
        except CallError as exc:
            raise ScanFailed(exc) from None
        wanted = {row.record_id for row in batch}
        return {i: item for item in items if (i := item_id(item)) is not None and i in wanted}

    async def _settle(self, part: Part, batch: Sequence[RecordRow], present: dict[int, bytes]) -> None:
        """Store those Sell still has; delete those it has not."""
        context = await self._context(part, {})
        events: list[ChangeEvent] = []
        quarantined: list[Quarantined] = []
        for row in batch:
            raw = present.get(row.record_id)
            if raw is None:
                events.append(gone(part.stream, row, self.job.id))
                continue
            try:
                events.append(snapshot(part.stream, part.kind, raw, context))
            except NormaliseError as exc:
                quarantined.append(Quarantined(str(exc), raw))
        found = sum(1 for row in batch if row.record_id in present)
        self.tally.found_again += found
        self.tally.gone += len(batch) - found
        if found or len(batch) > found:
            self._log.info("backfill_unseen_checked", kind=part.stored_kind, found_again=found, gone=len(batch) - found)
        await self.ledger.ingest_snapshots(
            self.job.id,
            f"{part.stored_kind}:check",
            part.stream,
            events,
            capture_seq=self.capture_seq,
            cursor=Cursor(-1, None),
            requests=0,
            quarantined=quarantined,
        )


def gone(stream: str, row: RecordRow, job: int) -> ChangeEvent:
    """The delete of a record a backfill found gone from Sell: its last known body, at the time of its last known
    version (so any change read from the stream afterwards still counts)."""
    when = datetime.fromtimestamp(row.version_at or 0.0, UTC)
    return ChangeEvent(
        stream=stream,
        kind=row.kind,
        record_id=row.record_id,
        action="deleted",
        sequence=row.sequence,
        event_id=f"backfill-{job}-gone-{row.kind}-{row.record_id}",
        occurred_at=when,
        record=decode_record(row.body),
        cause=SNAPSHOT_CAUSE,
    )


@dataclass(frozen=True, slots=True)
class Estimate:
    """How far a part has come: the fraction of its id range read, and the records it will hold at that pace."""

    fraction: float | None
    total: int | None


def estimate_part(row: PartRow) -> Estimate:
    """A part's progress from its id range (Sell's lists say how many records a page has, not how many exist):
    the ids read so far against the lowest and highest id its list held when the scan began."""
    if row.state == "done":
        return Estimate(1.0, row.records)
    if row.cursor_id is None or row.first_id is None or row.top_id is None:
        return Estimate(None if row.state == "pending" or row.top_id is not None else 0.0, None)
    span = row.top_id - row.first_id
    if span <= 0:
        return Estimate(1.0 if row.cursor_id >= row.top_id else 0.0, row.records)
    fraction = min(1.0, max(0.0, (row.cursor_id - row.first_id) / span))
    total = round(row.records / fraction) if fraction > 0 else None
    return Estimate(fraction, max(total, row.records) if total is not None else None)
