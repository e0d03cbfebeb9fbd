"""Reading Ontraport objects other than contacts (notes, products, transactions, purchases): one record by id, records
by condition (the official SDK's JSON criteria, clauses joined by "AND"), and how many a collection holds
(`getInfo`). Values come back as strings."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from syncd.errors import TransientError
from syncd.sinks.ontraport.http import OntraportApi

PAGE = 50  # the most records Ontraport answers per search


def condition(clauses: Sequence[tuple[str, str | int]]) -> str:
    """`[{"field": {"field": "name"}, "op": "=", "value": {"value": "Gold"}}, "AND", ...]` as JSON text."""
    criteria: list[Any] = []
    for field, value in clauses:
        if criteria:
            criteria.append("AND")
        criteria.append({"field": {"field": field}, "op": "=", "value": {"value": value}})
    return json.dumps(criteria, ensure_ascii=False)


async def get_one(api: OntraportApi, singular: str, record_id: str) -> dict[str, Any] | None:
    """`GET /1/<Singular>?id=` (None when Ontraport has no such record)."""
    answer = await api.call("GET", f"/1/{singular}", params={"id": record_id}, missing_ok=True)
    if answer.missing:
        return None
    if not isinstance(answer.data, dict):
        raise TransientError(f"Ontraport answered GET /1/{singular} without the record")
    return answer.data


async def search(
    api: OntraportApi, plural: str, clauses: Sequence[tuple[str, str | int]], *, pages: int = 20
) -> list[dict[str, Any]]:
    """Every record of `plural` matching all `clauses` (by id, at most `pages` pages of 50)."""
    found: list[dict[str, Any]] = []
    text = condition(clauses)
    for page in range(pages):
        params = {"condition": text, "range": str(PAGE), "start": str(page * PAGE), "sort": "id", "sortDir": "asc"}
        answer = await api.call("GET", f"/1/{plural}", params=params)
        rows = [r for r in answer.data if isinstance(r, dict)] if isinstance(answer.data, list) else []
        found += rows
        if len(rows) < PAGE:
            break
    return found


async def count(api: OntraportApi, plural: str) -> int:
    """How many records `plural` holds (`GET /1/<Plural>/getInfo`)."""
    answer = await api.call("GET", f"/1/{plural}/getInfo")
    data = answer.data if isinstance(answer.data, dict) else {}
    try:
        return int(str(data.get("count", "")).strip())
    except ValueError:
        raise TransientError(f"Ontraport answered {plural}/getInfo without a count") from None


def record_id(data: Any) -> str:
    """The id of a created record (`data.id`, or `data.attrs.id` of an update)."""
    if isinstance(data, dict):
        for holder in (data, data.get("attrs")):
            if isinstance(holder, dict) and holder.get("id") not in (None, ""):
                return str(holder["id"])
    raise TransientError("Ontraport answered the write without a record id")
