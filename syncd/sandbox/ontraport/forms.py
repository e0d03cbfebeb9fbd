"""Request parameters as the Ontraport API reads them: PHP-style nested form fields or JSON.

PHP's `http_build_query` (the official SDK's encoder) writes nested arrays as bracketed names,
`offer[products][0][id]=5`; PHP rebuilds them into nested arrays on the server. `parse_php_form` does the same:
bracketed names become nested dicts, `name[]` appends, and a dict whose keys are exactly 0..n-1 becomes a list.

Bodies are JSON when they say so, and also when they look like a JSON object whatever their content type: real
clients post `json_encode(...)` with a form content type, and Ontraport accepts it.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

_BRACKETS = re.compile(r"\[([^\[\]]*)\]")


class BodyError(ValueError):
    """The body cannot be read as form fields or as a JSON object."""


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
    text = body.decode("utf-8", errors="replace").strip()
    if not text:
        return {}
    media = content_type.split(";", 1)[0].strip().lower()
    looks_json = text[0] in "{["
    if media == "application/json" or media.endswith("+json") or looks_json:
        try:
            data = json.loads(text)
        except ValueError:
            if media == "application/json" or media.endswith("+json"):
                raise BodyError("the body is not valid JSON") from None
            return parse_php_form(parse_qsl(text, keep_blank_values=True))
        if not isinstance(data, dict):
            raise BodyError("the body must be a JSON object")
        return data
    return parse_php_form(parse_qsl(text, keep_blank_values=True))
