"""What a running daemon holds live: its pollers, dispatchers, limiters and flags, read by health, metrics and
the systemd notifier."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from state import Store
from syncd.config import Config
from syncd.diskspace import DiskBudget
from syncd.dispatcher import Dispatcher
from syncd.ratelimit import Limiter
from syncd.redact import NOTHING, Redactor
from syncd.sell.poller import Poller

if TYPE_CHECKING:
    from syncd.backfill.service import BackfillService
    from syncd.reconcile.service import ReconcileService


@dataclass
class Runtime:
    """Everything live in a running daemon, for health, metrics and the systemd notifier."""

    config: Config
    store: Store
    pollers: list[Poller] = field(default_factory=list)
    dispatchers: list[Dispatcher] = field(default_factory=list)
    limiters: list[Limiter] = field(default_factory=list)
    started_at: float = field(default_factory=time.time)
    stopping: bool = False
    drift: list[str] = field(default_factory=list)  # mapping drift, one line each (as the store records it)
    health_url: str | None = None
    backlog: DiskBudget | None = None  # the state file's budget: polling pauses only to protect the disk
    redact: Redactor = NOTHING  # what health answers pass through (error texts may quote an API's echo)
    backfill: BackfillService | None = None
    reconcile: ReconcileService | None = None

    def summary(self) -> str:
        """One line for systemd's STATUS=: where each stream is and what each destination has waiting."""
        streams = " ".join(f"{p.stream}:{'top' if p.state.at_top else p.state.phase}" for p in self.pollers)
        sinks = " ".join(
            f"{d.sink}:{'paused' if d.state.paused else 'ok'}/{d.state.outcomes.get('done', 0)} done"
            for d in self.dispatchers
        )
        paused = " (polling paused: the state file is at its budget)" if self.backlog and self.backlog.paused else ""
        return (f"streams {streams} | {sinks}" if sinks else f"streams {streams}") + paused
