"""The Ontraport simulator's pure parts behind its switches: behaviour validation, id lists, body encodings."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.sandbox.ontraport.behaviour import DESCRIPTIONS, KEYS, Behaviour
from syncd.sandbox.ontraport.errors import ApiError
from syncd.sandbox.ontraport.forms import BodyError, Params, read_body, request_params
from syncd.sandbox.ontraport.ids import IdList, id_list


@pytest.mark.parametrize(
    "changes",
    [
        {"not_found_status": 400},
        {"product_limit": 0},
        {"product_limit": 3, "trans_date_default": "epoch"},
        {"logged_status": "unpaid", "reversal_refusal": "error"},
        {"mark_paid_ids": True, "json_string_ids": "ignore", "oprid_referrers": True, "note_authors": "staff"},
        {"note_shape": "id", "json_errors": True},
        {"external_order_ids": "number"},
    ],
)
def test_behaviour_accepts_every_documented_value(changes: dict[str, Any]) -> None:
    """Each switch takes its documented values, and only the named switches change."""
    changed = Behaviour().changed(changes)
    assert {k: v for k, v in changed.as_json().items() if k in changes} == changes
    assert {k: v for k, v in changed.as_json().items() if k not in changes} == {
        k: v for k, v in Behaviour().as_json().items() if k not in changes
    }


@pytest.mark.parametrize(
    ("changes", "named"),
    [
        ({"not_found_status": 403}, "not_found_status"),
        ({"not_found_status": True}, "not_found_status"),
        ({"product_limit": -1}, "product_limit"),
        ({"product_limit": 2.5}, "product_limit"),
        ({"product_limit": True}, "product_limit"),
        ({"trans_date_default": "1969"}, "trans_date_default"),
        ({"logged_status": 1}, "logged_status"),
        ({"reversal_refusal": None}, "reversal_refusal"),
        ({"mark_paid_ids": "yes"}, "mark_paid_ids"),
        ({"json_string_ids": "accept"}, "json_string_ids"),
        ({"oprid_referrers": 1}, "oprid_referrers"),
        ({"note_authors": "users"}, "note_authors"),
        ({"external_order_ids": "varchar"}, "external_order_ids"),
        ({"shoe_size": 42}, "shoe_size"),
    ],
)
def test_behaviour_refuses_unusable_values_naming_the_key(changes: dict[str, Any], named: str) -> None:
    """An unknown switch or a value outside its readings is a ValueError that names the key."""
    with pytest.raises(ValueError, match=named):
        Behaviour().changed(changes)


def test_every_switch_is_described() -> None:
    """Each switch has a one-line description for the control route."""
    assert set(DESCRIPTIONS) == KEYS == set(Behaviour().as_json())


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (Params({"ids": [10, "11"]}, json_keys=frozenset({"ids"})), IdList((10, 11), True)),
        (Params({"ids": "10,11"}), IdList((10, 11), True)),
        (Params({"ids": "10"}), IdList((10,), True)),
        (Params({"ids": ["10", "11"]}), IdList((10, 11), True)),
        (Params({"ids": {"3": "7", "9": "8"}}), IdList((7, 8), True)),
        (Params({"ids": ""}), IdList((), False)),
        (Params({}), IdList((), False)),
        (Params({"ids": []}, json_keys=frozenset({"ids"})), IdList((), False)),
        ({"ids": "4,5"}, IdList((4, 5), True)),
    ],
    ids=["json-array", "form-comma", "form-scalar", "form-php-list", "form-php-sparse", "blank", "absent",
         "json-empty", "plain-mapping"],
)  # fmt: skip
def test_id_lists_are_read_as_php_reads_them(params: Any, expected: IdList) -> None:
    """A JSON body's array, a form's scalar, comma list or PHP array all name ids; nothing named is `given` False."""
    assert id_list(params) == expected


@pytest.mark.parametrize("value", ["10,11", "10", 10, {"0": 10}])
def test_a_json_ids_that_is_not_an_array_is_refused_or_ignored(value: Any) -> None:
    """In a JSON body a non-array `ids` is 400 `Invalid ids`, or (the silent reading) names no record."""
    params = Params({"ids": value}, json_keys=frozenset({"ids"}))
    with pytest.raises(ApiError) as refused:
        id_list(params)
    assert (refused.value.status, refused.value.message) == (400, "Invalid ids")
    assert id_list(params, json_strings="ignore") == IdList((), True)


@pytest.mark.parametrize("item", ["x", -1, 1.5, True, None, [1], "1 2"])
def test_id_list_items_must_be_whole_numbers(item: Any) -> None:
    """Each id must be a whole, non-negative number, else 400 `Invalid ID`."""
    with pytest.raises(ApiError, match="Invalid ID"):
        id_list(Params({"ids": [item]}, json_keys=frozenset({"ids"})))


@pytest.mark.parametrize(
    ("query", "content_type", "body", "values", "json_keys"),
    [
        (
            "id=1",
            "application/json",
            b'{"ids": [2], "name": "x"}',
            {"id": "1", "ids": [2], "name": "x"},
            {"ids", "name"},
        ),
        ("id=1", "application/x-www-form-urlencoded", b"ids=2,3", {"id": "1", "ids": "2,3"}, set()),
        ("ids=9", "application/x-www-form-urlencoded", b'{"ids": [2]}', {"ids": [2]}, {"ids"}),
        ("ids=9", "", b"", {"ids": "9"}, set()),
    ],
    ids=["json", "form", "json-sent-as-form", "query-only"],
)
def test_request_params_remember_which_keys_a_json_body_carried(
    query: str, content_type: str, body: bytes, values: dict[str, Any], json_keys: set[str]
) -> None:
    """The body wins over the query string, and only keys from a JSON body count as JSON."""
    params = request_params(query, content_type, body)
    assert (dict(params), set(params.json_keys)) == (values, json_keys)


@pytest.mark.parametrize(
    ("body", "refused"),
    [
        (b'{"data": "a\\ud800b"}', True),
        (b'{"d": {"x": ["\\udfff"]}}', True),
        (b'{"data": "\\ud83d\\ude00"}', False),
        (b'{"data": "\\u00e9t\\u00e9"}', False),
    ],
    ids=["lone-high", "lone-low-nested", "pair", "plain-escapes"],
)
def test_json_with_a_lone_surrogate_is_refused(body: bytes, refused: bool) -> None:
    """A JSON string holding an unpaired UTF-16 surrogate is no text (PHP's json_decode refuses it): BodyError."""
    if refused:
        with pytest.raises(BodyError, match="surrogate"):
            read_body("application/json", body)
    else:
        assert read_body("application/json", body)[1] is True
