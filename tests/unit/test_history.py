"""The Sell history generator: deterministic, valid Firehose items, and every story the daemon must handle."""

from __future__ import annotations

import re
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from syncd.events import STREAM_KINDS, Contact, Deal, Lead
from syncd.sandbox.sell.history import generate_history, item, person_share, wire_time
from syncd.sell.normalise import normalise

START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
History = list[tuple[str, dict[str, Any]]]


@pytest.fixture(scope="module")
def history() -> History:
    return generate_history(4000, seed=7, start=START, poison=3)


def of(history: History, stream: str, action: str | None = None) -> list[dict[str, Any]]:
    return [i for s, i in history if s == stream and (action is None or i["meta"]["event_type"] == action)]


def local_part_too_long(email: str | None) -> bool:
    return bool(email) and len(str(email).split("@")[0]) > 64


# ---------------------------------------------------------------------------------------------------------------
# shape


def test_same_seed_same_history_and_other_seeds_differ() -> None:
    """A seed (with a start) fixes the history byte for byte; another seed tells another one."""
    one = msgspec.json.encode(generate_history(500, seed=3, start=START))
    assert msgspec.json.encode(generate_history(500, seed=3, start=START)) == one
    assert msgspec.json.encode(generate_history(500, seed=4, start=START)) != one


@pytest.mark.parametrize("events", [0, 1, 30, 41, 500, 1234])
def test_exactly_the_number_of_events_asked_for(events: int) -> None:
    """The history holds exactly `events` items, even when that cuts the set-up or a story short."""
    assert len(generate_history(events, seed=1, start=START)) == events


def test_times_rise_from_start_with_seconds_in_utc(history: History) -> None:
    """event_time is ISO-8601 UTC with seconds, starts at `start`, never falls, and spans at most ~48 hours."""
    times = [i["meta"]["event_time"] for _, i in history]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", t) for t in times)
    assert times[0] == wire_time(START)
    assert times == sorted(times)
    assert times[-1] > times[0]
    assert datetime.fromisoformat(times[-1]) - START <= timedelta(hours=49)


def test_without_start_the_history_ends_now_or_at_end() -> None:
    """Without a start the last event is at `end` (default now), so 72 hours of retention keep all of it."""
    end = datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert generate_history(300, seed=2, end=end)[-1][1]["meta"]["event_time"] == "2025-01-02T03:04:05Z"
    before = datetime.now(UTC).replace(microsecond=0)
    last = datetime.fromisoformat(generate_history(300, seed=2)[-1][1]["meta"]["event_time"])
    assert before <= last <= datetime.now(UTC)


def test_long_histories_stay_within_retention() -> None:
    """Long histories are packed tighter: 20,000 events span less than the Firehose's 72 hours of retention."""
    history = generate_history(20_000, seed=5, start=START)
    assert datetime.fromisoformat(history[-1][1]["meta"]["event_time"]) - START < timedelta(hours=50)


def test_event_ids_are_unique_base64url(history: History) -> None:
    """Every event_id is a distinct ~22-character base64url string."""
    ids = [i["meta"]["event_id"] for _, i in history]
    assert len(set(ids)) == len(ids)
    assert all(re.fullmatch(r"[A-Za-z0-9_-]{22}", i) for i in ids)


def test_sequences_rise_by_one_per_record(history: History) -> None:
    """meta.sequence starts at 1 for each record and rises by one with each of its events."""
    last: dict[tuple[str, int], int] = {}
    for _, wire in history:
        key = (wire["meta"]["type"], wire["data"]["id"])
        assert wire["meta"]["sequence"] == last.get(key, 0) + 1
        last[key] = wire["meta"]["sequence"]
    assert max(last.values()) >= 3


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_item_normalises(seed: int) -> None:
    """Every generated item is a valid Firehose item of its stream: normalise() accepts all of them (a source is
    kept under the kind of its resource type, lead_source or deal_source)."""
    for stream, wire in generate_history(2000, seed=seed, poison=2, start=START):
        kind = wire["meta"]["type"]
        assert kind == STREAM_KINDS[stream]
        event = normalise(stream, msgspec.json.encode(wire))
        if kind == "source":
            kind = f"{wire['data']['resource_type']}_source"
        assert (event.kind, event.record_id, event.sequence) == (
            kind, wire["data"]["id"], wire["meta"]["sequence"],
        )  # fmt: skip


def test_previous_holds_exactly_the_changed_attributes(history: History) -> None:
    """On every update, previous names exactly the attributes whose value changed, with their old values."""
    snapshots: dict[tuple[str, int], dict[str, Any]] = {}
    updates = 0
    for _, wire in history:
        meta, data = wire["meta"], wire["data"]
        key = (meta["type"], data["id"])
        if meta["event_type"] == "updated":
            updates += 1
            old, previous = snapshots[key], meta["previous"]
            for attr in set(old) | set(data):
                before, after = _comparable(attr, old.get(attr)), _comparable(attr, data.get(attr))
                if attr in previous:
                    assert _comparable(attr, previous[attr]) == before, (key, attr)
                    assert before != after, (key, attr)
                else:
                    assert before == after, (key, attr)
        if meta["event_type"] != "deleted":
            snapshots[key] = data
    assert updates > 1000


def _comparable(attr: str, value: Any) -> Any:
    """Custom values by field id (a renamed field's embedded name changes, its value does not)."""
    if attr == "custom_field_values" and value is not None:
        return {entry["custom_field"]["data"]["id"]: entry["value"] for entry in value}
    return value


def test_item_builds_a_firehose_item_with_a_stable_event_id() -> None:
    """item() gives the contract's item shape; the same arguments give the same event id."""
    built = item("lead", {"id": 5}, action="updated", sequence=2, previous={"email": "a@b.c"}, cause="system")
    assert built == {
        "data": {"id": 5},
        "meta": {"type": "lead", "event_type": "updated", "event_id": built["meta"]["event_id"],
                 "event_time": "2024-03-01T10:15:02Z", "sequence": 2, "event_cause": "system",
                 "previous": {"email": "a@b.c"}},
    }  # fmt: skip
    assert re.fullmatch(r"[A-Za-z0-9_-]{22}", built["meta"]["event_id"])
    assert item("lead", {"id": 5}, action="updated", sequence=2)["meta"]["event_id"] == built["meta"]["event_id"]
    assert item("lead", {"id": 5}, sequence=3)["meta"]["event_id"] != built["meta"]["event_id"]
    assert item("lead", {"id": 5}, event_time=START)["meta"]["event_time"] == "2024-03-01T09:00:00Z"


# ---------------------------------------------------------------------------------------------------------------
# stories


def test_custom_field_definitions_come_first_with_every_type(history: History) -> None:
    """The history opens with custom field definitions for leads, contacts and deals, every value type among them."""
    first = [i for _, i in history[:32]]
    assert all(i["meta"]["type"] == "custom_field" and i["meta"]["event_type"] == "created" for i in first)
    assert {i["data"]["resource_type"] for i in first} == {"lead", "contact", "deal"}
    types = {"bool", "number", "date", "datetime", "list", "multi_select_list", "address", "email", "phone",
             "string", "text", "url"}  # fmt: skip
    for resource in ("lead", "contact"):
        assert {i["data"]["type"] for i in first if i["data"]["resource_type"] == resource} == types


def test_definitions_are_renamed_later(history: History) -> None:
    """Custom fields get renamed later on: updates with the old name in previous, the new name in later records."""
    renames = of(history, "custom_fields", "updated")
    assert len(renames) >= 3
    for rename in renames:
        assert set(rename["meta"]["previous"]) == {"name"}
        assert rename["meta"]["previous"]["name"] != rename["data"]["name"]
    names = {
        entry["custom_field"]["data"]["name"]
        for _, wire in history
        for entry in wire["data"].get("custom_field_values") or ()
    }
    assert {r["data"]["name"] for r in renames} & names


def test_a_pipeline_of_stages_and_sources(history: History) -> None:
    """Stages of one pipeline cover incoming, qualified, won and lost; sources exist for leads and deals."""
    stages = of(history, "stages")
    assert {s["data"]["category"] for s in stages} == {"incoming", "qualified", "won", "lost"}
    assert len({s["data"]["pipeline_id"] for s in stages}) == 1
    assert {s["data"]["resource_type"] for s in of(history, "sources")} >= {"lead", "deal"}


def test_leads_are_created_updated_readdressed_and_deleted(history: History) -> None:
    """Leads are created, updated, change e-mail (previous holds the old one) and are deleted by people."""
    counts = Counter(i["meta"]["event_type"] for i in of(history, "leads"))
    assert counts["created"] > 300
    assert counts["updated"] > 300
    email_changes = [u for u in of(history, "leads", "updated") if "email" in u["meta"]["previous"]]
    assert len(email_changes) > 30
    assert all(u["meta"]["previous"]["email"] != u["data"]["email"] for u in email_changes)
    assert any(d["meta"]["event_cause"] == "interaction" for d in of(history, "leads", "deleted"))


def test_deletes_come_in_both_readings(history: History) -> None:
    """Deleted items carry only the id or the last snapshot (the contract leaves it open), both present."""
    deletes = of(history, "leads", "deleted") + of(history, "contacts", "deleted")
    bare = [d for d in deletes if set(d["data"]) == {"id"}]
    assert 0 < len(bare) < len(deletes)


def test_lead_conversions_create_a_contact_then_the_system_deletes_the_lead(history: History) -> None:
    """A conversion creates a contact with the lead's name and e-mail, then the lead is deleted with cause system."""
    leads: dict[int, dict[str, Any]] = {}
    conversions = 0
    for index, (stream, wire) in enumerate(history):
        if stream == "leads" and wire["meta"]["event_type"] != "deleted":
            leads[wire["data"]["id"]] = wire["data"]
        if stream == "leads" and wire["meta"]["event_cause"] == "system":
            assert wire["meta"]["event_type"] == "deleted"
            lead = leads[wire["data"]["id"]]
            stream_before, contact = history[index - 1]
            assert stream_before == "contacts"
            assert contact["meta"]["event_type"] == "created"
            for attr in ("first_name", "last_name", "email"):
                assert contact["data"][attr] == lead[attr]
            assert lead["email"]
            conversions += 1
    assert conversions > 30


def test_contacts_individuals_and_organisations(history: History) -> None:
    """Organisations and individuals appear, individuals linked to organisations; contacts change and go."""
    events = [normalise("contacts", msgspec.json.encode(i)) for i in of(history, "contacts")]
    created = [e.record for e in events if e.action == "created"]
    assert all(isinstance(r, Contact) for r in created)
    orgs = {r.id for r in created if isinstance(r, Contact) and r.is_organization}
    people = [r for r in created if isinstance(r, Contact) and not r.is_organization]
    assert len(orgs) > 20
    assert sum(1 for r in people if r.organization_id in orgs) > 50
    assert {e.action for e in events} == {"created", "updated", "deleted"}
    assert any("email" in e.previous for e in events)


def test_deals_move_through_stages_to_won_or_lost(history: History) -> None:
    """Deals change stage (previous holds the old stage) and end won or lost; values are decimal strings."""
    stages = {s["data"]["id"]: s["data"]["category"] for s in of(history, "stages")}
    moves = [u for u in of(history, "deals", "updated") if "stage_id" in u["meta"]["previous"]]
    assert len(moves) > 100
    ends = Counter(stages[m["data"]["stage_id"]] for m in moves)
    assert ends["won"] > 10
    assert ends["lost"] > 10
    assert ends["qualified"] > 10
    assert all(isinstance(d["data"]["value"], str) for d in of(history, "deals"))
    lost = [m for m in moves if stages[m["data"]["stage_id"]] == "lost"]
    assert all(m["data"]["loss_reason_id"] is not None for m in lost)


def test_orders_with_line_items_follow_won_deals(history: History) -> None:
    """Every order belongs to a won deal, and every line item to an order of the same deal."""
    stages = {s["data"]["id"]: s["data"]["category"] for s in of(history, "stages")}
    deals: dict[int, dict[str, Any]] = {}
    orders: dict[int, int] = {}
    line_items = 0
    for stream, wire in history:
        data = wire["data"]
        if stream == "deals":
            deals[data["id"]] = data
        elif stream == "orders":
            assert stages[deals[data["deal_id"]]["stage_id"]] == "won"
            orders[data["id"]] = data["deal_id"]
        elif stream == "line_items":
            assert orders[data["order_id"]] == data["deal_id"]
            assert isinstance(data["price"], str)
            line_items += 1
    assert len(orders) > 10
    assert line_items >= len(orders)


def test_notes_on_leads_contacts_and_deals(history: History) -> None:
    """Notes are written on leads, contacts and deals (and sometimes edited)."""
    notes = of(history, "notes")
    assert {n["data"]["resource_type"] for n in notes} == {"lead", "contact", "deal"}
    assert any(n["meta"]["event_type"] == "updated" for n in notes)


def test_people_are_international_and_some_have_no_email(history: History) -> None:
    """Unicode names, free-text countries, tags and a few percent of people without an e-mail."""
    people = of(history, "leads", "created") + of(history, "contacts", "created")
    names = [f"{p['data']['first_name']} {p['data']['last_name']}" for p in people if p["data"]["first_name"]]
    assert sum(1 for n in names if not n.isascii()) > len(names) / 5
    countries = {p["data"]["address"]["country"] for p in people if p["data"]["address"]}
    assert countries >= {"Poland", "United Kingdom", "Deutschland", "USA"}
    assert any(p["data"]["tags"] for p in people)
    individuals = [p for p in people if not p["data"].get("is_organization")]
    without = sum(1 for p in individuals if not p["data"]["email"]) / len(individuals)
    assert 0.01 < without < 0.1


def test_custom_values_of_every_type_are_set(history: History) -> None:
    """Records carry non-null custom field values of every type."""
    seen = {
        entry["custom_field"]["data"]["type"]
        for _, wire in history
        for entry in wire["data"].get("custom_field_values") or ()
        if entry["value"] is not None
    }
    assert seen == {"bool", "number", "date", "datetime", "list", "multi_select_list", "address", "email", "phone",
                    "string", "text", "url"}  # fmt: skip


def test_most_events_are_about_people(history: History) -> None:
    """Leads and contacts make up about 70 % of the events."""
    assert 0.62 < person_share(history) < 0.8


@pytest.mark.parametrize("poison", [0, 1, 5])
def test_poison_leads_are_added_early(poison: int) -> None:
    """poison=N gives exactly N leads with an over-long e-mail local part, created in the first tenth."""
    history = generate_history(1000, seed=9, start=START, poison=poison)
    leads = [normalise("leads", msgspec.json.encode(i)) for i in of(history, "leads")]
    poisoned = [e for e in leads if isinstance(e.record, Lead) and local_part_too_long(e.record.email)]
    assert len(poisoned) == poison
    assert all(e.action == "created" for e in poisoned)
    first_tenth = {i["meta"]["event_id"] for _, i in history[:100]}
    assert all(e.event_id in first_tenth for e in poisoned)
    others = [e for _, i in history for e in [i] if local_part_too_long(i["data"].get("email"))]
    assert len(others) == poison


def test_deal_values_normalise_to_decimals(history: History) -> None:
    """Deal values normalise to Decimals (the generator writes them as strings like Sell)."""
    deal = normalise("deals", msgspec.json.encode(of(history, "deals", "created")[0])).record
    assert isinstance(deal, Deal)
    assert deal.value is not None
    assert deal.value.as_tuple().exponent == -2
