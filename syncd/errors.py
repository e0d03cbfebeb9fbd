"""The one exception hierarchy of syncd.

Every error syncd raises on purpose derives from `SyncdError`. Writers and the Sell client classify each failed
call into one of three delivery classes:

- `TransientError`: retry later with backoff (timeouts, connection errors, 5xx, 429, Sell's 409);
- `PermanentError`: this record can never succeed as sent; dead-letter it and go on;
- `DestinationError`: the whole API account is unusable (401/403, "Not authenticated"); pause, re-probe.

`StoreError` (the state database cannot be used) is the store's own class, re-exported here: the store imports
nothing from syncd, so it stands beside this hierarchy rather than under it, and the CLI catches it by name.
"""

from __future__ import annotations

from state.errors import StoreError


class SyncdError(Exception):
    """Root of every error syncd raises on purpose."""


class ConfigError(SyncdError):
    """The configuration cannot be used; start-up stops with exit code 78 (EX_CONFIG)."""

    exit_code = 78

    def __init__(self, message: str, *, path: str | None = None, key: str | None = None) -> None:
        self.path = path
        self.key = key
        where = ""
        if path and key:
            where = f"{path}: {key}: "
        elif path:
            where = f"{path}: "
        elif key:
            where = f"{key}: "
        super().__init__(f"{where}{message}")


class CallError(SyncdError):
    """A call to a remote API failed. Carries what an operator needs, never a secret. `uncertain`: the call may
    have taken effect although it failed (a timeout, a dropped connection or a 5xx after the request was sent), so
    a write may still land later."""

    def __init__(
        self,
        message: str,
        *,
        http_status: int | None = None,
        retry_after: float | None = None,
        request: str | None = None,
        response: str | None = None,
        uncertain: bool = False,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.http_status = http_status
        self.retry_after = retry_after
        self.request = request
        self.response = response
        self.uncertain = uncertain


class TransientError(CallError):
    """Worth retrying later: the same call may succeed once the remote side recovers."""


class InternalError(TransientError):
    """syncd itself failed on one record (a value it could not handle, a bug): that key is retried with backoff
    and, with max_attempts, given up on; the destination is not at fault, so it never counts towards pausing it."""


class RateLimited(TransientError):
    """The remote side asked us to slow down (429, Sell's 409, a throttling message)."""


class PermanentError(CallError):
    """This record can never succeed as sent: dead-letter it with the reason."""


class DestinationError(CallError):
    """The whole API account is unusable (bad or revoked credentials): pause, report, re-probe."""


class StreamExpired(CallError):
    """The stored Firehose position is older than the retention window (410 Gone)."""


class MalformedPage(TransientError):
    """A Firehose page could not be decoded; it is retried without advancing the position."""


__all__ = [
    "CallError",
    "ConfigError",
    "DestinationError",
    "InternalError",
    "MalformedPage",
    "PermanentError",
    "RateLimited",
    "StoreError",
    "StreamExpired",
    "SyncdError",
    "TransientError",
]
