"""Clock steps: the store's times are the wall clock's, so a step back leaves them in the future.

After the wall clock stepped back by `step` seconds, a retry due "in 30 s" is due in a day and 30 s, a destination
paused "for a minute" is paused for a day, and a delete that waits for the streams to catch up after it was stored
waits a day. `shift_back` moves every such time that lies ahead of now back by the step (never before now): due
times and ends keep what was left of their wait, and the times things were written are brought back into the
past. It runs when the daemon sees the step (its monotonic clock and the wall clock disagree) and, for a step while
it was not running, at start-up, where `ahead` tells how far the newest written time lies in the future.
Only times written from syncd's own clock are moved (never Sell's times, such as a record's version time).
"""

from __future__ import annotations

from state.base import StoreBase, scalar

# The columns the store fills from syncd's clock, by table: when something is due or ends, and when it was written.
CLOCKED: dict[str, tuple[str, ...]] = {
    "outbox": ("due_at", "verify_at", "claimed_at"),
    "events": ("ingested_at",),
    "positions": ("updated_at",),
    "deliveries": ("created_at", "updated_at"),
    "records": ("updated_at",),
    "links": ("updated_at",),
    "waits": ("since",),
    "sink_state": ("paused_until", "updated_at"),
    "throttles": ("until", "updated_at"),
    "dead_letters": ("created_at",),
    "quarantine": ("created_at",),
}
# Columns that are never in the future unless the clock stepped back (indexed or small: cheap to look at).
_WRITTEN = ("SELECT MAX(ingested_at) FROM events", "SELECT MAX(updated_at) FROM positions")


class ClockRepair(StoreBase):
    async def ahead(self) -> float:
        """How far (seconds) the newest time the store wrote lies ahead of now: 0 unless the clock stepped back."""
        now = self._clock()
        newest = 0.0
        async with self.reading() as db:
            for sql in _WRITTEN:
                value = await scalar(db, sql)
                if value is not None:
                    newest = max(newest, float(value))
        return max(0.0, newest - now)

    async def shift_back(self, step: float) -> int:
        """The wall clock stepped back by `step` seconds: every stored time ahead of now moves back by `step`, to
        now at the earliest. One transaction; returns how many values moved."""
        now = self._clock()
        moved = 0
        async with self.transaction() as db:
            for table, columns in CLOCKED.items():
                for column in columns:
                    cur = await db.execute(
                        f"UPDATE {table} SET {column} = MAX(:now, {column} - :step) WHERE {column} > :now",
                        {"now": now, "step": step},
                    )
                    moved += max(0, cur.rowcount)
        return moved
