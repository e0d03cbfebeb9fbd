"""Serving a simulator app from a background thread (tests, benchmarks); as a task, syncd.asgi serves it."""

from __future__ import annotations

import logging
import threading
from typing import Any

import anyio
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp

from syncd.asgi import LOOPBACK, bind, make_server
from syncd.sandbox.faults import DroppedConnection


class _QuietDrops(logging.Filter):
    """Injected dropped connections, and handlers finding their client gone, are the point, not errors worth a
    traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not isinstance(exc, DroppedConnection | ClientDisconnect)


logging.getLogger("uvicorn.error").addFilter(_QuietDrops())


class ServerThread:
    """One ASGI app served on loopback from a background thread, for tests and benchmarks."""

    def __init__(self, app: ASGIApp, port: int = 0, host: str = LOOPBACK) -> None:
        self.app = app
        self.server = make_server(app, port, host)
        self.host = host
        self._socket = bind(host, port)  # TCP_NODELAY, like every socket syncd listens on
        self.port = int(self._socket.getsockname()[1])
        self._thread = threading.Thread(target=self._run, name=f"sandbox-{type(app).__name__}", daemon=True)
        self._error: BaseException | None = None

    def _run(self) -> None:
        try:
            anyio.run(self._serve)
        except BaseException as exc:  # pragma: no cover - reported by start()
            self._error = exc

    async def _serve(self) -> None:
        try:
            await self.server.serve(sockets=[self._socket])
        finally:
            self._socket.close()

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
