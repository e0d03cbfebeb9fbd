"""Which destination receives which event, and under which key. Pure.

A key names one destination record (`lead:9001`, `deal:77`): a dispatcher never works on one key twice at once, and
coalesces all pending deliveries of a key into the fewest calls. Each destination takes some kinds of record, each
under a rule:

- `OWN`: the record's own key (`lead:9`, `note:12`, an organisation's `contact:70`: a destination decides whether it
  writes organisations).
- `DEAL`: the key of the deal the record belongs to (`deal:77`): a deal's own changes, its orders' and its line
  items' all go to the one key, so a change to a line item re-delivers the deal's facts, and never two workers at
  once on one deal's facts. A record that names no deal (and whose stored reference names none) is not routed.
- `ORDER`: the key of the order a line item belongs to (`order:5`; an order's own key for an order).

A change that does not carry what it belongs to (a delete with only the id) is routed by the reference the shadow
kept for its record (`stored_ref`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from state.keys import record_key, split_key
from syncd.events import ChangeEvent, Contact, Deal, LineItem, Note, Order, Record

Rule = Callable[[ChangeEvent, str], str | None]  # (event, the record's stored reference) -> key
REFERRING_KINDS = frozenset({"deal", "order", "line_item", "note"})  # the kinds whose records belong to another


def reference(record: Record) -> str:
    """The key of the record `record` belongs to, "" when none: a contact's organisation, a deal's contact (or
    organisation), an order's deal, a line item's deal (else its order), a note's lead, contact or deal. What the
    shadow indexes, so a deal's orders and line items, and an organisation's members, are found without a scan."""
    match record:
        case Contact() if record.organization_id is not None:
            return record_key("contact", record.organization_id)
        case Deal():
            parent = record.contact_id if record.contact_id is not None else record.organization_id
            return record_key("contact", parent) if parent is not None else ""
        case Order() if record.deal_id is not None:
            return record_key("deal", record.deal_id)
        case LineItem() if record.deal_id is not None:
            return record_key("deal", record.deal_id)
        case LineItem() if record.order_id is not None:
            return record_key("order", record.order_id)
        case Note() if record.resource_id is not None and record.resource_type in ("lead", "contact", "deal"):
            return record_key(record.resource_type, record.resource_id)
        case _:
            return ""


def _kind_of(key: str) -> str:
    return split_key(key)[0] if key else ""


def own(event: ChangeEvent, stored_ref: str) -> str | None:
    """The record's own key."""
    return record_key(event.kind, event.record_id)


def deal(event: ChangeEvent, stored_ref: str) -> str | None:
    """The key of the deal the record belongs to (a deal's own)."""
    if event.kind == "deal":
        return record_key("deal", event.record_id)
    parent = reference(event.record) or stored_ref
    return parent if _kind_of(parent) == "deal" else None


def order(event: ChangeEvent, stored_ref: str) -> str | None:
    """The key of the order a line item belongs to (an order's own)."""
    if event.kind == "order":
        return record_key("order", event.record_id)
    record = event.record
    if isinstance(record, LineItem) and record.order_id is not None:
        return record_key("order", record.order_id)
    return stored_ref if _kind_of(stored_ref) == "order" else None


OWN: Rule = own
DEAL: Rule = deal
ORDER: Rule = order

_PEOPLE: dict[str, Rule] = {"lead": OWN, "contact": OWN}

# sink name -> {kind it receives: the rule that gives the key}
ROUTES: dict[str, Mapping[str, Rule]] = {
    # SALESmanago: contacts, and external events per deal (its orders and line items re-deliver it) and per note
    "salesmanago": {**_PEOPLE, "deal": DEAL, "order": DEAL, "line_item": DEAL, "note": OWN},
    # Ontraport: a deal's purchases are settled under the deal's key (its orders and line items with it); notes
    # and products each under their own.
    "ontraport": {**_PEOPLE, "deal": DEAL, "order": DEAL, "line_item": DEAL, "note": OWN, "product": OWN},
}


def route(sink: str, event: ChangeEvent, stored_ref: str = "") -> str | None:
    """The key under which `sink` receives `event`, or None when the sink does not take it. `stored_ref` is the
    reference the shadow kept for the record (for a change that does not carry it)."""
    rule = ROUTES.get(sink, {}).get(event.kind)
    return rule(event, stored_ref) if rule is not None else None
