"""The store: one SQLite file holding positions, events, the shadow, deliveries, links and dead letters.

`Store` gathers the parts: ingest (one transaction per Firehose page), the outbox (claims and outcomes, one
transaction per batch), look-ups for writers, status, and upkeep. Both hot paths are set-based, so their cost barely
depends on the page or batch size.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from state.base import Clock
from state.db import open_database
from state.ingest import TEMP_TABLES, Ingesting, IngestResult, Quarantined, StreamPosition
from state.lookups import Lookups
from state.outbox import Outbox
from state.repair import DeadLetter, Repair, Replayed
from state.status import SinkStatus, StatusSnapshot, read_status
from state.upkeep import Upkeep

__all__ = [
    "DeadLetter",
    "IngestResult",
    "Quarantined",
    "Replayed",
    "SinkStatus",
    "StatusSnapshot",
    "Store",
    "StreamPosition",
    "read_status",
]


class Store(Ingesting, Outbox, Lookups, Repair, Upkeep):
    """The durable state of one syncd instance."""

    @classmethod
    async def open(
        cls,
        path: str | Path,
        *,
        sinks: Sequence[str] = (),
        clock: Clock = time.time,
        readonly: bool = False,
    ) -> Store:
        """Open the store; `sinks` are the enabled destinations that `ingest` queues deliveries for."""
        conn = await open_database(path, readonly=readonly)
        store = cls(conn, Path(path), sinks, clock)
        if not readonly:
            await conn.execute("PRAGMA temp_store = MEMORY")
            for ddl in TEMP_TABLES:
                await conn.execute(ddl)
            # Claims do not survive a process: whatever was in flight when it died is due again.
            await conn.execute("UPDATE outbox SET claimed = 0 WHERE claimed = 1")
        return store

    async def status(self) -> StatusSnapshot:
        async with self.reading() as db:
            return await read_status(db)
