"""Ontraport purchase history, pure: what a Sell deal should have logged in Ontraport, and what to do about what was
logged for it before.

The unit of a purchase (one `transaction/processManual`, one invoice) is chosen so nothing is counted twice:

- a won deal whose live orders have line items logs ONE purchase PER ORDER, with that order's line items (the
  deal's own value is then not logged: the line items are what was sold); external order id `sell-order-<id>`;
- a won deal without line items logs ONE purchase of the deal's value, as the configured deal product;
  external order id `sell-deal-<id>`;
- a deal that is not won (open, lost, or won and reopened), a deleted deal (unless `on_deal_delete = "keep"`) and
  a deleted order want nothing: what was logged for them is reversed.

A line item's amount is its value less its order's discount; it is logged as its quantity at that amount divided by
the quantity (to the cent). A fractional quantity is logged as one of the whole amount; a quantity of zero is
nothing sold. A negative amount or quantity is refused (Ontraport cannot log one). A purchase is dated by the
deal's won time (`last_stage_change_at`), an order by the later of that and the order's own date: epoch
milliseconds, never 0 (Ontraport would date it 1970, or now).

What was logged is kept per deal as a ledger (external order id -> invoice id and a signature of what was sent:
contact, lines, referrer). A unit whose signature changed is reversed and logged again.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from syncd.config import OntraportPurchases
from syncd.sinks.deals import DealView, Line
from syncd.sinks.mapping import digest

CENT = Decimal("0.01")

# Transaction statuses (object 46): 0 unpaid, 1 paid, 2 refunded, 3 partially refunded, 4 void, 5 declined,
# 6 written off, 7 pending.
UNPAID, PAID, REFUNDED, PARTIALLY_REFUNDED, VOID, DECLINED, WRITTEN_OFF, PENDING = (str(n) for n in range(8))
UNDONE = frozenset({REFUNDED, VOID, DECLINED, WRITTEN_OFF})  # nothing left to reverse


@dataclass(frozen=True, slots=True)
class ProductRef:
    """How a purchase line names its product: the Sell product (by id) when the line item names one, else its
    name; with what a product created from it carries."""

    sell_id: int | None
    name: str
    sku: str = ""
    description: str = ""
    price: Decimal | None = None

    @property
    def key(self) -> str:
        """One product's identity, for caches and locks."""
        return f"product:{self.sell_id}" if self.sell_id is not None else f"name:{self.name.casefold()}"


@dataclass(frozen=True, slots=True)
class Item:
    """One line of a purchase: `quantity` of `product` at `price` each."""

    product: ProductRef
    quantity: int
    price: Decimal  # to the cent, never negative

    @property
    def total(self) -> Decimal:
        return self.price * self.quantity


@dataclass(frozen=True, slots=True)
class Unit:
    """One purchase to log: an order's line items, or a deal's value."""

    external_id: str  # "sell-order-7" / "sell-deal-5": the transaction's external_order_id
    what: str  # "order 7" / "deal 5", for reasons and logs
    date_ms: int  # epoch milliseconds, > 0
    items: tuple[Item, ...]

    @property
    def total(self) -> Decimal:
        return sum((item.total for item in self.items), Decimal(0))

    @property
    def date_s(self) -> int:
        """The date the transaction keeps (epoch seconds)."""
        return self.date_ms // 1000


@dataclass(frozen=True, slots=True)
class Refused:
    """The deal cannot be logged as Sell has it: dead-letter it with `reason`."""

    reason: str


@dataclass(frozen=True, slots=True)
class Keep:
    """Leave what was logged as it is (a deleted deal with `on_deal_delete = "keep"`)."""

    reason: str


@dataclass(frozen=True, slots=True)
class Pending:
    """Not yet: a line item names an order syncd has not read (`on`, its key)."""

    on: str
    reason: str


def desired(view: DealView, settings: OntraportPurchases, *, fallback_ms: int) -> list[Unit] | Refused | Keep | Pending:
    """The purchases the deal should have logged now (none unless it is won). `fallback_ms` dates a deal Sell gives
    no won time for (when syncd stored the change)."""
    if view.deleted:
        if settings.on_deal_delete == "keep":
            return Keep("the deal was deleted in Sell; on_deal_delete = keep leaves its purchases")
        return []
    if view.category != "won":
        return []
    deal_id = view.deal.id
    if settings.currency and view.currency and view.currency.upper() != settings.currency:
        return Refused(
            f"deal {deal_id} is in {view.currency}, the Ontraport account in {settings.currency}"
            " (purchases.currency): it is not logged at the wrong amount"
        )
    orders = {order.id: order for order in view.orders}
    named = {line.item.order_id for line in view.lines if line.item.order_id is not None}
    unread = sorted(named - set(orders))
    if unread:
        return Pending(f"order:{unread[0]}", f"line items of deal {deal_id} name order {unread[0]}, not read yet")
    won_ms = _ms(view.decided_at) or _ms(view.deal.created_at) or fallback_ms
    groups: dict[int | None, list[Line]] = {}
    for line in view.lines:
        groups.setdefault(line.item.order_id, []).append(line)
    units: list[Unit] = []
    for order_id in sorted(groups, key=lambda o: -1 if o is None else o):
        items: list[Item] = []
        for line in groups[order_id]:
            item = line_item(line)
            if isinstance(item, Refused):
                return Refused(f"{'order ' + str(order_id) if order_id else 'deal ' + str(deal_id)}: {item.reason}")
            if item is not None:
                items.append(item)
        if not items:
            continue
        if order_id is None:  # line items of the deal itself, in no order
            units.append(Unit(f"sell-deal-{deal_id}", f"deal {deal_id}", won_ms, tuple(items)))
        else:
            date_ms = max(won_ms, _ms(orders[order_id].created_at) or 0)
            units.append(Unit(f"sell-order-{order_id}", f"order {order_id}", date_ms, tuple(items)))
    if view.lines:
        return units  # the deal has line items: they are what was sold (even when all were of quantity 0)
    value = view.deal.value
    if value is None or value == 0:
        return []
    if value < 0:
        return Refused(f"deal {deal_id} has a negative value ({value}): Ontraport cannot log a negative amount")
    item = Item(ProductRef(None, settings.deal_product.strip()), 1, value.quantize(CENT))
    return [Unit(f"sell-deal-{deal_id}", f"deal {deal_id}", won_ms, (item,))]


def line_item(line: Line) -> Item | Refused | None:
    """One line item as a purchase line (None: nothing sold, a quantity of zero)."""
    item = line.item
    quantity = line.quantity
    amount = line.discounted
    label = f"line item {item.id}"
    if quantity < 0:
        return Refused(f"{label} has a negative quantity ({quantity}): Ontraport cannot log it")
    if quantity == 0:
        return None
    if amount is None:
        return Refused(f"{label} has no price (neither its own nor its product's in {line.deal_currency or '?'})")
    if amount < 0:
        return Refused(f"{label} has a negative amount ({amount}): Ontraport cannot log a negative amount")
    product = line.product
    fallback_name = f"Sell product {item.product_id}" if item.product_id is not None else label
    ref = ProductRef(
        sell_id=item.product_id,
        name=line.name or fallback_name,
        sku=(item.sku or (product.sku if product is not None else "")).strip(),
        description=(product.description if product is not None else item.description).strip(),
        price=line.price.quantize(CENT) if line.price is not None and line.price >= 0 else None,
    )
    if quantity == quantity.to_integral_value():
        count = int(quantity)
        return Item(ref, count, (amount / count).quantize(CENT))
    return Item(ref, 1, amount.quantize(CENT))


def signature(unit: Unit, contact_id: str, product_ids: Mapping[str, str], oprid: str | None) -> str:
    """What identifies a logged purchase's content: a change of any of it means logging it again."""
    lines = [(product_ids[i.product.key], i.quantity, str(i.price)) for i in unit.items]
    return digest({"contact": contact_id, "lines": lines, "oprid": oprid or ""})


def offer_lines(unit: Unit, product_ids: Mapping[str, str]) -> list[tuple[str, int, str]]:
    """The lines as Ontraport keeps them (product id, quantity, price to the cent): what a purchase read back is
    compared with."""
    return sorted((product_ids[i.product.key], i.quantity, str(i.price)) for i in unit.items)


def process_manual(unit: Unit, contact_id: str, product_ids: Mapping[str, str], oprid: str | None) -> dict[str, Any]:
    """The body of `POST /1/transaction/processManual` that LOGS the purchase: never charged (`chargeLog`), no
    invoice e-mailed (`invoice_template: -1`), dated in epoch milliseconds."""
    body: dict[str, Any] = {
        "contact_id": int(contact_id),
        "chargeNow": "chargeLog",
        "trans_date": unit.date_ms,
        "invoice_template": -1,
        "external_order_id": unit.external_id,
        "offer": {
            "products": [
                {
                    "id": int(product_ids[item.product.key]),
                    "quantity": item.quantity,
                    "price": [{"price": float(item.price), "payment_count": 1, "unit": "day"}],
                }
                for item in unit.items
            ]
        },
    }
    if oprid:
        body["oprid"] = int(oprid)
    return body


def reversal_for(status: str, configured: str) -> str | None:
    """The call that undoes a logged transaction in `status` ("void" or "refund"), None when nothing is left to
    undo. The configured one where the status allows it; a refund where only a refund can (partly refunded), a void
    where only a void can (never paid: unpaid or pending)."""
    status = status.strip()
    if status in UNDONE:
        return None
    if status in (PAID, PARTIALLY_REFUNDED) and (configured == "refund" or status == PARTIALLY_REFUNDED):
        return "refund"
    return "void"


@dataclass(frozen=True, slots=True)
class Entry:
    """One purchase the ledger says is logged."""

    invoice: str
    sign: str

    def as_json(self) -> dict[str, str]:
        return {"invoice": self.invoice, "sign": self.sign}


def read_ledger(sent: Mapping[str, Any] | None) -> dict[str, Entry]:
    """The purchases a deal's link says are logged (external order id -> entry); anything unreadable is left out."""
    raw = sent.get("purchases") if isinstance(sent, Mapping) else None
    if not isinstance(raw, Mapping):
        return {}
    ledger: dict[str, Entry] = {}
    for external_id, entry in raw.items():
        if isinstance(entry, Mapping) and isinstance(entry.get("invoice"), str) and isinstance(entry.get("sign"), str):
            ledger[str(external_id)] = Entry(entry["invoice"], entry["sign"])
    return ledger


@dataclass(frozen=True, slots=True)
class Plan:
    """What to do: reverse these logged purchases, log these units; the rest of the ledger stands."""

    reverse: tuple[tuple[str, Entry], ...]
    log: tuple[Unit, ...]
    keep: tuple[tuple[str, Entry], ...]


def plan(wanted: Mapping[str, tuple[Unit, str]], ledger: Mapping[str, Entry]) -> Plan:
    """Compare what should be logged (external id -> unit and its signature) with the ledger: a logged purchase no
    longer wanted, or wanted with other content, is reversed; a wanted unit not logged as it is now is logged."""
    reverse = tuple((x, e) for x, e in sorted(ledger.items()) if x not in wanted or wanted[x][1] != e.sign)
    keep = tuple((x, e) for x, e in sorted(ledger.items()) if x in wanted and wanted[x][1] == e.sign)
    kept = {x for x, _ in keep}
    log = tuple(unit for x, (unit, _) in sorted(wanted.items()) if x not in kept)
    return Plan(reverse, log, keep)


def _ms(moment: datetime | None) -> int | None:
    if moment is None:
        return None
    ms = int(moment.timestamp() * 1000)
    return ms if ms > 0 else None
