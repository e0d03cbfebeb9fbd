"""Building normalised events for tests."""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from typing import Any

from state.db import migrations
from syncd.events import (
    STREAM_KINDS,
    Action,
    ChangeEvent,
    Contact,
    CustomField,
    Deal,
    Lead,
    LineItem,
    Note,
    Order,
    Product,
    Record,
    Source,
    Stage,
)

_KIND_STREAM = {kind: stream for stream, kind in STREAM_KINDS.items()} | {
    "lead_source": "sources",
    "deal_source": "sources",
}
_RECORDS: dict[str, type[Record]] = {
    "lead": Lead,
    "contact": Contact,
    "stage": Stage,
    "deal": Deal,
    "note": Note,
    "order": Order,
    "line_item": LineItem,
    "product": Product,
    "custom_field": CustomField,
    "source": Source,
    "lead_source": Source,
    "deal_source": Source,
}


def event(
    kind: str,
    record_id: int,
    sequence: int,
    action: Action = "updated",
    *,
    previous: dict[str, Any] | None = None,
    **fields: Any,
) -> ChangeEvent:
    """A ChangeEvent for `kind` with the record's `fields` (only `id` for a bare delete)."""
    record = _RECORDS[kind](id=record_id, **fields)
    return ChangeEvent(
        stream=_KIND_STREAM[kind],
        kind=kind,
        record_id=record_id,
        action=action,
        sequence=sequence,
        event_id=f"{kind}-{record_id}-{sequence}-{action}",
        occurred_at=datetime(2026, 11, 1, 12, 0, sequence % 60, tzinfo=UTC),
        record=record,  # type: ignore[arg-type]
        previous=previous or {},
    )


def schema_at(conn: sqlite3.Connection, version: int) -> None:
    """Make `conn`'s empty database one an older syncd left at schema `version`: its first `version` migrations
    applied and that version recorded (the next open migrates it the rest of the way)."""
    for _, _, sql in migrations()[:version]:
        conn.executescript(sql)
    conn.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
    conn.execute("INSERT INTO schema_version (version) VALUES (?)", (version,))
