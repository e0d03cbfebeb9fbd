"""The daemon: opens the store, runs one poller per stream and one dispatcher per destination, stops gracefully.

Stopping (SIGTERM, SIGINT or SIGHUP, or `--until-idle` once there is nothing left to do): polling stops at once (an
unfinished page is simply read again next time), dispatchers claim nothing new, work that has sent nothing yet
(waiting for a rate limiter's slot or a pause) is released back to the queue at once, calls in flight get up to
`shutdown_timeout` to finish and their outcomes are committed, then the process exits 0. A second signal cancels
what is still in flight and exits at once; the claims it leaves lapse when the next owner opens the state file, so
nothing is lost (at-least-once). SIGHUP is a graceful stop, not a reload: a changed config takes effect on the next
start. A signal that arrives while the process is still starting (caught from its first moment by syncd.entry) is a
graceful stop too, handled as soon as the daemon runs.

The daemon owns its state file for its whole life (the store's OS lock): a second daemon on the same file exits at
once with exit code 75.
"""

from __future__ import annotations

import random
import signal
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import anyio
from anyio.abc import TaskStatus

from state import FEEDBACK_QUEUE, Store
from syncd.asgi import make_server, serve_started
from syncd.backfill.service import BackfillService
from syncd.config import Config
from syncd.diskspace import DiskBudget
from syncd.dispatcher import Dispatcher
from syncd.drift import SELL_SCOPE, drift_lines, references, sell_drift
from syncd.entry import EARLY, STOP_SIGNALS
from syncd.feedback.writer import FeedbackWriter, QueueConfig
from syncd.health import health_app
from syncd.idle import EXIT_UNREACHABLE, MaxWait, SinkView, StreamView, blocked
from syncd.ledger import Ledger
from syncd.logs import SUMMARY_SECONDS, get_logger, log_summary
from syncd.notify import Notifier, process_age
from syncd.ratelimit import Limiter
from syncd.reconcile.service import ReconcileService
from syncd.redact import MASK, Redactor
from syncd.runtime import Runtime
from syncd.sell.client import SellClient
from syncd.sell.expiry import expiry, unread_since
from syncd.sell.poller import Poller
from syncd.sinks.registry import build_writer
from syncd.throttles import ThrottlePublisher

EXIT_OK = 0
EXIT_STREAM_FAILED = 1  # --until-idle ended with a stream expired or stopped
EXIT_FORCED = 2  # a second signal stopped the daemon before in-flight calls finished
EXIT_STATE_LOST = 75  # the state file was replaced, or its lock taken, under the daemon: a restart must reopen it
STATE_CHECK_SECONDS = 2.0  # how often the state files are compared with the ones the daemon has open
DRIFT_CHECK_SECONDS = 2.0  # how often mapped custom fields are checked against Sell's definitions
EXPIRY_CHECK_SECONDS = 60.0  # how often the streams' positions are checked against Sell's retention
CLOCK_CHECK_SECONDS = 1.0  # how often the wall clock is compared with the monotonic one
CLOCK_STEP_TOLERANCE = 5.0  # seconds of disagreement that count as a step (NTP's slews stay far below)


class Daemon:
    def __init__(
        self,
        config: Config,
        *,
        until_idle: bool = False,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        handle_signals: bool = True,
        backfill: Sequence[str] = (),
        reconcile: tuple[Sequence[str], bool] | None = None,
        command: str = "syncd run",
        max_wait: float | None = None,
    ) -> None:
        self.config = config
        self.until_idle = until_idle
        self.backfill = tuple(backfill)  # streams to backfill now (`syncd backfill` with no daemon running)
        self.reconcile = reconcile  # (destinations, repair) to reconcile now (`syncd reconcile`, no daemon running)
        self.command = command  # what the state file's lock says owns it
        self.max_wait = max_wait  # --until-idle's bound while an API it needs cannot be reached (None: none)
        self.gave_up: str | None = None  # why --until-idle gave up (--max-wait), for the command to print
        self.clock = clock
        self.rng = rng or random.Random()
        self.handle_signals = handle_signals
        self.stop_event = anyio.Event()
        self.runtime: Runtime | None = None
        self._log = get_logger()
        self._force = False
        self._state_lost = False
        self._in_flight_at_deadline = 0
        self.notifier = Notifier()

    def stop(self) -> None:
        """Begin a graceful stop (what SIGTERM does)."""
        self.stop_event.set()

    async def run(self, *, task_status: TaskStatus[Runtime] = anyio.TASK_STATUS_IGNORED) -> int:
        config = self.config
        sinks = config.enabled_sinks()
        if not sinks:
            self._log.warning(
                "no_destinations",
                hint="no [sinks.*] table is enabled: changes are read and stored, and delivered nowhere",
            )
        redact = Redactor(config.secret_values())
        feedback = config.feedback_destinations()
        queues = [s.name for s in sinks] + ([FEEDBACK_QUEUE] if feedback else [])
        store = await Store.open(config.state.path, sinks=queues, clock=self.clock, command=self.command)
        client: SellClient | None = None
        writers = []
        try:  # from here on, whatever fails closes the store: its worker thread must not keep the process alive
            for event, problem in store.notices:  # what opening found amiss (changes lost with a deleted log)
                self._log.error(event, problem=problem, state=str(config.state.path))
            ledger = Ledger(store, redact=redact, feedback=feedback)
            runtime = Runtime(config=config, store=store, redact=redact)
            self.runtime = runtime
            client = SellClient(config.sell)
            await ledger.fill_references()
            for sink in sinks:
                limiter = Limiter(sink.name, sink.rate, reserve=sink.concurrency, max_pause=sink.max_backoff)
                writer = build_writer(
                    sink, store=ledger, limiter=limiter, streams=config.sell.streams, clock=self.clock
                )
                writers.append(writer)
                runtime.dispatchers.append(
                    Dispatcher(writer, ledger, sink, limiter, clock=self.clock, rng=random.Random(self.rng.random()))
                )
            sell_limiter = Limiter("sell", config.sell.rate, max_pause=config.sell.max_backoff)
            runtime.limiters = [sell_limiter] + [d.limiter for d in runtime.dispatchers]
            if feedback:  # a queue like a destination's, writing to Sell within what the pollers leave
                own = Limiter(FEEDBACK_QUEUE, config.feedback.rate)
                writer = FeedbackWriter(config.sell, feedback, lookups=ledger, shared=sell_limiter, own=own)
                writers.append(writer)
                runtime.dispatchers.append(
                    Dispatcher(
                        writer,
                        ledger,
                        QueueConfig.of(config),
                        sell_limiter,
                        clock=self.clock,
                        rng=random.Random(self.rng.random()),
                    )
                )
            runtime.backfill = backfills = BackfillService(
                ledger, config.sell, sell_limiter, client, clock=self.clock, rng=random.Random(self.rng.random())
            )
            runtime.reconcile = reconciles = ReconcileService(
                ledger, backfills.scanner, {w.name: w for w in writers}, clock=self.clock
            )
            if self.backfill:
                await backfills.request(self.backfill, reason="operator")
            if self.reconcile is not None:
                await reconciles.request(self.reconcile[0], repair=self.reconcile[1])
            if config.sell.start == "backfill":
                # A first run: one backfill of every stream never read, before any of them is polled.
                fresh = [s for s in config.sell.streams if await backfills.needs_position(s)]
                fresh = [s for s in fresh if await backfills.covering(s) is None]
                if fresh:
                    await backfills.request(fresh, reason="start")
            backlog = DiskBudget(
                ledger,
                max_size=config.state.max_size,
                min_free=config.state.min_free,
                streams=config.sell.streams,
                clock=self.clock,
            )
            runtime.backlog = backlog

            def wake_dispatchers(_: int) -> None:
                for dispatcher in runtime.dispatchers:
                    dispatcher.wake()

            runtime.pollers = [
                Poller(
                    stream,
                    client=client,
                    store=ledger,
                    config=config.sell,
                    limiter=sell_limiter,
                    backlog=backlog,
                    rng=random.Random(self.rng.random()),
                    on_ingest=wake_dispatchers,
                )
                for stream in config.sell.streams
            ]
            self._log.info(
                "daemon_started",
                streams=list(config.sell.streams),
                sinks=[s.name for s in sinks],
                feedback=sorted(feedback) or None,
                state=str(config.state.path),
                until_idle=self.until_idle,
            )
            task_status.started(runtime)
            return await self._supervise(runtime, ledger)
        finally:
            self.notifier.close()
            with anyio.CancelScope(shield=True):
                try:
                    for writer in writers:
                        await writer.aclose()
                    if self.runtime is not None and self.runtime.backfill is not None:
                        await self.runtime.backfill.aclose()
                    if client is not None:
                        await client.aclose()
                finally:
                    await store.close()

    async def _supervise(self, runtime: Runtime, ledger: Ledger) -> int:
        exit_code = EXIT_OK
        async with anyio.create_task_group() as tg:
            if self.handle_signals:
                tg.start_soon(self._signals, tg.cancel_scope)
            tg.start_soon(self._prune, runtime.store)
            tg.start_soon(self._mask_stored_secrets, runtime)
            tg.start_soon(self._watch_files, runtime.store)
            tg.start_soon(self._watch_expiry, runtime)
            tg.start_soon(self._watch_clock, runtime.store)
            tg.start_soon(self._watch_drift, runtime, ledger)
            tg.start_soon(ThrottlePublisher(ledger, runtime.limiters).run)
            if self.config.health.enabled:
                await tg.start(self._serve_health, runtime)
            if self.until_idle:
                tg.start_soon(self._watch_idle, runtime)
            tg.start_soon(self._notify, runtime)
            tg.start_soon(self._summarise)
            with anyio.CancelScope() as dispatch_scope:
                async with anyio.create_task_group() as work:
                    poll_scope = anyio.CancelScope()
                    work.start_soon(self._poll_all, runtime, poll_scope)
                    for dispatcher in runtime.dispatchers:
                        work.start_soon(dispatcher.run, self.stop_event)
                    await self.stop_event.wait()
                    runtime.stopping = True
                    self.notifier.stopping("stopping: finishing in-flight calls")
                    poll_scope.cancel()
                    log_summary()  # what the console summarised so far, before the stop's own lines
                    dropped = 0
                    for dispatcher in runtime.dispatchers:
                        dropped += dispatcher.drop_unsent()  # batches that sent nothing yet: released at once
                        dispatcher.wake()
                    self._log.info(
                        "daemon_stopping",
                        shutdown_timeout_s=self.config.run.shutdown_timeout,
                        in_flight=sum(d.calling for d in runtime.dispatchers),
                        released=dropped,
                    )
                    tg.start_soon(self._shutdown_deadline, runtime, dispatch_scope)
            if dispatch_scope.cancelled_caught:
                self._log.warning("shutdown_timeout_reached", in_flight=self._in_flight_at_deadline)
            if self.until_idle and any(p.state.finished for p in runtime.pollers):
                exit_code = EXIT_STREAM_FAILED
            tg.cancel_scope.cancel()
        if self._force:
            exit_code = EXIT_FORCED
        elif self._state_lost:
            exit_code = EXIT_STATE_LOST
        elif self.gave_up is not None:
            exit_code = EXIT_UNREACHABLE
        log_summary()
        self._log.info("daemon_stopped", exit_code=exit_code)
        return exit_code

    async def _gave_up(self, runtime: Runtime, bound: MaxWait) -> bool:
        """--max-wait: True (and a stop begun) once an API idle needs has been unreachable for that long."""
        streams = [StreamView(p.state.failures, p.state.last_error) for p in runtime.pollers]
        sinks = [SinkView(d.sink, d.config.base_url, d.state.paused, d.state.last_error) for d in runtime.dispatchers]
        paused = any(d.state.paused for d in runtime.dispatchers)
        pending = paused and await runtime.store.pending(blocked=False) > 0
        if not bound.observe(anyio.current_time(), blocked(self.config.sell.base_url, streams, sinks, pending=pending)):
            return False
        self.gave_up = bound.message()
        self._log.error("until_idle_gave_up", reason=self.gave_up, exit_code=EXIT_UNREACHABLE)
        self.stop()
        return True

    async def _summarise(self) -> None:
        """On a console at info: the summarised per-page and per-delivery lines, said every few seconds."""
        while True:
            await anyio.sleep(SUMMARY_SECONDS)
            log_summary()

    async def _shutdown_deadline(self, runtime: Runtime, scope: anyio.CancelScope) -> None:
        """`shutdown_timeout` after a stop began: what is still in flight is counted, then cancelled."""
        await anyio.sleep(self.config.run.shutdown_timeout)
        self._in_flight_at_deadline = sum(d.calling for d in runtime.dispatchers)
        scope.cancel()

    async def _serve_health(
        self, runtime: Runtime, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        host, _, port = self.config.health.listen.rpartition(":")
        server = make_server(health_app(lambda: runtime), int(port), host.strip("[]"))

        async def started(bound: int) -> None:
            runtime.health_url = f"http://{host}:{bound}"
            self._log.info("health_listening", url=runtime.health_url)
            task_status.started()

        try:
            await serve_started(server, started)
        except OSError as exc:  # the port is taken: report it, keep syncing
            self._log.error("health_failed", listen=self.config.health.listen, error=str(exc))
            task_status.started()

    async def _notify(self, runtime: Runtime) -> None:
        """READY=1 once the store is open and the tasks run; then WATCHDOG=1 and STATUS= from the main loop."""
        self.notifier.ready(runtime.summary())
        age = process_age()
        self._log.info(
            "daemon_ready",
            notify=self.notifier.enabled,
            ready_after_s=round(age, 3) if age is not None else None,  # since the process started
            store_open_to_ready_s=round(time.time() - runtime.started_at, 3),
        )
        interval = self.notifier.watchdog_interval or 5.0
        while not runtime.stopping:
            self.notifier.watchdog()
            self.notifier.status(runtime.summary())
            await anyio.sleep(min(interval, 5.0))

    async def _watch_drift(self, runtime: Runtime, ledger: Ledger) -> None:
        """Mapping drift: what the configuration names in Sell that Sell no longer defines (a custom field or stage
        renamed or deleted) is recorded in the store, beside what the writers found in their destinations; each
        drift is logged when found and when resolved, and all of it makes readiness degraded."""
        refs = references(self.config)
        while True:
            await ledger.set_drift(SELL_SCOPE, sell_drift(refs, await ledger.definitions()))
            rows = await ledger.drift()
            drift = drift_lines((row.scope, row.subject, row.problem) for row in rows)
            for line in drift:
                if line not in runtime.drift:
                    self._log.error("mapping_drift", problem=line)
            for line in runtime.drift:
                if line not in drift:
                    self._log.info("mapping_drift_resolved", problem=line)
            runtime.drift = drift
            await anyio.sleep(DRIFT_CHECK_SECONDS)

    async def _watch_expiry(self, runtime: Runtime) -> None:
        """The early warning: a stream whose oldest unread event is within `[sell] expiry_warning` of Sell's
        72-hour retention (polling failing or paused, a backlog): a warning, once, while there is time to act."""
        warned: set[str] = set()
        while True:
            await self.check_expiry(runtime, warned)
            await anyio.sleep(EXPIRY_CHECK_SECONDS)

    async def check_expiry(self, runtime: Runtime, warned: set[str]) -> None:
        """One look at every stream's position (`warned`: the streams warned about, kept between looks)."""
        now = self.clock()
        for stream in self.config.sell.streams:
            stored = await runtime.store.position(stream)
            if stored is None or stored.expired or not stored.position:
                continue
            left = expiry(stored, now=now, margin=self.config.sell.expiry_warning)
            if left.warning and stream not in warned:
                warned.add(stream)
                self._log.warning(
                    "position_expiring",
                    stream=stream,
                    expires_in_h=left.hours_left,
                    unread_since=datetime.fromtimestamp(unread_since(stored), UTC).isoformat(),
                    hint="syncd has not read this stream for a long while (see `syncd status`: Sell failing, polling"
                    " paused by a destination's backlog?); once Sell drops the position only a backfill recovers"
                    f" it (`syncd backfill --streams {stream}`, or on_expired = backfill)",
                )
            elif not left.warning and stream in warned:
                warned.discard(stream)
                self._log.info("position_expiry_cleared", stream=stream, expires_in_h=left.hours_left)

    async def _poll_all(self, runtime: Runtime, scope: anyio.CancelScope) -> None:
        """Every stream's poller, and the backfills (they read Sell too, through the same limiter)."""
        with scope:
            async with anyio.create_task_group() as tg:
                if runtime.backfill is not None:
                    tg.start_soon(runtime.backfill.run)
                if runtime.reconcile is not None:
                    tg.start_soon(runtime.reconcile.run)
                for poller in runtime.pollers:
                    tg.start_soon(self._stream, runtime, poller)

    async def _stream(self, runtime: Runtime, poller: Poller) -> None:
        """One stream: polled from its position; when it has none a backfill must capture (a first run with
        `start = "backfill"`, or an expired position), the poller waits for that backfill's capture. An expired
        stream is re-synced (`on_expired = "backfill"`) or stays stopped and unready until an operator's
        `syncd backfill` captures a new position."""
        backfills = runtime.backfill
        assert backfills is not None
        stream = poller.stream
        while True:
            if await backfills.needs_position(stream):
                stored = await runtime.store.position(stream)
                expired = stored is not None and stored.expired
                if not expired or self.config.sell.on_expired == "backfill":
                    poller.state.phase = "backfilling"
                    reason = "expired" if expired else "start"
                    await backfills.ensure(stream, reason=reason)
                    # A backfill that failed before it captured the position is asked for again, ever less often.
                    wait = 1.0
                    while not await backfills.wait_position(stream, wait):
                        await backfills.ensure(stream, reason=reason)
                        wait = min(wait * 2, max(1.0, self.config.sell.max_backoff))
                else:
                    await backfills.wait_position(stream)  # until an operator's backfill captures one
            state = await poller.run()
            if state.phase == "stopped":
                return  # the credentials or the plan were refused

    async def _signals(self, scope: anyio.CancelScope) -> None:
        try:
            with anyio.open_signal_receiver(*STOP_SIGNALS) as signals:
                early, EARLY.received[:] = list(EARLY.received), []
                for signum in early:  # caught while the process was starting
                    if self._on_signal(signum, scope, starting=True):
                        return
                async for signum in signals:
                    if self._on_signal(signum, scope):
                        return
        finally:
            if EARLY.installed:  # the receiver restores the default handlers: keep catching until the exit
                EARLY.install()

    def _on_signal(self, signum: int, scope: anyio.CancelScope, *, starting: bool = False) -> bool:
        """The first stop signal stops gracefully, a second at once (True: nothing more to wait for)."""
        name = signal.Signals(signum).name
        if not self.stop_event.is_set():
            self._log.info("signal_received", signal=name, action="graceful stop", during_start=starting or None)
            self.stop()
            return False
        self._log.warning("signal_received", signal=name, action="immediate stop")
        self._force = True
        scope.cancel()
        return True

    async def _watch_files(self, store: Store) -> None:
        """The database, its -wal and -shm, and the lock file: deleted or replaced under the daemon, each is repaired
        (state.files) and reported; when the daemon cannot go on with its file, it stops (exit 75)."""
        while True:
            await anyio.sleep(STATE_CHECK_SECONDS)
            for found in await store.check_files():
                self._log.error(found.event, problem=found.problem, state=str(store.path))
                if found.stop and not self.stop_event.is_set():
                    self._state_lost = True
                    self.stop()

    async def _watch_clock(self, store: Store) -> None:
        """Wall-clock steps: a step back (the wall clock moving less than the monotonic one, by more than
        CLOCK_STEP_TOLERANCE) moves the store's times that now lie in the future back by the step, so no wait,
        retry or pause is stretched by it; a step forward only makes what was due come early, and is logged."""
        repair = await store.ahead()
        if repair > CLOCK_STEP_TOLERANCE:  # stepped back while syncd was not running
            await self._clock_stepped(store, repair, while_stopped=True)
        wall, mono = self.clock(), time.monotonic()
        while True:
            await anyio.sleep(CLOCK_CHECK_SECONDS)
            now_wall, now_mono = self.clock(), time.monotonic()
            step = (now_mono - mono) - (now_wall - wall)
            wall, mono = now_wall, now_mono
            if step > CLOCK_STEP_TOLERANCE:
                await self._clock_stepped(store, step, while_stopped=False)
            elif step < -CLOCK_STEP_TOLERANCE:
                self._log.info("clock_stepped", direction="forward", step_s=round(-step, 1))

    async def _clock_stepped(self, store: Store, step: float, *, while_stopped: bool) -> None:
        moved = await store.shift_back(step)
        self._log.warning(
            "clock_stepped",
            direction="back",
            step_s=round(step, 1),
            while_stopped=while_stopped,
            times_moved=moved,
            hint="stored due times and pauses were moved back by the step",
        )

    async def _mask_stored_secrets(self, runtime: Runtime) -> None:
        """Once at start: mask secrets in error text an older syncd stored (it masked them only in its log), so
        `syncd status` and `dlq`, which read no secret, never show them, and the file no longer holds them."""
        masked = await runtime.store.mask_text(runtime.redact.forms, MASK)
        if masked:
            self._log.warning(
                "state_secrets_masked",
                values=masked,
                hint="error text stored by an older syncd held a configured secret: it is masked now; rotate that"
                " secret if the state file (or a copy of it) was readable by others",
            )

    async def _prune(self, store: Store) -> None:
        while True:
            await anyio.sleep(self.config.state.prune_interval)
            removed = await store.prune(self.clock() - self.config.state.retention)
            if removed:
                self._log.info("events_pruned", events=removed)

    @staticmethod
    def _echoes_read(runtime: Runtime) -> bool:
        """Whether every stream was read to the top again since feedback's last write to Sell (its echo on the
        Firehose is part of what idle means to have read)."""
        written = max((getattr(d.writer, "last_write", 0.0) for d in runtime.dispatchers), default=0.0)
        return not written or all(p.state.finished or p.state.top_read_at > written for p in runtime.pollers)

    async def _watch_idle(self, runtime: Runtime) -> None:
        """--until-idle: stop once every stream is at the top (or cannot go on), read again since feedback's last
        write to Sell, and nothing is pending but keys blocked waiting on something no destination is about to do
        (reported by `syncd status`), and no key's late-write check is still to come."""
        bound = MaxWait(self.max_wait) if self.max_wait is not None else None
        while not self.stop_event.is_set():
            await anyio.sleep(0.05)
            if bound is not None and await self._gave_up(runtime, bound):
                return
            pollers_done = all(p.state.at_top or p.state.finished for p in runtime.pollers)
            if not pollers_done or not all(d.idle for d in runtime.dispatchers):
                continue
            if not self._echoes_read(runtime):
                continue
            if runtime.backfill is not None and await runtime.backfill.pending():
                continue
            if runtime.reconcile is not None and await runtime.reconcile.pending():
                continue
            if await runtime.store.pending(blocked=False) == 0 and await runtime.store.checks_pending() == 0:
                self._log.info("idle", action="stopping (--until-idle)")
                self.stop()
