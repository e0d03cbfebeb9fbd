"""Answers that are not the API's own: redirects (never followed) and the HTML error pages of a load balancer or
firewall in front of an API are destination-wide transient failures, retried, never a verdict on a record, and
never the end of a Sell stream."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from syncd.daemon import EXIT_OK, Daemon
from syncd.runtime import Runtime
from tests.e2e.world import World, person, world
from tests.support import await_until

PEOPLE = 40


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def dead_letters(w: World) -> list[tuple[Any, ...]]:
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        return conn.execute("SELECT sink, key, reason FROM dead_letters").fetchall()


async def test_redirects_and_html_error_pages_dead_letter_nothing(w: World) -> None:
    """SALESmanago answering a 301 and then nginx's HTML 400, Ontraport nginx's HTML 404 and then a 302, for a
    backlog of 40 people: every failure is retried as the destination's (the breaker opens), nothing is
    dead-lettered, and every person arrives at both once the proxies step aside."""
    w.sm.fault(path="/api/", redirect="https://login.example.com/", status=301, times=3)
    w.sm.fault(path="/api/", html=True, status=400, after=3, times=3)
    w.op.fault(path="/1/Contacts/saveorupdate", html=True, status=404, times=4)
    w.op.fault(path="/1/Contacts/saveorupdate", redirect="https://maintenance.example.com/", after=4, times=2)
    w.op.fault(path="/1/Contacts/meta", html=True, status=404, times=1)
    w.append("leads", *[person("lead", i) for i in range(1, PEOPLE + 1)])
    with capture_logs() as logs:
        assert await w.run(w.config(sm="concurrency = 2", op="concurrency = 2")) == EXIT_OK
    assert dead_letters(w) == []
    assert w.sm.get("state")["contacts"] == PEOPLE
    assert len(w.op_by_email()) == PEOPLE
    failures = [e for e in logs if e["event"] in ("delivery_failed", "destination_unavailable")]
    errors = " | ".join(str(e["error"]) for e in failures)
    assert "a redirect to https://login.example.com/" in errors
    assert "redirects are not followed" in errors
    assert "with an HTML page (400 Bad Request)" in errors
    assert "with an HTML page (404 Not Found)" in errors
    assert any(e["event"] == "destination_unavailable" for e in logs)  # destination-wide: the breaker opened


async def test_a_redirect_or_an_html_page_in_front_of_sell_never_stops_a_stream(w: World) -> None:
    """Sell's Firehose behind a proxy answering 301 (leads) and nginx's HTML 404 (contacts): both streams back off
    and read on, and everything reaches both destinations."""
    w.sell.fault(path="/v3/leads/stream", redirect="https://www.getbase.com/", status=301, times=3)
    w.sell.fault(path="/v3/contacts/stream", html=True, status=404, times=3)
    w.append("leads", *[person("lead", i) for i in range(1, 6)])
    w.append("contacts", *[person("contact", i) for i in range(1, 6)])
    daemon = Daemon(w.config(), until_idle=True, handle_signals=False)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            runtime: Runtime = await tg.start(daemon.run)
            await await_until(lambda: _delivered(w, 10), deadline=30, what="every person at both destinations")
    assert all(not p.state.finished for p in runtime.pollers)
    assert not [e for e in logs if e["event"] == "stream_stopped"]
    failed = [str(e["error"]) for e in logs if e["event"] == "poll_failed"]
    assert any("a redirect to https://www.getbase.com/" in error for error in failed)
    assert any("with an HTML page (404 Not Found)" in error for error in failed)


async def _delivered(w: World, people: int) -> bool:
    return w.sm.get("state")["contacts"] >= people and len(w.op_by_email()) >= people
