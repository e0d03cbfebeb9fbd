"""Start-up, with real processes: every failure exits promptly with one line naming what to fix (78 for the
configuration or a state file an operator must repair, 75 for what may pass: a lock held too long, a full disk),
never hangs; stop signals are handled from the process's first moment, and SIGHUP is a graceful stop."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.world import World, person, world
from tests.support import Processes, wait_until

BUSY_TIMEOUT = 10.0  # the store's busy timeout


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def syncd(*args: str, **run: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], capture_output=True, text=True, timeout=60, check=False, **run
    )  # type: ignore[call-overload]


def one_line(text: str) -> str:
    """The whole of an error output, which must be a single line (no traceback)."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, text
    return lines[0]


def migrated(w: World, config: Path) -> Path:
    """A state file a first run created (and nothing pending in it)."""
    done = syncd("run", "--config", str(config), "--until-idle")
    assert done.returncode == 0, done.stderr
    return w.tmp_path / "syncd.db"


def opened(pid: int, file: Path) -> bool:
    """Whether process `pid` has `file` open."""
    try:
        return any(os.readlink(f"/proc/{pid}/fd/{fd}") == str(file) for fd in os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return False


def error_lines(log: Path) -> list[str]:
    return [line for line in log.read_text().splitlines() if not line.startswith("{")]


@pytest.mark.timeout(120)
def test_a_write_lock_held_past_the_busy_timeout_exits_75_instead_of_hanging(
    w: World, processes: Processes, tmp_path: Path
) -> None:
    """Another process holds the state file's write lock longer than the busy timeout while `syncd run` opens it:
    the run exits 75 with one line naming the file and the lock, right after the timeout. (Before, the SQLite
    worker thread kept the failed process alive for good: no READY, no health, no exit.)"""
    config = w.config_file()
    db = migrated(w, config)
    holder = sqlite3.connect(db, isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        log = tmp_path / "run.log"
        started = time.monotonic()
        with log.open("wb") as out:
            proc = processes.syncd("run", "--config", str(config), stdout=out)
        code = proc.wait(timeout=BUSY_TIMEOUT + 40)
    finally:
        holder.close()
    assert code == 75, log.read_text()
    assert time.monotonic() - started >= BUSY_TIMEOUT
    [line] = error_lines(log)
    assert line.startswith(f"syncd: state error: {db}: the database stayed locked by another process for 10 s")


@pytest.mark.timeout(60)
def test_a_sigterm_while_the_store_is_still_opening_is_a_graceful_stop(
    w: World, processes: Processes, tmp_path: Path
) -> None:
    """SIGTERM while `syncd run` is still starting (here waiting for another process's write lock on its state file)
    does not kill it (before: exit -15): once the store is open it stops gracefully, exit 0, delivering nothing."""
    config = w.config_file()
    db = migrated(w, config)
    w.append("leads", person("lead", 1))
    holder = sqlite3.connect(db, isolation_level=None)
    log = tmp_path / "run.log"
    try:
        holder.execute("BEGIN IMMEDIATE")
        with log.open("wb") as out:
            proc = processes.syncd("run", "--config", str(config), stdout=out)
        wait_until(lambda: opened(proc.pid, db), timeout=30, what="the daemon to be opening its store")
        proc.send_signal(signal.SIGTERM)
    finally:
        holder.close()
    assert proc.wait(timeout=30) == 0, log.read_text()
    text = log.read_text()
    assert '"signal": "SIGTERM", "action": "graceful stop", "during_start": true' in text
    assert w.sm.get("state")["contacts"] == 0


def test_sigterm_at_any_moment_of_start_up_never_kills_the_process(w: World, processes: Processes) -> None:
    """A SIGTERM sent at the first sign of life (the process catches SIGTERM, or has its state file open, whichever
    comes first), while the interpreter still imports syncd, is caught from that first moment and ends in a
    graceful stop (exit 0), never death by the signal (before: exit -15, the handler came only after the store was
    open)."""
    config = w.config_file()
    db = w.tmp_path / "syncd.db"
    for attempt in range(3):
        with (w.tmp_path / f"run-{attempt}.log").open("wb") as out:
            proc = processes.syncd("run", "--config", str(config), stdout=out)
        wait_until(
            lambda proc=proc: caught(proc.pid, signal.SIGTERM) or opened(proc.pid, db),
            timeout=30,
            interval=0.001,
            what="a sign of life",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, (w.tmp_path / f"run-{attempt}.log").read_text()


def caught(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler for `signum` (its SigCgt mask in /proc)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    mask = next(int(line.split()[1], 16) for line in status.splitlines() if line.startswith("SigCgt:"))
    return bool(mask & (1 << (signum - 1)))


def test_sighup_is_a_graceful_stop(w: World, processes: Processes, tmp_path: Path) -> None:
    """SIGHUP (a closed terminal, `kill -HUP`) stops the daemon gracefully like SIGTERM, exit 0, instead of killing
    it at once (exit -1); it does not reload the config."""
    config = w.config_file()
    w.append("leads", person("lead", 1))
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = processes.syncd("run", "--config", str(config), stdout=out)
    wait_until(lambda: '"daemon_ready"' in log.read_text(), timeout=30, what="the daemon to be ready")
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=30) == 0, log.read_text()
    text = log.read_text()
    assert '"signal": "SIGHUP", "action": "graceful stop"' in text
    assert '"event": "daemon_stopped"' in text


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_a_corrupt_or_truncated_state_file_exits_78_naming_it_and_what_to_do(
    w: World, processes: Processes, damage: str
) -> None:
    """A state file that is not a database (overwritten) or lost its tail (truncated) stops `syncd run` at once
    with exit 78 and one line naming the file and what to do, and `syncd status` says the same."""
    config = w.config_file()
    w.append("leads", *[person("lead", i) for i in range(1, 200)])
    db = migrated(w, config)
    if damage == "garbage":
        db.write_bytes(b"this is not a database " * 1000)
    else:
        with db.open("r+b") as file:
            file.truncate(db.stat().st_size // 3)
    for args in (("run",), ("status",)):
        done = syncd(*args, "--config", str(config))
        assert done.returncode == 78, done.stderr
        line = one_line(done.stderr)
        assert line.startswith(f"syncd: state error: {db} is not a usable SQLite database"), line
        assert "restore a backup" in line and "start over with an empty state file" in line


@pytest.mark.timeout(60)
def test_a_full_disk_at_start_exits_75(w: World, processes: Processes, tmp_path: Path) -> None:
    """With no room to create the state file (a file size limit stands in for a full disk), `syncd run` exits 75,
    a transient failure the unit restarts, with one line naming the file, instead of a traceback."""
    config = w.config_file()
    log = tmp_path / "run.log"
    with log.open("wb") as out:
        proc = processes.start(
            ["prlimit", "--fsize=40000", sys.executable, "-m", "syncd", "run", "--config", str(config)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        code = proc.wait(timeout=30)
    assert code == 75, log.read_text()
    [line] = error_lines(log)
    assert line.startswith(f"syncd: state error: {tmp_path / 'syncd.db'}: "), line


@pytest.mark.parametrize("where", ["under_a_file", "not_writable"])
def test_a_state_path_that_cannot_be_created_is_78_naming_the_key(w: World, tmp_path: Path, where: str) -> None:
    """`state.path` under a regular file, or in a directory syncd's user may not write, is a configuration error
    naming the config file and the key (exit 78; before: a traceback and exit 1)."""
    with tempfile.TemporaryDirectory() as scratch:
        base = Path(scratch)
        base.chmod(0o755)  # the unprivileged user must reach the config in it
        if where == "under_a_file":
            (base / "plain").write_text("")
            path = base / "plain" / "syncd.db"
            as_user: list[str] = []
        else:
            (base / "locked").mkdir(mode=0o755)
            path = base / "locked" / "syncd.db"
            as_user = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
        config = base / "syncd.toml"
        config.write_text(w.config_text().replace(str(tmp_path / "syncd.db"), str(path)))
        config.chmod(0o644)
        done = subprocess.run(
            [*as_user, sys.executable, "-m", "syncd", "run", "--config", str(config)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 78, done.stderr
        line = one_line(done.stderr)
        assert line.startswith(f"syncd: configuration error: {config}: state.path: {path}: "), line


def test_running_without_any_destination_warns(w: World) -> None:
    """A config with no [sinks.*] enabled runs (reading and storing), but says so with a warning."""
    config = w.config_file(sm="enabled = false", op="enabled = false")
    done = syncd("run", "--config", str(config), "--until-idle")
    assert done.returncode == 0, done.stderr
    assert '"event": "no_destinations", "level": "warning"' in done.stdout


@pytest.mark.parametrize(
    ("added", "key"),
    [
        ("sinks_enabled = true\n", "sinks_enabled"),  # a misspelt or made-up top-level key
        ('[sinks.salesforce]\nbase_url = "http://127.0.0.1:1"\n', "sinks.salesforce"),  # no such destination
    ],
)
def test_a_key_syncd_does_not_know_stops_the_run_with_78_naming_it(w: World, added: str, key: str) -> None:
    """An unknown top-level key or table (before: ignored silently) stops `syncd run` before it opens anything:
    exit 78, one line naming the config file and the key; the state file is never created."""
    config = w.config_file()
    config.write_text(config.read_text() + added if added.startswith("[") else added + config.read_text())
    done = syncd("run", "--config", str(config))
    assert done.returncode == 78, done.stderr
    line = one_line(done.stderr)
    assert line.startswith(f"syncd: configuration error: {config}"), line
    assert key in line, line
    assert not (w.tmp_path / "syncd.db").exists()
