"""SALESmanago signing and the reading of replies into error classes (syncd.sinks.salesmanago.protocol)."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from syncd.errors import CallError, DestinationError, PermanentError, RateLimited, TransientError
from syncd.sandbox.salesmanago.auth import auth_failure
from syncd.sinks.salesmanago.protocol import (
    auth_fields,
    blamed_items,
    classify,
    contact_id,
    item_error,
    read_reply,
    redact,
    request_text,
    retry_after,
    sign,
    with_request,
)

ADA = "ada@example.org"


def body(success: bool, *messages: str, **fields: Any) -> bytes:
    return json.dumps({"success": success, "message": list(messages), **fields}).encode()


def test_sign_is_sha1_of_key_client_and_secret() -> None:
    """sha is the lowercase hex SHA-1 of apiKey + clientId + apiSecret."""
    assert sign("k", "c", "s") == hashlib.sha1(b"kcs").hexdigest()


def test_auth_fields_authenticate_and_change_every_call() -> None:
    """Every body carries clientId, a fresh apiKey, its sha, requestTime in ms and the owner; the sandbox's
    check accepts it."""
    first = auth_fields(client_id="c-1", api_secret="secret", owner="sales@example.com", now=1709288102.5)
    second = auth_fields(client_id="c-1", api_secret="secret", owner="sales@example.com", now=1709288102.5)
    assert first["apiKey"] != second["apiKey"]
    assert first["sha"] == sign(first["apiKey"], "c-1", "secret")
    assert first["requestTime"] == 1709288102500
    assert first["owner"] == "sales@example.com"
    assert "secret" not in json.dumps(first)
    verdict = auth_failure(
        first, client_id="c-1", api_secret="secret", owners={"sales@example.com"}, now=1709288102.5, max_skew=60
    )
    assert verdict is None


@pytest.mark.parametrize(
    ("status", "content", "header", "expected", "wait"),
    [
        (200, body(True, contactId="x"), None, None, None),
        (200, body(False, "Not authenticated"), None, DestinationError, None),
        (200, body(False, "Not authenticated, invalid owner"), None, DestinationError, None),
        (200, body(False, "Not authenticated, not owner specified"), None, DestinationError, None),
        (401, b"", None, DestinationError, None),
        (403, b"{}", None, DestinationError, None),
        (404, body(False, "Unknown API method: contact/x"), None, DestinationError, None),
        (200, body(False, "API calls limit exceeded, try again later"), None, RateLimited, None),
        (200, body(False, "Too many requests"), None, RateLimited, None),
        (429, body(False, "API calls limit exceeded"), "7", RateLimited, 7.0),
        (503, b"Service Unavailable", "2.5", RateLimited, 2.5),
        (503, b"", None, RateLimited, None),
        (500, b"oops", None, TransientError, None),
        (502, b"<html>Bad gateway</html>", None, TransientError, None),
        (200, b'{"items": [', None, TransientError, None),
        (200, b"", None, TransientError, None),
        (200, body(False, f"Invalid email: {ADA} (the domain is not valid)"), None, PermanentError, None),
        (200, body(False, "Invalid contact state: VIP"), None, PermanentError, None),
        (200, body(False, "description is longer than the length limit"), None, PermanentError, None),
        (200, json.dumps({"success": False, "message": "Contact not found"}).encode(), None, PermanentError, None),
        (400, body(False, "The request body is not valid JSON"), None, PermanentError, None),
        (415, body(False, "Content-Type must be application/json"), None, PermanentError, None),
    ],
)
def test_classify(
    status: int, content: bytes, header: str | None, expected: type[CallError] | None, wait: float | None
) -> None:
    """A reply is judged by success and message first, then by status: credentials, throttling, server trouble,
    or the record's data."""
    reply = read_reply(status, content, header)
    error = classify(reply, method="contact/upsert", request="{}", known=(ADA,))
    if expected is None:
        assert error is None
        return
    assert type(error) is expected
    assert error.retry_after == wait
    assert error.http_status == status
    assert ADA not in error.message
    assert error.request == "{}"


@pytest.mark.parametrize(
    ("text", "known", "expected"),
    [
        (f"Invalid email: {ADA} (the domain is not valid)", (), "Invalid email: <e-mail> (the domain is not valid)"),
        ("upsertDetails[2] ADA@Example.org: Invalid email", (), "upsertDetails[2] <e-mail>: Invalid email"),
        ("Invalid email: ada@@example (two @)", ("ada@@example",), "Invalid email: <e-mail> (two @)"),
        ("Invalid email: ada.example.org (needs an @)", ("ada.example.org",), "Invalid email: <e-mail> (needs an @)"),
        ("Invalid email: ADA.EXAMPLE.ORG", ("ada.example.org",), "Invalid email: <e-mail>"),
        ("Invalid email: ada@", (), "Invalid email: <e-mail>"),
        ("Cannot change email a@x.org to b@x.org", (), "Cannot change email <e-mail> to <e-mail>"),
        ("API calls limit exceeded", (), "API calls limit exceeded"),
    ],
)
def test_redact(text: str, known: tuple[str, ...], expected: str) -> None:
    """E-mail addresses (also malformed ones the request carried) never stay in a message that may be logged."""
    assert redact(text, known) == expected


@pytest.mark.parametrize(
    ("messages", "emails", "expected"),
    [
        ([], [("a@x.org",), ("b@x.org",)], {}),
        (["upsertDetails[1] b@x.org: Invalid email: b@x.org"], [("a@x.org",), ("b@x.org",)], {1: 0}),
        (["upsertDetails[0] None: contact.email is required"], [("a@x.org",), ("b@x.org",)], {0: 0}),
        (["upsertDetails[1] a@x.org: Invalid email"], [("a@x.org",), ("b@x.org",)], {0: 0}),  # index disagrees
        (["upsertDetails[7] a@x.org: Invalid email"], [("a@x.org",), ("b@x.org",)], {0: 0}),  # out of range
        (["upsertDetails[7]: Invalid email"], [("a@x.org",), ("b@x.org",)], {}),
        (["Invalid email: B@x.org."], [("a@x.org",), ("b@x.org",)], {1: 0}),
        (
            ["Cannot change email a@x.org to n@x.org: that contact already exists"],
            [("a@x.org", "n@x.org"), ("b@x.org",)],
            {0: 0},
        ),
        (["a@x.org and b@x.org clash"], [("a@x.org",), ("b@x.org",)], {}),  # names two: blames neither
        (["Something went wrong"], [("a@x.org",)], {}),
        (
            ["upsertDetails[0] a@x.org: Invalid email", "upsertDetails[2] c@x.org: Invalid email"],
            [("a@x.org",), ("b@x.org",), ("c@x.org",)],
            {0: 0, 2: 1},
        ),
    ],
)
def test_blamed_items(messages: list[str], emails: list[tuple[str, ...]], expected: dict[int, int]) -> None:
    """A batch reply's messages are read back to the items they name (by index, or by a single item's e-mail)."""
    blamed = blamed_items(messages, emails)
    assert blamed == {n: messages[m] for n, m in expected.items()}


def test_item_error_is_human_and_secret_free() -> None:
    """A refused batch item's error keeps the reason, drops the item prefix and the e-mail."""
    error = item_error(
        "contact/batchupsert",
        f"upsertDetails[3] {ADA}: Invalid email: {ADA} (the domain is not valid)",
        request="{}",
        response="raw",
        known=(ADA,),
    )
    assert (
        error.message
        == "SALESmanago contact/batchupsert refused the contact: Invalid email: <e-mail> (the domain is not valid)"
    )
    assert (error.http_status, error.request, error.response) == (200, "{}", "raw")


def test_request_text_drops_the_auth_fields() -> None:
    """The stored request has the method and the body without clientId, apiKey, sha or requestTime."""
    auth = auth_fields(client_id="c-1", api_secret="secret", owner="sales@example.com", now=0)
    text = request_text("contact/upsert", {**auth, "contact": {"email": ADA}})
    assert json.loads(text) == {
        "method": "contact/upsert",
        "body": {"owner": "sales@example.com", "contact": {"email": ADA}},
    }
    assert auth["sha"] not in text
    assert auth["apiKey"] not in text


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("", None),
        ("7", 7.0),
        ("0.25", 0.25),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # a date in the past: go now
        ("soon", None),
    ],
)
def test_retry_after(header: str | None, expected: float | None) -> None:
    """Retry-After in seconds or as an HTTP date; unreadable values are ignored."""
    assert retry_after(header) == expected


def test_retry_after_future_date() -> None:
    """A Retry-After date in the future gives the seconds until then."""
    wait = retry_after("Fri, 01 Jan 2100 00:00:00 GMT")
    assert wait is not None
    assert wait > 365 * 86400


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        ({"success": True, "contactId": "c-1"}, "c-1"),  # upsert, hasContact, contact/basic
        ({"id": "c-1", "email": ADA}, "c-1"),  # contact/list and listById key it `id`
        ({"success": True, "result": False, "contactId": None}, None),  # hasContact of no contact
        ({"success": True, "result": None}, None),  # contact/delete answers result: null
        ({"contactId": 7}, None),
        ({"contactId": ""}, None),
        (None, None),
    ],
)
def test_contact_id_is_read_under_either_key(entry: dict[str, Any] | None, expected: str | None) -> None:
    """A contact id is read from `contactId` or from `id`, as the live replies key it; anything else is none."""
    assert contact_id(entry) == expected


def test_with_request_keeps_the_class_and_the_details() -> None:
    """A whole-call failure handed to each key keeps its class, status and wait, with that key's request."""
    error = with_request(RateLimited("slow down", http_status=429, retry_after=3.0, response="r"), "mine")
    assert type(error) is RateLimited
    assert (error.message, error.http_status, error.retry_after, error.request, error.response) == (
        "slow down",
        429,
        3.0,
        "mine",
        "r",
    )
