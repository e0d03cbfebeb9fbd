"""The Sell sandbox's Core API v2 writes: `PUT /v2/leads/{id}` and `PUT /v2/contacts/{id}` with `{"data": {...}}`.

What a write changes is `syncd.sandbox.sell.edits`. The answer is the updated record in v2 shape with the next
`meta.version`; a refused write is 422 with every problem in Sell's error envelope (`unknown_attribute`,
`incorrect_value`, each with its `field` pointer), a body that is not a JSON object with a `data` object (or not
JSON, or invalid UTF-8, or a lone surrogate) 400 `invalid_payload`, a missing or deleted record 404 `not_found`.
Same guard as every API call (auth, User-Agent, the shared rate limit).

Each write reappears on the record's Firehose stream as an `updated` item with the record's next sequence, the full
snapshot, and a `previous` holding the written attributes (Firehose names: `custom_field_values` for
`custom_fields`) with their old values (`write_previous`: "written" keys, or only the "changed" ones). A write that
changes nothing adds no event and keeps the version (`unchanged_write` "silent": Sell's stream carries changes, and
`previous` holds changed attributes); "event" is the other reading, an event whose `previous` holds the written keys.
Every write that got past the guard is logged for tests: `GET /_sandbox/writes`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import msgspec
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from syncd.sandbox.sell.edits import CUSTOM_RESOURCES, Edit, Lookups, Problem, edit
from syncd.sandbox.sell.history import item, wire_time
from syncd.sandbox.sell.resources import RESOURCES
from syncd.sandbox.sell.responses import error_entry, error_response, errors_body, json_bytes, json_response
from syncd.sandbox.sell.shapes import encode
from syncd.sandbox.sell.v2 import not_found

if TYPE_CHECKING:
    from syncd.sandbox.sell.app import SellSandbox

WRITTEN = {"leads": "lead", "contacts": "contact"}  # the collections the sandbox takes writes for


class WriteApi:
    """The v2 write routes of one sandbox, under its lock and guard, and the log of what was written."""

    def __init__(self, sandbox: SellSandbox) -> None:
        self.sandbox = sandbox
        self.log: list[dict[str, Any]] = []

    def routes(self) -> list[Route]:
        return [Route("/v2/{resource}/{record_id:int}", self._put, methods=["PUT"])]

    async def _put(self, request: Request) -> Response:
        resource, record_id = request.path_params["resource"], request.path_params["record_id"]
        raw = await request.body()
        sandbox = self.sandbox
        with sandbox.lock:
            refused = sandbox.guard(request)
            if refused is not None:
                return refused
            kind = WRITTEN.get(resource)
            if kind is None:
                if resource not in RESOURCES:
                    return not_found(request, resource)
                message = f"The sandbox takes writes to leads and contacts only, not {resource}"
                return error_response(request, 405, "method_not_allowed", message)
            entry: dict[str, Any] = {"resource": resource, "id": record_id, "at": self._now()}
            self.log.append(entry)
            body = _body(request, raw)
            if isinstance(body, str):
                entry.update(status=400, body=raw.decode("utf-8", "replace"), error=body)
                return error_response(request, 400, "invalid_payload", body, resource=kind)
            entry["body"] = body
            snapshot = sandbox.records.get(kind, record_id)
            if snapshot is None:
                entry["status"] = 404
                return not_found(request, resource, record_id)
            result = edit(kind, snapshot.data, body["data"], self._lookups(kind))
            if isinstance(result, list):
                entry.update(status=422, problems=[p.field for p in result])
                return json_response(errors_body(request, 422, [_entry(kind, p) for p in result]), 422)
            event = self._event(kind, snapshot.sequence, result)
            if event is not None:
                sandbox.emit(resource, event)
            current = sandbox.records.get(kind, record_id) or snapshot
            entry.update(status=200, changed=result.changed, event=event is not None, version=current.sequence)
            if event is not None:
                entry["event_id"] = event["meta"]["event_id"]  # the Firehose item it caused (its echo)
            return json_bytes(encode(sandbox.v2_item(current, kind)))

    def _event(self, kind: str, sequence: int, result: Edit) -> dict[str, Any] | None:
        """The Firehose item a write causes (None when it changed nothing and such writes are silent)."""
        behaviour = self.sandbox.behaviour
        previous = result.previous
        if behaviour.write_previous == "changed":
            previous = {k: v for k, v in previous.items() if k in result.changed}
        if not result.changed and behaviour.unchanged_write == "silent":
            return None
        return item(
            kind,
            result.data,
            action="updated",
            sequence=sequence + 1,
            previous=previous or result.previous,
            event_time=self._now(),
        )

    def _lookups(self, kind: str) -> Lookups:
        records = self.sandbox.records

        def is_organization(contact_id: int) -> bool:
            found = records.get("contact", contact_id)
            return found is not None and found.data.get("is_organization") is True

        return Lookups(
            exists=lambda k, i: records.get(k, i) is not None,
            is_organization=is_organization,
            definitions=records.definitions(CUSTOM_RESOURCES[kind]),
            tag_id=lambda name: records.tag_id(kind, name),
        )

    def _now(self) -> str:
        return wire_time(datetime.fromtimestamp(self.sandbox.now(), UTC))

    def written(self, resource: str | None = None, record_id: int | None = None) -> list[dict[str, Any]]:
        """The logged writes, oldest first, optionally of one collection and record (lock held)."""
        return [
            dict(w)
            for w in self.log
            if (resource is None or w["resource"] == resource) and (record_id is None or w["id"] == record_id)
        ]


def _body(request: Request, raw: bytes) -> dict[str, Any] | str:
    """The parsed body, or why it is not a write body."""
    media = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media != "application/json":
        return f"expected a JSON body (Content-Type: application/json), got {media or 'none'}"
    try:
        body = msgspec.json.decode(raw)
    except msgspec.DecodeError as exc:
        return f"the body is not valid JSON: {exc}"
    if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
        return 'expected {"data": {...attributes...}}'
    return body


def _entry(kind: str, problem: Problem) -> dict[str, Any]:
    return error_entry(problem.code, problem.message, resource=kind, field=problem.field)
