"""Helpers shared by the tests: waiting on conditions with a deadline (never a bare sleep)."""

from __future__ import annotations

import importlib
import json
import re
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


def syncd_process(*args: str, stdout: IO[bytes] | int = subprocess.DEVNULL) -> subprocess.Popen[bytes]:
    """`python -m syncd ARGS` as a real child process (stderr joins stdout)."""
    return subprocess.Popen([sys.executable, "-m", "syncd", *args], stdout=stdout, stderr=subprocess.STDOUT)


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
