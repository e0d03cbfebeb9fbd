"""One dispatcher per destination: claims due keys, hands them to the writer, records every outcome.

- Claims due keys oldest first, never the same key twice at once (claims live in the store), at most `concurrency`
  batches in flight. A writer that takes one key a batch (`batch_size = 1`) has its keys claimed and loaded in sets
  (`SET_PER_SLOT` times `concurrency` at once, in one claim and one load): each key of a set then goes as its own
  batch (its own slot, calls and outcome) when a slot is free; a set's keys not started are released unchanged.
  A writer that `Prepares` first asks the destination once what the set's keys would each ask alone.
- Turns each writer result into an outcome with the pure retry policy, and commits outcomes in batches (one
  transaction per batch; the committer gathers whatever finished while the previous commit ran and, while other
  batches are in flight, what finishes within COMMIT_GATHER of the first outcome: a transaction's BEGIN and COMMIT
  cost more than the outcomes it records, so a one-key writer's keys are committed a few at a time).
- A key the writer finds waiting on another (a deal whose contact is not in the destination yet) is committed as
  `Waiting`, looked at again after a growing recheck delay, or at once when the store releases it (the awaited
  key's outcome is committed); it is reported when it starts waiting, never failed.
- Pauses the whole destination instead of letting every key fail on its own: on 401/403 ("auth": re-probed with
  backoff, nothing dead-lettered), on a throttle (the shared limiter holds every caller until the reset), and after
  several transient failures in a row ("unavailable": a circuit breaker that then lets one probe key through).
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Protocol

import anyio
from anyio.abc import TaskGroup
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from structlog.typing import FilteringBoundLogger

from syncd.errors import CallError, DestinationError, InternalError, PermanentError, RateLimited, TransientError
from syncd.logs import get_logger
from syncd.ratelimit import TICKET, Limiter, Ticket
from syncd.retry import GiveUp, PauseDestination, RecheckPolicy, RetryAt, RetryPolicy
from syncd.sinks.base import Prepares, Writer
from syncd.work import Dead, Deferred, Done, Failed, KeyWork, Outcome, Released, Result, Retry, Skipped, Waiting

Clock = Callable[[], float]
BREAKER_THRESHOLD = 3  # transient failures in a row, with no success between, that pause the destination
SET_PER_SLOT = 2  # a one-key writer's keys claimed (and loaded) at once, per slot of its concurrency
COMMIT_GATHER = 0.01  # seconds a commit waits for the outcomes of batches still in flight to join it
COMMIT_MOST = 500  # outcomes in one commit


class QueueSettings(Protocol):
    """What a dispatcher reads of its queue's configuration (a destination's `SinkConfig`, or feedback's
    `syncd.feedback.writer.QueueConfig`)."""

    @property
    def concurrency(self) -> int: ...
    @property
    def max_backoff(self) -> float: ...
    @property
    def max_attempts(self) -> int | None: ...
    @property
    def late_write_window(self) -> float: ...
    @property
    def base_url(self) -> str: ...


class DispatchStore(Protocol):
    """The part of the store a dispatcher uses (syncd.ledger.Ledger implements it)."""

    async def claim(self, sink: str, limit: int, *, late_window: float = 0.0) -> list[str]:
        """Up to `limit` due keys, oldest first, none claimed twice until its outcome is committed; an unsure key
        is checked (written again) `late_window` seconds after this claim, before it is settled."""
        ...

    async def next_due(self, sink: str) -> float | None:
        """When the earliest unclaimed key falls due (None when there is none)."""
        ...

    async def load_work(self, sink: str, keys: Sequence[str]) -> list[KeyWork]:
        """The pending work of each claimed key."""
        ...

    async def commit(self, sink: str, outcomes: Sequence[Outcome]) -> None:
        """Record a batch of outcomes in one transaction."""
        ...

    async def set_sink_state(self, sink: str, *, paused: str | None, until: float | None = None) -> None:
        """Record, for other processes, whether the destination is paused and why."""
        ...


@dataclass
class SinkState:
    """The live state of one destination, for status, health and metrics."""

    sink: str
    paused: str | None = None  # why, while paused
    pause_kind: str | None = None  # auth | unavailable
    paused_until: float | None = None
    in_flight: int = 0
    outcomes: dict[str, int] = field(default_factory=dict)
    last_error: str = ""

    def count(self, outcome: str, n: int = 1) -> None:
        self.outcomes[outcome] = self.outcomes.get(outcome, 0) + n


class Dispatcher:
    def __init__(
        self,
        writer: Writer,
        store: DispatchStore,
        config: QueueSettings,
        limiter: Limiter,
        *,
        clock: Clock = time.time,
        monotonic: Clock = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        self.writer = writer
        self.store = store
        self.config = config
        self.limiter = limiter
        self.sink = writer.name
        self.policy = RetryPolicy(base=1.0, cap=config.max_backoff, max_attempts=config.max_attempts)
        self.probe_policy = RetryPolicy(base=1.0, cap=config.max_backoff)
        self.recheck = RecheckPolicy()
        self.state = SinkState(self.sink)
        self._clock = clock  # wall time: what the store keeps, and what status shows
        self._monotonic = monotonic  # in-process waits, which a step of the wall clock must not stretch
        self._breaker_ends = 0.0  # (monotonic) when the open breaker lets a probe key through
        self._rng = rng or random.Random()
        self._wake = anyio.Event()
        self._slot_freed = anyio.Event()
        self._failures_in_row = 0
        self._breaker_level = 0
        self._half_open = False
        self._log = get_logger(sink=self.sink)
        self._works: dict[anyio.CancelScope, Ticket] = {}  # batches (and probes) running, with their calls
        self._ready: deque[KeyWork] = deque()  # a one-key writer's keys claimed and loaded, not started yet

    def wake(self) -> None:
        """New deliveries were queued (or the daemon is stopping): look for work now."""
        self._wake.set()

    @property
    def idle(self) -> bool:
        return self.state.in_flight == 0 and not self._ready

    @property
    def calling(self) -> int:
        """Batches (and probes) that have sent a call to the destination and are not finished: in flight."""
        return sum(1 for ticket in self._works.values() if ticket.calls)

    def drop_unsent(self) -> int:
        """A stop: every batch (or probe) that has sent nothing yet (waiting for the rate limiter, a pause or the
        store) is cancelled, its keys released unchanged, so a stop waits only for calls really in flight. Returns
        how many were dropped."""
        unsent = [scope for scope, ticket in self._works.items() if not ticket.calls]
        for scope in unsent:
            scope.cancel()
        self._slot_freed.set()  # the claim loop sees the stop now, and releases the keys it holds unstarted
        return len(unsent) + len(self._ready)

    async def run(self, stop: anyio.Event) -> None:
        """Dispatch until `stop` is set, then let in-flight batches finish and commit their outcomes."""
        send, receive = anyio.create_memory_object_stream[Sequence[Outcome]](math.inf)
        async with anyio.create_task_group() as outer:
            outer.start_soon(self._committer, receive)
            async with send, anyio.create_task_group() as workers:
                try:
                    await self._claim_loop(workers, send, stop)
                finally:
                    await self._release_ready(send)

    # -----------------------------------------------------------------------------------------------------------

    async def _claim_loop(
        self, workers: TaskGroup, send: MemoryObjectSendStream[Sequence[Outcome]], stop: anyio.Event
    ) -> None:
        while not stop.is_set():
            if self.state.pause_kind == "auth":
                await self._release_ready(send)  # held through a pause, their loaded work would only go stale
                await self._probe_until_resumed(stop)
                continue
            if self.state.pause_kind == "unavailable" and self.state.paused_until is not None:
                wait = self._breaker_ends - self._monotonic()
                if wait > 0:
                    await self._release_ready(send)
                    await self._wait(stop, wait)
                    continue
                self._half_open = True  # the breaker let time pass: one probe key decides
            slots = 1 if self._half_open else self.config.concurrency
            if self.state.in_flight >= slots:
                self._slot_freed = anyio.Event()
                await self._wait(stop, 1.0, self._slot_freed)
                continue
            if self.writer.batch_size == 1:
                if await self._start_one(workers, send, slots):
                    continue
                await self._idle_wait(stop)
                continue
            keys = await self.store.claim(
                self.sink, 1 if self._half_open else self.writer.batch_size, late_window=self.config.late_write_window
            )
            if not keys:
                await self._idle_wait(stop)
                continue
            self.state.in_flight += 1
            workers.start_soon(self._work, keys, send)

    async def _idle_wait(self, stop: anyio.Event) -> None:
        """Nothing was due: wait until the earliest key falls due (at most a second), or new work wakes the loop."""
        next_due = await self.store.next_due(self.sink)
        timeout = 1.0 if next_due is None else min(1.0, max(0.005, next_due - self._clock()))
        self._wake = anyio.Event()
        await self._wait(stop, timeout, self._wake)

    async def _start_one(self, workers: TaskGroup, send: MemoryObjectSendStream[Sequence[Outcome]], slots: int) -> bool:
        """A one-key writer's next key started as its own batch: taken from the set claimed and loaded before, or,
        when none is left, from a new set (one key alone while the breaker is half-open). False when none is due."""
        if not self._ready:
            size = 1 if self._half_open else slots * SET_PER_SLOT
            keys = await self.store.claim(self.sink, size, late_window=self.config.late_write_window)
            if not keys:
                return False
            works = await self.store.load_work(self.sink, keys)
            self._ready.extend(works)
            if isinstance(self.writer, Prepares) and len(works) > 1 and not await self._prepare(self.writer, works):
                return True  # a stop dropped it: the loop sees the stop and releases the set
        self.state.in_flight += 1
        workers.start_soon(self._work, [], send, [self._ready.popleft()])
        return True

    async def _prepare(self, writer: Prepares, works: Sequence[KeyWork]) -> bool:
        """The writer's look-ups shared by a set, before its keys go (with a Ticket of their own: a stop drops them
        while they have sent nothing). A failure only leaves each key to ask alone. False when a stop dropped them."""
        token = TICKET.set(ticket := Ticket())
        scope = anyio.CancelScope()
        self._works[scope] = ticket
        try:
            with scope:
                await writer.prepare(works)
        except CallError as exc:
            self._log.info("set_lookup_failed", keys=len(works), error=exc.message, action="each key asks alone")
        except Exception as exc:  # a writer bug: the keys go as if nothing had been asked
            self._log.warning("set_lookup_crashed", keys=len(works), error=exc, exc_info=exc)
        finally:
            del self._works[scope]
            TICKET.reset(token)
        return not scope.cancelled_caught

    async def _release_ready(self, send: MemoryObjectSendStream[Sequence[Outcome]]) -> None:
        """The keys of a set not started yet back in the queue, unchanged: their claim sent nothing."""
        if self._ready:
            released = [Released(work.key, sent_nothing=True) for work in self._ready]
            self._ready.clear()
            await send.send(released)

    async def _wait(self, stop: anyio.Event, seconds: float, event: anyio.Event | None = None) -> None:
        """Sleep up to `seconds`, waking early when `event` (or a stop, via wake()) fires."""
        with anyio.move_on_after(max(0.0, seconds)):
            if event is not None:
                await event.wait()
            else:
                while not stop.is_set():
                    self._wake = anyio.Event()
                    await self._wake.wait()

    async def _work(
        self, keys: list[str], send: MemoryObjectSendStream[Sequence[Outcome]], loaded: Sequence[KeyWork] = ()
    ) -> None:
        """One batch: the claimed `keys` loaded and delivered (or the work of keys `loaded` already), its outcomes
        sent to the committer."""
        TICKET.set(ticket := Ticket())  # this task's own context: the limiters count its calls on it
        scope = anyio.CancelScope()
        self._works[scope] = ticket
        keys = [*keys, *(work.key for work in loaded)]
        try:
            with scope:
                outcomes: Sequence[Outcome] = await (self.deliver_loaded(loaded) if loaded else self.process(keys))
            if scope.cancelled_caught:  # dropped by a stop before anything was sent: back in the queue
                outcomes = [Released(key) for key in keys]
            if ticket.sent_nothing:  # no call can have taken effect: the claim left no write behind
                outcomes = [_sent_nothing(outcome) for outcome in outcomes]
            await send.send(outcomes)
        finally:
            del self._works[scope]
            self.state.in_flight -= 1
            self._slot_freed.set()

    async def process(self, keys: Sequence[str]) -> list[Outcome]:
        """Load the claimed keys' work, hand it to the writer, and decide one outcome per key (pausing the
        destination where the writer's results call for it). Committing the outcomes is the caller's."""
        return await self.deliver_loaded(await self.store.load_work(self.sink, keys))

    async def deliver_loaded(self, works: Sequence[KeyWork]) -> list[Outcome]:
        """`process` for keys whose work is loaded."""
        started = time.monotonic()
        results = await self._deliver(works)
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        by_key = {w.key: w for w in works}
        outcomes = [await self._decide(by_key[r.key], r, duration_ms) for r in results]
        answered = {r.key for r in results}
        outcomes += [Released(w.key) for w in works if w.key not in answered]
        return outcomes

    async def _deliver(self, works: Sequence[KeyWork]) -> Sequence[Result]:
        """The writer's results. A writer that crashes on a batch has each key delivered again alone, so the key
        it crashes on fails by itself (as an InternalError, which never counts against the destination)."""
        try:
            return await self.writer.deliver(works)
        except Exception as exc:  # a writer bug must not lose the keys, spin on them, or sink their neighbours
            if len(works) > 1:
                self._log.warning("writer_crashed", keys=len(works), error=exc, action="delivering each key alone")
                results: list[Result] = []
                for work in works:
                    results += await self._deliver([work])
                return results
            self._log.error("writer_crashed", keys=1, key=works[0].key, error=exc, exc_info=exc)
            error = InternalError(f"syncd failed on this record: {type(exc).__name__}: {exc}"[:300], uncertain=True)
            return [Failed(w.key, w.seqs, error) for w in works]

    async def _committer(self, receive: MemoryObjectReceiveStream[Sequence[Outcome]]) -> None:
        async with receive:
            async for first in receive:
                batch = list(first)
                if self.state.in_flight and len(batch) < COMMIT_MOST:
                    with anyio.CancelScope(shield=True):  # a stop still commits what it holds
                        await anyio.sleep(COMMIT_GATHER)  # their outcomes join this transaction
                while len(batch) < COMMIT_MOST:
                    try:
                        batch.extend(receive.receive_nowait())
                    except (anyio.WouldBlock, anyio.EndOfStream):
                        break
                await self.store.commit(self.sink, batch)
                if any(isinstance(o, Done | Skipped | Dead) for o in batch):
                    self.wake()  # keys waiting on a finished key are due now

    # -----------------------------------------------------------------------------------------------------------

    async def _decide(self, work: KeyWork, result: Result, duration_ms: float) -> Outcome:
        log = self._log.bind(key=work.key, seq=work.seqs[-1] if work.seqs else None)
        if isinstance(result, Waiting):
            return self._waiting(work, result, log)
        if not isinstance(result, Failed):
            if not isinstance(result, Deferred):  # a deferral sends nothing: no word from the destination
                await self._succeeded()
            self._log_outcome(result, log, duration_ms)
            return result
        error = result.error
        self.state.last_error = error.message
        if isinstance(error, RateLimited):
            asked = error.retry_after
            wait = min(asked, self.policy.cap) if asked is not None else self.policy.backoff(1, self._rng)
            if self.limiter.pause(wait):
                log.warning(
                    "destination_throttled",
                    error=error.message,
                    http_status=error.http_status,
                    pause_s=round(wait, 3),
                    asked_s=round(asked, 3) if asked is not None and asked > wait else None,
                    until=self.limiter.paused_until_wall(),
                )
            self.state.count("throttled")
            return Released(work.key)
        attempt = work.attempts + 1
        decision = self.policy.decide(attempt, error, self._rng)
        if isinstance(decision, PauseDestination):
            await self._pause_auth(error)
            return Released(work.key)
        if isinstance(decision, GiveUp):
            if isinstance(error, PermanentError):
                await self._succeeded()  # the destination answered; the record is at fault
            log.error("delivery_dead", reason=decision.reason, http_status=error.http_status, attempt=attempt)
            self.state.count("dead", len(result.seqs))
            return Dead(work.key, result.seqs, decision.reason, error.http_status, error.request, attempt)
        assert isinstance(decision, RetryAt)
        if not isinstance(error, InternalError):  # syncd's own failure on one record says nothing of the destination
            await self._transient_failure(error)
        log.warning(
            "delivery_failed",
            error=error.message,
            http_status=error.http_status,
            attempt=attempt,
            retry_in_s=round(decision.delay, 3),
            duration_ms=duration_ms,
        )
        self.state.count("retried")
        return Retry(work.key, self._clock() + decision.delay, error.message, error.http_status, error.uncertain)

    def _waiting(self, work: KeyWork, waiting: Waiting, log: FilteringBoundLogger) -> Waiting:
        """A key waiting on another: due again after the recheck delay (unless released first); reported at info
        when it starts waiting on that key, at debug while it still waits."""
        before = work.waiting
        checks = before.checks + 1 if before is not None and before.on == waiting.on else 1
        delay = self.recheck.delay(checks)
        self.state.count("waiting")
        report = log.info if checks == 1 else log.debug
        report("delivery_waiting", on=waiting.on, reason=waiting.reason, checks=checks, recheck_in_s=delay)
        if waiting.at is not None:
            return waiting
        return Waiting(waiting.key, waiting.on, waiting.reason, self._clock() + delay)

    def _log_outcome(self, outcome: Outcome, bound: FilteringBoundLogger, duration_ms: float) -> None:
        match outcome:
            case Done():
                self.state.count("done", len(outcome.seqs))
                bound.info(
                    "delivery_done",
                    events=len(outcome.seqs),
                    remote_id=outcome.remote_id,
                    detail=outcome.detail or None,
                    duration_ms=duration_ms,
                )
            case Skipped():
                self.state.count("skipped", len(outcome.seqs))
                bound.info("delivery_skipped", events=len(outcome.seqs), reason=outcome.reason)
            case Deferred():
                bound.debug("delivery_deferred", reason=outcome.reason, until=outcome.at)
            case Dead():
                self.state.count("dead", len(outcome.seqs))
                bound.error("delivery_dead", reason=outcome.reason, http_status=outcome.http_status)
            case _:
                pass

    async def _succeeded(self) -> None:
        self._failures_in_row = 0
        if self.state.pause_kind == "unavailable" or self._half_open:
            self._half_open = False
            self._breaker_level = 0
            await self._resume()

    async def _transient_failure(self, error: CallError) -> None:
        self._failures_in_row += 1
        if self._half_open or self._failures_in_row >= BREAKER_THRESHOLD:
            self._breaker_level += 1
            self._half_open = False
            delay = self.probe_policy.backoff(self._breaker_level, self._rng)
            self._breaker_ends = self._monotonic() + delay
            until = self._clock() + delay
            first = self.state.pause_kind != "unavailable"
            self.state.paused = f"unavailable: {error.message}"
            self.state.pause_kind = "unavailable"
            self.state.paused_until = until
            await self.store.set_sink_state(self.sink, paused=self.state.paused, until=until)
            log = self._log.warning if first else self._log.info
            log(
                "destination_unavailable",
                error=error.message,
                http_status=error.http_status,
                retry_in_s=round(delay, 3),
                failures_in_row=self._failures_in_row,
            )

    async def _pause_auth(self, error: CallError) -> None:
        if self.state.pause_kind == "auth":
            return
        self.state.paused = f"credentials refused: {error.message}"
        self.state.pause_kind = "auth"
        self.state.paused_until = None
        await self.store.set_sink_state(self.sink, paused=self.state.paused)
        self._log.error(
            "destination_paused",
            reason=self.state.paused,
            http_status=error.http_status,
            hint="fix the credentials in the config; syncd re-probes and resumes by itself",
        )

    async def _resume(self) -> None:
        was = self.state.paused
        self.state.paused = self.state.pause_kind = self.state.paused_until = None
        await self.store.set_sink_state(self.sink, paused=None)
        self._log.info("destination_resumed", was=was)

    async def _probe_until_resumed(self, stop: anyio.Event) -> None:
        attempt = 0
        while not stop.is_set():
            attempt += 1
            delay = self.probe_policy.backoff(attempt, self._rng)
            self.state.paused_until = self._clock() + delay
            await self._wait(stop, delay)
            if stop.is_set():
                return
            try:
                token = TICKET.set(ticket := Ticket())
                with anyio.CancelScope() as scope:
                    self._works[scope] = ticket
                    try:
                        await self.writer.probe()  # the writer takes its own slot from the shared limiter
                    finally:
                        del self._works[scope]
                        TICKET.reset(token)
                if scope.cancelled_caught:  # a stop while the probe waited for its slot
                    return
            except DestinationError as exc:
                self._log.info("destination_probe_failed", error=exc.message, attempt=attempt)
                continue
            except TransientError as exc:
                self._log.info("destination_probe_failed", error=exc.message, attempt=attempt)
                continue
            await self._resume()
            return


def _sent_nothing(outcome: Outcome) -> Outcome:
    """`outcome` marked as the end of a claim that left no write (when it puts the key back in the queue)."""
    if isinstance(outcome, Retry | Deferred | Waiting | Released):
        return replace(outcome, sent_nothing=True)
    return outcome
