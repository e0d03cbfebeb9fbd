"""The Sell sandbox's Core API v2 lists over real loopback HTTP: default orders, sort_by, paging, filters, sources,
pipelines, products, and both readings of money and of ids documented as strings."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.sell.history import item
from syncd.sandbox.server import ServerThread
from tests.support import AppSwitch, FakeClock

TOKEN = "v2-token"
T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


class Api:
    """A v2 client that authenticates like syncd, plus the sandbox behind it."""

    def __init__(self, box: SellSandbox, url: str) -> None:
        self.box = box
        self.url = url
        self.http = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": "tests/1.0"}, timeout=10
        )

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self.http.get(path, params=params)

    def ids(self, path: str, **params: Any) -> list[int]:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        return [i["data"]["id"] for i in response.json()["items"]]

    def scan(self, path: str, *, per_page: int, on_page: Any = None, **params: Any) -> list[int]:
        """Follow links.next_page to the end, calling `on_page(n)` after each page."""
        seen: list[int] = []
        url: str | None = f"{self.url}{path}"
        first = True
        pages = 0
        while url:
            response = self.http.get(url, params={**params, "per_page": per_page} if first else None)
            first = False
            body = response.json()
            seen += [i["data"]["id"] for i in body["items"]]
            pages += 1
            if on_page is not None:
                on_page(pages)
            url = body["meta"]["links"].get("next_page")
        return seen


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ServerThread, AppSwitch]]:
    switch = AppSwitch()
    with ServerThread(switch) as thread:
        yield thread, switch


@pytest.fixture
def api(server: tuple[ServerThread, AppSwitch]) -> Iterator[Api]:
    thread, switch = server
    box = SellSandbox(tokens=[TOKEN], rate=None, clock=FakeClock(at(60).timestamp()))
    switch.app = box.app
    client = Api(box, thread.url)
    yield client
    client.http.close()
    switch.app = None


def lead(record_id: int, **data: Any) -> dict[str, Any]:
    return {"id": record_id, "first_name": None, "last_name": None, "email": None, "owner_id": 101,
            "creator_id": 101, "tags": [], "custom_field_values": [], **data}  # fmt: skip


@pytest.fixture
def crm(api: Api) -> Api:
    """Records whose id order differs from their update order and their last names."""
    box = api.box
    box.append("leads", [
        item("lead", lead(1, first_name="Ada", last_name="Zed", email="ada@example.org", owner_id=102),
             event_time=at(3)),
        item("lead", lead(2, first_name="Bob", last_name="Young", email="Bob@Example.org", creator_id=103),
             event_time=at(1)),
        item("lead", lead(3, first_name="Ada", last_name="Xu", email="ada3@example.org"), event_time=at(2)),
    ])  # fmt: skip
    box.append("contacts", [
        item("contact", lead(11, first_name="Cy", last_name="Nowak", is_organization=False, contact_id=13,
                             address={"line1": "", "city": "Kraków", "postal_code": "", "state": "", "country": ""}),
             event_time=at(1)),
        item("contact", lead(12, first_name="Di", last_name="Abel", is_organization=False, contact_id=None),
             event_time=at(2)),
        item("contact", lead(13, name="Acme", is_organization=True, contact_id=None), event_time=at(3)),
        item("contact", lead(14, first_name="Ed", last_name="łoś", is_organization=False, contact_id=13),
             event_time=at(4)),
    ])  # fmt: skip
    box.append("stages", [
        item("stage", {"id": 31, "name": "Incoming", "category": "incoming", "pipeline_id": 1, "position": 1,
                       "created_at": "2024-01-01T00:00:00Z"}, event_time=at(0)),
        item("stage", {"id": 32, "name": "Won", "category": "won", "pipeline_id": 1, "position": 2}, event_time=at(0)),
        item("stage", {"id": 33, "name": "Intake", "category": "incoming", "pipeline_id": 2, "position": 1},
             event_time=at(0)),
    ])  # fmt: skip
    box.append("deals", [
        item("deal", {"id": 23, "name": "C", "value": "10.00", "stage_id": 31, "contact_id": 11, "organization_id": 13},
             event_time=at(1)),
        item("deal", {"id": 21, "name": "A", "value": "300.00", "stage_id": 32, "contact_id": 12,
                      "organization_id": None}, event_time=at(2)),
        item("deal", {"id": 22, "name": "B", "value": "25.50", "stage_id": 32, "contact_id": 11, "organization_id": 13},
             event_time=at(3)),
    ])  # fmt: skip
    box.append(
        "orders",
        [
            item("order", {"id": 42, "deal_id": 21, "discount": 0}, event_time=at(4)),
            item("order", {"id": 41, "deal_id": 22, "discount": 5}, event_time=at(5)),
        ],
    )
    box.append("line_items", [
        item("line_item", {"id": 52, "order_id": 41, "deal_id": 22, "product_id": 61, "price": "99.00",
                           "value": "198.00", "variation": "0.00", "quantity": 2}, event_time=at(5)),
        item("line_item", {"id": 51, "order_id": 41, "deal_id": 22, "product_id": 62, "price": "15.50",
                           "value": "15.50", "variation": "0.00", "quantity": 1}, event_time=at(5)),
        item("line_item", {"id": 53, "order_id": 42, "deal_id": 21, "product_id": 61, "price": "99.00",
                           "value": "99.00", "variation": "0.00", "quantity": 1}, event_time=at(5)),
    ])  # fmt: skip
    box.append("notes", [
        item("note", {"id": 72, "content": "Call back", "resource_type": "lead", "resource_id": 1}, event_time=at(1)),
        item("note", {"id": 71, "content": "Sent a quote", "resource_type": "deal", "resource_id": 21},
             event_time=at(2)),
        item("note", {"id": 73, "content": "Quote accepted", "resource_type": "lead", "resource_id": 2},
             event_time=at(3)),
    ])  # fmt: skip
    box.append(
        "sources",
        [
            item("source", {"id": 5, "name": "Website", "resource_type": "lead"}, event_time=at(0)),
            item("source", {"id": 5, "name": "Trade show", "resource_type": "deal"}, event_time=at(0)),
            item("source", {"id": 6, "name": "Referral", "resource_type": "lead"}, event_time=at(0)),
        ],
    )
    box.append("products", [
        item("product", {"id": 62, "name": "Pack", "sku": "P-2", "active": True, "cost": "5.00", "cost_currency": "EUR",
                         "prices": [{"amount": "15.50", "currency": "EUR"}]}, event_time=at(0)),
        item("product", {"id": 61, "name": "Licence", "sku": "L-1", "active": False, "cost": "10.00",
                         "cost_currency": "EUR", "prices": [{"amount": "99.00", "currency": "EUR"}]},
             event_time=at(0)),
    ])  # fmt: skip
    return api


# ---------------------------------------------------------------------------------------------------------------
# order


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/v2/leads", [2, 3, 1]),  # updated_at:asc
        ("/v2/notes", [72, 71, 73]),  # updated_at:asc
        ("/v2/contacts", [12, 14, 11, 13]),  # last_name:asc, without regard to case; an organisation has none
        ("/v2/deals", [21, 22, 23]),
        ("/v2/orders", [41, 42]),
        ("/v2/orders/41/line_items", [51, 52]),
        ("/v2/stages", [31, 32, 33]),
        ("/v2/products", [61, 62]),
        ("/v2/sources", [5]),
        ("/v2/lead_sources", [5, 6]),
        ("/v2/pipelines", [1, 2]),
    ],
)
def test_each_collection_has_sells_default_order(crm: Api, path: str, expected: list[int]) -> None:
    """Without sort_by, each collection comes in Sell's own default order."""
    assert crm.ids(path) == expected


@pytest.mark.parametrize(
    ("path", "sort_by", "expected"),
    [
        ("/v2/leads", "id:asc", [1, 2, 3]),
        ("/v2/leads", "id", [1, 2, 3]),
        ("/v2/leads", "updated_at:desc", [1, 3, 2]),
        ("/v2/leads", "last_name:desc", [1, 2, 3]),
        ("/v2/leads", "first_name", [1, 3, 2]),  # ties by id
        ("/v2/contacts", "last_name:desc", [13, 11, 14, 12]),  # no last name: last ascending, first descending
        ("/v2/contacts", "id:asc", [11, 12, 13, 14]),
        ("/v2/deals", "value:desc", [21, 22, 23]),  # money compares as decimals, not text
        ("/v2/deals", "name:desc", [23, 22, 21]),
        ("/v2/notes", "id:desc", [73, 72, 71]),
        ("/v2/stages", "position", [31, 33, 32]),
    ],
)
def test_sort_by_orders_by_a_field_either_way(crm: Api, path: str, sort_by: str, expected: list[int]) -> None:
    """sort_by=<field>[:asc|:desc] orders by that field, ties by id."""
    assert crm.ids(path, sort_by=sort_by) == expected


def edit(box: SellSandbox, record_id: int, sequence: int, minutes: float) -> None:
    """A lead's title changed at `minutes` (which moves it in the updated_at order)."""
    box.append("leads", [item("lead", lead(record_id, title="CEO"), action="updated", sequence=sequence,
                              previous={"title": None}, event_time=at(minutes))])  # fmt: skip


def test_an_edit_during_a_default_ordered_scan_moves_records_between_pages(crm: Api) -> None:
    """Leads list by updated_at: a record read on page 1 and edited before page 2 moves to the end, and the record
    that slides into its place is never read (why a full scan sends sort_by=id:asc)."""
    crm.box.append("leads", [item("lead", lead(n), event_time=at(10 + n)) for n in range(4, 10)])
    assert crm.ids("/v2/leads", per_page=100) == [2, 3, 1, 4, 5, 6, 7, 8, 9]

    def after(page: int) -> None:
        if page == 1:
            edit(crm.box, 3, 2, 50)

    seen = crm.scan("/v2/leads", per_page=3, on_page=after)
    assert seen == [2, 3, 1, 5, 6, 7, 8, 9, 3]  # 4 slid onto page 1's last place, already read


def test_an_id_ordered_scan_sees_every_record_once_despite_edits(crm: Api) -> None:
    """With sort_by=id:asc, edits between pages move nothing: every record is read exactly once."""
    crm.box.append("leads", [item("lead", lead(n), event_time=at(10 + n)) for n in range(4, 10)])

    def after(page: int) -> None:
        edit(crm.box, page, 2, 50 + page)  # each page edits a record it has read

    assert crm.scan("/v2/leads", per_page=3, sort_by="id:asc", on_page=after) == list(range(1, 10))


# ---------------------------------------------------------------------------------------------------------------
# paging


def test_next_page_only_while_another_page_exists(crm: Api) -> None:
    """links.next_page is present only when more records follow; meta.count is the page's item count."""
    crm.box.append("leads", [item("lead", lead(n), event_time=at(10)) for n in range(4, 7)])  # 6 leads
    first = crm.get("/v2/leads", per_page=3, sort_by="id").json()
    assert first["meta"]["count"] == 3
    assert "page=2" in first["meta"]["links"]["next_page"]
    second = crm.http.get(first["meta"]["links"]["next_page"]).json()
    assert [i["data"]["id"] for i in second["items"]] == [4, 5, 6]
    assert "next_page" not in second["meta"]["links"]
    assert "page=2" in second["meta"]["links"]["self"]
    beyond = crm.get("/v2/leads", per_page=3, page=3).json()
    assert (beyond["items"], beyond["meta"]["count"], "next_page" in beyond["meta"]["links"]) == ([], 0, False)


def test_per_page_is_at_most_100(crm: Api) -> None:
    """per_page=100 is served; 101 is 400 invalid_param on per_page; the default is 25."""
    crm.box.append("leads", [item("lead", lead(n), event_time=at(10)) for n in range(4, 140)])
    assert len(crm.ids("/v2/leads", per_page=100)) == 100
    assert len(crm.ids("/v2/leads")) == 25
    refused = crm.get("/v2/leads", per_page=101)
    assert refused.status_code == 400
    assert refused.json()["errors"][0]["error"]["field"] == "per_page"


# ---------------------------------------------------------------------------------------------------------------
# filters


@pytest.mark.parametrize(
    ("path", "params", "expected"),
    [
        ("/v2/leads", {"email": "ada@example.org"}, [1]),
        ("/v2/leads", {"email": "bob@example.org"}, []),  # exact by default
        ("/v2/leads", {"first_name": "Ada"}, [3, 1]),
        ("/v2/leads", {"owner_id": "102"}, [1]),
        ("/v2/leads", {"creator_id": "103"}, [2]),
        ("/v2/leads", {"ids": "3,1", "first_name": "Ada", "sort_by": "id"}, [1, 3]),
        ("/v2/contacts", {"is_organization": "true"}, [13]),
        ("/v2/contacts", {"contact_id": "13"}, [14, 11]),
        ("/v2/contacts", {"address[city]": "Kraków"}, [11]),
        ("/v2/deals", {"contact_id": "11"}, [22, 23]),
        ("/v2/deals", {"organization_id": "13"}, [22, 23]),
        ("/v2/deals", {"stage_id": "32"}, [21, 22]),
        ("/v2/orders", {"deal_id": "21"}, [42]),
        ("/v2/notes", {"resource_type": "lead"}, [72, 73]),
        ("/v2/notes", {"resource_type": "lead", "resource_id": "2"}, [73]),
        ("/v2/notes", {"q": "quote"}, [71, 73]),
        ("/v2/stages", {"pipeline_id": "2"}, [33]),
        ("/v2/stages", {"active": "true"}, [31, 32, 33]),  # documented as unsupported: accepted, no effect
        ("/v2/products", {"active": "true"}, [62]),
        ("/v2/lead_sources", {"name": "Referral"}, [6]),
        ("/v2/orders/41/line_items", {"ids": "52,53"}, [52]),
    ],
)
def test_filters_narrow_a_collection(crm: Api, path: str, params: dict[str, str], expected: list[int]) -> None:
    """Each documented filter keeps exactly the matching records, in the collection's order."""
    assert crm.ids(path, **params) == expected


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v2/leads", {"owner_id": "me"}, "owner_id"),
        ("/v2/contacts", {"is_organization": "yes"}, "is_organization"),
        ("/v2/notes", {"resource_type": "order"}, "resource_type"),
        ("/v2/deals", {"sort_by": "colour"}, "sort_by"),
        ("/v2/leads", {"updated_since": "2024-01-01"}, "updated_since"),  # there is no such filter on v2
        ("/v2/orders/41/line_items", {"per_page": "500"}, "per_page"),
    ],
)
def test_bad_or_unknown_parameters_get_400(crm: Api, path: str, params: dict[str, str], field: str) -> None:
    """A filter value of the wrong type, or a parameter Sell does not document, is 400 invalid_param naming it."""
    response = crm.get(path, **params)
    assert response.status_code == 400
    error = response.json()["errors"][0]["error"]
    assert (error["code"], error["field"]) == ("invalid_param", field)


def test_unknown_parameters_can_be_ignored_and_email_matched_without_case(crm: Api) -> None:
    """unknown_params="ignore" serves the list unfiltered; email_filter="casefold" matches e-mails in any case."""
    crm.box.configure(unknown_params="ignore", email_filter="casefold")
    assert crm.ids("/v2/leads", updated_since="2024-01-01", sort_by="id") == [1, 2, 3]
    assert crm.ids("/v2/leads", email="bob@example.org") == [2]


# ---------------------------------------------------------------------------------------------------------------
# sources, pipelines, products, line items


def test_lead_and_deal_sources_are_kept_apart(crm: Api) -> None:
    """A lead source and a deal source may share an id; /v2/sources lists the deal sources, typed "source"."""
    lead_source = crm.get("/v2/lead_sources/5").json()
    deal_source = crm.get("/v2/deal_sources/5").json()
    assert (lead_source["data"]["name"], lead_source["meta"]["type"]) == ("Website", "lead_source")
    assert (deal_source["data"]["name"], deal_source["meta"]["type"]) == ("Trade show", "deal_source")
    listed = crm.get("/v2/sources").json()["items"]
    assert [(i["data"]["name"], i["meta"]["type"]) for i in listed] == [("Trade show", "source")]
    assert crm.get("/v2/deal_sources/6").status_code == 404
    assert crm.box.state()["records"]["lead_source"] == 2


def test_pipelines_are_known_from_their_stages(crm: Api) -> None:
    """Every pipeline a stage names is listed under /v2/pipelines and readable by id."""
    first = crm.get("/v2/pipelines/1").json()
    assert first["meta"]["type"] == "pipeline"
    assert first["data"]["name"] == "Sales Pipeline"
    assert crm.get("/v2/pipelines/3").status_code == 404


def test_products_money_and_line_items_by_id(crm: Api) -> None:
    """Products carry cost and prices as strings; a line item is readable under its order, and only there."""
    product = crm.get("/v2/products/61").json()["data"]
    assert (product["cost"], product["prices"]) == ("10.00", [{"amount": "99.00", "currency": "EUR"}])
    line = crm.get("/v2/orders/41/line_items/52").json()
    assert line["meta"]["type"] == "line_item"
    assert (line["data"]["price"], line["data"]["value"], line["data"]["quantity"]) == ("99.00", "198.00", 2)
    assert "order_id" not in line["data"]
    assert crm.get("/v2/orders/42/line_items/52").status_code == 404


def test_money_as_numbers_is_the_other_reading(crm: Api) -> None:
    """money_as="number" serves deal values, line item money and product prices as JSON numbers."""
    crm.box.configure(money_as="number")
    assert crm.get("/v2/deals/22").json()["data"]["value"] == 25.5
    assert crm.get("/v2/orders/41/line_items/52").json()["data"]["price"] == 99
    product = crm.get("/v2/products/62").json()["data"]
    assert (product["cost"], product["prices"][0]["amount"]) == (5, 15.5)


def test_ids_documented_as_strings_are_numbers_unless_switched(crm: Api) -> None:
    """order.deal_id and line_item.product_id are numbers; ids_as="string" sends them as strings, v2 and Firehose."""
    assert crm.get("/v2/orders/42").json()["data"]["deal_id"] == 21
    assert crm.get("/v2/orders/41/line_items/52").json()["data"]["product_id"] == 61
    crm.box.configure(ids_as="string")
    assert crm.get("/v2/orders/42").json()["data"]["deal_id"] == "21"
    assert crm.get("/v2/orders/41/line_items/52").json()["data"]["product_id"] == "61"
    orders = crm.get("/v3/orders/stream", position="tail").json()["items"]
    assert [o["data"]["deal_id"] for o in orders] == ["21", "22"]
    items = crm.get("/v3/line_items/stream", position="tail").json()["items"]
    assert {i["data"]["product_id"] for i in items} == {"61", "62"}
    assert {i["data"]["order_id"] for i in items} == {41, 42}  # only the documented-as-string ids change


@pytest.mark.parametrize("stream", ["products", "tasks", "users", "appointments"])
def test_every_documented_stream_is_served(crm: Api, stream: str) -> None:
    """The Firehose serves every stream the contract lists (products with its items; the others empty here)."""
    page = crm.get(f"/v3/{stream}/stream", position="tail")
    assert page.status_code == 200
    assert (len(page.json()["items"]) == 2) is (stream == "products")


def test_the_v2_version_is_the_sequence_unless_switched(crm: Api) -> None:
    """meta.version is the record's Firehose sequence; version_as="counter" serves a version of its own that still
    rises with every change (nothing public says the two count alike)."""
    crm.box.append("leads", [item("lead", lead(1, first_name="Ann"), action="updated", sequence=2, event_time=at(9))])
    assert crm.get("/v2/leads/1").json()["meta"]["version"] == 2
    crm.box.configure(version_as="counter")
    assert crm.get("/v2/leads/1").json()["meta"]["version"] == 1002
    assert crm.get("/v2/leads/3").json()["meta"]["version"] == 1001


def test_the_request_log_lists_every_api_request_with_its_query(crm: Api) -> None:
    """GET /_sandbox/requests lists each API request (method, path, query, status), not the control ones; a path
    prefix narrows it and DELETE clears it."""
    crm.get("/v2/leads", page="2", per_page="1", sort_by="id:asc")
    crm.get("/v2/contacts/999")
    log = [
        {k: v for k, v in r.items() if k != "at"}
        for r in crm.http.get("/_sandbox/requests", params={"path": "/v2/"}).json()["requests"]
    ]
    assert log[-2:] == [
        {"method": "GET", "path": "/v2/leads", "query": "page=2&per_page=1&sort_by=id%3Aasc", "status": 200},
        {"method": "GET", "path": "/v2/contacts/999", "query": "", "status": 404},
    ]
    assert all(not r["path"].startswith("/_sandbox/") for r in crm.box.requests())
    assert crm.http.delete("/_sandbox/requests").status_code == 200
    assert crm.box.requests() == []


def test_reads_can_lag_behind_the_firehose(crm: Api) -> None:
    """v2_lag serves each record as it was that many seconds ago (a replica): an edit made since shows its old
    version, a record created since is not listed yet, one deleted since still is."""
    box = crm.box
    box.append("leads", [item("lead", lead(1, first_name="Newer"), action="updated", sequence=2, event_time=at(59.9))])
    box.append("leads", [item("lead", lead(4, first_name="Fresh"), event_time=at(59.9))])
    box.append("leads", [item("lead", {"id": 3}, action="deleted", sequence=2, event_time=at(59.9))])
    assert crm.get("/v2/leads/1").json()["data"]["first_name"] == "Newer"
    box.configure(v2_lag=30)
    assert crm.get("/v2/leads/1").json()["data"]["first_name"] == "Ada"
    listed = crm.get("/v2/leads", sort_by="id:asc").json()["items"]
    assert [i["data"]["id"] for i in listed] == [1, 2, 3]
    assert crm.get("/v2/leads/4").status_code == 404
