"""Ontraport purchase history, notes and products, pure: what a deal should have logged (the unit of a purchase),
each line's product, quantity and price, the processManual body field by field, the reversal for each transaction
status, the plan against the ledger; the note and product fields."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from syncd.config import OntraportPurchases
from syncd.events import Deal, LineItem, Note, Order, Price, Product, Stage
from syncd.sinks.deals import DealView, Line
from syncd.sinks.ontraport.catalogue import product_fields, ref_fields
from syncd.sinks.ontraport.notes import note_fields
from syncd.sinks.ontraport.sales import (
    Entry,
    Item,
    Keep,
    Pending,
    ProductRef,
    Refused,
    Unit,
    desired,
    line_item,
    plan,
    process_manual,
    read_ledger,
    reversal_for,
    signature,
)

WON_AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
WON_MS = int(WON_AT.timestamp() * 1000)
LATER = datetime(2026, 11, 21, 10, 0, tzinfo=UTC)
STAGES = {
    "won": Stage(id=2, name="Won", category="won"),
    "lost": Stage(id=3, name="Lost", category="lost"),
    "open": Stage(id=1, name="Qualified", category="qualified"),
}
SETTINGS = OntraportPurchases(deal_product="Sell deal")
GOLD = Product(id=1001, name="Gold", sku="G-1", description="Shiny", prices=[Price(amount=Decimal(40), currency="USD")])


def item(item_id: int, order_id: int | None = 70, **fields: Any) -> LineItem:
    return LineItem(id=item_id, order_id=order_id, deal_id=7, **fields)


def view(
    stage: str | None = "won",
    *,
    orders: tuple[Order, ...] = (),
    lines: tuple[Line, ...] = (),
    deleted: bool = False,
    **deal: Any,
) -> DealView:
    fields: dict[str, Any] = {"contact_id": 5, "currency": "USD", "last_stage_change_at": WON_AT, **deal}
    return DealView(
        deal=Deal(id=7, **fields),
        deleted=deleted,
        sequence=1,
        stage=STAGES[stage] if stage is not None else None,
        orders=orders,
        lines=lines,
    )


def ref(sell_id: int | None, name: str, sku: str = "", description: str = "", price: str | None = None) -> ProductRef:
    return ProductRef(sell_id, name, sku, description, Decimal(price) if price is not None else None)


# ---------------------------------------------------------------------------------------------------------------
# the unit of a purchase


@pytest.mark.parametrize(
    ("deal_view", "expected"),
    [
        pytest.param(view("open", value=Decimal(5)), [], id="open-wants-nothing"),
        pytest.param(view("lost", value=Decimal(5)), [], id="lost-wants-nothing"),
        pytest.param(view(None, value=Decimal(5)), [], id="no-stage-wants-nothing"),
        pytest.param(view(value=Decimal(5), deleted=True), [], id="deleted-wants-nothing"),
        pytest.param(view(), [], id="won-without-value-or-lines"),
        pytest.param(view(value=Decimal(0)), [], id="won-of-zero"),
        pytest.param(
            view(value=Decimal("1250.5")),
            [Unit("sell-deal-7", "deal 7", WON_MS, (Item(ref(None, "Sell deal"), 1, Decimal("1250.50")),))],
            id="won-value-is-one-purchase-of-the-deal-product",
        ),
        pytest.param(
            view(value=Decimal(9), last_stage_change_at=None, created_at=LATER),
            [
                Unit(
                    "sell-deal-7",
                    "deal 7",
                    int(LATER.timestamp() * 1000),
                    (Item(ref(None, "Sell deal"), 1, Decimal("9.00")),),
                )
            ],
            id="no-won-time-dates-by-creation",
        ),
        pytest.param(
            view(value=Decimal(9), last_stage_change_at=None),
            [Unit("sell-deal-7", "deal 7", 1_234_000, (Item(ref(None, "Sell deal"), 1, Decimal("9.00")),))],
            id="no-time-at-all-dates-by-the-fallback",
        ),
        pytest.param(
            view(
                value=Decimal(999),
                orders=(Order(id=70, discount=Decimal(10), created_at=LATER),),
                lines=(
                    Line(
                        item(701, product_id=1001, name="Gold", quantity=Decimal(2), price=Decimal(100)),
                        discount=Decimal(10),
                        deal_currency="USD",
                    ),
                ),
            ),
            [
                Unit(
                    "sell-order-70",
                    "order 70",
                    int(LATER.timestamp() * 1000),
                    (Item(ref(1001, "Gold", price="100.00"), 2, Decimal("90.00")),),
                )
            ],
            id="order-lines-less-discount-dated-by-the-later-order",
        ),
        pytest.param(
            view(
                orders=(Order(id=70),),
                lines=(Line(item(701, name="Hours", quantity=Decimal("1.5"), price=Decimal(10))),),
            ),
            [
                Unit(
                    "sell-order-70", "order 70", WON_MS, (Item(ref(None, "Hours", price="10.00"), 1, Decimal("15.00")),)
                )
            ],
            id="fractional-quantity-is-one-of-the-whole",
        ),
        pytest.param(
            view(
                value=Decimal(5),
                orders=(Order(id=70),),
                lines=(Line(item(701, name="Free", quantity=Decimal(0), price=Decimal(10))),),
            ),
            [],
            id="only-quantity-zero-is-nothing-sold-and-not-the-value",
        ),
        pytest.param(
            view(lines=(Line(item(701, order_id=None, name="Setup", price=Decimal(3))),)),
            [Unit("sell-deal-7", "deal 7", WON_MS, (Item(ref(None, "Setup", price="3.00"), 1, Decimal("3.00")),))],
            id="deal-line-items-in-no-order",
        ),
        pytest.param(
            view(
                orders=(Order(id=70), Order(id=71)),
                lines=(
                    Line(item(701, name="A", price=Decimal(1))),
                    Line(item(711, order_id=71, name="B", price=Decimal(2))),
                ),
            ),
            [
                Unit("sell-order-70", "order 70", WON_MS, (Item(ref(None, "A", price="1.00"), 1, Decimal("1.00")),)),
                Unit("sell-order-71", "order 71", WON_MS, (Item(ref(None, "B", price="2.00"), 1, Decimal("2.00")),)),
            ],
            id="one-purchase-per-order",
        ),
    ],
)
def test_a_won_deal_is_one_purchase_per_order_or_one_of_its_value(deal_view: DealView, expected: list[Unit]) -> None:
    """Only a won deal wants purchases: one per order with line items (less the order's discount, dated by the
    later of the won time and the order), else one of the deal's value as the deal product; never both."""
    assert desired(deal_view, SETTINGS, fallback_ms=1_234_000) == expected


@pytest.mark.parametrize(
    ("deal_view", "settings", "expected"),
    [
        pytest.param(view(value=Decimal(-5)), SETTINGS, Refused, id="negative-value"),
        pytest.param(
            view(value=Decimal(5), currency="EUR"), OntraportPurchases(currency="USD"), Refused, id="other-currency"
        ),
        pytest.param(
            view(value=Decimal(5), currency="usd"),
            OntraportPurchases(currency="USD"),
            list,
            id="same-currency-any-case",
        ),
        pytest.param(
            view(value=Decimal(5), deleted=True), OntraportPurchases(on_deal_delete="keep"), Keep, id="deleted-kept"
        ),
        pytest.param(
            view(orders=(Order(id=70),), lines=(Line(item(701, order_id=72, price=Decimal(1))),)),
            SETTINGS,
            Pending,
            id="line-of-an-order-not-read",
        ),
        pytest.param(
            view(orders=(Order(id=70),), lines=(Line(item(701, quantity=Decimal(-1), price=Decimal(1))),)),
            SETTINGS,
            Refused,
            id="negative-quantity",
        ),
        pytest.param(
            view(orders=(Order(id=70),), lines=(Line(item(701, price=Decimal("-0.01"))),)),
            SETTINGS,
            Refused,
            id="negative-price",
        ),
        pytest.param(
            view(orders=(Order(id=70),), lines=(Line(item(701, product_id=1001)),)),
            SETTINGS,
            Refused,
            id="no-price-anywhere",
        ),
    ],
)
def test_what_cannot_be_logged_is_refused_kept_or_pending(
    deal_view: DealView, settings: OntraportPurchases, expected: type
) -> None:
    """Negative amounts, a currency other than the account's and a line with no price are refused with a reason; a
    deleted deal with on_deal_delete = keep is kept; a line of an unread order is pending on that order."""
    found = desired(deal_view, settings, fallback_ms=1)
    assert isinstance(found, expected), found
    if isinstance(found, Refused):
        assert "deal 7" in found.reason or "order 70" in found.reason
    if isinstance(found, Pending):
        assert found.on == "order:72"


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        pytest.param(
            Line(item(1, product_id=1001, quantity=Decimal(3), price=Decimal("10.00"))),
            Item(ref(1001, "Sell product 1001", price="10.00"), 3, Decimal("10.00")),
            id="unnamed-product",
        ),
        pytest.param(
            Line(item(1, product_id=1001, quantity=Decimal(2)), GOLD, deal_currency="USD"),
            Item(ref(1001, "Gold", "G-1", "Shiny", "40.00"), 2, Decimal("40.00")),
            id="from-the-product",
        ),
        pytest.param(
            Line(item(1, sku="S-9", description="Work", price=Decimal(7))),
            Item(ref(None, "S-9", "S-9", "Work", "7.00"), 1, Decimal("7.00")),
            id="by-sku",
        ),
        pytest.param(
            Line(item(1, name="Odd", quantity=Decimal(3), value=Decimal(10), price=Decimal(3))),
            Item(ref(None, "Odd", price="3.00"), 3, Decimal("3.33")),
            id="value-over-quantity-to-the-cent",
        ),
        pytest.param(Line(item(1, name="Zero", quantity=Decimal(0), price=Decimal(3))), None, id="quantity-zero"),
    ],
)
def test_each_line_item_field_becomes_a_purchase_line(line: Line, expected: Item | None) -> None:
    """A line's product (Sell id, name falling back to the product's then SKU, SKU, description, price), quantity
    and unit price (its value less discount over the quantity, to the cent)."""
    assert line_item(line) == expected


# ---------------------------------------------------------------------------------------------------------------
# the call


UNIT = Unit(
    "sell-order-70",
    "order 70",
    WON_MS,
    (Item(ref(1001, "Gold"), 2, Decimal("90.00")), Item(ref(None, "Setup"), 1, Decimal("5.50"))),
)
IDS = {"product:1001": "11", "name:setup": "12"}


@pytest.mark.parametrize(
    ("oprid", "field", "value"),
    [
        (None, "contact_id", 31),
        (None, "chargeNow", "chargeLog"),
        (None, "invoice_template", -1),
        (None, "trans_date", WON_MS),
        (None, "external_order_id", "sell-order-70"),
        (
            None,
            "offer",
            {
                "products": [
                    {"id": 11, "quantity": 2, "price": [{"price": 90.0, "payment_count": 1, "unit": "day"}]},
                    {"id": 12, "quantity": 1, "price": [{"price": 5.5, "payment_count": 1, "unit": "day"}]},
                ]
            },
        ),
        (None, "oprid", None),
        ("44", "oprid", 44),
    ],
)
def test_process_manual_logs_without_charging_or_invoicing(oprid: str | None, field: str, value: Any) -> None:
    """Every field of the processManual body: the contact, chargeLog, no invoice template, the date in epoch
    milliseconds, the external order id, each line's product id, quantity and price, and the referrer."""
    body = process_manual(UNIT, "31", IDS, oprid)
    assert body.get(field) == value
    assert set(body) <= {
        "contact_id",
        "chargeNow",
        "invoice_template",
        "trans_date",
        "external_order_id",
        "offer",
        "oprid",
    }


def test_a_unit_totals_and_dates_in_seconds() -> None:
    """A unit's total is the sum of quantity × price; the transaction keeps its date in seconds."""
    assert (UNIT.total, UNIT.date_s) == (Decimal("185.50"), WON_MS // 1000)


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({}, True),
        ({"contact": "32"}, False),
        ({"oprid": "44"}, False),
        ({"ids": {"product:1001": "99", "name:setup": "12"}}, False),
    ],
)
def test_a_signature_changes_with_contact_referrer_or_products(change: dict[str, Any], same: bool) -> None:
    """The signature covers the contact, the lines' products, quantities and prices, and the referrer."""
    base = signature(UNIT, "31", IDS, None)
    other = signature(UNIT, change.get("contact", "31"), change.get("ids", IDS), change.get("oprid"))
    assert (base == other) is same


# ---------------------------------------------------------------------------------------------------------------
# reversals and the plan


@pytest.mark.parametrize(
    ("status", "configured", "call"),
    [
        ("1", "void", "void"),
        ("1", "refund", "refund"),
        ("0", "refund", "void"),
        ("7", "refund", "void"),
        ("0", "void", "void"),
        ("3", "void", "refund"),
        ("3", "refund", "refund"),
        ("2", "void", None),
        ("4", "refund", None),
        ("5", "void", None),
        ("6", "void", None),
        (" 1 ", "refund", "refund"),
    ],
)
def test_the_reversal_fits_the_status(status: str, configured: str, call: str | None) -> None:
    """The configured reversal where the status allows it; a void for what was never paid, a refund for what was
    partly refunded; nothing for what is already refunded, void, declined or written off."""
    assert reversal_for(status, configured) == call


def wanted(*pairs: tuple[str, str]) -> dict[str, tuple[Unit, str]]:
    return {x: (Unit(x, x, 1, ()), sign) for x, sign in pairs}


@pytest.mark.parametrize(
    ("want", "ledger", "reverse", "log", "keep"),
    [
        (wanted(("a", "s1")), {}, [], ["a"], []),
        (wanted(("a", "s1")), {"a": Entry("1", "s1")}, [], [], ["a"]),
        (wanted(("a", "s2")), {"a": Entry("1", "s1")}, ["a"], ["a"], []),
        ({}, {"a": Entry("1", "s1")}, ["a"], [], []),
        (wanted(("a", "s1"), ("b", "s1")), {"a": Entry("1", "s1"), "c": Entry("3", "s")}, ["c"], ["b"], ["a"]),
    ],
)
def test_the_plan_reverses_what_changed_or_went_and_logs_what_is_missing(
    want: dict[str, tuple[Unit, str]], ledger: dict[str, Entry], reverse: list[str], log: list[str], keep: list[str]
) -> None:
    """A logged purchase no longer wanted, or wanted with other content, is reversed; a wanted one not logged as it
    is now is logged; the rest stands."""
    found = plan(want, ledger)
    assert [x for x, _ in found.reverse] == reverse
    assert [u.external_id for u in found.log] == log
    assert [x for x, _ in found.keep] == keep


@pytest.mark.parametrize(
    ("sent", "expected"),
    [
        (None, {}),
        ({}, {}),
        ({"purchases": []}, {}),
        ({"purchases": {"a": {"invoice": "1", "sign": "s"}, "b": {"invoice": 2}, "c": "x"}}, {"a": Entry("1", "s")}),
    ],
)
def test_the_ledger_is_read_leniently(sent: Any, expected: dict[str, Entry]) -> None:
    """What a link keeps is read entry by entry; anything unreadable is left out."""
    assert read_ledger(sent) == expected


# ---------------------------------------------------------------------------------------------------------------
# products and notes


@pytest.mark.parametrize(
    ("product", "currency", "expected"),
    [
        (GOLD, "USD", {"name": "Gold", "price": "40.00", "sku": "G-1", "description": "Shiny", "external_id": "1001"}),
        (GOLD, "", {"name": "Gold", "price": "40.00", "sku": "G-1", "description": "Shiny", "external_id": "1001"}),
        (
            Product(id=5, name=" ", prices=[Price(amount=Decimal(-1), currency="EUR")]),
            "USD",
            {"name": "Sell product 5", "price": "0.00", "sku": "", "description": "", "external_id": "5"},
        ),
    ],
)
def test_a_sell_product_becomes_an_ontraport_product(product: Product, currency: str, expected: dict[str, str]) -> None:
    """Name (a blank one named by its id), price in the account's currency else its first (never negative), SKU,
    description, and the Sell id as external id."""
    assert product_fields(product, currency) == expected


def test_a_product_made_from_a_purchase_line_carries_what_the_line_knows() -> None:
    """A product made for a line: its name and price, and SKU, description and Sell id when known."""
    assert ref_fields(ref(None, "Setup")) == {"name": "Setup", "price": "0.00"}
    assert ref_fields(ref(7, "Gold", "G", "Shiny", "3.00")) == {
        "name": "Gold",
        "price": "3.00",
        "sku": "G",
        "description": "Shiny",
        "external_id": "7",
    }


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        (
            Note(id=1, content="Hi", created_at=WON_AT),
            {"contact_id": 31, "object_type_id": 0, "data": "Hi", "author": 2, "time": int(WON_AT.timestamp())},
        ),
        (Note(id=1, content=""), {"contact_id": 31, "object_type_id": 0, "data": "", "author": 2}),
    ],
)
def test_a_sell_note_becomes_an_ontraport_note(note: Note, expected: dict[str, Any]) -> None:
    """The contact, object type 0, the text, the configured author, and Sell's time in epoch seconds (when known)."""
    assert note_fields(note, "31", 2) == expected
