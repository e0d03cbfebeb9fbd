"""The shared fault injection, over real loopback HTTP, on all three simulators: late completion, HTML, redirects."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from syncd.sandbox.faults import Fault, error_page
from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.salesmanago.app import SalesmanagoSandbox
from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.sell.history import item
from syncd.sandbox.server import ServerThread
from tests.support import AppSwitch, FakeClock, wait_until

SELL_TOKEN = "sell-token-1"
SM_CLIENT, SM_SECRET, SM_OWNER = "client-1", "secret-1", "owner@example.com"
OP_APP, OP_KEY = "2_AppID_1", "key-1"


@dataclass
class Target:
    """One simulator behind a loopback server: how to make a write to it, and how to tell it landed."""

    name: str
    url: str
    write: Callable[[httpx.Client, float], httpx.Response]  # the write request, with a client timeout
    written: Callable[[], int]  # how many such writes the simulator holds
    path: str  # the write's path (for the fault's match)

    def control(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=5)


def _sell(url: str, clock: FakeClock) -> tuple[Target, Any]:
    box = SellSandbox(tokens=[SELL_TOKEN], rate=None, clock=clock)
    box.append("leads", [item("lead", {"id": 1, "email": "a@example.org", "tags": []})])
    headers = {"Authorization": f"Bearer {SELL_TOKEN}", "User-Agent": "tests/1.0"}

    def write(client: httpx.Client, timeout: float) -> httpx.Response:
        body = {"data": {"tags": [f"late-{len(box.writes())}"]}}
        return client.put(f"{url}/v2/leads/1", json=body, headers=headers, timeout=timeout)

    def written() -> int:
        """Writes the sandbox applied, each with its Firehose echo."""
        echoes = box.state()["streams"]["leads"]["appended"] - 1
        assert echoes == sum(1 for w in box.writes() if w.get("event"))
        return int(echoes)

    return Target("sell", url, write, written, "/v2/leads/1"), box.app


def _salesmanago(url: str, clock: FakeClock) -> tuple[Target, Any]:
    box = SalesmanagoSandbox(client_id=SM_CLIENT, api_secret=SM_SECRET, owners=[SM_OWNER], clock=clock)

    def write(client: httpx.Client, timeout: float) -> httpx.Response:
        api_key = "key-0123456789abcdef"
        sha = hashlib.sha1((api_key + SM_CLIENT + SM_SECRET).encode()).hexdigest()
        body = {"clientId": SM_CLIENT, "apiKey": api_key, "requestTime": int(clock() * 1000), "sha": sha,
                "owner": SM_OWNER, "contact": {"email": "late@example.org"}}  # fmt: skip
        return client.post(f"{url}/api/contact/upsert", json=body, timeout=timeout)

    def written() -> int:
        return int(box.state()["contacts"])

    return Target("salesmanago", url, write, written, "/api/contact/upsert"), box.app


def _ontraport(url: str, clock: FakeClock) -> tuple[Target, Any]:
    box = OntraportSandbox(app_id=OP_APP, api_key=OP_KEY, clock=clock, rate=None)
    headers = {"Api-Key": OP_KEY, "Api-Appid": OP_APP}

    def write(client: httpx.Client, timeout: float) -> httpx.Response:
        return client.post(f"{url}/1/Contacts", json={"email": "late@example.org"}, headers=headers, timeout=timeout)

    def written() -> int:
        return int(box.state()["contacts"])

    return Target("ontraport", url, write, written, "/1/Contacts"), box.app


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ServerThread, AppSwitch]]:
    switch = AppSwitch()
    with ServerThread(switch) as thread:
        yield thread, switch


@pytest.fixture(params=["sell", "salesmanago", "ontraport"])
def target(request: pytest.FixtureRequest, server: tuple[ServerThread, AppSwitch]) -> Iterator[Target]:
    thread, switch = server
    clock = FakeClock(1_709_288_102.0)
    makers = {"sell": _sell, "salesmanago": _salesmanago, "ontraport": _ontraport}
    found, app = makers[request.param](thread.url, clock)
    switch.app = app
    yield found
    switch.app = None


def add_fault(target: Target, fault: dict[str, Any]) -> None:
    with target.control() as control:
        assert control.post("/_sandbox/faults", json=fault).status_code == 200


def finished(target: Target) -> int:
    with target.control() as control:
        return sum(int(f["finished"]) for f in control.get("/_sandbox/faults").json()["faults"])


# ---------------------------------------------------------------------------------------------------------------
# a server that finishes what the client gave up on


def test_complete_applies_the_write_after_the_client_gave_up(target: Target) -> None:
    """With complete + until_disconnect the write lands only after the client timed out and hung up."""
    add_fault(target, {"path": target.path, "complete": True, "until_disconnect": True})
    before = target.written()
    with httpx.Client() as client, pytest.raises(httpx.ReadTimeout):
        target.write(client, 0.3)
    wait_until(lambda: finished(target) == 1, what="the late request to finish")
    assert target.written() == before + 1


def test_without_complete_a_request_whose_client_left_is_dropped(target: Target) -> None:
    """until_disconnect alone: the handler finds the client gone and writes nothing (the simulators' default)."""
    add_fault(target, {"path": target.path, "until_disconnect": True})
    before = target.written()
    with httpx.Client() as client, pytest.raises(httpx.ReadTimeout):
        target.write(client, 0.3)
    wait_until(lambda: finished(target) == 1, what="the abandoned request to finish")
    assert target.written() == before


def test_complete_with_latency_lands_after_a_shorter_client_timeout(target: Target) -> None:
    """complete + latency: the request body is read first, the write applied after the delay, the client long gone."""
    add_fault(target, {"path": target.path, "complete": True, "latency": 0.6, "times": 1})
    before = target.written()
    with httpx.Client() as client, pytest.raises(httpx.ReadTimeout):
        target.write(client, 0.2)
    wait_until(lambda: target.written() == before + 1, what="the delayed write")


def test_a_client_that_waits_gets_the_answer_of_a_completed_request(target: Target) -> None:
    """complete changes nothing for a patient client: it gets the simulator's own answer."""
    add_fault(target, {"path": target.path, "complete": True, "latency": 0.05, "times": 1})
    before = target.written()
    with httpx.Client() as client:
        response = target.write(client, 5)
    assert response.status_code == 200, response.text
    assert target.written() == before + 1


def test_trickle_sends_the_answer_a_byte_at_a_time(target: Target) -> None:
    """trickle: the simulator's own answer arrives whole, one byte per interval, every read well inside a timeout."""
    add_fault(target, {"path": target.path, "trickle": 0.002, "times": 1})
    with httpx.Client() as client:
        response = target.write(client, 5)
    assert response.status_code == 200, response.text
    assert response.json()


def test_a_trickled_answer_stops_when_the_client_hangs_up(target: Target) -> None:
    """A client that gives up on a trickled answer ends it: the simulator is done with the request (and can stop)."""
    add_fault(target, {"path": target.path, "trickle": 0.5})
    with httpx.Client() as client, client.stream("GET", f"{target.url}{target.path}") as response:
        next(response.iter_raw(1))
    wait_until(lambda: finished(target) == 1, what="the trickled answer to end")


# ---------------------------------------------------------------------------------------------------------------
# proxies answering instead of the API


@pytest.mark.parametrize("status", [400, 404, 502, 503])
def test_html_error_pages_stand_in_for_the_api(target: Target, status: int) -> None:
    """html gives nginx's HTML error page with the status, instead of the API's envelope; nothing is written."""
    add_fault(target, {"path": target.path, "html": True, "status": status, "times": 1})
    before = target.written()
    with httpx.Client() as client:
        response = target.write(client, 5)
    assert response.status_code == status
    assert response.headers["content-type"].startswith("text/html")
    assert response.text == error_page(status)
    assert f"<title>{status} " in response.text
    assert target.written() == before


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_redirects_stand_in_for_the_api(target: Target, status: int) -> None:
    """redirect answers a 3xx with Location and an HTML body; a client that does not follow it writes nothing."""
    add_fault(target, {"path": target.path, "redirect": "https://login.example.com/sso", "status": status})
    before = target.written()
    with httpx.Client(follow_redirects=False) as client:
        response = target.write(client, 5)
    assert response.status_code == status
    assert response.headers["location"] == "https://login.example.com/sso"
    assert response.headers["content-type"].startswith("text/html")
    assert target.written() == before


def test_a_redirect_defaults_to_302(target: Target) -> None:
    """Without a status a redirect is a 302 Found."""
    add_fault(target, {"redirect": "/login", "times": 1})
    with httpx.Client(follow_redirects=False) as client:
        response = target.write(client, 5)
    assert (response.status_code, response.headers["location"]) == (302, "/login")
    assert "302 Found" in response.text


# ---------------------------------------------------------------------------------------------------------------
# validation (pure)


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ({}, "a fault needs"),
        ({"html": True}, "html needs"),
        ({"html": True, "status": 302}, "html needs"),
        ({"redirect": "/x", "status": 500}, "redirect's status"),
        ({"complete": True}, "a fault needs"),
        ({"latency": -1}, "must not be negative"),
        ({"latency": "1"}, "latency: unexpected"),
        ({"until_disconnect": 1}, "until_disconnect: unexpected"),
        ({"status": True}, "status: unexpected"),
        ({"status": 502, "headers": {"retry-after": 5}}, "headers: expected an object of strings"),
        ({"status": 500, "every": 0}, "every must be"),
        ({"status": 500, "colour": "red"}, "unknown fault keys"),
    ],
)
def test_bad_faults_are_refused(fault: dict[str, Any], message: str) -> None:
    """A fault that does nothing, or has a bad value, is refused with a reason."""
    with pytest.raises(ValueError, match=message):
        Fault.from_json(fault)


def test_bad_faults_get_400_from_the_control_route(target: Target) -> None:
    """POST /_sandbox/faults answers 400 with the reason and adds nothing."""
    with target.control() as control:
        response = control.post("/_sandbox/faults", json={"html": True})
        assert response.status_code == 400
        assert "html needs" in response.json()["error"]
        assert control.get("/_sandbox/faults").json()["faults"] == []
