"""When a stream's stored position expires (Sell keeps Firehose events 72 hours), and what moving it skips. Pure.

The store keeps, per stream, a lower bound on when the oldest event not read yet was appended (`unread_since`):
the position stops working 72 hours after that. A daemon that keeps up refreshes it on every poll; one that cannot
(Sell failing, polling paused by a destination's backlog, the daemon stopped) lets it age, and an early warning
says so while there is still time.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from state import StreamPosition
from syncd.config import RETENTION


@dataclass(frozen=True, slots=True)
class Expiry:
    """Where a stream's position stands against Sell's retention."""

    expired: bool  # Sell already answered 410
    expires_at: float | None  # epoch seconds (None once expired)
    expires_in: float | None  # seconds left (None once expired; negative: it has expired, Sell has not said yet)
    warning: bool  # expired, or within the warning margin of it

    @property
    def hours_left(self) -> float | None:
        return None if self.expires_in is None else round(max(0.0, self.expires_in) / 3600, 1)


def unread_since(position: StreamPosition) -> float:
    """The lower bound on when the oldest unread event was appended (the position's own time when unknown)."""
    return position.unread_since if position.unread_since is not None else position.updated_at


def expiry(position: StreamPosition, *, now: float, margin: float) -> Expiry:
    """The position's expiry, with a warning when fewer than `margin` seconds are left."""
    if position.expired:
        return Expiry(True, None, None, True)
    at = unread_since(position) + RETENTION
    left = at - now
    return Expiry(False, at, left, left <= margin)


def unread_for_set(target: str, now: float) -> float | None:
    """What `unread_since` a position set by hand starts with: now at the top; at the tail the oldest retained
    event may be 72 hours old; unknown for a position string syncd printed before."""
    if target == "top":
        return now
    if target == "tail":
        return now - RETENTION
    return None


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _span(seconds: float) -> str:
    hours = max(0.0, seconds) / 3600
    return f"{hours:.1f} h" if hours >= 1 else f"{max(0.0, seconds) / 60:.0f} min"


def skipped(stream: str, target: str, position: StreamPosition | None, *, now: float) -> str:
    """What moving `stream`'s position to `target` skips, in words for the operator."""
    backfill = f"`syncd backfill --streams {stream}` carries what it skips (the records as Sell holds them now)"
    since = None if position is None or not position.position else unread_since(position)
    if target == "top":
        if since is None:
            return f"{stream}: from now on only changes made after this moment are read; {backfill}"
        return (
            f"{stream}: the jump to the top skips every change since {_when(since)} that syncd has not read"
            f" (about {_span(now - since)}); {backfill}"
        )
    if target == "tail":
        lost = since is not None and now - since > RETENTION
        tail = "re-reads every change Sell still keeps (up to 72 h back; repeats are absorbed)"
        if lost and since is not None:
            return (
                f"{stream}: {tail}; the changes between {_when(since)} and {_when(now - RETENTION)} are gone from"
                f" the Firehose and are skipped; {backfill}"
            )
        return f"{stream}: {tail}; nothing unread is skipped"
    return f"{stream}: reads on from the given position; changes between it and the old one are skipped or read again"


def expired_note(stream: str, position: StreamPosition, *, now: float) -> str:
    """What an expired position means, and the ways out."""
    since = unread_since(position)
    return (
        f"{stream}: the position expired: changes since {_when(since)} (about {_span(now - since)} ago) that syncd had"
        f" not read are gone from the Firehose; `syncd backfill --streams {stream}` re-syncs the stream with nothing"
        f" lost, `syncd position --stream {stream} --set top` skips them"
    )
