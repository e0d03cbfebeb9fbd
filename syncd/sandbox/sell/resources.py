"""The Core API v2 collections the Sell sandbox serves, and how a list request's query is read (pure).

Each collection has Sell's own default order (leads and notes `updated_at:asc`, contacts `last_name:asc`, the rest
`id:asc`), the fields `sort_by` accepts, and the filters the vendor's clients document. `page` starts at 1;
`per_page` is 1..100 (default 25). Parameters Sell documents as "unsupported for now" are accepted and ignored;
any other unknown parameter is refused (400 `invalid_param`) or ignored, by the sandbox's `unknown_params` reading.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

MAX_PER_PAGE = 100
DEFAULT_PER_PAGE = 25
PAGING = frozenset({"page", "per_page", "sort_by", "ids"})

FilterType = Literal["int", "text", "bool", "email", "search", "choice"]
Predicate = Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Filter:
    """A query parameter that narrows a collection: which attribute (`address.city` for a nested one), and how."""

    attr: str
    type: FilterType = "text"
    choices: tuple[str, ...] = ()


@dataclass(frozen=True)
class Resource:
    path: str  # the collection's path under /v2/
    kind: str  # the record kind it lists
    item_type: str  # `meta.type` of its items
    default_sort: str
    sortable: frozenset[str]
    filters: Mapping[str, Filter] = field(default_factory=dict)
    ignored: frozenset[str] = frozenset()  # documented, accepted, without effect


class BadParam(ValueError):
    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


def _sorts(*names: str) -> frozenset[str]:
    return frozenset({"id", "created_at", "updated_at", *names})


_ADDRESS = {f"address[{part}]": Filter(f"address.{part}") for part in ("city", "country", "postal_code")}
_PEOPLE = {
    "email": Filter("email", "email"),
    "first_name": Filter("first_name"),
    "last_name": Filter("last_name"),
    "owner_id": Filter("owner_id", "int"),
    "creator_id": Filter("creator_id", "int"),
    **_ADDRESS,
}
_SOURCE_FILTERS = {"name": Filter("name")}

RESOURCES: dict[str, Resource] = {
    r.path: r
    for r in (
        Resource("leads", "lead", "lead", "updated_at:asc",
                 _sorts("first_name", "last_name", "organization_name", "email", "status"),
                 {**_PEOPLE, "organization_name": Filter("organization_name"), "source_id": Filter("source_id", "int"),
                  "status": Filter("status")}),
        Resource("contacts", "contact", "contact", "last_name:asc",
                 _sorts("first_name", "last_name", "name", "email"),
                 {**_PEOPLE, "name": Filter("name"), "contact_id": Filter("contact_id", "int"),
                  "is_organization": Filter("is_organization", "bool")}),
        Resource("deals", "deal", "deal", "id:asc",
                 _sorts("name", "value", "estimated_close_date", "last_stage_change_at"),
                 {name: Filter(name, "int") for name in
                  ("contact_id", "organization_id", "stage_id", "owner_id", "creator_id", "source_id")}
                 | {"hot": Filter("hot", "bool"), "estimated_close_date": Filter("estimated_close_date")}),
        Resource("notes", "note", "note", "updated_at:asc", _sorts("resource_type", "resource_id"),
                 {"resource_type": Filter("resource_type", "choice", ("lead", "contact", "deal")),
                  "resource_id": Filter("resource_id", "int"), "creator_id": Filter("creator_id", "int"),
                  "q": Filter("content", "search")},
                 frozenset({"includes"})),
        Resource("orders", "order", "order", "id:asc", _sorts("deal_id", "discount"),
                 {"deal_id": Filter("deal_id", "int")}),
        Resource("stages", "stage", "stage", "id:asc", frozenset({"id", "position"}),
                 {"pipeline_id": Filter("pipeline_id", "int")}, frozenset({"active", "name"})),
        Resource("pipelines", "pipeline", "pipeline", "id:asc", frozenset({"id"}), {}, frozenset({"name"})),
        Resource("sources", "deal_source", "source", "id:asc", _sorts("name"), _SOURCE_FILTERS),
        Resource("deal_sources", "deal_source", "deal_source", "id:asc", _sorts("name"), _SOURCE_FILTERS),
        Resource("lead_sources", "lead_source", "lead_source", "id:asc", _sorts("name"), _SOURCE_FILTERS),
        Resource("products", "product", "product", "id:asc", _sorts("name", "sku"),
                 {"name": Filter("name"), "sku": Filter("sku"), "active": Filter("active", "bool")},
                 frozenset({"organization_id", "owner_id"})),
    )
}  # fmt: skip
LINE_ITEMS = Resource("line_items", "line_item", "line_item", "id:asc", _sorts("value", "quantity", "price"),
                      {"quantity": Filter("quantity", "int")})  # fmt: skip


@dataclass(frozen=True)
class Query:
    page: int
    per_page: int
    sort: str
    descending: bool
    ids: list[int] | None
    conditions: tuple[Predicate, ...]

    def matches(self, data: dict[str, Any]) -> bool:
        return all(condition(data) for condition in self.conditions)


def parse(resource: Resource, params: Mapping[str, str], *, unknown: str = "reject", email: str = "exact") -> Query:
    """Read a list request's query; BadParam naming the parameter when a value is out of range or unknown."""
    conditions: list[Predicate] = []
    for name, value in params.items():
        if name in PAGING or name in resource.ignored:
            continue
        spec = resource.filters.get(name)
        if spec is None:
            if unknown == "reject":
                known = sorted({*PAGING, *resource.filters, *resource.ignored})
                raise BadParam(name, f"unknown parameter {name!r} for /v2/{resource.path}; known: {', '.join(known)}")
            continue
        conditions.append(_condition(name, spec, value, email))
    sort, descending = _sort(resource, params.get("sort_by", resource.default_sort))
    return Query(
        page=_whole(params, "page", 1, None),
        per_page=_whole(params, "per_page", DEFAULT_PER_PAGE, MAX_PER_PAGE),
        sort=sort,
        descending=descending,
        ids=_ids(params.get("ids")),
        conditions=tuple(conditions),
    )


def _whole(params: Mapping[str, str], name: str, default: int, high: int | None) -> int:
    text = params.get(name, str(default))
    if not text.isdigit() or int(text) < 1 or (high is not None and int(text) > high):
        bounds = f"from 1 to {high}" if high is not None else "of at least 1"
        raise BadParam(name, f"{name} must be a whole number {bounds}, got {text!r}")
    return int(text)


def _sort(resource: Resource, text: str) -> tuple[str, bool]:
    key, _, direction = text.partition(":")
    if key not in resource.sortable or direction not in ("", "asc", "desc"):
        fields = ", ".join(sorted(resource.sortable))
        raise BadParam("sort_by", f"sort_by must be one of {fields}, optionally with :asc or :desc, got {text!r}")
    return key, direction == "desc"


def _ids(text: str | None) -> list[int] | None:
    if text is None:
        return None
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not parts or not all(part.isdigit() for part in parts):
        raise BadParam("ids", f"ids must be a comma-separated list of ids, got {text!r}")
    return [int(part) for part in parts]


def attribute(data: dict[str, Any], path: str) -> Any:
    """A (possibly nested, dotted) attribute of a stored record."""
    value: Any = data
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _condition(name: str, spec: Filter, text: str, email: str) -> Predicate:
    attr = spec.attr
    if spec.type == "int":
        if not text.isdigit():
            raise BadParam(name, f"{name} must be a whole number, got {text!r}")
        wanted_int = int(text)
        return lambda data: attribute(data, attr) == wanted_int and type(attribute(data, attr)) is int
    if spec.type == "bool":
        if text not in ("true", "false"):
            raise BadParam(name, f"{name} must be true or false, got {text!r}")
        wanted_bool = text == "true"
        return lambda data: attribute(data, attr) is wanted_bool
    if spec.type == "choice" and text not in spec.choices:
        raise BadParam(name, f"{name} must be one of {', '.join(spec.choices)}, got {text!r}")
    if spec.type == "search":
        needle = text.casefold()
        return lambda data: needle in str(attribute(data, attr) or "").casefold()
    if spec.type == "email" and email == "casefold":
        folded = text.casefold()
        return lambda data: isinstance(attribute(data, attr), str) and attribute(data, attr).casefold() == folded
    return lambda data: attribute(data, attr) == text
