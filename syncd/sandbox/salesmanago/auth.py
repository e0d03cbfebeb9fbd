"""SALESmanago's request authentication, as the simulator checks it (pure functions).

Every body carries `clientId`, `apiKey` (any string), `sha` = lowercase hex SHA-1 of apiKey + clientId + apiSecret,
`requestTime` (Unix time in milliseconds, in seconds, or either as a numeric string) and, on contact and event calls,
`owner` (the e-mail of a SALESmanago user of the account).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Collection, Mapping
from typing import Any

NOT_AUTHENTICATED = "Not authenticated"
NO_OWNER = "Not authenticated, not owner specified"
INVALID_OWNER = "Not authenticated, invalid owner"

# Unix time 1e11 s lies in the year 5138 and 1e11 ms in 1973: anything larger is milliseconds.
_MILLIS_ABOVE = 1e11
_NUMERIC = re.compile(r"^\d+(?:\.\d+)?$")


def sign(api_key: str, client_id: str, api_secret: str) -> str:
    """The `sha` a client sends: lowercase hex SHA-1 of apiKey + clientId + apiSecret."""
    return hashlib.sha1((api_key + client_id + api_secret).encode()).hexdigest()


def request_seconds(value: object) -> float | None:
    """Unix seconds from a `requestTime` in milliseconds, in seconds or as a numeric string; None if unusable."""
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        if not _NUMERIC.match(value):
            return None
        value = float(value)
    if not isinstance(value, int | float):
        return None
    seconds = float(value)
    return seconds / 1000 if seconds > _MILLIS_ABOVE else seconds


def auth_failure(
    body: Mapping[str, Any],
    *,
    client_id: str,
    api_secret: str | None,
    owners: Collection[str],
    now: float,
    max_skew: float,
) -> str | None:
    """The `message` SALESmanago answers for a body that fails authentication, or None when it passes.

    `api_secret` None means the secret was revoked: no signature matches. `owners` are lower-case e-mails.
    """
    api_key = body.get("apiKey")
    sha = body.get("sha")
    if body.get("clientId") != client_id or not isinstance(api_key, str) or not isinstance(sha, str):
        return NOT_AUTHENTICATED
    if api_secret is None or not hmac.compare_digest(sha.encode(), sign(api_key, client_id, api_secret).encode()):
        return NOT_AUTHENTICATED
    sent_at = request_seconds(body.get("requestTime"))
    if sent_at is None or abs(sent_at - now) > max_skew:
        return NOT_AUTHENTICATED
    owner = body.get("owner")
    if not isinstance(owner, str) or not owner:
        return NO_OWNER
    if owner.lower() not in owners:
        return INVALID_OWNER
    return None
