"""The retry policy: capped exponential backoff with full jitter, server waits honoured, errors classified."""

from __future__ import annotations

import random

import pytest

from syncd.errors import CallError, DestinationError, PermanentError, RateLimited, TransientError
from syncd.retry import GiveUp, PauseDestination, RetryAt, RetryPolicy


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (9, 256.0), (10, 300.0), (50, 300.0), (10_000, 300.0)],
)
def test_ceiling_doubles_up_to_the_cap(attempt: int, ceiling: float) -> None:
    """The jitter range doubles per attempt and stops at max_backoff."""
    assert RetryPolicy(base=1.0, cap=300.0).ceiling(attempt) == ceiling


def test_backoff_is_full_jitter_within_the_ceiling() -> None:
    """Delays spread over [floor, ceiling], not bunched at the top (full jitter)."""
    policy = RetryPolicy(base=1.0, cap=60.0)
    rng = random.Random(1)
    delays = [policy.backoff(7, rng) for _ in range(2000)]
    assert min(delays) >= policy.floor
    assert max(delays) <= 60.0
    assert min(delays) < 6.0 and max(delays) > 54.0


@pytest.mark.parametrize(
    ("policy", "attempt", "error", "expected"),
    [
        (RetryPolicy(), 1, TransientError("503"), RetryAt),
        (RetryPolicy(), 500, TransientError("timeout"), RetryAt),
        (RetryPolicy(max_attempts=3), 2, TransientError("503"), RetryAt),
        (RetryPolicy(max_attempts=3), 3, TransientError("503"), GiveUp),
        (RetryPolicy(), 1, PermanentError("422 invalid e-mail"), GiveUp),
        (RetryPolicy(max_attempts=5), 1, PermanentError("400"), GiveUp),
        (RetryPolicy(), 1, DestinationError("401"), PauseDestination),
        (RetryPolicy(max_attempts=1), 9, DestinationError("403"), PauseDestination),
        (RetryPolicy(), 1, RateLimited("429"), RetryAt),
    ],
)
def test_decision_table(policy: RetryPolicy, attempt: int, error: CallError, expected: type) -> None:
    """Transient retries (until max_attempts), permanent dead-letters at once, auth pauses the destination."""
    assert isinstance(policy.decide(attempt, error, random.Random(0)), expected)


def test_give_up_reason_names_attempts_and_error() -> None:
    """A dead letter after max_attempts says how many attempts and the last error."""
    decision = RetryPolicy(max_attempts=4).decide(4, TransientError("Ontraport answered 503"), random.Random(0))
    assert decision == GiveUp("gave up after 4 attempts: Ontraport answered 503")


@pytest.mark.parametrize(("retry_after", "wait"), [(0.5, 0.5), (7.0, 7.0), (3600.0, 10.0), (100_000.0, 10.0)])
def test_server_wait_is_honoured_up_to_the_cap(retry_after: float, wait: float) -> None:
    """Retry-After / X-Rate-Limit-Reset is honoured up to the cap (a server asking for a day waits the cap), with at
    most a little jitter on top."""
    policy = RetryPolicy(cap=10.0)
    for seed in range(50):
        decision = policy.decide(1, RateLimited("429", retry_after=retry_after), random.Random(seed))
        assert isinstance(decision, RetryAt)
        assert wait <= decision.delay <= wait + min(1.0, wait * 0.1)
