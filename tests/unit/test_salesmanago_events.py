"""Sell deals and notes -> SALESmanago external events, pure and table-driven: which facts a deal has (won, lost,
created, stages; per pipeline), every field of the event each becomes, a note's event, what changes in
SALESmanago from what was sent (add, update by eventId, delete, keep), and the `[sinks.salesmanago.events]`
settings."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncd.config import SalesmanagoEvents, SalesmanagoEventTypes, loads
from syncd.errors import ConfigError
from syncd.events import Deal, LineItem, Note, Product, Stage
from syncd.sinks.deals import DealView, Line
from syncd.sinks.salesmanago.events import (
    EventMappingError,
    Fact,
    Passed,
    SentEvent,
    SentEvents,
    Wanted,
    deal_event,
    deal_facts,
    epoch_ms,
    event_value,
    note_event,
    note_facts,
    plan_events,
    quantity_text,
    utf16_clip,
)

CREATED = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
DECIDED = datetime(2026, 11, 20, 15, 30, tzinfo=UTC)
LOST_AT = datetime(2026, 11, 10, 8, 0, tzinfo=UTC)
NOW = datetime(2026, 11, 21, tzinfo=UTC)
INCOMING = Stage(id=1, name="Incoming", category="incoming", pipeline_id=1)
DEMO = Stage(id=2, name="Demo booked", category="qualified", pipeline_id=1)
WON = Stage(id=4, name="Won", category="won", pipeline_id=1)
LOST = Stage(id=5, name="Lost", category="lost", pipeline_id=1)
RENEWAL_WON = Stage(id=14, name="Renewed", category="won", pipeline_id=2)
DEFAULTS = SalesmanagoEvents()


def view(stage: Stage | None, *, deleted: bool = False, lines: tuple[Line, ...] = (), **deal: Any) -> DealView:
    fields: dict[str, Any] = {"name": "Pro for Ada", "created_at": CREATED, "last_stage_change_at": DECIDED}
    fields.update(deal)
    record = Deal(id=77, stage_id=stage.id if stage else None, contact_id=5, **fields)
    return DealView(deal=record, deleted=deleted, sequence=3, stage=stage, lines=lines)


def facts(v: DealView, **kwargs: Any) -> list[tuple[str, str, datetime, bool]]:
    kwargs.setdefault("config", DEFAULTS)
    kwargs.setdefault("now", NOW)
    return [(f.name, f.type, f.at, f.current) for f in deal_facts(v, **kwargs)]


# ---------------------------------------------------------------------------------------------------------------
# a deal's facts


@pytest.mark.parametrize(
    ("v", "kwargs", "expected"),
    [
        pytest.param(view(INCOMING), {"created": CREATED}, [("created", "OFFER", CREATED, True)], id="created-offer"),
        pytest.param(view(INCOMING), {}, [], id="created-event-not-seen"),
        pytest.param(view(DEMO), {"sent": ["created"]}, [("created", "OFFER", CREATED, True)], id="offer-kept-current"),
        pytest.param(view(WON), {}, [("won", "PURCHASE", DECIDED, True)], id="won-purchase-at-won-time"),
        pytest.param(view(LOST), {}, [("lost", "CANCELLED", DECIDED, True)], id="lost-cancelled"),
        pytest.param(
            view(DEMO), {"passed": [Passed(LOST, LOST_AT), Passed(DEMO, DECIDED)]},
            [("lost", "CANCELLED", LOST_AT, False)], id="lost-then-reopened-in-one-delivery",
        ),
        pytest.param(view(DEMO), {"sent": ["won"]}, [], id="reopened-after-won-has-no-purchase"),
        pytest.param(
            view(WON), {"created": CREATED},
            [("created", "OFFER", CREATED, True), ("won", "PURCHASE", DECIDED, True)], id="created-and-won-at-once",
        ),
        pytest.param(view(WON, last_stage_change_at=None), {}, [("won", "PURCHASE", NOW, True)], id="won-time-unknown"),
        pytest.param(view(None), {"created": CREATED}, [("created", "OFFER", CREATED, True)], id="no-stage"),
        pytest.param(view(WON, deleted=True), {"sent": ["won", "created"]}, [], id="deleted-deal-has-none"),
    ],
)  # fmt: skip
def test_a_deals_facts(v: DealView, kwargs: dict[str, Any], expected: list[tuple[str, str, datetime, bool]]) -> None:
    """created (OFFER, when its created event is read or it was sent before), won (PURCHASE while won), lost
    (CANCELLED while lost, or passed through among the changes), at the time each happened; none for a deleted
    deal."""
    assert facts(v, **kwargs) == expected


@pytest.mark.parametrize(
    ("config", "v", "expected"),
    [
        pytest.param(SalesmanagoEvents(won="TRANSACTION"), view(WON), [("won", "TRANSACTION")], id="won-type"),
        pytest.param(SalesmanagoEvents(won=""), view(WON), [], id="won-off"),
        pytest.param(SalesmanagoEvents(lost="CANCELLATION"), view(LOST), [("lost", "CANCELLATION")], id="lost-type"),
        pytest.param(
            SalesmanagoEvents(pipelines={"2": SalesmanagoEventTypes(won="RETURN")}), view(RENEWAL_WON),
            [("won", "RETURN")], id="per-pipeline",
        ),
        pytest.param(
            SalesmanagoEvents(pipelines={"2": SalesmanagoEventTypes(won="RETURN")}), view(WON),
            [("won", "PURCHASE")], id="other-pipeline-default",
        ),
        pytest.param(
            SalesmanagoEvents(pipelines={"1": SalesmanagoEventTypes(won="")}), view(WON), [], id="pipeline-off",
        ),
        pytest.param(
            SalesmanagoEvents(stages={"demo booked": "MEETING"}), view(DEMO), [("stage-2", "MEETING")],
            id="stage-by-name",
        ),
        pytest.param(
            SalesmanagoEvents(stages={"4": "RESERVATION"}), view(WON),
            [("won", "PURCHASE"), ("stage-4", "RESERVATION")], id="stage-by-id-beside-won",
        ),
    ],
)  # fmt: skip
def test_each_fact_type_is_configurable_per_pipeline_and_stage(
    config: SalesmanagoEvents, v: DealView, expected: list[tuple[str, str]]
) -> None:
    """won / lost / created types are set (or "" for none) for all deals and per pipeline; a configured stage (by
    name, any case, or id) makes its own fact."""
    assert [(name, kind) for name, kind, _, _ in facts(v, config=config)] == expected


def test_a_stage_passed_through_keeps_its_fact_as_it_happened() -> None:
    """A configured stage the deal passed through among the changes is a fact of that moment, not current."""
    config = SalesmanagoEvents(stages={"Demo booked": "MEETING"})
    passed = [Passed(DEMO, LOST_AT), Passed(WON, DECIDED)]
    assert facts(view(WON), config=config, passed=passed) == [
        ("won", "PURCHASE", DECIDED, True),
        ("stage-2", "MEETING", LOST_AT, False),
    ]


# ---------------------------------------------------------------------------------------------------------------
# the event of a fact

PRO = Product(id=1001, name="Pro licence", sku="LIC-PRO")
LINES = (
    Line(LineItem(id=60, product_id=1001, name="Pro licence", quantity=Decimal(2), value=Decimal("498.00")), PRO),
    Line(LineItem(id=61, sku="SETUP", name="Setup", quantity=Decimal("1.50"), value=Decimal("150.00"))),
    Line(LineItem(id=62, product_id=1003, name="Support", quantity=Decimal(10), value=Decimal("100.00"))),
)
WON_FACT = Fact("won", "PURCHASE", DECIDED)


@pytest.mark.parametrize(
    ("v", "config", "expected"),
    [
        pytest.param(
            view(WON, lines=LINES, value=Decimal("748.00"), currency="EUR"), DEFAULTS,
            {"date": epoch_ms(DECIDED), "contactExtEventType": "PURCHASE", "externalId": "sell-deal-77-won",
             "location": "zendesk_sell", "value": 748, "products": "1001,SETUP,1003",
             "detail1": "Pro licence,Setup,Support", "detail2": "EUR", "detail3": "2/1.5/10",
             "description": "Pro for Ada"},
            id="purchase-like-the-plugin",
        ),
        pytest.param(
            view(WON, value=Decimal("1250.5"), name="  "), SalesmanagoEvents(location="shop-1", shop_domain="x.pl"),
            {"date": epoch_ms(DECIDED), "contactExtEventType": "PURCHASE", "externalId": "sell-deal-77-won",
             "location": "shop-1", "value": 1250.5, "shopDomain": "x.pl"},
            id="no-lines-no-name-shop-domain",
        ),
        pytest.param(
            view(WON, lines=LINES[:1]), DEFAULTS,
            {"date": epoch_ms(DECIDED), "contactExtEventType": "PURCHASE", "externalId": "sell-deal-77-won",
             "location": "zendesk_sell", "value": 498, "products": "1001", "detail1": "Pro licence",
             "detail3": "2", "description": "Pro for Ada"},
            id="value-from-the-lines",
        ),
        pytest.param(
            view(WON, value=Decimal("10.005")), DEFAULTS,
            {"date": epoch_ms(DECIDED), "contactExtEventType": "PURCHASE", "externalId": "sell-deal-77-won",
             "location": "zendesk_sell", "value": 10.01, "description": "Pro for Ada"},
            id="value-two-decimals-half-up",
        ),
    ],
)  # fmt: skip
def test_a_deal_fact_becomes_its_event(v: DealView, config: SalesmanagoEvents, expected: dict[str, Any]) -> None:
    """value the total as a number (2 decimals), products the product ids, detail1 the names, detail3 the
    quantities, detail2 the currency, externalId per fact, location the shop id, description the deal's name,
    date the fact's time in epoch ms; nothing sent blank."""
    assert deal_event(WON_FACT, v, config) == expected


def test_long_texts_are_clipped_to_salesmanagos_limits_in_utf16_units() -> None:
    """products (512), details (255) and the description (2048) are clipped counting UTF-16 units, never splitting
    a character, ending in an ellipsis."""
    many = tuple(Line(LineItem(id=n, product_id=10**9 + n, name="𝔓ro ", quantity=Decimal(1))) for n in range(80))
    event = deal_event(WON_FACT, view(WON, lines=many, name="Ł" * 3000), DEFAULTS)
    assert len(event["products"]) == 512 and event["products"].endswith("…")
    assert sum(2 if ord(c) > 0xFFFF else 1 for c in event["detail1"]) <= 255 and event["detail1"].endswith("…")
    assert len(event["description"]) == 2048


@pytest.mark.parametrize(
    ("text", "limit", "expected"),
    [
        ("abc", 3, "abc"),
        ("abcd", 3, "ab…"),
        ("a😀b", 4, "a😀b"),
        ("a😀bc", 4, "a😀…"),
        ("a😀bc", 3, "a…"),
        ("😀😀", 3, "😀…"),
    ],
)
def test_utf16_clip(text: str, limit: int, expected: str) -> None:
    """Text over the limit in UTF-16 units ends in "…" within it; a character is never cut in half."""
    assert utf16_clip(text, limit) == expected


@pytest.mark.parametrize(
    ("total", "expected"),
    [(Decimal("748.00"), 748), (Decimal("0.1"), 0.1), (Decimal("2.675"), 2.68), (Decimal("-5.50"), -5.5)],
)
def test_event_values_are_json_numbers_with_two_decimals(total: Decimal, expected: float) -> None:
    """A total is a number with at most 2 decimals (half up), integral ones as integers: valid under both
    readings of SALESmanago's value rule (refuse more decimals, or round)."""
    value = event_value(total)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize("total", [Decimal(10) ** 19, Decimal("-1e20"), Decimal("NaN")])
def test_a_value_salesmanago_cannot_hold_is_a_mapping_error(total: Decimal) -> None:
    """19 integer digits or more (or no number at all) is refused before sending, with the reason."""
    with pytest.raises(EventMappingError, match="beyond what SALESmanago takes"):
        event_value(total)


def test_a_time_before_1970_is_a_mapping_error() -> None:
    """SALESmanago takes no event dated before 1970: refused before sending, with the reason."""
    early = Fact("won", "PURCHASE", datetime(1969, 12, 31, tzinfo=UTC))
    with pytest.raises(EventMappingError, match="before 1970"):
        deal_event(early, view(WON), DEFAULTS)


@pytest.mark.parametrize(("quantity", "text"), [(Decimal(2), "2"), (Decimal("1.50"), "1.5"), (Decimal("0.00"), "0")])
def test_quantities_have_no_trailing_zeros(quantity: Decimal, text: str) -> None:
    """detail3's quantities read as Sell shows them."""
    assert quantity_text(quantity) == text


def test_a_note_becomes_an_other_event_when_asked() -> None:
    """With notes = "OTHER", a note is one event with its text, what it is on and its time; off by default, and
    none for a deleted note."""
    note = Note(id=12, content="Spotkanie we wtorek ☕", resource_type="lead", resource_id=9, created_at=CREATED)
    config = SalesmanagoEvents(notes="OTHER")
    [fact] = note_facts(note, deleted=False, config=config, now=NOW)
    assert note_event(fact, note, config) == {
        "date": epoch_ms(CREATED),
        "contactExtEventType": "OTHER",
        "externalId": "sell-note-12",
        "location": "zendesk_sell",
        "description": "Spotkanie we wtorek ☕",
        "detail1": "lead",
        "detail2": "9",
    }
    assert note_facts(note, deleted=False, config=DEFAULTS, now=NOW) == []
    assert note_facts(note, deleted=True, config=config, now=NOW) == []


# ---------------------------------------------------------------------------------------------------------------
# from what was sent to what is wanted


def wanted(name: str, *, current: bool = True, value: int = 1) -> Wanted:
    return Wanted(Fact(name, "PURCHASE", DECIDED, current), {"externalId": f"sell-deal-77-{name}", "value": value})


def sent(*names: str, contact: str = "contact:5", value: int = 1) -> SentEvents:
    return SentEvents(
        contact, {n: SentEvent(f"ev-{n}", wanted(n, value=value).digest, f"sell-deal-77-{n}") for n in names}
    )


@pytest.mark.parametrize(
    ("want", "before", "options", "expected"),
    [
        pytest.param([wanted("won")], SentEvents(), {}, (["won"], [], [], []), id="new-fact-added"),
        pytest.param([wanted("won")], sent("won"), {}, ([], [], [], ["won"]), id="unchanged-kept"),
        pytest.param([wanted("won", value=2)], sent("won"), {}, ([], ["ev-won"], [], []), id="changed-updated-by-id"),
        pytest.param([wanted("won")], sent("won"), {"force": True}, ([], ["ev-won"], [], []), id="replay-forces"),
        pytest.param(
            [wanted("lost", current=False, value=9)], sent("lost"), {}, ([], [], [], ["lost"]),
            id="past-fact-left-as-it-was",
        ),
        pytest.param([], sent("won", "created"), {}, ([], [], ["won"], ["created"]), id="left-won-purchase-deleted"),
        pytest.param([], sent("won", "created"), {"gone": True}, ([], [], ["created", "won"], []), id="gone"),
        pytest.param(
            [wanted("won")], sent("won", contact="contact:4"), {}, (["won"], [], ["won"], []),
            id="moved-to-another-contact",
        ),
    ],
)  # fmt: skip
def test_plan_events(
    want: list[Wanted], before: SentEvents, options: dict[str, Any], expected: tuple[list[str], ...]
) -> None:
    """A new fact is added; an unchanged one kept; a changed current one updated by its eventId (any current one
    on a replay); a past one kept as it was; the PURCHASE of a deal no longer won deleted; everything of a gone
    deal deleted; events moving to another contact deleted and added there."""
    plan = plan_events(want, before, contact="contact:5", **options)
    assert (
        [w.fact.name for w in plan.add],
        [event.event_id for event, _ in plan.update],
        [name for name, _ in plan.delete],
        sorted(plan.keep),
    ) == expected


def test_sent_events_round_trip_and_odd_links_read_as_nothing_sent() -> None:
    """What a link keeps reads back the same; a link from the person writer or a damaged one reads as nothing."""
    kept = sent("won", "created")
    assert SentEvents.from_sent(kept.to_sent()) == kept
    assert SentEvents.from_sent({"email": "a@x.org", "tags": []}) == SentEvents()
    assert SentEvents.from_sent({"events": {"won": {"id": 5}}}).events == {}
    assert SentEvents.from_sent(None) == SentEvents()


# ---------------------------------------------------------------------------------------------------------------
# the settings


def events_config(table: str) -> SalesmanagoEvents:
    text = f"""
[sell]
token = "t"
[sinks.salesmanago]
base_url = "https://app3.salesmanago.com"
client_id = "c"
api_secret = "s"
owner = "owner@example.com"
[sinks.salesmanago.events]
{table}
"""
    config = loads(text, source="syncd.toml").sinks.salesmanago
    assert config is not None
    return config.events


def test_the_events_settings_default_to_the_plugins_types() -> None:
    """By default won -> PURCHASE, lost -> CANCELLED, created -> OFFER, no note events, location zendesk_sell."""
    events = events_config("")
    assert (events.won, events.lost, events.created, events.notes, events.location) == (
        "PURCHASE", "CANCELLED", "OFFER", "", "zendesk_sell",
    )  # fmt: skip


def test_per_pipeline_and_stage_settings_are_read() -> None:
    """Pipelines by id override the types they name; stages map a name or id to a type."""
    events = events_config(
        'notes = "OTHER"\nlocation = "shop_1"\n[sinks.salesmanago.events.pipelines."2"]\nwon = "TRANSACTION"\n'
        'created = ""\n[sinks.salesmanago.events.stages]\n"Demo booked" = "MEETING"\n'
    )
    assert events.types(2) == ("TRANSACTION", "CANCELLED", "")
    assert events.types(1) == events.types(None) == ("PURCHASE", "CANCELLED", "OFFER")
    assert events.stages == {"Demo booked": "MEETING"} and events.notes == "OTHER"


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ('won = "purchase"', "sinks.salesmanago.events.won", "expected 'PURCHASE'"),
        ('lost = "REFUND"', "sinks.salesmanago.events.lost", "unknown SALESmanago event type 'REFUND'"),
        ('[sinks.salesmanago.events.pipelines.sales]\nwon = "OFFER"', 'sinks.salesmanago.events.pipelines."sales"',
         "pipeline id"),
        ('[sinks.salesmanago.events.pipelines."007"]\nwon = "OFFER"', 'sinks.salesmanago.events.pipelines."007"',
         "no leading zero"),
        ('[sinks.salesmanago.events.pipelines."3"]\nlost = "X"', 'sinks.salesmanago.events.pipelines."3".lost',
         "unknown SALESmanago event type"),
        ('[sinks.salesmanago.events.stages]\n"Demo" = ""', 'sinks.salesmanago.events.stages."Demo"',
         "unknown SALESmanago event type ''"),
        ('location = "Shop 1"', "sinks.salesmanago.events.location", "at most 36 of a-z 0-9 / _ - ."),
        (f'location = "{"a" * 37}"', "sinks.salesmanago.events.location", "at most 36"),
        ('colour = "red"', "sinks.salesmanago.events.colour", "unknown key"),
    ],
)  # fmt: skip
def test_bad_events_settings_stop_start_up_naming_the_key(table: str, key: str, message: str) -> None:
    """A type SALESmanago does not know (types are case-sensitive), a pipeline that is not an id, a stage without
    a type, a location its feeds refuse, or an unknown key: a ConfigError naming the file and key (exit 78)."""
    with pytest.raises(ConfigError) as caught:
        events_config(table)
    assert caught.value.key == key and message in str(caught.value)
