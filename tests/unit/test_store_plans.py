"""The query plans of the statements every ingested page runs: index searches, never a scan of a table that grows
with the store (a scan per page makes ingest slower the more the store holds)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from state.db import _prepare
from state.ingest import (
    _EVENT_SEQ,
    _RELEASE_WAITERS,
    _UPDATE_EMAIL,
    _UPSERT_BARE_DELETE,
    _UPSERT_SHADOW,
    QUEUE_DELIVERIES,
    QUEUE_KEYS,
    STALE_SNAPSHOT,
    STALE_STREAM,
    TEMP_TABLES,
)

GROWING = ("events", "records", "deliveries", "outbox", "waits", "links")
PARAMS = {"now": 1.0, "before": 10, "capture_seq": 5}


@pytest.fixture
def conn(tmp_path: Path) -> sqlite3.Connection:
    """A migrated store file with the page's temporary tables, a few thousand rows in the growing tables, analysed
    (so the planner sees a store that has grown, as it does in production after upkeep's optimize)."""
    path = tmp_path / "syncd.db"
    _prepare(path)
    db = sqlite3.connect(path, isolation_level=None)
    for ddl in TEMP_TABLES:
        db.execute(ddl)
    db.execute("BEGIN")
    db.executemany(
        "INSERT INTO events (stream, kind, record_id, action, sequence, event_id, occurred_at, ingested_at, body)"
        " VALUES ('leads', 'lead', ?, 'updated', 1, ?, '2026-01-01T00:00:00Z', 0, x'00')",
        [(n, f"e{n}") for n in range(3000)],
    )
    db.executemany(
        "INSERT INTO deliveries (sink, seq, key, created_at) VALUES (?, ?, ?, 0)",
        [(sink, n, f"lead:{n}") for n in range(1, 3001) for sink in ("salesmanago", "ontraport")],
    )
    db.execute("COMMIT")
    db.execute("ANALYZE")
    return db


def plan(db: sqlite3.Connection, sql: str) -> list[str]:
    return [str(row[3]) for row in db.execute("EXPLAIN QUERY PLAN " + sql, PARAMS)]


@pytest.mark.parametrize(
    "sql",
    [
        STALE_STREAM,
        STALE_SNAPSHOT,
        _EVENT_SEQ,
        _UPSERT_SHADOW,
        _UPDATE_EMAIL,
        _UPSERT_BARE_DELETE,
        _RELEASE_WAITERS,
        QUEUE_DELIVERIES,
        QUEUE_KEYS,
    ],
    ids=[
        "stale_stream",
        "stale_snapshot",
        "event_seq",
        "upsert_shadow",
        "update_email",
        "upsert_bare_delete",
        "release_waiters",
        "queue_deliveries",
        "queue_keys",
    ],
)
def test_a_page_statement_never_scans_a_growing_table(conn: sqlite3.Connection, sql: str) -> None:
    """Each statement of a page reaches the store's tables by index search; only the page itself is scanned."""
    steps = plan(conn, sql)
    scans = [step for step in steps if step.startswith("SCAN") and step.split()[1] in GROWING]
    assert not scans, steps


def test_the_outbox_insert_reads_only_the_pages_deliveries(conn: sqlite3.Connection) -> None:
    """The outbox rows of a page come from its new deliveries, found by primary key (seq > the page's start)."""
    assert "SEARCH deliveries USING PRIMARY KEY (seq>?)" in plan(conn, QUEUE_KEYS)


def test_a_records_earlier_change_in_the_page_is_found_by_index(conn: sqlite3.Connection) -> None:
    """The page's earlier rows of a record are searched by index, not compared with every other row of the page."""
    steps = plan(conn, STALE_STREAM)
    assert any("incoming_record" in step for step in steps), steps
