"""The Sell sandbox over real loopback HTTP: the Firehose, v2 reads, errors, rate limits, knobs, control, faults."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import msgspec
import pytest

from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.sell.history import item
from syncd.sandbox.server import ServerThread
from syncd.sell.normalise import normalise
from syncd.sell.wire import decode_page
from syncd.units import Rate

T0 = datetime(2024, 3, 1, 10, 0, tzinfo=UTC)
TOKEN = "sandbox-token-1"
UA = "syncd-tests/1.0"


class FakeClock:
    def __init__(self, now: datetime) -> None:
        self.now = now.timestamp()

    def __call__(self) -> float:
        return self.now


def leads(count: int, *, first_id: int = 1, at: datetime = T0) -> list[dict[str, Any]]:
    """`count` lead creations, one a second from `at`."""
    return [
        item("lead", {"id": first_id + n, "email": f"p{first_id + n}@example.org"},
             event_time=at + timedelta(seconds=n))
        for n in range(count)
    ]  # fmt: skip


class Slot:
    """An ASGI app that forwards to whichever sandbox a test installed (one server serves the whole module)."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


class Sell:
    """A sandbox served on loopback, with a client that authenticates like syncd does."""

    def __init__(self, sandbox: SellSandbox, url: str) -> None:
        self.sandbox = sandbox
        self.url = url
        self.client = httpx.Client(
            base_url=url, headers={"Authorization": f"Bearer {TOKEN}", "User-Agent": UA}, timeout=10
        )

    def stream(self, stream: str = "leads", **params: Any) -> httpx.Response:
        return self.client.get(f"/v3/{stream}/stream", params=params)

    def page(self, stream: str = "leads", **params: Any) -> dict[str, Any]:
        response = self.stream(stream, **params)
        assert response.status_code == 200, response.text
        decode_page(response.content)  # a valid page for the real decoder
        body: dict[str, Any] = response.json()
        return body

    def drain(self, stream: str = "leads", position: str = "tail", limit: int = 100) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for _ in range(10_000):
            body = self.page(stream, position=position, limit=limit)
            items += body["items"]
            position = body["meta"]["position"]
            if body["meta"]["top"]:
                return items
        raise AssertionError("the stream never reached top")

    def control(self, path: str, body: Any) -> httpx.Response:
        return self.client.post(f"/_sandbox/{path}", json=body)


@pytest.fixture(scope="module")
def servers() -> Iterator[list[tuple[Slot, ServerThread]]]:
    slots = [Slot(), Slot()]
    threads = [ServerThread(slot).start() for slot in slots]
    yield list(zip(slots, threads, strict=True))
    for thread in threads:
        thread.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0 + timedelta(hours=1))


@pytest.fixture
def make(clock: FakeClock, servers: list[tuple[Slot, ServerThread]]) -> Iterator[Any]:
    started: list[Sell] = []

    def start(**options: Any) -> Sell:
        options.setdefault("rate", None)
        sandbox = SellSandbox(tokens=[TOKEN], clock=clock, seed=1, **options)
        slot, thread = servers[len(started)]
        slot.app = sandbox.app
        sell = Sell(sandbox, thread.url)
        started.append(sell)
        return sell

    yield start
    for sell in started:
        sell.client.close()


@pytest.fixture
def sell(make: Any) -> Sell:
    sell: Sell = make()
    sell.sandbox.append("leads", leads(5))
    return sell


def error_of(response: httpx.Response) -> dict[str, Any]:
    """The error envelope's single error, after checking the envelope itself."""
    body = response.json()
    assert body["meta"]["type"] == "errors"
    assert body["meta"]["http_status"].startswith(f"{response.status_code} ")
    assert body["meta"]["logref"] == response.headers["x-request-id"]
    [entry] = body["errors"]
    assert entry["meta"]["type"] == "error"
    assert entry["meta"]["links"]["more_info"].startswith("https://")
    error: dict[str, Any] = entry["error"]
    assert error["message"]
    return error


# ---------------------------------------------------------------------------------------------------------------
# auth, user agent, headers


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer wrong-token", f"Basic {TOKEN}", "Bearer", TOKEN, f"Bearer {TOKEN}x"],
)
def test_requests_without_a_valid_bearer_token_get_401(sell: Sell, authorization: str | None) -> None:
    """A missing, wrong or non-Bearer token is answered 401 `unauthorized`, without echoing the token."""
    headers = {"User-Agent": UA}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = httpx.get(f"{sell.url}/v3/leads/stream", params={"position": "tail"}, headers=headers)
    assert response.status_code == 401
    assert error_of(response)["code"] == "unauthorized"
    assert TOKEN not in response.text


def test_user_agent_is_required_unless_switched_off(make: Any) -> None:
    """Without a User-Agent the answer is 400 `invalid_user_agent`; with require_user_agent=False it is served."""
    strict, lenient = make(), make(require_user_agent=False)
    response = strict.client.get("/v3/leads/stream", params={"position": "tail"}, headers={"User-Agent": ""})
    assert response.status_code == 400
    assert error_of(response)["code"] == "invalid_user_agent"
    served = lenient.client.get("/v3/leads/stream", params={"position": "tail"}, headers={"User-Agent": ""})
    assert served.status_code == 200


def test_every_response_has_the_content_type_and_a_request_id(sell: Sell) -> None:
    """200s and errors alike carry `application/json; charset=utf-8` and a distinct uuid X-Request-Id."""
    responses = [
        sell.stream(position="tail"),
        sell.stream(position="garbage"),
        sell.client.get("/v3/nope/stream", params={"position": "tail"}),
        sell.client.get("/v2/leads/1"),
        sell.client.get("/v2/leads/999"),
        sell.client.get("/no/such/path"),
        httpx.get(f"{sell.url}/v2/leads", headers={"User-Agent": UA}),
    ]
    assert [r.status_code for r in responses] == [200, 400, 404, 200, 404, 404, 401]
    ids = {r.headers["x-request-id"] for r in responses}
    assert len(ids) == len(responses)
    for response in responses:
        assert response.headers["content-type"] == "application/json; charset=utf-8"
        assert len(response.headers["x-request-id"]) == 36


# ---------------------------------------------------------------------------------------------------------------
# positions and pages


def test_tail_replays_the_retained_history_page_by_page(sell: Sell) -> None:
    """`tail` starts at the oldest event; following `meta.position` reads the rest in order until top."""
    first = sell.page(position="tail", limit=2)
    assert [i["data"]["id"] for i in first["items"]] == [1, 2]
    assert first["meta"]["top"] is False
    second = sell.page(position=first["meta"]["position"], limit=2)
    assert [i["data"]["id"] for i in second["items"]] == [3, 4]
    last = sell.page(position=second["meta"]["position"], limit=2)
    assert [i["data"]["id"] for i in last["items"]] == [5]
    assert last["meta"]["top"] is True  # a page at the top may still carry items
    again = sell.page(position=last["meta"]["position"])
    assert again["items"] == []
    assert again["meta"]["top"] is True
    assert again["meta"]["position"] == last["meta"]["position"]


def test_items_are_served_exactly_as_appended(sell: Sell) -> None:
    """Items come back byte-for-byte equal (as JSON) to what was appended, and normalise."""
    appended = leads(3, first_id=100, at=T0 + timedelta(minutes=5))
    sell.sandbox.append("leads", appended)
    assert sell.drain()[-3:] == appended
    assert normalise("leads", msgspec.json.encode(appended[0])).record_id == 100


def test_top_starts_at_the_head_with_an_empty_page(sell: Sell) -> None:
    """`top` answers an empty page at the head; only events appended afterwards are read from it."""
    top = sell.page(position="top")
    assert top["items"] == []
    assert top["meta"]["top"] is True
    sell.sandbox.append("leads", leads(2, first_id=10))
    after = sell.page(position=top["meta"]["position"])
    assert [i["data"]["id"] for i in after["items"]] == [10, 11]
    assert after["meta"]["top"] is True


def test_positions_are_opaque_base64(sell: Sell) -> None:
    """Positions are base64 text, different for each offset, and stable for the same one."""
    one = sell.page(position="tail", limit=1)["meta"]["position"]
    two = sell.page(position=one, limit=1)["meta"]["position"]
    assert one != two
    assert sell.page(position="tail", limit=1)["meta"]["position"] == one
    base64.urlsafe_b64decode(one)


@pytest.mark.parametrize(
    ("position", "reason"),
    [
        ("", "position is required"),
        ("not-base64!", "not a position"),
        (base64.urlsafe_b64encode(b"v1:contacts:1").decode(), "not a position of the leads stream"),
        (base64.urlsafe_b64encode(b"v1:leads:99").decode(), "ahead of the stream"),
        (base64.urlsafe_b64encode(b"hello").decode(), "not a position"),
    ],
)
def test_bad_positions_get_400_invalid_param(sell: Sell, position: str, reason: str) -> None:
    """A missing, garbled, foreign or future position is 400 `invalid_param` on field position."""
    response = sell.stream(position=position) if position else sell.client.get("/v3/leads/stream")
    assert response.status_code == 400
    error = error_of(response)
    assert (error["code"], error["field"]) == ("invalid_param", "position")
    assert reason in error["message"]


@pytest.mark.parametrize("limit", ["0", "101", "-1", "abc", "2.5", ""])
def test_limits_outside_1_to_100_get_400(sell: Sell, limit: str) -> None:
    """limit must be a whole number from 1 to 100."""
    response = sell.stream(position="tail", limit=limit)
    assert response.status_code == 400
    assert error_of(response)["field"] == "limit"


@pytest.mark.parametrize(("limit", "expected"), [(None, 25), (1, 1), (100, 100)])
def test_limit_bounds_the_page(make: Any, limit: int | None, expected: int) -> None:
    """The default limit is 25; 1 and 100 are allowed and bound the page size."""
    sell = make()
    sell.sandbox.append("leads", leads(130))
    params = {"position": "tail"} if limit is None else {"position": "tail", "limit": limit}
    assert len(sell.page(**params)["items"]) == expected


def test_links_next_is_a_full_url_or_empty_at_the_top(sell: Sell) -> None:
    """links.next is a full URL carrying the new position; at the top it may be "" (both readings)."""
    sell.sandbox.configure(empty_next_at_top=0.0)
    first = sell.page(position="tail", limit=2)
    url = first["meta"]["links"]["next"]
    assert url.startswith(f"{sell.url}/v3/leads/stream?position=")
    followed = sell.client.get(url).json()
    assert followed == sell.page(position=first["meta"]["position"])
    at_top = sell.page(position="top")
    assert at_top["meta"]["links"]["next"].startswith("http")
    sell.sandbox.configure(empty_next_at_top=1.0)
    assert sell.page(position="top")["meta"]["links"]["next"] == ""
    assert sell.page(position="tail", limit=1)["meta"]["links"]["next"] != ""


def test_empty_pages_keep_top_false_while_events_wait(make: Any) -> None:
    """With empty_pages, a page may hold no items yet say top false; the position does not move."""
    sell = make(empty_pages=1.0)
    sell.sandbox.append("leads", leads(3))
    first = sell.page(position="tail")
    assert first["items"] == []
    assert first["meta"]["top"] is False
    sell.sandbox.configure(empty_pages=0.0)
    assert len(sell.page(position=first["meta"]["position"])["items"]) == 3


def test_short_pages_still_deliver_everything_once(make: Any) -> None:
    """Short pages hold fewer items than available and than the limit, yet a drain reads each item once, in order."""
    sell = make(short_pages=1.0)
    sell.sandbox.append("leads", leads(40))
    first = sell.page(position="tail", limit=10)
    assert 1 <= len(first["items"]) < 10
    drained = [i["data"]["id"] for i in sell.drain(limit=10)]
    assert drained == list(range(1, 41))


def test_duplicates_redeliver_the_previous_pages_last_item(make: Any) -> None:
    """With duplicates, a page starts with the previous page's last item again; nothing is lost."""
    sell = make(duplicates=1.0)
    sell.sandbox.append("leads", leads(10))
    first = sell.page(position="tail", limit=4)
    second = sell.page(position=first["meta"]["position"], limit=4)
    assert second["items"][0] == first["items"][-1]
    assert len(second["items"]) <= 4
    ids = [i["data"]["id"] for i in sell.drain(limit=4)]
    assert sorted(set(ids)) == list(range(1, 11))
    assert len(ids) > 10


def test_history_generated_by_the_sandbox_drains_and_normalises(make: Any) -> None:
    """A generated history of 20,000 events loads, and every stream drains to items that normalise."""
    sell = make()
    response = sell.control("events", {"generate": 20_000, "seed": 3, "poison": 2})
    assert response.json()["appended"] == 20_000
    state = sell.client.get("/_sandbox/state").json()["streams"]
    assert sum(s["retained"] for s in state.values()) == 20_000
    for stream in ("contacts", "deals", "orders"):
        items = sell.drain(stream)
        assert len(items) == state[stream]["appended"]
        for wire in items:
            normalise(stream, msgspec.json.encode(wire))


# ---------------------------------------------------------------------------------------------------------------
# retention and expiry


def test_expired_positions_get_410_with_the_envelope(sell: Sell) -> None:
    """After expiry a position before the oldest retained event is 410 Gone; tail starts after the loss."""
    kept = sell.page(position="tail", limit=2)["meta"]["position"]
    assert sell.control("expire", {"stream": "leads", "keep": 1}).json() == {"dropped": 4}
    response = sell.stream(position=kept)
    assert response.status_code == 410
    assert error_of(response)["field"] == "position"
    assert [i["data"]["id"] for i in sell.page(position="tail")["items"]] == [5]


def test_events_older_than_the_retention_window_are_dropped(make: Any, clock: FakeClock) -> None:
    """Events older than clock - retention leave the stream; a position that lost unread events gets 410."""
    sell = make(retention=3600)
    sell.sandbox.append("leads", leads(3, at=T0 + timedelta(minutes=30)))
    start = sell.page(position="tail", limit=1)["meta"]["position"]
    clock.now += 1800 + 1.5  # the first two events (at +30:00 and +30:01) are now older than an hour
    assert [i["data"]["id"] for i in sell.page(position="tail")["items"]] == [3]
    assert sell.stream(position=start).status_code == 410
    state = sell.client.get("/_sandbox/state").json()["streams"]["leads"]
    assert (state["retained"], state["appended"]) == (1, 3)


def test_a_reader_at_the_head_keeps_its_position_when_everything_expires(sell: Sell, clock: FakeClock) -> None:
    """Expiry of events already read does not invalidate the reader's position."""
    head = sell.drain()
    position = sell.page(position="top")["meta"]["position"]
    clock.now += 100 * 3600
    assert len(head) == 5
    assert sell.page(position=position)["items"] == []


# ---------------------------------------------------------------------------------------------------------------
# rate limit


def test_rate_limit_is_per_token_over_all_endpoints(make: Any, clock: FakeClock) -> None:
    """Past the rate: 429 `rate_limit_exceeded`, counting v2 and v3 alike, per token, until the window rolls on."""
    sell = make(rate=Rate(3, 1))
    sell.sandbox.set_tokens([TOKEN, "other-token"])
    assert sell.stream(position="tail").status_code == 200
    assert sell.client.get("/v2/leads").status_code == 200
    assert sell.client.get("/v2/stages").status_code == 200
    refused = sell.stream(position="tail")
    assert refused.status_code == 429
    assert error_of(refused)["code"] == "rate_limit_exceeded"
    other = sell.client.get("/v2/leads", headers={"Authorization": "Bearer other-token"})
    assert other.status_code == 200
    clock.now += 1.01
    assert sell.stream(position="tail").status_code == 200
    assert sell.client.get("/_sandbox/state").json()["throttled"] == 1


def test_throttling_can_answer_409_with_an_empty_body(make: Any) -> None:
    """The throttle knobs give the contract's other readings: status 409, and an empty body."""
    sell = make(rate=Rate(1, 60))
    sell.sandbox.configure(throttle_status=409, throttle_body="empty")
    assert sell.stream(position="tail").status_code == 200
    refused = sell.stream(position="tail")
    assert refused.status_code == 409
    assert refused.content == b""
    assert refused.headers["x-request-id"]
    sell.sandbox.configure(throttle_status=429, throttle_body="envelope")
    assert error_of(sell.stream(position="tail"))["code"] == "rate_limit_exceeded"


def test_rate_can_be_changed_or_lifted_at_run_time(make: Any) -> None:
    """POST /_sandbox/behaviour sets the rate ("2/min") or lifts it (null)."""
    sell = make()
    assert sell.control("behaviour", {"rate": "1/min"}).json()["rate"] == "1/min"
    assert sell.stream(position="tail").status_code == 200
    assert sell.stream(position="tail").status_code == 429
    assert sell.control("behaviour", {"rate": None}).status_code == 200
    assert all(sell.stream(position="tail").status_code == 200 for _ in range(5))


# ---------------------------------------------------------------------------------------------------------------
# deleted items


def test_deleted_items_can_be_served_bare_or_with_the_snapshot(make: Any) -> None:
    """deleted_data reshapes deleted items: "id_only" strips data to the id; "snapshot" fills in the last one."""
    sell = make()
    created = item("lead", {"id": 7, "email": "x@example.org"}, event_time=T0)
    sell.sandbox.configure(deleted_data="id_only")
    sell.sandbox.append("leads", [created, item("lead", created["data"], action="deleted", sequence=2, event_time=T0)])
    sell.sandbox.configure(deleted_data="snapshot")
    sell.sandbox.append("leads", [item("lead", {"id": 7}, action="deleted", sequence=3, event_time=T0)])
    served = sell.drain()
    assert [i["data"] for i in served] == [created["data"], {"id": 7}, created["data"]]


# ---------------------------------------------------------------------------------------------------------------
# v2


@pytest.fixture
def crm(make: Any) -> Sell:
    sell: Sell = make()
    tags = [{"data": {"id": 1, "name": "vip", "resource_type": "deal"}, "meta": {"type": "tag"}}]
    tier = {"value": {"id": 1, "name": "Gold"},
            "custom_field": {"data": {"id": 3, "name": "Tier", "type": "list", "resource_type": "deal"},
                             "meta": {"type": "custom_field"}}}  # fmt: skip
    sell.sandbox.append("leads", leads(30))
    sell.sandbox.append("leads", [
        item("lead", {"id": 2, "email": "new@example.org"}, action="updated", sequence=2,
             event_time=T0 + timedelta(hours=1), previous={"email": "p2@example.org"}),
        item("lead", {"id": 3}, action="deleted", sequence=2, event_time=T0 + timedelta(hours=1)),
    ])  # fmt: skip
    sell.sandbox.append("deals", [item("deal", {"id": 50, "value": "1250.50", "tags": tags,
                                                "custom_field_values": [tier]}, event_time=T0)])  # fmt: skip
    sell.sandbox.append("orders", [item("order", {"id": 60, "deal_id": 50, "discount": 10}, event_time=T0)])
    sell.sandbox.append("line_items", [
        item("line_item", {"id": 70 + n, "order_id": 60, "price": "9.99", "quantity": 2}, event_time=T0)
        for n in range(3)
    ])  # fmt: skip
    return sell


def test_v2_lists_live_records_page_by_page(crm: Sell) -> None:
    """GET /v2/leads?sort_by=id:asc pages through live records (deleted ones left out) with links.next_page while
    more remain."""
    first = crm.client.get("/v2/leads", params={"per_page": 10, "sort_by": "id:asc"}).json()
    assert first["meta"]["type"] == "collection"
    assert first["meta"]["count"] == 10
    assert [i["data"]["id"] for i in first["items"]] == [1, 2, 4, 5, 6, 7, 8, 9, 10, 11]
    ids: list[int] = []
    url: str | None = f"{crm.url}/v2/leads?per_page=10&sort_by=id:asc"
    while url:
        body = crm.client.get(url).json()
        ids += [i["data"]["id"] for i in body["items"]]
        url = body["meta"]["links"].get("next_page")
    assert ids == [n for n in range(1, 31) if n != 3]


def test_v2_filters_and_sorts(crm: Sell) -> None:
    """ids= picks records (in the list's order); sort_by=updated_at:desc puts the latest change first."""
    picked = crm.client.get("/v2/leads", params={"ids": "5,2,3,99", "sort_by": "id:asc"}).json()
    assert [i["data"]["id"] for i in picked["items"]] == [2, 5]
    by_default = crm.client.get("/v2/leads", params={"ids": "5,2,3,99"}).json()
    assert [i["data"]["id"] for i in by_default["items"]] == [5, 2]  # leads: updated_at:asc, lead 2 changed last
    latest = crm.client.get("/v2/leads", params={"sort_by": "updated_at:desc", "per_page": 2}).json()
    assert [i["data"]["id"] for i in latest["items"]] == [2, 30]
    backwards = crm.client.get("/v2/leads", params={"sort_by": "id:desc", "per_page": 1}).json()
    assert backwards["items"][0]["data"]["id"] == 30


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"per_page": 101}, "per_page"),
        ({"per_page": 0}, "per_page"),
        ({"page": 0}, "page"),
        ({"sort_by": "phone"}, "sort_by"),
        ({"sort_by": "id:sideways"}, "sort_by"),
        ({"ids": "1,x"}, "ids"),
    ],
)
def test_v2_bad_parameters_get_400(crm: Sell, params: dict[str, Any], field: str) -> None:
    """Out-of-range paging, unknown sort keys and bad ids are 400 `invalid_param` naming the parameter."""
    response = crm.client.get("/v2/leads", params=params)
    assert response.status_code == 400
    assert error_of(response)["field"] == field


def test_v2_records_have_v2_shapes(crm: Sell) -> None:
    """A v2 record has custom_fields by name, tag names, money as a string, updated_at, and meta type/version."""
    deal = crm.client.get("/v2/deals/50").json()
    assert deal["meta"] == {"type": "deal", "version": 1}
    data = deal["data"]
    assert data["custom_fields"] == {"Tier": "Gold"}
    assert "custom_field_values" not in data
    assert data["tags"] == ["vip"]
    assert data["value"] == "1250.50"
    assert data["updated_at"] == "2024-03-01T10:00:00Z"
    lead = crm.client.get("/v2/leads/2").json()
    assert (lead["data"]["email"], lead["meta"]["version"]) == ("new@example.org", 2)


@pytest.mark.parametrize(
    "path", ["/v2/leads/3", "/v2/leads/999", "/v2/widgets/1", "/v2/widgets", "/v2/orders/1/line_items"]
)
def test_v2_unknown_or_deleted_records_get_404(crm: Sell, path: str) -> None:
    """Deleted and unknown records or resources are 404 `not_found` in the error envelope."""
    response = crm.client.get(path)
    assert response.status_code == 404
    assert error_of(response)["code"] == "not_found"


def test_v2_line_items_of_an_order(crm: Sell) -> None:
    """GET /v2/orders/{id}/line_items lists the order's line items with money as strings."""
    body = crm.client.get("/v2/orders/60/line_items").json()
    assert [i["data"]["id"] for i in body["items"]] == [70, 71, 72]
    assert body["items"][0]["data"]["price"] == "9.99"
    assert body["items"][0]["meta"]["type"] == "line_item"


# ---------------------------------------------------------------------------------------------------------------
# control endpoints and faults


def test_control_events_append_and_list(sell: Sell) -> None:
    """POST /_sandbox/events appends raw items; GET /_sandbox/events lists every retained item of a stream."""
    extra = leads(2, first_id=40)
    assert sell.control("events", {"stream": "leads", "items": extra}).json()["appended"] == 2
    listed = sell.client.get("/_sandbox/events", params={"stream": "leads"}).json()["items"]
    assert [i["data"]["id"] for i in listed] == [1, 2, 3, 4, 5, 40, 41]
    assert sell.control("events", {"stream": "widgets", "items": []}).status_code == 400
    assert sell.control("events", {"stream": "leads", "items": [1]}).status_code == 400
    assert sell.client.get("/_sandbox/events", params={"stream": "nope"}).status_code == 400


def test_tokens_can_be_revoked_and_restored(sell: Sell) -> None:
    """POST /_sandbox/tokens replaces the accepted tokens: revoked means 401, restored means 200."""
    assert sell.control("tokens", {"tokens": ["someone-else"]}).status_code == 200
    assert sell.stream(position="tail").status_code == 401
    sell.control("tokens", {"tokens": [TOKEN]})
    assert sell.stream(position="tail").status_code == 200


@pytest.mark.parametrize(
    "change",
    [
        {"short_pages": 2},
        {"duplicates": "often"},
        {"rate": "fast"},
        {"throttle_status": 500},
        {"throttle_body": "html"},
        {"deleted_data": "some"},
        {"require_user_agent": "yes"},
        {"colour": "blue"},
    ],
)
def test_bad_behaviour_changes_are_refused(sell: Sell, change: dict[str, Any]) -> None:
    """Unknown knobs and out-of-range values are 400 and change nothing."""
    before = sell.client.get("/_sandbox/behaviour").json()
    response = sell.control("behaviour", change)
    assert response.status_code == 400
    assert response.json()["error"]
    assert sell.client.get("/_sandbox/behaviour").json() == before


def test_state_counts_streams_requests_and_throttling(sell: Sell) -> None:
    """GET /_sandbox/state reports each stream (retained, appended, head) and API requests by status."""
    sell.stream(position="tail")
    sell.stream(position="garbage")
    state = sell.client.get("/_sandbox/state").json()
    leads_state = state["streams"]["leads"]
    assert (leads_state["retained"], leads_state["appended"]) == (5, 5)
    assert leads_state["head"] == sell.page(position="top")["meta"]["position"]
    assert state["requests"] == {"200": 1, "400": 1}
    assert state["throttled"] == 0
    assert set(state["streams"]) >= {"leads", "contacts", "deals", "notes", "orders", "line_items"}


def test_faults_apply_to_the_api(sell: Sell) -> None:
    """Shared faults (here a 503 once, then a malformed body once) hit API requests, then clear."""
    faults = [
        {"path": "/v3/leads", "status": 503, "times": 1},
        {"path": "/v3/leads", "malformed": True, "times": 1, "after": 1},
    ]
    assert sell.control("faults", faults).status_code == 200
    assert sell.stream(position="tail").status_code == 503
    broken = sell.stream(position="tail")
    assert broken.status_code == 200
    with pytest.raises(ValueError, match="Expecting"):
        broken.json()
    assert sell.stream(position="tail").status_code == 200
    state = sell.client.get("/_sandbox/state").json()
    assert state["requests"] == {"200": 2, "503": 1}
