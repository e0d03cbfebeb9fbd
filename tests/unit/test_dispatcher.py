"""The dispatcher against a fake store and a fake writer (small classes implementing its protocols): the outcome it
decides for each writer result and error class, the circuit breaker and its half-open probe, the auth pause and its
probes, throttles through the shared limiter, unanswered keys, and a writer that crashes."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager

import anyio
import pytest
from structlog.testing import capture_logs

from syncd.config import Duration, SinkConfig
from syncd.dispatcher import Dispatcher, DispatchStore
from syncd.errors import CallError, DestinationError, PermanentError, RateLimited, TransientError
from syncd.ratelimit import TICKET, Limiter
from syncd.sinks.base import DestinationField, Writer
from syncd.work import (
    Dead,
    Deferred,
    Delivery,
    Done,
    Failed,
    KeyWork,
    Outcome,
    Released,
    Result,
    Retry,
    Skipped,
    Wait,
    Waiting,
    split_key,
)
from tests.factories import event
from tests.support import FakeClock, await_until

SINK = "fake"
NOW = 1_795_000_000.0


class TopRandom(random.Random):
    """Jitter that always draws the top of its range, so every backoff is its ceiling."""

    def uniform(self, a: float, b: float) -> float:
        return b


class FakeQueue:
    """The dispatcher's part of the store, in memory: keys due at a time on the shared clock."""

    def __init__(self, clock: FakeClock, keys: Iterable[str] = (), *, attempts: int = 0) -> None:
        self.clock = clock
        self.due: dict[str, float] = dict.fromkeys(keys, 0.0)  # unclaimed keys, in claim order
        self.first_attempts = attempts  # attempts a key has made before the test starts
        self.attempts: dict[str, int] = {}
        self.claims: list[tuple[int, list[str]]] = []  # (limit, keys) of every claim that found keys
        self.loads: list[list[str]] = []  # the keys of every load_work
        self.committed: list[Outcome] = []
        self.sink_states: list[tuple[str | None, float | None]] = []
        self.waits: dict[str, Wait] = {}  # key -> what it waits on

    async def claim(self, sink: str, limit: int, *, late_window: float = 0.0) -> list[str]:
        keys = [key for key, at in self.due.items() if at <= self.clock()][:limit]
        for key in keys:
            del self.due[key]
        if keys:
            self.claims.append((limit, keys))
        return keys

    async def next_due(self, sink: str) -> float | None:
        return min(self.due.values(), default=None)

    async def load_work(self, sink: str, keys: Sequence[str]) -> list[KeyWork]:
        self.loads.append(list(keys))
        works = []
        for key in keys:
            kind, record_id = split_key(key)
            delivery = Delivery(record_id, event(kind, record_id, 1, "created", email=f"{record_id}@x.org"))
            attempts = self.attempts.get(key, self.first_attempts)
            works.append(KeyWork(sink, key, attempts, (delivery,), None, None, waiting=self.waits.get(key)))
        return works

    async def commit(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        for outcome in outcomes:
            self.committed.append(outcome)
            match outcome:
                case Retry():
                    self.attempts[outcome.key] = self.attempts.get(outcome.key, self.first_attempts) + 1
                    self.due[outcome.key] = outcome.at
                case Deferred():
                    self.due[outcome.key] = outcome.at
                case Waiting():
                    before = self.waits.get(outcome.key)
                    checks = before.checks + 1 if before is not None and before.on == outcome.on else 1
                    self.waits[outcome.key] = Wait(outcome.on, outcome.reason, self.clock(), checks)
                    self.due[outcome.key] = outcome.at if outcome.at is not None else self.clock() + 30
                case Released():
                    self.due[outcome.key] = self.clock()
                case Done() | Skipped() | Dead():
                    self.waits.pop(outcome.key, None)
                    for waiter, wait in self.waits.items():  # the store releases the keys waiting on it
                        if wait.on == outcome.key and waiter in self.due:
                            self.due[waiter] = self.clock()

    async def set_sink_state(self, sink: str, *, paused: str | None, until: float | None = None) -> None:
        self.sink_states.append((paused, until))

    def outcomes(self, key: str) -> list[Outcome]:
        return [o for o in self.committed if o.key == key]


Answer = Callable[[KeyWork], Result | None]  # None: the writer does not answer for that key


def done(work: KeyWork) -> Result:
    return Done(work.key, work.seqs, remote_id=f"r-{work.record_id}")


def failing(error: CallError) -> Answer:
    return lambda work: Failed(work.key, work.seqs, error)


class FakeWriter:
    """A writer whose answer to each key the test decides (and may change), with scripted probe failures."""

    name = SINK

    def __init__(self, answer: Answer = done, *, batch_size: int = 1) -> None:
        self.answer = answer
        self.batch_size = batch_size
        self.batches: list[list[str]] = []
        self.crash: Exception | None = None
        self.crash_on: str | None = None  # crash on any batch holding this key
        self.probe_errors: list[CallError] = []
        self.probes = 0
        self.reaches = True  # each batch makes one call, which reaches the destination (else: refused at connect)

    async def deliver(self, works: Sequence[KeyWork]) -> list[Result]:
        self.batches.append([w.key for w in works])
        ticket = TICKET.get()  # None when a test calls `process` itself
        if ticket is not None:
            ticket.calls += 1  # as the limiter counts a call let through, and the HTTP layer how it ended
            if self.reaches:
                ticket.reached += 1
            else:
                ticket.void += 1
        if self.crash is not None:
            raise self.crash
        if self.crash_on in [w.key for w in works]:
            raise KeyError("surprise")
        return [r for r in (self.answer(w) for w in works) if r is not None]

    async def probe(self) -> None:
        self.probes += 1
        if self.probe_errors:
            raise self.probe_errors.pop(0)

    async def fields(self) -> list[DestinationField]:
        return []

    async def aclose(self) -> None:
        return None


def dispatcher(
    writer: Writer,
    store: DispatchStore,
    clock: FakeClock,
    *,
    max_backoff: float = 300.0,
    max_attempts: int | None = None,
    concurrency: int = 1,
) -> Dispatcher:
    config = SinkConfig(max_backoff=Duration(max_backoff), max_attempts=max_attempts, concurrency=concurrency)
    limiter = Limiter(SINK, None, clock=clock)
    return Dispatcher(writer, store, config, limiter, clock=clock, rng=TopRandom())


async def until(condition: Callable[[], object], *, what: str) -> None:
    """Wait (with a deadline) until `condition()` holds."""

    async def check() -> object:
        return condition()

    await await_until(check, what=what)


@asynccontextmanager
async def running(d: Dispatcher) -> AsyncIterator[anyio.Event]:
    """The dispatcher's loop in the background; stopped (in-flight work committed) when the block ends."""
    stop = anyio.Event()
    async with anyio.create_task_group() as tg:
        tg.start_soon(d.run, stop)
        try:
            yield stop
        finally:
            stop.set()
            d.wake()


# ---------------------------------------------------------------------------------------------------------------
# one result, one outcome


@pytest.mark.parametrize(
    ("answer", "attempts", "expected", "counted", "pause_kind"),
    [
        pytest.param(done, 0, Done("lead:1", (1,), remote_id="r-1"), {"done": 1}, None, id="done"),
        pytest.param(
            lambda w: Skipped(w.key, w.seqs, "no e-mail"),
            0,
            Skipped("lead:1", (1,), "no e-mail"),
            {"skipped": 1},
            None,
            id="skipped",
        ),
        pytest.param(
            lambda w: Deferred(w.key, NOW + 5, "waits"),
            0,
            Deferred("lead:1", NOW + 5, "waits"),
            {},
            None,
            id="deferred",
        ),
        pytest.param(
            lambda w: Waiting(w.key, "contact:2", "contact:2 is not there yet"),
            0,
            Waiting("lead:1", "contact:2", "contact:2 is not there yet", NOW + 5.0),
            {"waiting": 1},
            None,
            id="waiting-rechecked-soon",
        ),
        pytest.param(
            lambda w: Waiting(w.key, "contact:2", "not yet", NOW + 60),
            3,
            Waiting("lead:1", "contact:2", "not yet", NOW + 60),
            {"waiting": 1},
            None,
            id="waiting-at-its-own-time-no-attempt",
        ),
        pytest.param(
            lambda w: Dead(w.key, w.seqs, "refused", 400),
            0,
            Dead("lead:1", (1,), "refused", 400),
            {"dead": 1},
            None,
            id="dead-from-the-writer",
        ),
        pytest.param(
            failing(TransientError("timed out", http_status=None)),
            0,
            Retry("lead:1", NOW + 1.0, "timed out", None),
            {"retried": 1},
            None,
            id="transient-first-attempt",
        ),
        pytest.param(
            failing(TransientError("HTTP 503", http_status=503)),
            2,
            Retry("lead:1", NOW + 4.0, "HTTP 503", 503),
            {"retried": 1},
            None,
            id="transient-backoff-grows",
        ),
        pytest.param(
            failing(TransientError("HTTP 503", http_status=503, retry_after=30.0)),
            0,
            Retry("lead:1", NOW + 31.0, "HTTP 503", 503),
            {"retried": 1},
            None,
            id="transient-retry-after-honoured",
        ),
        pytest.param(
            failing(PermanentError("invalid e-mail", http_status=422, request='{"email": "x"}')),
            1,
            Dead("lead:1", (1,), "invalid e-mail", 422, '{"email": "x"}', 2),
            {"dead": 1},
            None,
            id="permanent",
        ),
        pytest.param(
            failing(DestinationError("HTTP 401", http_status=401)),
            0,
            Released("lead:1"),
            {},
            "auth",
            id="credentials-refused",
        ),
        pytest.param(
            failing(RateLimited("HTTP 429", http_status=429, retry_after=7.0)),
            0,
            Released("lead:1"),
            {"throttled": 1},
            None,
            id="throttled",
        ),
    ],
)
async def test_each_writer_result_becomes_one_outcome(
    answer: Answer, attempts: int, expected: Outcome, counted: dict[str, int], pause_kind: str | None
) -> None:
    """Outcomes pass through; a failure becomes a Retry (backoff by attempt, Retry-After honoured), a Dead (with
    the attempt, status and request), or a Released key when the whole destination pauses or is throttled."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock, attempts=attempts)
    d = dispatcher(FakeWriter(answer), store, clock)
    assert await d.process(["lead:1"]) == [expected]
    assert d.state.outcomes == counted
    assert d.state.pause_kind == pause_kind


async def test_a_key_still_waiting_is_rechecked_later_and_reported_once() -> None:
    """Found waiting on the same key again, a key is looked at after a doubling delay (capped), logged at info when
    it starts waiting and at debug while it still waits; waiting on another key starts the delay afresh."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock)
    on = {"key": "contact:2"}
    d = dispatcher(FakeWriter(lambda w: Waiting(w.key, on["key"], "not yet")), store, clock)
    delays, levels = [], []
    with capture_logs() as logs:
        for n in range(9):
            if n == 8:
                on["key"] = "stage:4"
            outcome = (await d.process(["lead:1"]))[0]
            assert isinstance(outcome, Waiting) and outcome.at is not None
            delays.append(outcome.at - NOW)
            await store.commit(SINK, [outcome])
    levels = [(e["log_level"], e["checks"]) for e in logs if e["event"] == "delivery_waiting"]
    assert delays == [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 300.0, 300.0, 5.0]
    assert levels == [("info", 1)] + [("debug", n) for n in range(2, 9)] + [("info", 1)]


async def test_a_waiting_key_goes_out_as_soon_as_the_key_it_waits_on_is_written() -> None:
    """A key waiting on a contact is delivered right after the contact's outcome is committed, without any
    recheck delay passing (the clock never moves), and the contact is written once."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock, ["lead:1", "contact:2"])
    written: list[str] = []

    def answer(work: KeyWork) -> Result:
        if work.key == "lead:1" and "contact:2" not in written:
            return Waiting(work.key, "contact:2", "contact:2 is not in the destination yet")
        written.append(work.key)
        return done(work)

    d = dispatcher(FakeWriter(answer), store, clock, concurrency=1)
    async with running(d):
        await until(lambda: written == ["contact:2", "lead:1"], what="the waiting key after its contact")
    assert [type(o).__name__ for o in store.outcomes("lead:1")] == ["Waiting", "Done"]
    assert store.waits == {}


async def test_giving_up_after_max_attempts_dead_letters_the_key() -> None:
    """With max_attempts set, the last transient failure is dead-lettered with the count and the last error."""
    clock = FakeClock(NOW)
    writer = FakeWriter(failing(TransientError("HTTP 502", http_status=502)))
    d = dispatcher(writer, FakeQueue(clock, attempts=2), clock, max_attempts=3)
    assert await d.process(["lead:1"]) == [Dead("lead:1", (1,), "gave up after 3 attempts: HTTP 502", 502, None, 3)]


async def test_keys_the_writer_does_not_answer_are_released() -> None:
    """A key missing from the writer's results goes back to the queue unchanged, never lost or marked done."""
    clock = FakeClock(NOW)
    writer = FakeWriter(lambda w: done(w) if w.key == "lead:2" else None, batch_size=3)
    outcomes = await dispatcher(writer, FakeQueue(clock), clock).process(["lead:1", "lead:2", "lead:3"])
    assert outcomes == [Done("lead:2", (2,), remote_id="r-2"), Released("lead:1"), Released("lead:3")]


@pytest.mark.parametrize(
    ("error", "unsure"),
    [
        (TransientError("did not answer in time", uncertain=True), True),
        (TransientError("HTTP 502", http_status=502, uncertain=True), True),
        (TransientError("could not be reached: ConnectError"), False),
    ],
)
async def test_a_retry_says_whether_the_failed_write_may_still_land(error: TransientError, unsure: bool) -> None:
    """A failure that may have taken effect (a timeout, a 5xx) makes the retry unsure, so the store checks the key
    for a late write; a call that never left does not."""
    clock = FakeClock(NOW)
    [outcome] = await dispatcher(FakeWriter(failing(error)), FakeQueue(clock), clock).process(["lead:1"])
    assert isinstance(outcome, Retry) and outcome.unsure is unsure


@pytest.mark.parametrize(("reaches", "sent_nothing"), [(False, True), (True, False)])
async def test_a_batch_whose_every_call_was_refused_at_connect_left_no_write(reaches: bool, sent_nothing: bool) -> None:
    """A batch whose calls all failed before leaving (a refused connection) is committed as having sent nothing,
    so its claim does not count as one that may have left a write; one whose call reached the destination is."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock, ["lead:1"])
    writer = FakeWriter(failing(TransientError("could not be reached: ConnectError")))
    writer.reaches = reaches
    async with running(dispatcher(writer, store, clock)):
        await until(lambda: bool(store.outcomes("lead:1")), what="lead:1's outcome")
    [outcome, *_] = store.outcomes("lead:1")
    assert isinstance(outcome, Retry) and outcome.sent_nothing is sent_nothing


class GatedWriter(FakeWriter):
    """A one-key writer whose every batch waits for `gate` before it calls (it has sent nothing until then)."""

    def __init__(self, answer: Answer = done) -> None:
        super().__init__(answer)
        self.gate = anyio.Event()
        self.waiting = 0

    async def deliver(self, works: Sequence[KeyWork]) -> list[Result]:
        self.waiting += 1
        await self.gate.wait()
        return await super().deliver(works)


async def test_a_one_key_writers_keys_are_claimed_and_loaded_in_sets_and_delivered_one_a_batch() -> None:
    """A writer of one key a batch has its keys claimed and loaded two per slot at once (one claim, one load), and
    each key still goes alone, at most `concurrency` at a time, to its own outcome."""
    clock = FakeClock(NOW)
    keys = [f"lead:{n}" for n in range(1, 11)]
    store = FakeQueue(clock, keys)
    writer = FakeWriter()
    async with running(dispatcher(writer, store, clock, concurrency=2)):
        await until(lambda: len(store.committed) == 10, what="every key's outcome")
    assert store.claims == [(4, keys[0:4]), (4, keys[4:8]), (4, keys[8:10])]
    assert store.loads == [keys[0:4], keys[4:8], keys[8:10]]
    assert writer.batches == [[key] for key in keys]
    assert [o for o in store.committed if not isinstance(o, Done)] == []


async def test_at_a_stop_a_sets_keys_not_started_are_released_having_sent_nothing() -> None:
    """A stop releases the claimed keys of a set that were never started, unchanged and counted as having sent
    nothing (their claim left no write), besides dropping the batch that had sent nothing yet."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock, ["lead:1", "lead:2", "lead:3"])
    writer = GatedWriter()
    d = dispatcher(writer, store, clock, concurrency=1)
    async with running(d):
        await until(lambda: writer.waiting == 1, what="lead:1 to wait for its call")
        assert d.drop_unsent() == 2 and not d.idle
    assert store.claims == [(2, ["lead:1", "lead:2"])]
    assert store.outcomes("lead:1") == [Released("lead:1", sent_nothing=True)]
    assert store.outcomes("lead:2") == [Released("lead:2", sent_nothing=True)]
    assert store.outcomes("lead:3") == [] and writer.batches == []


async def test_an_open_breaker_releases_a_sets_keys_not_started() -> None:
    """When the breaker opens, the keys of a set not started yet go back to the queue unchanged at once, having
    sent nothing, instead of being held (their loaded work going stale) through the pause."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock, [f"lead:{n}" for n in range(1, 6)])
    writer = FakeWriter(_result("transient"))
    d = dispatcher(writer, store, clock, concurrency=1)
    async with running(d):
        await until(lambda: bool(store.outcomes("lead:4")), what="lead:4 to be released")
        assert d.state.pause_kind == "unavailable"
    assert store.claims[:2] == [(2, ["lead:1", "lead:2"]), (2, ["lead:3", "lead:4"])]
    assert writer.batches == [["lead:1"], ["lead:2"], ["lead:3"]]
    assert store.outcomes("lead:4") == [Released("lead:4", sent_nothing=True)]


class PreparingWriter(FakeWriter):
    """A one-key writer that asks something once for each set (recorded; raising `prepare_error` when set)."""

    def __init__(self) -> None:
        super().__init__()
        self.prepared: list[tuple[list[str], int]] = []  # (the set's keys, batches delivered before it)
        self.prepare_error: CallError | None = None

    async def prepare(self, works: Sequence[KeyWork]) -> None:
        self.prepared.append(([w.key for w in works], len(self.batches)))
        if self.prepare_error is not None:
            raise self.prepare_error


@pytest.mark.parametrize("fails", [False, True])
async def test_a_preparing_writer_asks_once_per_set_before_its_keys_go(fails: bool) -> None:
    """A writer that prepares is asked once per set of two or more keys, before any of them is delivered; a failed
    look-up only leaves each key to go as it would alone."""
    clock = FakeClock(NOW)
    keys = [f"lead:{n}" for n in range(1, 6)]
    store = FakeQueue(clock, keys)
    writer = PreparingWriter()
    writer.prepare_error = TransientError("HTTP 503", http_status=503) if fails else None
    async with running(dispatcher(writer, store, clock, concurrency=2)):
        await until(lambda: len(store.committed) == 5, what="every key's outcome")
    assert writer.prepared == [(keys[0:4], 0)]  # the last set, of one key, asks nothing
    assert writer.batches == [[key] for key in keys]
    assert all(isinstance(o, Done) for o in store.committed)


async def test_a_writer_crash_is_the_outcome_of_the_key_it_crashes_on_alone() -> None:
    """A writer that raises on a batch has each key delivered again alone: the key it crashes on gets a retry of
    its own, with the error named, and the batch's other keys are delivered."""
    clock = FakeClock(NOW)
    writer = FakeWriter(batch_size=3)
    writer.crash_on = "lead:2"
    with capture_logs() as logs:
        outcomes = await dispatcher(writer, FakeQueue(clock), clock).process(["lead:1", "lead:2", "lead:3"])
    assert outcomes == [
        Done("lead:1", (1,), remote_id="r-1"),
        Retry("lead:2", NOW + 1.0, "syncd failed on this record: KeyError: 'surprise'", None, unsure=True),
        Done("lead:3", (3,), remote_id="r-3"),
    ]
    assert writer.batches == [["lead:1", "lead:2", "lead:3"], ["lead:1"], ["lead:2"], ["lead:3"]]
    assert [e["keys"] for e in logs if e["event"] == "writer_crashed"] == [3, 1]


async def test_syncd_failing_on_records_never_opens_the_breaker() -> None:
    """Retries of keys syncd itself failed on (InternalError) say nothing of the destination: however many come in
    a row, it is never paused."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock)
    writer = FakeWriter()
    writer.crash = ValueError("cannot read this record")
    d = dispatcher(writer, store, clock)
    for n in range(1, 6):
        [outcome] = await d.process([f"lead:{n}"])
        assert isinstance(outcome, Retry) and "ValueError: cannot read this record" in outcome.error
    assert d.state.pause_kind is None and store.sink_states == []


# ---------------------------------------------------------------------------------------------------------------
# throttles go through the shared limiter


async def test_a_throttle_pauses_the_shared_limiter_once() -> None:
    """A 429 holds every caller of the account until its reset (or a backoff without one); a throttle that ends
    sooner than the pause already running neither shortens it nor is logged again."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock)
    writer = FakeWriter(failing(RateLimited("HTTP 429", http_status=429, retry_after=7.0)))
    d = dispatcher(writer, store, clock)
    with capture_logs() as logs:
        assert await d.process(["lead:1"]) == [Released("lead:1")]
        writer.answer = failing(RateLimited("HTTP 429", http_status=429, retry_after=2.0))
        assert await d.process(["lead:2"]) == [Released("lead:2")]
    assert d.limiter.paused_until == NOW + 7.0
    assert [e["pause_s"] for e in logs if e["event"] == "destination_throttled"] == [7.0]
    assert d.state.outcomes == {"throttled": 2} and d.state.pause_kind is None and store.sink_states == []
    clock.advance(10)
    writer.answer = failing(RateLimited("Too many requests", http_status=429))
    await d.process(["lead:3"])
    assert d.limiter.paused_until == NOW + 10 + 1.0  # no Retry-After: the first backoff


# ---------------------------------------------------------------------------------------------------------------
# the circuit breaker


def _result(code: str) -> Answer:
    return {
        "ok": done,
        "transient": failing(TransientError("HTTP 503", http_status=503)),
        "permanent": failing(PermanentError("invalid e-mail", http_status=422)),
        "throttled": failing(RateLimited("HTTP 429", http_status=429, retry_after=1.0)),
        "deferred": lambda work: Deferred(work.key, NOW + 1.0, "delete waits until every person stream has caught up"),
    }[code]


@pytest.mark.parametrize(
    ("results", "opens"),
    [
        (["transient", "transient"], False),
        (["transient", "transient", "transient"], True),
        (["transient", "transient", "ok", "transient", "transient"], False),
        (["transient", "transient", "permanent", "transient"], False),  # the destination answered
        (["transient", "throttled", "transient", "transient"], True),  # a throttle neither counts nor resets
        (["transient", "deferred", "transient", "transient"], True),  # nothing was sent: no answer either
    ],
)
async def test_the_breaker_opens_after_three_transient_failures_in_a_row(results: list[str], opens: bool) -> None:
    """Three transient failures with no answer between pause the destination as unavailable until a probe time,
    recorded for other processes; any answer from the destination (even a refusal of the record) resets the count,
    a key deferred without a call does not."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock)
    writer = FakeWriter()
    d = dispatcher(writer, store, clock)
    for n, code in enumerate(results, start=1):
        writer.answer = _result(code)
        await d.process([f"lead:{n}"])
    if opens:
        assert (d.state.pause_kind, d.state.paused, d.state.paused_until) == (
            "unavailable",
            "unavailable: HTTP 503",
            NOW + 1.0,
        )
        assert store.sink_states == [("unavailable: HTTP 503", NOW + 1.0)]
    else:
        assert d.state.pause_kind is None and store.sink_states == []


async def test_the_open_breaker_lets_one_probe_key_through_and_closes_on_its_success() -> None:
    """While open, nothing is claimed; once the probe time passes exactly one key is tried (half-open), and its
    success resumes the destination at full batches."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock, [f"lead:{n}" for n in range(1, 8)])
    writer = FakeWriter(_result("transient"), batch_size=3)
    d = dispatcher(writer, store, clock, max_backoff=0.02)
    with capture_logs() as logs:
        async with running(d):
            await until(lambda: d.state.pause_kind == "unavailable", what="the breaker to open")
            assert store.claims == [(3, ["lead:1", "lead:2", "lead:3"])]
            writer.answer = done
            clock.advance(60)  # past the probe time (and past the failed keys' retries)
            await until(lambda: not store.due, what="every key to be delivered")
    assert store.claims[1] == (1, ["lead:4"])  # half-open: one probe key
    assert all(limit == 3 for limit, _ in store.claims[2:])
    assert store.sink_states == [("unavailable: HTTP 503", NOW + 0.02), (None, None)]
    assert [e["event"] for e in logs if e["event"].startswith("destination_")] == [
        "destination_unavailable",
        "destination_resumed",
    ]
    assert {key for key in (f"lead:{n}" for n in range(1, 8)) if isinstance(store.outcomes(key)[-1], Done)} == {
        f"lead:{n}" for n in range(1, 8)
    }


async def test_a_deferred_probe_key_leaves_the_breaker_half_open() -> None:
    """A half-open probe key the writer defers without a call (a delete waiting for the person streams) proves
    nothing: the destination stays paused and the next key is the probe (it was resumed, at full batches, and
    paused again a moment later: a flapping breaker while the destination was down, logged every time)."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock, [f"lead:{n}" for n in range(1, 8)])
    writer = FakeWriter(_result("transient"), batch_size=3)
    d = dispatcher(writer, store, clock, max_backoff=0.02)
    with capture_logs() as logs:
        async with running(d):
            await until(lambda: d.state.pause_kind == "unavailable", what="the breaker to open")
            writer.answer = _result("deferred")
            clock.advance(1)
            await until(lambda: len(store.claims) >= 3, what="a second probe")
            assert d.state.pause_kind == "unavailable"
    assert store.claims[1][0] == 1 and store.claims[2][0] == 1  # each a lone probe key
    assert [e["event"] for e in logs if e["event"] == "destination_resumed"] == []


async def test_a_failed_probe_key_reopens_the_breaker() -> None:
    """A half-open probe key that fails again pauses the destination again at once (reported at info level)."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock, [f"lead:{n}" for n in range(1, 6)])
    writer = FakeWriter(_result("transient"), batch_size=3)
    d = dispatcher(writer, store, clock, max_backoff=0.02)
    with capture_logs() as logs:
        async with running(d):
            await until(lambda: d.state.pause_kind == "unavailable", what="the breaker to open")
            clock.advance(1)
            await until(lambda: len(store.sink_states) == 2, what="the breaker to reopen")
            assert (d.state.pause_kind, d.state.paused_until) == ("unavailable", NOW + 1 + 0.02)
    assert store.claims == [(3, ["lead:1", "lead:2", "lead:3"]), (1, ["lead:4"])]
    levels = [e["log_level"] for e in logs if e["event"] == "destination_unavailable"]
    assert levels == ["warning", "info"]


# ---------------------------------------------------------------------------------------------------------------
# refused credentials


async def test_refused_credentials_pause_until_a_probe_succeeds() -> None:
    """401/403 pause the destination without dead-lettering anything; probes back off until the credentials are
    accepted again, then the released key is delivered."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock, ["lead:1"])
    writer = FakeWriter(failing(DestinationError("HTTP 401: bad key", http_status=401)))
    writer.probe_errors = [DestinationError("HTTP 401: bad key", http_status=401), TransientError("timed out")]
    d = dispatcher(writer, store, clock, max_backoff=0.02)
    with capture_logs() as logs:
        async with running(d):
            await until(lambda: d.state.pause_kind == "auth", what="the auth pause")
            writer.answer = done
            await until(lambda: any(isinstance(o, Done) for o in store.outcomes("lead:1")), what="lead:1 done")
    assert writer.probes == 3
    assert store.outcomes("lead:1") == [Released("lead:1"), Done("lead:1", (1,), remote_id="r-1")]
    assert store.sink_states == [("credentials refused: HTTP 401: bad key", None), (None, None)]
    events = [e["event"] for e in logs if e["event"].startswith("destination_")]
    assert events == [
        "destination_paused",
        "destination_probe_failed",
        "destination_probe_failed",
        "destination_resumed",
    ]
    assert d.state.pause_kind is None and d.state.paused is None


async def test_stopping_while_paused_for_credentials_probes_no_more() -> None:
    """A stop during the auth pause ends the dispatcher without another probe or any outcome for the paused key."""
    clock = FakeClock(NOW)
    store = FakeQueue(clock, ["lead:1"])
    writer = FakeWriter(failing(DestinationError("HTTP 403", http_status=403)))
    writer.probe_errors = [DestinationError("HTTP 403", http_status=403)] * 1000
    d = dispatcher(writer, store, clock, max_backoff=0.02)
    async with running(d):
        await until(lambda: writer.probes >= 2, what="two probes")
    assert store.committed == [Released("lead:1")]
