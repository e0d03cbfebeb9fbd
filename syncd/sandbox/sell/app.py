"""The Zendesk Sell sandbox: the Firehose (`/v3/{stream}/stream`, every documented stream), the Core API v2 reads
(syncd.sandbox.sell.v2) and writes to leads and contacts (syncd.sandbox.sell.writes), as the contract describes.

Every API request needs `Authorization: Bearer <token>` (401 `unauthorized`), a User-Agent (400
`invalid_user_agent`, switchable) and stays within the per-token rate over all endpoints (429
`rate_limit_exceeded`, or 409 / an empty body by choice). Every response carries `Content-Type: application/json;
charset=utf-8` and an `X-Request-Id` equal to `meta.logref` of an error body. Firehose pages are slices of per-stream
logs; positions are opaque base64 offsets; events older than the retention window are dropped and a position that
lost events is answered 410. Knobs (short pages, empty pages with top false, duplicates, an empty `links.next` at the
top, what deleted items hold, how money and some ids are typed, how writes echo) let tests exercise each reading of
the contract's open points; the shared faults of `syncd.sandbox.faults` apply on top. An account may have a past
older than the retention (`generate(..., records=N)`): its records are in the Core API only. Control endpoints:
`syncd.sandbox.sell.control`.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import msgspec
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncd.sandbox.faults import CONTROL_PREFIX, FaultMiddleware, FaultPlan, fault_routes
from syncd.sandbox.ratelimit import RollingWindow
from syncd.sandbox.sell.control import DEFAULT_RATE, Behaviour, control_routes, updated
from syncd.sandbox.sell.history import (
    Account,
    catalogue_products,
    collector_paused,
    generate_account,
    generate_history,
)
from syncd.sandbox.sell.records import RecordIndex, Snapshot, event_epoch
from syncd.sandbox.sell.responses import RequestIdMiddleware, error_response, json_bytes
from syncd.sandbox.sell.shapes import STRING_IDS, firehose_item, v2_item
from syncd.sandbox.sell.streams import SELL_STREAMS, PositionError, StreamLog, decode_position, encode_position
from syncd.sandbox.sell.v2 import V2Api
from syncd.sandbox.sell.writes import WriteApi
from syncd.units import Rate

DEFAULT_LIMIT = 25
REQUEST_LOG = 1_000_000  # requests kept in the log (a bound on the memory a long run takes)
_encoder = msgspec.json.Encoder()


class SellSandbox:
    """A simulated Sell account: Firehose streams, the v2 records behind them, tokens, a rate limit, faults."""

    def __init__(
        self,
        *,
        tokens: Iterable[str],
        rate: Rate | None = DEFAULT_RATE,
        retention: float = 72 * 3600,
        clock: Callable[[], float] = time.time,
        seed: int = 0,
        short_pages: float = 0.0,
        empty_pages: float = 0.0,
        duplicates: float = 0.0,
        require_user_agent: bool = True,
    ) -> None:
        self.lock = threading.Lock()
        self._tokens = frozenset(tokens)
        self.retention = retention
        self._clock = clock
        self._rng = random.Random(seed)
        self.behaviour = updated(
            Behaviour(rate=rate),
            {
                "short_pages": short_pages,
                "empty_pages": empty_pages,
                "duplicates": duplicates,
                "require_user_agent": require_user_agent,
            },
        )
        self._window = RollingWindow(rate, clock)
        self._logs = {stream: StreamLog(stream) for stream in SELL_STREAMS}
        self.records = RecordIndex()
        self._statuses: Counter[int] = Counter()
        self._requests: list[dict[str, Any]] = []  # every API request answered, oldest first (GET /_sandbox/requests)
        self.throttled = 0
        self.faults = FaultPlan()
        v2 = V2Api(self)
        self.v2_writes = WriteApi(self)
        self.app = Starlette(
            routes=[
                Route("/v3/{stream}/stream", self._stream, methods=["GET"]),
                *self.v2_writes.routes(),
                *v2.routes(),
                *control_routes(self),
                *fault_routes(self.faults),
            ],
            middleware=[
                Middleware(RequestIdMiddleware, on_response=self._count),
                Middleware(FaultMiddleware, plan=self.faults),
            ],
            exception_handlers={HTTPException: _http_error},
        )

    # -------------------------------------------------------------------------------------------------------------
    # the control surface (thread-safe: tests call these from their own thread)

    def append(self, stream: str, items: Sequence[dict[str, Any]]) -> None:
        """Append raw Firehose items to `stream` (as the account's users would cause them)."""
        log = self._log_of(stream)
        with self.lock:
            now = self._clock()
            for item in items:
                self._append_one(log, item, now)

    def load(self, history: Sequence[tuple[str, dict[str, Any]]]) -> None:
        """Append a whole history of (stream, item), e.g. `generate_history(...)`."""
        for stream, _ in history:
            self._log_of(stream)
        with self.lock, collector_paused():
            now = self._clock()
            for stream, item in history:
                self._append_one(self._logs[stream], item, now)

    def generate(
        self, events: int, *, seed: int = 0, poison: int = 0, records: int | None = None, products: bool | None = None
    ) -> int:
        """Load a generated history ending at the sandbox clock's now; how many Firehose items that was.

        With `records`, the account already holds that many records whose events have all expired (the Core API
        knows them, the Firehose does not) before the `events` live ones; `products` gives it a product catalogue
        (the default with `records`; without, the default history, whose line items name the catalogue's products:
        they are in the Core API only, created long ago)."""
        end = datetime.fromtimestamp(self._clock(), UTC)
        if records is not None:
            account = generate_account(
                records,
                events=events,
                seed=seed,
                end=end,
                retention=self.retention,
                products=True if products is None else products,
                poison=poison,
            )
            self.load_account(account)
            return len(account.live)
        history = generate_history(events, seed=seed, poison=poison, end=end, products=bool(products))
        # the products its line items name were created long ago: the Core API knows them, the Firehose does not
        past = [] if products else catalogue_products(end, retention=self.retention)
        self.load_account(Account(past, history))
        return len(history)

    def load_account(self, account: Account) -> None:
        """Take in an account's expired past (into the Core API only), then append its live items."""
        with self.lock, collector_paused():
            for _, item in account.expired:
                self.records.apply(item)
        self.load(account.live)

    def expire(self, stream: str | None, *, keep: int = 0) -> int:
        """Drop all but the newest `keep` items of `stream` (or of every stream); positions before them get 410."""
        logs = list(self._logs.values()) if stream is None else [self._log_of(stream)]
        with self.lock:
            return sum(log.keep_newest(keep) for log in logs)

    def set_tokens(self, tokens: Iterable[str]) -> None:
        with self.lock:
            self._tokens = frozenset(tokens)

    def configure(self, **changes: Any) -> None:
        """Change behaviour knobs (see `Behaviour`); ValueError on a bad one."""
        with self.lock:
            behaviour = updated(self.behaviour, changes)
            if "rate" in changes:
                self._window = RollingWindow(behaviour.rate, self._clock)
            self.behaviour = behaviour

    def state(self) -> dict[str, Any]:
        """What `GET /_sandbox/state` answers."""
        with self.lock:
            streams = {}
            for name, log in self._logs.items():
                self._expire(log)
                streams[name] = {
                    "retained": log.retained,
                    "appended": log.appended,
                    "head": encode_position(name, log.head),
                    "tail": encode_position(name, log.tail),
                }
            return {
                "streams": streams,
                "requests": {str(status): count for status, count in sorted(self._statuses.items())},
                "throttled": self.throttled,
                "records": self.records.counts(),
                "behaviour": self.behaviour.to_json(),
            }

    def writes(self, resource: str | None = None, record_id: int | None = None) -> list[dict[str, Any]]:
        """The v2 writes received (what `GET /_sandbox/writes` answers), oldest first."""
        with self.lock:
            return self.v2_writes.written(resource, record_id)

    def clear_writes(self) -> None:
        with self.lock:
            self.v2_writes.log.clear()

    def retained_json(self, stream: str) -> bytes:
        """`{"items": [...]}` with every retained item of `stream`, as served."""
        log = self._log_of(stream)
        with self.lock:
            self._expire(log)
            return b'{"items":[' + b",".join(self._served(log, log.all())) + b"]}"

    # -------------------------------------------------------------------------------------------------------------
    # internals (called with the lock held)

    def now(self) -> float:
        return self._clock()

    def emit(self, stream: str, item: dict[str, Any]) -> None:
        """Append one item that the account itself caused (a write through the Core API)."""
        self._append_one(self._log_of(stream), item, self._clock())

    def v2_item(self, snapshot: Snapshot, item_type: str) -> dict[str, Any]:
        """A record in v2 shape under the current readings of money and ids."""
        behaviour = self.behaviour
        return v2_item(
            snapshot,
            money_as=behaviour.money_as,
            ids_as=behaviour.ids_as,
            version_as=behaviour.version_as,
            item_type=item_type,
            names=self.records.field_names(),
        )

    def _log_of(self, stream: str) -> StreamLog:
        log = self._logs.get(stream)
        if log is None:
            raise ValueError(f"unknown stream {stream!r}; expected one of {', '.join(self._logs)}")
        return log

    def _append_one(self, log: StreamLog, item: dict[str, Any], now: float) -> None:
        item = self._shape_delete(item)
        meta = item.get("meta")
        when = event_epoch(meta.get("event_time") if isinstance(meta, dict) else None, now)
        log.append(_encoder.encode(item), when)
        self.records.apply(item)

    def _shape_delete(self, item: dict[str, Any]) -> dict[str, Any]:
        mode = self.behaviour.deleted_data
        meta, data = item.get("meta"), item.get("data")
        if mode == "as_sent" or not isinstance(meta, dict) or meta.get("event_type") != "deleted":
            return item
        if not isinstance(data, dict) or "id" not in data:
            return item
        if mode == "id_only":
            return {**item, "data": {"id": data["id"]}}
        kind = self.records.kind_of(str(meta.get("type")), data)
        known = self.records.latest(kind, data["id"]) if type(data["id"]) is int else None
        if set(data) == {"id"} and known is not None:
            return {**item, "data": known.data}
        return item

    def _expire(self, log: StreamLog) -> None:
        log.expire_before(self._clock() - self.retention)

    def _count(self, method: str, path: str, query: str, status: int) -> None:
        if path.startswith(CONTROL_PREFIX):
            return
        with self.lock:
            self._statuses[status] += 1
            if len(self._requests) < REQUEST_LOG:
                entry = {"method": method, "path": path, "query": query, "status": status, "at": self._clock()}
                self._requests.append(entry)

    def requests(self, path: str = "") -> list[dict[str, Any]]:
        """The API requests answered (method, path, query string, status, when: the sandbox clock), oldest first;
        those under `path` only when given (what `GET /_sandbox/requests?path=` answers)."""
        with self.lock:
            return [dict(r) for r in self._requests if r["path"].startswith(path)]

    def clear_requests(self) -> None:
        with self.lock:
            self._requests.clear()

    def guard(self, request: Request) -> Response | None:
        """Authentication, User-Agent and the rate limit, as every API endpoint applies them (lock held)."""
        scheme, _, token = request.headers.get("authorization", "").partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or token not in self._tokens:
            return error_response(
                request, 401, "unauthorized", "Unauthorized", details="The access token is missing, invalid or revoked."
            )
        if self.behaviour.require_user_agent and not request.headers.get("user-agent", "").strip():
            return error_response(
                request, 400, "invalid_user_agent", "Invalid User-Agent", details="Send a User-Agent: client/version."
            )
        if not self._window.hit(token).allowed:
            self.throttled += 1
            status = self.behaviour.throttle_status
            if self.behaviour.throttle_body == "empty":
                return json_bytes(b"", status)
            return error_response(
                request,
                status,
                "rate_limit_exceeded",
                "Rate limit exceeded",
                details="Too many requests for this access token; slow down.",
            )
        return None

    # -------------------------------------------------------------------------------------------------------------
    # the Firehose

    async def _stream(self, request: Request) -> Response:
        stream = request.path_params["stream"]
        with self.lock:
            refused = self.guard(request)
            if refused is not None:
                return refused
            log = self._logs.get(stream)
            if log is None:
                return error_response(request, 404, "not_found", f"No stream {stream!r}", resource="stream")
            self._expire(log)
            return self._page(request, log)

    def _page(self, request: Request, log: StreamLog) -> Response:
        params = request.query_params
        position = params.get("position", "")
        if not position:
            return _invalid(request, "position", "position is required: tail, top or a position from a response")
        limit_text = params.get("limit", str(DEFAULT_LIMIT))
        if not limit_text.isdigit() or not 1 <= int(limit_text) <= 100:
            return _invalid(request, "limit", f"limit must be a whole number from 1 to 100, got {limit_text!r}")
        limit = int(limit_text)
        if position == "top":
            return self._answer(request, log, [], log.head)
        if position == "tail":
            start = log.tail
        else:
            try:
                start = decode_position(log.name, position)
            except PositionError as exc:
                return _invalid(request, "position", str(exc))
            if start > log.head:
                return _invalid(request, "position", "position is ahead of the stream")
            if start < log.tail:
                return error_response(
                    request,
                    410,
                    "gone",
                    "The position has expired",
                    details="Events at this position are older than the retention window; "
                    "start again from tail or top.",
                    field="position",
                )
        count = min(limit, log.head - start)
        behaviour, rng = self.behaviour, self._rng
        if count and rng.random() < behaviour.empty_pages:
            count = 0
        elif count > 1 and rng.random() < behaviour.short_pages:
            count = rng.randint(1, count - 1)
        duplicate = bool(count) and rng.random() < behaviour.duplicates
        page = log.read(start, count, duplicate=duplicate, limit=limit)
        return self._answer(request, log, page.items, page.next_offset)

    def _served(self, log: StreamLog, items: list[bytes]) -> list[bytes]:
        """Items as the Firehose serves them under the `ids_as` reading."""
        if self.behaviour.ids_as == "number" or SELL_STREAMS[log.name] not in STRING_IDS:
            return items
        ids_as = self.behaviour.ids_as
        return [_encoder.encode(firehose_item(msgspec.json.decode(raw), ids_as)) for raw in items]

    def _answer(self, request: Request, log: StreamLog, items: list[bytes], offset: int) -> Response:
        items = self._served(log, items)
        position = encode_position(log.name, offset)
        top = offset >= log.head
        if top and self._rng.random() < self.behaviour.empty_next_at_top:
            next_url = ""
        else:
            base = str(request.base_url).rstrip("/")
            next_url = f"{base}/v3/{log.name}/stream?position={quote(position, safe='')}"
        meta = _encoder.encode({"links": {"next": next_url}, "position": position, "top": top})
        return json_bytes(b'{"items":[' + b",".join(items) + b'],"meta":' + meta + b"}")


def _invalid(request: Request, field: str, message: str) -> Response:
    return error_response(request, 400, "invalid_param", message, field=field)


async def _http_error(request: Request, exc: Exception) -> Response:
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 404:
        return error_response(request, 404, "not_found", "Not found", details=f"No resource at {request.url.path}")
    code = "invalid_param" if status < 500 else "server_error"
    return error_response(request, status, code, str(getattr(exc, "detail", "")) or "Error")
