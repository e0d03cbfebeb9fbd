"""Ontraport search conditions: parsed into one small expression, then matched against records (pure).

Two spellings reach `GET /1/Contacts?condition=...`:

- JSON criteria, as the official SDK builds them:
  `[{"field":{"field":"email"},"op":"=","value":{"value":"ada@example.org"}}, "AND", {...}]`, with
  `{"value": {"list": [{"value": 1}, {"value": 2}]}}` for `IN`/`NOT IN` and `{"value": {"value": null}}` for `IS`;
- the older SQL-like string: `email='ada@example.org' AND id IN (1, 2) OR firstname IS NULL`.

Both become an OR of AND-groups of `Clause`s (AND binds tighter, as in SQL). A field the object does not have, an
unknown operator or a syntax error is `InvalidQuery` (the API answers 400 `Invalid query`). Comparisons follow
MySQL's defaults: case-insensitive text, numbers compared as numbers, NULL matching nothing but `IS`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

OPERATORS = frozenset({"=", "<>", ">", "<", ">=", "<=", "IN", "NOT IN", "IS", "LIKE"})
Value = str | None


class InvalidQuery(ValueError):
    """The condition cannot be used (bad syntax, unknown field or operator)."""


@dataclass(frozen=True, slots=True)
class Clause:
    field: str
    op: str
    values: tuple[Value, ...]  # one value, except for IN / NOT IN
    negate: bool = False  # IS NOT NULL


# An OR of AND-groups.
Condition = tuple[tuple[Clause, ...], ...]
MATCH_ALL: Condition = ((),)


def parse_condition(text: str, fields: Collection[str]) -> Condition:
    """Parse either spelling; `fields` are the keys the object has."""
    text = text.strip()
    if not text:
        return MATCH_ALL
    if text[0] in "[{":
        try:
            data = json.loads(text)
        except ValueError:
            raise InvalidQuery("the condition is not valid JSON") from None
        return _from_json(data, fields)
    return _from_sql(text, fields)


def matches(condition: Condition, record: Mapping[str, Value]) -> bool:
    return any(all(_clause_matches(c, record.get(c.field)) for c in group) for group in condition)


# ---------------------------------------------------------------------------------------------------------------
# JSON criteria


def _scalar(value: Any) -> Value:
    if value is None:
        return None
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, int | float | str):
        text = str(value)
        return text[:-2] if isinstance(value, float) and text.endswith(".0") else text
    raise InvalidQuery("a condition value must be a string or a number")


def _json_values(op: str, raw: Any) -> tuple[Value, ...]:
    if op in ("IN", "NOT IN"):
        items = raw.get("list") if isinstance(raw, dict) else raw
        if not isinstance(items, list) or not items:
            raise InvalidQuery(f"{op} needs a non-empty list")
        return tuple(_scalar(i.get("value") if isinstance(i, dict) else i) for i in items)
    value = raw.get("value") if isinstance(raw, dict) else raw
    return (_scalar(value),)


def _json_clause(item: Any, fields: Collection[str]) -> Clause:
    if not isinstance(item, dict):
        raise InvalidQuery("a condition must be an object")
    raw_field = item.get("field")
    name = raw_field.get("field") if isinstance(raw_field, dict) else raw_field
    op = item.get("op")
    if not isinstance(name, str) or not isinstance(op, str):
        raise InvalidQuery("a condition needs a field and an op")
    op = " ".join(op.upper().split())
    if op not in OPERATORS:
        raise InvalidQuery(f"unknown operator {op!r}")
    if name not in fields:
        raise InvalidQuery(f"unknown field {name!r}")
    values = _json_values(op, item.get("value"))
    if op == "IS":
        return _is_clause(name, values[0])
    return Clause(name, op, values)


def _is_clause(name: str, value: Value) -> Clause:
    word = " ".join((value or "NULL").upper().split())
    if word not in ("NULL", "NOT NULL"):
        raise InvalidQuery("IS only compares with NULL")
    return Clause(name, "IS", (None,), negate=word == "NOT NULL")


def _from_json(data: Any, fields: Collection[str]) -> Condition:
    items = data if isinstance(data, list) else [data]
    if not items:
        return MATCH_ALL
    groups: list[tuple[Clause, ...]] = []
    current: list[Clause] = []
    expect_clause = True
    for item in items:
        if expect_clause:
            current.append(_json_clause(item, fields))
        elif isinstance(item, str) and item.strip().upper() in ("AND", "OR"):
            if item.strip().upper() == "OR":
                groups.append(tuple(current))
                current = []
        else:
            raise InvalidQuery('conditions must be joined by "AND" or "OR"')
        expect_clause = not expect_clause
    if expect_clause:
        raise InvalidQuery("a condition list cannot end with a joiner")
    groups.append(tuple(current))
    return tuple(groups)


# ---------------------------------------------------------------------------------------------------------------
# the older SQL-like string

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
      | (?P<num>-?\d+(?:\.\d+)?)
      | (?P<op><>|!=|>=|<=|=|>|<)
      | (?P<punct>[(),])
      | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
    )""",
    re.VERBOSE,
)


def _tokens(text: str) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        match = _TOKEN.match(text, pos)
        if match is None or match.end() == pos:
            raise InvalidQuery("cannot read the condition")
        kind = match.lastgroup
        assert kind is not None
        found.append((kind, match.group(kind)))
        pos = match.end()
    return found


def _unquote(token: str) -> str:
    quote = token[0]
    body = token[1:-1]
    if quote == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body)


class _SqlParser:
    def __init__(self, text: str, fields: Collection[str]) -> None:
        self.tokens = _tokens(text)
        self.pos = 0
        self.fields = fields

    def peek_word(self) -> str:
        if self.pos < len(self.tokens) and self.tokens[self.pos][0] == "word":
            return self.tokens[self.pos][1].upper()
        return ""

    def take(self) -> tuple[str, str]:
        if self.pos >= len(self.tokens):
            raise InvalidQuery("the condition ends too early")
        token = self.tokens[self.pos]
        self.pos += 1
        return token

    def value(self) -> Value:
        kind, text = self.take()
        if kind == "str":
            return _unquote(text)
        if kind == "num":
            return text
        if kind == "word" and text.upper() == "NULL":
            return None
        raise InvalidQuery("expected a value")

    def clause(self) -> Clause:
        kind, name = self.take()
        if kind != "word":
            raise InvalidQuery("expected a field name")
        if name not in self.fields:
            raise InvalidQuery(f"unknown field {name!r}")
        word = self.peek_word()
        if word == "IS":
            self.take()
            negate = self.peek_word() == "NOT"
            if negate:
                self.take()
            if self.peek_word() != "NULL":
                raise InvalidQuery("IS only compares with NULL")
            self.take()
            return Clause(name, "IS", (None,), negate=negate)
        if word in ("IN", "NOT"):
            self.take()
            op = "IN"
            if word == "NOT":
                if self.peek_word() != "IN":
                    raise InvalidQuery("expected NOT IN")
                self.take()
                op = "NOT IN"
            return Clause(name, op, self.value_list())
        if word == "LIKE":
            self.take()
            return Clause(name, "LIKE", (self.value(),))
        kind, op = self.take()
        if kind != "op":
            raise InvalidQuery("expected an operator")
        return Clause(name, "<>" if op == "!=" else op, (self.value(),))

    def value_list(self) -> tuple[Value, ...]:
        if self.take() != ("punct", "("):
            raise InvalidQuery("expected a list in parentheses")
        values = [self.value()]
        while True:
            token = self.take()
            if token == ("punct", ")"):
                return tuple(values)
            if token != ("punct", ","):
                raise InvalidQuery("expected , or )")
            values.append(self.value())

    def parse(self) -> Condition:
        groups: list[tuple[Clause, ...]] = []
        current = [self.clause()]
        while self.pos < len(self.tokens):
            joiner = self.peek_word()
            if joiner not in ("AND", "OR"):
                raise InvalidQuery("conditions must be joined by AND or OR")
            self.take()
            if joiner == "OR":
                groups.append(tuple(current))
                current = []
            current.append(self.clause())
        groups.append(tuple(current))
        return tuple(groups)


def _from_sql(text: str, fields: Collection[str]) -> Condition:
    return _SqlParser(text, fields).parse()


# ---------------------------------------------------------------------------------------------------------------
# matching


def _number(value: str) -> Decimal | None:
    try:
        number = Decimal(value.strip())
    except (InvalidOperation, ValueError):
        return None
    return number if number.is_finite() else None


def is_number(value: str) -> bool:
    """Whether `=` compares this value as a number (then "1.0" equals "1") rather than as text."""
    return _number(value) is not None


def _compare(left: str, right: str) -> int:
    a, b = _number(left), _number(right)
    if a is not None and b is not None:
        return (a > b) - (a < b)
    x, y = left.casefold(), right.casefold()
    return (x > y) - (x < y)


def _like(pattern: str, value: str) -> bool:
    regex = "".join(".*" if ch == "%" else "." if ch == "_" else re.escape(ch) for ch in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL) is not None


def _clause_matches(clause: Clause, actual: Value) -> bool:
    if clause.op == "IS":
        blank = actual is None or actual == ""
        return blank != clause.negate
    if actual is None:
        return False
    if clause.op in ("IN", "NOT IN"):
        found = any(v is not None and _compare(actual, v) == 0 for v in clause.values)
        return found if clause.op == "IN" else not found
    expected = clause.values[0]
    if expected is None:
        return False
    if clause.op == "LIKE":
        return _like(expected, actual)
    order = _compare(actual, expected)
    return {
        "=": order == 0,
        "<>": order != 0,
        ">": order > 0,
        "<": order < 0,
        ">=": order >= 0,
        "<=": order <= 0,
    }[clause.op]
