"""Sell deals and notes -> SALESmanago external events. Pure.

A deal's **facts**, each one SALESmanago event with a stable `externalId` (`sell-deal-<id>-<fact>`):

- `created` (OFFER by default): the deal was created (its created event was read, or the fact was sent before).
- `won` (PURCHASE): the deal is in a won stage now. The only fact that is taken back: a deal that leaves "won"
  has its event deleted (it is added again, with the new won time, if the deal is won again).
- `lost` (CANCELLED): the deal is in a lost stage now, or passed through one among the changes being delivered.
- `stage-<id>` (as `[sinks.salesmanago.events.stages]` says): the deal reached that stage.

Each type is configurable, per pipeline for won / lost / created; "" sends none. A fact that holds now is *current*:
its event follows the deal (value, products, name) and is updated by its eventId when they change. A fact that
happened and no longer holds (lost, then reopened) keeps its event as it was. A deleted deal takes its events with
it. A note (optional, `notes = "OTHER"`) is one event `sell-note-<id>`, updated with the note and deleted with it.

Filled the way SALESmanago's own e-commerce plugin fills a purchase: `value` the deal's total as a number (2
decimals), `products` the product ids comma-joined, `detail1` the product names comma-joined, `detail3` the
quantities `/`-joined, `location` the configured shop id, `description` the deal's name, `date` the fact's time
(created, won or lost) in epoch milliseconds; `detail2` carries the currency. Texts are clipped to SALESmanago's
limits, counted in UTF-16 units as its Java backend counts them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

from syncd.config import SalesmanagoEvents
from syncd.drift import stage_named
from syncd.events import Note, Stage
from syncd.sinks.deals import DealView, category_of
from syncd.sinks.mapping import digest

LIMITS = {"description": 2048, "products": 512, "detail": 255, "shopDomain": 255}
MAX_VALUE = Decimal(10) ** 19  # SALESmanago refuses values with 19 or more integer digits
CENT = Decimal("0.01")


class EventMappingError(ValueError):
    """A fact SALESmanago cannot take as it stands (the reason is the dead letter's)."""


# ---------------------------------------------------------------------------------------------------------------
# facts


@dataclass(frozen=True, slots=True)
class Fact:
    """One fact of a deal or note, as one SALESmanago event."""

    name: str  # "created", "won", "lost", "stage-12", "note"
    type: str  # the SALESmanago event type
    at: datetime  # when it happened: the event's date
    current: bool = True  # it holds now: its event follows the record


@dataclass(frozen=True, slots=True)
class Passed:
    """A stage a deal was in, at one of the changes being delivered, and since when."""

    stage: Stage
    at: datetime


def deal_facts(
    view: DealView,
    *,
    config: SalesmanagoEvents,
    sent: Iterable[str] = (),
    created: datetime | None = None,
    passed: Sequence[Passed] = (),
    now: datetime,
) -> list[Fact]:
    """The facts a deal has now. `sent`: the facts it had events for; `created`: when it was created, if its
    created event is among the changes; `passed`: the stages it was in at those changes, oldest first; `now`: the
    time of the newest change (a time Sell did not give)."""
    if view.deleted:
        return []
    deal = view.deal
    sent_names = set(sent)
    won, lost, offer = config.types(view.stage.pipeline_id if view.stage is not None else None)
    decided = view.decided_at or now
    facts: list[Fact] = []
    if offer and (created is not None or "created" in sent_names):
        facts.append(Fact("created", offer, deal.created_at or created or now))
    category = view.category
    if won and category == "won":
        facts.append(Fact("won", won, decided))
    if lost:
        if category == "lost":
            facts.append(Fact("lost", lost, decided))
        else:
            losses = [p for p in passed if category_of(p.stage) == "lost"]
            if losses:
                facts.append(Fact("lost", lost, losses[-1].at, current=False))
    for key, kind in config.stages.items():
        wanted = stage_named([s for s in (view.stage, *(p.stage for p in passed)) if s is not None], key)
        if wanted is None:
            continue
        name = f"stage-{wanted.id}"
        if view.stage is not None and view.stage.id == wanted.id:
            facts.append(Fact(name, kind, decided))
        else:
            reached = [p.at for p in passed if p.stage.id == wanted.id]
            facts.append(Fact(name, kind, reached[-1], current=False))
    return facts


def note_facts(note: Note, *, deleted: bool, config: SalesmanagoEvents, now: datetime) -> list[Fact]:
    """A note's one fact, when notes make events and the note is live."""
    if deleted or not config.notes:
        return []
    return [Fact("note", config.notes, note.created_at or now)]


# ---------------------------------------------------------------------------------------------------------------
# payloads


def epoch_ms(moment: datetime) -> int:
    """Epoch milliseconds (a naive time is UTC); SALESmanago takes no time before 1970 (EventMappingError)."""
    aware = moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
    ms = int(aware.timestamp() * 1000)
    if ms < 0:
        raise EventMappingError(f"the time {aware.isoformat()} is before 1970, which SALESmanago does not take")
    return ms


def utf16_clip(text: str, limit: int) -> str:
    """`text` within `limit` UTF-16 code units (how SALESmanago counts), ending in "…" when clipped, never
    splitting a character."""
    if _units(text) <= limit:
        return text
    out: list[str] = []
    used = 0
    for char in text:
        size = 2 if ord(char) > 0xFFFF else 1
        if used + size > limit - 1:
            break
        out.append(char)
        used += size
    return "".join(out) + "…"


def _units(text: str) -> int:
    return sum(2 if ord(char) > 0xFFFF else 1 for char in text)


def event_value(total: Decimal) -> int | float:
    """A total as SALESmanago's `value`: a JSON number with at most 2 decimals (half up), integral ones as ints."""
    if not total.is_finite() or abs(total) >= MAX_VALUE:
        raise EventMappingError(f"the deal's value {total} is beyond what SALESmanago takes (under 10^19)")
    rounded = total.quantize(CENT, rounding=ROUND_HALF_UP)
    return int(rounded) if rounded == rounded.to_integral_value() else float(rounded)


def quantity_text(quantity: Decimal) -> str:
    """ "2", "1.5": a quantity without trailing zeros."""
    return "0" if quantity.is_zero() else format(quantity.normalize(), "f")


def deal_event(fact: Fact, view: DealView, config: SalesmanagoEvents) -> dict[str, Any]:
    """The `contactEvent` of one deal fact. Raises EventMappingError."""
    event: dict[str, Any] = {
        "date": epoch_ms(fact.at),
        "contactExtEventType": fact.type,
        "externalId": f"sell-deal-{view.deal.id}-{fact.name}",
        "location": config.location,
    }
    total = view.total
    if total is not None:
        event["value"] = event_value(total)
    if view.lines:
        event["products"] = utf16_clip(",".join(line.product_ref for line in view.lines), LIMITS["products"])
        event["detail1"] = utf16_clip(",".join(line.name for line in view.lines), LIMITS["detail"])
        event["detail3"] = utf16_clip("/".join(quantity_text(line.quantity) for line in view.lines), LIMITS["detail"])
    if view.currency:
        event["detail2"] = utf16_clip(view.currency, LIMITS["detail"])
    if view.deal.name.strip():
        event["description"] = utf16_clip(view.deal.name.strip(), LIMITS["description"])
    if config.shop_domain:
        event["shopDomain"] = config.shop_domain
    return event


def note_event(fact: Fact, note: Note, config: SalesmanagoEvents) -> dict[str, Any]:
    """The `contactEvent` of a note: its text as the description, what it is on in detail1 and detail2."""
    event: dict[str, Any] = {
        "date": epoch_ms(fact.at),
        "contactExtEventType": fact.type,
        "externalId": f"sell-note-{note.id}",
        "location": config.location,
        "description": utf16_clip(note.content.strip(), LIMITS["description"]),
    }
    if note.resource_type:
        event["detail1"] = note.resource_type
    if note.resource_id is not None:
        event["detail2"] = str(note.resource_id)
    if config.shop_domain:
        event["shopDomain"] = config.shop_domain
    return event


# ---------------------------------------------------------------------------------------------------------------
# what was sent, and what to send now


@dataclass(frozen=True, slots=True)
class SentEvent:
    """An event syncd added for a fact: its eventId, the digest of what it last sent, its externalId."""

    event_id: str
    digest: str
    external_id: str


@dataclass(frozen=True, slots=True)
class SentEvents:
    """What a deal's or note's link keeps: the contact its events are on, and one event per fact."""

    contact: str = ""  # the contact's SALESmanago id, else its e-mail
    events: Mapping[str, SentEvent] = field(default_factory=dict)

    @classmethod
    def from_sent(cls, sent: Mapping[str, Any] | None) -> SentEvents:
        """Read a link's `sent` defensively (anything odd reads as nothing sent)."""
        if not sent or not isinstance(sent.get("events"), dict):
            return cls()
        events = {}
        for name, entry in sent["events"].items():
            if isinstance(entry, dict) and all(isinstance(entry.get(k), str) for k in ("id", "digest", "externalId")):
                events[name] = SentEvent(entry["id"], entry["digest"], entry["externalId"])
        contact = sent.get("contact")
        return cls(contact if isinstance(contact, str) else "", events)

    def to_sent(self) -> dict[str, Any]:
        return {
            "contact": self.contact,
            "events": {
                name: {"id": e.event_id, "digest": e.digest, "externalId": e.external_id}
                for name, e in sorted(self.events.items())
            },
        }


@dataclass(frozen=True, slots=True)
class Wanted:
    """A fact and the event it should be."""

    fact: Fact
    event: dict[str, Any]

    @property
    def digest(self) -> str:
        return digest(self.event)

    @property
    def external_id(self) -> str:
        return str(self.event["externalId"])


@dataclass(frozen=True, slots=True)
class EventPlan:
    """What to do in SALESmanago for one key: events to add, to update (by eventId) and to delete, and those that
    stay as they are."""

    add: tuple[Wanted, ...] = ()
    update: tuple[tuple[SentEvent, Wanted], ...] = ()
    delete: tuple[tuple[str, SentEvent], ...] = ()  # (fact name, event)
    keep: Mapping[str, SentEvent] = field(default_factory=dict)

    @property
    def empty(self) -> bool:
        return not (self.add or self.update or self.delete)


RETRACTED = frozenset({"won"})  # facts whose event goes when they stop holding


def plan_events(
    wanted: Sequence[Wanted], sent: SentEvents, *, contact: str, gone: bool = False, force: bool = False
) -> EventPlan:
    """From what was sent to what is wanted: add the new facts; update a current fact whose event changed (every
    current fact when `force`: a replay asks for the writes even if unchanged); delete the events of retracted
    facts, of every fact when the record is `gone`, and of all of them when the events must move to another
    `contact` (they are added again there); keep the rest."""
    moved = bool(sent.contact) and sent.contact != contact
    if moved:
        return EventPlan(add=tuple(wanted), delete=tuple(sorted(sent.events.items())))
    add: list[Wanted] = []
    update: list[tuple[SentEvent, Wanted]] = []
    keep: dict[str, SentEvent] = {}
    names = set()
    for want in wanted:
        name = want.fact.name
        names.add(name)
        before = sent.events.get(name)
        if before is None:
            add.append(want)
        elif not want.fact.current or (before.digest == want.digest and not force):
            keep[name] = before
        else:
            update.append((before, want))
    delete = []
    for name, before in sorted(sent.events.items()):
        if name in names:
            continue
        if gone or name in RETRACTED:
            delete.append((name, before))
        else:
            keep[name] = before
    return EventPlan(tuple(add), tuple(update), tuple(delete), keep)
