"""How the Sell sandbox answers: JSON with Sell's content type, `X-Request-Id` on everything, Sell's error envelope.

`RequestIdMiddleware` (outermost) gives each request a uuid4, puts it in the scope for handlers (an error body's
`meta.logref` must equal the header), adds the header to whatever answers, and reports each API response's status.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_TYPE = "application/json; charset=utf-8"
MORE_INFO = "https://developers.getbase.com/docs/rest/articles/errors"
_SCOPE_KEY = "sell.request_id"

_encoder = msgspec.json.Encoder()


def request_id(request: Request) -> str:
    found = request.scope.get(_SCOPE_KEY)
    return found if isinstance(found, str) else str(uuid.uuid4())


def json_bytes(body: bytes, status: int = 200) -> Response:
    return Response(body, status, headers={"content-type": CONTENT_TYPE})


def json_response(value: Any, status: int = 200) -> Response:
    return json_bytes(_encoder.encode(value), status)


def status_line(status: int) -> str:
    """ "429 Too Many Requests", as Sell writes `meta.http_status`."""
    try:
        return f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        return str(status)


def error_body(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    details: str = "",
    resource: str | None = None,
    field: str | None = None,
) -> dict[str, Any]:
    """Sell's error envelope (v2 and v3) with one error."""
    return errors_body(request, status, [error_entry(code, message, details=details, resource=resource, field=field)])


def error_entry(
    code: str, message: str, *, details: str = "", resource: str | None = None, field: str | None = None
) -> dict[str, Any]:
    """One entry of an error envelope's `errors`."""
    error: dict[str, Any] = {"code": code, "message": message, "details": details or message}
    if resource is not None:
        error["resource"] = resource
    if field is not None:
        error["field"] = field
    return {"error": error, "meta": {"type": "error", "links": {"more_info": MORE_INFO}}}


def errors_body(request: Request, status: int, entries: list[dict[str, Any]]) -> dict[str, Any]:
    """Sell's error envelope around several errors (a refused write reports every problem at once)."""
    meta = {"type": "errors", "http_status": status_line(status), "logref": request_id(request)}
    return {"errors": entries, "meta": meta}


def error_response(
    request: Request,
    status: int,
    code: str,
    message: str,
    *,
    details: str = "",
    resource: str | None = None,
    field: str | None = None,
) -> Response:
    body = error_body(request, status, code, message, details=details, resource=resource, field=field)
    return json_response(body, status)


class RequestIdMiddleware:
    """Adds `X-Request-Id` to every response and reports `(method, path, query string, status)` of each one to
    `on_response`."""

    def __init__(self, app: ASGIApp, on_response: Callable[[str, str, str, int], None]) -> None:
        self.app = app
        self.on_response = on_response

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = str(uuid.uuid4())
        scope[_SCOPE_KEY] = rid
        path: str = scope["path"]

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                if not any(name.lower() == b"x-request-id" for name, _ in headers):
                    headers.append((b"x-request-id", rid.encode()))
                message = {**message, "headers": headers}
                query = bytes(scope.get("query_string", b"")).decode("latin-1")
                self.on_response(str(scope.get("method", "")), path, query, int(message["status"]))
            await send(message)

        await self.app(scope, receive, send_with_id)
