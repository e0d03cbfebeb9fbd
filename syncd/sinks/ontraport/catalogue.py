"""Ontraport products (object 16) for Sell products: the product key's writer, and the look-up purchases use.

A Sell product is one Ontraport product, known by the id kept in the product key's link and found again by its
`external_id` (the Sell product id); a product made by hand with the same name and no external id is taken over
rather than duplicated. A line item that names no Sell product is logged as the product of its name (found by
name, else created). Products are created with `POST /1/Products` and brought up to date with `PUT /1/Products`.

A Sell product deleted in Sell stays in Ontraport (logged purchases refer to it). An Ontraport product that
vanished (deleted in Ontraport) is mapping drift: purchases never make it again on their own; they wait on the
product key, and a change of the product in Sell makes it again (the drift then resolves), as does a product
given its external id in Ontraport by hand.

The account holds at most `purchases.product_limit` products: creating one while it holds 90 % of them logs
`ontraport_product_limit_near`, and at the limit a create is refused with that reason (never attempted blindly).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import anyio

from syncd.config import OntraportConfig
from syncd.errors import PermanentError
from syncd.events import Product
from syncd.logs import get_logger
from syncd.sinks.base import Lookups
from syncd.sinks.mapping import digest
from syncd.sinks.ontraport.http import OntraportApi
from syncd.sinks.ontraport.objects import count, get_one, record_id, search
from syncd.sinks.ontraport.sales import CENT, ProductRef
from syncd.work import Done, KeyWork, Result, Skipped, record_key

SINK = "ontraport"
NEAR = 0.9  # the share of the product limit at which creating products logs a warning
COUNT_AGE = 60.0  # seconds a product count is trusted (creations add to it meanwhile)
WARN_EVERY = 3600.0  # at most one near-the-limit warning an hour
VERIFY_AGE = 3600.0  # seconds a product found to exist is trusted


@dataclass(frozen=True, slots=True)
class Vanished:
    """A linked Ontraport product is gone: wait on the product key (`on`)."""

    on: str
    reason: str


def product_fields(product: Product, currency: str) -> dict[str, str]:
    """The Ontraport product a Sell product becomes: name, price (in `currency`, else its first), SKU,
    description, and the Sell id as `external_id`."""
    price = product.price_in(currency) if currency else None
    if price is None and product.prices:
        price = product.prices[0].amount
    return {
        "name": product.name.strip() or f"Sell product {product.id}",
        "price": str((price if price is not None and price >= 0 else Decimal(0)).quantize(CENT)),
        "sku": product.sku,
        "description": product.description,
        "external_id": str(product.id),
    }


def ref_fields(ref: ProductRef) -> dict[str, str]:
    """A product made from a purchase line (its Sell product unread, or none named)."""
    fields = {"name": ref.name, "price": str(ref.price if ref.price is not None else Decimal("0.00"))}
    if ref.sku:
        fields["sku"] = ref.sku
    if ref.description:
        fields["description"] = ref.description
    if ref.sell_id is not None:
        fields["external_id"] = str(ref.sell_id)
    return fields


class Catalogue:
    """One account's products: found, created and kept up to date, one writer at a time per product."""

    def __init__(
        self, api: OntraportApi, lookups: Lookups, config: OntraportConfig, clock: Callable[[], float] = time.time
    ) -> None:
        self._api = api
        self._lookups = lookups
        self._limit = config.purchases.product_limit
        self._enabled = config.purchases.enabled
        self._currency = config.purchases.currency
        self._clock = clock
        self._locks: dict[str, anyio.Lock] = {}
        self._known: dict[str, tuple[str, float]] = {}  # ProductRef.key -> (Ontraport id, when found to exist)
        self._count: tuple[int, float] | None = None
        self._warned_at = -WARN_EVERY
        self._log = get_logger(sink=SINK)

    def _lock(self, key: str) -> anyio.Lock:
        return self._locks.setdefault(key, anyio.Lock())

    # ------------------------------------------------------------------------------------------------ purchases

    async def product_id(self, ref: ProductRef) -> str | Vanished:
        """The Ontraport product a purchase line is logged as: the Sell product's linked one (checked to exist once
        an hour), else one found by external id or by name, else one created from the line."""
        async with self._lock(ref.key):
            known = self._known.get(ref.key)
            if known is not None and self._clock() - known[1] < VERIFY_AGE:
                return known[0]
            if ref.sell_id is not None:
                linked = await self._lookups.link(SINK, record_key("product", ref.sell_id))
                if linked is not None and linked.remote_id:
                    found = await self._linked(ref, linked.remote_id)
                    if isinstance(found, Vanished):
                        return found
                    return self._remember(ref, found)
            found_id = await self._find(ref)
            if found_id is None:
                found_id = await self._create(ref_fields(ref), ref.name)
            return self._remember(ref, found_id)

    async def recheck(self, refs: Iterable[ProductRef], used: Mapping[str, str]) -> Vanished | bool:
        """After Ontraport refused a purchase: look at its products again, trusting nothing cached. A Vanished one;
        True when one is now another product (the purchase may be tried again); False when all are as they were."""
        changed = False
        for ref in refs:
            self._known.pop(ref.key, None)
            found = await self.product_id(ref)
            if isinstance(found, Vanished):
                return found
            changed = changed or found != used.get(ref.key)
        return changed

    async def _linked(self, ref: ProductRef, remote_id: str) -> str | Vanished:
        """The linked product, checked; gone, it is looked for by external id, else reported as drift."""
        if await get_one(self._api, "Product", remote_id) is not None:
            return remote_id
        subject = _subject(ref.sell_id, ref.name)
        again = await self._by_external_id(ref.sell_id) if ref.sell_id is not None else None
        if again is not None:
            await self._lookups.report_drift(SINK, subject, None)
            return again
        problem = (
            f"Ontraport product {remote_id} is gone (deleted in Ontraport?); purchases of it wait until the product"
            f" changes in Sell (syncd makes it again) or an Ontraport product has external_id {ref.sell_id}"
        )
        await self._lookups.report_drift(SINK, subject, problem)
        self._log.warning("ontraport_product_vanished", product=f"product:{ref.sell_id}", remote_id=remote_id)
        return Vanished(record_key("product", ref.sell_id or 0), f"its Ontraport product {remote_id} is gone")

    def _remember(self, ref: ProductRef, remote_id: str) -> str:
        self._known[ref.key] = (remote_id, self._clock())
        return remote_id

    async def _find(self, ref: ProductRef) -> str | None:
        """A product this one already is: by external id (the Sell product id), else by name — one with no external
        id when the line names a Sell product (a product made by hand), any of that name when it does not."""
        if ref.sell_id is not None:
            found = await self._by_external_id(ref.sell_id)
            if found is not None:
                return found
        named = await search(self._api, "Products", [("name", ref.name)], pages=4)
        exact = [p for p in named if str(p.get("name") or "").strip().casefold() == ref.name.strip().casefold()]
        if ref.sell_id is not None:
            exact = [p for p in exact if str(p.get("external_id") or "").strip() in ("", "0")]
        return str(exact[0]["id"]) if exact else None

    async def _by_external_id(self, sell_id: int) -> str | None:
        found = await search(self._api, "Products", [("external_id", str(sell_id))], pages=1)
        return str(found[0]["id"]) if found else None

    # ------------------------------------------------------------------------------------------------ creating

    async def _create(self, fields: dict[str, str], name: str) -> str:
        """`POST /1/Products`, after checking the account's room for one more."""
        held = await self._held()
        if held >= self._limit:
            raise PermanentError(self._full(held, name))
        if held + 1 >= NEAR * self._limit and self._clock() - self._warned_at >= WARN_EVERY:
            self._warned_at = self._clock()
            self._log.warning(
                "ontraport_product_limit_near",
                products=held,
                limit=self._limit,
                hint="the account nears its product limit; remove unused products or raise purchases.product_limit",
            )
        try:
            answer = await self._api.call("POST", "/1/Products", body=fields)
        except PermanentError as exc:
            self._count = None
            held = await self._held()
            if held >= self._limit:
                raise PermanentError(self._full(held, name), http_status=exc.http_status, request=exc.request) from None
            raise
        self._count = (held + 1, self._count[1] if self._count is not None else self._clock())
        return record_id(answer.data)

    async def _held(self) -> int:
        cached = self._count
        if cached is not None and self._clock() - cached[1] < COUNT_AGE:
            return cached[0]
        held = await count(self._api, "Products")
        self._count = (held, self._clock())
        return held

    def _full(self, held: int, name: str) -> str:
        return (
            f"the Ontraport account holds {held} products, its limit is {self._limit}: product {name!r} cannot be"
            " created (remove unused products in Ontraport, then replay)"
        )

    # ------------------------------------------------------------------------------------------------ product keys

    async def deliver(self, work: KeyWork) -> Result:
        """A Sell product's key: its Ontraport product created or brought up to date (products are there for the
        purchases: none while purchases are off)."""
        if not self._enabled:
            return Skipped(work.key, work.seqs, "purchases are off (sinks.ontraport.purchases.enabled = false)")
        shadow = work.shadow
        if shadow is None or not isinstance(shadow.record, Product):
            return Skipped(work.key, work.seqs, "no snapshot of the product to write")
        if shadow.deleted:
            return Skipped(work.key, work.seqs, "a product deleted in Sell stays in Ontraport (purchases refer to it)")
        product = shadow.record
        fields = product_fields(product, self._currency)
        sign = digest(fields)
        link = work.link
        ref = ProductRef(product.id, fields["name"])
        async with self._lock(ref.key):
            if link is not None and link.remote_id:
                if link.digest == sign:
                    return Skipped(work.key, work.seqs, "unchanged since the last write", digest=sign)
                if await self._update(link.remote_id, fields):
                    return self._done(work, ref, link.remote_id, sign, fields, "updated")
                self._log.warning("ontraport_product_vanished", product=work.key, remote_id=link.remote_id)
            found = await self._find(ref)
            if found is not None and await self._update(found, fields):
                done = self._done(work, ref, found, sign, fields, "found")
            else:
                done = self._done(work, ref, await self._create(fields, fields["name"]), sign, fields, "created")
        await self._lookups.report_drift(SINK, _subject(product.id, ref.name), None)  # a vanished one is back
        return done

    def _done(
        self, work: KeyWork, ref: ProductRef, remote_id: str, sign: str, fields: dict[str, str], how: str
    ) -> Done:
        self._remember(ref, remote_id)
        return Done(work.key, work.seqs, remote_id=remote_id, digest=sign, sent=dict(fields), detail=how)

    async def _update(self, remote_id: str, fields: dict[str, Any]) -> bool:
        """`PUT /1/Products` by id; False when Ontraport no longer has the product."""
        answer = await self._api.call("PUT", "/1/Products", body={"id": remote_id, **fields}, missing_ok=True)
        return not answer.missing


def _subject(sell_id: int | None, name: str) -> str:
    """The drift subject of a product: the Sell product's key (its name changes)."""
    return f"product:{sell_id}" if sell_id is not None else f"product {name!r}"
