"""Outbox keys: each names the record a destination writes, as `kind:record_id` (`contact:9001`).

The store loads a key's shadow record and link by the record the key names, and answers look-ups with keys.
"""

from __future__ import annotations

from collections.abc import Iterable


def record_key(kind: str, record_id: int) -> str:
    """`("contact", 9001)` -> `"contact:9001"`."""
    return f"{kind}:{record_id}"


def split_key(key: str) -> tuple[str, int]:
    """`"contact:9001"` -> `("contact", 9001)`; ValueError for anything else (no kind, no id, or an id that is not
    plain decimal digits)."""
    kind, sep, record_id = key.partition(":")
    if not sep or not kind or not (record_id.isascii() and record_id.isdigit()):
        raise ValueError(f"not a record key (kind:id): {key!r}")
    return kind, int(record_id)


def ids_by_kind(records: Iterable[tuple[str, int]]) -> dict[str, list[int]]:
    """`[("lead", 1), ("contact", 2), ("lead", 3)]` -> `{"lead": [1, 3], "contact": [2]}` (one query per kind)."""
    grouped: dict[str, list[int]] = {}
    for kind, record_id in records:
        grouped.setdefault(kind, []).append(record_id)
    return grouped
