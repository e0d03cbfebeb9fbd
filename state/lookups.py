"""Read-only look-ups writers make (the `Lookups` protocol of syncd.sinks.base): the shadow, live peers of a
person, whether the streams have caught up, and Sell's custom field names."""

from __future__ import annotations

from collections.abc import Iterable

from state.base import StoreBase, scalar
from syncd.events import CustomField, decode_record
from syncd.work import Shadow


class Lookups(StoreBase):
    """Questions about Sell records and streams."""

    async def shadow(self, kind: str, record_id: int) -> Shadow | None:
        async with (
            self.reading() as db,
            db.execute(
                "SELECT kind, record_id, sequence, deleted, body FROM records WHERE kind = ? AND record_id = ?",
                (kind, record_id),
            ) as cur,
        ):
            row = await cur.fetchone()
        if row is None:
            return None
        return Shadow(row[0], row[1], row[2], bool(row[3]), decode_record(row[4]))

    async def custom_field_names(self) -> frozenset[str] | None:
        """Names of the Sell custom fields defined now (None when no definition has been read yet)."""
        async with (
            self.reading() as db,
            db.execute("SELECT deleted, body FROM records WHERE kind = 'custom_field'") as cur,
        ):
            rows = await cur.fetchall()
        if not rows:
            return None
        names = set()
        for deleted, body in rows:
            record = decode_record(body)
            if not deleted and isinstance(record, CustomField) and record.name:
                names.add(record.name)
        return frozenset(names)

    async def live_peers(self, sink: str, kind: str, record_id: int, *, email: str, remote_id: str | None) -> list[str]:
        """Other live Sell people that map to the same destination contact, as keys: those `sink` links to the
        same remote id, and those with the same e-mail that `sink` has not linked to a DIFFERENT remote contact
        (unwritten ones would merge into it by e-mail). What the deletion guard checks before deleting anything."""
        found: set[str] = set()
        async with self.reading() as db:
            # `email <> ''` lets SQLite use the partial index on records(email).
            if email:
                async with db.execute(
                    "SELECT r.kind, r.record_id FROM records r LEFT JOIN links l"
                    " ON l.sink = ? AND l.kind = r.kind AND l.record_id = r.record_id"
                    " WHERE r.email = ? AND r.email <> '' AND r.deleted = 0 AND r.kind IN ('lead', 'contact')"
                    " AND NOT (r.kind = ? AND r.record_id = ?)"
                    " AND (? IS NULL OR l.remote_id IS NULL OR l.remote_id = ?)",
                    (sink, email, kind, record_id, remote_id, remote_id),
                ) as cur:
                    found.update([f"{k}:{i}" async for k, i in cur])
            if remote_id:
                async with db.execute(
                    "SELECT l.kind, l.record_id FROM links l JOIN records r"
                    " ON r.kind = l.kind AND r.record_id = l.record_id"
                    " WHERE l.sink = ? AND l.remote_id = ? AND r.deleted = 0"
                    " AND NOT (l.kind = ? AND l.record_id = ?)",
                    (sink, remote_id, kind, record_id),
                ) as cur:
                    found.update([f"{k}:{i}" async for k, i in cur])
        return sorted(found)

    async def streams_caught_up_since(self, streams: Iterable[str], since: float) -> bool:
        """Whether every named stream reached the top of its Firehose at or after `since`."""
        wanted = list(streams)
        if not wanted:
            return True
        marks = ",".join("?" * len(wanted))
        async with self.reading() as db:
            n = await scalar(
                db,
                f"SELECT COUNT(*) FROM positions WHERE stream IN ({marks}) AND at_top = 1 AND updated_at >= ?",
                (*wanted, since),
            )
        return int(n) == len(wanted)
