"""A Sell deal's Ontraport purchase history: the deal key's writer (its orders and line items come to the same key).

Each delivery settles the deal as a whole: what it should have logged now (ontraport/sales.py, pure) against the
ledger its link keeps (external order id -> invoice id and what was sent). A purchase is LOGGED, never charged
(`chargeNow: "chargeLog"`, `invoice_template: -1`: no invoice is e-mailed), on the deal's contact as Ontraport
holds it; a logged purchase Sell takes back (the deal leaves "won", an order or line item deleted or changed, the
deal deleted) is voided or refunded (`purchases.reversal`), read back to make sure it was (an account may ignore a
reversal its status does not allow), and a changed one is logged again.

Ontraport does not deduplicate sales, so a purchase is never logged twice: the invoice id is kept, and before any
purchase is logged the account is searched for one already there (a write whose outcome was lost: a crash, a
timeout) — by its external order id, else by contact and date (for accounts that keep external order ids as
numbers) — and one with the same lines, referrer and date is taken as it; a live one of ours with other content is
reversed.

Waits (no attempt counted): the deal not read yet, its stage unknown, a line item's order not read yet, the contact
not in Ontraport yet, a linked product gone (mapping drift). A won deal is logged once the orders and line_items
streams reached their top `purchases.settle` after its newest change was stored, so its line items arriving a
moment after it never make a purchase of the deal's value first.

Referrers: `purchases.referrer_field` names a Sell custom field (the deal's, else its contact's) holding the
referring partner's e-mail; the partner's Ontraport contact goes into `oprid`, and into the customer's `freferrer`
(when it has none) and `lreferrer`. A partner Ontraport does not have is logged (`referrer_not_found`) and shown as
drift; the purchase is logged without one and logged again once the partner is found.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from syncd.config import OntraportConfig
from syncd.errors import PermanentError, TransientError
from syncd.logs import get_logger
from syncd.sinks.base import Lookups
from syncd.sinks.deals import DealView, deal_view
from syncd.sinks.dependencies import NotThere, Person, Unreachable
from syncd.sinks.mapping import digest
from syncd.sinks.ontraport.catalogue import Catalogue, Vanished
from syncd.sinks.ontraport.contacts import contact_for, never
from syncd.sinks.ontraport.http import OntraportApi
from syncd.sinks.ontraport.objects import get_one, search
from syncd.sinks.ontraport.sales import (
    CENT,
    UNDONE,
    Entry,
    Keep,
    Pending,
    Refused,
    Unit,
    desired,
    offer_lines,
    plan,
    process_manual,
    read_ledger,
    reversal_for,
    signature,
)
from syncd.work import Dead, Deferred, Done, KeyWork, Result, Skipped, Waiting

SINK = "ontraport"
TRANSACTION_OBJECT = 46
LINE_STREAMS = ("orders", "line_items")  # what a won deal's purchases are made of
PARTNER_AGE = 600.0  # seconds a referring partner's contact id is trusted


class PurchaseWriter:
    """Delivers deal keys to one Ontraport account."""

    def __init__(
        self,
        config: OntraportConfig,
        api: OntraportApi,
        catalogue: Catalogue,
        *,
        lookups: Lookups,
        streams: Sequence[str],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._settings = config.purchases
        self._never = never(config)
        self._api = api
        self._catalogue = catalogue
        self._lookups = lookups
        self._line_streams = tuple(s for s in LINE_STREAMS if s in streams)
        self._clock = clock
        self._partners: dict[str, tuple[str | None, float]] = {}
        self._log = get_logger(sink=SINK)

    async def deliver(self, work: KeyWork) -> Result:
        if not self._settings.enabled:
            return Skipped(work.key, work.seqs, "purchases are off (sinks.ontraport.purchases.enabled = false)")
        view = await deal_view(self._lookups, work.record_id)
        if view is None:
            return Waiting(work.key, work.key, f"{work.key} has not been read from Sell yet")
        if not view.deleted and view.stage_unread:
            return Waiting(work.key, view.stage_key, view.stage_wait)
        newest = max((d.ingested_at for d in work.deliveries), default=0.0) or self._clock()
        wanted = desired(view, self._settings, fallback_ms=int(newest * 1000))
        if isinstance(wanted, Refused):
            return Dead(work.key, work.seqs, wanted.reason)
        if isinstance(wanted, Keep):
            return Skipped(work.key, work.seqs, wanted.reason)
        if isinstance(wanted, Pending):
            return Waiting(work.key, wanted.on, wanted.reason)
        ledger = read_ledger(work.link.sent if work.link is not None else None)
        if not wanted and not ledger:
            return Skipped(work.key, work.seqs, f"nothing to log: the deal is {_state(view)}")
        contact = ""
        oprid: str | None = None
        referrer = ""
        product_ids: dict[str, str] = {}
        signed: dict[str, tuple[Unit, str]] = {}
        if wanted:
            person = await contact_for(self._lookups, view.contact_key, self._never)
            if isinstance(person, NotThere):
                return Waiting(work.key, person.on, person.reason)
            if isinstance(person, Unreachable):
                return Skipped(work.key, work.seqs, f"its purchases have no contact to go on: {person.reason}")
            contact = str(person.link.remote_id)
            for unit in wanted:
                for item in unit.items:
                    found = await self._catalogue.product_id(item.product)
                    if isinstance(found, Vanished):
                        return Waiting(work.key, found.on, found.reason)
                    product_ids[item.product.key] = found
            oprid, referrer = await self._referrer(work, view, person, work.link.sent if work.link else None)
            signed = {u.external_id: (u, signature(u, contact, product_ids, oprid)) for u in wanted}
        todo = plan(signed, ledger)
        if not todo.reverse and not todo.log:
            return Skipped(work.key, work.seqs, "its purchases are logged as they are")
        if todo.log and not await self._settled(work, newest):
            at = self._clock() + max(1.0, float(self._settings.settle))
            return Deferred(work.key, at, "waiting for the deal's orders and line items to arrive")
        done: list[str] = []
        for external_id, entry in todo.reverse:
            done.append(f"{external_id} {await self._reverse(entry.invoice)}")
        now_logged = dict(todo.keep)
        for unit in todo.log:
            taken = {entry.invoice for entry in now_logged.values()}  # another unit's purchase is never this one
            try:
                invoice, how = await self._log_once(unit, contact, product_ids, oprid, taken)
            except PermanentError:
                # A product the purchase names may be gone from Ontraport since it was last looked at.
                again = await self._catalogue.recheck((i.product for i in unit.items), product_ids)
                if isinstance(again, Vanished):
                    return Waiting(work.key, again.on, again.reason)
                if again:
                    raise TransientError(f"a product of {unit.what} is another Ontraport product now") from None
                raise
            now_logged[unit.external_id] = Entry(invoice, signed[unit.external_id][1])
            done.append(f"{unit.external_id} {how} as invoice {invoice}")
        if oprid and todo.log:
            await self._credit(contact, oprid)
        entries = {x: e.as_json() for x, e in sorted(now_logged.items())}
        sent: dict[str, Any] = {"purchases": entries, "referrer": referrer}
        invoices = ",".join(e.invoice for _, e in sorted(now_logged.items()))
        return Done(work.key, work.seqs, remote_id=invoices, digest=digest(sent), sent=sent, detail="; ".join(done))

    # ------------------------------------------------------------------------------------------------ logging

    async def _settled(self, work: KeyWork, newest: float) -> bool:
        """Whether the streams a deal's line items come from reached their top `settle` after its newest change."""
        since = newest + float(self._settings.settle)
        return await self._lookups.streams_caught_up_since(self._line_streams, since)

    async def _log_once(
        self, unit: Unit, contact: str, product_ids: Mapping[str, str], oprid: str | None, taken: set[str]
    ) -> tuple[str, str]:
        """The invoice of `unit`: one already in Ontraport (a write whose outcome was lost) that is no other unit's
        (`taken`), else a new log."""
        found = await self._already_logged(unit, contact, product_ids, oprid, taken)
        if found is not None:
            return found, "found logged"
        body = process_manual(unit, contact, product_ids, oprid)
        answer = await self._api.call("POST", "/1/transaction/processManual", body=body)
        data = answer.data if isinstance(answer.data, dict) else {}
        invoice = str(data.get("invoice_id") or "").strip()
        if not invoice.isdigit():
            raise TransientError("Ontraport answered processManual without an invoice id")
        self._log.info("purchase_logged", unit=unit.what, invoice=invoice, lines=len(unit.items))
        return invoice, "logged"

    async def _already_logged(
        self, unit: Unit, contact: str, product_ids: Mapping[str, str], oprid: str | None, taken: set[str]
    ) -> str | None:
        """A live transaction in Ontraport that IS this purchase (same lines, referrer and date) and no other unit's
        (`taken`): by its external order id, else by contact and date among those without another external order
        id (an account keeping the ids as numbers keeps ours as 0). Live ones under the external order id with other
        content are earlier versions whose outcome was lost: they are reversed."""
        clauses: list[tuple[str, str | int]] = [("external_order_id", unit.external_id), ("contact_id", contact)]
        ours = await search(self._api, "Transactions", clauses)
        by_date = not ours
        if by_date:
            dated = await search(self._api, "Transactions", [("contact_id", contact), ("date", unit.date_s)])
            ours = [t for t in dated if str(t.get("external_order_id") or "").strip() in ("", "0", unit.external_id)]
        adopted: str | None = None
        for transaction in ours:
            invoice = str(transaction.get("id") or "")
            if not invoice or invoice in taken or str(transaction.get("status") or "").strip() in UNDONE:
                continue
            if adopted is None and await self._is(transaction, unit, product_ids, oprid):
                adopted = invoice
            elif not by_date and str(transaction.get("external_order_id") or "") == unit.external_id:
                self._log.warning("purchase_stale_found", unit=unit.what, invoice=invoice)
                await self._reverse(invoice)
        return adopted

    async def _is(
        self, transaction: Mapping[str, Any], unit: Unit, product_ids: Mapping[str, str], oprid: str | None
    ) -> bool:
        if str(transaction.get("total") or "") != str(unit.total.quantize(CENT)):
            return False
        if str(transaction.get("date") or "") != str(unit.date_s):
            return False
        if str(transaction.get("oprid") or "0") != (oprid or "0"):
            return False
        rows = await search(self._api, "Purchases", [("invoice_id", str(transaction["id"]))])
        lines = sorted(
            (str(r.get("product_id") or ""), int(str(r.get("quantity") or "0")), str(r.get("price") or ""))
            for r in rows
        )
        return lines == offer_lines(unit, product_ids)

    async def _reverse(self, invoice: str) -> str:
        """Void or refund one logged transaction, and read it back: raises PermanentError when Ontraport left it as
        it was. What it did, for the outcome's detail."""
        before = await get_one(self._api, "Transaction", invoice)
        if before is None:
            return f"invoice {invoice} no longer in Ontraport"
        status = str(before.get("status") or "")
        call = reversal_for(status, self._settings.reversal)
        if call is None:
            return f"invoice {invoice} already reversed"
        body = {"objectID": TRANSACTION_OBJECT, "ids": [int(invoice)]}
        await self._api.call("PUT", f"/1/transaction/{call}", body=body)
        after = await get_one(self._api, "Transaction", invoice)
        if after is not None and reversal_for(str(after.get("status") or ""), self._settings.reversal) is not None:
            raise PermanentError(
                f"Ontraport did not {call} invoice {invoice}: its status is still {after.get('status')!r}"
                " (reverse it by hand, then replay)",
                request=str(body),
            )
        self._log.info("purchase_reversed", invoice=invoice, how=call)
        return f"invoice {invoice} {'voided' if call == 'void' else 'refunded'}"

    # ------------------------------------------------------------------------------------------------ referrers

    async def _referrer(
        self, work: KeyWork, view: DealView, person: Person, before: Mapping[str, Any] | None
    ) -> tuple[str | None, str]:
        """The referring partner's Ontraport contact id (None: none named, or not found), and how it went
        ("", "found", "missing") for the ledger."""
        field = self._settings.referrer_field
        if not field:
            return None, ""
        value = view.deal.custom.get(field) if field in view.deal.custom else person.record.custom.get(field)
        email = value.strip() if isinstance(value, str) else ""
        subject = f"referrer of {work.key}"
        was = before.get("referrer") if isinstance(before, Mapping) else ""
        partner = await self._partner(email) if email else None
        if email and partner is None:
            problem = (
                f"the referring partner Sell custom field {field!r} names is not an Ontraport contact:"
                " its purchases are logged without a referrer"
            )
            await self._lookups.report_drift(SINK, subject, problem)
            self._log.warning("referrer_not_found", key=work.key, field=field)
            return None, "missing"
        if was == "missing":
            await self._lookups.report_drift(SINK, subject, None)
        return partner, "found" if partner else ""

    async def _partner(self, email: str) -> str | None:
        cached = self._partners.get(email.casefold())
        if cached is not None and self._clock() - cached[1] < PARTNER_AGE:
            return cached[0]
        params = {"objectID": "0", "email": email}
        answer = await self._api.call("GET", "/1/object/getByEmail", params=params, missing_ok=True)
        data = answer.data if isinstance(answer.data, dict) else {}
        found = str(data["id"]) if not answer.missing and data.get("id") else None
        self._partners[email.casefold()] = (found, self._clock())
        return found

    async def _credit(self, contact: str, partner: str) -> None:
        """The customer's first referrer (when it has none) and last referrer are the partner."""
        record = await get_one(self._api, "Contact", contact)
        if record is None:
            return
        changes: dict[str, str] = {}
        if str(record.get("freferrer") or "0").strip() in ("", "0"):
            changes["freferrer"] = partner
        if str(record.get("lreferrer") or "").strip() != partner:
            changes["lreferrer"] = partner
        if changes:
            await self._api.call("PUT", "/1/Contacts", body={"id": contact, **changes})


def _state(view: DealView) -> str:
    if view.deleted:
        return "deleted"
    if view.category is None:
        return "in no stage"
    return view.category if view.category != "won" else "won with nothing of value"
