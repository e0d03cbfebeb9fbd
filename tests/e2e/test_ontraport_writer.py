"""The Ontraport writer against the Ontraport sandbox over real loopback HTTP, with a real store on a SQLite file.

Events are ingested into the store, claimed, loaded and delivered exactly as the dispatcher does it; the assertions
read what the SANDBOX holds (its control routes and state), not what the writer says it did.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from syncd.config import Duration, OntraportConfig, Secret
from syncd.errors import DestinationError, PermanentError, RateLimited, TransientError
from syncd.events import ChangeEvent, Source
from syncd.ledger import Ledger
from syncd.ratelimit import Limiter
from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.server import ServerThread
from syncd.sinks.ontraport.writer import UNCHANGED, OntraportWriter
from syncd.sinks.persons import ORGANISATION_WITHOUT_EMAIL, ORGANISATIONS_SKIPPED
from syncd.work import Deferred, Done, Failed, KeyWork, Released, Result, Skipped
from tests.factories import event
from tests.support import AppSwitch, FakeClock

APP_ID = "2_AppID_writer"
API_KEY = "WriterKey-5f1c"
AUTH = {"Api-Key": API_KEY, "Api-Appid": APP_ID}
SINK = "ontraport"
START = 1_800_000_000.0


@pytest.fixture(scope="module")
def switch() -> Iterator[tuple[AppSwitch, str]]:
    app = AppSwitch()
    with ServerThread(app) as server:
        yield app, server.url


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
def sandbox(switch: tuple[AppSwitch, str], clock: FakeClock) -> OntraportSandbox:
    made = OntraportSandbox(app_id=APP_ID, api_key=API_KEY, clock=clock, rate=None)
    switch[0].app = made.app
    return made


@pytest.fixture
def url(switch: tuple[AppSwitch, str], sandbox: OntraportSandbox) -> str:
    return switch[1]


@pytest.fixture
async def control(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=url, timeout=5) as client:
        yield client


@pytest.fixture
async def store(tmp_path: Path, clock: FakeClock) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_path / "syncd.db", sinks=(SINK,), clock=clock)
    yield opened
    await opened.close()


class Harness:
    """A writer for one config, and the dispatcher's claim → load → deliver → commit round."""

    def __init__(self, store: Ledger, url: str, clock: FakeClock) -> None:
        self.store = store
        self.url = url
        self.clock = clock
        self.limiter = Limiter(SINK, None)
        self.writers: list[OntraportWriter] = []
        self._positions = itertools.count(1)

    def writer(self, **settings: Any) -> OntraportWriter:
        settings.setdefault("timeout", Duration(2))
        config = OntraportConfig(base_url=self.url, app_id=APP_ID, api_key=Secret(API_KEY), **settings)
        made = OntraportWriter(
            config, lookups=self.store, limiter=self.limiter, streams=("leads", "contacts"), clock=self.clock
        )
        self.writers.append(made)
        return made

    async def ingest(self, *events: ChangeEvent, at_top: bool = True) -> None:
        """One page per stream; both person streams are marked at top, so deletes may pass the guard."""
        streams = ["leads", "contacts", *sorted({e.stream for e in events} - {"leads", "contacts"})]
        for stream in streams:
            page = [e for e in events if e.stream == stream]
            await self.store.ingest(stream, page, position=f"p{next(self._positions)}", at_top=at_top)

    async def round(self, writer: OntraportWriter) -> dict[str, Result]:
        """Claim every due key, deliver, commit; a failed key goes back to the queue."""
        works = await self.store.load_work(SINK, await self.store.claim(SINK, 100))
        results = await writer.deliver(works)
        assert [r.key for r in results] == [w.key for w in works]
        await self.store.commit(SINK, [Released(r.key) if isinstance(r, Failed) else r for r in results])
        return {r.key: r for r in results}

    async def drain(self, writer: OntraportWriter) -> list[dict[str, Result]]:
        """Rounds until no key is due (keys queued again by a round are delivered by the next)."""
        rounds = []
        while results := await self.round(writer):
            rounds.append(results)
        return rounds

    async def link(self, key: str) -> Any:
        return (await self.store.load_work(SINK, [key]))[0].link


@pytest.fixture
async def harness(store: Ledger, url: str, clock: FakeClock) -> AsyncIterator[Harness]:
    made = Harness(store, url, clock)
    yield made
    for writer in made.writers:
        await writer.aclose()


async def contacts(control: httpx.AsyncClient) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = (await control.get("/_sandbox/contacts")).json()["contacts"]
    return found


def requests_to(sandbox: OntraportSandbox, endpoint: str) -> dict[str, int]:
    counts: dict[str, int] = sandbox.state()["requests"].get(endpoint, {})
    return counts


async def behave(control: httpx.AsyncClient, **switches: Any) -> None:
    assert (await control.post("/_sandbox/behaviour", json=switches)).status_code == 200


async def fault(control: httpx.AsyncClient, **spec: Any) -> None:
    assert (await control.post("/_sandbox/faults", json=spec)).status_code == 200


def failed(result: Result) -> Any:
    assert isinstance(result, Failed), result
    assert API_KEY not in result.error.message
    assert API_KEY not in (result.error.request or "")
    return result.error


def source_event(source_id: int, name: str) -> ChangeEvent:
    return ChangeEvent(
        stream="sources",
        kind="source",
        record_id=source_id,
        action="created",
        sequence=1,
        event_id=f"source-{source_id}",
        occurred_at=datetime(2026, 11, 1, tzinfo=UTC),
        record=Source(id=source_id, name=name, resource_type="lead"),
    )


ADA: dict[str, Any] = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.org"}


# ---------------------------------------------------------------------------------------------------------------
# create, update, unchanged, e-mail change


async def test_first_write_merges_or_creates_by_email_and_keeps_the_id(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """A new lead is written with saveorupdate; the Ontraport id is kept in the link with the digest."""
    writer = harness.writer()
    await harness.ingest(event("lead", 9, 1, "created", title="Countess", organization_name="Engines", **ADA))
    result = (await harness.round(writer))["lead:9"]
    [stored] = await contacts(control)
    assert isinstance(result, Done) and result.remote_id == stored["id"]
    assert (stored["firstname"], stored["lastname"], stored["email"]) == ("Ada", "Lovelace", "ada@example.org")
    assert (stored["title"], stored["company"]) == ("Countess", "Engines")
    assert requests_to(sandbox, "POST /1/Contacts/saveorupdate") == {"200": 1}
    link = await harness.link("lead:9")
    assert (link.remote_id, link.digest) == (stored["id"], result.digest)
    assert link.sent["email"] == "ada@example.org"


async def test_existing_contact_with_the_email_is_merged_not_duplicated(
    harness: Harness, control: httpx.AsyncClient
) -> None:
    """When Ontraport already has the e-mail, the first write merges into that contact."""
    answer = await control.post("/1/Contacts", json={"email": "ADA@example.org", "firstname": "A."}, headers=AUTH)
    existing = answer.json()["data"]["id"]
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    result = (await harness.round(harness.writer()))["lead:9"]
    assert isinstance(result, Done) and result.remote_id == existing
    assert [(c["id"], c["firstname"]) for c in await contacts(control)] == [(existing, "Ada")]


async def test_later_writes_update_by_id_and_unchanged_state_is_not_sent(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """A changed record is a PUT by id; a record whose mapped fields did not change is skipped without a call."""
    writer = harness.writer()
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    first = (await harness.round(writer))["lead:9"]
    await harness.ingest(event("lead", 9, 2, title="Countess", **ADA))
    second = (await harness.round(writer))["lead:9"]
    assert isinstance(first, Done) and isinstance(second, Done) and second.remote_id == first.remote_id
    assert requests_to(sandbox, "PUT /1/Contacts") == {"200": 1}
    assert (await contacts(control))[0]["title"] == "Countess"
    calls_before = sandbox.state()["requests"]
    await harness.ingest(event("lead", 9, 3, title="Countess", description="not mapped", **ADA))
    third = (await harness.round(writer))["lead:9"]
    assert isinstance(third, Skipped) and third.reason == UNCHANGED
    assert sandbox.state()["requests"] == calls_before


async def test_cleared_value_is_sent_blank_and_clears_ontraport(harness: Harness, control: httpx.AsyncClient) -> None:
    """A value removed in Sell is written as "" so Ontraport forgets it too."""
    writer = harness.writer()
    await harness.ingest(event("lead", 9, 1, "created", title="Countess", **ADA))
    await harness.round(writer)
    await harness.ingest(event("lead", 9, 2, **ADA))
    await harness.round(writer)
    assert (await contacts(control))[0]["title"] == ""


async def test_email_change_updates_the_same_contact(harness: Harness, control: httpx.AsyncClient) -> None:
    """A new e-mail in Sell changes the e-mail of the SAME Ontraport contact (no second contact)."""
    writer = harness.writer()
    await harness.ingest(event("contact", 5, 1, "created", **ADA))
    first = (await harness.round(writer))["contact:5"]
    await harness.ingest(event("contact", 5, 2, **{**ADA, "email": "countess@example.org"}))
    second = (await harness.round(writer))["contact:5"]
    assert isinstance(first, Done) and isinstance(second, Done) and first.remote_id == second.remote_id
    assert [(c["id"], c["email"]) for c in await contacts(control)] == [(first.remote_id, "countess@example.org")]


@pytest.mark.parametrize("not_found_status", [404, 400])
async def test_contact_deleted_in_ontraport_is_recreated(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient, not_found_status: int
) -> None:
    """A PUT answered "Object not found" (deleted in Ontraport), with 404 or with 400 as Ontraport answered before
    2022, falls back to merge-or-create and links the new id."""
    await behave(control, not_found_status=not_found_status)
    writer = harness.writer()
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    first = (await harness.round(writer))["lead:9"]
    assert isinstance(first, Done) and first.remote_id is not None
    sandbox.model.delete(0, int(first.remote_id))
    await harness.ingest(event("lead", 9, 2, title="Countess", **ADA))
    second = (await harness.round(writer))["lead:9"]
    [stored] = await contacts(control)
    assert isinstance(second, Done) and second.remote_id == stored["id"] != first.remote_id
    assert requests_to(sandbox, "PUT /1/Contacts") == {str(not_found_status): 1}
    assert (await harness.link("lead:9")).remote_id == stored["id"]


async def test_a_404_that_is_no_object_not_found_is_an_error_not_a_deleted_contact(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """A 404 without Ontraport's "Object not found" (a proxy's HTML page for a wrong path) says nothing about the
    contact: the update fails as a transient, destination-wide error (never a verdict on the record) instead of
    creating a second contact."""
    writer = harness.writer()
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    first = (await harness.round(writer))["lead:9"]
    assert isinstance(first, Done), first  # the create must land first: the fault is on the update that follows
    await fault(control, path="/1/Contacts", method="PUT", status=404, html=True, times=1)
    await harness.ingest(event("lead", 9, 2, title="Countess", **ADA))
    error = failed((await harness.round(writer))["lead:9"])
    assert type(error) is TransientError and error.http_status == 404
    assert "HTML page" in error.message
    assert [c["id"] for c in await contacts(control)] == [getattr(first, "remote_id", None)]
    assert requests_to(sandbox, "POST /1/Contacts/saveorupdate") == {"200": 1}


async def test_a_leads_source_is_named_by_the_lead_source_never_a_deal_source_with_its_id(
    harness: Harness, control: httpx.AsyncClient
) -> None:
    """A lead's source_id names a lead source: a deal source with the same id (Sell keeps them apart) is never
    written as the lead's source, and a lead naming only a deal source's id gets no lead source at all."""
    writer = harness.writer()
    await harness.ingest(
        event("lead_source", 3, 1, "created", name="Website", resource_type="lead"),
        event("deal_source", 3, 1, "created", name="Partner referral", resource_type="deal"),
        event("deal_source", 4, 1, "created", name="Trade fair", resource_type="deal"),
        event("lead", 9, 1, "created", source_id=3, **ADA),
        event("lead", 10, 1, "created", source_id=4, email="bob@example.org"),
    )
    await harness.round(writer)
    by_email = {c["email"]: c for c in await contacts(control)}
    assert by_email["ada@example.org"]["n_lead_source"] == "Website"
    assert by_email["bob@example.org"]["n_lead_source"] in (None, "")


async def test_related_names_and_custom_fields_are_written(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """The lead source (by name), a contact's organisation and [fields] rows reach Ontraport converted."""
    writer = harness.writer(
        external_id_field="f1558",
        fields={"custom.Tier": "f1557", "custom.Interests": "f1560", "custom.Birthday": "birthday", "=0": "bulk_mail"},
    )
    custom = {"Tier": "Silver", "Interests": ["Email", "Webinars"], "Birthday": "1990-05-17"}
    await harness.ingest(
        source_event(3, "Website"),
        event("contact", 70, 1, "created", is_organization=True, name="Analytical Engines Ltd"),
        event("lead", 9, 1, "created", source_id=3, custom=custom, **ADA),
        event("contact", 5, 1, "created", organization_id=70, email="charles@example.org"),
    )
    results = await harness.round(writer)
    assert set(results) == {"lead:9", "contact:5", "contact:70"}
    assert results["contact:70"] == Skipped("contact:70", results["contact:70"].seqs, ORGANISATION_WITHOUT_EMAIL)
    by_email = {c["email"]: c for c in await contacts(control)}
    ada, charles = by_email["ada@example.org"], by_email["charles@example.org"]
    assert (ada["n_lead_source"], ada["l_lead_source"], ada["use_utm_names"]) == ("Website", "Website", "1")
    assert (ada["f1557"], ada["f1560"], ada["birthday"], ada["f1558"]) == (
        "2",
        "*/*1*/*3*/*",
        "642902400",
        "sell-lead-9",
    )
    assert (charles["company"], charles["f1558"]) == ("Analytical Engines Ltd", "sell-contact-5")


async def test_meta_is_fetched_again_for_a_field_it_lacked(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient, clock: FakeClock
) -> None:
    """The meta is fetched once; a configured field it lacks is left out until a later refetch finds it."""
    writer = harness.writer(fields={"industry": "f1600"})
    await harness.ingest(event("lead", 9, 1, "created", industry="Computing", **ADA))
    await harness.round(writer)
    assert "f1600" not in (await contacts(control))[0]
    await control.post("/_sandbox/fields", json={"fields": [{"field": "f1600", "alias": "Industry", "type": "text"}]})
    clock.now += 61
    await harness.ingest(event("lead", 9, 2, industry="Computing", title="Countess", **ADA))
    await harness.round(writer)
    assert (await contacts(control))[0]["f1600"] == "Computing"
    assert requests_to(sandbox, "GET /1/Contacts/meta") == {"200": 2}


# ---------------------------------------------------------------------------------------------------------------
# no e-mail: the external id


async def test_timed_out_create_is_found_by_external_id_on_retry(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """Without an e-mail, a create that timed out (but happened) is found by external id on retry: one contact (the
    first write, of a key never tried, creates without searching)."""
    writer = harness.writer(external_id_field="f1558", timeout=Duration(0.3))
    await fault(control, path="/1/Contacts", method="POST", latency_after=1.0, times=1)
    await harness.ingest(event("lead", 9, 1, "created", first_name="Ada"))
    first = (await harness.round(writer))["lead:9"]
    assert isinstance(failed(first), TransientError)
    second = (await harness.round(writer))["lead:9"]
    [stored] = await contacts(control)
    assert isinstance(second, Done) and second.remote_id == stored["id"]
    assert (stored["f1558"], sandbox.state()["creates"]) == ("sell-lead-9", 1)
    assert requests_to(sandbox, "GET /1/Contacts") == {"200": 1}


async def test_a_first_create_without_email_creates_without_searching(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """Without an e-mail, the first write of a key never tried creates the contact with no external-id search."""
    writer = harness.writer(external_id_field="f1558")
    await harness.ingest(event("lead", 9, 1, "created", first_name="Ada"))
    result = (await harness.round(writer))["lead:9"]
    [stored] = await contacts(control)
    assert isinstance(result, Done) and result.detail == "created" and result.remote_id == stored["id"]
    assert stored["f1558"] == "sell-lead-9"
    assert requests_to(sandbox, "GET /1/Contacts") == {}


async def test_an_unlinked_delete_of_a_key_never_tried_asks_only_for_its_email(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """A delete of a record never written and never tried asks getByEmail for its e-mail (a contact made outside
    syncd is deleted) and searches no external id; one without an e-mail makes no call at all."""
    await control.post("/1/Contacts", json={"email": "ada@example.org"}, headers=AUTH)
    await harness.ingest(event("lead", 9, 1, "created", **ADA), event("lead", 9, 2, "deleted"))
    await harness.ingest(event("lead", 10, 1, "created", first_name="Bob"), event("lead", 10, 2, "deleted"))
    results = await harness.round(harness.writer(on_delete="delete", external_id_field="f1558"))
    assert isinstance(results["lead:9"], Done) and results["lead:9"].detail == "deleted"
    assert results["lead:10"] == Done(
        "lead:10", results["lead:10"].seqs, unlink=True, detail="not in Ontraport: nothing to delete", wrote=False
    )
    assert await contacts(control) == []
    assert requests_to(sandbox, "GET /1/object/getByEmail") == {"200": 1}
    assert requests_to(sandbox, "GET /1/Contacts") == {}


async def test_an_unlinked_delete_after_a_lost_create_finds_it_by_external_id(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """A delete of a record whose create timed out (but happened) searches the external id and deletes that contact."""
    writer = harness.writer(on_delete="delete", external_id_field="f1558", timeout=Duration(0.3))
    await fault(control, path="/1/Contacts", method="POST", latency_after=1.0, times=1)
    await harness.ingest(event("lead", 9, 1, "created", first_name="Ada"))
    assert isinstance(failed((await harness.round(writer))["lead:9"]), TransientError)
    await harness.ingest(event("lead", 9, 2, "deleted"))
    result = (await harness.round(writer))["lead:9"]
    assert isinstance(result, Done) and result.detail == "deleted"
    assert (await contacts(control), sandbox.state()["creates"]) == ([], 1)
    assert requests_to(sandbox, "GET /1/Contacts") == {"200": 1}


async def test_no_email_and_no_external_id_field_is_skipped(harness: Harness, sandbox: OntraportSandbox) -> None:
    """Without an e-mail and without external_id_field the record is skipped, naming the setting; nothing is written."""
    await harness.ingest(event("lead", 9, 1, "created", first_name="Ada"))
    result = (await harness.round(harness.writer()))["lead:9"]
    assert isinstance(result, Skipped) and "sinks.ontraport.external_id_field" in result.reason
    assert sandbox.state()["creates"] == 0


# ---------------------------------------------------------------------------------------------------------------
# every error class


@pytest.mark.parametrize("json_errors", [False, True], ids=["plain-text", "json"])
async def test_invalid_email_is_a_permanent_error_with_a_secret_free_request(
    harness: Harness, control: httpx.AsyncClient, json_errors: bool
) -> None:
    """A 422 dead-letters the record with Ontraport's reason (plain text or JSON body) and the request sent."""
    await control.post("/_sandbox/behaviour", json={"json_errors": json_errors})
    await control.post("/_sandbox/rules", json={"reject_emails": ["ada@example.org"]})
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    error = failed((await harness.round(harness.writer()))["lead:9"])
    assert isinstance(error, PermanentError) and error.http_status == 422
    assert error.message == "Ontraport answered 422: Invalid email address"
    assert error.request is not None and json.loads(error.request)["email"] == "ada@example.org"
    assert await contacts(control) == []


@pytest.mark.parametrize("forbidden", [False, True], ids=["401", "403"])
async def test_refused_credentials_are_a_destination_error_and_probe_recovers(
    harness: Harness, sandbox: OntraportSandbox, forbidden: bool
) -> None:
    """401/403 pause the destination (DestinationError), probe() fails the same way until the key works again."""
    writer = harness.writer()
    sandbox.set_credentials(api_key="revoked" if not forbidden else API_KEY, forbidden=forbidden)
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    error = failed((await harness.round(writer))["lead:9"])
    assert isinstance(error, DestinationError) and error.http_status == (403 if forbidden else 401)
    with pytest.raises(DestinationError):
        await writer.probe()
    sandbox.set_credentials(api_key=API_KEY)
    await writer.probe()
    assert isinstance((await harness.round(writer))["lead:9"], Done)


@pytest.mark.parametrize(
    "spec",
    [
        {
            "status": 429,
            "body": "Too Many Requests - You have exceeded your maximum rate limit",
            "content_type": "text/plain",
        },
        {"status": 429, "body": '{"code": 1, "message": "Too Many Requests"}'},
    ],
    ids=["plain-text", "json"],
)
async def test_429_is_rate_limited_with_the_reset(
    harness: Harness, control: httpx.AsyncClient, spec: dict[str, Any]
) -> None:
    """A 429 is RateLimited whose retry_after is X-Rate-Limit-Reset (seconds), whatever the body's shape."""
    headers = {"X-Rate-Limit-Limit": "180", "X-Rate-Limit-Remaining": "0", "X-Rate-Limit-Reset": "17"}
    await fault(control, path="/1/Contacts/saveorupdate", times=1, headers=headers, **spec)
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    error = failed((await harness.round(harness.writer()))["lead:9"])
    assert isinstance(error, RateLimited) and (error.retry_after, error.http_status) == (17.0, 429)
    assert "Too Many Requests" in error.message
    assert harness.limiter.paused_until > 0  # remaining 0 on the 429 paused the whole account too


async def test_real_rate_limit_headers_pause_before_ontraport_refuses(
    store: Ledger, sandbox: OntraportSandbox, url: str, clock: FakeClock
) -> None:
    """With one call left in the window the limiter pauses for X-Rate-Limit-Reset, so no call is ever refused."""
    sandbox.configure({"rate": "3/min"})
    waits: list[float] = []

    async def sleep(seconds: float) -> None:  # the wait passes on the shared fake clock
        waits.append(seconds)
        clock.now += seconds

    harness = Harness(store, url, clock)
    harness.limiter = Limiter(SINK, None, clock=clock, sleep=sleep)
    writer = harness.writer()
    try:
        await harness.ingest(*(event("lead", i, 1, "created", email=f"p{i}@example.org") for i in range(1, 6)))
        results = await harness.round(writer)
    finally:
        await writer.aclose()
    assert all(isinstance(r, Done) for r in results.values())
    assert len(contacts_of(sandbox)) == 5
    assert sandbox.state()["rate_limited"] == 0
    assert waits and all(55 <= w <= 61 for w in waits)


def contacts_of(sandbox: OntraportSandbox) -> list[dict[str, Any]]:
    return sandbox.model.all(0)


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ({"status": 503, "body": "Service Unavailable", "content_type": "text/plain"}, "answered 503"),
        ({"status": 500}, "answered 500"),
        ({"drop": True}, "could not be reached"),
        ({"latency": 1.0}, "did not answer in time"),
        ({"malformed": True}, "not JSON"),
    ],
    ids=["503", "500-json", "dropped", "timeout", "malformed"],
)
async def test_server_trouble_is_transient(
    harness: Harness, control: httpx.AsyncClient, spec: dict[str, Any], expected: str
) -> None:
    """5xx, a dropped connection, a timeout and an unreadable 200 are TransientErrors: retried, never dead-lettered."""
    await fault(control, path="/1/Contacts/saveorupdate", times=1, **spec)
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    writer = harness.writer(timeout=Duration(0.3))
    error = failed((await harness.round(writer))["lead:9"])
    assert type(error) is TransientError and expected in error.message
    assert isinstance((await harness.round(writer))["lead:9"], Done)


async def test_bad_request_is_permanent(harness: Harness, control: httpx.AsyncClient) -> None:
    """A 400 is a PermanentError carrying Ontraport's reason."""
    await fault(
        control, path="/1/Contacts/saveorupdate", status=400, body="Invalid request body", content_type="text/plain"
    )
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    error = failed((await harness.round(harness.writer()))["lead:9"])
    assert isinstance(error, PermanentError) and error.message == "Ontraport answered 400: Invalid request body"


async def test_value_matching_no_option_is_a_permanent_error(harness: Harness, control: httpx.AsyncClient) -> None:
    """A Sell value that matches no option of a drop field dead-letters that record only, naming the field."""
    writer = harness.writer(fields={"custom.Tier": "f1557"})
    await harness.ingest(
        event("lead", 9, 1, "created", custom={"Tier": "Platinum"}, **ADA),
        event("lead", 10, 1, "created", custom={"Tier": "Gold"}, email="grace@example.org"),
    )
    results = await harness.round(writer)
    error = failed(results["lead:9"])
    assert isinstance(error, PermanentError) and "f1557" in error.message and "Platinum" not in error.message
    assert isinstance(results["lead:10"], Done)
    assert [c["email"] for c in await contacts(control)] == ["grace@example.org"]


# ---------------------------------------------------------------------------------------------------------------
# deletes and the guard


async def deliver_then_delete(harness: Harness, writer: OntraportWriter, key_id: int = 9) -> Result:
    await harness.ingest(event("lead", key_id, 1, "created", **ADA))
    assert isinstance((await harness.round(writer))[f"lead:{key_id}"], Done)
    await harness.ingest(event("lead", key_id, 2, "deleted"))
    return (await harness.round(writer))[f"lead:{key_id}"]


async def test_delete_mode_deletes_the_contact_and_unlinks(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """on_delete = "delete" deletes the linked contact and forgets the link."""
    result = await deliver_then_delete(harness, harness.writer(on_delete="delete"))
    assert isinstance(result, Done) and result.unlink
    assert (await contacts(control), sandbox.state()["deletes"]) == ([], 1)
    assert await harness.link("lead:9") is None


@pytest.mark.parametrize("not_found_status", [404, 400])
async def test_delete_of_a_contact_already_gone_is_done(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient, not_found_status: int
) -> None:
    """A DELETE answered "Object not found" (404, or 400) means the contact is already gone: done, not an error."""
    await behave(control, not_found_status=not_found_status)
    writer = harness.writer(on_delete="delete")
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    first = (await harness.round(writer))["lead:9"]
    assert isinstance(first, Done) and first.remote_id is not None
    sandbox.model.delete(0, int(first.remote_id))
    await harness.ingest(event("lead", 9, 2, "deleted"))
    result = (await harness.round(writer))["lead:9"]
    assert isinstance(result, Done) and result.unlink and result.detail == "already gone"
    assert requests_to(sandbox, "DELETE /1/Contact") == {str(not_found_status): 1}


@pytest.mark.parametrize("not_found_status", [404, 400])
async def test_delete_without_a_link_finds_the_contact_by_email(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient, not_found_status: int
) -> None:
    """A record never written by this syncd is found by e-mail (getByEmail) and deleted; unknown ones (getByEmail
    answering "Object not found" with 404, or 400 as before 2022) are done."""
    await behave(control, not_found_status=not_found_status)
    await control.post("/1/Contacts", json={"email": "ada@example.org"}, headers=AUTH)
    await harness.ingest(event("lead", 9, 1, "created", **ADA), event("lead", 9, 2, "deleted"))
    await harness.ingest(event("lead", 10, 1, "created", email="nobody@example.org"), event("lead", 10, 2, "deleted"))
    results = await harness.round(harness.writer(on_delete="delete"))
    assert isinstance(results["lead:9"], Done) and isinstance(results["lead:10"], Done)
    assert await contacts(control) == []
    assert requests_to(sandbox, "GET /1/object/getByEmail") == {"200": 1, str(not_found_status): 1}


async def test_a_sets_unlinked_deletes_ask_one_search_and_only_a_held_email_asks_getbyemail(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """The deletes of records syncd holds no link for, claimed together, ask ONE e-mail search (any case matches);
    an e-mail holding no contact sends nothing more, and the one holding a contact made outside syncd asks
    getByEmail and deletes it."""
    await control.post("/1/Contacts", json={"email": "Ada@Example.org"}, headers=AUTH)
    for n, email in ((9, "ada@example.org"), (10, "bob@example.org"), (11, "carol@example.org")):
        await harness.ingest(event("lead", n, 1, "created", email=email), event("lead", n, 2, "deleted"))
    writer = harness.writer(on_delete="delete")
    works = await harness.store.load_work(SINK, await harness.store.claim(SINK, 10))
    await writer.prepare(works)
    results = {w.key: (await writer.deliver([w]))[0] for w in works}
    assert {key: r.detail for key, r in results.items() if isinstance(r, Done)} == {
        "lead:9": "deleted",
        "lead:10": "not in Ontraport: nothing to delete",
        "lead:11": "not in Ontraport: nothing to delete",
    }
    assert await contacts(control) == []
    assert requests_to(sandbox, "GET /1/Contacts") == {"200": 1}
    assert requests_to(sandbox, "GET /1/object/getByEmail") == {"200": 1}


async def test_tag_mode_tags_the_contact_and_keeps_it(harness: Harness, control: httpx.AsyncClient) -> None:
    """on_delete = "tag" tags the contact with deleted_tag (by name) and leaves it in Ontraport."""
    result = await deliver_then_delete(harness, harness.writer(on_delete="tag", deleted_tag="Gone from Sell"))
    [stored] = await contacts(control)
    assert isinstance(result, Done) and result.remote_id == stored["id"] and not result.unlink
    assert stored["tags"] == ["Gone from Sell"]


async def test_ignore_mode_leaves_the_contact(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """on_delete = "ignore" skips the delete: the contact stays, untagged, and no call is made for it."""
    result = await deliver_then_delete(harness, harness.writer(on_delete="ignore"))
    [stored] = await contacts(control)
    assert isinstance(result, Skipped) and "ignore" in result.reason
    assert "tags" not in stored and sandbox.state()["deletes"] == 0


@pytest.mark.parametrize("mode", ["delete", "tag"])
async def test_guard_keeps_a_contact_another_live_record_maps_to(
    harness: Harness, control: httpx.AsyncClient, mode: str
) -> None:
    """A lead and the contact it became share one Ontraport contact: deleting the lead neither deletes nor tags it."""
    writer = harness.writer(on_delete=mode)
    await harness.ingest(event("lead", 9, 1, "created", **ADA), event("contact", 5, 1, "created", **ADA))
    first = await harness.round(writer)
    assert {r.remote_id for r in first.values() if isinstance(r, Done)} == {(await contacts(control))[0]["id"]}
    await harness.ingest(event("lead", 9, 2, "deleted"))
    result = (await harness.round(writer))["lead:9"]
    assert isinstance(result, Skipped) and "contact:5" in result.reason
    [stored] = await contacts(control)
    assert "tags" not in stored


async def test_a_guarded_delete_never_retires_the_contact_a_live_peer_is_linked_to(
    harness: Harness, control: httpx.AsyncClient
) -> None:
    """A lead and the contact it became share one Ontraport contact, still under the old e-mail while the contact's
    e-mail change waits in the queue: deleting the lead leaves it, although no live person holds that e-mail."""
    writer = harness.writer(on_delete="delete")
    await harness.ingest(event("lead", 9, 1, "created", **ADA), event("contact", 5, 1, "created", **ADA))
    await harness.round(writer)
    await harness.ingest(
        event("contact", 5, 2, **{**ADA, "email": "ada.new@example.org"}, previous={"email": ADA["email"]}),
        event("lead", 9, 2, "deleted", **ADA),
    )
    works = await harness.store.load_work(SINK, await harness.store.claim(SINK, 100))
    [result] = await writer.deliver([w for w in works if w.key == "lead:9"])
    assert isinstance(result, Skipped) and "contact:5" in result.reason
    [stored] = await contacts(control)
    assert stored["email"] == ADA["email"]


async def test_a_delete_keeps_the_contact_a_person_with_its_email_would_merge_into(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """A lead changes its e-mail and is deleted before the change was written, while a new Sell contact has the
    e-mail the Ontraport contact still carries: the contact stays (that person's first write merges into it)."""
    writer = harness.writer(on_delete="delete")
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    first = (await harness.round(writer))["lead:9"]
    assert isinstance(first, Done)
    await harness.ingest(
        event("lead", 9, 2, **{**ADA, "email": "countess@example.org"}, previous={"email": ADA["email"]}),
        event("lead", 9, 3, "deleted"),
        event("contact", 5, 1, "created", **ADA),
    )
    works = await harness.store.load_work(SINK, await harness.store.claim(SINK, 100))
    [result] = await writer.deliver([w for w in works if w.key == "lead:9"])
    assert isinstance(result, Skipped) and "contact:5" in result.reason
    assert sandbox.state()["deletes"] == 0
    assert [c["id"] for c in await contacts(control)] == [first.remote_id]


async def test_guard_defers_a_delete_until_the_person_streams_caught_up(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """A delete waits (Deferred) while a person stream has not reached its top since the delete was stored."""
    writer = harness.writer(on_delete="delete")
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    await harness.round(writer)
    await harness.ingest(event("lead", 9, 2, "deleted"), at_top=False)
    result = (await harness.round(writer))["lead:9"]
    assert isinstance(result, Deferred)
    assert len(await contacts(control)) == 1 and sandbox.state()["deletes"] == 0


# ---------------------------------------------------------------------------------------------------------------
# probe, fields, organisations


async def test_probe_and_fields_read_the_contact_meta(harness: Harness, control: httpx.AsyncClient) -> None:
    """probe() passes on a working account and is transient on a 5xx; fields() lists every meta field."""
    writer = harness.writer()
    await writer.probe()
    fields = {f.key: f for f in await writer.fields()}
    assert fields["firstname"].label == "First Name" and fields["firstname"].editable
    assert (fields["f1557"].type, fields["f1557"].options) == ("drop", {"1": "Gold", "2": "Silver"})
    assert not fields["f1561"].editable and not fields["num_purchased"].editable
    await fault(
        control, path="/1/Contacts/meta", status=404, body="Unknown endpoint", content_type="text/plain", times=1
    )
    with pytest.raises(TransientError):
        await writer.probe()
    await fault(control, path="/1/Contacts/meta", status=502, times=1)
    with pytest.raises(TransientError):
        await writer.probe()


# ---------------------------------------------------------------------------------------------------------------
# several Sell records with one e-mail

EARLY, LATE = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)


def writes(sandbox: OntraportSandbox) -> int:
    return sum(sandbox.state()["writes"].values())


@pytest.mark.parametrize(
    ("policy", "owner"),
    [("contact_first", "contact"), ("newest", "lead"), ("skip", None)],
)
async def test_alternating_updates_of_two_records_with_one_email_never_flap(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient, policy: str, owner: str | None
) -> None:
    """A lead (created later) and a contact share an e-mail; updates alternate between them, each delivered on its
    own: only the owner's changes reach Ontraport, the one contact never flaps between them."""
    writer = harness.writer(shared_email=policy)
    await harness.ingest(event("contact", 5, 1, "created", **{**ADA, "first_name": "C0"}, created_at=EARLY))
    await harness.round(writer)
    await harness.ingest(event("lead", 9, 1, "created", **{**ADA, "first_name": "L0"}, created_at=LATE))
    await harness.round(writer)
    before = writes(sandbox)
    for n in range(1, 6):
        for kind, record_id, at in (("lead", 9, LATE), ("contact", 5, EARLY)):
            change = event(kind, record_id, n + 1, **{**ADA, "first_name": f"{kind[0].upper()}{n}"}, created_at=at)
            await harness.ingest(change)
            result = (await harness.round(writer))[f"{kind}:{record_id}"]
            if kind != owner:
                assert isinstance(result, Skipped) and "shared e-mail" in result.reason
    [stored] = await contacts(control)
    assert (writes(sandbox) - before, stored["firstname"]) == {
        "contact": (5, "C5"),
        "lead": (5, "L5"),
        None: (0, "C0"),
    }[owner]


async def test_a_deleted_owner_hands_the_contact_to_the_next_even_when_unchanged(
    harness: Harness, control: httpx.AsyncClient
) -> None:
    """The owner of a shared e-mail is deleted in Sell: the lead that wrote the contact before the owner took it
    over is written at once and in full (its own state is unchanged since, but the contact held the owner's)."""
    writer = harness.writer()
    await harness.ingest(event("lead", 9, 1, "created", **{**ADA, "first_name": "Lead", "title": "Countess"}))
    await harness.round(writer)
    await harness.ingest(event("contact", 5, 1, "created", **{**ADA, "first_name": "Con", "title": "CEO"}))
    await harness.drain(writer)
    [taken] = await contacts(control)
    assert (taken["firstname"], taken["title"]) == ("Con", "CEO")
    await harness.ingest(event("contact", 5, 2, "deleted", **ADA))
    rounds = await harness.drain(writer)
    assert [set(r) for r in rounds] == [{"contact:5"}, {"lead:9"}]
    assert isinstance(rounds[1]["lead:9"], Done)
    [stored] = await contacts(control)
    assert (stored["firstname"], stored["title"]) == ("Lead", "Countess")


async def test_an_owner_that_changes_its_email_keeps_its_contact_and_the_next_gets_its_own(
    harness: Harness, control: httpx.AsyncClient
) -> None:
    """Two records linked to one Ontraport contact (the lead wrote it, then the contact took it over): the
    contact changes its e-mail and keeps the contact (renamed); the lead, left with the old e-mail and coming
    after the contact, writes a contact of its own instead of renaming it back."""
    writer = harness.writer()
    await harness.ingest(event("lead", 9, 1, "created", **{**ADA, "first_name": "Lead"}))
    await harness.round(writer)
    await harness.ingest(event("contact", 5, 1, "created", **{**ADA, "first_name": "Con"}))
    await harness.drain(writer)
    assert (await harness.link("lead:9")).remote_id == (await harness.link("contact:5")).remote_id
    moved = event("contact", 5, 2, first_name="Con", email="con@example.org", previous={"email": ADA["email"]})
    await harness.ingest(moved)
    rounds = await harness.drain(writer)
    assert [set(r) for r in rounds] == [{"contact:5"}, {"lead:9"}]
    by_email = {c["email"]: c for c in await contacts(control)}
    assert (by_email["con@example.org"]["firstname"], by_email[ADA["email"]]["firstname"]) == ("Con", "Lead")
    assert by_email["con@example.org"]["id"] == (await harness.link("contact:5")).remote_id
    assert by_email[ADA["email"]]["id"] == (await harness.link("lead:9")).remote_id
    await harness.ingest(event("lead", 9, 2, **{**ADA, "first_name": "Lead", "title": "x"}))
    await harness.drain(writer)
    assert {c["email"]: c["firstname"] for c in await contacts(control)} == {
        "con@example.org": "Con", ADA["email"]: "Lead",
    }  # fmt: skip


# ---------------------------------------------------------------------------------------------------------------
# organisations


async def test_an_organisation_with_an_email_becomes_a_contact_named_after_it(
    harness: Harness, control: httpx.AsyncClient
) -> None:
    """organisations = "contact" (the default): an organisation with an e-mail is a contact with its name as first
    name and company; one without an e-mail is skipped with that reason."""
    writer = harness.writer()
    await harness.ingest(
        event("contact", 70, 1, "created", is_organization=True, name="Engines Ltd", email="office@engines.example"),
        event("contact", 71, 1, "created", is_organization=True, name="No Mail plc"),
    )
    results = await harness.round(writer)
    assert isinstance(results["contact:70"], Done)
    assert results["contact:71"] == Skipped("contact:71", results["contact:71"].seqs, ORGANISATION_WITHOUT_EMAIL)
    [stored] = await contacts(control)
    assert (stored["email"], stored["firstname"], stored["company"]) == (
        "office@engines.example", "Engines Ltd", "Engines Ltd",
    )  # fmt: skip
    assert stored["lastname"] in (None, "")


async def test_organisations_skip_writes_and_deletes_nothing_of_them(
    harness: Harness, sandbox: OntraportSandbox, control: httpx.AsyncClient
) -> None:
    """organisations = "skip": an organisation is skipped with the reason, and its delete touches nothing, not
    even a contact someone made under its e-mail."""
    await control.post("/1/Contacts", json={"email": "office@engines.example"}, headers=AUTH)
    writer = harness.writer(organisations="skip")
    org = {"is_organization": True, "name": "Engines Ltd", "email": "office@engines.example"}
    await harness.ingest(event("contact", 70, 1, "created", **org))
    created = (await harness.round(writer))["contact:70"]
    await harness.ingest(event("contact", 70, 2, "deleted", **org))
    deleted = (await harness.round(writer))["contact:70"]
    for result in (created, deleted):
        assert isinstance(result, Skipped) and result.reason == ORGANISATIONS_SKIPPED
    assert [c["email"] for c in await contacts(control)] == ["office@engines.example"]
    assert sandbox.state()["deletes"] == 0


@pytest.mark.parametrize("organisations", ["contact", "skip"])
async def test_renaming_an_organisation_rewrites_the_company_of_its_people(
    harness: Harness, control: httpx.AsyncClient, organisations: str
) -> None:
    """A renamed organisation's people are written again at once with its new name as their company, without a
    change of their own (under organisations = skip too: the people are written, the organisation is not)."""
    writer = harness.writer(organisations=organisations)
    await harness.ingest(
        event("contact", 70, 1, "created", is_organization=True, name="Engines Ltd"),
        event("contact", 5, 1, "created", organization_id=70, email="charles@example.org"),
        event("contact", 6, 1, "created", organization_id=70, email="augusta@example.org"),
        event("contact", 7, 1, "created", email="other@example.org"),
    )
    await harness.drain(writer)
    renamed = event(
        "contact", 70, 2, is_organization=True, name="Difference Engines plc", previous={"name": "Engines Ltd"}
    )
    await harness.ingest(renamed)
    assert set(await harness.round(writer)) == {"contact:70"}
    again = await harness.round(writer)
    assert set(again) == {"contact:5", "contact:6"}
    assert all(isinstance(r, Done) for r in again.values())
    companies = {c["email"]: c["company"] for c in await contacts(control)}
    assert companies == {
        "charles@example.org": "Difference Engines plc",
        "augusta@example.org": "Difference Engines plc",
        "other@example.org": None,  # belongs to no organisation: a blank company, which Ontraport keeps as none
    }


async def test_people_written_before_their_organisation_was_known_get_its_name_when_it_appears(
    harness: Harness, control: httpx.AsyncClient
) -> None:
    """A person written while its organisation was not known yet (streams are not ordered across records) gets
    the organisation's name as company once the organisation arrives."""
    writer = harness.writer()
    await harness.ingest(event("contact", 5, 1, "created", organization_id=70, email="charles@example.org"))
    await harness.round(writer)
    await harness.ingest(event("contact", 70, 1, "created", is_organization=True, name="Engines Ltd"))
    await harness.round(writer)
    assert set(await harness.round(writer)) == {"contact:5"}
    [stored] = await contacts(control)
    assert stored["company"] == "Engines Ltd"


async def test_concurrent_deliveries_share_one_meta_fetch(harness: Harness, sandbox: OntraportSandbox) -> None:
    """Keys delivered at once (the dispatcher's concurrency) fetch the contact meta once between them."""
    writer = harness.writer()
    await harness.ingest(*(event("lead", i, 1, "created", email=f"p{i}@example.org") for i in range(1, 5)))
    works = await harness.store.load_work(SINK, await harness.store.claim(SINK, 10))
    results: list[Result] = []

    async def one(work: KeyWork) -> None:
        results.extend(await writer.deliver([work]))

    async with anyio.create_task_group() as group:
        for work in works:
            group.start_soon(one, work)
    assert len(results) == 4 and all(isinstance(r, Done) for r in results)
    assert requests_to(sandbox, "GET /1/Contacts/meta") == {"200": 1}
    assert sandbox.state()["contacts"] == 4


async def test_a_late_write_check_writes_the_contact_again_even_unchanged(
    harness: Harness, sandbox: OntraportSandbox
) -> None:
    """A key's late-write check (reassert) writes the latest state again although its digest is unchanged (a late
    write may have changed the contact since); without it the unchanged contact is skipped."""
    writer = harness.writer()
    await harness.ingest(event("lead", 9, 1, "created", **ADA))
    await harness.drain(writer)
    [work] = await harness.store.load_work(SINK, ["lead:9"])
    assert [r.reason for r in await writer.deliver([work]) if isinstance(r, Skipped)] == [UNCHANGED]
    [result] = await writer.deliver([dataclasses.replace(work, reassert=True)])
    assert isinstance(result, Done) and result.detail == "updated"
    assert requests_to(sandbox, "PUT /1/Contacts") == {"200": 1}
