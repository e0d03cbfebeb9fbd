"""Cheaper bookkeeping in httpx's connection pool, without changing what goes on the wire.

httpcore asks every idle connection of a pool whether its socket is readable (`has_expired`) each time a request
is assigned a connection and each time a response is closed. Each ask looks the raw socket up through anyio's typed
attributes, which build a dict of every attribute and call `getpeername()` first: about 7 µs a connection, so 50-60
µs of CPU per call with four connections. `cache_socket_lookups(client)` wraps the network backend of the client's
pools so each stream looks its raw socket up once and answers `is_readable` with the same poll httpcore uses.
Everything else (connecting, TLS, reads, writes, timeouts, errors) goes to the backend httpcore chose.
"""

# ruff: noqa: ASYNC109  (the signatures are httpcore's network interface, timeouts included)

from __future__ import annotations

import select
import socket
import ssl
import typing
from collections.abc import Iterable

import httpcore
import httpx

_UNKNOWN = object()


class _Stream(httpcore.AsyncNetworkStream):
    """A network stream whose raw socket is looked up once."""

    def __init__(self, inner: httpcore.AsyncNetworkStream) -> None:
        self._inner = inner
        self._socket: typing.Any = _UNKNOWN

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._inner.read(max_bytes, timeout)

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._inner.write(buffer, timeout)

    async def aclose(self) -> None:
        await self._inner.aclose()

    async def start_tls(
        self, ssl_context: ssl.SSLContext, server_hostname: str | None = None, timeout: float | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        if info == "is_readable":
            return readable(self._raw_socket())
        if info == "socket":
            return self._raw_socket()
        return self._inner.get_extra_info(info)

    def _raw_socket(self) -> socket.socket | None:
        if self._socket is _UNKNOWN:
            self._socket = self._inner.get_extra_info("socket")
        return typing.cast(socket.socket | None, self._socket)


class _Backend(httpcore.AsyncNetworkBackend):
    """The pool's own backend, its streams wrapped in `_Stream`."""

    def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
        self._inner = inner

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[typing.Any] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_tcp(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[typing.Any] | None = None
    ) -> httpcore.AsyncNetworkStream:
        return _Stream(await self._inner.connect_unix_socket(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


def readable(sock: socket.socket | None) -> bool:
    """httpcore's test (`httpcore._utils.is_socket_readable`): a socket gone, or with data (or EOF) waiting."""
    fd = None if sock is None else sock.fileno()
    if fd is None or fd < 0:
        return True
    poll = select.poll()
    poll.register(fd, select.POLLIN)
    return bool(poll.poll(0))


def cache_socket_lookups(client: httpx.AsyncClient) -> None:
    """Wrap the network backend of every connection pool of `client` (its transport and any proxy mounts). A
    transport of another shape is left as it is."""
    transports = [getattr(client, "_transport", None), *getattr(client, "_mounts", {}).values()]
    for transport in transports:
        pool = getattr(transport, "_pool", None)
        inner = getattr(pool, "_network_backend", None)
        if isinstance(inner, httpcore.AsyncNetworkBackend) and not isinstance(inner, _Backend):
            pool._network_backend = _Backend(inner)  # type: ignore[union-attr]
