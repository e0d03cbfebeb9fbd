"""The Sell sandbox's Core API v2 reads: collections, single records and an order's line items.

    GET /v2/{collection}?page=1&per_page=25&sort_by=id:asc&<filters>     (collections: syncd.sandbox.sell.resources)
    GET /v2/{collection}/{id}                      404 `not_found` for unknown and deleted records
    GET /v2/orders/{id}/line_items[/{id}]
    GET /v2/{lead|contact|deal|prospect_and_customer}/custom_fields   the definitions, list choices included

A collection answers `{"items": [...], "meta": {"type": "collection", "count": <items on this page>,
"links": {"self": ..., "next_page": ...}}}`; `next_page` is there only when another page exists. Records are listed
in the collection's default order (or `sort_by`) as they are at the moment of the request, so a record edited
between two pages of an `updated_at` scan moves to its new place, as in Sell. Same guard as the Firehose (auth,
User-Agent, the shared per-token rate limit). With `v2_lag` (a reading: the Core API may read from a replica
that lags behind the Firehose) records are served as they were that many seconds ago. Writes (`PUT`) are in
syncd.sandbox.sell.writes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncd.sandbox.sell.edits import choices
from syncd.sandbox.sell.records import Snapshot
from syncd.sandbox.sell.resources import LINE_ITEMS, RESOURCES, BadParam, Query, Resource, parse
from syncd.sandbox.sell.responses import error_response, json_bytes
from syncd.sandbox.sell.shapes import encode

if TYPE_CHECKING:
    from syncd.sandbox.sell.app import SellSandbox


class V2Api:
    """The v2 read routes of one sandbox, under its lock and guard."""

    def __init__(self, sandbox: SellSandbox) -> None:
        self.sandbox = sandbox

    def routes(self) -> list[Route]:
        return [
            Route("/v2/{resource_type}/custom_fields", self._custom_fields, methods=["GET"]),
            Route("/v2/orders/{order_id:int}/line_items", self._line_items, methods=["GET"]),
            Route("/v2/orders/{order_id:int}/line_items/{record_id:int}", self._line_item, methods=["GET"]),
            Route("/v2/{resource}/{record_id:int}", self._one, methods=["GET"]),
            Route("/v2/{resource}", self._list, methods=["GET"]),
        ]

    async def _list(self, request: Request) -> Response:
        resource = RESOURCES.get(request.path_params["resource"])
        with self.sandbox.lock:
            refused = self.sandbox.guard(request)
            if refused is not None:
                return refused
            if resource is None:
                return not_found(request, request.path_params["resource"])
            query = self._query(request, resource)
            if isinstance(query, Response):
                return query
            found = self._listing(resource.kind, query, query.ids)
            return self._collection(request, resource, query, found)

    async def _one(self, request: Request) -> Response:
        name, record_id = request.path_params["resource"], request.path_params["record_id"]
        resource = RESOURCES.get(name)
        with self.sandbox.lock:
            refused = self.sandbox.guard(request)
            if refused is not None:
                return refused
            snapshot = None if resource is None else self._get(resource.kind, record_id)
            if resource is None or snapshot is None:
                return not_found(request, name, record_id)
            return json_bytes(encode(self.item(snapshot, resource.item_type)))

    async def _line_items(self, request: Request) -> Response:
        order_id = request.path_params["order_id"]
        with self.sandbox.lock:
            refused = self.sandbox.guard(request)
            if refused is not None:
                return refused
            records = self.sandbox.records
            if records.get("order", order_id) is None:
                return not_found(request, "orders", order_id)
            query = self._query(request, LINE_ITEMS)
            if isinstance(query, Response):
                return query
            wanted = records.line_item_ids(order_id)
            if query.ids is not None:
                of_order = set(wanted)
                wanted = [i for i in query.ids if i in of_order]
            found = self._listing("line_item", query, wanted)
            return self._collection(request, LINE_ITEMS, query, found)

    async def _line_item(self, request: Request) -> Response:
        order_id, record_id = request.path_params["order_id"], request.path_params["record_id"]
        with self.sandbox.lock:
            refused = self.sandbox.guard(request)
            if refused is not None:
                return refused
            records = self.sandbox.records
            snapshot = records.get("line_item", record_id)
            if records.get("order", order_id) is None or snapshot is None or snapshot.data.get("order_id") != order_id:
                return not_found(request, "line_items", record_id)
            return json_bytes(encode(self.item(snapshot, "line_item")))

    async def _custom_fields(self, request: Request) -> Response:
        resource_type = request.path_params["resource_type"]
        with self.sandbox.lock:
            refused = self.sandbox.guard(request)
            if refused is not None:
                return refused
            if resource_type not in CUSTOM_FIELD_RESOURCES:
                return not_found(request, f"{resource_type}/custom_fields")
            defined = self.sandbox.records.live("custom_field")
            found = sorted((s for s in defined if s.data.get("resource_type") == resource_type), key=_by_id)
            items = [{"data": _definition(s), "meta": {"type": "custom_field"}} for s in found]
            meta = {"type": "collection", "count": len(items), "links": {"self": str(request.url)}}
            return json_bytes(encode({"items": items, "meta": meta}))

    def _listing(self, kind: str, query: Query, ids: list[int] | None) -> list[Snapshot]:
        """The live records of `kind` in the query's order, as the reads' lag (`v2_lag`) lets them be seen."""
        records, lag = self.sandbox.records, self.sandbox.behaviour.v2_lag
        if lag:
            cutoff = self.sandbox.now() - lag
            return records.lagged(kind, cutoff, sort=query.sort, descending=query.descending, ids=ids)
        return records.listing(kind, sort=query.sort, descending=query.descending, ids=ids)

    def _get(self, kind: str, record_id: int) -> Snapshot | None:
        records, lag = self.sandbox.records, self.sandbox.behaviour.v2_lag
        if lag:
            latest = records.latest(kind, record_id)
            return records.as_of(latest, self.sandbox.now() - lag) if latest is not None else None
        return records.get(kind, record_id)

    def item(self, snapshot: Snapshot, item_type: str) -> dict[str, Any]:
        return self.sandbox.v2_item(snapshot, item_type)

    def _query(self, request: Request, resource: Resource) -> Query | Response:
        behaviour = self.sandbox.behaviour
        try:
            return parse(resource, request.query_params, unknown=behaviour.unknown_params, email=behaviour.email_filter)
        except BadParam as exc:
            return error_response(request, 400, "invalid_param", str(exc), field=exc.field)

    def _collection(self, request: Request, resource: Resource, query: Query, found: list[Snapshot]) -> Response:
        if query.conditions:
            found = [s for s in found if query.matches(s.data)]
        start = (query.page - 1) * query.per_page
        chunk = found[start : start + query.per_page]
        links: dict[str, Any] = {"self": str(request.url)}
        if len(found) > start + query.per_page:
            links["next_page"] = str(request.url.include_query_params(page=query.page + 1, per_page=query.per_page))
        body = {
            "items": [self.item(s, resource.item_type) for s in chunk],
            "meta": {"type": "collection", "count": len(chunk), "links": links},
        }
        return json_bytes(encode(body))


def not_found(request: Request, resource: str, record_id: int | None = None) -> Response:
    what = resource if record_id is None else f"{resource}/{record_id}"
    return error_response(request, 404, "not_found", "Not found", details=f"No {what}", resource=resource)


CUSTOM_FIELD_RESOURCES = ("lead", "contact", "deal", "prospect_and_customer")


def _by_id(snapshot: Snapshot) -> int:
    return snapshot.record_id


def _definition(snapshot: Snapshot) -> dict[str, Any]:
    """A custom field definition in v2 shape: list types with their choices, contact fields for both kinds."""
    data = {k: v for k, v in snapshot.data.items() if k not in ("resource_type", "choices")}
    if data.get("type") in ("list", "multi_select_list"):
        data["choices"] = choices(snapshot.data)
    if snapshot.data.get("resource_type") == "contact":
        data.setdefault("for_company", True)
        data.setdefault("for_contact", True)
    data["updated_at"] = snapshot.updated_at or data.get("created_at")
    return data
