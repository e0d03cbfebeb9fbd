"""When a stream's position expires against Sell's 72-hour retention, the early warning, and what moving a position
by hand skips."""

from __future__ import annotations

import pytest

from state import StreamPosition
from syncd.sell.expiry import expired_note, expiry, skipped, unread_for_set

H = 3600.0
NOW = 1_800_000_000.0


def position(*, unread: float | None, updated: float = NOW, expired: bool = False, top: bool = False) -> StreamPosition:
    return StreamPosition("leads", "p", top, updated, expired, None, unread)


@pytest.mark.parametrize(
    ("unread_ago", "margin", "left_h", "warning"),
    [
        pytest.param(0, 24 * H, 72.0, False, id="just-read"),
        pytest.param(47 * H, 24 * H, 25.0, False, id="outside-the-margin"),
        pytest.param(49 * H, 24 * H, 23.0, True, id="inside-the-margin"),
        pytest.param(49 * H, 12 * H, 23.0, False, id="a-smaller-margin"),
        pytest.param(80 * H, 24 * H, 0.0, True, id="past-retention-before-sell-says-so"),
    ],
)
def test_expiry_counts_from_the_oldest_unread_event(
    unread_ago: float, margin: float, left_h: float, warning: bool
) -> None:
    """72 hours after the oldest unread event was appended the position is gone; within `margin` of that, warn."""
    left = expiry(position(unread=NOW - unread_ago), now=NOW, margin=margin)
    assert (left.hours_left, left.warning, left.expired) == (left_h, warning, False)


def test_without_a_bound_the_positions_own_time_counts() -> None:
    """A position stored by an older syncd (no bound) expires 72 hours after it was stored."""
    left = expiry(position(unread=None, updated=NOW - 60 * H), now=NOW, margin=24 * H)
    assert (left.hours_left, left.warning) == (12.0, True)


def test_an_expired_position_warns_and_has_no_time_left() -> None:
    """Once Sell answered 410 there is no expiry time left, only the warning."""
    left = expiry(position(unread=NOW, expired=True), now=NOW, margin=24 * H)
    assert (left.expired, left.expires_in, left.warning) == (True, None, True)


@pytest.mark.parametrize(
    ("target", "unread"), [pytest.param("top", NOW), pytest.param("tail", NOW - 72 * H), pytest.param("abc", None)]
)
def test_a_position_set_by_hand_starts_with_a_safe_bound(target: str, unread: float | None) -> None:
    """At the top nothing is unread; at the tail the oldest retained event may be 72 hours old; a position string's
    age is unknown."""
    assert unread_for_set(target, NOW) == unread


def test_what_a_jump_skips_is_said() -> None:
    """Jumping to the top names the unread span and the backfill that carries it; going to the tail says what is
    re-read and, past the retention, what is lost."""
    behind = position(unread=NOW - 30 * H)
    top = skipped("leads", "top", behind, now=NOW)
    assert "skips every change since" in top and "about 30.0 h" in top and "syncd backfill --streams leads" in top
    tail = skipped("leads", "tail", behind, now=NOW)
    assert "re-reads every change Sell still keeps" in tail and "nothing unread is skipped" in tail
    lost = skipped("leads", "tail", position(unread=NOW - 100 * H), now=NOW)
    assert "gone from the Firehose and are skipped" in lost
    assert "from now on" in skipped("leads", "top", None, now=NOW)


def test_an_expired_note_names_both_ways_out() -> None:
    """An expired position's note says what was lost and how to recover it or skip it."""
    note = expired_note("leads", position(unread=NOW - 80 * H, expired=True), now=NOW)
    assert "about 80.0 h ago" in note
    assert "syncd backfill --streams leads" in note and "--set top" in note
