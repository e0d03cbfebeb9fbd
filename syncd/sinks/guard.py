"""The deletion guard shared by both destinations.

A destination contact is deleted only when (1) every configured person stream (leads, contacts) has reached the top
of its Firehose after syncd stored the delete (plus `delete_grace`), so a lead converted into a contact is seen in
both streams whatever order they arrive in; and (2) no other live Sell person maps to the same destination contact
(same e-mail, or the same remote id).
"""

from __future__ import annotations

from collections.abc import Sequence

from syncd.coalesce import PersonChange
from syncd.events import email_of
from syncd.sinks.base import Lookups
from syncd.work import Deferred, Outcome, Skipped

PERSON_STREAMS = ("leads", "contacts")
RECHECK_SECONDS = 1.0


async def guard_delete(
    change: PersonChange,
    *,
    sink: str,
    lookups: Lookups,
    streams: Sequence[str],
    grace: float,
    now: float,
    remote_id: str | None,
    email: str | None = None,
) -> Outcome | None:
    """None when the delete may go ahead; otherwise a Deferred (wait) or a Skipped (another record holds it).
    `email` is the e-mail the destination contact has (what this record last wrote), the record's by default."""
    person_streams = [s for s in streams if s in PERSON_STREAMS]
    ingested = change.deleted_ingested_at if change.deleted_ingested_at is not None else now
    ready_at = ingested + grace
    if now < ready_at:
        return Deferred(change.key, ready_at, "delete waits for its grace period")
    if not await lookups.streams_caught_up_since(person_streams, ready_at):
        return Deferred(change.key, now + RECHECK_SECONDS, "delete waits until every person stream has caught up")
    kind, _, record_id = change.key.partition(":")
    if email is None:
        email = email_of(change.record) if change.record is not None else ""
    peers = await lookups.live_peers(sink, kind, int(record_id), email=email, remote_id=remote_id)
    if peers:
        return Skipped(
            change.key,
            change.seqs,
            f"not deleted: {', '.join(peers)} still maps to the same destination contact",
        )
    return None
