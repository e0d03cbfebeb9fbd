"""Fixtures for the Ontraport simulator tests: one loopback server per module, a fresh account per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.server import ServerThread
from tests.support import AppSwitch, FakeClock

OP_APP_ID = "2_AppID_12345678"
OP_API_KEY = "Key5678"
OP_START = 1_709_288_102.0
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@dataclass
class OpAccount:
    """A fresh simulated account behind real loopback HTTP: `api` authenticates, `control` reaches /_sandbox/."""

    sandbox: OntraportSandbox
    clock: FakeClock
    api: httpx.Client
    control: httpx.Client

    def data(self, response: httpx.Response) -> Any:
        """The `data` of a success envelope (asserting the envelope)."""
        assert response.status_code == 200, response.text
        body = response.json()
        assert (body["code"], body["account_id"]) == (0, 50), body
        return body.get("data")

    def behave(self, **switches: Any) -> dict[str, Any]:
        response = self.control.post("/_sandbox/behaviour", json=switches)
        assert response.status_code == 200, response.text
        answer: dict[str, Any] = response.json()
        return answer

    def contact(self, **fields: Any) -> str:
        record = self.data(self.api.post("/1/Contacts", json=fields))
        return str(record["id"])

    def product(self, name: str = "Gold", price: str = "99.00", **fields: Any) -> str:
        record = self.data(self.api.post("/1/Products", json={"name": name, "price": price, **fields}))
        return str(record["id"])

    def find(self, plural: str, field: str, value: Any) -> list[dict[str, Any]]:
        condition = json.dumps([{"field": {"field": field}, "op": "=", "value": {"value": value}}])
        found: list[dict[str, Any]] = self.data(self.api.get(f"/1/{plural}", params={"condition": condition}))
        return found


@pytest.fixture(scope="module")
def op_server() -> Iterator[tuple[AppSwitch, str]]:
    switch = AppSwitch()
    with ServerThread(switch) as server:
        yield switch, server.url


@pytest.fixture
def op(op_server: tuple[AppSwitch, str]) -> Iterator[OpAccount]:
    """A new account (no rate limit, a fake clock at OP_START) plugged into the module's server."""
    switch, url = op_server
    clock = FakeClock(OP_START)
    sandbox = OntraportSandbox(app_id=OP_APP_ID, api_key=OP_API_KEY, clock=clock, rate=None)
    switch.app = sandbox.app
    auth = {"Api-Key": OP_API_KEY, "Api-Appid": OP_APP_ID}
    with httpx.Client(base_url=url, headers=auth, timeout=5) as api, httpx.Client(base_url=url, timeout=5) as control:
        yield OpAccount(sandbox, clock, api, control)
