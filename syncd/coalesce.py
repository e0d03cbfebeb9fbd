"""Coalescing: a key's pending deliveries become the fewest destination writes. Pure.

For a person key (a Sell lead or contact), any run of creates and updates becomes ONE upsert of the latest known
snapshot (the shadow), and a delete supersedes every earlier update. Writers therefore never replay history; they
bring the destination to the latest state, which also makes re-deliveries after a crash harmless.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from syncd.events import Contact, Lead, email_of
from syncd.work import KeyWork


@dataclass(frozen=True, slots=True)
class PersonChange:
    """What one person key needs in a destination now."""

    key: str
    seqs: tuple[int, ...]
    intent: Literal["upsert", "delete"]
    record: Lead | Contact | None  # the latest known snapshot (for a delete: the last one before it)
    deleted_ingested_at: float | None  # when syncd stored the delete (for the deletion guard)
    # E-mails other than the latest that a destination may hold for this record: the one last written (the link),
    # and, when the key was tried before, those the pending changes passed through (a write with one of them may
    # have landed before a timeout or a crash lost its outcome). Newest first, lower-case.
    earlier_emails: tuple[str, ...] = ()


def earlier_emails(work: KeyWork, current: str) -> tuple[str, ...]:
    """The e-mails this record had across its pending deliveries (when a write with them may have been made: the
    key was tried) and its last write, other than `current`."""
    seen: list[str] = []
    for delivery in reversed(work.deliveries if work.tried else ()):
        event = delivery.event
        old = event.previous.get("email")
        for email in (email_of(event.record), old.strip().lower() if isinstance(old, str) else ""):
            if email and email != current and email not in seen:
                seen.append(email)
    sent = work.link.sent.get("email") if work.link is not None and work.link.sent else None
    if isinstance(sent, str) and sent.strip() and sent.strip().lower() not in (current, *seen):
        seen.append(sent.strip().lower())
    return tuple(seen)


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
    # A deleted record has no current e-mail: every address it had may hold a contact a lost write left.
    current = "" if deleted or latest is None else email_of(latest)
    earlier = earlier_emails(work, current)
    if deleted:
        return PersonChange(
            key=work.key,
            seqs=work.seqs,
            intent="delete",
            record=latest,
            deleted_ingested_at=max(delete_times) if delete_times else None,
            earlier_emails=earlier,
        )
    return PersonChange(
        key=work.key, seqs=work.seqs, intent="upsert", record=latest, deleted_ingested_at=None, earlier_emails=earlier
    )
