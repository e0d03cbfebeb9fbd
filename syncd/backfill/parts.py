"""What a backfill reads from Sell's Core API for each stream, and in which order. Pure.

A *part* is one Core API listing read in id order (`sort_by=id:asc`, always explicit: Sell's default order is
`updated_at` for leads and notes and `last_name` for contacts, under which records edited during the scan would
move between pages). Look-up data comes before what needs it: custom field definitions (they say how to read v2
custom values), lead and deal sources (separate resources in Sell), stages (they classify deals), products, then
organisations before the people who belong to them, orders before their line items (read per order, from
`/v2/orders/:id/line_items`). A stream's look-up parts are read even when their own stream is not configured:
their records only fill the shadow, which the writers consult.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from syncd.events import STREAM_KINDS


@dataclass(frozen=True, slots=True)
class Part:
    """One Core API listing a backfill reads."""

    name: str
    stream: str  # the Firehose stream its records belong to
    kind: str  # the record's Firehose `meta.type` ("source" for both kinds of source)
    path: str  # under the API's base URL; "{order}" for the listing of one order's line items
    params: tuple[tuple[str, str], ...] = ()  # filters
    paged: bool = True  # custom field definitions come in one answer
    implied: tuple[tuple[str, str], ...] = ()  # attributes the listing implies (a source's resource_type)
    # Records the shadow holds but the scan did not see are asked for by `ids` at the end (False: the listing is
    # complete on its own, like the line items of each order read).
    verify: bool = True

    @property
    def stored_kind(self) -> str:
        """The kind the shadow keeps its records under."""
        resource = dict(self.implied).get("resource_type")
        return f"{resource}_source" if self.kind == "source" and resource else self.kind


def _definitions(resource: str) -> Part:
    return Part(f"{resource}_custom_fields", "custom_fields", "custom_field", f"/v2/{resource}/custom_fields",
                paged=False, implied=(("resource_type", resource),), verify=False)  # fmt: skip


CUSTOM_FIELD_RESOURCES = ("lead", "contact", "prospect_and_customer", "deal")
PARTS: tuple[Part, ...] = (
    *(_definitions(resource) for resource in CUSTOM_FIELD_RESOURCES),
    Part("lead_sources", "sources", "source", "/v2/lead_sources", implied=(("resource_type", "lead"),)),
    Part("deal_sources", "sources", "source", "/v2/deal_sources", implied=(("resource_type", "deal"),)),
    Part("stages", "stages", "stage", "/v2/stages"),
    Part("products", "products", "product", "/v2/products"),
    Part("organisations", "contacts", "contact", "/v2/contacts", (("is_organization", "true"),)),
    Part("leads", "leads", "lead", "/v2/leads"),
    Part("contacts", "contacts", "contact", "/v2/contacts", (("is_organization", "false"),)),
    Part("deals", "deals", "deal", "/v2/deals"),
    Part("orders", "orders", "order", "/v2/orders"),
    Part("line_items", "line_items", "line_item", "/v2/orders/{order}/line_items", verify=False),
    Part("notes", "notes", "note", "/v2/notes"),
)
BY_NAME = {part.name: part for part in PARTS}

# stream -> the parts it needs (its own, and the look-ups its records are written with)
NEEDS: dict[str, tuple[str, ...]] = {
    "custom_fields": tuple(f"{r}_custom_fields" for r in CUSTOM_FIELD_RESOURCES),
    "sources": ("lead_sources", "deal_sources"),
    "stages": ("stages",),
    "products": ("products",),
    "leads": ("lead_custom_fields", "lead_sources", "leads"),
    "contacts": ("contact_custom_fields", "prospect_and_customer_custom_fields", "organisations", "contacts"),
    "deals": ("deal_custom_fields", "deal_sources", "stages", "deals"),
    "orders": ("orders",),
    "line_items": ("products", "orders", "line_items"),
    "notes": ("notes",),
}
assert set(NEEDS) == set(STREAM_KINDS), "every stream says what a backfill of it reads"


def parts_for(streams: Iterable[str]) -> list[Part]:
    """The parts a backfill of `streams` reads, in the order they must be read."""
    wanted = {name for stream in streams for name in NEEDS[stream]}
    return [part for part in PARTS if part.name in wanted]


def custom_resource(part: Part) -> str | None:
    """The custom field resource a definitions part lists (None for other parts)."""
    return dict(part.implied).get("resource_type") if part.kind == "custom_field" else None
