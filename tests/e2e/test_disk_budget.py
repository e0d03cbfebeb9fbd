"""Polling pauses only to protect the disk, and then loudly: with the state file at its size budget (a destination
down, its backlog unprunable), polling pauses with an error giving the hours left before the oldest unread position
expires, /readyz is unready, and polling resumes once deliveries and pruning make room; nothing is lost."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
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
from tests.support import Processes, await_until, free_port, wait_until

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
    # Under load polling can pause again after it resumed (Ontraport's catch-up slower than the pages still to read
    # fill the budget again): each pause says so at error; the first was moments after the positions were read.
    pauses = [e for e in logs if e["event"] == "polling_paused"]
    assert pauses and all(p["log_level"] == "error" for p in pauses), pauses
    assert 71 <= pauses[0]["expires_in_h"] <= 72
    assert any(e["event"] == "polling_resumed" for e in logs)


async def _everyone_latest(w: World) -> Any:
    return _all_latest(w)


def test_a_real_syncd_run_at_its_budget_pauses_polling_loudly_and_loses_nothing(w: World, processes: Processes) -> None:
    """The same with a real `syncd run`: at the 1 MB budget its log says polling_paused at error with the hours
    left (about 72), /readyz answers 503 naming the budget, `syncd status` shows the state file at its budget,
    and SALESmanago gets everything stored while changes made during the pause stay unread (positions and events
    unchanged); with Ontraport back polling resumes by itself, and after a graceful stop nothing is pending,
    dead-lettered or quarantined and every lead is at both destinations in the version written during the pause."""
    port = free_port()
    text = w.config_text(sell="page_limit = 50").replace(
        "[health]\nenabled = false", f'[health]\nlisten = "127.0.0.1:{port}"'
    )
    text = text.replace("[state]\n", '[state]\nmax_size = "1MB"\nretention = "0s"\nprune_interval = "200ms"\n')
    file = w.tmp_path / "syncd.toml"
    file.write_text(text + '[log]\nformat = "json"\nlevel = "info"\n')
    db = w.tmp_path / "syncd.db"
    w.stop("op")
    w.append("leads", *[person("lead", i) for i in range(1, LEADS + 1)])
    for version in (2, 3):
        w.append("leads", *[person("lead", i, version, "updated", title=f"v{version}") for i in range(1, LEADS + 1)])
    log = w.tmp_path / "run.log"
    with log.open("wb") as out:
        daemon = processes.syncd("run", "--config", str(file), stdout=out)
    url = f"http://127.0.0.1:{port}"

    def paused() -> str | None:
        try:
            answer = httpx.get(f"{url}/readyz", timeout=5)
        except httpx.HTTPError:
            return None
        found = [p for p in answer.json().get("problems", []) if p.startswith("polling paused")]
        return found[0] if answer.status_code == 503 and found else None

    problem = wait_until(paused, timeout=90, what="/readyz to report polling paused")
    assert "of its 1.0 MB budget (state.max_size)" in problem
    assert "the oldest unread position expires in 7" in problem  # ~72 h: it was read moments ago
    [pause] = wait_until(lambda: _logged(log, "polling_paused"), timeout=30, what="polling_paused in the log")
    assert pause["level"] == "error" and 71 <= pause["expires_in_h"] <= 72, pause
    assert "state.max_size" in pause["reason"]
    wait_until(lambda: _pending(db, "salesmanago") == 0, timeout=60, what="SALESmanago to get all that was stored")
    assert _pending(db, "ontraport") > 0
    held = _rows(db, "SELECT stream, position FROM positions")
    stored = _rows(db, "SELECT MAX(seq) FROM events")
    w.append("leads", *[person("lead", i, 4, "updated", title="v4") for i in range(1, LEADS + 1)])  # while paused
    status = subprocess.run(
        [sys.executable, "-m", "syncd", "status", "--json", "--config", str(file)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert status.returncode == 0, status.stderr
    state = json.loads(status.stdout)["state"]
    assert state["budget"]["max_size"] == 10**6 and state["used_bytes"] >= state["budget"]["resume_below"], state
    assert paused() is not None  # still paused: nothing more was read
    assert _rows(db, "SELECT stream, position FROM positions") == held
    assert _rows(db, "SELECT MAX(seq) FROM events") == stored
    w.start("op")
    wait_until(lambda: _all_latest(w, "v4"), timeout=120, what="every lead at both, in v4")

    def ready() -> bool:
        try:
            return httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    wait_until(ready, timeout=30, what="/readyz to be ready again")
    wait_until(lambda: _pending(db, "ontraport") == 0, timeout=60, what="Ontraport's backlog delivered")
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, log.read_text()[-3000:]
    assert _logged(log, "polling_resumed")
    assert _rows(db, "SELECT COUNT(*) FROM deliveries WHERE status <> 'done'") == [(0,)]
    assert _rows(db, "SELECT COUNT(*) FROM dead_letters") == [(0,)]
    assert _rows(db, "SELECT COUNT(*) FROM quarantine") == [(0,)]
    assert _rows(db, "SELECT COUNT(*) FROM positions WHERE at_top = 1") == [(2,)]  # leads and contacts
    sm = w.sm_contacts()
    assert len(sm) == LEADS and all(c["deleted"] is False for c in sm.values())
    assert all(c.get("title") == "v4" for c in w.op_by_email().values())


def _logged(log: Path, event: str) -> list[dict[str, Any]]:
    """The JSON log lines for `event` a `syncd run` has written so far (whole lines only)."""
    lines = log.read_text().split("\n")[:-1]  # the last piece is empty, or a line still being written
    return [entry for line in lines if line.startswith("{") and (entry := json.loads(line))["event"] == event]


def _rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql).fetchall()


def _pending(db: Path, sink: str) -> int:
    if not db.exists():
        return -1
    try:
        return int(_rows(db, f"SELECT COUNT(*) FROM deliveries WHERE sink = '{sink}' AND status = 'pending'")[0][0])
    except sqlite3.OperationalError:  # the daemon has not created its tables yet
        return -1


def _all_latest(w: World, title: str = "v3") -> bool:
    """Every lead at both destinations, Ontraport showing its latest version (`title`)."""
    contacts = w.op_by_email()
    if len(contacts) < LEADS or w.sm.get("state")["contacts"] < LEADS:
        return False
    return all(c.get("title") == title for c in contacts.values())
