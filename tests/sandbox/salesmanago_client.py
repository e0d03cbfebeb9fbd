"""The SALESmanago simulator's test client and fixtures, shared by the tests/sandbox/test_salesmanago_*.py modules.

A test module takes the fixtures by assignment (`sm = salesmanago_client.sm`, …): one loopback server per module,
pointed at a fresh simulator with a fake clock for every test.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from syncd.sandbox.salesmanago.app import SalesmanagoSandbox
from syncd.sandbox.server import ServerThread
from tests.support import AppSwitch, FakeClock

CLIENT_ID = "client-7f3a"
SECRET = "s3cret-api-key"  # never sent: only its SHA-1 with apiKey and clientId
OWNER = "sales@example.com"
T0 = 1709288102.0  # the contract example's requestTime, in seconds

PURCHASE = {"date": 1709288100000, "contactExtEventType": "PURCHASE", "value": 1250.00, "description": "Redesign"}


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


class SmApi:
    """A test client that signs bodies the way SALESmanago clients do: a fresh apiKey on every call."""

    def __init__(self, url: str, clock: FakeClock) -> None:
        self.http = httpx.Client(base_url=url, timeout=5.0)
        self.clock = clock
        self.secret = SECRET
        self._rng = random.Random(1234)

    def auth(self, **overrides: Any) -> dict[str, Any]:
        api_key = f"key-{self._rng.getrandbits(64):016x}"
        body = {
            "clientId": CLIENT_ID,
            "apiKey": api_key,
            "requestTime": int(self.clock() * 1000),
            "sha": sha1(api_key + CLIENT_ID + self.secret),
            "owner": OWNER,
        }
        return {**body, **overrides}

    def post(self, method: str, body: object) -> httpx.Response:
        return self.http.post(f"/api/{method}", json=body)

    def call(self, method: str, **fields: Any) -> dict[str, Any]:
        """POST an authenticated body; the reply must be HTTP 200 (logical errors are too)."""
        response = self.post(method, {**self.auth(), **fields})
        assert response.status_code == 200, response.text
        reply: dict[str, Any] = response.json()
        return reply

    def upsert(self, email: str, **fields: Any) -> dict[str, Any]:
        contact = {"email": email, **fields.pop("contact", {})}
        return self.call("contact/upsert", contact=contact, **fields)

    def basic(self, *emails: str) -> list[dict[str, Any]]:
        reply = self.call("contact/basic", email=list(emails))
        assert reply["success"], reply
        contacts: list[dict[str, Any]] = reply["contacts"]
        return contacts

    def control(self, path: str, body: object = None) -> httpx.Response:
        if body is None:
            return self.http.get(f"/_sandbox/{path}")
        return self.http.post(f"/_sandbox/{path}", json=body)

    def state(self) -> dict[str, Any]:
        reply: dict[str, Any] = self.control("state").json()
        return reply


@pytest.fixture
def sm_clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def sm_sandbox(sm_clock: FakeClock) -> SalesmanagoSandbox:
    return SalesmanagoSandbox(client_id=CLIENT_ID, api_secret=SECRET, owners=[OWNER], clock=sm_clock)


@pytest.fixture(scope="module")
def sm_server() -> Iterator[tuple[ServerThread, AppSwitch]]:
    switch = AppSwitch()
    with ServerThread(switch) as server:
        yield server, switch


def serve(sandbox: SalesmanagoSandbox, server: tuple[ServerThread, AppSwitch], clock: FakeClock) -> Iterator[SmApi]:
    thread, switch = server
    switch.app = sandbox.app
    api = SmApi(thread.url, clock)
    yield api
    api.http.close()
    switch.app = None


@pytest.fixture
def sm(
    sm_sandbox: SalesmanagoSandbox, sm_server: tuple[ServerThread, AppSwitch], sm_clock: FakeClock
) -> Iterator[SmApi]:
    yield from serve(sm_sandbox, sm_server, sm_clock)


def contacts_by_email(api: SmApi) -> dict[str, dict[str, Any]]:
    return {c["email"]: c for c in api.control("contacts").json()["contacts"]}
