"""The `/1/...` endpoints of the Ontraport simulator: which call does what to the model, and what goes in `data`.

Each handler takes the request parameters (query string merged with the decoded body) and returns a `Reply`;
errors are `ApiError`s. Paths are matched case-insensitively without the `/1/` prefix. The typed endpoints
(`Contacts`, `Notes`, `Products`, ...) and the generic `objects` endpoints (with `objectID`) share the code; each
collection also answers `getInfo` (its list fields and how many records a condition matches).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from syncd.sandbox.ontraport.behaviour import Behaviour
from syncd.sandbox.ontraport.errors import ApiError, NotFound
from syncd.sandbox.ontraport.fields import FieldDef, sections, to_text
from syncd.sandbox.ontraport.ids import id_list, parse_id
from syncd.sandbox.ontraport.model import CONTACT, NOTE, OBJECT_TYPES, PRODUCT, TRANSACTION, OntraportModel
from syncd.sandbox.ontraport.tags import TagBook, tag_by_name


@dataclass(frozen=True, slots=True)
class Reply:
    data: Any = None
    listing: bool = False  # list calls add "misc": []
    has_data: bool = True  # DELETE answers {"code": 0, "account_id": 50} with no data


Handler = Callable[[dict[str, Any]], Reply]
CREATABLE = (CONTACT, NOTE, PRODUCT)


def api_routes(
    model: OntraportModel, settings: Callable[[], Behaviour], tags: TagBook | None = None
) -> dict[tuple[str, str], Handler]:
    """(method, lower-case path without `/1/`) -> handler. `settings` answers the current switches; `tags` holds
    what `objects/tagByName` writes."""
    book = tags if tags is not None else TagBook()

    def note_shape() -> str:
        return settings().note_shape

    def tagging(add: bool) -> Handler:
        def handler(params: dict[str, Any]) -> Reply:
            strings = settings().json_string_ids
            return Reply(tag_by_name(model, book, params, add=add, json_strings=strings))

        return handler

    def object_id(params: dict[str, Any]) -> int:
        raw = params.pop("objectID", None)
        number = parse_id(raw, what="objectID") if raw is not None else -1
        if number not in OBJECT_TYPES:
            raise ApiError(400, "Invalid objectID")
        return number

    def get_one(kind: int) -> Handler:
        return lambda params: Reply(model.get(kind, parse_id(params.get("id"))))

    def search(kind: int) -> Handler:
        return lambda params: Reply(model.search(kind, params), listing=True)

    def info(kind: int) -> Handler:
        """`GET /1/{Objects}/getInfo`: the collection's list fields and how many records match (`count`, a
        string like every value)."""

        def handler(params: dict[str, Any]) -> Reply:
            count = model.count_matching(kind, params)
            fields = sorted(model.field_keys(kind) - {"id"})[:8]
            return Reply({"listFields": fields, "listFieldSettings": [], "count": str(count)})

        return handler

    def delete_one(kind: int) -> Handler:
        def handler(params: dict[str, Any]) -> Reply:
            model.delete(kind, parse_id(params.get("id")))
            return Reply(has_data=False)

        return handler

    def create(kind: int) -> Handler:
        def handler(params: dict[str, Any]) -> Reply:
            if kind == CONTACT:
                return Reply(model.create_contact(params))
            if kind == NOTE:
                note = model.create_note(params)
                return Reply(note if note_shape() == "record" else {"id": note["id"]})
            if kind == PRODUCT:
                return Reply(model.create_product(params))
            raise ApiError(400, "Invalid objectID")

        return handler

    def update(kind: int) -> Handler:
        def handler(params: dict[str, Any]) -> Reply:
            if kind == CONTACT:
                return Reply(model.update_contact(params))
            if kind == NOTE:
                return Reply(model.update_note(params))
            if kind == PRODUCT:
                return Reply(model.update_product(params))
            raise ApiError(400, "Invalid objectID")

        return handler

    def save_or_update(params: dict[str, Any]) -> Reply:
        _, data = model.save_or_update(params)
        return Reply(data)

    def meta(kind: int) -> Handler:
        def handler(params: dict[str, Any]) -> Reply:
            if kind == CONTACT:
                fields = model.contact_fields()
            else:
                fields = [FieldDef(k, k.replace("_", " ").title()) for k in sorted(model.field_keys(kind) - {"id"})]
            name = OBJECT_TYPES[kind].singular
            return Reply({str(kind): {"name": name, "fields": {f.key: f.meta() for f in fields}}})

        return handler

    def field_editor(params: dict[str, Any]) -> Reply:
        grouped = sections(model.contact_fields())
        wanted_field = to_text(params.get("field")) or ""
        wanted_section = to_text(params.get("section")) or ""
        if wanted_field:
            for section in grouped:
                for column in section["fields"]:
                    for entry in column:
                        if entry["field"] == wanted_field:
                            return Reply(entry)
            raise NotFound()
        if wanted_section:
            for section in grouped:
                if section["name"] == wanted_section:
                    return Reply(section)
            raise NotFound()
        return Reply(grouped)

    def get_by_email(params: dict[str, Any]) -> Reply:
        if object_id(params) != CONTACT:
            raise ApiError(400, "Invalid objectID")
        ids = model.ids_by_email(to_text(params.get("email")) or "")
        if not ids:
            raise NotFound()
        all_ids = (to_text(params.get("all")) or "0") in ("1", "true")
        return Reply({"ids": [str(i) for i in ids]} if all_ids else {"id": str(ids[0])})

    def process_manual(params: dict[str, Any]) -> Reply:
        return Reply({"invoice_id": model.log_transaction(params)})

    def transactions_named(params: dict[str, Any]) -> tuple[int, ...]:
        """The transactions a bulk transaction call names: `{"objectID": 46, "ids": [...]}`."""
        if object_id(params) != TRANSACTION:
            raise ApiError(400, "Invalid objectID")
        named = id_list(params, json_strings=settings().json_string_ids)
        if not named.given:
            raise ApiError(400, "Invalid request: ids are required")
        return named.ids

    def reversal(name: str) -> Handler:
        def handler(params: dict[str, Any]) -> Reply:
            return Reply(model.reverse(name, transactions_named(params)))

        return handler

    def mark_paid(params: dict[str, Any]) -> Reply:
        if "id" not in params and settings().mark_paid_ids:
            return Reply(model.reverse("markPaid", transactions_named(params)))
        transaction_id = parse_id(params.get("id"))
        if not model.transaction_exists(transaction_id):
            raise NotFound()
        return Reply(model.reverse("markPaid", [transaction_id]))

    def resend_invoice(params: dict[str, Any]) -> Reply:
        model.resend_invoices(transactions_named(params))
        return Reply("")

    def contacts_only(handler: Handler) -> Handler:
        def wrapped(params: dict[str, Any]) -> Reply:
            if object_id(params) != CONTACT:
                raise ApiError(400, "Invalid objectID")
            return handler(params)

        return wrapped

    def by_object(make: Callable[[int], Handler]) -> Handler:
        def handler(params: dict[str, Any]) -> Reply:
            return make(object_id(params))(params)

        return handler

    def create_object(params: dict[str, Any]) -> Reply:
        kind = object_id(params)
        if kind not in CREATABLE:
            raise ApiError(400, "Invalid objectID")
        return create(kind)(params)

    def update_object(params: dict[str, Any]) -> Reply:
        kind = object_id(params)
        if kind not in CREATABLE:
            raise ApiError(400, "Invalid objectID")
        return update(kind)(params)

    def delete_object(params: dict[str, Any]) -> Reply:
        kind = object_id(params)
        if kind not in CREATABLE:
            raise ApiError(400, "Invalid objectID")
        return delete_one(kind)(params)

    routes: dict[tuple[str, str], Handler] = {
        ("POST", "contacts/saveorupdate"): save_or_update,
        ("GET", "contacts/fieldeditor"): field_editor,
        ("GET", "object/getbyemail"): get_by_email,
        ("POST", "transaction/processmanual"): process_manual,
        ("PUT", "transaction/refund"): reversal("refund"),
        ("PUT", "transaction/void"): reversal("void"),
        ("PUT", "transaction/writeoff"): reversal("writeOff"),
        ("PUT", "transaction/markpaid"): mark_paid,
        ("POST", "transaction/resendinvoice"): resend_invoice,
        ("GET", "objects"): by_object(search),
        ("GET", "object"): by_object(get_one),
        ("GET", "objects/meta"): by_object(meta),
        ("GET", "objects/getinfo"): by_object(info),
        ("POST", "objects"): create_object,
        ("POST", "objects/saveorupdate"): contacts_only(save_or_update),
        ("PUT", "objects"): update_object,
        ("DELETE", "object"): delete_object,
        ("PUT", "objects/tagbyname"): tagging(True),
        ("DELETE", "objects/tagbyname"): tagging(False),
    }
    for kind, names in OBJECT_TYPES.items():
        singular, plural = names.singular.lower(), names.plural.lower()
        routes[("GET", singular)] = get_one(kind)
        routes[("GET", plural)] = search(kind)
        routes[("GET", f"{plural}/meta")] = meta(kind)
        routes[("GET", f"{plural}/getinfo")] = info(kind)
        if kind in CREATABLE:
            routes[("POST", plural)] = create(kind)
            routes[("PUT", plural)] = update(kind)
            routes[("DELETE", singular)] = delete_one(kind)
    return routes
