"""Helpers shared by the tests: waiting on conditions with a deadline (never a bare sleep), and child processes
that never outlive their test."""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import IO, Any, TypeVar

import anyio
from starlette.types import ASGIApp, Receive, Scope, Send

T = TypeVar("T")


def wait_until(condition: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.01, what: str = "") -> T:
    """Poll `condition` until it returns something truthy; fail with `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or condition!r}")
        time.sleep(interval)


async def await_until(
    condition: Callable[[], Awaitable[T]], *, deadline: float = 10.0, interval: float = 0.01, what: str = ""
) -> T:
    """The async twin of `wait_until`: poll `condition` until truthy, failing after `deadline` seconds."""
    end = time.monotonic() + deadline
    while True:
        value = await condition()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {deadline}s waiting for {what or condition!r}")
        await anyio.sleep(interval)


def free_port() -> int:
    """A TCP port nothing listens on right now (for a config that must name its ports before they are served)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# Run through util-linux's setpriv, which execs the command (same pid) with the kernel set to SIGKILL it if the test
# process dies first, even by SIGKILL, when no fixture gets to clean up. (A preexec_fn would run Python in a child
# forked from a process with threads: the sandbox servers.)
_DIE_WITH_PARENT = ["setpriv", "--pdeathsig", "KILL", "--"] if shutil.which("setpriv") else []


class Processes:
    """Every process a test starts: each in its own process group (a new session), and the whole group SIGKILLed
    and reaped when the test ends, however it ends (a failed assertion, a timeout), so no `syncd run` outlives its
    test and no unreaped child warns in the next one. Also killed by the kernel if the test run itself dies."""

    def __init__(self) -> None:
        self.started: list[subprocess.Popen[Any]] = []

    def start(self, args: list[str], **popen: Any) -> subprocess.Popen[Any]:
        """`subprocess.Popen(args, **popen)` in a process group of its own."""
        proc: subprocess.Popen[Any] = subprocess.Popen([*_DIE_WITH_PARENT, *args], start_new_session=True, **popen)
        self.started.append(proc)
        return proc

    def syncd(self, *args: str, stdout: IO[bytes] | int = subprocess.DEVNULL, **popen: Any) -> subprocess.Popen[bytes]:
        """`python -m syncd ARGS` (stderr joins stdout unless `stderr` is given)."""
        popen.setdefault("stderr", subprocess.STDOUT)
        return self.start([sys.executable, "-m", "syncd", *args], stdout=stdout, **popen)

    def kill_all(self) -> None:
        for proc in self.started:
            if proc.poll() is None:  # once reaped, its pid (and group id) may belong to someone else
                try:
                    os.killpg(proc.pid, signal.SIGKILL)  # the group: anything the process started goes with it
                except ProcessLookupError:  # pragma: no cover - it exited just now
                    pass
                except PermissionError:  # pragma: no cover - a member changed its credentials
                    proc.kill()
            proc.wait()
            for stream in (proc.stdin, proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()
        self.started.clear()


def sandboxes_ready(log: Path, count: int = 1) -> dict[str, str] | None:
    """The URLs a `syncd sandbox` process announced in `log`, once `count` of them listen (None before)."""
    lines = [json.loads(x) for x in log.read_text().splitlines() if '"sandbox_ready"' in x]
    return {line["api"]: line["url"] for line in lines} if len(lines) >= count else None


def load_yaml(path: Path) -> list[Any]:
    """Every document of a YAML file (pyyaml ships no type stubs, hence the import by name)."""
    yaml = importlib.import_module("yaml")
    return list(yaml.safe_load_all(path.read_text()))


def seconds(text: str) -> float:
    """A systemd or compose duration ("45s", "2min", "1m30s", "45") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600}
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]*)", text.strip())
    assert parts, f"not a duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


class FakeClock:
    """Epoch seconds that move only when a test moves them (a store, a writer and a simulator can share one)."""

    def __init__(self, now: float = 1_795_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class AppSwitch:
    """An ASGI app that forwards to whatever simulator the current test plugged in, so one loopback server can
    serve a whole test module (real HTTP, without a server start and stop per test)."""

    def __init__(self) -> None:
        self.app: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.app is not None, "no simulator is plugged in"
        await self.app(scope, receive, send)
