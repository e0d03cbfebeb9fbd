"""Fault injection shared by the three simulators: ASGI middleware plus the `/_sandbox/faults` control routes.

A fault is a JSON object posted to `POST /_sandbox/faults`:

    {"path": "/v3/leads/stream", "method": "GET",    # which requests (path prefix; both optional)
     "status": 503, "body": "...", "content_type": "text/plain", "headers": {...},   # answer with this, or
     "html": true,          # answer `status` with the HTML error page a load balancer or WAF sends (nginx's), or
     "redirect": "https://login.example.com/",   # answer a redirect there (`status` 301/302/303/307/308, default
                            # 302) with an HTML body, as a proxy in front of the API might, or
     "drop": true,          # start a response and cut the connection mid-body, or
     "malformed": true,     # answer 200 with a body that is not valid JSON, or
     "latency": 2.5,        # delay the request this many seconds before handling it (combines with the others)
     "until_disconnect": true,   # the delay lasts until the client disconnects (at most `latency` seconds if
                            # given, else 60); without `complete` the handler then sees the client gone
     "complete": true,      # read the whole request before any delay and handle it to the end even if the client
                            # has gone by then: with `latency` or `until_disconnect`, the write is applied (and
                            # logged) after the client gave up, and the answer goes nowhere
     "latency_after": 2.5,  # handle the request, then hold the answer this long (the write happens; a client
                            # with a shorter timeout sees a timeout although the call took effect)
     "trickle": 1.0,        # handle the request, then send the answer's body one byte every this many seconds
                            # (until the client hangs up): each read succeeds, so only a bound on the whole call
                            # stops the wait
     "times": 3,            # affect this many matching requests (omit: until cleared)
     "every": 10,           # affect only every 10th matching request
     "after": 5}            # let the first 5 matching requests through untouched

`GET /_sandbox/faults` lists the active faults with their counts (`seen`, `hits`, and `finished`: affected requests
the simulator is done with, so a test can wait for a late write); a fault whose `times` are used up leaves the list.
`DELETE /_sandbox/faults` clears them.
Without `complete`, a request whose client went away before the handler read its body is dropped by the handler
(as the simulators always do): `complete` is the reading where the server finishes what it started.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field, fields
from http import HTTPStatus
from typing import Any

import anyio
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTROL_PREFIX = "/_sandbox/"
REDIRECTS = (301, 302, 303, 307, 308)
DISCONNECT_WAIT = 60.0  # how long `until_disconnect` waits for a client that never goes (without `latency`)


@dataclass
class Fault:
    path: str = ""
    method: str = ""
    status: int | None = None
    body: str | None = None
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)
    html: bool = False
    redirect: str = ""
    drop: bool = False
    malformed: bool = False
    latency: float = 0.0
    until_disconnect: bool = False
    complete: bool = False
    latency_after: float = 0.0
    trickle: float = 0.0
    times: int | None = None
    every: int = 1
    after: int = 0
    seen: int = 0  # matching requests so far
    hits: int = 0  # requests this fault changed
    finished: int = 0  # of those, how many the simulator has finished with (answered, dropped or handled late)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Fault:
        allowed = {f.name for f in fields(cls)} - set(_COUNTERS)
        unknown = set(data) - allowed
        if unknown:
            raise ValueError(f"unknown fault keys: {', '.join(sorted(unknown))}")
        _check_types(data)
        fault = cls(**data)
        if fault.every < 1:
            raise ValueError("every must be at least 1")
        if fault.redirect:
            fault.status = fault.status or 302
            if fault.status not in REDIRECTS:
                raise ValueError(f"a redirect's status must be one of {', '.join(map(str, REDIRECTS))}")
        if fault.html and (fault.status is None or fault.status < 400):
            raise ValueError("html needs the status of an error page (400 or more)")
        actions = (
            fault.drop
            or fault.malformed
            or fault.latency
            or fault.latency_after
            or fault.until_disconnect
            or fault.trickle
        )
        if fault.status is None and not actions:
            raise ValueError(
                "a fault needs status, html, redirect, drop, malformed, latency, until_disconnect, latency_after"
                " or trickle"
            )
        return fault

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", {}, False) or k in _COUNTERS}

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

    def answer(self) -> Response | None:
        """The response this fault gives instead of the API's, if it gives one."""
        if self.status is None:
            return None
        headers = dict(self.headers)
        if self.redirect:
            headers.setdefault("location", self.redirect)
        if self.redirect or self.html:
            headers.setdefault("server", "nginx")
            body = self.body if self.body is not None else error_page(self.status)
            return Response(body, self.status, headers=headers, media_type="text/html")
        body = self.body if self.body is not None else _default_body(self.status)
        return Response(body, self.status, headers=headers, media_type=self.content_type)


_COUNTERS = ("seen", "hits", "finished")
_TYPES: dict[str, type | tuple[type, ...]] = {
    "path": str, "method": str, "status": int, "body": str, "content_type": str, "headers": dict, "html": bool,
    "redirect": str, "drop": bool, "malformed": bool, "latency": (int, float), "until_disconnect": bool,
    "complete": bool, "latency_after": (int, float), "trickle": (int, float), "times": int, "every": int,
    "after": int,
}  # fmt: skip


def _check_types(data: dict[str, Any]) -> None:
    for key, value in data.items():
        expected = _TYPES[key]
        if value is None:
            continue
        if (isinstance(value, bool) and expected is not bool) or not isinstance(value, expected):
            raise ValueError(f"{key}: unexpected value {value!r}")
        if isinstance(value, int | float) and value < 0:
            raise ValueError(f"{key} must not be negative")
        if isinstance(value, dict) and not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            raise ValueError(f"{key}: expected an object of strings")


def error_page(status: int) -> str:
    """The HTML page nginx answers for `status` (what a load balancer or WAF in front of an API sends)."""
    try:
        title = f"{status} {HTTPStatus(status).phrase}"
    except ValueError:
        title = str(status)
    return (
        f"<html>\r\n<head><title>{title}</title></head>\r\n<body>\r\n<center><h1>{title}</h1></center>\r\n"
        "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
    )


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

    def finish(self, faults: list[Fault]) -> None:
        """Count a request these faults affected as finished."""
        with self._lock:
            for fault in faults:
                fault.finished += 1

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
        try:
            await self._serve(faults, scope, receive, send)
        finally:
            self.plan.finish(faults)

    async def _serve(self, faults: list[Fault], scope: Scope, receive: Receive, send: Send) -> None:
        receive = await self._wait(faults, receive)
        for fault in faults:
            if fault.drop:
                await _drop(send)
                return
            if fault.malformed:
                await Response(b'{"items": [{"data": ', 200, media_type="application/json")(scope, receive, send)
                return
            answer = fault.answer()
            if answer is not None:
                await answer(scope, receive, send)
                return
        hold = sum(f.latency_after for f in faults)
        if hold:
            await self.app(scope, receive, _held(send, hold))
            return
        trickle = max((f.trickle for f in faults), default=0.0)
        if trickle:
            finished: list[Message] = []

            async def keep(message: Message) -> None:
                finished.append(message)

            await self.app(scope, receive, keep)
            await _trickle(finished, send, receive, trickle)
            return
        await self.app(scope, receive, send)

    @staticmethod
    async def _wait(faults: list[Fault], receive: Receive) -> Receive:
        """Apply the faults' delays; the `receive` the handler reads the request through afterwards."""
        delay = sum(f.latency for f in faults)
        complete = any(f.complete for f in faults)
        if any(f.until_disconnect for f in faults):
            request = await _read_request(receive)
            gone = request[-1]["type"] == "http.disconnect"
            if not gone:
                gone = await _disconnected(receive, delay or DISCONNECT_WAIT)
            if gone and not complete:
                return _replay([{"type": "http.disconnect"}], receive)
            return _replay(request, receive)
        if complete:
            request = await _read_request(receive)
            if delay:
                await anyio.sleep(delay)
            return _replay(request, receive)
        if delay:
            await anyio.sleep(delay)
        return receive


async def _read_request(receive: Receive) -> list[Message]:
    """Every message of the request body (ending early at a disconnect)."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            return messages


async def _disconnected(receive: Receive, within: float) -> bool:
    """Wait until the client disconnects (True) or `within` seconds pass (False); the body must have been read."""
    with anyio.move_on_after(within):
        while (await receive())["type"] != "http.disconnect":
            pass
        return True
    return False


def _replay(messages: list[Message], receive: Receive) -> Receive:
    """A `receive` that yields `messages` first, then whatever the connection says."""
    queue = list(messages)

    async def replayed() -> Message:
        if queue:
            return queue.pop(0)
        return await receive()

    return replayed


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


async def _trickle(answer: list[Message], send: Send, receive: Receive, interval: float) -> None:
    """Send a finished answer with its body one byte every `interval` seconds, until done or the client hangs up."""
    body = b"".join(m.get("body", b"") for m in answer if m["type"] == "http.response.body")
    start = next(m for m in answer if m["type"] == "http.response.start")
    async with anyio.create_task_group() as tg:

        async def hang_up() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            tg.cancel_scope.cancel()

        tg.start_soon(hang_up)
        await send(start)
        for n in range(len(body)):
            await send({"type": "http.response.body", "body": body[n : n + 1], "more_body": n + 1 < len(body)})
            if n + 1 < len(body):
                await anyio.sleep(interval)
        if not body:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        tg.cancel_scope.cancel()


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
