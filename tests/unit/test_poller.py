"""The poller against a fake store and a scripted Firehose client (small classes implementing its protocols), with
fake time: its phases, backoff and its growth, expiry on 410, stopping on 401/403, a malformed page retried from the
same position, quarantine, sleeping at the top, throttles held for every stream, and waiting for room."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import anyio
import msgspec
import pytest
from structlog.testing import capture_logs

from state import IngestResult, Quarantined, StreamPosition
from syncd.config import Duration, Secret, SellConfig
from syncd.errors import CallError, DestinationError, PermanentError, RateLimited, StreamExpired, TransientError
from syncd.events import ChangeEvent
from syncd.ratelimit import Limiter
from syncd.sandbox.sell.history import item
from syncd.sell.poller import Poller, Room
from tests.support import FakeClock

STREAM = "leads"


class TopRandom(random.Random):
    """Jitter that always draws the top of its range, so every backoff is its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


class FakeTime(FakeClock):
    """A clock that moves only when someone sleeps on it; every sleep is recorded, with what the poller was doing."""

    def __init__(self) -> None:
        super().__init__()
        self.sleeps: list[float] = []
        self.poller: Poller | None = None
        self.phases: list[str] = []  # the poller's phase as each sleep began

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.phases.append(self.poller.state.phase if self.poller else "")
        self.advance(seconds)
        await anyio.lowlevel.checkpoint()


def page(position: str, *items: Any, top: bool = False) -> bytes:
    return msgspec.json.encode({"items": list(items), "meta": {"position": position, "top": top}})


def lead(record_id: int, sequence: int = 1, **fields: Any) -> Any:
    return item("lead", {"id": record_id, "email": f"{record_id}@x.org", **fields}, sequence=sequence)


class ScriptedFirehose:
    """Answers each fetch with the next body or raises the next error; once the script is spent it signals and
    waits forever (the test then cancels the poller, as the daemon does)."""

    def __init__(self, *script: bytes | CallError) -> None:
        self.script = list(script)
        self.fetched: list[tuple[str, str, int]] = []  # (stream, position, limit)
        self.spent = anyio.Event()
        self.phases: list[str] = []  # the poller's phase as each fetch began
        self.poller: Poller | None = None

    async def fetch_page(self, stream: str, position: str, limit: int) -> bytes:
        self.fetched.append((stream, position, limit))
        self.phases.append(self.poller.state.phase if self.poller else "")
        if not self.script:
            self.spent.set()
            await anyio.sleep_forever()
        answer = self.script.pop(0)
        if isinstance(answer, CallError):
            raise answer
        return answer

    @property
    def positions(self) -> list[str]:
        return [position for _, position, _ in self.fetched]


@dataclass
class Ingested:
    events: list[ChangeEvent]
    position: str
    at_top: bool
    quarantined: list[Quarantined]


@dataclass
class FakeStreamStore:
    """The poller's part of the store, in memory: positions, the pages ingested, the marks made."""

    stored: str | None = None
    pages: list[Ingested] = field(default_factory=list)
    marks: list[tuple[bool, str | None]] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)  # what note_failure recorded
    seen: set[tuple[str, int, int, str]] = field(default_factory=set)

    async def position(self, stream: str) -> StreamPosition | None:
        if self.stored is None:
            return None
        return StreamPosition(stream, self.stored, False, 0.0, expired=False, stopped=None)

    async def ingest(
        self,
        stream: str,
        events: Sequence[ChangeEvent],
        *,
        position: str,
        at_top: bool,
        quarantined: Sequence[Quarantined] = (),
    ) -> IngestResult:
        new = [e for e in events if e.identity not in self.seen]
        self.seen.update(e.identity for e in events)
        self.pages.append(Ingested(list(events), position, at_top, list(quarantined)))
        self.stored = position
        return IngestResult(
            received=len(events),
            new=len(new),
            duplicates=len(events) - len(new),
            stale=0,
            deliveries=len(new),
            quarantined=len(quarantined),
        )

    async def mark_stream(self, stream: str, *, expired: bool = False, stopped: str | None = None) -> None:
        self.marks.append((expired, stopped))

    async def note_failure(self, stream: str, failures: int, error: str) -> None:
        self.failures.append((failures, error))


def poller(
    client: ScriptedFirehose,
    store: FakeStreamStore,
    time: FakeTime,
    *,
    backlog: Room | None = None,
    queued: list[int] | None = None,
    **settings: Any,
) -> Poller:
    settings = {"poll_interval": Duration(5), "page_limit": 50, "max_backoff": Duration(8), **settings}
    config = SellConfig(token=Secret("token"), **settings)
    made = Poller(
        STREAM,
        client=client,
        store=store,
        config=config,
        limiter=Limiter("sell", None, clock=time, sleep=time.sleep),
        backlog=backlog,
        rng=TopRandom(),
        sleep=time.sleep,
        on_ingest=queued.append if queued is not None else None,
    )
    client.poller = time.poller = made
    return made


async def until_spent(p: Poller, client: ScriptedFirehose) -> None:
    """Run the poller until the client's script is spent, then cancel it (the daemon's stop)."""
    async with anyio.create_task_group() as tg:
        tg.start_soon(p.run)
        await client.spent.wait()
        tg.cancel_scope.cancel()


# ---------------------------------------------------------------------------------------------------------------
# reading


@pytest.mark.parametrize(
    ("stored", "start", "first"),
    [(None, "tail", "tail"), (None, "top", "top"), ("cD0x", "tail", "cD0x"), ("", "top", "top")],
)
async def test_the_first_read_starts_from_the_stored_position_or_the_configured_start(
    stored: str | None, start: str, first: str
) -> None:
    """A stored position wins; without one (or an empty one) the stream starts at `tail` or `top` as configured."""
    time, client = FakeTime(), ScriptedFirehose()
    p = poller(client, FakeStreamStore(stored=stored), time, start=start)
    await until_spent(p, client)
    assert client.fetched == [(STREAM, first, 50)]


async def test_pages_are_drained_until_the_top_then_polled_every_interval() -> None:
    """Pages with top false are read back to back from each new position; at the top the poller sleeps the poll
    interval, reporting itself at top, and reads on from the last position."""
    time = FakeTime()
    client = ScriptedFirehose(
        page("p1", lead(1)), page("p2", lead(2), lead(3)), page("p3", top=True), page("p3", top=True)
    )
    store = FakeStreamStore()
    queued: list[int] = []
    p = poller(client, store, time, queued=queued)
    assert p.state.phase == "starting"
    await until_spent(p, client)
    assert client.positions == ["tail", "p1", "p2", "p3", "p3"]
    assert client.phases == ["reading", "reading", "reading", "at_top", "at_top"]
    assert time.sleeps == [5.0, 5.0] and time.phases == ["at_top", "at_top"]
    assert [(x.position, x.at_top, [e.record_id for e in x.events]) for x in store.pages] == [
        ("p1", False, [1]),
        ("p2", False, [2, 3]),
        ("p3", True, []),
        ("p3", True, []),
    ]
    assert queued == [1, 2]  # dispatchers are woken for pages that queued deliveries
    assert (p.state.events, p.state.duplicates, p.state.at_top, p.state.phase) == (3, 0, True, "at_top")


async def test_repeated_items_count_as_duplicates() -> None:
    """Items the store already holds (a page read again after a crash) are counted as duplicates, not events."""
    time = FakeTime()
    client = ScriptedFirehose(page("p1", lead(1), lead(2)), page("p2", lead(2), lead(3), top=True))
    p = poller(client, FakeStreamStore(), time)
    await until_spent(p, client)
    assert (p.state.events, p.state.duplicates) == (3, 1)


async def test_an_item_that_cannot_be_normalised_is_quarantined_and_the_page_goes_on() -> None:
    """A bad item is handed to the store with its reason and raw body, in the same ingest as the good ones."""
    time = FakeTime()
    bad = item("lead", {"id": "one"})
    client = ScriptedFirehose(page("p1", lead(1), bad, lead(2), top=True))
    store = FakeStreamStore()
    p = poller(client, store, time)
    with capture_logs() as logs:
        await until_spent(p, client)
    [ingested] = store.pages
    assert [e.record_id for e in ingested.events] == [1, 2] and ingested.position == "p1"
    [quarantined] = ingested.quarantined
    assert quarantined.reason.startswith("lead.id: ") and msgspec.json.decode(quarantined.raw) == bad
    assert p.state.quarantined == 1
    assert [e["event"] for e in logs if e["event"] == "item_quarantined"] == ["item_quarantined"]


# ---------------------------------------------------------------------------------------------------------------
# failing


@pytest.mark.parametrize(
    "failure",
    [
        pytest.param(TransientError("Sell answered 503", http_status=503), id="5xx"),
        pytest.param(TransientError("Sell: timed out"), id="timeout"),
        pytest.param(b"<html>502 Bad Gateway</html>", id="malformed-page"),
        pytest.param(page(""), id="empty-position"),
    ],
)
async def test_a_failed_read_backs_off_and_retries_from_the_same_position(failure: bytes | CallError) -> None:
    """A transient failure or a page that cannot be decoded moves nothing: the same position is read again after
    a backoff that doubles each time (capped), and the first success resets it and is logged as a recovery."""
    time = FakeTime()
    client = ScriptedFirehose(page("p1", lead(1)), *[failure] * 6, page("p2", lead(2)), failure, page("p3", top=True))
    store = FakeStreamStore()
    p = poller(client, store, time)
    with capture_logs() as logs:
        await until_spent(p, client)
    assert client.positions == ["tail", *["p1"] * 7, "p2", "p2", "p3"]
    assert time.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 0.5, 5.0]  # the last one: at the top
    assert set(time.phases[:-1]) == {"backing_off"}
    assert [x.position for x in store.pages] == ["p1", "p2", "p3"]
    failed = [e for e in logs if e["event"] == "poll_failed"]
    assert [e["attempt"] for e in failed] == [1, 2, 3, 4, 5, 6, 1]
    assert [e["after_failures"] for e in logs if e["event"] == "stream_recovered"] == [6, 1]
    assert (p.state.failures, p.state.last_error) == (0, "")


async def test_an_expired_stream_stops_loudly() -> None:
    """410 marks the stream expired: the poller returns, the store records it, and nothing is skipped or retried."""
    time = FakeTime()
    error = StreamExpired("Sell answered 410: past retention", http_status=410)
    client = ScriptedFirehose(page("p1", lead(1), top=True), error)
    store = FakeStreamStore()
    p = poller(client, store, time)
    with capture_logs() as logs:
        state = await p.run()
    assert (state.phase, state.at_top, state.last_error, state.finished) == ("expired", False, error.message, True)
    assert store.marks == [(True, None)]
    assert [x.position for x in store.pages] == ["p1"] and client.positions == ["tail", "p1"]
    assert [e["log_level"] for e in logs if e["event"] == "stream_expired"] == ["error"]


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(DestinationError("Sell answered 401: invalid token", http_status=401), id="401"),
        pytest.param(DestinationError("Sell answered 403: root user only", http_status=403), id="403"),
        pytest.param(PermanentError("Sell answered 400: bad limit", http_status=400), id="400"),
    ],
)
async def test_a_refused_stream_stops_loudly_and_is_probed_until_it_reads(error: CallError) -> None:
    """401/403 (or any refusal of Sell's own) stop the stream loudly (the store records why, readiness says it),
    then the same position is probed with a backoff that grows to the cap, even through a probe that gets no
    answer; the first page read resumes the stream by itself, without a restart, and nothing was skipped."""
    time = FakeTime()
    timeout = TransientError("Sell did not answer in time")
    client = ScriptedFirehose(
        page("p1", lead(1), top=True), error, error, timeout, error, page("p2", lead(2), top=True)
    )
    store = FakeStreamStore()
    p = poller(client, store, time, max_backoff=Duration(3))
    phases: list[tuple[str, bool]] = []
    client.fetch_page = _watching(client.fetch_page, lambda: phases.append((p.state.phase, p.state.finished)))
    with capture_logs() as logs:
        await until_spent(p, client)
    assert store.marks == [(False, error.message)]
    assert client.positions == ["tail", "p1", "p1", "p1", "p1", "p1", "p2"]
    assert phases[2:6] == [("stopped", True)] * 4  # every probe: stopped, reported as such
    assert time.sleeps == [5.0, 1.0, 2.0, 3.0, 3.0, 5.0]  # at the top, then the probes' backoff (capped at 3 s)
    assert [x.position for x in store.pages] == ["p1", "p2"]
    assert store.failures == []  # a stopped stream is not "failing": it is stopped
    events = [e["event"] for e in logs if e["event"].startswith("stream_")]
    assert events == ["stream_started", "stream_stopped", *["stream_probe_failed"] * 3, "stream_resumed"]
    assert [e["log_level"] for e in logs if e["event"] == "stream_stopped"] == ["error"]
    assert (p.state.phase, p.state.finished, p.state.probes, p.state.last_error) == ("at_top", False, 0, "")


def _watching(fetch: Any, before: Any) -> Any:
    async def watched(stream: str, position: str, limit: int) -> bytes:
        before()
        result: bytes = await fetch(stream, position, limit)
        return result

    return watched


async def test_a_page_that_keeps_failing_makes_the_stream_failing_until_it_reads() -> None:
    """Every failed read of the same page is recorded in the store with its error; after five in a row the stream
    is "failing" (logged once, at error), until the page is read."""
    time = FakeTime()
    bad = b'{"items": [], "meta": {"position": 7, "top": true}}'
    client = ScriptedFirehose(*[bad] * 6, page("p1", top=True))
    store = FakeStreamStore()
    p = poller(client, store, time)
    failing: list[bool] = []
    client.fetch_page = _watching(client.fetch_page, lambda: failing.append(p.state.failing))
    with capture_logs() as logs:
        await until_spent(p, client)
    assert failing == [False] * 5 + [True, True, False]  # the last: after p1 was read
    assert [n for n, _ in store.failures] == [1, 2, 3, 4, 5, 6]
    assert all(error.startswith("not a Firehose page: meta.position") for _, error in store.failures)
    assert [e["failures"] for e in logs if e["event"] == "stream_failing"] == [5]
    assert not p.state.failing and p.state.failures == 0


async def test_a_throttle_holds_every_stream_through_the_shared_limiter() -> None:
    """A 429 (or Sell's 409) pauses the limiter every stream shares for the backoff, so the next read of any stream
    waits for it."""
    time = FakeTime()
    client = ScriptedFirehose(RateLimited("Sell answered 429", http_status=429), page("p1", top=True))
    p = poller(client, FakeStreamStore(), time)
    await until_spent(p, client)
    assert p.limiter.pauses == 1
    # The poller's own backoff (0.5 s) sleeps through the pause it set, so its next read does not wait again.
    assert time.sleeps == [0.5, 5.0]


async def test_another_stream_waits_for_the_shared_throttle() -> None:
    """A stream that reads while another stream's throttle holds the shared limiter waits for its reset first."""
    time = FakeTime()
    limiter = Limiter("sell", None, clock=time, sleep=time.sleep)
    limiter.pause(3.0)
    client = ScriptedFirehose(page("p1", top=True))
    p = poller(client, FakeStreamStore(), time)
    p.limiter = limiter
    await until_spent(p, client)
    assert time.sleeps == [3.0, 5.0]


# ---------------------------------------------------------------------------------------------------------------
# backpressure


async def test_no_page_is_read_until_there_is_room_for_it() -> None:
    """Before each page the poller asks for room (the state file's budget) and reads nothing until it is given."""
    time = FakeTime()
    room = FakeRoom()
    client = ScriptedFirehose(page("p1", lead(1)), page("p2", top=True))
    p = poller(client, FakeStreamStore(), time, backlog=room)
    async with anyio.create_task_group() as tg:
        tg.start_soon(p.run)
        await room.asked.wait()
        assert client.fetched == []  # held before the first page
        room.open.set()
        await client.spent.wait()
        tg.cancel_scope.cancel()
    assert client.positions == ["tail", "p1", "p2"]
    assert room.asks >= 3 and room.deliveries == [1]


class FakeRoom:
    """Room that is given once the test opens it; counts what it was asked and told."""

    def __init__(self) -> None:
        self.asked = anyio.Event()
        self.open = anyio.Event()
        self.asks = 0
        self.deliveries: list[int] = []

    def queued(self, deliveries: int) -> None:
        self.deliveries.append(deliveries)

    async def wait_for_room(self) -> None:
        self.asks += 1
        self.asked.set()
        await self.open.wait()
