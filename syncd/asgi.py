"""Serving an ASGI app on a loopback (or configured) address with uvicorn, as a task of the running event loop.

The daemon serves its health and metrics app this way; the simulators (syncd.sandbox) use the same functions.
"""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Awaitable, Callable, Generator

import anyio
import uvicorn
from starlette.types import ASGIApp

LOOPBACK = "127.0.0.1"


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


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket (raises OSError when the address is taken, instead of uvicorn's sys.exit).

    TCP_NODELAY is set on it, and accepted connections inherit it: without it a reply written in two segments waits
    for the peer's delayed ACK (tens of milliseconds) on a kept-alive connection."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
