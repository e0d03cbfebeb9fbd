"""The state database's files deleted or replaced, with real processes: under a running daemon (the -wal, the
database itself, the lock file, the database swapped for another) and between runs (after a SIGKILL). Each is
detected and said, and whatever can be repaired is, without losing what the daemon holds."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.world import World, person, world
from tests.support import Processes, wait_until


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def syncd(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], capture_output=True, text=True, timeout=60, check=False
    )


def peek(db: Path, sql: str) -> list[tuple[Any, ...]] | None:
    """The rows, or None while the file cannot be read (missing, or failing as the test means it to)."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute(sql).fetchall()
    except sqlite3.Error:
        return None


def done(db: Path) -> int:
    rows = peek(db, "SELECT COUNT(*) FROM deliveries WHERE status = 'done'")
    return int(rows[0][0]) if rows else -1


def status(config: Path) -> dict[str, Any] | None:
    """`syncd status --json`, or None while it fails."""
    ran = syncd("status", "--config", str(config), "--json")
    return json.loads(ran.stdout) if ran.returncode == 0 else None


def logged(log: Path, event: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines() if f'"event": "{event}"' in line]


def running(w: World, processes: Processes, config: Path, leads: range) -> tuple[subprocess.Popen[bytes], Path]:
    """A daemon that has delivered `leads` to both destinations."""
    w.append("leads", *[person("lead", i) for i in leads])
    log = w.tmp_path / "run.log"
    with log.open("wb") as out:
        proc = processes.syncd("run", "--config", str(config), stdout=out)
    db = w.tmp_path / "syncd.db"
    wait_until(lambda: done(db) == 2 * len(leads), timeout=30, what="the first deliveries")
    return proc, log


def test_a_wal_deleted_under_the_running_daemon_is_saved_and_reopened(w: World, processes: Processes) -> None:
    """`rm syncd.db-wal` while the daemon runs made every reader fail with "disk I/O error" until the daemon
    stopped: now the daemon notices within seconds, says so (state_wal_deleted), checkpoints what the deleted log
    held into the database and reopens it; status works again, later changes are delivered, and a restart finds
    everything."""
    config = w.config_file()
    db = w.tmp_path / "syncd.db"
    proc, log = running(w, processes, config, range(1, 6))
    Path(f"{db}-wal").unlink()
    wait_until(lambda: logged(log, "state_wal_deleted"), timeout=30, what="the daemon to notice")
    [event] = logged(log, "state_wal_deleted")
    assert event["level"] == "error" and "nothing was lost" in event["problem"]
    now = wait_until(lambda: status(config), timeout=30, what="status to read the store again")
    assert now["events"] == 5
    w.append("leads", *[person("lead", i) for i in range(6, 9)])
    wait_until(lambda: done(db) == 16, timeout=30, what="later changes to be delivered")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, log.read_text()
    assert syncd("run", "--config", str(config), "--until-idle").returncode == 0
    assert peek(db, "SELECT COUNT(*) FROM events") == [(8,)]
    assert done(db) == 16
    assert w.sm.get("state")["contacts"] == 8


def test_a_database_deleted_under_the_running_daemon_is_written_back(w: World, processes: Processes) -> None:
    """`rm syncd.db` while the daemon runs left all state in a file that vanished when it stopped: now the daemon
    writes the database back from what it holds (state_file_deleted) and goes on with it; nothing is lost or sent
    twice."""
    config = w.config_file()
    db = w.tmp_path / "syncd.db"
    proc, log = running(w, processes, config, range(1, 6))
    db.unlink()
    wait_until(lambda: logged(log, "state_file_deleted"), timeout=30, what="the daemon to notice")
    now = wait_until(lambda: status(config), timeout=30, what="status to read the store again")
    assert now["events"] == 5 and now["sinks"]["salesmanago"]["done"] == 5
    assert db.stat().st_mode & 0o077 == 0
    w.append("leads", *[person("lead", i) for i in range(6, 9)])
    wait_until(lambda: done(db) == 16, timeout=30, what="later changes to be delivered")
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, log.read_text()
    writes = sum(w.op.get("state")["writes"].values())
    assert syncd("run", "--config", str(config), "--until-idle").returncode == 0
    assert peek(db, "SELECT COUNT(*) FROM events") == [(8,)]
    assert sum(w.op.get("state")["writes"].values()) == writes == 8


def test_a_database_replaced_under_the_running_daemon_is_kept_aside_and_the_daemon_stops(
    w: World, processes: Processes
) -> None:
    """Another file put in the database's place while the daemon runs (a restore, say): the daemon copies the
    file it had open aside, writes nothing into the new one, and stops with 75 so that a restart opens it."""
    config = w.config_file()
    db = w.tmp_path / "syncd.db"
    proc, log = running(w, processes, config, range(1, 4))
    other = w.tmp_path / "other.db"
    sqlite3.connect(other).close()
    other.replace(db)
    assert proc.wait(timeout=30) == 75, log.read_text()
    [event] = logged(log, "state_file_replaced")
    aside = Path(event["problem"].split(" is saved as ")[1].split(",")[0])
    assert peek(aside, "SELECT COUNT(*) FROM events") == [(3,)]
    assert db.stat().st_size == 0  # the new file was left as it was put there


def test_a_lock_file_deleted_under_the_running_daemon_is_taken_again(w: World, processes: Processes) -> None:
    """`rm syncd.db.lock` while the daemon runs would let a second daemon start on the same file: the daemon locks
    a new one (state_lock_replaced), and a second `syncd run` still refuses with 75."""
    config = w.config_file()
    db = w.tmp_path / "syncd.db"
    proc, log = running(w, processes, config, range(1, 3))
    lock = Path(f"{db}.lock")
    lock.unlink()
    wait_until(lambda: logged(log, "state_lock_replaced") and lock.exists(), timeout=30, what="a new lock")
    second = syncd("run", "--config", str(config))
    assert second.returncode == 75, second.stderr
    assert f"pid {proc.pid}" in second.stderr
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0, log.read_text()


def killed(w: World, processes: Processes, config: Path) -> None:
    """A daemon SIGKILLed after delivering, its -wal and -shm left behind."""
    proc, _ = running(w, processes, config, range(1, 4))
    proc.send_signal(signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL


def test_a_database_deleted_between_runs_without_its_wal_is_refused_with_what_to_do(
    w: World, processes: Processes
) -> None:
    """The database deleted after a crash but its -wal and -shm left: `syncd run` and `syncd status` exit 78
    saying so (before: a new empty store was started beside the old log, every stream read again from the
    start); once the leftovers are removed too, a fresh store starts."""
    config = w.config_file()
    db = w.tmp_path / "syncd.db"
    killed(w, processes, config)
    db.unlink()
    for command in ("run", "status"):
        ran = syncd(command, "--config", str(config))
        assert ran.returncode == 78, ran.stderr
        assert f"{db} is missing but syncd.db-wal and syncd.db-shm beside it remain" in ran.stderr
        assert len(ran.stderr.strip().splitlines()) == 1
    assert not db.exists()
    for suffix in ("-wal", "-shm"):
        Path(f"{db}{suffix}").unlink()
    assert syncd("run", "--config", str(config), "--until-idle").returncode == 0


def test_a_wal_deleted_between_runs_is_reported_at_the_next_start(w: World, processes: Processes) -> None:
    """The -wal deleted after a crash (its -shm left): every start and every reader failed with "disk I/O error"
    until the -shm was removed; now the next start removes the stale index and says that the changes in the log
    are lost (state_wal_missing) before going on from what the file holds."""
    config = w.config_file()
    db = w.tmp_path / "syncd.db"
    killed(w, processes, config)
    Path(f"{db}-wal").unlink()
    ran = syncd("run", "--config", str(config), "--until-idle")
    assert ran.returncode == 0, ran.stderr
    [event] = [json.loads(x) for x in ran.stdout.splitlines() if '"event": "state_wal_missing"' in x]
    assert event["level"] == "error" and "the changes it held are lost" in event["problem"]
    assert status(config) is not None  # and the stale index no longer fails every reader


@pytest.mark.timeout(180)
def test_a_disk_that_fills_while_running_exits_75_and_the_restart_loses_nothing(w: World, processes: Processes) -> None:
    """The state file's disk filling up under a running daemon (a file size limit stands in for it, below what
    900 changes need): `syncd run` exits 75 with one line naming the file and saying to check the disk, instead of
    a traceback or a hang, the failed write rolled back; once there is room the next run delivers every lead in its
    latest version, with nothing dead-lettered or quarantined."""
    config = w.config_file()
    leads = range(1, 301)
    w.append("leads", *[person("lead", i) for i in leads])
    for version in (2, 3):
        w.append("leads", *[person("lead", i, version, "updated", title=f"v{version}") for i in leads])
    log = w.tmp_path / "full.log"
    with log.open("wb") as out:
        proc = processes.start(
            ["prlimit", "--fsize=700000", sys.executable, "-m", "syncd", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        code = proc.wait(timeout=60)
    text = log.read_text()
    assert code == 75, text[-3000:]
    [line] = [x for x in text.splitlines() if not x.startswith("{")]
    db = w.tmp_path / "syncd.db"
    assert line.startswith(f"syncd: state error: {db}: ") and "check the disk" in line, line
    assert any(e["event"] == "page_ingested" for e in logged(log, "page_ingested"))  # it failed mid-way
    again = syncd("run", "--config", str(config), "--until-idle")
    assert again.returncode == 0, again.stderr[-3000:]
    assert peek(db, "SELECT COUNT(*) FROM dead_letters") == [(0,)]
    assert peek(db, "SELECT COUNT(*) FROM quarantine") == [(0,)]
    contacts = w.op_by_email()
    assert len(contacts) == len(leads) and all(c.get("title") == "v3" for c in contacts.values())
    assert w.sm.get("state")["contacts"] == len(leads)
