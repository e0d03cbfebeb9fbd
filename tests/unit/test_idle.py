"""--until-idle's bound: what blocks idle, and when a blockage has lasted --max-wait."""

from __future__ import annotations

import pytest

from syncd.idle import Blocked, MaxWait, SinkView, StreamView, blocked

SELL = "http://127.0.0.1:1"
OK = StreamView(0, "")
FAILING = StreamView(3, "connection refused")
PAUSED = SinkView("ontraport", "http://127.0.0.1:2", "unavailable", "connection refused")
RUNNING = SinkView("salesmanago", "http://127.0.0.1:3", None, "")


@pytest.mark.parametrize(
    ("streams", "sinks", "pending", "expected"),
    [
        ([OK], [RUNNING], True, []),
        ([OK, FAILING], [RUNNING], False, [Blocked("sell", SELL, "connection refused")]),
        ([OK], [PAUSED, RUNNING], True, [Blocked("ontraport", "http://127.0.0.1:2", "connection refused")]),
        ([OK], [PAUSED], False, []),  # paused with nothing to write holds nothing back
        (
            [FAILING],
            [PAUSED],
            True,
            [
                Blocked("sell", SELL, "connection refused"),
                Blocked("ontraport", "http://127.0.0.1:2", "connection refused"),
            ],
        ),
    ],
)
def test_blocked_names_each_api_holding_idle_back(
    streams: list[StreamView], sinks: list[SinkView], pending: bool, expected: list[Blocked]
) -> None:
    """Sell when a stream's reads fail; a destination when it is paused with work pending."""
    assert blocked(SELL, streams, sinks, pending=pending) == expected


def test_max_wait_fires_only_after_an_unbroken_blockage() -> None:
    """The clock restarts whenever nothing blocks; it fires once the same blockage lasted max_wait."""
    sell = [Blocked("sell", SELL, "connection refused")]
    bound = MaxWait(10.0)
    assert not bound.observe(0.0, sell)
    assert not bound.observe(9.0, sell)
    assert not bound.observe(9.5, [])  # a page was read: the wait starts again
    assert not bound.observe(10.0, sell)
    assert not bound.observe(19.9, sell)
    assert bound.observe(20.0, sell)
    assert bound.message() == (
        "--until-idle gave up after waiting 10s (--max-wait) for what it could not reach: Sell at"
        f" {SELL}: connection refused"
    )
