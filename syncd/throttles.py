"""Throttle pauses, published: every pause a limiter starts or extends (a 429, an exhausted window, Sell's 409) is
written to the store with its end, so `syncd status` in another process shows it; health and metrics read the
limiters themselves."""

from __future__ import annotations

from typing import Protocol

import anyio

from syncd.ratelimit import Limiter


class ThrottleStore(Protocol):
    async def set_throttle(self, api: str, until: float) -> None:
        """Record that calls to `api` wait until `until` (epoch seconds)."""
        ...


class ThrottlePublisher:
    """Writes the limiters' pauses to the store as they start (the latest end per API, coalesced)."""

    def __init__(self, store: ThrottleStore, limiters: list[Limiter]) -> None:
        self._store = store
        self._due: dict[str, float] = {}
        self._changed = anyio.Event()
        for limiter in limiters:
            limiter.on_pause = self._paused

    def _paused(self, limiter: Limiter) -> None:
        until = limiter.paused_until_wall()
        if until is not None:
            self._due[limiter.name] = until
            self._changed.set()

    async def run(self) -> None:
        """Publish pauses until cancelled."""
        while True:
            await self._changed.wait()
            self._changed = anyio.Event()
            due, self._due = self._due, {}
            for api, until in due.items():
                await self._store.set_throttle(api, until)
