"""The demo's live progress: snapshots of the running daemon, drawn as a rich table on a terminal or as a plain
line on stderr every few seconds otherwise (nothing at all with --json off a terminal)."""

from __future__ import annotations

import sys
from collections.abc import Awaitable, Callable
from types import TracebackType

import anyio
from rich.console import Console
from rich.live import Live

from syncd.demo.report import StoreSummary
from syncd.demo.view import Progress, SinkProgress, StreamProgress, ordered_streams, progress_line, progress_table
from syncd.runtime import Runtime

REFRESH_S = 0.25  # the live view
PLAIN_EVERY_S = 2.0  # one-line progress when stdout is not a terminal


async def progress_of(runtime: Runtime, expected_events: int, elapsed_s: float) -> Progress | None:
    """A snapshot of a running daemon: pollers from memory, destinations from the store (as `syncd status`).
    None once the daemon is stopping (its store is about to close; the final frame comes from the file)."""
    if runtime.stopping:
        return None
    try:
        status = await runtime.store.status()
    except ValueError:  # aiosqlite: the daemon closed its store (it stopped, or failed) between two looks
        return None
    by_sink = {s.sink: s for s in status.sinks}
    sinks = []
    for dispatcher in runtime.dispatchers:
        got = by_sink.get(dispatcher.sink)
        sinks.append(
            SinkProgress(
                sink=dispatcher.sink,
                done=got.done if got else 0,
                skipped=got.skipped if got else 0,
                dead=got.dead if got else 0,
                pending=got.pending if got else 0,
                paused=dispatcher.state.paused,
            )
        )
    streams = tuple(StreamProgress(p.stream, p.state.events, p.state.at_top, p.state.phase) for p in runtime.pollers)
    return Progress(elapsed_s, expected_events, streams, tuple(sinks))


def progress_after(store: StoreSummary, expected_events: int, elapsed_s: float) -> Progress:
    """The last frame, from the store once the daemon has stopped."""
    streams = tuple(
        StreamProgress(
            name, store.by_stream.get(name, 0), store.at_top[name], "at top" if store.at_top[name] else "not"
        )
        for name in ordered_streams(store.at_top)
    )
    sinks = tuple(SinkProgress(s.sink, s.delivered, s.skipped, s.dead, s.pending, s.paused) for s in store.sinks)
    return Progress(elapsed_s, expected_events, streams, sinks)


class ProgressView:
    """Shows progress while the daemon runs: `follow` until it finishes, then `final` with the store's account."""

    def __init__(self, console: Console, *, title: str, footer: str, quiet: bool, transient: bool) -> None:
        self.console = console
        self.title = title
        self.footer = footer
        self.quiet = quiet  # no plain lines (--json off a terminal)
        self._live = Live(console=console, auto_refresh=False, transient=transient) if console.is_terminal else None

    def __enter__(self) -> ProgressView:
        if self._live is not None:
            self._live.start()
        elif not self.quiet:
            print(self.title, file=sys.stderr, flush=True)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if self._live is not None:
            self._live.stop()

    async def follow(self, snapshot: Callable[[], Awaitable[Progress | None]], finished: anyio.Event) -> None:
        """Draw snapshots until `finished` is set (a snapshot of None: nothing new to draw)."""
        live = self._live is not None
        while not finished.is_set():
            if live:
                self._draw(await snapshot())
            with anyio.move_on_after(REFRESH_S if live else PLAIN_EVERY_S):
                await finished.wait()
            if not live and not finished.is_set():
                self._draw(await snapshot())

    def _draw(self, progress: Progress | None) -> None:
        if progress is not None:
            self.show(progress)

    def show(self, progress: Progress) -> None:
        if self._live is not None:
            self._live.update(progress_table(progress, title=self.title, footer=self.footer), refresh=True)
        elif not self.quiet:
            print(progress_line(progress), file=sys.stderr, flush=True)

    def final(self, progress: Progress) -> None:
        """The last frame: on a terminal the table as it ended; otherwise one last line."""
        self.show(progress)
