"""Keeping configured secrets out of text: one `Redactor` that knows every form in which a secret may show up.

A secret reaches text in more shapes than its own: quoted inside JSON (`"` and `\\` escaped, non-ASCII as
`\\uXXXX`), inside a Python repr (an exception message quoting a header value), or percent-encoded in a URL. Every
such form of every configured secret is replaced by the mask, longest first, so a secret containing another is
masked whole. Short values (under four characters) are left alone: masking them would garble ordinary text.

Every surface that may carry text from outside (logs, tracebacks, error text the store keeps, health answers,
command output) passes through one of these.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from urllib.parse import quote, quote_plus

MASK = "[redacted]"
MIN_LENGTH = 4  # shorter values are not treated as secrets (they would match ordinary words)


def forms(secret: str) -> set[str]:
    """The ways `secret` may be written in text: as is, JSON-escaped, repr-escaped and percent-encoded."""
    found = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
    }
    return {form for form in found if len(form) >= MIN_LENGTH}


class Redactor:
    """Replaces every form of every secret it was given by `MASK`; a Redactor without secrets changes nothing."""

    __slots__ = ("_forms",)

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        every = {form for secret in secrets if secret and len(secret) >= MIN_LENGTH for form in forms(secret)}
        self._forms = sorted(every, key=len, reverse=True)

    def __bool__(self) -> bool:
        return bool(self._forms)

    @property
    def forms(self) -> tuple[str, ...]:
        """Every written form of every secret, longest first (the order they are masked in)."""
        return tuple(self._forms)

    def __call__(self, text: str) -> str:
        for form in self._forms:
            if form in text:
                text = text.replace(form, MASK)
        return text

    def optional(self, text: str | None) -> str | None:
        """`text` redacted, None kept."""
        return None if text is None else self(text)

    def reveals(self, text: str) -> bool:
        """Whether `text` holds any form of a secret."""
        return any(form in text for form in self._forms)


NOTHING = Redactor()
