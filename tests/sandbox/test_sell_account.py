"""Accounts with a past older than the Firehose retention, and the product catalogue: the generator, and the Sell
sandbox serving them over real loopback HTTP (the Core API knows the past, the Firehose only the live changes)."""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import msgspec
import pytest

from syncd.events import STREAM_KINDS
from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.sell.history import RETENTION, Account, generate_account, generate_history, item
from syncd.sandbox.sell.world import RECORD_KINDS
from syncd.sandbox.server import ServerThread
from syncd.sell.normalise import normalise
from tests.support import AppSwitch, FakeClock

TOKEN = "account-token"
START = datetime(2024, 3, 1, 9, 0, tzinfo=UTC)
END = datetime(2025, 1, 10, 12, 0, tzinfo=UTC)
History = list[tuple[str, dict[str, Any]]]


def when(wire: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(wire["meta"]["event_time"])


def live_records(history: History) -> Counter[str]:
    """Live records per kind after a history (created minus deleted)."""
    counts: Counter[str] = Counter()
    for _, wire in history:
        action = wire["meta"]["event_type"]
        if action != "updated":
            counts[wire["meta"]["type"]] += 1 if action == "created" else -1
    return counts


@pytest.fixture(scope="module")
def account() -> Account:
    return generate_account(600, events=1500, seed=11, end=END)


# ---------------------------------------------------------------------------------------------------------------
# the generator


# Digests of generate_history before accounts and products existed: the default history must never change (the demo
# and many tests count its events).
@pytest.mark.parametrize(
    ("events", "seed", "poison", "digest"),
    [
        (0, 0, 0, "4f53cda18c2baa0c"),
        (41, 1, 0, "5270fec11a7a82bf"),
        (500, 3, 0, "639094cbc7e41295"),
        (4000, 7, 3, "1118f87add5e8f90"),
    ],
)
def test_the_default_history_is_unchanged(events: int, seed: int, poison: int, digest: str) -> None:
    """generate_history without products gives, byte for byte, the history it always gave."""
    history = generate_history(events, seed=seed, start=START, poison=poison)
    assert hashlib.sha256(msgspec.json.encode(history)).hexdigest()[:16] == digest
    assert not any(stream == "products" for stream, _ in history)


@pytest.mark.parametrize("records", [0, 1, 50, 600])
def test_an_account_holds_the_records_asked_for(records: int) -> None:
    """generate_account(N) leaves at least N (and at most a story's worth more) live records of the business kinds."""
    past = generate_account(records, seed=2, end=END).expired
    held = sum(live_records(past)[kind] for kind in RECORD_KINDS)
    assert records <= held <= records + 4


def test_the_past_is_older_than_the_retention_and_the_live_part_is_within_it(account: Account) -> None:
    """Every expired event lies before end - retention; the live events lie within it, the last at `end`."""
    cutoff = END - timedelta(seconds=RETENTION)
    assert all(when(wire) < cutoff for _, wire in account.expired)
    assert all(cutoff <= when(wire) <= END for _, wire in account.live)
    assert when(account.live[-1][1]) == END
    assert len(account.live) == 1500
    times = [wire["meta"]["event_time"] for _, wire in account.expired + account.live]
    assert times == sorted(times)


def test_the_past_has_every_kind_of_record(account: Account) -> None:
    """The past holds leads, people, organisations, deals through stages, orders with line items, notes, products,
    lead and deal sources, stages and custom fields."""
    kinds = live_records(account.expired)
    assert all(kinds[kind] > 0 for kind in (*RECORD_KINDS, "product", "stage", "custom_field", "source"))
    contacts = [w["data"] for s, w in account.expired if s == "contacts" and w["meta"]["event_type"] == "created"]
    assert {c["is_organization"] for c in contacts} == {True, False}
    assert {w["data"]["resource_type"] for s, w in account.expired if s == "sources"} == {"lead", "deal"}


def test_live_changes_continue_the_past(account: Account) -> None:
    """Live items touch records of the past with their next sequence; every item of a stream syncd reads normalises."""
    last: dict[tuple[str, int], int] = {}
    for _, wire in account.expired:
        last[(wire["meta"]["type"], wire["data"]["id"])] = wire["meta"]["sequence"]
    continued = 0
    for stream, wire in account.live:
        key = (wire["meta"]["type"], wire["data"]["id"])
        assert wire["meta"]["sequence"] == last.get(key, 0) + 1
        continued += key in last and wire["meta"]["event_type"] == "updated"
        last[key] = wire["meta"]["sequence"]
        if stream in STREAM_KINDS:
            normalise(stream, msgspec.json.encode(wire))
    assert continued > 100


def test_accounts_are_deterministic() -> None:
    """The same records, events, seed and end give the same account."""
    one = generate_account(80, events=100, seed=5, end=END)
    two = generate_account(80, events=100, seed=5, end=END)
    assert msgspec.json.encode([one.expired, one.live]) == msgspec.json.encode([two.expired, two.live])


def test_products_have_a_stream_and_line_items_are_made_of_them() -> None:
    """With products, the products stream holds the catalogue and its changes, and every line item names a product
    created before it, at that product's price then in the deal's currency."""
    history = generate_history(6000, seed=4, start=START, products=True)
    products: dict[int, dict[str, Any]] = {}
    line_items = changes = 0
    for stream, wire in history:
        data = wire["data"]
        if stream == "products":
            changes += wire["meta"]["event_type"] == "updated"
            products[data["id"]] = data
            assert all(isinstance(p["amount"], str) for p in data["prices"])
        elif stream == "line_items":
            product = products[data["product_id"]]
            assert product["active"]
            price = {p["currency"]: p["amount"] for p in product["prices"]}[data["currency"]]
            assert data["price"] == price
            assert Decimal(data["value"]) == Decimal(price) * data["quantity"]
            line_items += 1
    assert len(products) >= 5
    assert changes > 3
    assert line_items > 20


# ---------------------------------------------------------------------------------------------------------------
# the sandbox


class Api:
    def __init__(self, box: SellSandbox, url: str) -> None:
        self.box = box
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "tests/1.0"}, timeout=10
        )

    def get(self, path: str, **params: Any) -> dict[str, Any]:
        response = self.http.get(path, params=params)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def scan(self, path: str, between: Any = None, **params: Any) -> list[dict[str, Any]]:
        """Every item of a collection, following next_page; `between(page_items)` runs after each page."""
        found: list[dict[str, Any]] = []
        body = self.get(path, per_page=100, **params)
        while True:
            found += body["items"]
            if between is not None:
                between(body["items"])
            url = body["meta"]["links"].get("next_page")
            if url is None:
                return found
            response = self.http.get(url)
            assert response.status_code == 200, response.text
            body = response.json()

    def drain(self, stream: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        position = "tail"
        while True:
            page = self.get(f"/v3/{stream}/stream", position=position, limit=100)
            items += page["items"]
            position = page["meta"]["position"]
            if page["meta"]["top"]:
                return items


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ServerThread, AppSwitch]]:
    switch = AppSwitch()
    with ServerThread(switch) as thread:
        yield thread, switch


@pytest.fixture
def api(server: tuple[ServerThread, AppSwitch]) -> Iterator[Api]:
    thread, switch = server
    box = SellSandbox(tokens=[TOKEN], rate=None, clock=FakeClock(END.timestamp()))
    switch.app = box.app
    client = Api(box, thread.url)
    yield client
    client.http.close()
    switch.app = None


def test_a_control_call_creates_an_account_the_firehose_has_forgotten(api: Api) -> None:
    """POST /_sandbox/events {"generate", "records"}: the Core API lists the old records, the Firehose holds only
    the live items, and state counts the records per kind."""
    answer = api.http.post("/_sandbox/events", json={"generate": 200, "records": 400, "seed": 3}).json()
    assert answer["appended"] == 200
    assert sum(s["retained"] for s in answer["streams"].values()) == 200
    records = answer["records"]
    assert 400 <= sum(records[kind] for kind in RECORD_KINDS) <= 404 + 200  # live items create some more
    leads = api.scan("/v2/leads", sort_by="id:asc")
    assert len(leads) == records["lead"]
    live_ids = {i["data"]["id"] for i in api.drain("leads")}
    assert len({i["data"]["id"] for i in leads} - live_ids) > 50  # known to the Core API only
    assert len(api.scan("/v2/products")) == records["product"] >= 5
    assert api.scan("/v2/lead_sources") and api.scan("/v2/deal_sources") and api.scan("/v2/pipelines")
    order = api.scan("/v2/orders", sort_by="id:asc")[0]["data"]
    line_items = api.get(f"/v2/orders/{order['id']}/line_items")["items"]
    assert line_items
    product_ids = {p["data"]["id"] for p in api.scan("/v2/products")}
    assert {li["data"]["product_id"] for li in line_items} <= product_ids


def test_an_account_with_no_live_events_has_an_empty_firehose(api: Api) -> None:
    """records without events: every stream is empty at tail, yet v2 serves every record."""
    api.box.generate(0, records=150, seed=8)
    assert all(not api.drain(stream) for stream in ("leads", "contacts", "deals", "products", "custom_fields"))
    counts = api.box.state()["records"]
    assert len(api.scan("/v2/contacts")) == counts["contact"]
    assert len(api.scan("/v2/notes")) == counts["note"]


def test_v2_versions_and_updated_at_follow_the_last_event(api: Api) -> None:
    """A record's v2 version is its last sequence and updated_at its last event's time, old or live."""
    account = generate_account(200, events=400, seed=6, end=END)
    api.box.load_account(account)
    last: dict[int, dict[str, Any]] = {}
    for stream, wire in account.expired + account.live:
        if stream == "leads":
            last[wire["data"]["id"]] = wire
    live = {i["data"]["id"]: i for i in api.scan("/v2/leads", sort_by="id:asc")}
    alive = {i: w for i, w in last.items() if w["meta"]["event_type"] != "deleted"}
    assert set(live) == set(alive)
    for lead_id, wire in alive.items():
        assert live[lead_id]["meta"]["version"] == wire["meta"]["sequence"]
        assert live[lead_id]["data"]["updated_at"] == wire["meta"]["event_time"]


def edit(box: SellSandbox, kind: str, data: dict[str, Any], version: int, **changes: Any) -> None:
    """Append a live update of a v2 record (as someone editing it in Sell would cause)."""
    stored = box.records.get(kind, data["id"])
    assert stored is not None
    new = {**stored.data, **changes}
    previous = {k: stored.data.get(k) for k in changes}
    stream = {"lead": "leads", "contact": "contacts"}[kind]
    box.append(stream, [item(kind, new, action="updated", sequence=version + 1, previous=previous,
                             event_time=END - timedelta(seconds=5))])  # fmt: skip


@pytest.mark.parametrize(("path", "kind", "changes"), [
    ("/v2/leads", "lead", {"title": "Edited"}),  # updated_at:asc: an edit moves the lead to the end
    ("/v2/contacts", "contact", {"last_name": "Zzzyx"}),  # last_name:asc: a new last name moves the contact
])  # fmt: skip
def test_a_default_ordered_scan_loses_records_edited_meanwhile_an_id_scan_does_not(
    api: Api, path: str, kind: str, changes: dict[str, Any]
) -> None:
    """Records edited while a scan is under way move between pages as Sell's default order moves them: the default
    scan reads some twice and misses others; sort_by=id:asc reads every record exactly once."""
    api.box.generate(0, records=900, seed=12)
    everyone = {i["data"]["id"] for i in api.scan(path, sort_by="id:asc")}
    assert len(everyone) > 200

    def edit_what_was_read(page: list[dict[str, Any]]) -> None:
        for entry in page[:20]:
            edit(api.box, kind, entry["data"], entry["meta"]["version"], **changes)

    default = [i["data"]["id"] for i in api.scan(path, between=edit_what_was_read)]
    assert len(default) > len(set(default))  # edited ones came again at the end
    assert set(default) < everyone  # and the records that slid into their places were never read
    by_id = [i["data"]["id"] for i in api.scan(path, between=edit_what_was_read, sort_by="id:asc")]
    assert by_id == sorted(everyone)


def test_the_default_history_names_products_the_core_api_knows(api: Api) -> None:
    """A sandbox-generated default history: its Firehose has no product events (unchanged), yet every product its
    line items name is in /v2/products, created long ago."""
    api.box.generate(3000, seed=2)
    assert api.drain("products") == []
    products = {p["data"]["id"]: p for p in api.scan("/v2/products")}
    named = {i["data"]["product_id"] for i in api.drain("line_items")}
    assert named and named <= set(products)
    created = datetime.fromisoformat(products[min(products)]["data"]["created_at"])
    assert created < END - timedelta(seconds=RETENTION)
