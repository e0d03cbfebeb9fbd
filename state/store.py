"""The store: one SQLite file holding positions, events, the shadow, deliveries, links and dead letters.

`Store` gathers the parts: ingest (one transaction per page), the outbox (claims and outcomes, waits, one
transaction per batch), questions about records, repairs, requeues, status and reports, upkeep, mapping drift, jobs
(backfills, reconciliations) and the ingest of backfill pages. Both hot paths are set-based, so their cost barely
depends on the page or batch size. The store speaks only its own vocabulary (state.rows, state.outcomes, state.keys):
it never decodes a body and knows nothing of who routes what where.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from state.backfill import Backfills
from state.base import Clock
from state.db import open_database
from state.drift import Drift
from state.ingest import TEMP_TABLES, Ingesting
from state.jobs import Jobs
from state.outbox import Outbox
from state.records import Records
from state.repair import Repair
from state.requeue import Requeueing
from state.status import Reporting
from state.upkeep import Upkeep


class Store(Ingesting, Outbox, Records, Repair, Requeueing, Reporting, Upkeep, Drift, Jobs, Backfills):
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
        """Open the store; `sinks` are the enabled destinations, whose pending deliveries `pending()` counts."""
        conn = await open_database(path, readonly=readonly)
        store = cls(conn, Path(path), sinks, clock)
        if not readonly:
            await conn.execute("PRAGMA temp_store = MEMORY")
            for ddl in TEMP_TABLES:
                await conn.execute(ddl)
            # Claims do not survive a process: whatever was in flight when it died is due again.
            await conn.execute("UPDATE outbox SET claimed = 0 WHERE claimed = 1")
        return store
