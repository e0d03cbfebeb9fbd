"""Fault injection shared by the three simulators: ASGI middleware plus the `/_sandbox/faults` control routes.

A fault is a JSON object posted to `POST /_sandbox/faults`:

    {"path": "/v3/leads/stream", "method": "GET",    # which requests (path prefix; both optional)
     "status": 503, "body": "...", "content_type": "text/plain", "headers": {...},   # answer with this, or
     "drop": true,          # start a response and cut the connection mid-body, or
     "malformed": true,     # answer 200 with a body that is not valid JSON, or
     "latency": 2.5,        # delay the request this many seconds before handling it (combines with the others)
     "latency_after": 2.5,  # handle the request, then hold the answer this long (the write happens; a client
                            # with a shorter timeout sees a timeout although the call took effect)
     "times": 3,            # affect this many matching requests (omit: until cleared)
     "every": 10,           # affect only every 10th matching request
     "after": 5}            # let the first 5 matching requests through untouched

`GET /_sandbox/faults` lists the active faults with their hit counts; `DELETE /_sandbox/faults` clears them.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PREFIX = "/_sandbox/"


@dataclass
class Fault:
    path: str = ""
    method: str = ""
    status: int | None = None
    body: str | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    malformed: bool = False
    latency: float = 0.0
    latency_after: float = 0.0
    times: int | None = None
    every: int = 1
    after: int = 0
    seen: int = 0  # matching requests so far
    hits: int = 0  # requests this fault changed

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        allowed = {
            "path",
            "method",
            "status",
            "body",
            "content_type",
            "headers",
            "drop",
            "malformed",
            "latency",
            "latency_after",
            "times",
            "every",
            "after",
        }
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        fault = cls(**data)
        if fault.every < 1:
            raise ValueError("every must be at least 1")
        if fault.status is None and not (fault.drop or fault.malformed or fault.latency or fault.latency_after):
            raise ValueError("a fault needs status, drop, malformed, latency or latency_after")
        return fault

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", {}, False) or k in ("seen", "hits")}

    def matches(self, method: str, path: str) -> bool:
        return path.startswith(self.path) and (not self.method or self.method.upper() == method)

    def take(self) -> bool:
        """Count one matching request; True when this one is affected."""
        self.seen += 1
        if self.seen <= self.after or (self.seen - self.after - 1) % self.every:
            return False
        if self.times is not None and self.hits >= self.times:
            return False
        self.hits += 1
        return True

    @property
    def spent(self) -> bool:
        return self.times is not None and self.hits >= self.times


class FaultPlan:
    """The active faults of one simulator (thread-safe: tests add faults from another thread)."""

    def __init__(self) -> None:
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append(fault)

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_json() for f in self._faults]

    def pick(self, method: str, path: str) -> list[Fault]:
        """The faults that affect this request (each matching fault counts it)."""
        with self._lock:
            chosen = [f for f in self._faults if f.matches(method, path) and f.take()]
            self._faults = [f for f in self._faults if not f.spent]
        return chosen


class FaultMiddleware:
    """Applies the plan's faults to every request outside `/_sandbox/`."""

    def __init__(self, app: ASGIApp, plan: FaultPlan) -> None:
        self.app = app
        self.plan = plan

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith(CONTROL_PREFIX):
            await self.app(scope, receive, send)
            return
        faults = self.plan.pick(scope["method"], scope["path"])
        delay = sum(f.latency for f in faults)
        if delay:
            await anyio.sleep(delay)
        for fault in faults:
            if fault.drop:
                await _drop(send)
                return
            if fault.malformed:
                await Response(b'{"items": [{"data": ', 200, media_type="application/json")(scope, receive, send)
                return
            if fault.status is not None:
                body = fault.body if fault.body is not None else _default_body(fault.status)
                response = Response(body, fault.status, headers=fault.headers, media_type=fault.content_type)
                await response(scope, receive, send)
                return
        hold = sum(f.latency_after for f in faults)
        if hold:
            await self.app(scope, receive, _held(send, hold))
            return
        await self.app(scope, receive, send)


def _held(send: Send, seconds: float) -> Send:
    """A `send` that keeps the response back until `seconds` after the app finished producing it."""
    buffered: list[Message] = []

    async def held_send(message: Message) -> None:
        buffered.append(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            await anyio.sleep(seconds)
            for item in buffered:
                await send(item)

    return held_send


def _default_body(status: int) -> str:
    return json.dumps({"error": f"injected fault {status}"})


class DroppedConnection(Exception):
    """Raised inside the server to abort a response after its headers, so the client sees a cut connection."""


async def _drop(send: Send) -> None:
    start: Message = {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", b"4096")],
    }
    await send(start)
    await send({"type": "http.response.body", "body": b'{"items": [', "more_body": True})
    raise DroppedConnection("connection dropped by an injected fault")


def fault_routes(plan: FaultPlan) -> list[Route]:
    """The control routes that manage a plan."""

    async def add(request: Request) -> Response:
        try:
            data = await request.json()
            items = data if isinstance(data, list) else [data]
            faults = [Fault.from_json(item) for item in items]
        except (ValueError, TypeError) as exc:
            return JSONResponse({"error": str(exc)}, 400)
        for fault in faults:
            plan.add(fault)
        return JSONResponse({"faults": plan.snapshot()})

    async def listing(request: Request) -> Response:
        return JSONResponse({"faults": plan.snapshot()})

    async def clear(request: Request) -> Response:
        plan.clear()
        return JSONResponse({"faults": []})

    return [
        Route("/_sandbox/faults", add, methods=["POST"]),
        Route("/_sandbox/faults", listing, methods=["GET"]),
        Route("/_sandbox/faults", clear, methods=["DELETE"]),
    ]
