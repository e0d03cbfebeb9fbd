"""The health and metrics server: /livez, /readyz and /metrics (Prometheus), on a loopback address by default."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from syncd.metrics import LimiterSample, Sample, SinkSample, StreamSample, exposition
from syncd.runtime import Runtime
from syncd.sell.expiry import expiry


def problems(runtime: Runtime | None) -> list[str]:
    """Why the daemon is not ready (empty when it is): an expired or stopped stream, one failing on the same page
    again and again, a destination paused for its credentials, polling paused to protect the disk (with the hours
    left before the oldest unread position expires), mapping drift."""
    if runtime is None:
        return ["starting: the store is not open yet"]
    found: list[str] = []
    for poller in runtime.pollers:
        state = poller.state
        if state.phase == "expired":
            found.append(f"stream {state.stream} expired: {state.last_error}")
        elif state.phase == "stopped":
            found.append(f"stream {state.stream} stopped: {state.last_error}")
        elif state.failing:
            found.append(
                f"stream {state.stream} failing: the same page failed {state.failures} times in a row:"
                f" {state.last_error}"
            )
    for dispatcher in runtime.dispatchers:
        if dispatcher.state.pause_kind == "auth":
            found.append(f"destination {dispatcher.sink} paused: {dispatcher.state.paused}")
    if runtime.backlog is not None and runtime.backlog.paused:
        found.append(runtime.backlog.describe())
    found.extend(f"mapping drift: {drift}" for drift in runtime.drift)
    if runtime.stopping:
        found.append("stopping")
    return [runtime.redact(problem) for problem in found]


def throttled(runtime: Runtime | None) -> dict[str, str]:
    """Each API account whose calls are held by a throttle pause now, with when the pause ends (ISO-8601 UTC). A
    pause is normal operation (capped at the destination's max_backoff): shown, but no reason to be unready."""
    if runtime is None:
        return {}
    found = {}
    for limiter in runtime.limiters:
        until = limiter.paused_until_wall()
        if until is not None:
            found[limiter.name] = datetime.fromtimestamp(until, UTC).isoformat().replace("+00:00", "Z")
    return found


async def sample(runtime: Runtime | None) -> Sample:
    """Everything /metrics reports, read from the live runtime and the store."""
    if runtime is None:
        return Sample()
    status = await runtime.store.status()
    now = time.time()
    ages = {s.stream: max(0.0, now - s.updated_at) for s in status.streams}
    margin = runtime.config.sell.expiry_warning
    expiries = {s.stream: expiry(s, now=now, margin=margin) for s in status.streams}
    by_sink = {k.sink: k for k in status.sinks}
    streams = [
        StreamSample(
            stream=p.stream,
            events=p.state.events,
            duplicates=p.state.duplicates,
            quarantined=p.state.quarantined,
            position_age_s=ages.get(p.stream),
            at_top=p.state.at_top,
            up=not p.state.finished,
            expires_in_s=expiries[p.stream].expires_in if p.stream in expiries else None,
            expiry_warning=expiries[p.stream].warning if p.stream in expiries else False,
        )
        for p in runtime.pollers
    ]
    sinks = []
    limiters = [
        LimiterSample(lim.name, lim.waits, lim.waited, lim.pauses, lim.paused_until_wall()) for lim in runtime.limiters
    ]
    for d in runtime.dispatchers:
        stored = by_sink.get(d.sink)
        sinks.append(
            SinkSample(
                sink=d.sink,
                outcomes=dict(d.state.outcomes),
                pending=stored.pending if stored else 0,
                dead=stored.dead if stored else 0,
                oldest_pending_age_s=(now - stored.oldest_pending_at) if stored and stored.oldest_pending_at else None,
                paused=d.state.pause_kind,
            )
        )
    return Sample(streams=streams, sinks=sinks, limiters=limiters, ready=not problems(runtime))


def health_app(get_runtime: Callable[[], Runtime | None]) -> Starlette:
    async def livez(request: Request) -> Response:
        runtime = get_runtime()
        body: dict[str, Any] = {"status": "alive"}
        if runtime is not None:
            body["uptime_s"] = round(time.time() - runtime.started_at, 1)
        return JSONResponse(body)

    async def readyz(request: Request) -> Response:
        runtime = get_runtime()
        found = problems(runtime)
        body: dict[str, Any] = {"status": "not ready", "problems": found} if found else {"status": "ready"}
        paused = throttled(runtime)
        if paused:
            body["throttled"] = paused
        return JSONResponse(body, status_code=503 if found else 200)

    async def metrics(request: Request) -> Response:
        return Response(exposition(await sample(get_runtime())), media_type=CONTENT_TYPE_LATEST)

    return Starlette(routes=[Route("/livez", livez), Route("/readyz", readyz), Route("/metrics", metrics)])
