"""The Ontraport simulator over real loopback HTTP: what a client of api.ontraport.com sees.

One loopback server serves the module; every test points it at a fresh sandbox with a fake clock.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.server import ServerThread
from syncd.units import Rate
from tests.support import AppSwitch, FakeClock, wait_until

APP_ID = "2_AppID_12345678"
API_KEY = "Key5678"
AUTH = {"Api-Key": API_KEY, "Api-Appid": APP_ID}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}
START = 1_709_288_102.0

# The contract's field list (contracts/ontraport.md, "Contact field keys").
CONTRACT_KEYS = [
    "firstname", "lastname", "email", "freferrer", "lreferrer", "address", "address2", "city", "state", "zip",
    "country", "birthday", "priority", "status", "cell_phone", "home_phone", "sms_number", "office_phone", "fax",
    "company", "title", "website", "bulk_mail", "bulk_sms", "n_lead_source", "n_content", "n_medium", "n_campaign",
    "n_term", "l_lead_source", "l_content", "l_medium", "l_campaign", "l_term", "use_utm_names", "referral_page",
    "aff_sales", "aff_amount", "program_id", "aff_paypal", "timezone", "num_purchased",
]  # fmt: skip


@pytest.fixture(scope="module")
def op_switch() -> Iterator[tuple[AppSwitch, str]]:
    switch = AppSwitch()
    with ServerThread(switch) as server:
        yield switch, server.url


@pytest.fixture
def op_clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def op_sandbox(op_clock: FakeClock) -> OntraportSandbox:
    return OntraportSandbox(app_id=APP_ID, api_key=API_KEY, clock=op_clock, rate=None)


@pytest.fixture
def op_url(op_switch: tuple[AppSwitch, str], op_sandbox: OntraportSandbox) -> str:
    switch, url = op_switch
    switch.app = op_sandbox.app
    return url


@pytest.fixture
def op_client(op_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=op_url, headers=AUTH, timeout=5) as client:
        yield client


@pytest.fixture
def op_control(op_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=op_url, timeout=5) as client:
        yield client


def payload(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["code"], body["account_id"]) == (0, 50)
    return body["data"]


def create(client: httpx.Client, **fields: Any) -> dict[str, Any]:
    record: dict[str, Any] = payload(client.post("/1/Contacts", json=fields))
    return record


def search(client: httpx.Client, condition: Any, **params: Any) -> list[dict[str, Any]]:
    text = condition if isinstance(condition, str) else json.dumps(condition)
    found: list[dict[str, Any]] = payload(client.get("/1/Contacts", params={"condition": text, **params}))
    return found


def crit(field: str, op: str, value: Any) -> dict[str, Any]:
    if isinstance(value, list):
        return {"field": {"field": field}, "op": op, "value": {"list": [{"value": v} for v in value]}}
    return {"field": {"field": field}, "op": op, "value": {"value": value}}


# ---------------------------------------------------------------------------------------------------------------
# authentication


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Api-Key": API_KEY},
        {"Api-Appid": APP_ID},
        {"Api-Key": "wrong", "Api-Appid": APP_ID},
        {"Api-Key": API_KEY, "Api-Appid": "2_AppID_0"},
    ],
)
def test_missing_or_wrong_credentials_are_refused_with_401(op_url: str, headers: dict[str, str]) -> None:
    """Both Api-Key and Api-Appid must be present and right, else 401 with a short plain-text body."""
    response = httpx.get(f"{op_url}/1/Contacts", headers=headers)
    assert response.status_code == 401
    assert response.headers["content-type"].startswith("text/plain")
    assert API_KEY not in response.text


def test_credentials_can_be_rotated_revoked_and_forbidden(op_client: httpx.Client, op_control: httpx.Client) -> None:
    """POST /_sandbox/credentials rotates the key (old one 401), revokes it (all 401) or forbids the account (403)."""
    assert op_control.post("/_sandbox/credentials", json={"api_key": "NewKey"}).status_code == 200
    assert op_client.get("/1/Contacts").status_code == 401
    rotated = {**AUTH, "Api-Key": "NewKey"}
    assert op_client.get("/1/Contacts", headers=rotated).status_code == 200
    op_control.post("/_sandbox/credentials", json={"forbidden": True})
    assert op_client.get("/1/Contacts", headers=rotated).status_code == 403
    op_control.post("/_sandbox/credentials", json={"api_key": None})
    assert op_client.get("/1/Contacts", headers=rotated).status_code == 401


# ---------------------------------------------------------------------------------------------------------------
# bodies


def test_documented_form_create_example_is_accepted(op_client: httpx.Client, op_sandbox: OntraportSandbox) -> None:
    """The reference's cURL create (form body) makes a contact whose values come back as strings."""
    # curl -X POST -d 'firstname=Angie&lastname=Lopez&email=alopez%40ontraport.com' \
    #     'https://api.ontraport.com/1/Contacts' --header 'Content-Type: application/x-www-form-urlencoded' ...
    body = "firstname=Angie&lastname=Lopez&email=alopez%40ontraport.com"
    record = payload(op_client.post("/1/Contacts", content=body, headers=FORM))
    assert record["id"] == "1"
    assert (record["firstname"], record["lastname"], record["email"]) == ("Angie", "Lopez", "alopez@ontraport.com")
    assert (record["priority"], record["dlm"], record["date"]) == ("0", str(int(START)), str(int(START)))
    assert record["city"] is None
    assert all(v is None or isinstance(v, str) for v in record.values())
    assert op_sandbox.state()["contacts"] == 1


@pytest.mark.parametrize(
    "headers",
    [{"Content-Type": "application/json"}, FORM, {}],
    ids=["json", "json-sent-as-form", "no-content-type"],
)
def test_json_bodies_are_accepted_whatever_the_content_type(op_client: httpx.Client, headers: dict[str, str]) -> None:
    """A JSON object body is read as JSON, also when a client labels it as a form (as real clients do)."""
    body = json.dumps({"objectID": "0", "firstname": "Airwolf", "email": "gateway_test@ontraport.com", "priority": 8})
    record = payload(op_client.post("/1/objects", content=body, headers=headers))
    assert (record["firstname"], record["email"], record["priority"]) == ("Airwolf", "gateway_test@ontraport.com", "8")


def test_nested_php_form_body_logs_a_purchase(op_client: httpx.Client) -> None:
    """A processManual body in PHP `http_build_query` form (`offer[products][0][id]=...`) is read as nested."""
    contact = create(op_client, email="ada@example.org")
    product = payload(op_client.post("/1/Products", data={"name": "Gold", "price": "99.00"}))
    body = (
        f"contact_id={contact['id']}&chargeNow=chargeLog&invoice_template=-1&trans_date=1709288102000"
        f"&offer%5Bproducts%5D%5B0%5D%5Bid%5D={product['id']}&offer%5Bproducts%5D%5B0%5D%5Bquantity%5D=2"
        "&offer%5Bproducts%5D%5B0%5D%5Bprice%5D%5B0%5D%5Bprice%5D=10.5"
    )
    assert payload(op_client.post("/1/transaction/processManual", content=body, headers=FORM)) == {"invoice_id": 1}
    purchase = payload(op_client.get("/1/Purchases", params={"condition": f"contact_id={contact['id']}"}))[0]
    assert (purchase["quantity"], purchase["price"], purchase["total_price"]) == ("2", "10.50", "21.00")


def test_malformed_json_body_is_a_400(op_client: httpx.Client) -> None:
    """A body declared as JSON that does not parse is refused with 400."""
    response = op_client.post("/1/Contacts", content=b'{"email": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 400


# ---------------------------------------------------------------------------------------------------------------
# contacts: create, merge-or-create


def test_a_retried_create_makes_a_second_contact(op_client: httpx.Client, op_control: httpx.Client) -> None:
    """POST /1/Contacts does not deduplicate: the same body twice makes two contacts."""
    first = create(op_client, firstname="Ada", email="ada@example.org")
    second = create(op_client, firstname="Ada", email="ada@example.org")
    assert first["id"] != second["id"]
    state = op_control.get("/_sandbox/state").json()
    assert (state["contacts"], state["creates"]) == (2, 2)
    assert state["writes"] == {first["id"]: 1, second["id"]: 1}


def test_saveorupdate_creates_when_no_email_matches(op_client: httpx.Client) -> None:
    """Merge-or-create without a match answers the full new record with a top-level id."""
    data = payload(op_client.post("/1/Contacts/saveorupdate", data={"firstname": "Marie", "email": "md@example.org"}))
    assert (data["id"], data["firstname"], "attrs" in data) == ("1", "Marie", False)


def test_saveorupdate_merges_by_email_case_insensitively(op_client: httpx.Client, op_clock: FakeClock) -> None:
    """A match by e-mail (any case) is merged; data.attrs holds only the changed fields, dlm and id."""
    created = create(op_client, firstname="Ada", lastname="King", email="ada@example.org")
    op_clock.advance(30)
    body = {"email": "ada@example.org", "firstname": "Ada", "lastname": "Lovelace", "shoe_size": "42"}
    merged = payload(op_client.post("/1/Contacts/saveorupdate", json={**body, "email": "ADA@example.org"}))
    assert merged == {
        "attrs": {"email": "ADA@example.org", "lastname": "Lovelace", "dlm": str(int(START + 30)), "id": created["id"]}
    }
    again = payload(op_client.post("/1/Contacts/saveorupdate", json={**body, "email": "ADA@example.org"}))
    assert again == {"attrs": {"dlm": str(int(START + 30)), "id": created["id"]}}
    assert len(search(op_client, "")) == 1


@pytest.mark.parametrize(
    ("ignore_blanks", "expected"),
    [(None, ""), ("false", ""), ("true", "Acme"), (True, "Acme"), ("1", "Acme")],
)
def test_blank_strings_overwrite_unless_ignore_blanks(
    op_client: httpx.Client, ignore_blanks: Any, expected: str
) -> None:
    """A blank value in a merge clears the field, unless ignore_blanks is true."""
    created = create(op_client, company="Acme", email="ada@example.org")
    body: dict[str, Any] = {"email": "ada@example.org", "company": ""}
    if ignore_blanks is not None:
        body["ignore_blanks"] = ignore_blanks
    op_client.post("/1/Contacts/saveorupdate", json=body)
    assert payload(op_client.get("/1/Contact", params={"id": created["id"]}))["company"] == expected


@pytest.mark.parametrize(
    ("written", "stored"),
    [("Australia", "AU"), ("united kingdom", "GB"), ("UK", "GB"), ("au", "AU"), ("Poland", "PL"), ("Narnia", "Narnia")],
)
def test_country_names_are_normalised_to_iso_codes(op_client: httpx.Client, written: str, stored: str) -> None:
    """A full country name is stored as its ISO 3166-1 alpha-2 code; unknown text is kept as written."""
    data = payload(op_client.post("/1/Contacts/saveorupdate", json={"email": "a@example.org", "country": written}))
    assert data["country"] == stored


def test_saveorupdate_without_email_always_creates(op_client: httpx.Client) -> None:
    """Without an e-mail there is nothing to match: every merge-or-create makes a contact."""
    first = payload(op_client.post("/1/Contacts/saveorupdate", json={"firstname": "Nobody"}))
    second = payload(op_client.post("/1/Contacts/saveorupdate", json={"firstname": "Nobody"}))
    assert first["id"] != second["id"]


# ---------------------------------------------------------------------------------------------------------------
# contacts: read, search, update, delete


def test_get_contact_by_id_and_404_for_unknown(op_client: httpx.Client) -> None:
    """GET /1/Contact?id= answers the record; an unknown id is 404 `Object not found` in plain text."""
    created = create(op_client, firstname="Ada")
    assert payload(op_client.get("/1/Contact", params={"id": created["id"]})) == created
    missing = op_client.get("/1/Contact", params={"id": "999"})
    assert (missing.status_code, missing.text) == (404, "Object not found")


@pytest.fixture
def op_people(op_client: httpx.Client) -> dict[str, str]:
    """Three contacts: e-mail -> id."""
    people = [
        {"firstname": "Ada", "lastname": "Lovelace", "email": "ada@example.org", "priority": "8"},
        {"firstname": "Alan", "lastname": "Turing", "email": "alan@example.org", "priority": "9"},
        {"firstname": "Grace", "lastname": "Hopper", "email": "grace@example.org"},
    ]
    return {p["email"]: create(op_client, **p)["id"] for p in people}


@pytest.mark.parametrize(
    ("condition", "expected"),
    [
        ([crit("email", "=", "ada@example.org")], {"ada"}),
        ([crit("email", "=", "ADA@EXAMPLE.ORG")], {"ada"}),
        ([crit("email", "<>", "ada@example.org")], {"alan", "grace"}),
        ([crit("priority", ">", 0)], {"ada", "alan"}),
        ([crit("priority", ">=", 9)], {"alan"}),
        ([crit("priority", "<=", 8)], {"ada", "grace"}),
        ([crit("lastname", "IN", ["Turing", "Hopper"])], {"alan", "grace"}),
        ([crit("lastname", "NOT IN", ["Turing", "Hopper"])], {"ada"}),
        ([crit("city", "IS", None)], {"ada", "alan", "grace"}),
        ([crit("firstname", "=", "Ada"), "AND", crit("lastname", "=", "Turing")], set()),
        ([crit("firstname", "=", "Ada"), "OR", crit("lastname", "=", "Turing")], {"ada", "alan"}),
        (
            [crit("firstname", "=", "Grace"), "OR", crit("priority", ">", 0), "AND", crit("lastname", "<", "M")],
            {"ada", "grace"},
        ),
        ("email='alan@example.org'", {"alan"}),
        ("firstname = 'Ada' OR lastname = \"Hopper\"", {"ada", "grace"}),
        ("lastname IN ('Turing', 'Lovelace') AND priority <> 9", {"ada"}),
        ("email='nobody@example.org'", set()),
    ],
)
def test_search_conditions(
    op_client: httpx.Client, op_people: dict[str, str], condition: Any, expected: set[str]
) -> None:
    """GET /1/Contacts?condition= applies JSON criteria (ops, AND/OR) and the older string form."""
    found = search(op_client, condition)
    assert {r["email"].split("@")[0] for r in found} == expected


def test_search_without_match_is_an_empty_list_with_misc(op_client: httpx.Client, op_people: dict[str, str]) -> None:
    """A list call with no match answers `data: []` plus `misc: []`."""
    response = op_client.get("/1/Contacts", params={"condition": "email='x@example.org'"})
    assert response.json() == {"code": 0, "data": [], "account_id": 50, "misc": []}


@pytest.mark.parametrize(
    "condition",
    ["shoe_size='42'", json.dumps([crit("shoe_size", "=", "42")]), "email=", "[{", json.dumps([crit("id", "~", 1)])],
)
def test_invalid_query_is_a_400(op_client: httpx.Client, condition: str) -> None:
    """An unknown field, bad syntax or an unknown operator answers 400 `Invalid query`."""
    response = op_client.get("/1/Contacts", params={"condition": condition})
    assert (response.status_code, response.text) == (400, "Invalid query")


def test_range_is_capped_at_50(op_client: httpx.Client) -> None:
    """A page holds at most 50 records however large `range` is; `start` pages on."""
    for i in range(55):
        create(op_client, firstname=f"P{i}")
    assert len(payload(op_client.get("/1/Contacts", params={"range": 100}))) == 50
    rest = payload(op_client.get("/1/Contacts", params={"range": 50, "start": 50}))
    assert [r["firstname"] for r in rest] == [f"P{i}" for i in range(50, 55)]


def test_get_by_email_answers_the_id_or_404(op_client: httpx.Client, op_people: dict[str, str]) -> None:
    """GET /1/object/getByEmail answers {"id": "..."}; no match is 404."""
    found = payload(op_client.get("/1/object/getByEmail", params={"objectID": 0, "email": "Grace@example.org"}))
    assert found == {"id": op_people["grace@example.org"]}
    missing = op_client.get("/1/object/getByEmail", params={"objectID": 0, "email": "x@example.org"})
    assert missing.status_code == 404


def test_update_answers_changed_fields_dlm_and_id(op_client: httpx.Client, op_clock: FakeClock) -> None:
    """PUT /1/Contacts (form, as documented) answers attrs = changed fields + dlm + id; unknown keys are ignored."""
    created = create(op_client, firstname="Mary", lastname="Smith")
    op_clock.advance(5)
    body = f"id={created['id']}&firstname=Mary&lastname=Jones&num_purchased=7&f1561=99&shoe_size=42"
    attrs = payload(op_client.put("/1/Contacts", content=body, headers=FORM))["attrs"]
    assert attrs == {"lastname": "Jones", "dlm": str(int(START + 5)), "id": created["id"]}
    record = payload(op_client.get("/1/Contact", params={"id": created["id"]}))
    assert (record["num_purchased"], record["f1561"], "shoe_size" in record) == ("0", None, False)


def test_update_of_unknown_contact_is_404(op_client: httpx.Client) -> None:
    """PUT /1/Contacts with an id that does not exist answers 404 `Object not found`."""
    response = op_client.put("/1/Contacts", json={"id": 404, "firstname": "Ghost"})
    assert (response.status_code, response.text) == (404, "Object not found")


@pytest.mark.parametrize("id_in", ["query", "form"])
def test_delete_contact(op_client: httpx.Client, id_in: str) -> None:
    """DELETE /1/Contact answers code 0 without data (id in query or body); afterwards the id is 404."""
    created = create(op_client, firstname="Ada")
    if id_in == "query":
        response = op_client.delete("/1/Contact", params={"id": created["id"]})
    else:
        response = op_client.request("DELETE", "/1/Contact", content=f"id={created['id']}", headers=FORM)
    assert response.json() == {"code": 0, "account_id": 50}
    assert op_client.get("/1/Contact", params={"id": created["id"]}).status_code == 404
    assert op_client.delete("/1/Contact", params={"id": created["id"]}).status_code == 404


# ---------------------------------------------------------------------------------------------------------------
# invalid e-mails and poison records


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/1/Contacts"), ("POST", "/1/Contacts/saveorupdate"), ("PUT", "/1/Contacts")],
)
def test_invalid_email_on_any_write_is_422(op_client: httpx.Client, method: str, path: str) -> None:
    """An e-mail that is not an address is refused with 422 on create, merge-or-create and update."""
    existing = create(op_client, firstname="Ada")
    response = op_client.request(method, path, json={"id": existing["id"], "email": "not-an-email"})
    assert response.status_code == 422
    assert payload(op_client.get("/1/Contact", params={"id": existing["id"]}))["email"] is None


def test_rejected_emails_answer_422_until_lifted(op_client: httpx.Client, op_control: httpx.Client) -> None:
    """POST /_sandbox/rules makes an e-mail a poison record (422) until the rule is lifted."""
    op_control.post("/_sandbox/rules", json={"reject_emails": ["Poison@example.org"]})
    body = {"email": "poison@example.org", "firstname": "P"}
    assert op_client.post("/1/Contacts/saveorupdate", json=body).status_code == 422
    op_control.post("/_sandbox/rules", json={"reject_emails": []})
    assert payload(op_client.post("/1/Contacts/saveorupdate", json=body))["email"] == "poison@example.org"


# ---------------------------------------------------------------------------------------------------------------
# field discovery


def test_meta_lists_every_contract_field_with_string_flags(op_client: httpx.Client) -> None:
    """GET /1/Contacts/meta has the contract's fields and custom ones; flags are "0"/"1"; drop/list carry options."""
    meta = payload(op_client.get("/1/Contacts/meta"))
    assert meta["0"]["name"] == "Contact"
    fields = meta["0"]["fields"]
    assert set(CONTRACT_KEYS) <= set(fields)
    assert fields["firstname"] == {
        "alias": "First Name", "type": "text", "required": "0", "unique": "0", "editable": "1", "deletable": "0",
    }  # fmt: skip
    assert fields["num_purchased"]["editable"] == "0"
    assert (fields["f1557"]["type"], fields["f1557"]["options"]) == ("drop", {"1": "Gold", "2": "Silver"})
    assert fields["f1560"]["type"] == "list"
    assert fields["f1560"]["options"]
    assert any(key.startswith("f") and f["editable"] == "0" for key, f in fields.items())
    for field in fields.values():
        assert {field[flag] for flag in ("required", "unique", "editable", "deletable")} <= {"0", "1"}


def test_fieldeditor_groups_the_same_fields_in_sections(op_client: httpx.Client) -> None:
    """GET /1/Contacts/fieldeditor answers sections of columns holding exactly the meta's fields."""
    meta_fields = payload(op_client.get("/1/Contacts/meta"))["0"]["fields"]
    grouped = payload(op_client.get("/1/Contacts/fieldeditor"))
    entries = [e for section in grouped for column in section["fields"] for e in column]
    assert {e["field"] for e in entries} == set(meta_fields)
    for entry in entries:
        assert {k: v for k, v in entry.items() if k not in ("id", "field")} == meta_fields[entry["field"]]
    one = payload(op_client.get("/1/Contacts/fieldeditor", params={"field": "f1557"}))
    assert one["options"] == {"1": "Gold", "2": "Silver"}


def test_custom_fields_can_be_added(op_client: httpx.Client, op_control: httpx.Client) -> None:
    """POST /_sandbox/fields adds a custom field to the meta, and writes to it are kept."""
    added = op_control.post(
        "/_sandbox/fields", json={"fields": [{"field": "f1600", "alias": "Sell ID", "type": "text"}]}
    )
    assert added.json() == {"fields": ["f1600"]}
    assert payload(op_client.get("/1/Contacts/meta"))["0"]["fields"]["f1600"]["alias"] == "Sell ID"
    assert create(op_client, f1600="9001")["f1600"] == "9001"
    assert op_control.post("/_sandbox/fields", json={"fields": [{"field": "email"}]}).status_code == 400


# ---------------------------------------------------------------------------------------------------------------
# notes


@pytest.mark.parametrize("path", ["/1/Notes", "/1/objects"])
def test_note_is_created_for_a_contact(op_client: httpx.Client, op_control: httpx.Client, path: str) -> None:
    """POST /1/Notes (or /1/objects with objectID=12) answers the created note record."""
    contact = create(op_client, firstname="Ada")
    body = {
        "objectID": 12,
        "contact_id": contact["id"],
        "object_type_id": 0,
        "data": "Called; wants a demo",
        "author": 1,
    }
    note = payload(op_client.post(path, data=body))
    assert (note["contact_id"], note["data"], note["author"], note["date"]) == (
        contact["id"], "Called; wants a demo", "1", str(int(START)),
    )  # fmt: skip
    assert op_control.get("/_sandbox/notes").json()["notes"] == [note]


def test_note_shape_knob_answers_only_the_id(op_client: httpx.Client, op_control: httpx.Client) -> None:
    """With note_shape "id" the create answers data = {"id": ...} (the other reading of the reference)."""
    op_control.post("/_sandbox/behaviour", json={"note_shape": "id"})
    contact = create(op_client, firstname="Ada")
    assert payload(op_client.post("/1/Notes", json={"contact_id": contact["id"], "data": "x"})) == {"id": "1"}


def test_note_for_unknown_contact_is_refused(op_client: httpx.Client) -> None:
    """A note for a contact that does not exist answers 400 `Invalid Contact ID`."""
    response = op_client.post("/1/Notes", json={"contact_id": 77, "object_type_id": 0, "data": "x"})
    assert (response.status_code, response.text) == (400, "Invalid Contact ID")


# ---------------------------------------------------------------------------------------------------------------
# products and purchase history


def _log(client: httpx.Client, contact_id: Any, product_id: Any, price: Any = 1250.0) -> httpx.Response:
    body = {
        "contact_id": contact_id,
        "chargeNow": "chargeLog",
        "trans_date": 1709288102000,
        "invoice_template": -1,
        "external_order_id": "sell-order-31",
        "offer": {
            "products": [
                {"id": product_id, "quantity": 1, "price": [{"price": price, "payment_count": 1, "unit": "day"}]}
            ]
        },
    }
    return client.post("/1/transaction/processManual", json=body)


def test_products_are_created_and_found_by_name(op_client: httpx.Client) -> None:
    """POST /1/Products answers the record with its id; GET /1/Products?condition= finds it by name."""
    product = payload(op_client.post("/1/Products", json={"name": "Gold", "price": "99.00"}))
    assert (product["name"], product["price"]) == ("Gold", "99.00")
    found = payload(
        op_client.get(
            "/1/Products", params={"condition": '[{"field":{"field":"name"},"op":"=","value":{"value":"Gold"}}]'}
        )
    )
    assert [p["id"] for p in found] == [product["id"]]


def test_logged_purchase_appears_as_purchase_and_transaction(op_client: httpx.Client) -> None:
    """processManual with chargeLog answers the invoice id and records Purchase (17) and Transaction (46) records."""
    contact = create(op_client, email="ada@example.org")
    product = payload(op_client.post("/1/Products", json={"name": "Gold", "price": "99.00"}))
    assert payload(_log(op_client, int(contact["id"]), int(product["id"]))) == {"invoice_id": 1}
    purchases = payload(op_client.get("/1/Purchases", params={"condition": f"contact_id={contact['id']}"}))
    assert [(p["product_id"], p["price"], p["date"], p["invoice_id"]) for p in purchases] == [
        (product["id"], "1250.00", "1709288102", "1")
    ]
    transactions = payload(op_client.get("/1/Transactions", params={"condition": "external_order_id='sell-order-31'"}))
    assert [(t["contact_id"], t["total"]) for t in transactions] == [(contact["id"], "1250.00")]
    assert payload(op_client.get("/1/Contact", params={"id": contact["id"]}))["num_purchased"] == "1"


@pytest.mark.emails_invoices
def test_documented_process_manual_example_is_accepted_as_a_log(op_client: httpx.Client) -> None:
    """The reference-style JSON body (string ids, extra offer keys, billing address) is accepted as a logged sale."""
    create(op_client, firstname="Airwolf")
    payload(op_client.post("/1/Products", json={"name": "Widget", "price": "10.00"}))
    body = """{
    "objectID": 0,
    "contact_id": "1",
    "chargeNow": "chargeLog",
    "invoice_template": 1,
    "offer": {
      "products": [
        {
          "quantity": 1,
          "owner": 1,
          "id": "1",
          "price": [
            {
              "price": "10.00",
              "payment_count": 1,
              "unit": "day"
            }
          ],
         "type": "single"
        }
      ],
      "hasTaxes": false,
      "hasShipping": false,
      "delay": 0
    },
    "billing_address": {
        "address": "1234 Any St.",
        "city": "Santa Barbara",
        "state": "CA",
        "zip": "93101",
        "country": "US"
      }
  }"""
    assert payload(op_client.post("/1/transaction/processManual", content=body)) == {"invoice_id": 1}


@pytest.mark.parametrize(
    ("contact", "product", "price", "text"),
    [
        (99, 1, 10.0, "Invalid Contact ID"),
        (1, 99, 10.0, "Invalid Product ID"),
        (1, 1, -5.0, "Negative amounts cannot be logged"),
    ],
)
def test_process_manual_refusals(op_client: httpx.Client, contact: int, product: int, price: float, text: str) -> None:
    """An unknown contact or product, or a negative amount, is refused in plain text and nothing is logged."""
    create(op_client, firstname="Ada")
    payload(op_client.post("/1/Products", json={"name": "Gold", "price": "99.00"}))
    response = _log(op_client, contact, product, price)
    assert (response.status_code, response.text) == (400, text)
    assert payload(op_client.get("/1/Purchases")) == []


# ---------------------------------------------------------------------------------------------------------------
# rate limit


@pytest.fixture
def op_limited(op_switch: Any, op_clock: FakeClock) -> str:
    switch, url = op_switch
    switch.app = OntraportSandbox(app_id=APP_ID, api_key=API_KEY, clock=op_clock, rate=Rate(3, 60)).app
    return str(url)


def test_rate_limit_headers_ride_on_every_response(op_limited: str, op_clock: FakeClock) -> None:
    """Successes and errors alike carry X-Rate-Limit-Limit/-Remaining/-Reset (seconds until the window resets)."""
    with httpx.Client(base_url=op_limited, headers=AUTH) as client:
        first = client.get("/1/Contacts")
        op_clock.advance(20)
        second = client.get("/1/Contact", params={"id": 5})
        third = client.get("/1/Contacts", headers={"Api-Key": "wrong"})
    assert [r.status_code for r in (first, second, third)] == [200, 404, 401]
    assert [r.headers["X-Rate-Limit-Remaining"] for r in (first, second, third)] == ["2", "1", "0"]
    assert {r.headers["X-Rate-Limit-Limit"] for r in (first, second, third)} == {"3"}
    assert [r.headers["X-Rate-Limit-Reset"] for r in (first, second)] == ["60", "40"]


def test_over_the_limit_answers_429_until_the_window_rolls(op_limited: str, op_clock: FakeClock) -> None:
    """The 4th call in a minute is 429 with the documented text and no Retry-After; a minute later calls pass."""
    with httpx.Client(base_url=op_limited, headers=AUTH) as client:
        for _ in range(3):
            assert client.get("/1/Contacts").status_code == 200
        refused = client.get("/1/Contacts")
        assert refused.status_code == 429
        assert refused.text == (
            "Too Many Requests - You have exceeded your maximum rate limit of 3 requests per minute."
        )
        assert "retry-after" not in refused.headers
        assert (refused.headers["X-Rate-Limit-Remaining"], refused.headers["X-Rate-Limit-Reset"]) == ("0", "60")
        op_clock.advance(60)
        assert client.get("/1/Contacts").status_code == 200
        state = client.get("/_sandbox/state").json()
    assert state["rate_limited"] == 1
    assert state["requests"]["GET /1/Contacts"] == {"200": 4, "429": 1}


def test_rate_can_be_changed_or_lifted_at_run_time(op_limited: str) -> None:
    """POST /_sandbox/behaviour sets a new rate ("1/min") or none (no limit, no headers)."""
    with httpx.Client(base_url=op_limited, headers=AUTH) as client:
        client.post("/_sandbox/behaviour", json={"rate": "1/min"})
        assert [client.get("/1/Contacts").status_code for _ in range(2)] == [200, 429]
        client.post("/_sandbox/behaviour", json={"rate": None})
        responses = [client.get("/1/Contacts") for _ in range(5)]
    assert {r.status_code for r in responses} == {200}
    assert all("X-Rate-Limit-Limit" not in r.headers for r in responses)


def test_default_rate_is_180_per_minute(op_switch: Any, op_clock: FakeClock) -> None:
    """A sandbox built with defaults announces Ontraport's 180 requests per minute."""
    switch, url = op_switch
    switch.app = OntraportSandbox(app_id=APP_ID, api_key=API_KEY, clock=op_clock).app
    response = httpx.get(f"{url}/1/Contacts", headers=AUTH)
    assert (response.headers["X-Rate-Limit-Limit"], response.headers["X-Rate-Limit-Remaining"]) == ("180", "179")


# ---------------------------------------------------------------------------------------------------------------
# error shapes


@pytest.mark.parametrize(
    ("request_args", "status", "text"),
    [
        ({"method": "GET", "url": "/1/Contact", "params": {"id": 9}}, 404, "Object not found"),
        ({"method": "GET", "url": "/1/Contacts", "params": {"condition": "nope=1"}}, 400, "Invalid query"),
        ({"method": "POST", "url": "/1/Contacts", "json": {"email": "bad"}}, 422, "Invalid email address"),
    ],
)
def test_json_errors_knob_switches_to_the_json_envelope(
    op_client: httpx.Client, op_control: httpx.Client, request_args: dict[str, Any], status: int, text: str
) -> None:
    """Errors are plain text by default and the reference's JSON envelope with json_errors on, same status."""
    plain = op_client.request(**request_args)
    assert (plain.status_code, plain.headers["content-type"], plain.text) == (status, "text/plain; charset=utf-8", text)
    op_control.post("/_sandbox/behaviour", json={"json_errors": True})
    as_json = op_client.request(**request_args)
    assert as_json.status_code == status
    assert as_json.json() == {"code": 1, "message": text, "account_id": 50}


# ---------------------------------------------------------------------------------------------------------------
# control endpoints and faults


def test_state_counts_requests_creates_and_writes(op_client: httpx.Client, op_control: httpx.Client) -> None:
    """GET /_sandbox/state counts requests by endpoint and status, creates, and writes per contact id."""
    ada = create(op_client, email="ada@example.org")
    op_client.post("/1/Contacts/saveorupdate", json={"email": "ada@example.org", "lastname": "L"})
    op_client.get("/1/Contact", params={"id": 404})
    state = op_control.get("/_sandbox/state").json()
    assert state["requests"] == {
        "GET /1/Contact": {"404": 1},
        "POST /1/Contacts": {"200": 1},
        "POST /1/Contacts/saveorupdate": {"200": 1},
    }
    assert (state["contacts"], state["creates"], state["writes"]) == (1, 1, {ada["id"]: 2})


def test_sandbox_contacts_are_the_records_the_api_answers(op_client: httpx.Client, op_control: httpx.Client) -> None:
    """GET /_sandbox/contacts lists every contact exactly as GET /1/Contact answers it."""
    ids = [create(op_client, firstname=name)["id"] for name in ("Ada", "Alan")]
    listed = op_control.get("/_sandbox/contacts").json()["contacts"]
    assert listed == [payload(op_client.get("/1/Contact", params={"id": i})) for i in ids]


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/_sandbox/behaviour", {"rate": "fast"}),
        ("/_sandbox/behaviour", {"note_shape": "blob"}),
        ("/_sandbox/behaviour", {"colour": "red"}),
        ("/_sandbox/behaviour", {"rate": "1/min", "json_errors": "yes"}),
        ("/_sandbox/rules", {"reject_emails": "a@example.org"}),
        ("/_sandbox/credentials", {"api_key": 5}),
    ],
)
def test_bad_control_input_is_a_400(
    op_client: httpx.Client, op_control: httpx.Client, path: str, body: dict[str, Any]
) -> None:
    """Control endpoints refuse unusable input with 400 and a reason, changing nothing."""
    before = op_control.get("/_sandbox/state").json()["behaviour"]
    response = op_control.post(path, json=body)
    assert response.status_code == 400
    assert response.json()["error"]
    assert op_control.get("/_sandbox/state").json()["behaviour"] == before
    assert op_client.post("/1/Contacts/saveorupdate", json={"email": "a@example.org"}).status_code == 200


def test_injected_faults_apply_to_api_calls(op_client: httpx.Client, op_control: httpx.Client) -> None:
    """A fault posted to /_sandbox/faults answers the next matching call; the one after is handled normally."""
    fault = {"path": "/1/Contacts", "method": "POST", "status": 503, "body": "busy", "times": 1}
    assert op_control.post("/_sandbox/faults", json=fault).status_code == 200
    failed = op_client.post("/1/Contacts", json={"firstname": "Ada"})
    assert (failed.status_code, failed.text) == (503, "busy")
    assert create(op_client, firstname="Ada")["id"] == "1"
    assert op_control.get("/_sandbox/state").json()["contacts"] == 1


def test_state_is_readable_from_another_thread_during_concurrent_writes(
    op_url: str, op_sandbox: OntraportSandbox
) -> None:
    """Writes from several client threads while a test thread reads state() lose nothing and duplicate no id."""

    def writer(n: int) -> None:
        with httpx.Client(base_url=op_url, headers=AUTH) as client:
            for i in range(10):
                create(client, firstname=f"T{n}-{i}")

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    wait_until(lambda: op_sandbox.state()["contacts"] == 40, timeout=10, what="40 contacts")
    for thread in threads:
        thread.join(timeout=10)
    contacts = op_sandbox.model.all(0)
    assert len({c["id"] for c in contacts}) == 40
    assert op_sandbox.state()["requests"] == {"POST /1/Contacts": {"200": 40}}
