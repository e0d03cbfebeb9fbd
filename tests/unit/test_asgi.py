"""Serving ASGI apps: every socket syncd listens on (simulators, health server) has TCP_NODELAY."""

from __future__ import annotations

import socket

import anyio
import uvicorn
from starlette.applications import Starlette

from syncd.asgi import make_server, serve_started
from syncd.sandbox.server import ServerThread


def _listening_nodelay(server: uvicorn.Server) -> list[int]:
    return [sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) for srv in server.servers for sock in srv.sockets]


def test_a_simulator_thread_listens_with_tcp_nodelay() -> None:
    """A simulator served from a background thread listens with TCP_NODELAY (accepted connections inherit it)."""
    with ServerThread(Starlette()) as thread:
        flags = _listening_nodelay(thread.server)
    assert flags and all(flags)


async def test_the_health_server_path_listens_with_tcp_nodelay() -> None:
    """An app served as a task (the daemon's health server, the demo's simulators) listens with TCP_NODELAY."""
    server = make_server(Starlette(), 0)
    seen: list[int] = []

    async def started(port: int) -> None:
        seen.extend(_listening_nodelay(server))
        tg.cancel_scope.cancel()

    async with anyio.create_task_group() as tg:
        tg.start_soon(serve_started, server, started)
    assert seen and all(seen)
