"""How the Sell sandbox shapes records on the wire: the Core API v2 shape of a stored (Firehose-shape) snapshot, and
the two readings of values whose type the documentation and the examples disagree on.

v2 shape: `custom_fields` as name -> value (the field's current name; a list option by its name, a multi-select as a
list of names), `tags` as a list of names, `updated_at`, each item `{"data": {...}, "meta": {"type", "version"}}`;
line items without the order and deal they belong to (v2 reads them through their order).

Readings (switches of the sandbox's behaviour):
- `money_as`: "string" (default, "1250.00") or "number" (1250.00) for deal values, line item prices, values and
  variations, product costs and prices, in v2;
- `ids_as`: "number" (default) or "string" for the ids the Firehose tables document as strings but show as numbers,
  `order.deal_id` and `line_item.product_id`, in v2 and on the Firehose;
- `version_as`: v2's `meta.version` is the record's Firehose `sequence` ("sequence", default), or a counter of its
  own that rises with every change but starts elsewhere ("counter": the sequence plus 1000), since nothing
  public says the two are the same number.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

import msgspec

from syncd.sandbox.sell.records import MONEY, Snapshot

MoneyAs = Literal["string", "number"]
IdsAs = Literal["number", "string"]
VersionAs = Literal["sequence", "counter"]
VERSION_OFFSET = 1000  # the "counter" reading: a version that counts every record's changes from elsewhere
STRING_IDS: dict[str, tuple[str, ...]] = {"order": ("deal_id",), "line_item": ("product_id",)}
_V2_DROPPED: dict[str, tuple[str, ...]] = {"line_item": ("order_id", "deal_id"), "source": ("resource_type",)}

_encoder = msgspec.json.Encoder(decimal_format="number")


def encode(value: Any) -> bytes:
    """JSON with Decimals as numbers (money read "number")."""
    return _encoder.encode(value)


def v2_item(
    snapshot: Snapshot,
    *,
    money_as: MoneyAs = "string",
    ids_as: IdsAs = "number",
    version_as: VersionAs = "sequence",
    item_type: str | None = None,
    names: Mapping[int, str] | None = None,
) -> dict[str, Any]:
    """One v2 item: `{"data": {...}, "meta": {"type", "version"}}` (`item_type` when the path names it otherwise,
    e.g. "source" for a deal source listed under /v2/sources; `names`: custom fields' current names by id)."""
    kind = item_type or snapshot.kind
    data = v2_data(snapshot, money_as, ids_as, kind, names or {})
    version = snapshot.sequence + (VERSION_OFFSET if version_as == "counter" else 0)
    return {"data": data, "meta": {"type": kind, "version": version}}


def v2_data(
    snapshot: Snapshot, money_as: MoneyAs, ids_as: IdsAs, item_type: str, names: Mapping[int, str]
) -> dict[str, Any]:
    data = dict(snapshot.data)
    for attr in _V2_DROPPED.get(item_type, ()):
        data.pop(attr, None)
    if "tags" in data:
        data["tags"] = [tag_name(t) for t in data["tags"] or ()]
    if "custom_field_values" in data:
        data["custom_fields"] = custom_fields(data.pop("custom_field_values"), names)
    for attr in MONEY.get(snapshot.kind, ()):
        if attr in data:
            data[attr] = money(data[attr], money_as)
    if snapshot.kind == "product" and isinstance(data.get("prices"), list):
        data["prices"] = [_price(p, money_as) for p in data["prices"]]
    _ids(snapshot.kind, data, ids_as)
    data["updated_at"] = snapshot.updated_at or data.get("created_at")
    return data


def firehose_item(item: dict[str, Any], ids_as: IdsAs) -> dict[str, Any]:
    """A Firehose item as served under the `ids_as` reading (unchanged under "number")."""
    meta, data = item.get("meta"), item.get("data")
    if ids_as == "number" or not isinstance(meta, dict) or not isinstance(data, dict):
        return item
    attrs = STRING_IDS.get(str(meta.get("type")), ())
    if not any(type(data.get(attr)) is int for attr in attrs):
        return item
    data = dict(data)
    _ids(str(meta.get("type")), data, ids_as)
    return {**item, "data": data}


def _ids(kind: str, data: dict[str, Any], ids_as: IdsAs) -> None:
    if ids_as == "string":
        for attr in STRING_IDS.get(kind, ()):
            if type(data.get(attr)) is int:
                data[attr] = str(data[attr])


def money(value: Any, money_as: MoneyAs) -> Any:
    """A money amount as a decimal string ("1250.00") or a number, whichever way it was stored."""
    if value is None or isinstance(value, bool):
        return value
    if money_as == "number":
        if isinstance(value, str):
            try:
                return Decimal(value)
            except InvalidOperation:
                return value
        return value
    if isinstance(value, int | float):
        return f"{Decimal(str(value)):.2f}"
    return value


def _price(price: Any, money_as: MoneyAs) -> Any:
    if isinstance(price, dict) and "amount" in price:
        return {**price, "amount": money(price["amount"], money_as)}
    return price


def tag_name(tag: Any) -> Any:
    """A tag's name, from its Firehose embedding (or as it is)."""
    if isinstance(tag, dict) and isinstance(tag.get("data"), dict):
        return tag["data"].get("name")
    return tag


def custom_fields(values: Any, names: Mapping[int, str] | None = None) -> dict[str, Any]:
    """Firehose `custom_field_values` as v2 `custom_fields` (name -> value; a field's current name from `names`)."""
    fields: dict[str, Any] = {}
    for entry in values or ():
        try:
            field = entry["custom_field"]["data"]
            name = (names or {}).get(field["id"], field["name"]) if type(field.get("id")) is int else field["name"]
        except (KeyError, TypeError, AttributeError):
            continue
        fields[str(name)] = custom_value(entry.get("value"))
    return fields


def custom_value(value: Any) -> Any:
    """A custom field value in v2 shape: list options by name."""
    if isinstance(value, dict) and "name" in value and "id" in value:
        return value["name"]
    if isinstance(value, list):
        return [custom_value(v) for v in value]
    return value
