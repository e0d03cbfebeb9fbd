"""What becomes of a claimed key: the outcomes the store records (exactly one per key, several only when a key
carries separate facts). Writers produce them; `Outbox.commit` records a batch in one transaction.

`sent_nothing` (on the outcomes that put a key back in the queue): no call of the claim can have taken effect
(none left syncd, or each was refused unprocessed), so the claim left no write whose outcome could be lost, and it
does not count among the key's claims that may have (the next claim's work is `tried` only if an earlier one was).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Done:
    """Delivered. `remote_id`, `digest` and `sent` update the link; `unlink` forgets it (after a delete)."""

    key: str
    seqs: tuple[int, ...]
    remote_id: str | None = None
    digest: str | None = None
    sent: dict[str, Any] | None = None
    unlink: bool = False
    detail: str = ""
    wrote: bool = True  # a destination record was created or updated (False: only deleted, or nothing to do)


@dataclass(frozen=True, slots=True)
class Skipped:
    """Nothing to send, for a stated reason (no e-mail, unchanged, guarded delete, ...)."""

    key: str
    seqs: tuple[int, ...]
    reason: str
    digest: str | None = None


@dataclass(frozen=True, slots=True)
class Retry:
    """A transient failure: try the key again at `at` (epoch seconds); counts as an attempt. `unsure`: the failed
    call may have taken effect (a timeout, a cut answer, a 5xx), so a write of it may still land later."""

    key: str
    at: float
    error: str
    http_status: int | None = None
    unsure: bool = False
    sent_nothing: bool = False  # the claim left no write (see the module docstring)


@dataclass(frozen=True, slots=True)
class Deferred:
    """Not yet: try again at `at` without counting an attempt (a delete waiting for other streams)."""

    key: str
    at: float
    reason: str
    sent_nothing: bool = False  # the claim left no write (see the module docstring)


@dataclass(frozen=True, slots=True)
class Waiting:
    """Not before another key: `on` (a key of the same destination, or of a Sell record) must be written or known
    first. The key is due again at `at`, or at once when `on` finishes in this destination (or was written after
    this key was claimed) or a change of the record `on` names is stored. No attempt is counted."""

    key: str
    on: str
    reason: str
    at: float | None = None  # None: the dispatcher sets it (recheck policy)
    sent_nothing: bool = False  # the claim left no write (see the module docstring)


@dataclass(frozen=True, slots=True)
class Dead:
    """A permanent failure for this record: dead-letter the deliveries with the reason and the request."""

    key: str
    seqs: tuple[int, ...]
    reason: str
    http_status: int | None = None
    request: str | None = None
    attempts: int = 0


@dataclass(frozen=True, slots=True)
class Released:
    """Claimed but not attempted (the destination paused first): back in the queue, unchanged."""

    key: str
    sent_nothing: bool = False  # the claim left no write (see the module docstring)


Outcome = Done | Skipped | Retry | Deferred | Waiting | Dead | Released
