"""Request parameters as the Ontraport API reads them: PHP-style nested form fields or JSON.

PHP's `http_build_query` (the official SDK's encoder) writes nested arrays as bracketed names,
`offer[products][0][id]=5`; PHP rebuilds them into nested arrays on the server. `parse_php_form` does the same:
bracketed names become nested dicts, `name[]` appends, and a dict whose keys are exactly 0..n-1 becomes a list.

Bodies are JSON when they say so, and also when they look like a JSON object whatever their content type: real
clients post `json_encode(...)` with a form content type, and Ontraport accepts it. `Params` remembers which keys
came from a JSON body, because some endpoints read a value differently by encoding (`ids` must be a JSON array in
JSON, while a form may carry `ids=1,2` or `ids[0]=1`).
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


class BodyError(ValueError):
    """The body cannot be read as form fields or as a JSON object."""


class Params(dict[str, Any]):
    """A request's parameters (query string merged with the body); `json_keys` are those a JSON body carried."""

    def __init__(self, *args: Any, json_keys: frozenset[str] = frozenset(), **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.json_keys = json_keys

    def from_json(self, key: str) -> bool:
        """Whether `key` came from a JSON body (else from a form body or the query string)."""
        return key in self.json_keys


def split_name(name: str) -> list[str]:
    """`offer[products][0][id]` -> `["offer", "products", "0", "id"]`; `ids[]` -> `["ids", ""]`."""
    head, bracket, _ = name.partition("[")
    if not bracket or not head:
        return [name]
    rest = name[len(head) :]
    parts = _BRACKETS.findall(rest)
    if "".join(f"[{p}]" for p in parts) != rest:  # unbalanced: PHP keeps the leading well-formed part
        consumed = ""
        parts = []
        for match in _BRACKETS.finditer(rest):
            if match.start() != len(consumed):
                break
            consumed += match.group(0)
            parts.append(match.group(1))
        if not parts:
            return [name]
    return [head, *parts]


def _listify(value: Any) -> Any:
    if isinstance(value, dict):
        converted = {k: _listify(v) for k, v in value.items()}
        if converted and list(converted) == [str(i) for i in range(len(converted))]:
            return list(converted.values())
        return converted
    return value


def _next_index(node: dict[str, Any]) -> str:
    indices = [int(k) for k in node if k.isdigit()]
    return str(max(indices) + 1 if indices else 0)


def parse_php_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Nest decoded name/value pairs the way PHP builds `$_POST` (later names win, as in PHP)."""
    root: dict[str, Any] = {}
    for name, value in pairs:
        parts = split_name(name)
        node = root
        for i, part in enumerate(parts):
            key = _next_index(node) if part == "" else part
            if i == len(parts) - 1:
                node[key] = value
                break
            child = node.get(key)
            if not isinstance(child, dict):
                child = {}
                node[key] = child
            node = child
    result = _listify(root)
    assert isinstance(result, dict)
    return result


def parse_query(query: str) -> dict[str, Any]:
    """A query string, with PHP-style nesting."""
    return parse_php_form(parse_qsl(query, keep_blank_values=True))


def parse_body(content_type: str, body: bytes) -> dict[str, Any]:
    """The parameters in a POST/PUT/DELETE body (form-encoded or JSON); `{}` for an empty body."""
    return read_body(content_type, body)[0]


def read_body(content_type: str, body: bytes) -> tuple[dict[str, Any], bool]:
    """The parameters in a body and whether it was read as JSON."""
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return {}, False
    media = content_type.split(";", 1)[0].strip().lower()
    looks_json = text[0] in "{["
    if media == "application/json" or media.endswith("+json") or looks_json:
        try:
            data = json.loads(text)
        except ValueError:
            if media == "application/json" or media.endswith("+json"):
                raise BodyError("the body is not valid JSON") from None
            return parse_php_form(parse_qsl(text, keep_blank_values=True)), False
        if not isinstance(data, dict):
            raise BodyError("the body must be a JSON object")
        if "\\u" in text.lower() and _has_lone_surrogate(data):
            raise BodyError("the body has an unpaired UTF-16 surrogate")  # PHP's json_decode refuses it too
        return data, True
    return parse_php_form(parse_qsl(text, keep_blank_values=True)), False


def _has_lone_surrogate(data: dict[str, Any]) -> bool:
    """Whether decoded JSON holds a lone surrogate (from `"\\ud800"`), which is no UTF-8 text at all."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def request_params(query: str, content_type: str, body: bytes) -> Params:
    """The query string merged with the body (the body wins), remembering the keys a JSON body carried."""
    merged = parse_query(query)
    values, as_json = read_body(content_type, body)
    merged.update(values)
    return Params(merged, json_keys=frozenset(values) if as_json else frozenset())
