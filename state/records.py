"""Questions about the stored records (the shadow): one record, every record of a kind, the records that belong to
another (by their reference), the live records that share a destination contact with another, those that share an
e-mail, and a record every destination links; and filling in the references of records stored before references
were kept."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping, Sequence
from typing import Any

from state.base import StoreBase
from state.keys import ids_by_kind, record_key
from state.rows import Link, LinkedRecord, RecordRow

RECORD_COLUMNS = "SELECT kind, record_id, sequence, deleted, body, origin, version_at FROM records"


def record_row(row: Any) -> RecordRow:
    """A `RECORD_COLUMNS` row as a RecordRow."""
    version_at = row[6]
    return RecordRow(row[0], row[1], row[2], bool(row[3]), row[4], row[5], float(version_at) if version_at else None)


class Records(StoreBase):
    """Read-only questions about the shadow records."""

    async def shared_emails(self, kinds: Sequence[str]) -> list[tuple[str, RecordRow]]:
        """Every live record of `kinds` whose e-mail another live record of `kinds` has too, with that e-mail, by
        e-mail (`syncd status` shows who owns each shared destination contact)."""
        if not kinds:
            return []
        marks = ",".join("?" * len(kinds))
        live = f"deleted = 0 AND email <> '' AND kind IN ({marks})"
        async with (
            self.reading() as db,
            db.execute(
                f"SELECT email, kind, record_id, sequence, deleted, body FROM records WHERE {live} AND email IN"
                f" (SELECT email FROM records WHERE {live} GROUP BY email HAVING COUNT(*) > 1)"
                " ORDER BY email, kind, record_id",
                (*kinds, *kinds),
            ) as cur,
        ):
            return [(str(e), RecordRow(k, i, s, bool(d), b)) async for e, k, i, s, d, b in cur]

    async def record(self, kind: str, record_id: int) -> RecordRow | None:
        """The shadow of one record (None when it was never seen)."""
        sql = f"{RECORD_COLUMNS} WHERE kind = ? AND record_id = ?"
        row = await self.peek(lambda db: db.execute(sql, (kind, record_id)).fetchone())
        return record_row(row) if row else None

    async def records_of_kind(self, kind: str) -> list[RecordRow]:
        """Every stored record of `kind`, deleted ones included, by id."""
        async with (
            self.reading() as db,
            db.execute(f"{RECORD_COLUMNS} WHERE kind = ? ORDER BY record_id", (kind,)) as cur,
        ):
            return [record_row(row) async for row in cur]

    async def link(self, sink: str, kind: str, record_id: int) -> Link | None:
        """What `sink` holds of one record (None when it holds nothing)."""
        async with (
            self.reading() as db,
            db.execute(
                "SELECT remote_id, digest, sent FROM links WHERE sink = ? AND kind = ? AND record_id = ?",
                (sink, kind, record_id),
            ) as cur,
        ):
            row = await cur.fetchone()
        return Link(row[0], row[1], json.loads(row[2]) if row[2] else None) if row else None

    async def referring(self, kind: str, refs: Sequence[str]) -> list[RecordRow]:
        """The records of `kind` that belong to one of `refs` (keys such as "deal:77"), deleted ones included, by
        id: through the reference index, never a scan of the kind."""
        if not refs:
            return []
        marks = ",".join("?" * len(refs))
        async with (
            self.reading() as db,
            # `ref <> ''` lets SQLite use the partial index on records(ref, kind).
            db.execute(
                f"{RECORD_COLUMNS} WHERE ref IN ({marks}) AND ref <> '' AND kind = ? ORDER BY record_id", (*refs, kind)
            ) as cur,
        ):
            return [record_row(row) async for row in cur]

    async def references(self, records: Sequence[tuple[str, int]]) -> dict[tuple[str, int], str]:
        """The stored reference of each of `records` (kind, id) that has one ("" or never computed: left out)."""
        found: dict[tuple[str, int], str] = {}
        async with self.reading() as db:
            for kind, ids in ids_by_kind(records).items():
                marks = ",".join("?" * len(ids))
                async with db.execute(
                    f"SELECT record_id, ref FROM records WHERE kind = ? AND record_id IN ({marks})"
                    " AND ref IS NOT NULL AND ref <> ''",
                    (kind, *ids),
                ) as cur:
                    found.update({(kind, int(i)): str(ref) async for i, ref in cur})
        return found

    async def unreferenced(self, limit: int = 500) -> list[RecordRow]:
        """Records whose reference was never computed (stored by an older version), at most `limit`."""
        async with (
            self.reading() as db,
            db.execute(f"{RECORD_COLUMNS} WHERE ref IS NULL LIMIT ?", (limit,)) as cur,
        ):
            return [record_row(row) async for row in cur]

    async def set_references(self, refs: Sequence[tuple[str, int, str]]) -> None:
        """Fill in references computed by the caller: (kind, id, ref), "" for none."""
        if not refs:
            return
        async with self.transaction() as db:
            await db.executemany(
                "UPDATE records SET ref = ? WHERE kind = ? AND record_id = ?",
                [(ref, kind, record_id) for kind, record_id, ref in refs],
            )

    async def live_peers(
        self,
        sink: str,
        kind: str,
        record_id: int,
        *,
        email: str,
        remote_id: str | None,
        kinds: Sequence[str],
    ) -> list[str]:
        """Other live records (of `kinds`) that map to the same destination contact, as keys: those `sink` links
        to the same remote id, and those with the same e-mail that `sink` has not linked to a DIFFERENT remote
        contact (unwritten ones would merge into it by e-mail). What a deletion guard checks before deleting."""
        found: set[str] = set()

        def read(db: sqlite3.Connection) -> None:
            # `email <> ''` lets SQLite use the partial index on records(email).
            if email and kinds:
                kind_marks = ",".join("?" * len(kinds))
                rows = db.execute(
                    "SELECT r.kind, r.record_id FROM records r LEFT JOIN links l"
                    " ON l.sink = ? AND l.kind = r.kind AND l.record_id = r.record_id"
                    f" WHERE r.email = ? AND r.email <> '' AND r.deleted = 0 AND r.kind IN ({kind_marks})"
                    " AND NOT (r.kind = ? AND r.record_id = ?)"
                    " AND (? IS NULL OR l.remote_id IS NULL OR l.remote_id = ?)",
                    (sink, email, *kinds, kind, record_id, remote_id, remote_id),
                )
                found.update(record_key(k, i) for k, i in rows)
            if remote_id:
                rows = db.execute(
                    "SELECT l.kind, l.record_id FROM links l JOIN records r"
                    " ON r.kind = l.kind AND r.record_id = l.record_id"
                    " WHERE l.sink = ? AND l.remote_id = ? AND r.deleted = 0"
                    " AND NOT (l.kind = ? AND l.record_id = ?)",
                    (sink, remote_id, kind, record_id),
                )
                found.update(record_key(k, i) for k, i in rows)

        await self.peek(read)
        return sorted(found)

    async def linked_record(self, kinds: Sequence[str], sinks: Mapping[str, bool]) -> LinkedRecord | None:
        """A live record of one of `kinds` (earlier kinds first, then the highest sequence, then the lowest id) that
        has an e-mail and a link in every one of `sinks`; a sink mapped to True must hold a remote id for it."""
        if not kinds or not sinks:
            return None
        names = list(sinks)
        joins = "".join(
            f" JOIN links l{n} ON l{n}.sink = ? AND l{n}.kind = r.kind AND l{n}.record_id = r.record_id"
            for n in range(len(names))
        )
        with_ids = "".join(f" AND l{n}.remote_id IS NOT NULL" for n, sink in enumerate(names) if sinks[sink])
        remote_ids = ", ".join(f"l{n}.remote_id" for n in range(len(names)))
        kind_marks = ",".join("?" * len(kinds))
        preference = " ".join(f"WHEN ? THEN {n}" for n in range(len(kinds)))
        sql = (
            f"SELECT r.kind, r.record_id, r.sequence, r.deleted, r.body, r.email, {remote_ids} FROM records r{joins}"
            f" WHERE r.deleted = 0 AND r.email <> '' AND r.kind IN ({kind_marks}){with_ids}"
            f" ORDER BY CASE r.kind {preference} END, r.sequence DESC, r.record_id LIMIT 1"
        )
        async with self.reading() as db, db.execute(sql, (*names, *kinds, *kinds)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None
        record = RecordRow(row[0], row[1], row[2], bool(row[3]), row[4])
        return LinkedRecord(record, str(row[5]), dict(zip(names, row[6:], strict=True)))
