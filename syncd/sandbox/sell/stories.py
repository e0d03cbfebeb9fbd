"""The stories behind a generated Sell history, one method per kind of story, chosen by weight.

Leads are created, updated, re-addressed, deleted, and converted into contacts (the lead then deleted by the
"system"); organisations and their people come and go; deals move through the pipeline to won (then an order with line
items, and the contact becomes a customer) or lost; notes are written and edited; custom fields get renamed; with a
product catalogue, products are repriced, withdrawn and added, and line items are made of the active ones. Each
story keeps the world consistent; `syncd.sandbox.sell.history` drives them.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Sequence
from datetime import date, timedelta
from decimal import Decimal

from syncd.sandbox.sell import catalogue as cat
from syncd.sandbox.sell.world import FIRST_PRODUCT, Data, Item, Rec, World


class Stories(World):
    """Tells stories until `limit` items exist; `out` holds them in time order."""

    def __init__(
        self, rng: random.Random, times: Sequence[str], *, limit: int, products: bool = False, renames: bool = True
    ) -> None:
        super().__init__(rng, times, limit=limit, products=products)
        stories: list[tuple[Callable[[], None], float]] = [
            (self.new_lead, 20), (self.update_lead, 14), (self.change_lead_email, 4), (self.delete_lead, 2),
            (self.convert_lead, 4), (self.new_contact, 8), (self.update_contact, 9), (self.change_contact_email, 3),
            (self.delete_contact, 1.5), (self.new_deal, 5), (self.advance_deal, 9), (self.new_note, 7),
            (self.edit_note, 1), (self.rename_custom_field, 0.02), (self.new_source, 0.05),
        ]  # fmt: skip
        if products:
            stories += [(self.change_product, 0.3), (self.new_product, 0.05)]
        self._stories = [story for story, _ in stories]
        self._cum_weights = list(itertools.accumulate(weight for _, weight in stories))
        # Definition changes happen at least a few times in every history, whatever its length.
        self._base_names: dict[int, str] = {}  # custom field id -> its first name
        self._renames: dict[int, int] = {}
        self._renames_at = self._planned_renames(limit) if renames else []

    @staticmethod
    def _planned_renames(limit: int) -> list[int]:
        return [limit * k // 4 for k in (1, 2, 3)] if limit >= 200 else []

    def restart(self, times: Sequence[str], limit: int) -> list[tuple[str, Item]]:
        """Begin another stretch of history, with its own definition renames; what was emitted so far."""
        self._renames_at = self._planned_renames(limit)
        return super().restart(times, limit)

    def step(self) -> None:
        """Tell one more story, chosen by weight."""
        if self._renames_at and len(self.out) >= self._renames_at[0]:
            del self._renames_at[0]
            self.rename_custom_field()
            return
        self.rng.choices(self._stories, cum_weights=self._cum_weights)[0]()

    # -------------------------------------------------------------------------------------------------------------
    # definitions change

    def new_source(self) -> None:
        self._source(f"Campaign {len(self.sources) + 1}", self.rng.choice(("lead", "deal")))

    def rename_custom_field(self) -> None:
        """A custom field renamed (an `updated` definition); records show the new name from their next change."""
        resource = self.rng.choice(("lead", "contact", "deal"))
        field = self.rng.choice(self.fields[resource])
        base = self._base_names.setdefault(field["id"], field["name"])
        self._renames[field["id"]] = version = self._renames.get(field["id"], 1) + 1
        renamed = {**field, "name": f"{base} (v{version})"}
        self._define(resource, renamed)
        self.emit("custom_field", renamed, "updated", previous={"name": field["name"]})

    # -------------------------------------------------------------------------------------------------------------
    # people: leads and contacts

    def new_lead(self) -> None:
        self._lead()

    def _lead(self, email: str | None = None) -> None:
        first, last = self._name()
        data, values = self._person("lead", first, last, email or self._maybe_email(first, last))
        company = self.rng.choice(cat.COMPANIES) if self.rng.random() < 0.6 else None
        data.update(organization_name=company, status="New", source_id=self._some_source())
        self.emit("lead", data)
        if email is None:
            self.leads.add(Rec(data, values))

    def poison(self, count: int) -> None:
        """Leads whose e-mail destinations refuse (a local part over 64 characters); they take no further part."""
        for _ in range(count):
            first, last = self._name()
            local = f"{cat.slug(first)}.{cat.slug(last)}.{next(self._email_serial)}."
            local += "newsletter.subscription.confirmed.by.phone.call.last.tuesday.morning"
            self._lead(email=f"{local}@{self.rng.choice(cat.DOMAINS)}")

    def new_contact(self) -> None:
        rng = self.rng
        if rng.random() < 0.25:
            company = f"{rng.choice(cat.COMPANIES)} {next(self._email_serial)}"
            email = f"office{next(self._email_serial)}@{rng.choice(cat.DOMAINS)}" if rng.random() < 0.5 else None
            data, values = self._person("contact", None, None, email)
            data.update(is_organization=True, name=company, contact_id=None)
        else:
            first, last = self._name()
            data, values = self._person("contact", first, last, self._maybe_email(first, last))
            org = self.orgs.choice(rng).data["id"] if self.orgs and rng.random() < 0.6 else None
            data.update(is_organization=False, name=None, contact_id=org)
        self._contact_extras(data)
        self.emit("contact", data)
        (self.orgs if data["is_organization"] else self.people).add(Rec(data, values))

    def _contact_extras(self, data: Data) -> None:
        rng = self.rng
        data.update(
            parent_organization_id=None,
            customer_status="none",
            prospect_status=rng.choice(("none", "current")),
            billing_address=self._address() if rng.random() < 0.3 else None,
            shipping_address=self._address() if rng.random() < 0.2 else None,
        )

    def convert_lead(self) -> None:
        """A lead converted: a contact created with its name and e-mail, then the lead deleted by the system."""
        lead = self._some(self.leads, lambda rec: bool(rec.data["email"]))
        if lead is None:
            self.new_lead()
            return
        self.leads.pop(lead.data["id"])
        src = lead.data
        data, values = self._person("contact", src["first_name"], src["last_name"], src["email"])
        data.update(
            phone=src["phone"],
            mobile=src["mobile"],
            title=src["title"],
            address=src["address"],
            is_organization=False,
            name=None,
            contact_id=None,
        )
        self._contact_extras(data)
        self.emit("contact", data)
        self.people.add(Rec(data, values))
        self._delete("lead", lead, cause="system")

    def delete_lead(self) -> None:
        if not self.leads:
            self.new_lead()
            return
        self._delete("lead", self.leads.pop(self.leads.choice(self.rng).data["id"]))

    def delete_contact(self) -> None:
        pool = self.orgs if self.orgs and self.rng.random() < 0.2 else self.people
        if not pool:
            self.new_contact()
            return
        self._delete("contact", pool.pop(pool.choice(self.rng).data["id"]))

    _LEAD_ATTRS = ("title", "phone", "mobile", "description", "status", "tags", "custom_field_values", "address",
                   "owner_id", "last_name", "website", "custom_field_values")  # fmt: skip
    _CONTACT_ATTRS = ("title", "phone", "customer_status", "prospect_status", "tags", "custom_field_values",
                      "address", "contact_id", "billing_address", "description", "custom_field_values")  # fmt: skip

    def _person_changes(self, resource: str, rec: Rec, attrs: tuple[str, ...]) -> Data:
        rng = self.rng
        changes: Data = {}
        for attr in rng.sample(attrs, rng.choice((1, 1, 1, 2, 2, 3))):
            if attr == "custom_field_values":
                values = dict(rec.custom)
                for field in rng.sample(self.fields[resource], rng.randint(1, 2)):
                    values[field["id"]] = None if rng.random() < 0.15 else self._custom_value(field["type"])
                changes[attr] = values
            elif attr == "tags":
                changes[attr] = self._random_tags(resource)
            elif attr in ("address", "billing_address", "shipping_address"):
                changes[attr] = self._address()
            elif attr in ("phone", "mobile"):
                changes[attr] = self._phone()
            elif attr == "title":
                changes[attr] = rng.choice(cat.TITLES) or None
            elif attr == "owner_id":
                changes[attr] = rng.choice(cat.OWNERS)
            elif attr == "last_name" and rec.data.get("last_name"):
                changes[attr] = rng.choice(cat.LAST_NAMES)
            elif attr == "status":
                changes[attr] = rng.choice(cat.LEAD_STATUSES)
            elif attr == "customer_status":
                changes[attr] = rng.choice(("none", "current", "past"))
            elif attr == "prospect_status":
                changes[attr] = rng.choice(("none", "current", "lost"))
            elif attr == "contact_id" and not rec.data.get("is_organization") and self.orgs:
                changes[attr] = self.orgs.choice(rng).data["id"]
            elif attr == "website":
                changes[attr] = f"https://{rng.choice(cat.DOMAINS)}/{rng.randint(1, 999)}"
            else:
                changes["description"] = rng.choice(cat.NOTES)
        return changes

    def update_lead(self) -> None:
        if not self.leads:
            self.new_lead()
            return
        rec = self.leads.choice(self.rng)
        self._change("lead", rec, self._person_changes("lead", rec, self._LEAD_ATTRS) or {"description": "…"})

    def update_contact(self) -> None:
        pool = self.orgs if self.orgs and self.rng.random() < 0.2 else self.people
        if not pool:
            self.new_contact()
            return
        rec = pool.choice(self.rng)
        self._change("contact", rec, self._person_changes("contact", rec, self._CONTACT_ATTRS) or {"description": "…"})

    def _new_email(self, rec: Rec) -> str | None:
        data = rec.data
        if data["email"] and self.rng.random() < 0.05:
            return None  # the e-mail removed
        return self._email(data.get("first_name") or "office", data.get("last_name") or "")

    def change_lead_email(self) -> None:
        if not self.leads:
            self.new_lead()
            return
        rec = self.leads.choice(self.rng)
        self._change("lead", rec, {"email": self._new_email(rec)})

    def change_contact_email(self) -> None:
        if not self.people:
            self.new_contact()
            return
        rec = self.people.choice(self.rng)
        self._change("contact", rec, {"email": self._new_email(rec)})

    # -------------------------------------------------------------------------------------------------------------
    # deals, orders, notes

    def new_deal(self) -> None:
        rng = self.rng
        if not self.people:
            self.new_contact()
            return
        contact = self.people.choice(rng).data
        values = self._random_custom("deal")
        close = date.fromisoformat(self.now[:10]) + timedelta(days=rng.randint(7, 120))
        data: Data = {
            "id": next(self._ids["deal"]),
            "creator_id": rng.choice(cat.OWNERS),
            "owner_id": rng.choice(cat.OWNERS),
            "name": f"{rng.choice(cat.PRODUCTS)[0]} for {contact.get('last_name') or 'office'}",
            "value": f"{rng.randint(100, 5_000_000) / 100:.2f}",
            "currency": rng.choice(cat.CURRENCIES),
            "hot": rng.random() < 0.2,
            "stage_id": self._stage_order[0],
            "source_id": self._some_source(),
            "loss_reason_id": None,
            "last_stage_change_at": self.now,
            "last_stage_change_by_id": None,
            "dropbox_email": f"deal{rng.randint(10000, 99999)}@dropbox.example.com",
            "contact_id": contact["id"],
            "organization_id": contact.get("contact_id"),
            "estimated_close_date": close.isoformat(),
            "customized_win_likelihood": rng.choice((None, None, 25, 50, 75)),
            "tags": self._random_tags("deal"),
            "custom_field_values": self._render("deal", values),
            "created_at": self.now,
        }
        self.emit("deal", data)
        rec = Rec(data, values)
        self.deals.add(rec)
        self.open_deals.add(rec)

    def advance_deal(self) -> None:
        """Move an open deal one stage on: towards Won (then an order with line items) or to Lost."""
        rng = self.rng
        if not self.open_deals:
            self.new_deal()
            return
        rec = self.open_deals.choice(rng)
        deal_id = int(rec.data["id"])
        position = self._stage_order.index(rec.data["stage_id"])
        won, lost = self.stages["won"][0], self.stages["lost"][0]
        if position >= 2:
            target = won if rng.random() < 0.55 else lost
        else:
            target = self._stage_order[position + 1] if rng.random() < 0.85 else lost
        changes: Data = {
            "stage_id": target,
            "last_stage_change_at": self.now,
            "last_stage_change_by_id": rec.data["owner_id"],
        }
        if target == lost:
            changes["loss_reason_id"] = rng.choice(cat.LOSS_REASONS)
        elif position == 1 and rng.random() < 0.5:
            changes["value"] = f"{rng.randint(100, 5_000_000) / 100:.2f}"
        self._change("deal", rec, changes)
        if target in (won, lost):
            self.open_deals.pop(deal_id)
        if target == won:
            self._order(rec.data)
            self._customer(rec.data)

    def _order(self, deal: Data) -> None:
        rng = self.rng
        order = {
            "id": next(self._ids["order"]),
            "deal_id": deal["id"],
            "discount": rng.choice((0, 0, 5, 10)),
            "created_at": self.now,
        }
        self.emit("order", order)
        if self.with_products:
            active = [rec.data for rec in self.products.all() if rec.data["active"]]
            picks = [(p["id"], p["name"], p["sku"], _price_in(p, deal["currency"])) for p in
                     rng.sample(active, min(len(active), rng.randint(1, 3)))]  # fmt: skip
        else:
            picks = [(FIRST_PRODUCT + cat.PRODUCTS.index(p), *p) for p in rng.sample(cat.PRODUCTS, rng.randint(1, 3))]
        for product_id, name, sku, price in picks:
            quantity = rng.randint(1, 10)
            self.emit(
                "line_item",
                {
                    "id": next(self._ids["line_item"]),
                    "order_id": order["id"],
                    "deal_id": deal["id"],
                    "product_id": product_id,
                    "name": name,
                    "sku": sku,
                    "description": f"{name} × {quantity}",
                    "quantity": quantity,
                    "price": price,
                    "value": f"{float(price) * quantity:.2f}",
                    "variation": "0.00",
                    "currency": deal["currency"],
                    "created_at": self.now,
                },
            )

    def _customer(self, deal: Data) -> None:
        """The won deal's contact becomes a current customer."""
        rec = self.people.get(deal["contact_id"])
        if rec is not None and rec.data.get("customer_status") != "current":
            self._change("contact", rec, {"customer_status": "current"})

    def new_note(self) -> None:
        rng = self.rng
        pools = [("lead", self.leads), ("contact", self.people), ("deal", self.deals)]
        resource, pool = rng.choices(pools, (5, 3, 2))[0]
        if not pool:
            self.new_lead()
            return
        data = {
            "id": next(self._ids["note"]),
            "creator_id": rng.choice(cat.OWNERS),
            "content": rng.choice(cat.NOTES),
            "resource_id": pool.choice(rng).data["id"],
            "resource_type": resource,
            "type": "regular",
            "created_at": self.now,
        }
        self.emit("note", data)
        self.notes.add(Rec(data))

    def edit_note(self) -> None:
        if not self.notes:
            self.new_note()
            return
        rec = self.notes.choice(self.rng)
        self._change("note", rec, {"content": f"{rec.data['content']} (edited)"})

    # -------------------------------------------------------------------------------------------------------------
    # the product catalogue (only in a world that has one)

    def new_product(self) -> None:
        serial = len(self.products) + 1
        self._product(f"Add-on {serial}", f"ADD-{serial:03d}", f"{self.rng.randint(5, 500)}.00")

    def change_product(self) -> None:
        """A product repriced (every currency by the same factor), withdrawn, or offered again."""
        if not self.products:
            self.new_product()
            return
        rec = self.products.choice(self.rng)
        data = rec.data
        active = sum(1 for p in self.products.all() if p.data["active"])
        if self.rng.random() < 0.2 and (not data["active"] or active > 1):
            self._change("product", rec, {"active": not data["active"]})
            return
        factor = Decimal(self.rng.choice(("0.9", "1.05", "1.1", "1.25")))
        prices = [{**p, "amount": f"{Decimal(p['amount']) * factor:.2f}"} for p in data["prices"]]
        self._change("product", rec, {"prices": prices})


def _price_in(product: Data, currency: str) -> str:
    for price in product["prices"]:
        if price["currency"] == currency:
            return str(price["amount"])
    return str(product["prices"][0]["amount"])
