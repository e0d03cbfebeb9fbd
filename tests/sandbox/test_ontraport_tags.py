"""The Ontraport simulator's tag-by-name endpoint over real loopback HTTP, and the tags in its contact dump."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.server import ServerThread

APP_ID = "2_AppID_tags"
API_KEY = "KeyTags1"
AUTH = {"Api-Key": API_KEY, "Api-Appid": APP_ID}


@pytest.fixture(scope="module")
def served() -> Iterator[tuple[OntraportSandbox, str]]:
    sandbox = OntraportSandbox(app_id=APP_ID, api_key=API_KEY, rate=None)
    with ServerThread(sandbox.app) as server:
        yield sandbox, server.url


@pytest.fixture
def client(served: tuple[OntraportSandbox, str]) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=served[1], headers=AUTH, timeout=5) as http:
        yield http


def new_contact(client: httpx.Client, **fields: str) -> str:
    response = client.post("/1/Contacts", json=fields)
    assert response.status_code == 200, response.text
    contact_id: str = response.json()["data"]["id"]
    return contact_id


def dump(client: httpx.Client) -> dict[str, dict[str, Any]]:
    contacts = client.get("/_sandbox/contacts").json()["contacts"]
    return {c["id"]: c for c in contacts}


def test_tag_by_name_tags_contacts_and_the_dump_lists_the_names(client: httpx.Client) -> None:
    """PUT /1/objects/tagByName adds named tags (created on first use) to every listed contact; the dump shows them."""
    first, second, untouched = (new_contact(client, firstname=n) for n in ("Ada", "Alan", "Grace"))
    response = client.put(
        "/1/objects/tagByName", json={"objectID": 0, "ids": [int(first), int(second)], "add_names": ["Deleted in Sell"]}
    )
    assert response.status_code == 200
    assert response.json() == {"code": 0, "data": "The tag is now being processed.", "account_id": 50}
    client.put(
        "/1/objects/tagByName", json={"objectID": 0, "ids": [int(first)], "add_names": ["VIP", "deleted in sell"]}
    )
    contacts = dump(client)
    assert contacts[first]["tags"] == ["Deleted in Sell", "VIP"]
    assert contacts[second]["tags"] == ["Deleted in Sell"]
    assert "tags" not in contacts[untouched]


def test_tags_can_be_removed_by_name(client: httpx.Client) -> None:
    """DELETE /1/objects/tagByName takes the named tags off the listed contacts and leaves the others."""
    contact = new_contact(client, firstname="Edsger")
    client.put("/1/objects/tagByName", json={"objectID": 0, "ids": [int(contact)], "add_names": ["A", "B"]})
    response = client.request(
        "DELETE", "/1/objects/tagByName", json={"objectID": 0, "ids": [int(contact)], "remove_names": ["a"]}
    )
    assert response.status_code == 200
    assert dump(client)[contact]["tags"] == ["B"]


@pytest.mark.parametrize(
    ("ids_field", "both"),
    [
        ("ids={a}", False),
        ("ids={a}%2C{b}", True),
        ("ids%5B%5D={a}&ids%5B%5D={b}", True),
        ("ids%5B0%5D={a}&ids%5B1%5D={b}", True),
        ("ids%5B7%5D={a}", False),
    ],
    ids=["scalar", "comma", "php-append", "php-indexed", "php-sparse"],
)
def test_form_encoded_tag_request_is_accepted(client: httpx.Client, ids_field: str, both: bool) -> None:
    """A form body keeps PHP's readings of `ids` (a scalar, a comma list, `ids[]`, `ids[0]`) and `add_names[0]`."""
    a, b = new_contact(client, firstname="Barbara"), new_contact(client, firstname="Bob")
    response = client.put(
        "/1/objects/tagByName",
        content=f"objectID=0&{ids_field.format(a=a, b=b)}&add_names%5B0%5D=Form+Tag".encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert response.status_code == 200, response.text
    contacts = dump(client)
    assert contacts[a]["tags"] == ["Form Tag"]
    assert contacts[b].get("tags") == (["Form Tag"] if both else None)


def test_json_ids_as_digit_strings_in_an_array_are_read_as_ids(client: httpx.Client) -> None:
    """An array of digit strings (PHP compares loosely) tags those contacts like an array of integers."""
    contact = new_contact(client, firstname="Dana")
    response = client.put("/1/objects/tagByName", json={"objectID": 0, "ids": [contact], "add_names": ["S"]})
    assert response.status_code == 200, response.text
    assert dump(client)[contact]["tags"] == ["S"]


def test_json_string_ids_can_be_read_as_acting_on_nothing(client: httpx.Client) -> None:
    """With json_string_ids "ignore" a JSON string `ids` answers as usual but tags nobody (the silent reading)."""
    contact = new_contact(client, firstname="Eve")
    assert client.post("/_sandbox/behaviour", json={"json_string_ids": "ignore"}).status_code == 200
    try:
        response = client.put("/1/objects/tagByName", json={"objectID": 0, "ids": contact, "add_names": ["Lost"]})
        assert response.json() == {"code": 0, "data": "The tag is now being processed.", "account_id": 50}
        assert "tags" not in dump(client)[contact]
    finally:
        client.post("/_sandbox/behaviour", json={"json_string_ids": "refuse"})


def test_unknown_contact_ids_are_passed_over(client: httpx.Client, served: tuple[OntraportSandbox, str]) -> None:
    """Ids of contacts that do not exist are ignored, like a background job would, and create no tags on them."""
    response = client.put("/1/objects/tagByName", json={"objectID": 0, "ids": [999999], "add_names": ["Ghost"]})
    assert response.status_code == 200
    assert served[0].tags.names_of(999999) == []


@pytest.mark.parametrize(
    ("body", "text"),
    [
        ({"objectID": 12, "ids": [1], "add_names": ["X"]}, "Invalid objectID"),
        ({"ids": [1], "add_names": ["X"]}, "Invalid objectID"),
        ({"objectID": 0, "add_names": ["X"]}, "Invalid request"),
        ({"objectID": 0, "ids": [], "add_names": ["X"]}, "Invalid request"),
        ({"objectID": 0, "ids": [1]}, "Invalid request"),
        ({"objectID": 0, "ids": [1], "add_names": [" "]}, "Invalid request"),
        ({"objectID": 0, "ids": ["x"], "add_names": ["X"]}, "Invalid ID"),
        ({"objectID": 0, "ids": [1.5], "add_names": ["X"]}, "Invalid ID"),
        ({"objectID": 0, "ids": [True], "add_names": ["X"]}, "Invalid ID"),
        ({"objectID": 0, "ids": [[1]], "add_names": ["X"]}, "Invalid ID"),
        ({"objectID": 0, "ids": "1", "add_names": ["X"]}, "Invalid ids"),
        ({"objectID": 0, "ids": "1,2", "add_names": ["X"]}, "Invalid ids"),
        ({"objectID": 0, "ids": 1, "add_names": ["X"]}, "Invalid ids"),
        ({"objectID": 0, "ids": {"0": 1}, "add_names": ["X"]}, "Invalid ids"),
    ],
)
def test_bad_tag_requests_are_400(client: httpx.Client, body: dict[str, Any], text: str) -> None:
    """A tag request without contacts, names or the contact object type, or whose JSON `ids` is not an array of
    whole numbers, is refused with a short plain-text 400."""
    response = client.put("/1/objects/tagByName", json=body)
    assert response.status_code == 400
    assert response.text.startswith(text)


def test_tagging_needs_credentials(served: tuple[OntraportSandbox, str]) -> None:
    """The tag endpoint is authenticated like every other /1/ call."""
    response = httpx.put(f"{served[1]}/1/objects/tagByName", json={"objectID": 0, "ids": [1], "add_names": ["X"]})
    assert response.status_code == 401
