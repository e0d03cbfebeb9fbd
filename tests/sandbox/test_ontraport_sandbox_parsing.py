"""The Ontraport simulator's pure parts: PHP-style form nesting, search conditions and value normalisation."""

from __future__ import annotations

from typing import Any

import pytest

from syncd.sandbox.ontraport.criteria import InvalidQuery, matches, parse_condition
from syncd.sandbox.ontraport.fields import country_code, list_value, to_text, valid_email
from syncd.sandbox.ontraport.forms import BodyError, parse_body, parse_query, split_name

FIELDS = {"id", "email", "firstname", "lastname", "priority", "city"}
ADA = {
    "id": "10",
    "email": "Ada@Example.org",
    "firstname": "Ada",
    "lastname": "Lovelace",
    "priority": "8",
    "city": None,
}


@pytest.mark.parametrize(
    ("name", "parts"),
    [
        ("email", ["email"]),
        ("offer[products][0][id]", ["offer", "products", "0", "id"]),
        ("ids[]", ["ids", ""]),
        ("a[b", ["a[b"]),
        ("a[b]junk", ["a", "b"]),
        ("[x]", ["[x]"]),
    ],
)
def test_split_name(name: str, parts: list[str]) -> None:
    """Bracketed form names split into their path the way PHP reads them."""
    assert split_name(name) == parts


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("firstname=Ada&email=ada%40example.org", {"firstname": "Ada", "email": "ada@example.org"}),
        (
            "offer[products][0][id]=5&offer[products][0][quantity]=1",
            {"offer": {"products": [{"id": "5", "quantity": "1"}]}},
        ),
        (
            "offer%5Bproducts%5D%5B0%5D%5Bprice%5D%5B0%5D%5Bprice%5D=9.5&offer%5Bproducts%5D%5B1%5D%5Bid%5D=2",
            {"offer": {"products": [{"price": [{"price": "9.5"}]}, {"id": "2"}]}},
        ),
        ("ids[]=1&ids[]=2", {"ids": ["1", "2"]}),
        ("a[2]=x&a[5]=y", {"a": {"2": "x", "5": "y"}}),
        ("a=1&a[b]=2", {"a": {"b": "2"}}),
        ("blank=&plus=a+b", {"blank": "", "plus": "a b"}),
    ],
)
def test_php_style_nesting(query: str, expected: dict[str, Any]) -> None:
    """Form fields nest like PHP's $_POST: brackets make dicts, consecutive 0..n keys make lists."""
    assert parse_query(query) == expected


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", b'{"a": 1}', {"a": 1}),
        ("application/json; charset=utf-8", b'{"a": [1]}', {"a": [1]}),
        ("application/x-www-form-urlencoded", b'{"a": 1}', {"a": 1}),
        ("", b"a=1&b[c]=2", {"a": "1", "b": {"c": "2"}}),
        ("application/x-www-form-urlencoded", b"{broken=1", {"{broken": "1"}),
        ("application/json", b"  ", {}),
    ],
)
def test_body_parsing(content_type: str, body: bytes, expected: dict[str, Any]) -> None:
    """Bodies are JSON when declared or when they look like a JSON object, else PHP-style form fields."""
    assert parse_body(content_type, body) == expected


@pytest.mark.parametrize("body", [b'{"a": ', b"[1, 2]", b'"text"'])
def test_unusable_json_bodies_are_refused(body: bytes) -> None:
    """A declared JSON body that is not a JSON object is a BodyError."""
    with pytest.raises(BodyError):
        parse_body("application/json", body)


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ("", True),
        ("email='ada@example.org'", True),
        ("email = 'ADA@EXAMPLE.ORG'", True),
        ("priority > 10", False),
        ("priority >= 8 AND priority <= 8", True),
        ("priority != 8", False),
        ("id IN (1, 10)", True),
        ("id NOT IN (1, 10)", False),
        ("city IS NULL", True),
        ("city IS NOT NULL", False),
        ("lastname LIKE 'love%'", True),
        ("firstname = 'It''s'", False),
        ("firstname='x' OR lastname='Lovelace'", True),
        ("firstname='x' OR lastname='Lovelace' AND priority=1", False),
        ('[{"field":{"field":"email"},"op":"=","value":{"value":"ada@example.org"}}]', True),
        ('{"field":{"field":"priority"},"op":"<","value":{"value":9}}', True),
        ('[{"field":{"field":"id"},"op":"IN","value":{"list":[{"value":1},{"value":10}]}}]', True),
        ('[{"field":{"field":"city"},"op":"IS","value":{"value":null}}]', True),
        ('[{"field":{"field":"city"},"op":"=","value":{"value":null}}]', False),
        (
            '[{"field":{"field":"id"},"op":"=","value":{"value":1}},"OR",'
            '{"field":{"field":"firstname"},"op":"=","value":{"value":"Ada"}}]',
            True,
        ),
    ],
)
def test_conditions_match_like_mysql(condition: str, expected: bool) -> None:
    """Both condition spellings match case-insensitively, numbers as numbers, NULL only through IS."""
    assert matches(parse_condition(condition, FIELDS), ADA) is expected


@pytest.mark.parametrize(
    "condition",
    [
        "shoe='1'",
        "email=",
        "email 'x'",
        "email='x' XOR id=1",
        "id IN 1",
        "city IS 'x'",
        "[",
        '[{"field":{"field":"email"},"op":"~","value":{"value":"x"}}]',
        '[{"field":{"field":"email"},"op":"=","value":{"value":"x"}},"AND"]',
        '[{"field":{"field":"email"},"op":"IN","value":{"list":[]}}]',
        '["AND"]',
        '[{"field":{"field":"email"},"op":"=","value":{"value":{"x":1}}}]',
    ],
)
def test_unusable_conditions_are_invalid_queries(condition: str) -> None:
    """Unknown fields, unknown operators and broken syntax raise InvalidQuery."""
    with pytest.raises(InvalidQuery):
        parse_condition(condition, FIELDS)


@pytest.mark.parametrize(
    ("value", "text"),
    [(None, ""), (True, "1"), (False, "0"), (7, "7"), (7.0, "7"), (7.5, "7.5"), ("x", "x"), ({"a": 1}, None)],
)
def test_written_values_become_strings(value: Any, text: str | None) -> None:
    """Written values are kept as the API answers them: strings (None for unusable ones)."""
    assert to_text(value) == text


@pytest.mark.parametrize(("value", "text"), [(["1", "3"], "*/*1*/*3*/*"), ([], ""), ("2", "2")])
def test_list_fields_use_ontraports_separator(value: Any, text: str) -> None:
    """A list field written as several option ids is stored in the `*/*1*/*3*/*` form."""
    assert list_value(value) == text


@pytest.mark.parametrize(
    ("name", "code"), [("Australia", "AU"), ("USA", "US"), ("Russia", "RU"), (" ", ""), ("Atlantis", "Atlantis")]
)
def test_country_code(name: str, code: str) -> None:
    """Country names and codes become ISO alpha-2 codes; unknown text is kept."""
    assert country_code(name) == code


@pytest.mark.parametrize(
    ("email", "ok"),
    [
        ("ada@example.org", True),
        ("a.b+c@sub.example.co.uk", True),
        ("ada@", False),
        ("ada", False),
        ("a b@x.io", False),
    ],
)
def test_valid_email(email: str, ok: bool) -> None:
    """Only something shaped like an address counts as an e-mail."""
    assert valid_email(email) is ok
