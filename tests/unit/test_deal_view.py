"""A deal as destinations see it (syncd.sinks.deals) and the person a fact waits for (syncd.sinks.dependencies):
the pure readings table-tested, the gathering against a real store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from syncd.events import ChangeEvent, Deal, LineItem, Note, Price, Product, Stage
from syncd.ledger import Ledger
from syncd.sinks.deals import DealView, Line, category_of, deal_view
from syncd.sinks.dependencies import NotThere, Person, Unreachable, note_person, person_in
from syncd.work import Done
from tests.factories import event

SINK = "salesmanago"
WON_AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
PRO = Product(id=1001, name="Pro licence", sku="LIC-PRO", prices=[Price(amount=Decimal("249.00"), currency="EUR")])


@pytest.mark.parametrize(
    ("category", "expected"),
    [("won", "won"), ("WON", "won"), ("lost", "lost"), (" Lost ", "lost"), ("incoming", "open"),
     ("qualified", "open"), ("", "open")],
)  # fmt: skip
def test_stage_categories_are_won_lost_or_open(category: str, expected: str) -> None:
    """Sell's won and lost categories (any case) are themselves; every other category is open."""
    assert category_of(Stage(id=1, category=category)) == expected


@pytest.mark.parametrize(
    ("item", "product", "discount", "expected"),
    [
        pytest.param(LineItem(id=1, name="Pro", quantity=Decimal(3), price=Decimal(249), value=Decimal(747)), None,
                     None, ("Pro", "Pro", Decimal(3), Decimal(249), Decimal(747), Decimal(747)), id="sell-values"),
        pytest.param(LineItem(id=1, product_id=1001, quantity=Decimal(2), currency="EUR"), PRO, Decimal(10),
                     ("Pro licence", "1001", Decimal(2), Decimal("249.00"), Decimal("498.00"), Decimal("448.2")),
                     id="from-the-product-less-discount"),
        pytest.param(LineItem(id=1, sku="SKU-9", price=Decimal(5)), None, None,
                     ("SKU-9", "SKU-9", Decimal(1), Decimal(5), Decimal(5), Decimal(5)), id="sku-quantity-one"),
        pytest.param(LineItem(id=1, product_id=1001, currency="PLN"), PRO, None,
                     ("Pro licence", "1001", Decimal(1), None, None, None), id="no-price-in-that-currency"),
    ],
)  # fmt: skip
def test_a_line_reads_its_name_product_quantity_price_and_value(
    item: LineItem, product: Product | None, discount: Decimal | None, expected: tuple[Any, ...]
) -> None:
    """A line's name falls back to its product's, then its SKU; the product is named by Sell's id, else SKU, else
    name; a missing quantity is 1; a missing price is the product's in the line's currency; value = price ×
    quantity unless Sell says; the order's discount comes off last."""
    line = Line(item, product, discount)
    assert (line.name, line.product_ref, line.quantity, line.price, line.value, line.discounted) == expected


@pytest.mark.parametrize(
    ("value", "lines", "expected"),
    [
        (Decimal("1250.00"), [Decimal(10)], Decimal("1250.00")),
        (None, [Decimal(10), Decimal("2.50")], Decimal("12.50")),
        (None, [], None),
    ],
)
def test_a_deals_total_is_its_value_else_its_lines(
    value: Decimal | None, lines: list[Decimal], expected: Decimal | None
) -> None:
    """The deal's value when Sell has one, else the sum of its line items' values (None when nothing is known)."""
    view = DealView(
        deal=Deal(id=7, value=value),
        deleted=False,
        sequence=1,
        stage=None,
        lines=tuple(Line(LineItem(id=n, value=v)) for n, v in enumerate(lines)),
    )
    assert view.total == expected
    assert view.category is None


# ---------------------------------------------------------------------------------------------------------------
# against a store


async def put(ledger: Ledger, stream: str, *changes: ChangeEvent) -> None:
    await ledger.ingest(stream, list(changes), position=f"{stream}-{changes[-1].event_id}", at_top=True)


@pytest.fixture
async def ledger(tmp_path: Path) -> AsyncIterator[Ledger]:
    async with await Ledger.open(tmp_path / "syncd.db", sinks=(SINK,)) as opened:
        yield opened


async def test_deal_view_gathers_the_stage_live_orders_line_items_and_products(ledger: Ledger) -> None:
    """The deal's stage, its live orders, the live line items of those orders with their products and the order's
    discount; a deleted line item, and the items of a deleted order, are left out."""
    await put(ledger, "stages", event("stage", 4, 1, "created", name="Won", category="won"))
    await put(ledger, "products", event("product", 1001, 1, "created", name="Pro licence", sku="LIC-PRO"))
    await put(
        ledger,
        "deals",
        event("deal", 7, 3, stage_id=4, contact_id=5, currency="EUR", last_stage_change_at=WON_AT),
    )
    await put(
        ledger,
        "orders",
        event("order", 50, 1, "created", deal_id=7, discount=Decimal(10)),
        event("order", 51, 1, "created", deal_id=7),
        event("order", 51, 2, "deleted"),
    )
    item = {"order_id": 50, "deal_id": 7}
    await put(
        ledger,
        "line_items",
        event("line_item", 60, 1, "created", **item, product_id=1001, quantity=Decimal(2), value=Decimal(498)),
        event("line_item", 61, 1, "created", **item, name="Setup", value=Decimal(100)),
        event("line_item", 62, 1, "created", **item, name="Gone"),
        event("line_item", 62, 2, "deleted"),
        event("line_item", 63, 1, "created", order_id=51, deal_id=7, name="In a deleted order"),
    )
    view = await deal_view(ledger, 7)
    assert view is not None
    assert (view.category, view.decided_at, view.contact_key, view.currency) == ("won", WON_AT, "contact:5", "EUR")
    assert [o.id for o in view.orders] == [50]
    assert [(line.item.id, line.name, line.discount) for line in view.lines] == [
        (60, "Pro licence", Decimal(10)),
        (61, "Setup", Decimal(10)),
    ]
    assert view.total == Decimal("538.2")  # no deal value: (498 + 100) less 10 %
    assert await deal_view(ledger, 8) is None


async def test_a_deal_whose_stage_is_unknown_says_which_record_to_wait_for(ledger: Ledger) -> None:
    """Without the stage's record the category is unknown and stage_key names what to wait for."""
    await ledger.ingest("deals", [event("deal", 7, 1, "created", stage_id=9)], position="d", at_top=True)
    view = await deal_view(ledger, 7)
    assert view is not None and (view.category, view.stage_key, view.stage_unread) == (None, "stage:9", True)
    assert "stage:9" in view.stage_wait and "syncd backfill --streams stages" in view.stage_wait


@pytest.mark.parametrize(
    ("stage_id", "stage", "unread"),
    [(None, None, False), (9, None, True), (9, Stage(id=9, category="won"), False)],
    ids=["names-none", "not-read", "read"],
)
def test_a_stage_is_unread_only_when_the_deal_names_one_syncd_has_not_read(
    stage_id: int | None, stage: Stage | None, unread: bool
) -> None:
    """A deal that names no stage never waits for one; one naming a stage waits until syncd has read it."""
    view = DealView(deal=Deal(id=7, stage_id=stage_id), deleted=False, sequence=1, stage=stage)
    assert view.stage_unread is unread


async def test_person_in_says_whether_the_person_has_reached_the_destination(ledger: Ledger) -> None:
    """Never read, or not written (an organisation too: destinations may write them): NotThere (wait on it);
    deleted, none named, or a reason the destination can never hold it (while not written there): Unreachable;
    written (a link with an id): the Person with its link."""
    people = [
        event("contact", 5, 1, "created", email="ada@example.org"),
        event("contact", 6, 1, "created", email="gone@example.org"),
        event("contact", 6, 2, "deleted"),
        event("contact", 70, 1, "created", is_organization=True, name="Engines"),
    ]
    await ledger.ingest("contacts", people, position="c", at_top=True)
    unread = NotThere("contact:4", "contact:4 has not been read from Sell yet")
    assert await person_in(ledger, SINK, "contact:4") == unread
    assert await person_in(ledger, SINK, "contact:5") == NotThere("contact:5", "contact:5 is not in salesmanago yet")
    assert isinstance(await person_in(ledger, SINK, "contact:6"), Unreachable)
    assert await person_in(ledger, SINK, "contact:70") == NotThere("contact:70", "contact:70 is not in salesmanago yet")
    assert isinstance(await person_in(ledger, SINK, ""), Unreachable)
    never = await person_in(ledger, SINK, "contact:5", never=lambda record: "has no phone")
    assert never == Unreachable("contact:5 has no phone")  # a destination's own reason, while not written
    works = await ledger.load_work(SINK, await ledger.claim(SINK, 10))
    await ledger.commit(SINK, [Done(w.key, w.seqs, remote_id="c-5") for w in works if w.key == "contact:5"])
    found = await person_in(ledger, SINK, "contact:5", never=lambda record: "has no phone")
    assert isinstance(found, Person) and found.link.remote_id == "c-5" and found.record.email == "ada@example.org"


async def test_a_notes_person_is_its_lead_or_contact_or_its_deals_contact(ledger: Ledger) -> None:
    """A note on a lead or contact is about that person; one on a deal about the deal's contact (NotThere while the
    deal is unknown); one on anything else about nobody."""
    await ledger.ingest("deals", [event("deal", 7, 1, "created", contact_id=5)], position="d", at_top=True)
    assert await note_person(ledger, Note(id=1, resource_type="lead", resource_id=9)) == "lead:9"
    assert await note_person(ledger, Note(id=1, resource_type="contact", resource_id=5)) == "contact:5"
    assert await note_person(ledger, Note(id=1, resource_type="deal", resource_id=7)) == "contact:5"
    assert await note_person(ledger, Note(id=1, resource_type="deal", resource_id=8)) == NotThere(
        "deal:8", "deal:8 has not been read from Sell yet"
    )
    assert await note_person(ledger, Note(id=1, resource_type="task", resource_id=3)) == ""
