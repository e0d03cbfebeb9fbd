"""The Zendesk Sell Firehose client: one GET per page, every failure classified (never a silent skip)."""

from __future__ import annotations

import json

import httpx

from syncd.config import SellConfig
from syncd.errors import CallError, StreamExpired
from syncd.httpclient import bounded_request, clip, foreign, make_client, status_error

API = "Sell"
THROTTLE = frozenset({429, 409})


class SellClient:
    """Reads Firehose pages with the account's Bearer token."""

    def __init__(self, config: SellConfig) -> None:
        self._client = make_client(
            config.base_url,
            timeout=config.timeout,
            headers={"Authorization": f"Bearer {config.token.value}"},
        )

    async def fetch_page(self, stream: str, position: str, limit: int) -> bytes:
        """The raw body of `GET /v3/{stream}/stream`; raises a classified CallError on any failure."""
        response = await bounded_request(
            self._client, API, "GET", f"/v3/{stream}/stream", params={"position": position, "limit": str(limit)}
        )
        if response.status_code == 200:
            return response.content
        raise classify(response)

    async def aclose(self) -> None:
        await self._client.aclose()


def classify(response: httpx.Response) -> CallError:
    """Sell's error statuses: 429 and 409 throttle, 401/403 stop the stream, 410 expires it, 5xx retry. A redirect
    or an answer that is not Sell's own (an HTML page, a body that is not its JSON envelope) is retried like a 5xx:
    a proxy or load balancer in front of Sell says nothing about the position or the token."""
    status = response.status_code
    if status not in THROTTLE:
        outside = foreign(API, response, own=is_envelope(response))
        if outside is not None:
            return outside
    detail = describe(response)
    if status == 410:
        return StreamExpired(f"{API} answered 410: the stored position is past retention ({detail})", http_status=410)
    if status == 403:
        detail += " (only the account's root user may read the Firehose, on Growth plans and above)"
    return status_error(API, status, detail, throttle=THROTTLE)


def is_envelope(response: httpx.Response) -> bool:
    """Whether an error answer is Sell's own: a JSON object (its `errors` envelope), or an empty body."""
    if not response.content.strip():
        return True
    try:
        return isinstance(json.loads(response.content), dict)
    except ValueError:
        return False


def describe(response: httpx.Response) -> str:
    """`code: message (logref …)` from Sell's error envelope, or a clipped body when it is not one."""
    request_id = response.headers.get("X-Request-Id", "")
    try:
        body = json.loads(response.content) if response.content else None
    except ValueError:
        body = None
    parts: list[str] = []
    if isinstance(body, dict):
        for entry in body.get("errors") or []:
            error = entry.get("error", {}) if isinstance(entry, dict) else {}
            if isinstance(error, dict):
                code, message = error.get("code", ""), error.get("message", "")
                pointer = f" ({error['field']})" if isinstance(error.get("field"), str) and error["field"] else ""
                parts.append(": ".join(str(p) for p in (code, message) if p) + pointer)
        meta = body.get("meta")
        if isinstance(meta, dict) and meta.get("logref"):
            request_id = str(meta["logref"])
    elif response.content:
        parts.append(clip(response.text, 200))
    text = "; ".join(p for p in parts if p) or response.reason_phrase
    return f"{text} (request {request_id})" if request_id else text
