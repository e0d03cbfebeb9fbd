"""What feedback writes on a Sell record, and what it recognises as its own write coming back (pure).

- `noted(outcome)`: a destination's outcome of a key as feedback sees it: delivered, skipped (with the reason),
  dead (with the reason) or deleted; None for what finishes nothing (a retry, a wait) or changes nothing (a record
  unchanged since its last write keeps the outcome it had).
- `wanted(outcomes, destinations)`: the tags the outcomes call for, and the text of each configured custom field.
- `merge(current, wanted, owned)`: Sell replaces the whole tag set on every write, so the new set is read, merged
  and written: a tag a person added is never removed; a tag syncd set earlier and no longer wants is.
- `is_echo(event, writes, fields)`: the Firehose's `updated` event of syncd's own write (its `previous` holds only
  what syncd wrote, and the record shows what syncd wrote), which is not delivered again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from syncd.config import MAX_SELL_TEXT, FeedbackSink
from syncd.events import ChangeEvent, Contact, Lead
from syncd.work import Dead, Done, Outcome, Skipped

PEOPLE = ("lead", "contact")  # the Sell records feedback writes on (the Core API takes writes of these)
UNCHANGED = "unchanged since the last write"  # the writers' skip of a record they already hold as it is
# What the field says of each outcome (before the reason).
STATUS = {"delivered": "delivered", "skipped": "skipped", "dead": "refused", "deleted": "deleted"}
# An echo occurs when Sell applies the write: from a little before syncd noted it (clocks differ) to a while after
# (the write's answer can be slow); a change outside that is a person's, even if it looks the same.
ECHO_BEFORE = 60.0
ECHO_AFTER = 600.0


@dataclass(frozen=True, slots=True)
class Status:
    """A destination's outcome of a key, as feedback sees it."""

    outcome: str  # delivered | skipped | dead | deleted
    reason: str = ""


def noted(outcome: Outcome) -> Status | None:
    """The feedback status a destination's outcome stands for (None: it finishes nothing, or changes nothing)."""
    match outcome:
        case Done(unlink=True):
            return Status("deleted", outcome.detail)
        case Done():
            return Status("delivered")
        case Skipped():
            if outcome.reason.startswith(UNCHANGED):
                return None
            return Status("skipped", outcome.reason)
        case Dead():
            return Status("dead", outcome.reason)
    return None


@dataclass(frozen=True, slots=True)
class Wanted:
    """What the outcomes call for on the record: tags (in configuration order) and custom field texts."""

    tags: tuple[str, ...]
    fields: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {"tags": list(self.tags), "fields": dict(self.fields)}


def status_text(status: Status) -> str:
    """The field's text for one outcome: "delivered", "skipped: <reason>", "refused: <reason>", "deleted"."""
    head = STATUS.get(status.outcome, status.outcome)
    return f"{head}: {status.reason}" if status.reason and status.outcome in ("skipped", "dead") else head


def clip(text: str, limit: int = MAX_SELL_TEXT) -> str:
    """`text` cut to Sell's limit, with an ellipsis when cut (never a lone surrogate half: Python str is code
    points)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def wanted(outcomes: Mapping[str, Status], destinations: Mapping[str, FeedbackSink]) -> Wanted:
    """The tags and field texts the `outcomes` (destination -> status) call for, per `destinations`' settings. A
    destination with no outcome yet sets nothing. Two destinations writing one field share it, each named."""
    tags: dict[str, None] = {}
    texts: dict[str, list[tuple[str, str]]] = {}
    for sink, settings in destinations.items():
        status = outcomes.get(sink)
        if status is None:
            continue
        tag = settings.tag(sink, status.outcome)
        if tag:
            tags[tag] = None
        if settings.field:
            texts.setdefault(settings.field, []).append((sink, status_text(status)))
    fields = {
        name: clip(parts[0][1] if len(parts) == 1 else "; ".join(f"{sink}: {text}" for sink, text in parts))
        for name, parts in texts.items()
    }
    return Wanted(tuple(tags), fields)


def managed(destinations: Mapping[str, FeedbackSink]) -> frozenset[str]:
    """Every tag feedback may set (the only ones it may ever remove)."""
    return frozenset(tag for sink, s in destinations.items() for tag in s.tags(sink).values() if tag)


@dataclass(frozen=True, slots=True)
class Merge:
    """The tag set to write, the tags syncd owns once it is written, and whether it differs from the record's."""

    tags: tuple[str, ...]
    owned: tuple[str, ...]
    changed: bool


def merge(current: Sequence[str], want: Iterable[str], owned: Iterable[str], manageable: frozenset[str]) -> Merge:
    """The record's new tag set: its `current` tags (a person's stay, in their order) without those syncd `owned`
    (set earlier) and no longer wants, plus the wanted ones it lacks. syncd owns a wanted tag it adds or owned
    before; a wanted tag the record already had without syncd is the person's, and stays theirs. Only tags in
    `manageable` (those feedback may set) are ever removed."""
    wants = list(dict.fromkeys(want))
    owned_before = set(owned) & manageable
    present = list(dict.fromkeys(current))
    drop = {t for t in owned_before if t not in wants}
    tags = [t for t in present if t not in drop] + [t for t in wants if t not in present]
    owns = tuple(t for t in wants if t in owned_before or t not in present)
    return Merge(tuple(tags), owns, set(tags) != set(present) or len(tags) != len(present))


def is_echo(event: ChangeEvent, writes: Iterable[Mapping[str, Any]], fields: Iterable[str]) -> bool:
    """Whether `event` is the Firehose's echo of one of syncd's own `writes` on the record: an `updated` change of
    a lead or contact whose `previous` names only tags and feedback's custom `fields`, and whose record holds
    exactly the tags and field texts that write set, occurring when that write was made (`at`, epoch seconds, from
    ECHO_BEFORE before to ECHO_AFTER after). A person's change in the same window (anything else changed, or other
    tags) is not an echo and is delivered."""
    if event.action != "updated" or event.kind not in PEOPLE or not event.previous:
        return False
    record = event.record
    if not isinstance(record, Lead | Contact):
        return False
    own_fields = set(fields)
    if set(event.previous) - {"tags", "custom"}:
        return False
    custom = event.previous.get("custom", {})
    if not isinstance(custom, dict) or set(custom) - own_fields:
        return False
    occurred = event.occurred_at.timestamp()
    for write in writes:
        at = write.get("at")
        if not isinstance(at, int | float) or not at - ECHO_BEFORE <= occurred <= at + ECHO_AFTER:
            continue
        tags = write.get("tags")
        written_fields = write.get("fields") or {}
        if tags is not None and set(record.tags) != set(tags):
            continue
        if tags is None and "tags" in event.previous:
            continue
        if not isinstance(written_fields, dict) or set(custom) - set(written_fields):
            continue
        if all(record.custom.get(name) == text for name, text in written_fields.items()):
            return True
    return False
