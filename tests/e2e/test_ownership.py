"""One owner per state file, with real processes: a second `syncd run` refuses at once, operator commands beside the
running daemon never take a write in flight from under it, `position --set` refuses while it runs, and commands
that only use the store work from a shell that cannot read the daemon's secrets."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.world import OP_KEY, SELL_TOKEN, SM_SECRET, World, person, world
from tests.support import Processes, wait_until


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def syncd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """A one-shot `syncd` command as an operator runs it from a shell."""
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], capture_output=True, text=True, timeout=60, check=False, env=env
    )


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10) as conn:
        return conn.execute(sql).fetchall()


def peek(db: Path, sql: str) -> list[tuple[Any, ...]]:
    """`rows`, or [] while the daemon has not created the file and its tables yet (for waits)."""
    if not db.exists():
        return []
    try:
        return rows(db, sql)
    except sqlite3.OperationalError:
        return []


def pending(db: Path) -> int:
    return int(rows(db, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'")[0][0])


def op_writes(w: World) -> int:
    """Contact writes the Ontraport simulator has applied."""
    return sum(w.op.get("state")["writes"].values())


def in_flight(db: Path) -> list[str]:
    """Keys the daemon has claimed (handed to its writer, outcome not yet recorded)."""
    return [r[0] for r in peek(db, "SELECT key FROM outbox WHERE claimed = 1 ORDER BY key")]


def test_operator_commands_beside_a_write_in_flight_never_let_an_older_write_land_last(
    w: World, processes: Processes
) -> None:
    """While Ontraport holds the first write of lead 1 (Ada), Sell changes the lead (Grace) and the operator runs
    `dlq list`, `status`, `position` and `dlq retry --all`: the daemon does not claim lead 1 again while its write is
    in flight, so the newer state is written after the older one lands and Ontraport ends with Grace. (Before, any
    command's open of the store released every claim: the daemon wrote Grace at once, then the held Ada landed, and
    the destination stayed stale with nothing pending.)"""
    config = w.tmp_path / "syncd.toml"
    config.write_text(w.config_text(sm="enabled = false", op="concurrency = 4").replace('"2s"', '"20s"'))
    db = w.tmp_path / "syncd.db"
    w.op.fault(path="/1/Contacts/saveorupdate", latency=5, times=1)
    w.append("leads", person("lead", 1, first_name="Ada"))
    log = w.tmp_path / "run.log"
    with log.open("wb") as out:
        daemon = processes.syncd("run", "--config", str(config), stdout=out)
    wait_until(lambda: in_flight(db) == ["lead:1"], timeout=30, what="the first write to be in flight")
    w.append("leads", person("lead", 1, 2, "updated", first_name="Grace", previous={"first_name": "Ada"}))
    wait_until(lambda: peek(db, "SELECT COUNT(*) FROM events") == [(2,)], timeout=30, what="the change to be read")
    for command in (("dlq", "list"), ("status",), ("position",), ("dlq", "retry", "--all")):
        done = syncd(*command, "--config", str(config))
        assert done.returncode == 0, done.stderr
    wait_until(lambda: op_writes(w) == 2 and pending(db) == 0, timeout=30, what="both writes to land")
    contacts = w.op_contacts()
    assert [c["firstname"] for c in contacts] == ["Grace"], contacts
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, log.read_text()


def test_a_second_daemon_on_the_same_state_file_exits_at_once_with_75(w: World, processes: Processes) -> None:
    """A second `syncd run` on a file a running daemon owns exits at once with code 75, naming the file and the
    owner's pid, and changes nothing; `syncd status` names the owner; once the first stops, a run starts."""
    config = w.config_file()
    db = w.tmp_path / "syncd.db"
    w.append("leads", person("lead", 1))
    log = w.tmp_path / "run.log"
    with log.open("wb") as out:
        first = processes.syncd("run", "--config", str(config), stdout=out)
    wait_until(lambda: peek(db, "SELECT status FROM deliveries") == [("done",), ("done",)], timeout=30)
    second = syncd("run", "--config", str(config))
    assert second.returncode == 75, second.stderr
    assert f"{db}: another process owns this state file (`syncd run`, pid {first.pid} on " in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1, second.stderr
    status = syncd("status", "--config", str(config), "--json")
    owner = json.loads(status.stdout)["owner"]
    assert (owner["command"], owner["pid"]) == ("syncd run", first.pid)
    assert f"owner: syncd run, pid {first.pid}" in syncd("status", "--config", str(config)).stdout
    first.send_signal(signal.SIGTERM)
    assert first.wait(timeout=30) == 0, log.read_text()
    assert json.loads(syncd("status", "--config", str(config), "--json").stdout)["owner"] is None
    assert syncd("run", "--config", str(config), "--until-idle").returncode == 0


def test_position_set_refuses_while_the_daemon_runs_and_works_once_it_stopped(w: World, processes: Processes) -> None:
    """`syncd position --set` would be overwritten by the running daemon's next page: it refuses with exit 75 and
    says to stop syncd first, leaving the position alone; with the daemon stopped it moves the position."""
    config = w.config_file(streams=("leads",))
    db = w.tmp_path / "syncd.db"
    w.append("leads", person("lead", 1))
    log = w.tmp_path / "run.log"
    with log.open("wb") as out:
        daemon = processes.syncd("run", "--config", str(config), stdout=out)
    wait_until(lambda: peek(db, "SELECT at_top FROM positions") == [(1,)], timeout=30, what="the stream at the top")
    before = rows(db, "SELECT position FROM positions")
    refused = syncd("position", "--stream", "leads", "--set", "tail", "--config", str(config))
    assert refused.returncode == 75
    assert "`syncd position --set` needs syncd stopped" in refused.stderr
    assert f"syncd run`, pid {daemon.pid}" in refused.stderr and "systemctl stop syncd" in refused.stderr
    assert rows(db, "SELECT position FROM positions") == before
    daemon.send_signal(signal.SIGTERM)
    assert daemon.wait(timeout=30) == 0, log.read_text()
    moved = syncd("position", "--stream", "leads", "--set", "tail", "--config", str(config))
    assert moved.returncode == 0, moved.stderr
    assert rows(db, "SELECT position FROM positions") == [("tail",)]


def test_commands_that_only_use_the_store_need_none_of_the_daemons_secrets(w: World, tmp_path: Path) -> None:
    """With every secret a `credential:` (systemd's $CREDENTIALS_DIRECTORY), the daemon runs with the credentials,
    and then `status`, `dlq list`, `dlq show`, `dlq retry`, `position` and `replay` (with and without --json) work
    from a shell that has none; `check`, which calls the APIs, still says which credential it cannot read."""
    creds = tmp_path / "credentials"
    creds.mkdir(mode=0o700)
    for name, value in (("sell_token", SELL_TOKEN), ("sm_secret", SM_SECRET), ("op_key", OP_KEY)):
        (creds / name).write_text(value + "\n")
        (creds / name).chmod(0o600)
    text = (
        w.config_text()
        .replace(f'"{SELL_TOKEN}"', '"credential:sell_token"')
        .replace(f'"{SM_SECRET}"', '"credential:sm_secret"')
        .replace(f'"{OP_KEY}"', '"credential:op_key"')
    )
    config = tmp_path / "syncd.toml"
    config.write_text(text)
    w.append("leads", person("lead", 1))
    refused = {"status": 400, "body": "Invalid email address", "content_type": "text/plain", "times": 1}
    w.op.fault(path="/1/Contacts/saveorupdate", **refused)  # one dead letter to show
    shell = {k: v for k, v in os.environ.items() if k != "CREDENTIALS_DIRECTORY"}
    ran = syncd("run", "--config", str(config), "--until-idle", env={**shell, "CREDENTIALS_DIRECTORY": str(creds)})
    assert ran.returncode == 0, ran.stderr
    [(letter,)] = rows(tmp_path / "syncd.db", "SELECT id FROM dead_letters")
    for command in (
        ("status",),
        ("status", "--json"),
        ("dlq", "list"),
        ("dlq", "list", "--json"),
        ("dlq", "show", str(letter)),
        ("dlq", "retry", "--all"),
        ("position",),
        ("position", "--json"),
        ("replay", "--sink", "ontraport", "--record", "lead:1"),
    ):
        done = syncd(*command, "--config", str(config), env=shell)
        assert done.returncode == 0, (command, done.stderr)
        assert "CREDENTIALS_DIRECTORY" not in done.stderr
    check = syncd("check", "--config", str(config), env=shell)
    assert check.returncode == 78
    assert "sell.token: credential:sell_token needs $CREDENTIALS_DIRECTORY" in check.stderr
