"""The SALESmanago writer against the SALESmanago sandbox over loopback HTTP, with a real store on a SQLite file:
creates, updates, batches (and their bad items under both sandbox readings), e-mail changes, deletes and the guard,
every error class, probe() and fields(). Assertions read what the sandbox holds."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.config import Duration, SalesmanagoConfig, SalesmanagoTags, Secret
from syncd.errors import DestinationError, PermanentError, RateLimited, TransientError
from syncd.events import Address, ChangeEvent
from syncd.ledger import Ledger
from syncd.ratelimit import Limiter
from syncd.sandbox.salesmanago.app import SalesmanagoSandbox
from syncd.sandbox.server import ServerThread
from syncd.sinks.persons import ORGANISATIONS_SKIPPED
from syncd.sinks.salesmanago.writer import NO_EMAIL, SalesmanagoWriter
from syncd.work import Deferred, Done, Failed, Released, Result, Skipped
from tests.factories import event
from tests.support import AppSwitch

CLIENT_ID = "client-7f3a"
SECRET = "s3cret-api-key-0042"
OWNER = "sales@example.com"
SINK = "salesmanago"
ADA = "ada@example.org"
ADDRESS = Address(line1="12 Byron St", postal_code="N1 9GU", city="London", state="London", country="United Kingdom")


class CountingLimiter(Limiter):
    """The shared limiter, counting acquisitions (every HTTP call must take one)."""

    def __init__(self) -> None:
        super().__init__(SINK, None)
        self.acquired = 0

    async def acquire(self) -> float:
        self.acquired += 1
        return await super().acquire()


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[ServerThread, AppSwitch]]:
    switch = AppSwitch()
    with ServerThread(switch) as thread:
        yield thread, switch


class Sandbox:
    """The test's sandbox: its control routes over HTTP, and its counters."""

    def __init__(self, sandbox: SalesmanagoSandbox, url: str) -> None:
        self.sandbox = sandbox
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=5.0)

    def control(self, path: str, body: object = None) -> Any:
        response = (
            self.http.get(f"/_sandbox/{path}") if body is None else self.http.post(f"/_sandbox/{path}", json=body)
        )
        assert response.status_code == 200, response.text
        return response.json()

    def contacts(self) -> dict[str, dict[str, Any]]:
        return {c["email"]: c for c in self.control("contacts")["contacts"]}

    def calls(self, method: str | None = None) -> int:
        by_method: dict[str, int] = self.sandbox.state()["requests_by_method"]
        return sum(by_method.values()) if method is None else by_method.get(method, 0)

    def fault(self, **fault: Any) -> None:
        self.control("faults", fault)


@pytest.fixture
def sm(server: tuple[ServerThread, AppSwitch]) -> Iterator[Sandbox]:
    thread, switch = server
    sandbox = SalesmanagoSandbox(client_id=CLIENT_ID, api_secret=SECRET, owners=[OWNER])
    switch.app = sandbox.app
    api = Sandbox(sandbox, thread.url)
    yield api
    api.http.close()
    switch.app = None


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_path / "syncd.db", sinks=(SINK,))
    yield opened
    await opened.close()


def config(url: str, **overrides: Any) -> SalesmanagoConfig:
    settings: dict[str, Any] = {
        "base_url": url,
        "client_id": CLIENT_ID,
        "api_secret": Secret(SECRET),
        "owner": OWNER,
        "timeout": Duration(5),
        **overrides,
    }
    return SalesmanagoConfig(**settings)


class Harness:
    """A writer wired to the store and the sandbox the way the daemon wires it."""

    def __init__(self, store: Ledger, sm: Sandbox, **overrides: Any) -> None:
        self.store = store
        self.sm = sm
        self.limiter = CountingLimiter()
        self.writer = SalesmanagoWriter(
            config(sm.url, **overrides), lookups=store, limiter=self.limiter, streams=["leads", "contacts"]
        )
        self._position = 0

    async def ingest(self, *events: ChangeEvent, caught_up: bool = True) -> None:
        """Store the events (each on its stream), then mark both person streams at the top (or contacts not)."""
        for change in events:
            self._position += 1
            await self.store.ingest(change.stream, [change], position=f"p{self._position}", at_top=True)
        for stream in ("leads", "contacts"):
            self._position += 1
            at_top = caught_up or stream == "leads"
            await self.store.ingest(stream, [], position=f"p{self._position}", at_top=at_top)

    async def run(self, limit: int = 100) -> dict[str, Result]:
        """One dispatch round: claim, load, deliver, commit (a Failed key is released for the next round)."""
        keys = await self.store.claim(SINK, limit)
        works = await self.store.load_work(SINK, keys)
        results = await self.writer.deliver(works)
        assert [r.key for r in results] == keys
        await self.store.commit(SINK, [Released(r.key) if isinstance(r, Failed) else r for r in results])
        return {r.key: r for r in results}

    async def once(self, *events: ChangeEvent) -> Result:
        await self.ingest(*events)
        results = await self.run()
        assert len(results) == 1
        return next(iter(results.values()))

    async def drain(self) -> list[dict[str, Result]]:
        """Rounds until no key is due (keys queued again by a round are delivered by the next)."""
        rounds = []
        while results := await self.run():
            rounds.append(results)
        return rounds

    async def settle(self, key: str) -> None:
        """Finish a key's pending deliveries without the writer (as if dead-lettered or never written)."""
        [work] = await self.store.load_work(SINK, [key])
        await self.store.commit(SINK, [Skipped(key, work.seqs, "settled by the test")])

    async def close(self) -> None:
        await self.writer.aclose()


@pytest.fixture
async def h(store: Ledger, sm: Sandbox) -> AsyncIterator[Harness]:
    harness = Harness(store, sm)
    yield harness
    await harness.close()


def lead(record_id: int, sequence: int, action: str = "updated", **fields: Any) -> ChangeEvent:
    return event("lead", record_id, sequence, action, **fields)  # type: ignore[arg-type]


def person(record_id: int, sequence: int, action: str = "updated", **fields: Any) -> ChangeEvent:
    return event("contact", record_id, sequence, action, **fields)  # type: ignore[arg-type]


def failed(result: Result) -> Any:
    assert isinstance(result, Failed), result
    return result.error


def secret_free(request: str | None) -> dict[str, Any]:
    """The dead-letter request, checked to hold no credential, parsed."""
    assert request is not None
    for secret in (SECRET, "apiKey", "sha", "clientId", CLIENT_ID):
        assert secret not in request
    parsed: dict[str, Any] = json.loads(request)
    return parsed


# ---------------------------------------------------------------------------------------------------------------
# writing


async def test_create_then_update_writes_the_same_contact(h: Harness, sm: Sandbox) -> None:
    """A new lead becomes a SALESmanago contact with the mapped fields; an update changes that same contact."""
    created = await h.once(
        lead(9001, 1, "created", email=ADA, first_name="Ada", last_name="Lovelace", address=ADDRESS, tags=["vip"])
    )
    assert isinstance(created, Done)
    stored = sm.contacts()[ADA]
    assert created.remote_id == stored["contactId"]
    assert stored["name"] == "Ada Lovelace"
    assert stored["state"] == "PROSPECT"
    assert stored["externalId"] == "sell-lead-9001"
    assert stored["address"]["country"] == "GB"
    assert stored["province"] == "London"
    assert stored["tags"] == ["VIP", "ZENDESK_SELL", "LEAD"]
    assert stored["owner"] == OWNER

    updated = await h.once(lead(9001, 2, email=ADA, first_name="Ada", last_name="Lovelace", title="Countess"))
    assert isinstance(updated, Done)
    assert updated.remote_id == created.remote_id
    stored = sm.contacts()[ADA]
    assert stored["properties"]["title"] == "Countess"
    assert stored["tags"] == ["ZENDESK_SELL", "LEAD"]  # "vip" removed in Sell: syncd wrote it, so it goes
    # The address cleared in Sell is not sent blank (what SALESmanago does with "" is unconfirmed): it stays.
    assert stored["address"] == {"streetAddress": "12 Byron St", "zipCode": "N1 9GU", "city": "London", "country": "GB"}
    assert sm.sandbox.state()["writes_per_email"] == {ADA: 2}


FULL_LEAD: dict[str, Any] = {
    "email": ADA, "first_name": "Ada", "last_name": "Lovelace", "phone": "+44 1", "fax": "+44 2",
    "organization_name": "Analytical Engines", "title": "Countess", "address": ADDRESS,
}  # fmt: skip
CLEARED: dict[str, Any] = {"phone": "", "fax": "", "organization_name": "", "title": "", "address": None}


@pytest.mark.parametrize("reading", ["clear", "ignore", "refuse"])
async def test_no_value_is_sent_blank_so_every_blank_reading_gives_the_same_contact(
    h: Harness, sm: Sandbox, reading: str
) -> None:
    """Whatever SALESmanago does with "" (clear it, ignore it, or refuse the upsert: blank_strings), a sparse
    record is written and an update that clears fields in Sell writes the rest; the cleared fields keep their last
    value, the same under every reading, because no blank value is ever sent."""
    sm.control("behaviour", {"blank_strings": reading})
    sparse = await h.once(lead(2, 1, "created", email="bob@example.org"))
    assert isinstance(sparse, Done)
    assert sm.contacts()["bob@example.org"]["state"] == "PROSPECT"
    assert isinstance(await h.once(lead(1, 1, "created", **FULL_LEAD)), Done)
    updated = await h.once(lead(1, 2, **{**FULL_LEAD, **CLEARED, "first_name": "Augusta"}))
    assert isinstance(updated, Done)
    stored = sm.contacts()[ADA]
    assert stored["name"] == "Augusta Lovelace"
    assert (stored["phone"], stored["fax"], stored["company"], stored["province"]) == (
        "+44 1", "+44 2", "Analytical Engines", "London",
    )  # fmt: skip
    assert stored["address"] == {"streetAddress": "12 Byron St", "zipCode": "N1 9GU", "city": "London", "country": "GB"}
    assert stored["properties"] == {"title": "Countess"}


async def test_unchanged_record_is_skipped_without_a_call(h: Harness, sm: Sandbox) -> None:
    """A change that does not alter what SALESmanago should hold is skipped and sends nothing."""
    await h.once(lead(1, 1, "created", email=ADA, first_name="Ada", custom={"Unmapped": "a"}))
    calls = sm.calls()
    result = await h.once(lead(1, 2, email=ADA, first_name="Ada", custom={"Unmapped": "b"}))
    assert isinstance(result, Skipped)
    assert result.reason == "unchanged since the last write"
    assert sm.calls() == calls


async def test_single_key_uses_contact_upsert(h: Harness, sm: Sandbox) -> None:
    """One due key is written with contact/upsert."""
    assert isinstance(await h.once(lead(1, 1, "created", email=ADA)), Done)
    assert (sm.calls("contact/upsert"), sm.calls("contact/batchupsert")) == (1, 0)


async def test_several_keys_go_in_one_batchupsert(h: Harness, sm: Sandbox) -> None:
    """Several due keys become ONE contact/batchupsert, each key Done with its own contactId."""
    await h.ingest(*(lead(n, 1, "created", email=f"p{n}@example.org", first_name=f"P{n}") for n in range(1, 6)))
    results = await h.run()
    assert (sm.calls("contact/batchupsert"), sm.calls("contact/upsert")) == (1, 0)
    stored = sm.contacts()
    for n in range(1, 6):
        done = results[f"lead:{n}"]
        assert isinstance(done, Done)
        assert done.remote_id == stored[f"p{n}@example.org"]["contactId"]


async def test_batches_are_chunked_by_batch_size(store: Ledger, sm: Sandbox) -> None:
    """More keys than batch_size go out as several batchupserts of at most batch_size items."""
    h = Harness(store, sm, batch_size=2)
    await h.ingest(*(lead(n, 1, "created", email=f"p{n}@example.org") for n in range(1, 6)))
    results = await h.run()
    await h.close()
    assert all(isinstance(r, Done) for r in results.values())
    assert (sm.calls("contact/batchupsert"), sm.calls("contact/upsert")) == (2, 1)
    assert len(sm.contacts()) == 5


@pytest.mark.parametrize(("reading", "batch_calls"), [("reject_all", 2), ("partial", 1)])
async def test_bad_item_in_a_batch_fails_alone(h: Harness, sm: Sandbox, reading: str, batch_calls: int) -> None:
    """A batch with one invalid e-mail: that key fails permanently (secret-free request, no e-mail in the message)
    and every good neighbour is written, whether the sandbox refuses the whole call or writes the rest."""
    sm.control("behaviour", {"batch_invalid": reading})
    sm.control("rules", {"reject_emails": ["bad@example.org"]})
    emails = {1: "good1@example.org", 2: "bad@example.org", 3: "good3@example.org"}
    await h.ingest(*(lead(n, 1, "created", email=email) for n, email in emails.items()))
    results = await h.run()
    assert isinstance(results["lead:1"], Done)
    assert isinstance(results["lead:3"], Done)
    error = failed(results["lead:2"])
    assert isinstance(error, PermanentError)
    assert "Invalid email" in error.message
    assert "bad@example.org" not in error.message
    request = secret_free(error.request)
    assert request["method"] == "contact/batchupsert"
    assert [item["contact"]["email"] for item in request["body"]["upsertDetails"]] == ["bad@example.org"]
    assert set(sm.contacts()) == {"good1@example.org", "good3@example.org"}
    assert sm.calls("contact/batchupsert") == batch_calls


async def test_every_batch_item_carries_the_owner(h: Harness, sm: Sandbox) -> None:
    """Each upsertDetails item carries the owner as well as the call (as SALESmanago's own library sends it): a
    batch is written where items without their own owner are refused (item_owner_missing = refuse), and a dead
    letter's request shows the item as sent."""
    sm.control("behaviour", {"item_owner_missing": "refuse"})
    sm.control("rules", {"reject_emails": ["bad@example.org"]})
    emails = {1: "p1@example.org", 2: "p2@example.org", 3: "bad@example.org"}
    await h.ingest(*(lead(n, 1, "created", email=email) for n, email in emails.items()))
    results = await h.run()
    assert isinstance(results["lead:1"], Done) and isinstance(results["lead:2"], Done)
    assert sm.calls("contact/upsert") == 0
    assert {email: c["owner"] for email, c in sm.contacts().items()} == dict.fromkeys(
        ("p1@example.org", "p2@example.org"), OWNER
    )
    [item] = secret_free(failed(results["lead:3"]).request)["body"]["upsertDetails"]
    assert item["owner"] == OWNER


async def test_batch_refused_without_naming_items_is_isolated(h: Harness, sm: Sandbox) -> None:
    """A batch refused as a whole (HTTP 400, no item named) is retried one by one; the good records are written."""
    sm.fault(path="/api/contact/batchupsert", status=400, times=1, body='{"success": false, "message": ["Bad"]}')
    await h.ingest(*(lead(n, 1, "created", email=f"p{n}@example.org") for n in (1, 2, 3)))
    results = await h.run()
    assert all(isinstance(r, Done) for r in results.values())
    assert sm.calls("contact/upsert") == 3
    assert len(sm.contacts()) == 3


async def test_contract_example_lead_lands_as_the_example_describes(store: Ledger, sm: Sandbox) -> None:
    """The Sell lead equivalent to the contract's example ends up as the contact the example body describes."""
    h = Harness(store, sm, fields={"custom.Score": "number.score", "custom.Birthday": "birthday"})
    fields: dict[str, Any] = {
        "first_name": "Ada",
        "last_name": "Lovelace",
        "phone": "+44 20 7946 0000",
        "organization_name": "Analytical Engines Ltd",
        "industry": "Computing",
        "address": ADDRESS,
        "custom": {"Score": "42", "Birthday": "1990-12-10"},
    }
    await h.once(lead(9001, 1, "created", email=ADA, tags=["customer"], **fields))
    done = await h.once(lead(9001, 2, email="ada@new.example.org", **fields))
    await h.close()
    assert isinstance(done, Done)
    stored = sm.contacts()["ada@new.example.org"]
    assert stored["contactId"] == done.remote_id
    assert {key: stored[key] for key in ("name", "phone", "fax", "company", "state", "externalId")} == {
        "name": "Ada Lovelace",
        "phone": "+44 20 7946 0000",
        "fax": None,  # never set: the example's blank fax is not sent
        "company": "Analytical Engines Ltd",
        "state": "PROSPECT",
        "externalId": "sell-lead-9001",
    }
    assert stored["address"] == {"streetAddress": "12 Byron St", "zipCode": "N1 9GU", "city": "London", "country": "GB"}
    assert stored["tags"] == ["ZENDESK_SELL", "LEAD"]
    assert stored["properties"] == {"industry": "Computing"}
    assert stored["dictionaryProperties"] == [{"name": "score", "type": "NUMBER", "value": 42}]
    assert (stored["birthdayYear"], stored["birthdayMonth"], stored["birthdayDay"]) == (1990, 12, 10)
    assert stored["province"] == "London"


async def test_contact_company_comes_from_its_organisation(h: Harness, sm: Sandbox) -> None:
    """A contact's company is the name of its Sell organisation, looked up in the shadow."""
    await h.ingest(person(77, 1, "created", is_organization=True, name="Analytical Engines Ltd"))
    await h.drain()  # the organisation has no e-mail: skipped
    result = await h.once(person(5, 1, "created", email=ADA, organization_id=77, customer_status="current"))
    assert isinstance(result, Done)
    stored = sm.contacts()[ADA]
    assert stored["company"] == "Analytical Engines Ltd"
    assert stored["state"] == "CUSTOMER"
    assert stored["tags"] == ["ZENDESK_SELL", "CONTACT", "CUSTOMER"]


async def test_record_without_email_is_skipped(h: Harness, sm: Sandbox) -> None:
    """A person without an e-mail is skipped with the reason, and nothing is sent."""
    result = await h.once(lead(1, 1, "created", first_name="Nobody"))
    assert isinstance(result, Skipped)
    assert result.reason == NO_EMAIL
    assert sm.calls() == 0


# ---------------------------------------------------------------------------------------------------------------
# organisations

OFFICE = "office@engines.example"


async def test_an_organisation_with_an_email_becomes_a_tagged_contact(store: Ledger, sm: Sandbox) -> None:
    """organisations = "contact" (the default): an organisation with an e-mail is a contact with its name as name
    and company, tagged tags.organisation (configurable) instead of tags.contact; one without an e-mail is
    skipped with that reason."""
    h = Harness(store, sm, tags=SalesmanagoTags(organisation=["B2B_ACCOUNT"]))
    await h.ingest(
        person(70, 1, "created", is_organization=True, name="Engines Ltd", email=OFFICE, customer_status="current"),
        person(71, 1, "created", is_organization=True, name="No Mail plc"),
    )
    results = await h.run()
    await h.close()
    assert isinstance(results["contact:70"], Done)
    assert results["contact:71"] == Skipped("contact:71", results["contact:71"].seqs, NO_EMAIL)
    stored = sm.contacts()[OFFICE]
    assert (stored["name"], stored["company"], stored["state"]) == ("Engines Ltd", "Engines Ltd", "CUSTOMER")
    assert stored["tags"] == ["ZENDESK_SELL", "B2B_ACCOUNT", "CUSTOMER"]
    assert stored["externalId"] == "sell-contact-70"


async def test_the_default_organisation_tag(h: Harness, sm: Sandbox) -> None:
    """Without configuration an organisation's contact is tagged ORGANISATION."""
    await h.once(person(70, 1, "created", is_organization=True, name="Engines Ltd", email=OFFICE))
    assert sm.contacts()[OFFICE]["tags"] == ["ZENDESK_SELL", "ORGANISATION"]


async def test_organisations_skip_writes_and_deletes_nothing_of_them(store: Ledger, sm: Sandbox) -> None:
    """organisations = "skip": an organisation is skipped with the reason and its delete deletes nothing, not even
    a contact someone made under its e-mail; it keeps no contact from a person's delete either."""
    h = Harness(store, sm, organisations="skip")
    await h.writer._api.upsert({"contact": {"email": OFFICE, "name": "made by hand"}}, known=())
    org = {"is_organization": True, "name": "Engines Ltd", "email": OFFICE}
    created = await h.once(person(70, 1, "created", **org))
    deleted = await h.once(person(70, 2, "deleted", **org))
    for result in (created, deleted):
        assert isinstance(result, Skipped) and result.reason == ORGANISATIONS_SKIPPED
    assert sm.contacts()[OFFICE]["deleted"] is False
    await h.once(lead(9, 1, "created", email=OFFICE))
    await h.ingest(person(70, 3, "created", **org))
    await h.drain()
    gone = await h.once(lead(9, 2, "deleted"))
    await h.close()
    assert isinstance(gone, Done) and gone.detail == "deleted"  # the skipped organisation holds nothing
    assert sm.contacts()[OFFICE]["deleted"] is True


@pytest.mark.parametrize("organisations", ["contact", "skip"])
async def test_renaming_an_organisation_rewrites_the_company_of_its_people(
    store: Ledger, sm: Sandbox, organisations: str
) -> None:
    """A renamed organisation's people are written again at once with its new name as their company, without a
    change of their own, in one batch (under organisations = skip too: the people are written, not it)."""
    h = Harness(store, sm, organisations=organisations)
    await h.ingest(
        person(70, 1, "created", is_organization=True, name="Engines Ltd", email=OFFICE),
        person(5, 1, "created", organization_id=70, email="charles@example.org"),
        person(6, 1, "created", organization_id=70, email="augusta@example.org"),
        person(7, 1, "created", email="other@example.org"),
    )
    await h.drain()
    renamed = {"is_organization": True, "name": "Difference Engines plc", "email": OFFICE}
    await h.ingest(person(70, 2, previous={"name": "Engines Ltd"}, **renamed))
    assert set(await h.run()) == {"contact:70"}
    batches = sm.calls("contact/batchupsert")
    again = await h.run()
    await h.close()
    assert set(again) == {"contact:5", "contact:6"} and all(isinstance(r, Done) for r in again.values())
    assert sm.calls("contact/batchupsert") == batches + 1
    companies = {email: c["company"] for email, c in sm.contacts().items()}
    assert companies["charles@example.org"] == companies["augusta@example.org"] == "Difference Engines plc"
    assert companies["other@example.org"] is None
    assert companies.get(OFFICE) == ("Difference Engines plc" if organisations == "contact" else None)


async def test_a_person_in_flight_when_its_organisation_is_renamed_is_written_again(h: Harness, sm: Sandbox) -> None:
    """The requeue of a person whose write is in flight (claimed, its company read) when its organisation is
    renamed is not lost with that write's outcome: the person is due again and gets the new name."""
    await h.ingest(person(70, 1, "created", is_organization=True, name="Engines Ltd"))
    await h.drain()
    await h.ingest(person(5, 1, "created", organization_id=70, email="charles@example.org"))
    [member] = await h.store.load_work(SINK, await h.store.claim(SINK, 10))
    [stale] = await h.writer.deliver([member])  # written with the old name, its outcome not committed yet
    await h.ingest(person(70, 2, is_organization=True, name="Difference Engines plc", previous={"name": "Engines Ltd"}))
    await h.run()  # the organisation's key: its people are queued again
    await h.store.commit(SINK, [stale])
    assert sm.contacts()["charles@example.org"]["company"] == "Engines Ltd"
    assert set(await h.run()) == {"contact:5"}
    assert sm.contacts()["charles@example.org"]["company"] == "Difference Engines plc"


# ---------------------------------------------------------------------------------------------------------------
# several Sell records with one e-mail

EARLY, LATE = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("policy", "owner"),
    [("contact_first", "contact"), ("newest", "lead"), ("skip", None)],
)
async def test_alternating_updates_of_two_records_with_one_email_never_flap(
    store: Ledger, sm: Sandbox, policy: str, owner: str | None
) -> None:
    """A lead (created later) and a contact share an e-mail; updates alternate between them, each delivered on its
    own: only the owner's changes reach SALESmanago ("contact_first": the contact, "newest": the lead, "skip":
    neither once both exist), the contact never flaps, and the others are skipped saying who owns it."""
    h = Harness(store, sm, shared_email=policy)
    assert isinstance(await h.once(person(5, 1, "created", email=ADA, first_name="C0", created_at=EARLY)), Done)
    await h.once(lead(1, 1, "created", email=ADA, first_name="L0", created_at=LATE))
    skipped: list[str] = []
    for n in range(1, 6):
        changes = (
            (lead(1, n + 1, email=ADA, first_name=f"L{n}", created_at=LATE), "lead"),
            (person(5, n + 1, email=ADA, first_name=f"C{n}", created_at=EARLY), "contact"),
        )
        for record, kind in changes:
            result = await h.once(record)
            if kind != owner:
                assert isinstance(result, Skipped) and "shared e-mail" in result.reason
                skipped.append(result.reason)
    await h.close()
    writes = sm.sandbox.state()["writes_per_email"][ADA]
    name = sm.contacts()[ADA]["name"]
    if owner == "contact":
        assert (writes, name) == (1 + 5, "C5")
        assert "written from contact:5 (shared_email = contact_first)" in skipped[0]
    elif owner == "lead":
        assert (writes, name) == (1 + 1 + 5, "L5")  # the contact alone first, then the lead from its creation on
    else:
        assert (writes, name) == (1, "C0")  # the contact alone, then neither
        assert "2 Sell records have it, and shared_email = skip" in skipped[0]


async def test_a_deleted_owner_hands_the_contact_to_the_next_at_once(h: Harness, sm: Sandbox) -> None:
    """The contact that owns a shared e-mail is deleted in Sell: the lead with that e-mail is written at once (no
    change of its own needed), and the contact stays, now the lead's."""
    await h.ingest(
        lead(1, 1, "created", email=ADA, first_name="Lead"), person(5, 1, "created", email=ADA, first_name="Con")
    )
    await h.drain()
    assert sm.contacts()[ADA]["name"] == "Con"
    await h.ingest(person(5, 2, "deleted"))
    first = (await h.run())["contact:5"]
    assert isinstance(first, Done) and "lead:1 still maps" in first.detail  # only its own tag (CONTACT) went
    second = await h.run()
    assert set(second) == {"lead:1"} and isinstance(second["lead:1"], Done)
    stored = sm.contacts()[ADA]
    assert (stored["name"], stored["deleted"], stored["state"]) == ("Lead", False, "PROSPECT")
    assert stored["tags"] == ["ZENDESK_SELL", "LEAD"]


async def test_an_owner_that_changes_its_email_leaves_the_contact_to_the_next(h: Harness, sm: Sandbox) -> None:
    """The owner of a shared e-mail changes its e-mail: the lead left with the old one is written there at once,
    and the owner gets a contact under its new e-mail (the old contact is not renamed away from the lead)."""
    await h.ingest(
        lead(1, 1, "created", email=ADA, first_name="Lead"), person(5, 1, "created", email=ADA, first_name="Con")
    )
    await h.drain()
    await h.ingest(person(5, 2, email="con@example.org", first_name="Con", previous={"email": ADA}))
    rounds = await h.drain()
    assert [set(r) for r in rounds] == [{"contact:5"}, {"lead:1"}]
    contacts = sm.contacts()
    assert (contacts[ADA]["name"], contacts["con@example.org"]["name"]) == ("Lead", "Con")
    assert contacts[ADA]["deleted"] is False


async def test_under_skip_the_last_record_left_with_an_email_is_written(store: Ledger, sm: Sandbox) -> None:
    """shared_email = skip: while two records share an e-mail neither is written; once one of them goes, the
    other is written at once."""
    h = Harness(store, sm, shared_email="skip")
    await h.ingest(lead(1, 1, "created", email=ADA, first_name="Lead"), person(5, 1, "created", email=ADA))
    results = await h.run()
    assert all(isinstance(r, Skipped) for r in results.values())
    assert sm.contacts() == {}
    await h.ingest(person(5, 2, "deleted", email=ADA))
    await h.drain()
    await h.close()
    assert sm.contacts()[ADA]["name"] == "Lead"


# ---------------------------------------------------------------------------------------------------------------
# e-mail changes


async def test_email_change_renames_the_same_contact(h: Harness, sm: Sandbox) -> None:
    """A changed Sell e-mail renames the SALESmanago contact (newEmail): same contactId, old e-mail gone."""
    first = await h.once(lead(1, 1, "created", email=ADA, first_name="Ada"))
    second = await h.once(lead(1, 2, email="ada@new.example.org", first_name="Ada"))
    assert isinstance(first, Done)
    assert isinstance(second, Done)
    stored = sm.contacts()
    assert set(stored) == {"ada@new.example.org"}
    assert stored["ada@new.example.org"]["contactId"] == first.remote_id == second.remote_id


async def test_email_change_in_a_batch_keeps_the_contact(h: Harness, sm: Sandbox) -> None:
    """A rename travelling in a batchupsert is matched back to its key by the new e-mail."""
    await h.ingest(lead(1, 1, "created", email=ADA), lead(2, 1, "created", email="bob@example.org"))
    first = await h.run()
    await h.ingest(lead(1, 2, email="ada@new.example.org"), lead(2, 2, email="bob@example.org", title="Dr"))
    second = await h.run()
    assert sm.calls("contact/batchupsert") == 2
    stored = sm.contacts()
    assert set(stored) == {"ada@new.example.org", "bob@example.org"}
    for key in ("lead:1", "lead:2"):
        before, after = first[key], second[key]
        assert isinstance(before, Done)
        assert isinstance(after, Done)
        assert before.remote_id == after.remote_id


async def test_email_change_leaves_a_shared_contact_to_its_other_record(h: Harness, sm: Sandbox) -> None:
    """When a lead still uses the old e-mail, a contact record's new e-mail becomes a new SALESmanago contact."""
    await h.ingest(lead(1, 1, "created", email=ADA), person(5, 1, "created", email=ADA))
    await h.run()
    result = await h.once(person(5, 2, email="ada@new.example.org"))
    assert isinstance(result, Done)
    stored = sm.contacts()
    assert set(stored) == {ADA, "ada@new.example.org"}
    assert result.remote_id == stored["ada@new.example.org"]["contactId"] != stored[ADA]["contactId"]


# ---------------------------------------------------------------------------------------------------------------
# deletes and the guard


async def test_delete_deletes_the_contact(h: Harness, sm: Sandbox) -> None:
    """on_delete = delete: the contact written last is deleted, and the link dropped."""
    created = await h.once(lead(1, 1, "created", email=ADA))
    result = await h.once(lead(1, 2, "deleted"))
    assert isinstance(result, Done)
    assert isinstance(created, Done)
    assert result.unlink
    assert result.remote_id == created.remote_id
    assert sm.contacts()[ADA]["deleted"] is True
    assert sm.calls("contact/delete") == 1


@pytest.mark.parametrize(
    ("reading", "detail"),
    [("not_found", "already absent"), ("not_exist", "already absent"), ("unknown", "already absent"),
     ("success", "deleted")],
)  # fmt: skip
async def test_delete_of_an_unknown_email_counts_as_done(h: Harness, sm: Sandbox, reading: str, detail: str) -> None:
    """A delete of an e-mail SALESmanago does not hold (its contact, written by syncd, was removed there since) is
    done under every reading of its unknown-contact answer ("Contact not found", "... does not exist", "Unknown
    contact", or success): contact/basic decides, never the message's text."""
    await h.once(lead(1, 1, "created", email=ADA))
    await h.writer.api.call("contact/delete", {"email": ADA, "permanently": True}, known=(ADA,))  # in SALESmanago
    sm.control("behaviour", {"delete_unknown": reading})
    result = await h.once(lead(1, 2, "deleted"))
    assert isinstance(result, Done)
    assert result.detail == detail
    assert sm.calls("contact/delete") == 2  # the one above, and syncd's
    assert sm.contacts() == {}


async def test_deletes_of_records_never_written_ask_once_and_send_only_what_exists(h: Harness, sm: Sandbox) -> None:
    """Deletes of records syncd never wrote (no link) ask contact/basic once for the whole batch which e-mails
    hold a contact: one that holds none is already absent and no delete is sent; one that does is deleted."""
    await h.ingest(*(lead(n, 1, "created", email=f"p{n}@example.org") for n in (1, 2, 3)))
    for n in (1, 2, 3):
        await h.settle(f"lead:{n}")  # never written by syncd
    await h.writer.api.upsert({"contact": {"email": "p2@example.org"}}, known=())  # made outside syncd
    basic = sm.calls("contact/basic")
    await h.ingest(*(lead(n, 2, "deleted") for n in (1, 2, 3)))
    results = await h.run()
    assert {key: (type(r), getattr(r, "detail", "")) for key, r in results.items()} == {
        "lead:1": (Done, "already absent"),
        "lead:2": (Done, "deleted"),
        "lead:3": (Done, "already absent"),
    }
    assert (sm.calls("contact/basic") - basic, sm.calls("contact/delete")) == (1, 1)
    assert sm.contacts()["p2@example.org"]["deleted"] is True


async def test_a_refused_delete_of_a_contact_that_exists_is_an_error_whatever_it_says(h: Harness, sm: Sandbox) -> None:
    """A refusal that reads like "not found" while contact/basic still shows the contact is not taken as done:
    the key fails (and is retried or dead-lettered) instead of leaving the contact behind unnoticed."""
    await h.once(lead(1, 1, "created", email=ADA))
    refusal = '{"success": false, "message": ["Contact not found: ada@example.org"]}'
    sm.fault(path="/api/contact/delete", status=200, body=refusal, times=1)
    error = failed(await h.once(lead(1, 2, "deleted")))
    assert isinstance(error, PermanentError)
    assert ADA not in error.message
    assert sm.contacts()[ADA]["deleted"] is False
    assert sm.calls("contact/basic") == 1  # the refusal was the fault's: the app never saw the delete


@pytest.mark.parametrize("reading", ["null", "absent", "true", "string"])
async def test_delete_is_done_whatever_result_it_answers(h: Harness, sm: Sandbox, reading: str) -> None:
    """contact/delete answers result null in live tests (absent, true or "deleted" under other readings): a
    success is a delete whatever its result says."""
    sm.control("behaviour", {"delete_result": reading})
    await h.once(lead(1, 1, "created", email=ADA))
    result = await h.once(lead(1, 2, "deleted"))
    assert isinstance(result, Done) and result.detail == "deleted"
    assert sm.contacts()[ADA]["deleted"] is True


async def test_delete_as_tag(store: Ledger, sm: Sandbox) -> None:
    """on_delete = tag: the contact stays and gets tags.deleted."""
    h = Harness(store, sm, on_delete="tag")
    await h.once(lead(1, 1, "created", email=ADA))
    result = await h.once(lead(1, 2, "deleted"))
    await h.close()
    assert isinstance(result, Done)
    stored = sm.contacts()[ADA]
    assert stored["deleted"] is False
    assert stored["tags"] == ["ZENDESK_SELL", "LEAD", "DELETED_IN_SELL"]
    assert sm.calls("contact/delete") == 0


async def test_delete_as_tag_tags_what_a_lost_write_left(store: Ledger, sm: Sandbox) -> None:
    """on_delete = tag: a contact a write whose outcome was lost left under an e-mail the record had is tagged too,
    as on_delete = delete would delete it."""
    h = Harness(store, sm, on_delete="tag")
    await h.ingest(lead(1, 1, "created", email=ADA))
    works = await h.store.load_work(SINK, await h.store.claim(SINK, 10))
    assert [type(r) for r in await h.writer.deliver(works)] == [Done]
    await h.store.commit(SINK, [Released(w.key) for w in works])  # written, but the outcome was lost
    result = await h.once(lead(1, 2, "deleted", email="ada@new.example.org"))
    await h.close()
    assert isinstance(result, Done), result
    assert "old contact tagged" in result.detail
    stored = sm.contacts()
    assert set(stored) == {ADA}
    assert stored[ADA]["deleted"] is False
    assert stored[ADA]["tags"] == ["ZENDESK_SELL", "LEAD", "DELETED_IN_SELL"]


async def test_delete_ignored(store: Ledger, sm: Sandbox) -> None:
    """on_delete = ignore: nothing is sent and the contact stays as it was."""
    h = Harness(store, sm, on_delete="ignore")
    await h.once(lead(1, 1, "created", email=ADA))
    calls = sm.calls()
    result = await h.once(lead(1, 2, "deleted"))
    await h.close()
    assert isinstance(result, Skipped)
    assert result.reason == "on_delete = ignore"
    assert sm.calls() == calls
    assert sm.contacts()[ADA]["deleted"] is False


async def test_guard_keeps_a_contact_another_record_maps_to(h: Harness, sm: Sandbox) -> None:
    """A lead converted into a contact (same e-mail) is deleted in Sell: the SALESmanago contact stays, only the
    lead's own tag goes. (The lead wrote the contact before the contact existed; the contact then owns it.)"""
    await h.once(lead(1, 1, "created", email=ADA))
    await h.once(person(5, 1, "created", email=ADA))
    assert sm.contacts()[ADA]["tags"] == ["ZENDESK_SELL", "LEAD", "CONTACT"]
    result = await h.once(lead(1, 2, "deleted"))
    assert isinstance(result, Done)
    assert "contact:5" in result.detail
    stored = sm.contacts()[ADA]
    assert stored["deleted"] is False
    assert stored["tags"] == ["ZENDESK_SELL", "CONTACT"]
    assert sm.calls("contact/delete") == 0


async def test_a_guarded_delete_never_retires_the_contact_a_live_peer_is_linked_to(h: Harness, sm: Sandbox) -> None:
    """A lead and the contact it became share one SALESmanago contact, still under the old e-mail while the contact's
    e-mail change waits in the queue: deleting the lead leaves it, although no live person holds that e-mail."""
    await h.ingest(lead(1, 1, "created", email=ADA), person(5, 1, "created", email=ADA))
    await h.run()
    await h.ingest(person(5, 2, email="ada.new@example.org", previous={"email": ADA}), lead(1, 2, "deleted", email=ADA))
    works = await h.store.load_work(SINK, await h.store.claim(SINK, 100))
    [result] = await h.writer.deliver([w for w in works if w.key == "lead:1"])
    assert isinstance(result, Skipped) and "contact:5" in result.reason
    assert sm.contacts()[ADA]["deleted"] is False
    assert sm.calls("contact/delete") == 0


async def test_guard_waits_for_the_other_person_stream(h: Harness, sm: Sandbox) -> None:
    """A delete waits (Deferred) until every person stream has caught up after it, sending nothing."""
    await h.once(lead(1, 1, "created", email=ADA))
    calls = sm.calls()
    await h.ingest(lead(1, 2, "deleted"), caught_up=False)
    results = await h.run()
    assert isinstance(results["lead:1"], Deferred)
    assert sm.calls() == calls
    assert sm.contacts()[ADA]["deleted"] is False


# ---------------------------------------------------------------------------------------------------------------
# errors


async def test_rotated_secret_is_a_destination_error(h: Harness, sm: Sandbox) -> None:
    """After the account's secret is rotated, 'Not authenticated' pauses the destination (DestinationError) for a
    single key and a batch alike, and probe() fails until the secret matches again."""
    sm.control("credentials", {"api_secret": "rotated-secret"})
    await h.ingest(lead(1, 1, "created", email=ADA))
    assert isinstance(failed((await h.run())["lead:1"]), DestinationError)
    await h.ingest(lead(2, 1, "created", email="bob@example.org"))
    results = await h.run()
    assert [type(failed(r)) for r in results.values()] == [DestinationError, DestinationError]
    with pytest.raises(DestinationError, match="Not authenticated"):
        await h.writer.probe()
    sm.control("credentials", {"api_secret": SECRET})
    await h.writer.probe()
    assert sm.contacts() == {}


@pytest.mark.parametrize("status", [401, 403, 404])
async def test_refused_access_is_a_destination_error(h: Harness, sm: Sandbox, status: int) -> None:
    """HTTP 401/403, and 404 (no such API method: the wrong instance in base_url), pause the destination."""
    sm.fault(path="/api/", status=status)
    error = failed(await h.once(lead(1, 1, "created", email=ADA)))
    assert isinstance(error, DestinationError)
    assert error.http_status == status
    with pytest.raises(DestinationError):
        await h.writer.probe()


@pytest.mark.parametrize("status", [429, 503])
async def test_throttled_status_is_rate_limited_with_the_wait(h: Harness, sm: Sandbox, status: int) -> None:
    """429 and 503 are throttling: RateLimited carrying the Retry-After seconds."""
    sm.fault(path="/api/contact/upsert", status=status, headers={"Retry-After": "7"}, times=1)
    error = failed(await h.once(lead(1, 1, "created", email=ADA)))
    assert isinstance(error, RateLimited)
    assert error.retry_after == 7
    assert error.http_status == status


async def test_sandbox_rate_limit_is_rate_limited(h: Harness, sm: Sandbox) -> None:
    """The sandbox's own limit answered as 429 gives RateLimited with its Retry-After."""
    sm.control("behaviour", {"rate": "1/min", "throttle": "429"})
    await h.writer.probe()
    error = failed(await h.once(lead(1, 1, "created", email=ADA)))
    assert isinstance(error, RateLimited)
    assert error.retry_after is not None
    assert 0 < error.retry_after <= 60


async def test_limit_message_is_rate_limited(h: Harness, sm: Sandbox) -> None:
    """A success:false 'API calls limit exceeded' (HTTP 200) is throttling, for a batch too."""
    sm.control("behaviour", {"rate": "1/min", "throttle": "message"})
    await h.writer.probe()
    await h.ingest(lead(1, 1, "created", email=ADA), lead(2, 1, "created", email="bob@example.org"))
    results = await h.run()
    assert [type(failed(r)) for r in results.values()] == [RateLimited, RateLimited]


@pytest.mark.parametrize(
    "fault",
    [
        {"status": 500},
        {"status": 502, "body": "<html>Bad gateway</html>", "content_type": "text/html"},
        {"drop": True},
        {"malformed": True},
    ],
    ids=["500", "502-html", "dropped", "not-json"],
)
async def test_server_trouble_is_transient(h: Harness, sm: Sandbox, fault: dict[str, Any]) -> None:
    """5xx, a dropped connection and a reply that is not JSON are transient (retry later), never permanent."""
    sm.fault(path="/api/", times=1, **fault)
    error = failed(await h.once(lead(1, 1, "created", email=ADA)))
    assert type(error) is TransientError
    secret_free(error.request)


async def test_timeout_is_transient_and_the_retry_is_harmless(store: Ledger, sm: Sandbox) -> None:
    """A reply slower than the configured timeout is transient; the retry of a write that did happen updates the
    same contact (upserts match by e-mail), so nothing is duplicated."""
    h = Harness(store, sm, timeout=Duration(0.2))
    sm.fault(path="/api/contact/upsert", latency_after=0.5, times=1)
    error = failed(await h.once(lead(1, 1, "created", email=ADA)))
    assert type(error) is TransientError
    assert "did not answer in time" in error.message
    retried = await h.run()
    await h.close()
    assert isinstance(retried["lead:1"], Done)
    assert len(sm.contacts()) == 1
    assert sm.sandbox.state()["writes_per_email"] == {ADA: 2}


async def test_invalid_email_is_permanent_and_secret_free(h: Harness, sm: Sandbox) -> None:
    """success:false about the data is permanent: a human message without the e-mail, and the request with every
    credential removed."""
    sm.control("rules", {"reject_emails": [ADA]})
    error = failed(await h.once(lead(1, 1, "created", email=ADA, first_name="Ada")))
    assert isinstance(error, PermanentError)
    assert error.http_status == 200
    assert "Invalid email" in error.message
    assert ADA not in error.message
    request = secret_free(error.request)
    assert request["method"] == "contact/upsert"
    assert request["body"]["contact"]["email"] == ADA
    assert request["body"]["owner"] == OWNER


async def test_http_400_is_permanent(h: Harness, sm: Sandbox) -> None:
    """HTTP 400 on a single upsert is permanent for that record."""
    sm.fault(path="/api/contact/upsert", status=400, times=1)
    error = failed(await h.once(lead(1, 1, "created", email=ADA)))
    assert isinstance(error, PermanentError)
    assert error.http_status == 400


async def test_every_call_takes_the_shared_limiter(h: Harness, sm: Sandbox) -> None:
    """Each HTTP call (batches, single upserts, deletes and the probe) first acquires the shared limiter."""
    sm.control("rules", {"reject_emails": ["bad@example.org"]})
    await h.ingest(*(lead(n, 1, "created", email=e) for n, e in ((1, ADA), (2, "bad@example.org"), (3, "c@x.org"))))
    await h.run()
    await h.settle("lead:2")
    await h.once(lead(1, 2, "deleted"))
    await h.writer.probe()
    by_method = sm.sandbox.state()["requests_by_method"]
    assert by_method == {"contact/batchupsert": 2, "contact/delete": 1, "contact/hasContact": 1}
    assert h.limiter.acquired == sm.calls() == 4


# ---------------------------------------------------------------------------------------------------------------
# probe and fields


async def test_probe_checks_the_credentials(h: Harness, sm: Sandbox) -> None:
    """probe() passes with good credentials, calling contact/hasContact."""
    await h.writer.probe()
    assert sm.calls("contact/hasContact") == 1


async def test_probe_of_an_unknown_owner_is_a_destination_error(store: Ledger, sm: Sandbox) -> None:
    """An owner the account does not know is refused as 'Not authenticated, invalid owner'."""
    h = Harness(store, sm, owner="someone@example.com")
    with pytest.raises(DestinationError, match="invalid owner"):
        await h.writer.probe()
    await h.close()


async def test_probe_of_an_unreachable_destination_is_transient(store: Ledger, sm: Sandbox) -> None:
    """probe() against a port nothing listens on raises TransientError."""
    with ServerThread(AppSwitch()) as spare:
        url = spare.url
    writer = SalesmanagoWriter(config(url), lookups=store, limiter=Limiter(SINK, None), streams=["leads"])
    with pytest.raises(TransientError):
        await writer.probe()
    await writer.aclose()


async def test_fields_lists_the_fixed_contact_fields(h: Harness) -> None:
    """fields() lists SALESmanago's fixed contact fields and labels the free-form kinds as free-form."""
    fields = {f.key: f for f in await h.writer.fields()}
    for key in ("contact.email", "contact.name", "contact.phone", "contact.state", "address.country", "birthday"):
        assert key in fields
    assert fields["contact.email"].editable is False
    assert fields["contact.state"].options is not None
    assert "CUSTOMER" in fields["contact.state"].options
    for key in ("property.<name>", "number.<name>", "date.<name>"):
        assert "free-form" in fields[key].label


async def test_a_late_write_check_writes_the_contact_again_even_unchanged(h: Harness, sm: Sandbox) -> None:
    """A key's late-write check (reassert) writes the latest state again although its digest is unchanged (a late
    write may have changed the contact since); without it the unchanged contact is skipped."""
    assert isinstance(await h.once(lead(1, 1, "created", email=ADA)), Done)
    [work] = await h.store.load_work(SINK, ["lead:1"])
    assert [r.reason for r in await h.writer.deliver([work]) if isinstance(r, Skipped)] == [
        "unchanged since the last write"
    ]
    [result] = await h.writer.deliver([dataclasses.replace(work, reassert=True)])
    assert isinstance(result, Done)
    assert sm.sandbox.state()["writes_per_email"] == {ADA: 2}
