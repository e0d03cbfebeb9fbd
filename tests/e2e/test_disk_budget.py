"""Polling pauses only to protect the disk, and then loudly: with the state file at its size budget (a destination
down, its backlog unprunable), polling pauses with an error giving the hours left before the oldest unread position
expires, /readyz is unready, and polling resumes once deliveries and pruning make room; nothing is lost."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from structlog.testing import capture_logs

from syncd.config import load
from syncd.daemon import Daemon
from tests.e2e.world import World, person, world
from tests.support import await_until, free_port

LEADS = 300


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


async def test_the_state_file_at_its_budget_pauses_polling_loudly_until_there_is_room(w: World) -> None:
    """Ontraport down while 300 leads are created and each updated twice (about 1 MB of store): polling pauses at
    the 1 MB budget (polling_paused at error, with expires_in_h; /readyz 503 naming the budget and the hours left),
    SALESmanago keeps receiving what was stored; once Ontraport is back, deliveries finish, pruning makes room, and
    polling resumes: every lead reaches both destinations in its latest version."""
    port = free_port()
    text = w.config_text(sell="page_limit = 50").replace(
        "[health]\nenabled = false", f'[health]\nlisten = "127.0.0.1:{port}"'
    )
    text = text.replace("[state]\n", '[state]\nmax_size = "1MB"\nretention = "0s"\nprune_interval = "200ms"\n')
    file = w.tmp_path / "syncd.toml"
    file.write_text(text)
    w.stop("op")
    w.append("leads", *[person("lead", i) for i in range(1, LEADS + 1)])
    for version in (2, 3):
        w.append("leads", *[person("lead", i, version, "updated", title=f"v{version}") for i in range(1, LEADS + 1)])
    daemon = Daemon(load(file), handle_signals=False)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            await tg.start(daemon.run)

            async def paused() -> str | None:
                answer = await http.get("/readyz")
                found = [p for p in answer.json().get("problems", []) if p.startswith("polling paused")]
                return found[0] if answer.status_code == 503 and found else None

            problem = await await_until(paused, deadline=60, what="/readyz to report polling paused")
            assert "of its 1.0 MB budget (state.max_size)" in problem
            assert "the oldest unread position expires in 7" in problem  # ~72 h: it was read moments ago
            w.start("op")
            await await_until(lambda: _everyone_latest(w), deadline=120, what="every lead at both, in v3")

            async def ready() -> bool:
                return (await http.get("/readyz")).status_code == 200

            await await_until(ready, deadline=20, what="/readyz to be ready again")
            daemon.stop()
    [pause] = [e for e in logs if e["event"] == "polling_paused"]
    assert pause["log_level"] == "error" and 71 <= pause["expires_in_h"] <= 72
    assert any(e["event"] == "polling_resumed" for e in logs)


async def _everyone_latest(w: World) -> Any:
    contacts = w.op_by_email()
    if len(contacts) < LEADS or w.sm.get("state")["contacts"] < LEADS:
        return False
    return all(c.get("title") == "v3" for c in contacts.values())
