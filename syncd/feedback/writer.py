"""The feedback queue's writer: a lead's or contact's outcomes in the destinations written on it in Sell.

Each claimed key: the outcomes the store noted for it (`FeedbackLookups.outcomes`) give the tags and field texts
wanted (`plan.wanted`); unchanged since the last write, nothing is called. Otherwise the record is read
(`GET /v2/leads/:id`), its tags merged (`plan.merge`: a person's tags stay, syncd's own that are no longer wanted
go), and only what differs written (`PUT`, `{"data": {"tags": [...], "custom_fields": {...}}}`). The write is
noted in the store before it is sent, with the tags syncd owns after it, so its echo on the Firehose is recognised
and a crash in between loses neither. Every call takes a slot of Sell's shared limiter only when the pollers leave
one (`Limiter.acquire_spare`), after one of feedback's own rate.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import msgspec

from state import FeedbackMark
from syncd.config import Config, FeedbackSink, SellConfig
from syncd.errors import CallError
from syncd.feedback.plan import PEOPLE, UNCHANGED, Status, managed, merge, wanted
from syncd.logs import get_logger
from syncd.ratelimit import Limiter
from syncd.sell.core import CoreApi
from syncd.sinks.base import DestinationField, crashed
from syncd.sinks.mapping import digest
from syncd.work import Done, Failed, KeyWork, Result, Skipped

NAME = "feedback"
SPARE = 2  # slots of Sell's window feedback leaves free for the pollers and backfills


@dataclass(frozen=True, slots=True)
class QueueConfig:
    """The feedback queue's settings as its dispatcher reads them (`[feedback]`, and Sell's URL it writes to)."""

    concurrency: int
    max_backoff: float
    max_attempts: int | None
    late_write_window: float
    base_url: str

    @classmethod
    def of(cls, config: Config) -> QueueConfig:
        feedback = config.feedback
        return cls(
            concurrency=feedback.concurrency,
            max_backoff=feedback.max_backoff,
            max_attempts=feedback.max_attempts,
            late_write_window=feedback.late_write_window,
            base_url=config.sell.base_url,
        )


class FeedbackLookups(Protocol):
    """What the feedback writer asks of the store (syncd.ledger.Ledger answers)."""

    async def outcomes(self, key: str) -> dict[str, Status]:
        """The latest outcome of `key` in each destination that feeds back."""
        ...

    async def feedback_mark(self, kind: str, record_id: int) -> FeedbackMark | None:
        """What syncd wrote on the Sell record (None: nothing yet)."""
        ...

    async def note_feedback_write(
        self, kind: str, record_id: int, *, owned: Sequence[str], write: dict[str, Any] | None
    ) -> None:
        """The tags syncd owns on the record after the write it is about to make (`write`; None: none)."""
        ...


class _V2Person(msgspec.Struct):
    tags: list[str] | None = None
    custom_fields: dict[str, Any] | None = None


class _V2Item(msgspec.Struct):
    data: _V2Person


_item = msgspec.json.Decoder(_V2Item)


class FeedbackWriter:
    """Writes outcomes on Sell leads and contacts, one key at a time."""

    name = NAME
    batch_size = 1

    def __init__(
        self,
        sell: SellConfig,
        destinations: Mapping[str, FeedbackSink],
        *,
        lookups: FeedbackLookups,
        shared: Limiter,
        own: Limiter,
    ) -> None:
        self.destinations = dict(destinations)
        self.manageable = managed(self.destinations)
        self.lookups = lookups
        self._shared = shared
        self._own = own
        self.api = CoreApi(sell, shared, slot=self._slot)
        self.last_write = 0.0  # (monotonic) when the last write to Sell was sent: its echo is still to be read
        self._log = get_logger(sink=NAME)

    async def _slot(self) -> None:
        await self._own.acquire()
        await self._shared.acquire_spare(SPARE)

    async def deliver(self, works: Sequence[KeyWork]) -> list[Result]:
        results: list[Result] = []
        for work in works:
            try:
                results.append(await self._one(work))
            except Exception as exc:  # a bug on one record must not stop the queue
                results.append(crashed(NAME, work.key, work.seqs, exc))
        return results

    async def _one(self, work: KeyWork) -> Result:
        if work.kind not in PEOPLE:
            return Skipped(work.key, work.seqs, "feedback is written on Sell leads and contacts only")
        if work.shadow is not None and work.shadow.deleted:
            return Skipped(work.key, work.seqs, "the record is deleted in Sell: nothing to write on")
        want = wanted(await self.lookups.outcomes(work.key), self.destinations)
        sign = digest(want.as_json())
        fresh = not work.tried and not work.reassert
        if fresh and work.link is not None and work.link.digest == sign:
            return Skipped(work.key, work.seqs, UNCHANGED, digest=sign)
        path = f"/v2/{work.kind}s/{work.record_id}"
        try:
            answer = await self.api.get(path)
        except CallError as exc:
            return self._failed(work, exc)
        try:
            current = _item.decode(answer.body).data
        except msgspec.MsgspecError as exc:
            return Skipped(work.key, work.seqs, f"Sell's answer to GET {path} is not a lead or contact: {exc}")
        tags = [t for t in current.tags or () if isinstance(t, str)]
        held = current.custom_fields or {}
        mark = await self.lookups.feedback_mark(work.kind, work.record_id)
        merged = merge(tags, want.tags, mark.owned if mark is not None else (), self.manageable)
        fields = {name: text for name, text in want.fields.items() if held.get(name) != text}
        data: dict[str, Any] = {}
        if merged.changed:
            data["tags"] = list(merged.tags)
        if fields:
            data["custom_fields"] = fields
        sent = {"tags": list(merged.owned), "fields": dict(want.fields)}
        if not data:
            if mark is None or set(mark.owned) != set(merged.owned):
                await self.lookups.note_feedback_write(work.kind, work.record_id, owned=merged.owned, write=None)
            return Done(work.key, work.seqs, digest=sign, sent=sent, detail="Sell already shows it", wrote=False)
        write = {"tags": data.get("tags"), "fields": fields}
        await self.lookups.note_feedback_write(work.kind, work.record_id, owned=merged.owned, write=write)
        try:
            self.last_write = time.monotonic()
            await self.api.put(path, data)
        except CallError as exc:
            return self._failed(work, exc)
        added = [t for t in merged.tags if t not in tags]
        removed = [t for t in tags if t not in merged.tags]
        detail = ", ".join(
            part
            for part in (
                f"tags added {added}" if added else "",
                f"tags removed {removed}" if removed else "",
                f"fields {sorted(fields)}" if fields else "",
            )
            if part
        )
        return Done(work.key, work.seqs, digest=sign, sent=sent, detail=detail or "written")

    def _failed(self, work: KeyWork, exc: CallError) -> Result:
        if exc.http_status == 404:
            return Skipped(work.key, work.seqs, "the record is no longer in Sell (404): nothing to write on")
        return Failed(work.key, work.seqs, exc)

    async def probe(self) -> None:
        """One cheap read of the Core API (raises DestinationError on refused credentials)."""
        await self.api.get("/v2/leads", {"per_page": "1"})

    async def fields(self) -> list[DestinationField]:
        return []

    async def aclose(self) -> None:
        await self.api.aclose()
