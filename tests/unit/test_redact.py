"""The redactor: every form in which a secret may be written is masked, and nothing else is touched."""

from __future__ import annotations

import json
from urllib.parse import quote

import pytest

from syncd.redact import MASK, Redactor

SECRET = 'tok"en\\/é+ 9'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"401 for {SECRET}", f"401 for {MASK}"),
        (json.dumps({"m": SECRET}), json.dumps({"m": "X"}).replace("X", MASK)),
        (json.dumps({"m": SECRET}, ensure_ascii=False), json.dumps({"m": "X"}).replace("X", MASK)),
        (f"Illegal header value {SECRET!r}", f"Illegal header value '{MASK}'"),
        (f"https://api/x?key={quote(SECRET, safe='')}", f"https://api/x?key={MASK}"),
        ("nothing to see", "nothing to see"),
    ],
)
def test_every_written_form_of_a_secret_is_masked(text: str, expected: str) -> None:
    """Raw, JSON-escaped (either way), repr-escaped and percent-encoded forms are all masked."""
    assert Redactor([SECRET])(text) == expected


def test_short_values_and_no_secrets_change_nothing() -> None:
    """Values under four characters are not secrets; a redactor without secrets is falsy and leaves text alone."""
    assert Redactor(["abc", ""])("abc abc") == "abc abc"
    assert not Redactor([])
    assert Redactor([])("anything") == "anything"


def test_a_longer_secret_is_masked_whole() -> None:
    """A secret that contains another is masked as one."""
    assert Redactor(["abcd", "abcdefgh"])("xabcdefghx") == f"x{MASK}x"
    assert Redactor(["abcd"]).reveals("..abcd..")
    assert Redactor(["abcd"]).optional(None) is None
