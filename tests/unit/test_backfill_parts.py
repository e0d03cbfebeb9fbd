"""What a backfill reads from Sell's Core API for each stream, and in which order (syncd.backfill.parts, pure)."""

from __future__ import annotations

import pytest

from syncd.backfill.parts import BY_NAME, PARTS, custom_resource, parts_for
from syncd.events import STREAM_KINDS

FIELDS = ["lead_custom_fields", "contact_custom_fields", "prospect_and_customer_custom_fields", "deal_custom_fields"]


@pytest.mark.parametrize(
    ("streams", "expected"),
    [
        (["leads"], ["lead_custom_fields", "lead_sources", "leads"]),
        (["contacts"], ["contact_custom_fields", "prospect_and_customer_custom_fields", "organisations", "contacts"]),
        (["deals"], ["deal_custom_fields", "deal_sources", "stages", "deals"]),
        (["line_items"], ["products", "orders", "line_items"]),
        (["orders", "notes"], ["orders", "notes"]),
        (["stages"], ["stages"]),
        (["sources"], ["lead_sources", "deal_sources"]),
        (["custom_fields"], FIELDS),
        (["deals", "leads", "leads"], ["lead_custom_fields", "deal_custom_fields", "lead_sources", "deal_sources",
                                       "stages", "leads", "deals"]),
    ],
)  # fmt: skip
def test_a_streams_parts_come_with_their_look_ups_first(streams: list[str], expected: list[str]) -> None:
    """Each stream's own listing comes after what its records are read and written with (definitions, sources,
    stages, products, organisations before people, orders before line items), each part once."""
    assert [part.name for part in parts_for(streams)] == expected


def test_every_stream_reads_its_own_records_and_everything_comes_in_one_order() -> None:
    """A backfill of every stream reads every part, in the one order look-ups first; each stream's own kind among
    them."""
    everything = parts_for(STREAM_KINDS)
    assert everything == list(PARTS)
    kinds = {part.stream for part in everything}
    assert kinds == set(STREAM_KINDS)
    names = [part.name for part in everything]
    for before, after in [
        ("stages", "deals"),
        ("products", "line_items"),
        ("orders", "line_items"),
        ("organisations", "contacts"),
        ("lead_sources", "leads"),
        ("deal_sources", "deals"),
    ]:
        assert names.index(before) < names.index(after), (before, after)  # fmt: skip


@pytest.mark.parametrize(
    ("name", "path", "params", "stored_kind", "paged", "verify"),
    [
        ("leads", "/v2/leads", (), "lead", True, True),
        ("organisations", "/v2/contacts", (("is_organization", "true"),), "contact", True, True),
        ("contacts", "/v2/contacts", (("is_organization", "false"),), "contact", True, True),
        ("lead_sources", "/v2/lead_sources", (), "lead_source", True, True),
        ("deal_sources", "/v2/deal_sources", (), "deal_source", True, True),
        ("line_items", "/v2/orders/{order}/line_items", (), "line_item", True, False),
        ("deal_custom_fields", "/v2/deal/custom_fields", (), "custom_field", False, False),
    ],
)
def test_each_part_names_its_listing_and_the_kind_it_stores(
    name: str, path: str, params: tuple[tuple[str, str], ...], stored_kind: str, paged: bool, verify: bool
) -> None:
    """The Core API listing (lead and deal sources apart, line items per order), its filters, the kind the shadow
    keeps, whether it is paged, and whether records it did not see are asked for by id at the end."""
    part = BY_NAME[name]
    assert (part.path, part.params, part.stored_kind, part.paged, part.verify) == (
        path,
        params,
        stored_kind,
        paged,
        verify,
    )


def test_definitions_parts_say_whose_custom_fields_they_list() -> None:
    """Each custom-field definitions part names its resource; other parts name none."""
    assert [custom_resource(BY_NAME[name]) for name in FIELDS] == ["lead", "contact", "prospect_and_customer", "deal"]
    assert custom_resource(BY_NAME["leads"]) is None
