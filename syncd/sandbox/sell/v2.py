"""The Sell sandbox's Core API v2 reads: collections, single records and an order's line items.

    GET /v2/{leads|contacts|deals|notes|orders|stages|sources}?page=1&per_page=25&ids=1,2&sort_by=updated_at:desc
    GET /v2/{resource}/{id}                      404 `not_found` for unknown and deleted records
    GET /v2/orders/{id}/line_items

Same guard as the Firehose (auth, User-Agent, the shared per-token rate limit).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncd.sandbox.sell.records import SORT_KEYS, RecordIndex, Snapshot, encode, v2_item
from syncd.sandbox.sell.responses import error_response, json_bytes

LISTED: dict[str, str] = {
    "leads": "lead",
    "contacts": "contact",
    "deals": "deal",
    "notes": "note",
    "orders": "order",
    "stages": "stage",
    "sources": "source",
}
MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25


class _BadParam(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


class V2Api:
    """Routes over a `RecordIndex`, sharing the sandbox's lock and guard."""

    def __init__(self, records: RecordIndex, lock: threading.Lock, guard: Callable[[Request], Response | None]) -> None:
        self.records = records
        self.lock = lock
        self.guard = guard

    def routes(self) -> list[Route]:
        return [
            Route("/v2/orders/{order_id:int}/line_items", self._line_items, methods=["GET"]),
            Route("/v2/{resource}/{record_id:int}", self._one, methods=["GET"]),
            Route("/v2/{resource}", self._list, methods=["GET"]),
        ]

    async def _list(self, request: Request) -> Response:
        resource = request.path_params["resource"]
        with self.lock:
            refused = self.guard(request)
            if refused is not None:
                return refused
            kind = LISTED.get(resource)
            if kind is None:
                return _not_found(request, resource)
            try:
                page, per_page = _paging(request)
                sort, descending = _sort(request.query_params.get("sort_by", "id"))
                ids = _ids(request.query_params.get("ids"))
            except _BadParam as exc:
                return error_response(request, 400, "invalid_param", str(exc), field=exc.field)
            found = self.records.listing(kind, sort=sort, descending=descending, ids=ids)
            return _collection(request, found, page, per_page)

    async def _one(self, request: Request) -> Response:
        resource, record_id = request.path_params["resource"], request.path_params["record_id"]
        with self.lock:
            refused = self.guard(request)
            if refused is not None:
                return refused
            kind = LISTED.get(resource)
            snapshot = None if kind is None else self.records.get(kind, record_id)
            if snapshot is None:
                return _not_found(request, resource, record_id)
            return json_bytes(encode(v2_item(snapshot)))

    async def _line_items(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        with self.lock:
            refused = self.guard(request)
            if refused is not None:
                return refused
            if self.records.get("order", order_id) is None:
                return _not_found(request, "orders", order_id)
            try:
                page, per_page = _paging(request)
            except _BadParam as exc:
                return error_response(request, 400, "invalid_param", str(exc), field=exc.field)
            return _collection(request, self.records.line_items(order_id), page, per_page)


def _collection(request: Request, found: list[Snapshot], page: int, per_page: int) -> Response:
    chunk = found[(page - 1) * per_page : page * per_page]
    links: dict[str, Any] = {"self": str(request.url)}
    if len(found) > page * per_page:
        links["next_page"] = str(request.url.include_query_params(page=page + 1, per_page=per_page))
    body = {
        "items": [v2_item(s) for s in chunk],
        "meta": {"type": "collection", "count": len(chunk), "links": links},
    }
    return json_bytes(encode(body))


def _not_found(request: Request, resource: str, record_id: int | None = None) -> Response:
    what = resource if record_id is None else f"{resource}/{record_id}"
    return error_response(request, 404, "not_found", "Not found", details=f"No {what}", resource=resource)


def _whole(request: Request, name: str, default: int, low: int, high: int | None) -> int:
    text = request.query_params.get(name, str(default))
    if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
        bounds = f"from {low} to {high}" if high is not None else f"of at least {low}"
        raise _BadParam(name, f"{name} must be a whole number {bounds}, got {text!r}")
    return int(text)


def _paging(request: Request) -> tuple[int, int]:
    return _whole(request, "page", 1, 1, None), _whole(request, "per_page", DEFAULT_PER_PAGE, 1, MAX_PER_PAGE)


def _sort(text: str) -> tuple[str, bool]:
    key, _, direction = text.partition(":")
    if key not in SORT_KEYS or direction not in ("", "asc", "desc"):
        raise _BadParam("sort_by", f"sort_by must be id or updated_at, optionally with :asc or :desc, got {text!r}")
    return key, direction == "desc"


def _ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        raise _BadParam("ids", f"ids must be a comma-separated list of ids, got {text!r}")
    return [int(part) for part in parts]
