"""The durable store: one SQLite file holding positions, events, the shadow, deliveries and links.

The store imports nothing from syncd: callers hand it rows (state.rows) and outcomes (state.outcomes) and read
rows back; bodies are opaque bytes to it.
"""

from state.backfill import Cursor, LinkRow, PartRow
from state.db import SCHEMA_VERSION, open_database
from state.errors import StoreDamaged, StoreError, StoreLocation, StoreOwned, StoreUnavailable
from state.feedback import FEEDBACK_QUEUE
from state.ingest import IngestResult, StreamPosition
from state.jobs import JobRow
from state.keys import record_key, split_key
from state.outcomes import Dead, Deferred, Done, Outcome, Released, Retry, Skipped, Waiting
from state.owner import Holder, holder
from state.repair import DeadLetter, Replayed, Router
from state.rows import (
    DriftRow,
    EventRow,
    FeedbackMark,
    Link,
    LinkedRecord,
    NotedOutcome,
    OutcomeRow,
    PendingEvent,
    Quarantined,
    RecordRow,
    Requeue,
    Route,
    StoredWork,
    Wait,
    WaitingKey,
)
from state.status import SinkStatus, StatusSnapshot, read_status
from state.store import Store

__all__ = [
    "FEEDBACK_QUEUE",
    "SCHEMA_VERSION",
    "Cursor",
    "Dead",
    "DeadLetter",
    "Deferred",
    "Done",
    "DriftRow",
    "EventRow",
    "FeedbackMark",
    "Holder",
    "IngestResult",
    "JobRow",
    "Link",
    "LinkRow",
    "LinkedRecord",
    "NotedOutcome",
    "Outcome",
    "OutcomeRow",
    "PartRow",
    "PendingEvent",
    "Quarantined",
    "RecordRow",
    "Released",
    "Replayed",
    "Requeue",
    "Retry",
    "Route",
    "Router",
    "SinkStatus",
    "Skipped",
    "StatusSnapshot",
    "Store",
    "StoreDamaged",
    "StoreError",
    "StoreLocation",
    "StoreOwned",
    "StoreUnavailable",
    "StoredWork",
    "StreamPosition",
    "Wait",
    "Waiting",
    "WaitingKey",
    "holder",
    "open_database",
    "read_status",
    "record_key",
    "split_key",
]
