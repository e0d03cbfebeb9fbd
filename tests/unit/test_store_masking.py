"""Secrets in error text an older syncd stored (it masked them only in its log) are masked in the file by the next
owner: every column that keeps text from outside, every written form, nothing else touched, and no old byte left
in the database or its write-ahead log."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from state import Store
from state.upkeep import OUTSIDE_TEXT
from syncd.redact import MASK, Redactor

TOKEN = "old-tok\u00e9n-4bd7e19a"  # non-ASCII, so its JSON-escaped form differs from it
SECRET = "SmOldSecret-aa91c3"


ROWS = [  # one row in each table with text from outside, as an older syncd left them
    "INSERT INTO positions (stream, position, updated_at) VALUES ('leads', 'p', 0)",
    "INSERT INTO outbox (sink, key, first_seq, due_at) VALUES ('ontraport', 'lead:1', 1, 0)",
    "INSERT INTO deliveries (sink, seq, key, status, created_at) VALUES ('ontraport', 1, 'lead:1', 'dead', 0)",
    "INSERT INTO dead_letters (sink, key, reason, created_at) VALUES ('ontraport', 'lead:1', 'x', 0)",
    "INSERT INTO quarantine (stream, reason, raw, created_at) VALUES ('leads', 'x', x'00', 0)",
    "INSERT INTO sink_state (sink, updated_at) VALUES ('ontraport', 0)",
    "INSERT INTO waits (sink, key, on_key, reason, since) VALUES ('ontraport', 'deal:1', 'lead:1', 'x', 0)",
    "INSERT INTO drift (scope, subject, problem, since) VALUES ('sell', 's', 'x', 0)",
    "INSERT INTO jobs (kind, params, requested_at, updated_at) VALUES ('backfill', '{}', 0, 0)",
]


def _seed(path: Path, texts: dict[tuple[str, str], str]) -> None:
    """The rows, each column of `texts` holding its text."""
    with sqlite3.connect(path) as conn:
        for sql in ROWS:
            conn.execute(sql)
        for (table, column), text in texts.items():
            conn.execute(f"UPDATE {table} SET {column} = ?", (text,))


async def test_the_next_owner_masks_old_secrets_in_every_column_and_leaves_no_trace(tmp_path: Path) -> None:
    """Every column that keeps text from outside, holding a secret as is, JSON-escaped or percent-encoded, is
    masked (the rest of the text kept, other text untouched); the bytes of the database and its log no longer
    hold any form of a secret; a second pass finds nothing."""
    path = tmp_path / "syncd.db"
    await (await Store.open(path, sinks=("ontraport",))).close()
    texts = {
        spot: f"Ontraport answered 401: key {form} refused ({table}.{column})"
        for spot, form in zip(
            OUTSIDE_TEXT,
            [TOKEN, "old-tok\\u00e9n-4bd7e19a", "old-tok%C3%A9n-4bd7e19a", SECRET] * 3,
            strict=False,
        )
        for table, column in [spot]
    }
    _seed(path, texts)
    redact = Redactor([TOKEN, SECRET])
    store = await Store.open(path, sinks=("ontraport",))
    try:
        assert await store.mask_text(redact.forms, MASK) == len(OUTSIDE_TEXT)
        _assert_no_trace(tmp_path, redact)  # while the daemon still runs: not only once it closed the file
        assert await store.mask_text(redact.forms, MASK) == 0
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        for table, column in OUTSIDE_TEXT:
            [(value,)] = conn.execute(f"SELECT {column} FROM {table}").fetchall()
            assert value == f"Ontraport answered 401: key {MASK} refused ({table}.{column})", value
        assert conn.execute("SELECT key, sink FROM outbox").fetchall() == [("lead:1", "ontraport")]
    _assert_no_trace(tmp_path, redact)


def _assert_no_trace(tmp_path: Path, redact: Redactor) -> None:
    for suffix in ("", "-wal", "-shm"):
        file = tmp_path / f"syncd.db{suffix}"
        if file.exists():
            data = file.read_bytes()
            for form in redact.forms:
                assert form.encode() not in data, (form, file.name)


async def test_without_secrets_or_matches_nothing_changes(tmp_path: Path) -> None:
    """No secret configured, or none in the stored text: nothing is written."""
    path = tmp_path / "syncd.db"
    await (await Store.open(path, sinks=("ontraport",))).close()
    _seed(path, {("dead_letters", "reason"): "Ontraport answered 422: invalid e-mail"})
    store = await Store.open(path, sinks=("ontraport",))
    try:
        assert await store.mask_text((), MASK) == 0
        assert await store.mask_text(Redactor([SECRET]).forms, MASK) == 0
    finally:
        await store.close()
    with sqlite3.connect(path) as conn:
        assert conn.execute("SELECT reason FROM dead_letters").fetchall() == [
            ("Ontraport answered 422: invalid e-mail",)
        ]
