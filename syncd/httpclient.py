"""Shared construction of HTTP clients and classification of HTTP failures into syncd's error classes."""

from __future__ import annotations

import httpx

from syncd import USER_AGENT
from syncd.errors import CallError, DestinationError, PermanentError, RateLimited, TransientError
from syncd.metrics import observe_http


def make_client(base_url: str, *, api: str, timeout: float, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """An httpx client with syncd's User-Agent, a total timeout per call, a bounded connection pool, and every
    response counted in the `syncd_http_requests` metric under `api`."""
    merged = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    merged.update(headers or {})
    label = api.lower()

    async def count(response: httpx.Response) -> None:
        observe_http(label, response.status_code)

    return httpx.AsyncClient(
        base_url=base_url,
        headers=merged,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        follow_redirects=False,
        event_hooks={"response": [count]},
    )


def transport_error(api: str, exc: httpx.HTTPError) -> TransientError:
    """A call that got no usable answer: timeouts, refused or dropped connections (counted as status "error")."""
    observe_http(api.lower(), "error")
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"{api} did not answer in time ({type(exc).__name__})")
    return TransientError(f"{api} could not be reached: {type(exc).__name__}: {exc}")


def status_error(
    api: str,
    status: int,
    detail: str,
    *,
    retry_after: float | None = None,
    throttle: frozenset[int] = frozenset({429}),
    request: str | None = None,
    response: str | None = None,
) -> CallError:
    """The error class of an HTTP status: throttling, auth (destination-wide), server trouble, or the record."""
    text = f"{api} answered {status}" + (f": {detail}" if detail else "")
    cls: type[CallError] = PermanentError
    if status in throttle:
        cls = RateLimited
    elif status in (401, 403):
        cls = DestinationError
    elif status >= 500 or status in (408, 425):
        cls = TransientError
    return cls(text, http_status=status, retry_after=retry_after, request=request, response=response)


def clip(text: str, limit: int = 300) -> str:
    """A short, single-line excerpt of a response body for errors and logs."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
