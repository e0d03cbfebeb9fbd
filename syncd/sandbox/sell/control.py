"""The Sell sandbox's behaviour knobs and its control endpoints under `/_sandbox/` (no auth; tests and the demo).

POST /_sandbox/events     {"stream": "leads", "items": [...]}  or  {"generate": 1000, "seed": 1, "poison": 2}
                          or an account with a past: {"generate": 200, "records": 5000, "seed": 1} (5000 records
                          whose events expired, in the Core API only, then 200 live Firehose items); "products":
                          true/false (default: with records only) gives the account a product catalogue;
                          answers {"appended", "streams", "records": live records per kind}
GET  /_sandbox/events?stream=leads   every retained item of the stream, as served
POST /_sandbox/expire     {"stream": "leads" | null, "keep": 0}   drop all but the newest `keep` items
POST /_sandbox/tokens     {"tokens": ["..."]}                     the tokens that authenticate from now on
GET|POST /_sandbox/behaviour   {"short_pages": 0.1, "empty_pages": 0.1, "duplicates": 0.1, "rate": "10/s" | null,
                                "throttle_status": 429 | 409, "throttle_body": "envelope" | "empty",
                                "require_user_agent": true, "empty_next_at_top": 0.5,
                                "deleted_data": "as_sent" | "id_only" | "snapshot",
                                "money_as": "string" | "number", "ids_as": "number" | "string",
                                "version_as": "sequence" | "counter", "v2_lag": 0.0 (seconds),
                                "unknown_params": "reject" | "ignore", "email_filter": "exact" | "casefold",
                                "write_previous": "written" | "changed", "unchanged_write": "silent" | "event"}
                          (see `Behaviour`: each knob is one reading of an unconfirmed point of the contract)
GET  /_sandbox/state      streams (retained, appended, head, tail), request counts by status, throttled count,
                          live records per kind (the Core API's view)
GET  /_sandbox/requests?path=/v2/leads   the API requests answered, oldest first: {"requests": [{"method", "path",
                          "query", "status", "at"}]}; DELETE clears the log
GET  /_sandbox/writes?resource=leads&id=1   the v2 writes received, oldest first: {"resource", "id", "at", "status",
                          "body" (as sent), "changed" (Firehose names), "event" (whether one was appended), "version",
                          "problems" (fields of a 422)}; DELETE clears the log
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncd.sandbox.sell.responses import json_bytes, json_response
from syncd.sandbox.sell.shapes import IdsAs, MoneyAs, VersionAs
from syncd.units import Rate, parse_rate

if TYPE_CHECKING:
    from syncd.sandbox.sell.app import SellSandbox

DeletedData = Literal["as_sent", "id_only", "snapshot"]
DEFAULT_RATE = Rate(10, 1)  # Sell's documented limit: 36,000 requests an hour per token


@dataclass(frozen=True)
class Behaviour:
    """How the sandbox bends the contract's open points (probabilities are per request, from a seeded RNG)."""

    short_pages: float = 0.0  # fewer items than available (and than the limit)
    empty_pages: float = 0.0  # no items although more are waiting; top stays false
    duplicates: float = 0.0  # the previous page's last item comes again first
    rate: Rate | None = DEFAULT_RATE  # per token, over every API endpoint
    throttle_status: int = 429  # or 409, which a community client reports
    throttle_body: str = "envelope"  # or "empty"
    require_user_agent: bool = True
    empty_next_at_top: float = 0.5  # how often `links.next` is "" on a page at the top
    deleted_data: DeletedData = "as_sent"  # what `data` holds on deleted items
    money_as: MoneyAs = "string"  # v2 money: "1250.00", or a number (older payloads)
    ids_as: IdsAs = "number"  # order.deal_id, line_item.product_id: as shown (numbers), or as documented (strings)
    version_as: VersionAs = "sequence"  # v2 meta.version: the Firehose sequence, or a "counter" of its own
    v2_lag: float = 0.0  # seconds the Core API's reads lag behind (a replica): records as they were then
    unknown_params: str = "reject"  # a v2 list parameter Sell does not document: 400, or "ignore"
    email_filter: str = "exact"  # the v2 `email` filter: exact, or "casefold" (case-insensitive)
    write_previous: str = "written"  # a write's Firehose `previous`: every written key, or only the "changed" ones
    unchanged_write: str = "silent"  # a write that changes nothing: no event, same version; or "event"

    def to_json(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["rate"] = None if self.rate is None else str(self.rate)
        return data


_PROBABILITIES = ("short_pages", "empty_pages", "duplicates", "empty_next_at_top")
_CHOICES: dict[str, tuple[object, ...]] = {
    "throttle_status": (429, 409),
    "throttle_body": ("envelope", "empty"),
    "deleted_data": ("as_sent", "id_only", "snapshot"),
    "money_as": ("string", "number"),
    "ids_as": ("number", "string"),
    "version_as": ("sequence", "counter"),
    "unknown_params": ("reject", "ignore"),
    "email_filter": ("exact", "casefold"),
    "write_previous": ("written", "changed"),
    "unchanged_write": ("silent", "event"),
    "require_user_agent": (True, False),
}


def updated(behaviour: Behaviour, changes: dict[str, Any]) -> Behaviour:
    """`behaviour` with `changes` applied; ValueError on an unknown knob or a bad value."""
    unknown = set(changes) - {f.name for f in dataclasses.fields(Behaviour)}
    if unknown:
        raise ValueError(f"unknown behaviour keys: {', '.join(sorted(unknown))}")
    values: dict[str, Any] = {}
    for key, value in changes.items():
        if key in _PROBABILITIES:
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
                raise ValueError(f"{key}: expected a probability between 0 and 1, got {value!r}")
            values[key] = float(value)
        elif key == "v2_lag":
            if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 86400:
                raise ValueError(f"v2_lag: expected seconds from 0 to 86400, got {value!r}")
            values[key] = float(value)
        elif key == "rate":
            if value is not None and not isinstance(value, str):
                raise ValueError(f'rate: expected a rate such as "10/s" or null, got {value!r}')
            values[key] = None if value is None else parse_rate(value)
        elif not any(value == choice and type(value) is type(choice) for choice in _CHOICES[key]):
            expected = " or ".join(json.dumps(choice) for choice in _CHOICES[key])
            raise ValueError(f"{key}: expected {expected}, got {value!r}")
        else:
            values[key] = value
    return dataclasses.replace(behaviour, **values)


def _bad(message: str) -> Response:
    return json_response({"error": message}, 400)


async def _object(request: Request) -> dict[str, Any]:
    try:
        data = json.loads(await request.body() or b"{}")
    except ValueError:
        raise ValueError("the body is not valid JSON") from None
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object")
    return data


def _count(data: dict[str, Any], key: str, default: int) -> int:
    value = data.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{key}: expected a whole number >= 0, got {value!r}")
    return value


def control_routes(sandbox: SellSandbox) -> list[Route]:
    """The `/_sandbox/` routes of one sandbox (the shared fault routes are added separately)."""

    async def post_events(request: Request) -> Response:
        try:
            data = await _object(request)
            if "generate" in data:
                seed = data.get("seed", 0)
                if isinstance(seed, bool) or not isinstance(seed, int):
                    raise ValueError(f"seed: expected a whole number, got {seed!r}")
                products = data.get("products")
                if products is not None and not isinstance(products, bool):
                    raise ValueError(f"products: expected true, false or null, got {products!r}")
                records = _count(data, "records", 0) if data.get("records") is not None else None
                count = sandbox.generate(
                    _count(data, "generate", 0),
                    seed=seed,
                    poison=_count(data, "poison", 0),
                    records=records,
                    products=products,
                )
            else:
                stream, items = data.get("stream"), data.get("items")
                if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
                    raise ValueError("items: expected a list of Firehose items (objects)")
                if not isinstance(stream, str):
                    raise ValueError("stream: expected a stream name")
                sandbox.append(stream, items)
                count = len(items)
        except ValueError as exc:
            return _bad(str(exc))
        state = sandbox.state()
        return json_response({"appended": count, "streams": state["streams"], "records": state["records"]})

    async def get_events(request: Request) -> Response:
        try:
            body = sandbox.retained_json(request.query_params.get("stream", ""))
        except ValueError as exc:
            return _bad(str(exc))
        return json_bytes(body)

    async def expire(request: Request) -> Response:
        try:
            data = await _object(request)
            stream = data.get("stream")
            if stream is not None and not isinstance(stream, str):
                raise ValueError("stream: expected a stream name or null")
            dropped = sandbox.expire(stream, keep=_count(data, "keep", 0))
        except ValueError as exc:
            return _bad(str(exc))
        return json_response({"dropped": dropped})

    async def tokens(request: Request) -> Response:
        try:
            data = await _object(request)
            given = data.get("tokens")
            if not isinstance(given, list) or not all(isinstance(t, str) and t for t in given):
                raise ValueError("tokens: expected a list of non-empty strings")
        except ValueError as exc:
            return _bad(str(exc))
        sandbox.set_tokens(given)
        return json_response({"tokens": len(given)})

    async def behaviour(request: Request) -> Response:
        if request.method == "POST":
            try:
                sandbox.configure(**await _object(request))
            except ValueError as exc:
                return _bad(str(exc))
        return json_response(sandbox.behaviour.to_json())

    async def state(request: Request) -> Response:
        return json_response(sandbox.state())

    async def requests(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.clear_requests()
            return json_response({"requests": []})
        return json_response({"requests": sandbox.requests(request.query_params.get("path", ""))})

    async def writes(request: Request) -> Response:
        if request.method == "DELETE":
            sandbox.clear_writes()
            return json_response({"writes": []})
        resource, record_id = request.query_params.get("resource"), request.query_params.get("id")
        if record_id is not None and not record_id.isdigit():
            return _bad(f"id: expected a record id, got {record_id!r}")
        return json_response({"writes": sandbox.writes(resource, None if record_id is None else int(record_id))})

    return [
        Route("/_sandbox/events", post_events, methods=["POST"]),
        Route("/_sandbox/events", get_events, methods=["GET"]),
        Route("/_sandbox/expire", expire, methods=["POST"]),
        Route("/_sandbox/tokens", tokens, methods=["POST"]),
        Route("/_sandbox/behaviour", behaviour, methods=["GET", "POST"]),
        Route("/_sandbox/state", state, methods=["GET"]),
        Route("/_sandbox/writes", writes, methods=["GET", "DELETE"]),
        Route("/_sandbox/requests", requests, methods=["GET", "DELETE"]),
    ]
