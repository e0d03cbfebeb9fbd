"""Serving simulator apps on loopback with uvicorn: in a background thread (tests), or as tasks (demo, CLI)."""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Awaitable, Callable, Generator
from typing import Any

import anyio
import uvicorn
from starlette.types import ASGIApp

from syncd.sandbox.faults import DroppedConnection

LOOPBACK = "127.0.0.1"


class _QuietDrops(logging.Filter):
    """Injected dropped connections are the point, not an error worth a traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection)


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class QuietServer(uvicorn.Server):
    """A uvicorn server that leaves signals alone: syncd runs several servers and handles signals itself."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def make_server(app: ASGIApp, port: int = 0, host: str = LOOPBACK) -> uvicorn.Server:
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_keep_alive=30,
    )
    return QuietServer(config)


def bound_port(server: uvicorn.Server) -> int:
    """The port a started server listens on (useful with port 0)."""
    for s in server.servers:
        for sock in s.sockets:
            return int(sock.getsockname()[1])
    raise RuntimeError("the server is not listening")


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (raises OSError when the address is taken, instead of uvicorn's sys.exit)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.set_inheritable(True)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_started(server: uvicorn.Server, started: Callable[[int], Awaitable[None] | None] | None = None) -> None:
    """Serve until cancelled; call `started(port)` once listening. On cancellation the server is asked to exit and
    given the moment it needs to close its sockets and connections cleanly."""
    sock = bind(server.config.host, server.config.port)
    port = int(sock.getsockname()[1])

    async def run() -> None:
        with anyio.CancelScope(shield=True):
            try:
                await server.serve(sockets=[sock])
            finally:
                sock.close()

    async with anyio.create_task_group() as tg:
        tg.start_soon(run)
        try:
            while not server.started:
                if server.should_exit:
                    return
                await anyio.sleep(0.005)
            if started is not None:
                result = started(port)
                if result is not None:
                    await result
            await anyio.sleep_forever()
        finally:
            server.should_exit = True


class ServerThread:
    """One ASGI app served on loopback from a background thread, for tests and benchmarks."""

    def __init__(self, app: ASGIApp, port: int = 0, host: str = LOOPBACK) -> None:
        self.app = app
        self.server = make_server(app, port, host)
        self.host = host
        self.port = 0
        self._thread = threading.Thread(target=self._run, name=f"sandbox-{type(app).__name__}", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            anyio.run(self.server.serve)
        except BaseException as exc:  # pragma: no cover - reported by start()
            self._error = exc

    def start(self, timeout: float = 10.0) -> ServerThread:
        self._thread.start()
        deadline = threading.Event()
        waited = 0.0
        while not self.server.started:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the sandbox server did not start: {self._error!r}")
            if waited > timeout:
                raise TimeoutError("the sandbox server did not start in time")
            deadline.wait(0.005)
            waited += 0.005
        self.port = bound_port(self.server)
        return self

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def stop(self) -> None:
        """Stop at once: a test server does not wait for answers it is holding back (injected latency)."""
        self.server.should_exit = True
        self.server.force_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()
