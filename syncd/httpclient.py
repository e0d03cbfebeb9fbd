"""Shared construction of HTTP clients, one bound on every call, and classification of HTTP failures into syncd's
error classes.

- `bounded_request` bounds a call end to end, connect to last byte, with the client's timeout: httpx's own timeouts
  apply to each network operation, so a body trickled a byte at a time would otherwise hold a call for hours.
- A redirect (never followed: the credentials would go with it) and an answer that is not the API's own (the HTML
  error page of a load balancer or firewall in front of it, a captive portal) are destination-wide transient
  failures: retried with backoff, counted by the circuit breaker, never a verdict on the record being written.
- Every error says whether the call may have taken effect although it failed (`uncertain`): a write answered by a
  timeout, a dropped connection, a 500 or a gateway's 502/504 may still land.
- A call goes from a request built once straight to the client's transport (the one httpx would pick: a proxy
  mount for the URL, else its own pool), not through `AsyncClient.send`: that layer's auth, redirect and cookie
  handling were a third of syncd's CPU per call, and syncd needs none of it (credentials go in headers, redirects
  are never followed, and no cookie a server or proxy sets is kept or sent back).
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping
from typing import Any

import anyio
import httpx

from syncd import USER_AGENT
from syncd.errors import CallError, DestinationError, PermanentError, RateLimited, TransientError
from syncd.httppool import cache_socket_lookups
from syncd.metrics import observe_http
from syncd.ratelimit import TICKET

# Errors raised before the request left: the server never saw it.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.UnsupportedProtocol)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The one TLS context every client of the process shares: httpx's default (certifi's CA bundle, or
    SSL_CERT_FILE / SSL_CERT_DIR), built once. Each client building its own read the CA bundle again, about 25 ms of
    CPU each at start-up."""
    return httpx.create_ssl_context()


def make_client(base_url: str, *, timeout: float, headers: dict[str, str] | None = None) -> httpx.AsyncClient:
    """An httpx client with syncd's User-Agent, `timeout` for each network operation (`bounded_request` bounds the whole
    call with it too, and counts it) and a bounded connection pool."""
    merged = {"User-Agent": USER_AGENT, "Accept": "application/json"}
    merged.update(headers or {})
    client = httpx.AsyncClient(
        base_url=base_url,
        headers=merged,
        timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
        limits=httpx.Limits(max_connections=32, max_keepalive_connections=16),
        follow_redirects=False,
        verify=tls_context(),
    )
    cache_socket_lookups(client)
    return client


async def bounded_request(
    client: httpx.AsyncClient,
    api: str,
    method: str,
    url: str,
    *,
    params: Mapping[str, str] | None = None,
    json: Any = None,
    content: bytes | None = None,
    headers: Mapping[str, str] | None = None,
) -> httpx.Response:
    """One call with its whole answer read, bounded end to end (connect to last byte) by the client's timeout and
    counted in the `syncd_http_requests` metric under `api`; any failure to get an answer raised as a TransientError
    (see `transport_error`). A call that certainly had no effect (it never left, or was answered 429: refused
    unprocessed) is counted void on the caller's ticket."""
    timeout = client.timeout
    limit = timeout.read or timeout.connect or 30.0
    sent = client.headers
    if headers is not None:  # the call's own on top of the client's, as httpx merges them
        sent = sent.copy()
        sent.update(headers)
    request = httpx.Request(
        method,
        absolute_url(client.base_url, url),
        params=params,
        json=json,
        content=content,
        headers=sent,
        extensions={"timeout": timeout.as_dict()},
    )
    try:
        with anyio.fail_after(limit):
            response = await _send(client, request)
    except TimeoutError:
        observe_http(api.lower(), "error")
        _count(void=False)
        raise TransientError(
            f"{api} did not answer in time (the whole call, connect to last byte, within {limit:g}s)", uncertain=True
        ) from None
    except httpx.HTTPError as exc:
        _count(void=isinstance(exc, _NOT_SENT))
        raise transport_error(api, exc) from None
    except BaseException:  # cancelled mid-call: it may have reached the server
        _count(void=False)
        raise
    observe_http(api.lower(), response.status_code)
    _count(void=response.status_code == 429)
    return response


async def _send(client: httpx.AsyncClient, request: httpx.Request) -> httpx.Response:
    """`request` sent through the transport httpx would choose for its URL, its answer read whole and closed (as
    `AsyncClient.send` reads it, without the auth, redirect and cookie layers)."""
    if client.is_closed:
        raise RuntimeError("the HTTP client is closed")
    transport = client._transport_for_url(request.url)
    response = await transport.handle_async_request(request)
    response.request = request
    try:
        await response.aread()
    except BaseException:
        await response.aclose()
        raise
    # The answer is read whole and its stream closed; the transport's stream keeps a reference back to the
    # response, a cycle only the cyclic GC would free, holding the body (a Firehose page is ~100 KB) until it runs.
    response.stream = _READ
    return response


_READ = httpx.ByteStream(b"")  # the stream of an answer already read


@functools.lru_cache(maxsize=512)
def absolute_url(base: httpx.URL, url: str) -> httpx.URL:
    """`url` under the client's `base` as httpx itself merges them (`BaseClient._merge_url`: a relative path is
    appended to the base's path), computed once per path: httpx parses both again on every request otherwise."""
    merge = httpx.URL(url)
    if merge.is_relative_url:
        return base.copy_with(raw_path=base.raw_path + merge.raw_path.lstrip(b"/"))
    return merge


def _count(*, void: bool) -> None:
    """Count the request that just ended on the current work's ticket (see `syncd.ratelimit.Ticket`)."""
    ticket = TICKET.get()
    if ticket is None:
        return
    if void:
        ticket.void += 1
    else:
        ticket.reached += 1


def transport_error(api: str, exc: httpx.HTTPError) -> TransientError:
    """A call that got no usable answer: timeouts, refused or dropped connections (counted as status "error").
    Uncertain unless the request never left."""
    observe_http(api.lower(), "error")
    uncertain = not isinstance(exc, _NOT_SENT)
    if isinstance(exc, httpx.TimeoutException):
        return TransientError(f"{api} did not answer in time ({type(exc).__name__})", uncertain=uncertain)
    return TransientError(f"{api} could not be reached: {type(exc).__name__}: {exc}", uncertain=uncertain)


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
    """The error class of an HTTP status the API itself answered: throttling, auth (destination-wide), a redirect
    or server trouble (transient), or the record. (An answer that is not the API's own goes through `foreign`
    first.)"""
    text = f"{api} answered {status}" + (f": {detail}" if detail else "")
    cls: type[CallError] = PermanentError
    if status in throttle:
        cls = RateLimited
    elif status in (401, 403):
        cls = DestinationError
    elif 300 <= status < 400 or status >= 500 or status in (408, 425):
        cls = TransientError
    uncertain = may_have_landed(status)
    return cls(
        text, http_status=status, retry_after=retry_after, request=request, response=response, uncertain=uncertain
    )


def foreign(api: str, response: httpx.Response, *, own: bool, request: str | None = None) -> TransientError | None:
    """A destination-wide transient failure when `response` is a redirect, or not the API's own answer (`own`
    False: the caller's reading of its envelope; an HTML page never is); None when it is the API speaking."""
    status = response.status_code
    if 300 <= status < 400:
        where = clip(response.headers.get("location", ""), 120) or "nowhere (no Location)"
        return TransientError(
            f"{api} answered {status}, a redirect to {where}: redirects are not followed (check the base URL)",
            http_status=status,
            request=request,
        )
    if own and not is_html(response):
        return None
    kind = "an HTML page" if is_html(response) else "an answer that is not its API's"
    return TransientError(
        f"{api} answered {status} with {kind} ({summary(response)}): a proxy, load balancer or firewall in front of"
        " the API, not the API itself",
        http_status=status,
        request=request,
        uncertain=may_have_landed(status),
    )


def may_have_landed(status: int) -> bool:
    """Whether a call answered `status` may have taken effect all the same: a 500 or a gateway's 502/504 (the
    server behind may have finished it); not a 503 (not handled), a 501, or anything below 500."""
    return status >= 500 and status not in (501, 503)


def is_html(response: httpx.Response) -> bool:
    """Whether the body is an HTML page (by its content type, or by how it starts)."""
    if "html" in response.headers.get("content-type", "").lower():
        return True
    head = response.content[:64].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<body", b"<?xml"))


def summary(response: httpx.Response) -> str:
    """A page's title when it has one, else a clipped excerpt of its text."""
    text = response.text
    lowered = text.lower()
    start, end = lowered.find("<title>"), lowered.find("</title>")
    if 0 <= start < end:
        return clip(text[start + 7 : end], 120)
    return clip(text, 120) or response.reason_phrase or f"HTTP {response.status_code}"


def clip(text: str, limit: int = 300) -> str:
    """A short, single-line excerpt of a response body for errors and logs."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
