"""Coalescing: a key's pending deliveries become the fewest destination writes. Pure.

For a person key (a Sell lead or contact), any run of creates and updates becomes ONE upsert of the latest known
snapshot (the shadow), and a delete supersedes every earlier update. Writers therefore never replay history; they
bring the destination to the latest state, which also makes re-deliveries after a crash harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from syncd.events import Contact, Lead
from syncd.work import KeyWork


@dataclass(frozen=True, slots=True)
class PersonChange:
    """What one person key needs in a destination now."""

    key: str
    seqs: tuple[int, ...]
    intent: Literal["upsert", "delete"]
    record: Lead | Contact | None  # the latest known snapshot (for a delete: the last one before it)
    deleted_ingested_at: float | None  # when syncd stored the delete (for the deletion guard)


def coalesce_person(work: KeyWork) -> PersonChange:
    """The single write a person key's pending deliveries amount to."""
    latest: Lead | Contact | None = None
    if work.shadow is not None and isinstance(work.shadow.record, Lead | Contact):
        latest = work.shadow.record
    deleted = work.shadow.deleted if work.shadow is not None else False
    delete_times = [d.ingested_at for d in work.deliveries if d.event.action == "deleted"]
    if latest is None:
        # No shadow (cannot normally happen: ingest writes it in the same transaction); use the newest event.
        for delivery in reversed(work.deliveries):
            record = delivery.event.record
            if isinstance(record, Lead | Contact):
                latest = record
                deleted = delivery.event.action == "deleted"
                break
    if deleted:
        return PersonChange(
            key=work.key,
            seqs=work.seqs,
            intent="delete",
            record=latest,
            deleted_ingested_at=max(delete_times) if delete_times else None,
        )
    return PersonChange(key=work.key, seqs=work.seqs, intent="upsert", record=latest, deleted_ingested_at=None)
