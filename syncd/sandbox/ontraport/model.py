"""The in-memory Ontraport account behind the sandbox: contacts, notes, products, purchases and transactions.

Pure state and rules, no HTTP: every operation takes the request parameters (already decoded from form or JSON)
and returns what goes under `data`, or raises `ApiError(status, text)`. All methods take one lock, so tests may
read from another thread while the server thread writes.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from syncd.sandbox.ontraport import commerce, ledger, notes
from syncd.sandbox.ontraport.behaviour import Behaviour
from syncd.sandbox.ontraport.criteria import Condition, InvalidQuery, is_number, matches, parse_condition
from syncd.sandbox.ontraport.errors import ApiError, NotFound
from syncd.sandbox.ontraport.fields import (
    CONTACT_FIELDS,
    DEFAULT_CUSTOM_FIELDS,
    FieldDef,
    Value,
    contact_defaults,
    country_code,
    list_value,
    to_text,
    valid_email,
)
from syncd.sandbox.ontraport.ids import parse_id

Record = dict[str, Value]
MAX_RANGE = 50
# Every invoice e-mail any simulated account sends is also counted process-wide and, when this environment variable
# names a file, appended to it as one JSON line: a test suite sees what every account it ever made (in its own
# process or in a child such as `syncd demo`) e-mailed, without having to be handed each one.
INVOICE_LOG_ENV = "SYNCD_SANDBOX_INVOICE_LOG"


class _InvoiceTally:
    """Invoice e-mails of every account in this process."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.count = 0

    def add(self, invoice: Mapping[str, Value]) -> None:
        with self.lock:
            self.count += 1
            path = os.environ.get(INVOICE_LOG_ENV)
            if path:
                with open(path, "a", encoding="utf-8") as log:
                    log.write(json.dumps({**invoice, "pid": os.getpid()}) + "\n")


_TALLY = _InvoiceTally()


def invoices_emailed_in_process() -> int:
    """Invoice e-mails sent by every account this process has simulated so far."""
    with _TALLY.lock:
        return _TALLY.count


@dataclass(frozen=True, slots=True)
class ObjectType:
    id: int
    singular: str  # "Contact": GET/DELETE one record
    plural: str  # "Contacts": list, create, update


CONTACT, NOTE, PRODUCT, PURCHASE, TRANSACTION = 0, 12, 16, 17, 46
OBJECT_TYPES: dict[int, ObjectType] = {
    CONTACT: ObjectType(CONTACT, "Contact", "Contacts"),
    NOTE: ObjectType(NOTE, "Note", "Notes"),
    PRODUCT: ObjectType(PRODUCT, "Product", "Products"),
    PURCHASE: ObjectType(PURCHASE, "Purchase", "Purchases"),
    TRANSACTION: ObjectType(TRANSACTION, "Transaction", "Transactions"),
}
_FIELDS: dict[int, tuple[str, ...]] = {
    NOTE: notes.FIELDS,
    PRODUCT: commerce.PRODUCT_FIELDS,
    PURCHASE: ledger.PURCHASE_FIELDS,
    TRANSACTION: ledger.TRANSACTION_FIELDS,
}


def _truthy(value: Any) -> bool:
    text = to_text(value)
    return text is not None and text.strip().lower() in ("1", "true", "yes", "on")


class OntraportModel:
    """One Ontraport account."""

    def __init__(
        self, *, clock: Callable[[], float] = time.time, custom_fields: Iterable[FieldDef] = DEFAULT_CUSTOM_FIELDS
    ) -> None:
        self._clock = clock
        self.behaviour = Behaviour()  # the sandbox replaces it when a switch changes
        self._lock = threading.RLock()
        self._custom: dict[str, FieldDef] = {f.key: f for f in custom_fields}
        self._rows: dict[int, dict[int, Record]] = {t: {} for t in OBJECT_TYPES}
        self._next_id: dict[int, int] = dict.fromkeys(OBJECT_TYPES, 1)
        self._reject: set[str] = set()
        self.creates = 0
        self.deletes = 0
        self.invoices: list[dict[str, Value]] = []  # invoice e-mails sent to customers
        self.writes: Counter[int] = Counter()
        # Equality look-ups on contact fields (e-mail, an external id), like a real account's indexes: built the first
        # time a field is searched, then kept up to date on every write. Casefolded text -> contact ids.
        self._indexes: dict[str, dict[str, set[int]]] = {}

    def now(self) -> str:
        return str(int(self._clock()))

    # ------------------------------------------------------------------------------------------------ fields

    def contact_fields(self) -> list[FieldDef]:
        with self._lock:
            return [*CONTACT_FIELDS, *self._custom.values()]

    def add_fields(self, fields: Iterable[FieldDef]) -> None:
        with self._lock:
            for f in fields:
                self._custom[f.key] = f
                for record in self._rows[CONTACT].values():
                    record.setdefault(f.key, None)

    def field_keys(self, object_id: int) -> set[str]:
        if object_id == CONTACT:
            return {"id", *(f.key for f in self.contact_fields())}
        return set(_FIELDS[object_id])

    def reject_emails(self, emails: Iterable[str]) -> list[str]:
        with self._lock:
            self._reject = {e.strip().casefold() for e in emails if e.strip()}
            return sorted(self._reject)

    # ------------------------------------------------------------------------------------------------ reads

    def get(self, object_id: int, record_id: int) -> Record:
        with self._lock:
            record = self._rows[object_id].get(record_id)
            if record is None:
                raise NotFound()
            return dict(record)

    def all(self, object_id: int) -> list[Record]:
        with self._lock:
            return [dict(r) for _, r in sorted(self._rows[object_id].items())]

    def count(self, object_id: int) -> int:
        with self._lock:
            return len(self._rows[object_id])

    def tally(self) -> dict[str, Any]:
        """Record counts, contact creates/deletes and writes per contact id, taken together."""
        with self._lock:
            counts = {OBJECT_TYPES[t].plural.lower(): len(rows) for t, rows in self._rows.items()}
            writes = {str(k): v for k, v in sorted(self.writes.items())}
            return {
                **counts,
                "creates": self.creates,
                "deletes": self.deletes,
                "writes": writes,
                "invoices_emailed": len(self.invoices),
            }

    def search(self, object_id: int, params: Mapping[str, Any]) -> list[Record]:
        """`GET /1/Contacts?condition=...&start=0&range=50` (also `ids`, `sort`, `sortDir`, `listFields`)."""
        keys = self.field_keys(object_id)
        condition_text = to_text(params.get("condition", "")) or ""
        try:
            condition = parse_condition(condition_text, keys)
        except InvalidQuery:
            raise ApiError(400, "Invalid query") from None
        start = _int_param(params.get("start"), 0)
        size = min(_int_param(params.get("range"), MAX_RANGE), MAX_RANGE)
        wanted = _id_list(params.get("ids"))
        with self._lock:
            ids = self._equal_ids(object_id, condition)
            rows = self._rows[object_id]
            if ids is not None:
                found = [dict(rows[i]) for i in ids]
            else:  # records are kept in id order
                found = [dict(r) for r in rows.values() if matches(condition, r)]
        if wanted is not None:
            found = [r for r in found if int(r["id"] or 0) in wanted]
        sort = to_text(params.get("sort")) or ""
        if sort:
            if sort not in keys:
                raise ApiError(400, "Invalid query")
            descending = (to_text(params.get("sortDir")) or "").lower() == "desc"
            found.sort(key=lambda r: _sort_key(r.get(sort)), reverse=descending)
        page = found[start : start + size]
        listed = [k.strip() for k in (to_text(params.get("listFields")) or "").split(",") if k.strip()]
        if listed:
            page = [{k: r.get(k) for k in ["id", *listed] if k in r} for r in page]
        return page

    def count_matching(self, object_id: int, params: Mapping[str, Any]) -> int:
        """`GET /1/Products/getInfo?condition=...`: how many records match (the whole collection without one)."""
        keys = self.field_keys(object_id)
        try:
            condition = parse_condition(to_text(params.get("condition", "")) or "", keys)
        except InvalidQuery:
            raise ApiError(400, "Invalid query") from None
        with self._lock:
            return sum(1 for r in self._rows[object_id].values() if matches(condition, r))

    def ids_by_email(self, email: str) -> list[int]:
        wanted = email.strip().casefold()
        if not wanted:
            return []
        with self._lock:
            return sorted(self._index("email").get(wanted, ()))

    def _index(self, field: str) -> dict[str, set[int]]:
        index = self._indexes.get(field)
        if index is None:
            index = {}
            for record_id, record in self._rows[CONTACT].items():
                _index_add(index, record.get(field), record_id)
            self._indexes[field] = index
        return index

    def _reindex(self, record_id: int, before: Mapping[str, Value], after: Mapping[str, Value]) -> None:
        for field, index in self._indexes.items():
            old, new = before.get(field), after.get(field)
            if old != new:
                _index_remove(index, old, record_id)
                _index_add(index, new, record_id)

    # ------------------------------------------------------------------------------------------------ contacts

    def create_contact(self, params: Mapping[str, Any]) -> Record:
        with self._lock:
            changes = self._contact_changes(params, {}, ignore_blanks=False)
            record = self._insert(CONTACT, {**contact_defaults(self.now()), **self._blank_custom(), **changes})
            self.creates += 1
            self.writes[int(record["id"] or 0)] += 1
            return dict(record)

    def save_or_update(self, params: Mapping[str, Any]) -> tuple[bool, dict[str, Any]]:
        """Merge into the contact with this e-mail, or create one: (created, data)."""
        with self._lock:
            ignore_blanks = _truthy(params.get("ignore_blanks"))
            changes = self._contact_changes(params, {}, ignore_blanks=ignore_blanks)
            same = self.ids_by_email(changes.get("email") or "")
            if not same:
                return True, self.create_contact(params)
            return False, {"attrs": self._merge(same[0], params, ignore_blanks=ignore_blanks)}

    def update_contact(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`PUT /1/Contacts`: `{"attrs": changed fields + dlm + id}`."""
        record_id = parse_id(params.get("id"))
        with self._lock:
            if record_id not in self._rows[CONTACT]:
                raise NotFound()
            return {"attrs": self._merge(record_id, params, ignore_blanks=False)}

    def _equal_ids(self, object_id: int, condition: Condition) -> list[int] | None:
        """Ids for a single `field = text` condition on contacts, from the field's index (None: scan instead)."""
        if object_id != CONTACT or len(condition) != 1 or len(condition[0]) != 1:
            return None
        clause = condition[0][0]
        value = clause.values[0] if len(clause.values) == 1 else None
        if clause.op != "=" or clause.negate or value is None or is_number(value):
            return None
        return sorted(self._index(clause.field).get(value.casefold(), ()))

    def delete(self, object_id: int, record_id: int) -> None:
        with self._lock:
            record = self._rows[object_id].pop(record_id, None)
            if record is None:
                raise NotFound()
            if object_id == CONTACT:
                self._reindex(record_id, record, {})
                self.deletes += 1
                self.writes[record_id] += 1

    def _merge(self, record_id: int, params: Mapping[str, Any], *, ignore_blanks: bool) -> dict[str, Value]:
        record = self._rows[CONTACT][record_id]
        changes = self._contact_changes(params, record, ignore_blanks=ignore_blanks)
        if changes:
            before = {field: record.get(field) for field in self._indexes}
            record.update(changes)
            self._reindex(record_id, before, record)
            record["dlm"] = self.now()
        self.writes[record_id] += 1
        return {**changes, "dlm": record["dlm"], "id": record["id"]}

    def _blank_custom(self) -> Record:
        return dict.fromkeys(self._custom)

    def _contact_changes(self, params: Mapping[str, Any], current: Record, *, ignore_blanks: bool) -> Record:
        """The written fields that differ from `current`; unknown and read-only keys are ignored."""
        writable = {f.key: f for f in self.contact_fields() if f.editable}
        changes: Record = {}
        for key, raw in params.items():
            definition = writable.get(key)
            if definition is None:
                continue
            value = list_value(raw) if definition.type == "list" else to_text(raw)
            if value is None or (ignore_blanks and value.strip() == ""):
                continue
            if key == "country":
                value = country_code(value)
            elif key == "email":
                value = value.strip()
            elif key == "bulk_mail" and value.strip() != "0":
                continue  # the API may only set "transactional only"
            if value != (current.get(key) or ""):
                changes[key] = value
        email = changes.get("email") if "email" in changes else current.get("email")
        if "email" in params and email and not valid_email(email):
            raise ApiError(422, "Invalid email address")
        if email and email.casefold() in self._reject:
            raise ApiError(422, "Invalid email address")
        return changes

    def _insert(self, object_id: int, fields: Record) -> Record:
        record_id = self._next_id[object_id]
        self._next_id[object_id] += 1
        record: Record = {"id": str(record_id), **{k: v for k, v in fields.items() if k != "id"}}
        self._rows[object_id][record_id] = record
        if object_id == CONTACT:
            self._reindex(record_id, {}, record)
        return record

    # ------------------------------------------------------------------------------------------------ notes, products

    def create_note(self, params: Mapping[str, Any]) -> Record:
        contact_id, object_type_id = notes.contact_of(params)
        with self._lock:
            if object_type_id == CONTACT and contact_id not in self._rows[CONTACT]:
                raise ApiError(400, "Invalid Contact ID")
            fields = notes.new_note(params, self.now(), authors=self.behaviour.note_authors)
            return dict(self._insert(NOTE, fields))

    def update_note(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`PUT /1/Notes` by `id`: `{"attrs": changed fields + dlm + id}`."""
        note_id = parse_id(params.get("id"))
        with self._lock:
            record = self._rows[NOTE].get(note_id)
            if record is None:
                raise NotFound()
            changes = notes.note_changes(params, record, authors=self.behaviour.note_authors)
            contact = changes.get("contact_id")
            on_contact = record.get("object_type_id") == str(CONTACT)
            if contact is not None and on_contact and int(contact) not in self._rows[CONTACT]:
                raise ApiError(400, "Invalid Contact ID")
            return {"attrs": self._apply(record, changes)}

    def create_product(self, params: Mapping[str, Any]) -> Record:
        fields = commerce.product_fields(params, self.now())
        with self._lock:
            if len(self._rows[PRODUCT]) >= self.behaviour.product_limit:
                raise ApiError(400, commerce.PRODUCT_LIMIT_TEXT)
            return dict(self._insert(PRODUCT, fields))

    def update_product(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """`PUT /1/Products` by `id`: `{"attrs": changed fields + dlm + id}`."""
        product_id = parse_id(params.get("id"))
        with self._lock:
            record = self._rows[PRODUCT].get(product_id)
            if record is None:
                raise NotFound()
            return {"attrs": self._apply(record, commerce.product_changes(params, record))}

    def _apply(self, record: Record, changes: Mapping[str, Value]) -> dict[str, Value]:
        """Write `changes` into a note or product record: what an update answers under `attrs`."""
        if changes:
            record.update(changes)
            record["dlm"] = self.now()
        return {**changes, "dlm": record["dlm"], "id": record["id"]}

    # ------------------------------------------------------------------------------------------------ purchase history

    def log_transaction(self, params: Mapping[str, Any]) -> int:
        """`POST /1/transaction/processManual` with `chargeNow: "chargeLog"`: the invoice id (see `ledger`)."""
        with self._lock:
            settings = self.behaviour
            contact = self._rows[CONTACT].get(ledger.contact_of(params))
            if contact is None:
                raise ApiError(400, "Invalid Contact ID")
            now = self.now()
            sale = ledger.read_sale(
                params,
                now,
                trans_date_default=settings.trans_date_default,
                external_order_ids=settings.external_order_ids,
            )
            products = self._rows[PRODUCT]
            lines = ledger.priced_lines(sale, products)
            status = ledger.PAID if settings.logged_status == "paid" else ledger.UNPAID
            name = " ".join(str(contact.get(k)) for k in ("firstname", "lastname") if contact.get(k))
            transaction = self._insert(TRANSACTION, ledger.transaction_record(sale, lines, products, name, status))
            invoice_id = int(transaction["id"] or 0)
            for purchase in ledger.purchase_records(sale, lines, products, invoice_id, status, now):
                self._insert(PURCHASE, purchase)
            contact["num_purchased"] = str(int(contact.get("num_purchased") or 0) + len(lines))
            if sale.oprid and settings.oprid_referrers:
                if contact.get("freferrer") in (None, "", "0"):
                    contact["freferrer"] = str(sale.oprid)
                contact["lreferrer"] = str(sale.oprid)
                contact["dlm"] = now
            if sale.emails_invoice:
                self._email_invoice(transaction, contact, sale.template)
            return invoice_id

    def reverse(self, name: str, transaction_ids: Iterable[int]) -> Any:
        """A reversal (`refund`, `void`, `writeOff`, `markPaid`) of these transactions: the answer's `data`.
        Ids of transactions that do not exist are passed over."""
        reversal = ledger.REVERSALS[name.lower()]
        with self._lock:
            rows = self._rows[TRANSACTION]
            targets = [rows[i] for i in dict.fromkeys(transaction_ids) if i in rows]
            movable = [t for t in targets if ledger.allowed(reversal, t.get("status"))]
            if len(movable) < len(targets) and self.behaviour.reversal_refusal == "error":
                raise ApiError(400, ledger.NOT_ALLOWED)
            for transaction in movable:
                transaction["status"] = str(reversal.becomes)
                for purchase in self._rows[PURCHASE].values():
                    if purchase.get("invoice_id") == transaction["id"]:
                        purchase["status"] = ledger.PURCHASE_STATUS[reversal.becomes]
                        purchase["dlm"] = self.now()
            return len(movable) if reversal.answer is None else reversal.answer

    def resend_invoices(self, transaction_ids: Iterable[int]) -> None:
        """`POST /1/transaction/resendInvoice`: e-mail each existing transaction's invoice again."""
        with self._lock:
            rows = self._rows[TRANSACTION]
            for transaction_id in dict.fromkeys(transaction_ids):
                transaction = rows.get(transaction_id)
                if transaction is not None:
                    contact = self._rows[CONTACT].get(int(transaction.get("contact_id") or 0), {})
                    template = int(transaction.get("template_id") or ledger.DEFAULT_TEMPLATE)
                    self._email_invoice(transaction, contact, max(template, ledger.DEFAULT_TEMPLATE))

    def transaction_exists(self, transaction_id: int) -> bool:
        with self._lock:
            return transaction_id in self._rows[TRANSACTION]

    def _email_invoice(self, transaction: Record, contact: Mapping[str, Value], template: int) -> None:
        invoice: dict[str, Value] = {
            "invoice_id": transaction["id"],
            "contact_id": transaction.get("contact_id"),
            "email": contact.get("email"),
            "template_id": str(template),
            "sent_at": self.now(),
        }
        self.invoices.append(invoice)
        _TALLY.add(invoice)

    def emailed_invoices(self) -> list[dict[str, Value]]:
        """Every invoice e-mail the account has sent a customer, oldest first."""
        with self._lock:
            return [dict(i) for i in self.invoices]


def _int_param(value: Any, default: int) -> int:
    if value is None or value == "":
        return default
    text = to_text(value)
    if text is None or not text.strip().isdigit():
        raise ApiError(400, "Invalid query")
    return int(text)


def _id_list(value: Any) -> set[int] | None:
    if value is None or value == "":
        return None
    items = value if isinstance(value, list) else (to_text(value) or "").split(",")
    return {parse_id(i) for i in items if str(i).strip()}


def _sort_key(value: Value) -> tuple[int, float, str]:
    if value is None or value == "":
        return (0, 0.0, "")
    try:
        return (1, float(value), "")
    except ValueError:
        return (2, 0.0, value.casefold())


def _index_add(index: dict[str, set[int]], value: Value, record_id: int) -> None:
    if isinstance(value, str) and value:
        index.setdefault(value.casefold(), set()).add(record_id)


def _index_remove(index: dict[str, set[int]], value: Value, record_id: int) -> None:
    if isinstance(value, str) and value:
        ids = index.get(value.casefold())
        if ids is not None:
            ids.discard(record_id)
            if not ids:
                del index[value.casefold()]
