"""`syncd demo`: the whole pipeline in one command, against the built-in sandboxes.

It generates a realistic Sell history (with a couple of leads whose e-mail every destination refuses, to show dead
letters), serves the three simulators in-process on free loopback ports, writes a config (credentials it generates,
kept in 0600 files) and runs the real daemon with `until_idle` on a fresh state file, showing live progress. Then it
reads the store's account of every event, what the destinations hold of Sell's history (SALESmanago external events,
Ontraport purchases and notes), and a sample person, won deal and note back from each destination, and prints a
summary (or, with `--json`, one JSON object). Exit 0 only when every event is accounted for.

The daemon's logs go to `syncd.log` in the demo's directory, never to the terminal. Ctrl-C (or SIGTERM) stops the
daemon gracefully and still prints what was done (exit 130); a second one stops at once.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import shlex
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from anyio.abc import TaskGroup, TaskStatus
from rich.console import Console

from syncd.asgi import make_server, serve_started
from syncd.commands import program
from syncd.commands.demo import DEFAULT_EVENTS, DEFAULT_SEED
from syncd.config import Config, load
from syncd.daemon import Daemon
from syncd.demo.history import HistoryTotals, fetch_samples, fetch_totals
from syncd.demo.logs import DemoLogs
from syncd.demo.progress import ProgressView, progress_after, progress_of
from syncd.demo.report import Report, StoreSummary, Timings, as_json, fetch_sample, read_store
from syncd.demo.view import Progress, summary
from syncd.demo.world import (
    CONFIG_NAME,
    LOG_NAME,
    POISON,
    STATE_NAME,
    Credentials,
    Expected,
    Ports,
    config_text,
    expected,
    sandbox_config,
    write_config,
    write_secrets,
)
from syncd.errors import ConfigError
from syncd.runtime import Runtime
from syncd.sandbox.sell.history import generate_history
from syncd.sandbox.serve import Sandbox, build

EXIT_INTERRUPTED = 130


@dataclass(frozen=True, slots=True)
class Options:
    events: int
    seed: int
    json: bool
    keep: Path | None
    rate_limits: bool
    feedback: bool = False

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> Options:
        if args.events < 1:
            raise ConfigError(f"--events: expected a positive number, got {args.events}")
        return cls(
            events=int(args.events),
            seed=int(args.seed),
            json=bool(args.json),
            keep=Path(args.keep).expanduser().resolve() if args.keep else None,
            rate_limits=bool(args.rate_limits),
            feedback=bool(getattr(args, "feedback", False)),
        )


def run(args: argparse.Namespace) -> int:
    """The `syncd demo` command."""
    options = Options.from_args(args)
    console = Console(file=sys.stdout, highlight=False)
    if not console.is_terminal:
        console = Console(file=sys.stdout, highlight=False, width=160, no_color=True)
    with _directory(options.keep) as directory:
        report = anyio.run(_demo, options, directory, console)
    if report is None:
        print("syncd demo: stopped at once (second signal)", file=sys.stderr)
        return EXIT_INTERRUPTED
    if options.json:
        print(json.dumps(as_json(report), indent=2, ensure_ascii=False, default=str))
    else:
        for part in summary(report):
            console.print(part, soft_wrap=True)  # a long line (a command to paste) is never broken
    if report.interrupted:
        return EXIT_INTERRUPTED
    return 0 if report.accounted_for else 1


@contextlib.contextmanager
def _directory(keep: Path | None) -> Iterator[Path]:
    """The demo's directory: DIR for --keep (refused if it already holds a state file), else a temporary one."""
    if keep is None:
        with tempfile.TemporaryDirectory(prefix="syncd-demo-") as tmp:
            yield Path(tmp)
        return
    if (keep / STATE_NAME).exists():
        raise ConfigError(f"{keep} already holds a demo's state ({STATE_NAME}); remove it or name another directory")
    keep.mkdir(parents=True, exist_ok=True, mode=0o700)
    yield keep


KEEP_AGAIN = "./syncd-demo"  # where the commands to look further keep a demo run again (no --keep given)


def commands(
    directory: Path | None, letter: int | None = None, *, program: str = "syncd", again: str = ""
) -> tuple[str, ...]:
    """The commands that look further into what the demo left behind, each runnable exactly as printed from the
    shell the demo ran in (`program`: how that shell reaches this syncd). Without --keep the demo's directory is
    gone, so the first command runs the same demo again (`again`: the options that make it the same) keeping it in
    ./syncd-demo, and the others read that; a fresh state file numbers its dead letters from 1."""
    rows: list[tuple[str, str]] = []
    if directory is None:
        where = KEEP_AGAIN
        rows.append((f"{program} demo{again} --keep {where}", "the same demo again, keeping its state, config and log"))
        letter = 1 if letter is not None else None
    else:
        where = str(directory)
    config = f"--config {shlex.quote(f'{where}/{CONFIG_NAME}')}"
    log = shlex.quote(f"{where}/{LOG_NAME}")
    rows += [
        (f"{program} status {config}", "positions, backlog and totals per destination"),
        (f"{program} dlq list {config}", "the dead letters"),
    ]
    if letter is not None:
        rows.append((f"{program} dlq show {letter} {config}", "one dead letter with its request"))
    rows += [
        (f"{program} logs {log} --level warning", "the daemon's log, made readable"),
        (f"{program} logs {log} --grep delivery_dead", "how the dead letters came about"),
    ]
    width = max(len(command) for command, _ in rows)
    return tuple(f"{command:<{width}}   # {why}" for command, why in rows)


def same_demo(options: Options) -> str:
    """The options that make a demo run again the same one (its events, seed, limits and feedback), as typed."""
    again = f" --events {options.events}" if options.events != DEFAULT_EVENTS else ""
    again += f" --seed {options.seed}" if options.seed != DEFAULT_SEED else ""
    again += " --rate-limits" if options.rate_limits else ""
    return again + (" --feedback" if options.feedback else "")


async def _demo(options: Options, directory: Path, console: Console) -> Report | None:
    started = time.monotonic()
    creds = Credentials.generate()
    write_secrets(directory, creds)
    history = generate_history(options.events, seed=options.seed, poison=POISON)
    wanted = expected(history)
    boxes = build(sandbox_config(directory, creds, rate_limits=options.rate_limits), seed=options.seed)
    sell = next(box for box in boxes if box.name == "sell").model
    sell.load(history)
    del history
    history_s = time.monotonic() - started
    with _first_error(), DemoLogs(directory / LOG_NAME, secrets=creds.secret_values()) as logs:
        async with anyio.create_task_group() as servers:
            ports = Ports(**{box.name: await _start(servers, box) for box in boxes})
            text = config_text(creds, ports, rate_limits=options.rate_limits, feedback=options.feedback)
            config = load(write_config(directory, text))
            logs.capture()  # from here on, nothing but the demo's own view reaches the terminal
            startup_s = time.monotonic() - started - history_s
            echoes = partial(_echo_ids, sell) if options.feedback else None
            synced = await _sync(options, config, wanted, console, str(directory / LOG_NAME), echoes)
            sample = (
                {}
                if synced is None
                else await fetch_sample(synced.store.sample, ports, creds, feedback=options.feedback)
            )
            held = HistoryTotals() if synced is None else await fetch_totals(ports)
            history_sample = (
                {}
                if synced is None
                else await fetch_samples(synced.store.sample_deal, synced.store.sample_note, ports, creds)
            )
            servers.cancel_scope.cancel()  # each server is asked to exit and closes its connections cleanly
    if synced is None:
        return None
    kept = options.keep
    return Report(
        requested=options.events,
        seed=options.seed,
        expected=wanted,
        store=synced.store,
        sample=sample,
        timings=Timings(history_s, startup_s, synced.sync_s, time.monotonic() - started),
        interrupted=synced.interrupted,
        daemon_exit=synced.exit_code,
        directory=str(kept) if kept is not None else None,
        commands=commands(
            kept,
            synced.store.letters[0].id if synced.store.letters else None,
            program=program(),
            again=same_demo(options),
        ),
        history=held,
        history_sample=history_sample,
    )


@contextlib.contextmanager
def _first_error() -> Iterator[None]:
    """Task groups wrap errors in groups; the CLI reports the first one plainly."""
    try:
        yield
    except BaseExceptionGroup as group:
        first: BaseException = group
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


async def _start(tg: TaskGroup, box: Sandbox) -> int:
    """Serve one simulator on a free loopback port, as a task of `tg` (until it is cancelled); returns the port."""
    server = make_server(box.app, 0)

    async def serve(*, task_status: TaskStatus[int] = anyio.TASK_STATUS_IGNORED) -> None:
        await serve_started(server, task_status.started)

    port: int = await tg.start(serve)
    return port


@dataclass
class _Synced:
    store: StoreSummary
    sync_s: float
    interrupted: bool
    exit_code: int | None


@dataclass
class _Run:
    """What the tasks of one sync share."""

    daemon: Daemon
    exit_code: int | None = None
    interrupted: bool = False
    forced: bool = False
    finished: anyio.Event = field(default_factory=anyio.Event)


async def _sync(
    options: Options,
    config: Config,
    wanted: Expected,
    console: Console,
    log_path: str,
    echoes: Callable[[], list[str]] | None = None,
) -> _Synced | None:
    """Run the daemon until it is idle (or stopped), showing progress; then read the store's account (`echoes`:
    the Firehose event ids of Sell's echoes of feedback writes, told apart from the history's events). None when a
    second signal stopped everything at once."""
    shared = _Run(Daemon(config, until_idle=True, handle_signals=False))
    limits = "the APIs' real rate limits" if options.rate_limits else "no rate limits"
    view = ProgressView(
        console,
        title=f"syncd demo: {options.events} Sell events, seed {options.seed}, {limits}",
        footer=f"daemon log: {log_path}   (Ctrl-C stops gracefully)",
        quiet=options.json,
        transient=options.json,
    )
    started = time.monotonic()
    with view:
        async with anyio.create_task_group() as tg:
            tg.start_soon(_watch_signals, shared, tg.cancel_scope)
            runtime: Runtime = await tg.start(_run_daemon, shared)

            async def snapshot() -> Progress | None:
                return await progress_of(runtime, wanted.events, time.monotonic() - started)

            await view.follow(snapshot, shared.finished)
            tg.cancel_scope.cancel()
        if shared.forced:
            return None
        sync_s = time.monotonic() - started
        store = await read_store(Path(config.state.path), wanted, echoes() if echoes is not None else ())
        view.final(progress_after(store, wanted.events, sync_s))
    return _Synced(store, sync_s, shared.interrupted, shared.exit_code)


def _echo_ids(sell: Any) -> list[str]:
    """The Firehose event ids of the items Sell appended for the writes it took (feedback's echoes)."""
    return [str(w["event_id"]) for w in sell.writes() if w.get("event_id")]


async def _run_daemon(shared: _Run, *, task_status: TaskStatus[Runtime] = anyio.TASK_STATUS_IGNORED) -> None:
    try:
        shared.exit_code = await shared.daemon.run(task_status=task_status)
    finally:
        shared.finished.set()


async def _watch_signals(shared: _Run, scope: anyio.CancelScope) -> None:
    """SIGINT/SIGTERM: a graceful stop of the daemon; a second one cancels everything at once."""
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            if not shared.interrupted:
                shared.interrupted = True
                shared.daemon.stop()
                continue
            shared.forced = True
            scope.cancel()
            return
