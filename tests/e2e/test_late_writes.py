"""A write the destination finishes after syncd gave up on it (the client timed out, the server completed the
request anyway) never has the last word: a key whose write's outcome is unknown is written again with its latest
state once `late_write_window` has passed, before it leaves the outbox."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from syncd.config import loads
from syncd.daemon import Daemon
from tests.e2e.world import World, person, world
from tests.support import await_until

EMAIL = "lead1@example.org"


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def _config(w: World, sink: str) -> Any:
    """Only `sink` enabled, a 500 ms timeout, late writes assumed to land within 2 s."""
    other = "op" if sink == "sm" else "sm"
    text = w.config_text(**{other: "enabled = false"})
    text = text.replace('timeout = "2s"', 'timeout = "500ms"').replace(
        'late_write_window = "200ms"', 'late_write_window = "2s"'
    )
    return loads(text, source=str(w.tmp_path / "syncd.toml"))


def _name(w: World, sink: str) -> str | None:
    if sink == "sm":
        contact = w.sm_contacts().get(EMAIL)
        return contact["name"].split()[0] if contact else None
    contact = w.op_by_email().get(EMAIL)
    return contact.get("firstname") if contact else None


def _checks_pending(w: World) -> int:
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        return int(conn.execute("SELECT COUNT(*) FROM outbox WHERE verify_at IS NOT NULL").fetchone()[0])


@pytest.mark.parametrize(("sink", "path"), [("sm", "/api/contact/upsert"), ("op", "/1/Contacts")])
async def test_a_write_finished_after_the_client_gave_up_never_leaves_an_older_state(
    w: World, sink: str, path: str
) -> None:
    """The update to v2 times out at the client while the server holds it and applies it 1.5 s later; meanwhile
    the retry wrote v3. The late v2 lands on top of v3, and the key's late-write check writes v3 again: the
    destination ends on Sell's latest state."""
    api = w.sm if sink == "sm" else w.op
    w.append("leads", person("lead", 1, first_name="Version1"))
    daemon = Daemon(_config(w, sink), handle_signals=False)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            await await_until(lambda: _is(w, sink, "Version1"), deadline=20, what="the first write")
            api.fault(path=path, method="" if sink == "sm" else "PUT", complete=True, latency=1.5, times=1)
            w.append("leads", _version(2))
            await await_until(lambda: _timed_out(logs), deadline=20, what="the write of v2 to time out")
            w.append("leads", _version(3))
            await await_until(lambda: _writes(w, sink, 3), deadline=20, what="the late write of v2 to land")
            await await_until(lambda: _settled(w, sink), deadline=20, what="the late-write check to write v3 again")
            daemon.stop()
    assert _name(w, sink) == "Version3"
    assert await _writes(w, sink, 4)  # v1, the retry, the late v2, the check
    assert _checks_pending(w) == 0


async def _is(w: World, sink: str, name: str) -> bool:
    return _name(w, sink) == name


def _version(n: int) -> dict[str, Any]:
    return person("lead", 1, n, "updated", first_name=f"Version{n}", previous={"first_name": f"Version{n - 1}"})


async def _timed_out(logs: list[dict[str, Any]]) -> bool:
    return any(e["event"] == "delivery_failed" and "did not answer in time" in e["error"] for e in logs)


async def _writes(w: World, sink: str, at_least: int) -> bool:
    """Whether the destination applied at least this many writes of the lead (late ones counted as they land)."""
    if sink == "sm":
        return int(w.sm.get("state")["writes_per_email"].get(EMAIL, 0)) >= at_least
    requests = w.op.get("state")["requests"]
    made = sum(requests.get("PUT /1/Contacts", {}).values()) + sum(
        requests.get("POST /1/Contacts/saveorupdate", {}).values()
    )
    return made >= at_least


async def _settled(w: World, sink: str) -> bool:
    return _checks_pending(w) == 0 and _name(w, sink) == "Version3"
