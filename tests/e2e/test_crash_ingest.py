"""Crash safety with real processes: `syncd run` SIGKILLed at random moments never loses or doubles an event."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.events import source_kind
from tests.support import Processes, free_port, sandboxes_ready, wait_until

EVENTS = 20_000
KILLS = 10
STREAMS = ["leads", "contacts", "deals", "notes", "orders", "line_items", "stages", "custom_fields", "sources"]


@pytest.fixture
def crash_config(tmp_path: Path) -> Path:
    port = free_port()
    file = tmp_path / "syncd.toml"
    file.write_text(
        f"""
[state]
path = "syncd.db"
[sell]
token = "crash-test-token"
base_url = "http://127.0.0.1:{port}"
streams = {json.dumps(STREAMS)}
poll_interval = "50ms"
rate = "1000/s"
max_backoff = "200ms"
[sandbox]
sell_rate = "1000/s"
[health]
enabled = false
[log]
level = "warning"
"""
    )
    return file


@pytest.fixture
def sandbox(crash_config: Path, tmp_path: Path, processes: Processes) -> Iterator[str]:
    """The Sell sandbox in its own process, holding a generated history of EVENTS events."""
    out = (tmp_path / "sandbox.log").open("wb")
    args = ("sandbox", "--config", str(crash_config), "--events", str(EVENTS), "--seed", "5")
    proc = processes.syncd(*args, stdout=out)
    log = tmp_path / "sandbox.log"
    try:
        urls = wait_until(lambda: sandboxes_ready(log), timeout=60, what="the sandbox to listen")
        yield urls["sell"]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=20)
        out.close()


def stored_kind(wire: dict[str, Any]) -> str:
    """The kind syncd stores an item under: a source is a lead_source or a deal_source."""
    kind = str(wire["meta"]["type"])
    return source_kind(wire["data"].get("resource_type") or "") if kind == "source" else kind


def stored_count(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])
    except sqlite3.OperationalError:  # created but not migrated yet
        return 0


@pytest.mark.slow
@pytest.mark.timeout(600)  # under a minute on an idle 2-core machine; several times that with the cores busy
def test_sigkill_at_random_moments_loses_and_doubles_nothing(
    crash_config: Path, sandbox: str, tmp_path: Path, processes: Processes
) -> None:
    """`syncd run` killed with SIGKILL ten times mid-ingest, and restarted each time, ends with every sandbox event
    stored exactly once and every stream's position at the head."""
    db = tmp_path / "syncd.db"
    rng = random.Random(2024)
    # Kill points spread over the whole history, plus kills right after a restart (before anything new lands).
    targets = sorted(rng.sample(range(1, EVENTS - 1000), KILLS - 3))
    targets[1:1] = [targets[0]] * 3
    kills = 0
    for target in targets:
        with (tmp_path / f"run-{kills}.log").open("wb") as log:
            proc = processes.syncd("run", "--config", str(crash_config), stdout=log)
            floor = max(target, stored_count(db) + 1)
            wait_until(
                lambda floor=floor, proc=proc: stored_count(db) >= floor or proc.poll() is not None,
                timeout=240,
                interval=0.002,
            )
            assert proc.poll() is None, (tmp_path / f"run-{kills}.log").read_text()
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(timeout=10) == -signal.SIGKILL
        kills += 1
    assert kills == KILLS
    assert stored_count(db) < EVENTS  # the last kill happened before the end: the final run has work to do

    with (tmp_path / "final.log").open("wb") as final_log:
        final = processes.syncd("run", "--config", str(crash_config), "--until-idle", stdout=final_log)
        assert final.wait(timeout=300) == 0, (tmp_path / "final.log").read_text()

    with httpx.Client(base_url=sandbox, timeout=30) as http:
        expected: set[tuple[str, int, int, str]] = set()
        heads = {}
        state = http.get("/_sandbox/state").json()["streams"]
        for stream in STREAMS:
            items = http.get("/_sandbox/events", params={"stream": stream}).json()["items"]
            expected |= {
                (stored_kind(i), i["data"]["id"], i["meta"]["sequence"], i["meta"]["event_type"]) for i in items
            }
            heads[stream] = state[stream]["head"]
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT kind, record_id, sequence, action FROM events").fetchall()
        positions = dict(conn.execute("SELECT stream, position FROM positions").fetchall())
    assert len(expected) == EVENTS
    assert len(rows) == len(set(rows)) == EVENTS
    assert set(rows) == expected
    assert positions == heads
