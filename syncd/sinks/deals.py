"""A Sell deal as a destination sees it: its stage's category (won / lost / open), when it was won or lost, its live
orders and line items with their products, and its total. Gathered through `Lookups` (the shadow: the deal, its
stage, the orders and line items that belong to it, found through the reference index, and their products); what it
holds is then read purely.

A deal's money: `total` is the deal's value when Sell has one, else the sum of its line items' values less their
order's discount (percent). A line item's value is Sell's `value` when set, else price × quantity; its price is the
line item's own, else its product's price in the line item's (or deal's) currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Literal

from state.keys import record_key
from syncd.events import Deal, LineItem, Order, Product, Stage
from syncd.sinks.base import Lookups

Category = Literal["won", "lost", "open"]
HUNDRED = Decimal(100)


def category_of(stage: Stage) -> Category:
    """A stage's category as a destination needs it: "won", "lost", or "open" for every other Sell category."""
    category = stage.category.strip().lower()
    return "won" if category == "won" else "lost" if category == "lost" else "open"


@dataclass(frozen=True, slots=True)
class Line:
    """One live line item of a deal, with its product when syncd knows it."""

    item: LineItem
    product: Product | None = None
    discount: Decimal | None = None  # the order's discount, percent
    deal_currency: str = ""  # for a line item that names no currency of its own

    @property
    def name(self) -> str:
        """The line item's name, else its product's, else its SKU."""
        return (self.item.name or (self.product.name if self.product else "") or self.item.sku).strip()

    @property
    def product_ref(self) -> str:
        """How a destination names the product: Sell's product id, else the SKU, else the name."""
        if self.item.product_id is not None:
            return str(self.item.product_id)
        return (self.item.sku or self.name).strip()

    @property
    def quantity(self) -> Decimal:
        return self.item.quantity if self.item.quantity is not None else Decimal(1)

    @property
    def price(self) -> Decimal | None:
        if self.item.price is not None:
            return self.item.price
        currency = self.item.currency or self.deal_currency
        return self.product.price_in(currency) if self.product is not None else None

    @property
    def value(self) -> Decimal | None:
        """What the line is worth before the order's discount."""
        if self.item.value is not None:
            return self.item.value
        return self.price * self.quantity if self.price is not None else None

    @property
    def discounted(self) -> Decimal | None:
        """The line's value less the order's discount."""
        value = self.value
        if value is None or not self.discount:
            return value
        return value * (HUNDRED - self.discount) / HUNDRED


@dataclass(frozen=True, slots=True)
class DealView:
    """What syncd knows of one deal now."""

    deal: Deal
    deleted: bool
    sequence: int
    stage: Stage | None  # None: the deal names no stage, or syncd has not seen it (see `stage_key`)
    orders: tuple[Order, ...] = ()  # live, by id
    lines: tuple[Line, ...] = ()  # live line items of live orders, by id

    @property
    def key(self) -> str:
        return record_key("deal", self.deal.id)

    @property
    def contact_key(self) -> str:
        """The key of the Sell contact the deal is for: its person, else its organisation ("" when it names
        neither)."""
        deal = self.deal
        contact = deal.contact_id if deal.contact_id is not None else deal.organization_id
        return record_key("contact", contact) if contact is not None else ""

    @property
    def stage_key(self) -> str:
        """The key of the deal's stage ("" when it names none): what a writer waits on when the stage is unknown."""
        return record_key("stage", self.deal.stage_id) if self.deal.stage_id is not None else ""

    @property
    def stage_unread(self) -> bool:
        """The deal names a stage syncd has not read: its writers wait on `stage_key` (`stage_wait`)."""
        return self.deal.stage_id is not None and self.stage is None

    @property
    def stage_wait(self) -> str:
        """Why a deal waits on its unread stage, and the way out for one older than the Firehose keeps."""
        return (
            f"its stage ({self.stage_key}) has not been read from Sell yet (stages older than the Firehose's 72 hours"
            " come from `syncd backfill --streams stages`)"
        )

    @property
    def category(self) -> Category | None:
        """won / lost / open; None when the stage is not known."""
        return category_of(self.stage) if self.stage is not None else None

    @property
    def decided_at(self) -> datetime | None:
        """When the deal reached its current stage (Sell's `last_stage_change_at`; the won or lost time)."""
        return self.deal.last_stage_change_at

    @property
    def currency(self) -> str:
        return self.deal.currency or next((line.item.currency for line in self.lines if line.item.currency), "")

    @property
    def total(self) -> Decimal | None:
        """The deal's value, else what its line items add up to (after their orders' discounts)."""
        if self.deal.value is not None:
            return self.deal.value
        values = [line.discounted for line in self.lines]
        known = [value for value in values if value is not None]
        return sum(known, Decimal(0)) if known else None


async def deal_view(lookups: Lookups, deal_id: int) -> DealView | None:
    """Everything syncd knows of deal `deal_id` (None when it has never seen the deal)."""
    shadow = await lookups.shadow("deal", deal_id)
    if shadow is None or not isinstance(shadow.record, Deal):
        return None
    deal = shadow.record
    stage = None
    if deal.stage_id is not None:
        found = await lookups.shadow("stage", deal.stage_id)
        stage = found.record if found is not None and isinstance(found.record, Stage) else None
    key = record_key("deal", deal_id)
    stored_orders = await lookups.belonging_to("order", [key])
    orders = {s.record_id: s.record for s in stored_orders if not s.deleted and isinstance(s.record, Order)}
    gone = {s.record_id for s in stored_orders if s.deleted}
    items = [
        s.record
        for s in await lookups.belonging_to("line_item", [key, *(record_key("order", o) for o in orders)])
        if not s.deleted and isinstance(s.record, LineItem) and s.record.order_id not in gone
    ]
    lines = []
    for item in sorted({i.id: i for i in items}.values(), key=lambda i: i.id):
        product = None
        if item.product_id is not None:
            found = await lookups.shadow("product", item.product_id)
            product = found.record if found is not None and isinstance(found.record, Product) else None
        order = orders.get(item.order_id) if item.order_id is not None else None
        lines.append(Line(item, product, order.discount if order is not None else None, deal.currency))
    return DealView(
        deal=deal,
        deleted=shadow.deleted,
        sequence=shadow.sequence,
        stage=stage,
        orders=tuple(orders[i] for i in sorted(orders)),
        lines=tuple(lines),
    )
