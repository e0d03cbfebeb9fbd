"""A Sell person in a destination (syncd.sinks.persons): the pure decisions both writers carry out, table by table
(which contact a write targets, what lost writes left, what a delete does), and the facts `gather` asks a real
store for."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from syncd.events import ChangeEvent, Contact, Lead, email_of
from syncd.ledger import Ledger
from syncd.sinks.persons import (
    ORGANISATION_WITHOUT_EMAIL,
    ORGANISATIONS_SKIPPED,
    OWNER_CHANGED,
    RECHECK_MAX_SECONDS,
    RECHECK_SECONDS,
    Facts,
    Identity,
    Keep,
    OnDelete,
    Organisations,
    Own,
    Person,
    PersonChange,
    Policy,
    Question,
    Remove,
    SharedEmail,
    Target,
    coalesce_person,
    follow_ups,
    gather,
    held_back,
    holders,
    is_leftover,
    keeps_link,
    leftovers,
    organisation_changed,
    organisation_without_email,
    own_contact,
    owner_of,
    plan_delete,
    plan_lost_email,
    recheck_in,
    skipped_organisation,
    write_target,
)
from syncd.work import Deferred, Delivery, Done, KeyWork, Link, Shadow
from tests.factories import event
from tests.support import FakeClock

A, B, C = "a@x.org", "b@x.org", "c@x.org"
REMOTE = "remote-1"
PEER = "contact:9"
STORED = 500.0  # when syncd stored the delete


def change(
    *, email: str = A, earlier: tuple[str, ...] = (), intent: str = "delete", stored: float | None = STORED
) -> PersonChange:
    """Lead 1, deleted (by default) with `email` as its last known e-mail."""
    return PersonChange(
        key="lead:1",
        seqs=(1,),
        intent=intent,  # type: ignore[arg-type]
        record=Lead(id=1, email=email),
        deleted_ingested_at=stored if intent == "delete" else None,
        earlier_emails=earlier,
    )


def link(email: str | None = A, remote_id: str | None = REMOTE) -> Link:
    """A link to the contact last written with `email` (None: nothing recorded of the write)."""
    return Link(remote_id, "digest", {"email": email} if email is not None else None)


def nobody(*questions: Question) -> dict[Question, tuple[str, ...]]:
    """The store's answer "nobody" to each of `questions`."""
    return dict.fromkeys(questions, ())


OWN_A = Question(A, REMOTE)
OWN_B = Question(B, REMOTE)


def facts(
    c: PersonChange,
    linked: Link | None,
    peers: dict[Question, tuple[str, ...]],
    *,
    now: float = 600.0,
    caught: bool | None = True,
) -> Facts:
    """The facts `gather` would hand over: `peers`, and nobody for each leftover question not among them."""
    everyone = {Question(e): () for e in c.earlier_emails}
    if linked is not None and linked.remote_id:
        everyone[Question("", linked.remote_id)] = ()
    return Facts(c, linked, now, {**everyone, **peers}, caught)


def policy(identity: Identity = "email", on_delete: OnDelete = "delete", grace: float = 0.0) -> Policy:
    return Policy(identity, on_delete, grace)


# ---------------------------------------------------------------------------------------------------------------
# what a delete does


KEPT = f"not deleted: {PEER} still maps to the same destination contact"


@pytest.mark.parametrize(
    ("rules", "known", "expected"),
    [
        pytest.param(
            policy("email", "ignore"),
            facts(change(), link(), {}, caught=None),
            Keep("on_delete = ignore"),
            id="on_delete = ignore keeps the contact",
        ),
        pytest.param(
            policy("email", grace=300.0),
            facts(change(), link(), {}, caught=None),
            Deferred("lead:1", STORED + 300.0, "delete waits for its grace period"),
            id="inside its grace period: wait until it is over",
        ),
        pytest.param(
            policy("id", grace=40.0),
            facts(change(), link(), {}, caught=False),
            Deferred("lead:1", 600.0 + 15.0, "delete waits until every person stream has caught up"),
            id="a person stream has not caught up since: look again after a quarter of the wait so far",
        ),
        pytest.param(
            policy("email", grace=40.0),
            facts(change(), link(), nobody(OWN_A)),
            Remove("delete", Own(REMOTE, A, (A,))),
            id="past the grace, streams caught up, nobody else maps to the contact: removed",
        ),
        pytest.param(
            policy("id", "tag"),
            facts(change(), link(), nobody(OWN_A)),
            Remove("tag", Own(REMOTE, A, (A,))),
            id="on_delete = tag removes by tagging",
        ),
        pytest.param(
            policy("email"),
            facts(change(), link(), {OWN_A: (PEER,)}),
            Keep(KEPT, (PEER,)),
            id="a live peer with the e-mail (a lead and the contact it became) keeps it",
        ),
        pytest.param(
            policy("id"),
            facts(change(email=C), link(C), {Question(C, REMOTE): (PEER,)}),
            Keep(KEPT, (PEER,)),
            id="a live peer linked to the contact by remote id keeps it",
        ),
        pytest.param(
            policy("email"),
            facts(change(), None, nobody(Question(A))),
            Remove("delete", Own(None, A, (A,))),
            id="never written (no link): the record's own e-mail is checked and addressed",
        ),
        pytest.param(
            policy("email"),
            facts(change(email=""), None, nobody(Question(""))),
            Remove("delete", Own(None, "", ())),
            id="never written and no e-mail: nothing to address",
        ),
        pytest.param(
            policy("email"),
            facts(change(email=B), link(A), nobody(OWN_A)),
            Remove("delete", Own(REMOTE, A, (A,))),
            id="by e-mail the contact is under the e-mail last written, not the record's newer one",
        ),
        pytest.param(
            policy("id"),
            facts(change(email=B), link(A), {OWN_B: (PEER,), OWN_A: ()}),
            Keep(KEPT, (PEER,)),
            id="by id a peer on the record's newer e-mail (a lost rename may have taken it there) keeps it",
        ),
        pytest.param(
            policy("email"),
            facts(change(email=B, earlier=(B, A)), link(A), nobody(OWN_A)),
            Remove("delete", Own(REMOTE, A, (A,)), (B,)),
            id="a lost rename: the contact under the newer e-mail is a leftover, removed too",
        ),
        pytest.param(
            policy("email"),
            facts(change(email=B, earlier=(B, A)), None, {Question(B): (PEER,)}),
            Keep(KEPT, (PEER,), (A,)),
            id="a guarded delete still removes what a lost write left under an e-mail nobody has",
        ),
        pytest.param(
            policy("id", "tag"),
            facts(change(earlier=(C, A)), link(), {OWN_A: (), Question(C): (PEER,)}),
            Remove("tag", Own(REMOTE, A, (A,))),
            id="an earlier e-mail another live person has is never a leftover",
        ),
    ],
)
def test_plan_delete(rules: Policy, known: Facts, expected: Deferred | Keep | Remove) -> None:
    """Every branch of a delete: ignore, the grace period, the person streams, live peers by e-mail and by remote
    id, the two identities, lost renames and leftovers."""
    assert plan_delete(known, rules) == expected


@pytest.mark.parametrize(
    ("waited", "expected"),
    [
        pytest.param(0.0, RECHECK_SECONDS, id="just due: a second"),
        pytest.param(3.0, RECHECK_SECONDS, id="a few seconds: still a second"),
        pytest.param(20.0, 5.0, id="20 s: a quarter of it"),
        pytest.param(119.0, 29.75, id="two minutes: a quarter of it"),
        pytest.param(3600.0, RECHECK_MAX_SECONDS, id="an hour: never longer than the cap"),
    ],
)
def test_a_waiting_delete_looks_again_less_often_the_longer_it_waits(waited: float, expected: float) -> None:
    """A delete waiting for the person streams looks again after a second at first, then after a quarter of its
    wait so far, never more than RECHECK_MAX_SECONDS later."""
    assert recheck_in(waited) == expected


def test_a_decision_never_reads_what_the_store_was_not_asked() -> None:
    """A question nobody put to the store is an error, not an empty answer (which would let a delete through)."""
    with pytest.raises(KeyError, match="not asked"):
        holders({}, Question(A, REMOTE))
    with pytest.raises(KeyError):
        plan_delete(Facts(change(), link(), 600.0, {}, True), policy())


# ---------------------------------------------------------------------------------------------------------------
# leftovers, and the contact a write targets


@pytest.mark.parametrize(
    ("identity", "earlier", "linked", "peers", "expected"),
    [
        ("email", (), link(), {}, ()),
        ("email", (B, A), None, nobody(Question(B), Question(A)), (B, A)),
        ("email", (B, A), None, {Question(A): (), Question(B): (PEER,)}, (A,)),
        # the contact last written, still under its old e-mail, is linked to a live peer (whatever its e-mail now)
        ("email", (A,), link(A), {Question(A): (), Question("", REMOTE): (PEER,)}, ()),
        ("email", (A,), link(A), nobody(Question(A), Question("", REMOTE)), (A,)),
        # by id the link is not trusted for the e-mail's contact: the destination says which one it is
        ("id", (A,), link(A), nobody(Question(A)), (A,)),
    ],
)
def test_leftovers(
    identity: Identity,
    earlier: tuple[str, ...],
    linked: Link | None,
    peers: dict[Question, tuple[str, ...]],
    expected: tuple[str, ...],
) -> None:
    """An earlier e-mail holds a leftover only when no other live person has it, nor is linked to its contact."""
    c = change(intent="upsert", email=C, earlier=earlier)
    assert leftovers(Facts(c, linked, 0.0, peers), identity) == expected


@pytest.mark.parametrize(
    ("peers", "remote_id", "expected"),
    [
        (nobody(Question(A)), None, True),
        (nobody(Question(A), Question("", REMOTE)), REMOTE, True),
        ({Question(A): (PEER,)}, None, False),
        ({Question(A): (), Question("", REMOTE): (PEER,)}, REMOTE, False),
    ],
)
def test_is_leftover(peers: dict[Question, tuple[str, ...]], remote_id: str | None, expected: bool) -> None:
    """The one rule: nobody has the e-mail, and nobody is linked to the contact found under it."""
    assert is_leftover(peers, A, remote_id) is expected


@pytest.mark.parametrize(
    ("current", "found", "existing", "expected"),
    [
        (C, (B, A), {B, A}, Target(B, (A,))),  # the newest existing leftover is renamed; the others removed
        (C, (B, A), {A}, Target(A, ())),  # the newest that exists (a lost rename already took B away)
        (C, (B, A), {C, B}, Target(None, (B,))),  # the current e-mail has a contact: write there, remove B
        (C, (B,), set(), Target(None, ())),  # nothing exists: a plain write under the current e-mail
        (C, (), {C}, Target(None, ())),
    ],
)
def test_write_target(current: str, found: tuple[str, ...], existing: set[str], expected: Target) -> None:
    """Which contact an upsert to an e-mail-keyed destination writes, given which leftovers exist there."""
    assert write_target(current, found, existing) == expected


@pytest.mark.parametrize(
    ("on_delete", "peers", "expected"),
    [
        ("delete", nobody(Question(A), Question("", REMOTE)), Remove("delete", None, (A,))),
        ("tag", nobody(Question(A), Question("", REMOTE)), Remove("tag", None, (A,))),
        (
            "ignore",
            nobody(Question(A), Question("", REMOTE)),
            Keep("no e-mail (on_delete = ignore: its old contact stays)"),
        ),
        ("delete", {Question(A): (PEER,), Question("", REMOTE): ()}, None),
    ],
)
def test_a_record_that_lost_its_email(
    on_delete: OnDelete, peers: dict[Question, tuple[str, ...]], expected: Keep | Remove | None
) -> None:
    """Its contacts under the e-mails it had stand for no one: removed per on_delete; None when nothing was left
    (or another live person has the e-mail)."""
    c = change(intent="upsert", email="", earlier=(A,))
    decided = plan_lost_email(Facts(c, link(A), 0.0, peers), policy("email", on_delete), reason="no e-mail")
    assert decided == expected


@pytest.mark.parametrize(
    ("identity", "email", "linked", "expected"),
    [
        ("email", A, link(A), Own(REMOTE, A, (A,))),
        ("email", B, link(A), Own(REMOTE, A, (A,))),
        ("id", B, link(A), Own(REMOTE, A, (B, A))),
        ("id", B, link(None), Own(REMOTE, B, (B,))),
        ("email", B, None, Own(None, B, (B,))),
        ("id", "", None, Own(None, "", ())),
    ],
)
def test_own_contact(identity: Identity, email: str, linked: Link | None, expected: Own) -> None:
    """The own contact is addressed by the e-mail last written (else the record's); by id identity another person
    reaches it by either e-mail."""
    assert own_contact(change(email=email), linked, identity) == expected


# ---------------------------------------------------------------------------------------------------------------
# gathering the facts from a real store


async def stored_delete(tmp_path: Path, *, contact_too: bool, contacts_at_top: bool) -> tuple[Ledger, FakeClock]:
    """A real store holding a deleted lead (stored at t=500) and, optionally, a live contact with its e-mail."""
    clock = FakeClock(400.0)
    store = await Ledger.open(tmp_path / "syncd.db", sinks=["ontraport"], clock=clock)
    await store.ingest("leads", [event("lead", 1, 1, "created", email="a@x.org")], position="l1", at_top=True)
    page = [event("contact", 9, 1, "created", email="A@x.org")] if contact_too else []
    await store.ingest("contacts", page, position="c1", at_top=True)
    clock.now = 500.0
    await store.ingest("leads", [event("lead", 1, 2, "deleted")], position="l2", at_top=True)
    clock.now = 550.0
    await store.ingest("leads", [], position="l3", at_top=True)
    if contacts_at_top:
        await store.ingest("contacts", [], position="c2", at_top=True)
    return store, clock


@pytest.mark.parametrize(
    ("contact_too", "contacts_at_top", "grace", "now", "expected"),
    [
        (False, True, 0.0, 600.0, Remove),
        (False, False, 0.0, 600.0, Deferred),
        (True, True, 0.0, 600.0, Keep),
        (False, True, 300.0, 600.0, Deferred),
        (False, True, 40.0, 600.0, Remove),
        (False, True, 60.0, 600.0, Deferred),
    ],
)
async def test_gathered_facts_decide_a_delete(
    tmp_path: Path, contact_too: bool, contacts_at_top: bool, grace: float, now: float, expected: type
) -> None:
    """Against a real store: a delete waits for every person stream to catch up after it (plus the grace), and
    never removes a destination contact that another live Sell record maps to."""
    store, clock = await stored_delete(tmp_path, contact_too=contact_too, contacts_at_top=contacts_at_top)
    try:
        [work] = await store.load_work("ontraport", await store.claim("ontraport", 1))
        c = coalesce_person(work)
        assert c.intent == "delete" and c.deleted_ingested_at == 500.0
        clock.now = now
        rules = Policy("id", "delete", grace, ("leads", "contacts", "deals"))
        decided = plan_delete(await gather(store, work, c, rules, now=now), rules)
    finally:
        await store.close()
    assert isinstance(decided, expected)
    if isinstance(decided, Keep):
        assert decided.holders == (PEER,) and PEER in decided.reason


async def test_gather_asks_nothing_for_an_ignored_delete(tmp_path: Path) -> None:
    """on_delete = ignore needs no facts about streams or who maps to its contact: only the leftover questions
    and who has each e-mail it let go of (their next owner is written) are asked."""
    store, _ = await stored_delete(tmp_path, contact_too=True, contacts_at_top=True)
    try:
        [work] = await store.load_work("ontraport", await store.claim("ontraport", 1))
        c = coalesce_person(work)
        gathered = await gather(store, work, c, Policy("id", "ignore"), now=600.0)
    finally:
        await store.close()
    assert gathered.caught_up is None
    assert set(gathered.peers) == {Question(e) for e in (*c.earlier_emails, *c.left_emails)}


async def linked_peers(tmp_path: Path, *, peer_email: str, peer_remote: str) -> tuple[Ledger, FakeClock]:
    """A real store: lead 1 (a@x.org) linked to remote "X", contact 9 (`peer_email`) linked to `peer_remote`, and
    lead 1 then deleted with both person streams at the top."""
    clock = FakeClock(400.0)
    store = await Ledger.open(tmp_path / "syncd.db", sinks=["ontraport"], clock=clock)
    await store.ingest("leads", [event("lead", 1, 1, "created", email=A)], position="l1", at_top=True)
    await store.ingest("contacts", [event("contact", 9, 1, "created", email=peer_email)], position="c1", at_top=True)
    works = await store.load_work("ontraport", await store.claim("ontraport", 10))
    remotes = {"lead:1": "X", "contact:9": peer_remote}
    await store.commit("ontraport", [Done(w.key, w.seqs, remote_id=remotes[w.key]) for w in works])
    clock.now = 500.0
    await store.ingest("leads", [event("lead", 1, 2, "deleted")], position="l2", at_top=True)
    clock.now = 550.0
    await store.ingest("contacts", [], position="c2", at_top=True)
    return store, clock


@pytest.mark.parametrize(
    ("peer_email", "peer_remote", "expected"),
    [
        ("z@x.org", "X", Keep),  # linked to the same contact, whatever its e-mail
        (A, "X", Keep),  # the same e-mail and the same contact
        (A, "Y", Remove),  # the same e-mail, but it writes to a contact of its own
        ("z@x.org", "Y", Remove),
    ],
)
async def test_gathered_peers_by_remote_id(tmp_path: Path, peer_email: str, peer_remote: str, expected: type) -> None:
    """Against a real store: a live person linked to the own contact keeps it; one with the same e-mail keeps it
    unless it is linked to a different contact (it writes there)."""
    store, _ = await linked_peers(tmp_path, peer_email=peer_email, peer_remote=peer_remote)
    try:
        [work] = await store.load_work("ontraport", await store.claim("ontraport", 1))
        rules = Policy("id")
        decided = plan_delete(await gather(store, work, coalesce_person(work), rules, now=600.0), rules)
    finally:
        await store.close()
    assert isinstance(decided, expected)
    if isinstance(decided, Keep):
        assert decided.holders == (PEER,)


# ---------------------------------------------------------------------------------------------------------------
# organisations

ORG = {"is_organization": True, "name": "Engines Ltd"}


@pytest.mark.parametrize(
    ("fields", "organisations", "skipped", "without_email"),
    [
        ({**ORG, "email": A}, "contact", None, None),
        (ORG, "contact", None, ORGANISATION_WITHOUT_EMAIL),
        ({**ORG, "email": A}, "skip", ORGANISATIONS_SKIPPED, None),
        (ORG, "skip", ORGANISATIONS_SKIPPED, ORGANISATION_WITHOUT_EMAIL),
        ({"email": A}, "skip", None, None),  # a person is never an organisation
        ({}, "skip", None, None),  # nor is one without an e-mail (a destination may find it by an external id)
    ],
)
def test_which_organisations_are_written(
    fields: dict[str, Any], organisations: Organisations, skipped: str | None, without_email: str | None
) -> None:
    """organisations = skip leaves every organisation alone; an organisation is only ever written by its e-mail."""
    record = event("contact", 70, 1, "created", **fields).record
    rules = Policy("email", organisations=organisations)
    assert (skipped_organisation(record, rules), organisation_without_email(record)) == (skipped, without_email)


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ([event("contact", 70, 1, "created", **ORG)], True),  # people written before it was known get its name
        ([event("contact", 70, 2, **{**ORG, "name": "New"}, previous={"name": "Engines Ltd"})], True),
        ([event("contact", 70, 2, email=A, previous={"email": B}, **ORG)], False),  # its own e-mail only
        ([event("contact", 70, 2, "deleted", **ORG)], False),  # a destination keeps a company no longer named
        ([event("contact", 5, 2, first_name="Ada", previous={"name": "x"})], False),  # a person has no members
    ],
)
def test_which_changes_of_an_organisation_rewrite_its_members(changes: list[ChangeEvent], expected: bool) -> None:
    """An organisation that appears or is renamed has its members written again; other changes do not."""
    last = changes[-1]
    work = KeyWork(
        "salesmanago",
        f"contact:{last.record_id}",
        0,
        tuple(Delivery(n, e) for n, e in enumerate(changes)),
        Shadow("contact", last.record_id, last.sequence, last.action == "deleted", last.record),
        None,
    )
    assert organisation_changed(work, coalesce_person(work)) is expected


# ---------------------------------------------------------------------------------------------------------------
# several people with one e-mail

JAN, JUN = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)


def someone(key: str, created: datetime | None = None, *, email: str = A, organisation: bool = False) -> Person:
    kind, _, record_id = key.partition(":")
    return Person(key, kind, int(record_id), email, created, organisation)


OLD_CONTACT, NEW_LEAD = someone("contact:5", JAN), someone("lead:9", JUN)
NEW_CONTACT, OLD_LEAD = someone("contact:6", JUN), someone("lead:8", JAN)


@pytest.mark.parametrize(
    ("shared_email", "people", "expected"),
    [
        ("contact_first", [OLD_CONTACT, NEW_LEAD], "contact:5"),
        ("contact_first", [OLD_CONTACT, NEW_CONTACT, NEW_LEAD], "contact:6"),  # then the newest
        ("contact_first", [OLD_LEAD, NEW_LEAD], "lead:9"),
        ("newest", [OLD_CONTACT, NEW_LEAD], "lead:9"),
        ("newest", [NEW_CONTACT, NEW_LEAD], "contact:6"),  # a tie goes to the contact
        ("newest", [someone("lead:3"), someone("lead:4")], "lead:4"),  # unknown times: the higher id
        ("newest", [someone("lead:3", JAN), someone("lead:4")], "lead:3"),  # a known time beats none
        ("skip", [OLD_CONTACT, NEW_LEAD], None),
        ("skip", [NEW_LEAD], "lead:9"),
        ("contact_first", [], None),
    ],
)
def test_owner_of_a_shared_email(shared_email: SharedEmail, people: list[Person], expected: str | None) -> None:
    """One owner per destination contact: a contact before a lead then the newest, the newest, or none (skip)."""
    owner = owner_of(people, Policy("email", shared_email=shared_email))
    assert (owner.key if owner else None) == expected
    backwards = owner_of(list(reversed(people)), Policy("email", shared_email=shared_email))
    assert backwards == owner  # the order the store answers in never matters


def test_an_organisation_under_skip_owns_nothing() -> None:
    """Under organisations = skip an organisation is never written: it cannot own an e-mail."""
    org = someone("contact:70", JUN, organisation=True)
    assert owner_of([org, OLD_LEAD], Policy("email", organisations="skip")) == OLD_LEAD
    assert owner_of([org, OLD_LEAD], Policy("email")) == org


def shared(me: Lead | Contact, key: str, others: list[Person], *, linked: list[Person] = (), link: Link | None = None,
           left: tuple[str, ...] = ()) -> Facts:  # fmt: skip
    """Facts of an upsert of `me` whose e-mail `others` have too (and, by id, `linked` to its contact)."""
    c = PersonChange(key, (1,), "upsert", me, None, left_emails=left)
    peers: dict[Question, tuple[str, ...]] = {
        Question(email_of(me)): tuple(p.key for p in others if p.email == email_of(me))
    }
    for email in left:
        peers[Question(email)] = tuple(p.key for p in others if p.email == email)
    if link is not None and link.remote_id:
        peers[Question("", link.remote_id)] = tuple(p.key for p in linked)
    return Facts(c, link, peers=peers, people={p.key: p for p in [*others, *linked]})


def test_held_back_says_who_owns_the_contact() -> None:
    """A record that does not own its e-mail is held back, naming the owner; the owner is not."""
    lead = Lead(id=9, email=A, created_at=JUN)
    facts_ = shared(lead, "lead:9", [OLD_CONTACT])
    assert (
        held_back(facts_, Policy("email"))
        == "shared e-mail: the contact is written from contact:5 (shared_email = contact_first)"
    )
    assert held_back(facts_, Policy("email", shared_email="newest")) is None
    skipped = held_back(facts_, Policy("email", shared_email="skip"))
    assert skipped == "shared e-mail: 2 Sell records have it, and shared_email = skip writes none of them"
    assert held_back(shared(lead, "lead:9", []), Policy("email", shared_email="skip")) is None


@pytest.mark.parametrize(
    ("linked", "expected"),
    [
        ([], True),
        ([someone("lead:8", JAN, email=B)], True),  # a lead never comes before a contact
        ([someone("contact:7", JUN, email=B)], False),  # a newer contact, renamed to another e-mail, keeps it
        ([someone("contact:4", JAN, email=B)], True),
    ],
)
def test_a_contact_kept_by_id_stays_with_the_first_record_linked_to_it(linked: list[Person], expected: bool) -> None:
    """Of the records linked to one contact (by id), the first by the ownership order keeps it."""
    me = Contact(id=5, email=A, created_at=JAN.replace(month=3))
    facts_ = shared(me, "contact:5", [], linked=linked, link=link(A))
    assert keeps_link(facts_, Policy("id")) is expected


@pytest.mark.parametrize(
    ("shared_email", "remaining", "expected"),
    [
        ("contact_first", [OLD_LEAD], {OWNER_CHANGED: ("lead:8",)}),  # the owner left: the next one is written
        ("contact_first", [NEW_CONTACT, OLD_LEAD], {}),  # a record that was not the owner changes nothing
        ("skip", [OLD_LEAD], {OWNER_CHANGED: ("lead:8",)}),  # two shared it: the one left is written at last
        ("skip", [OLD_LEAD, NEW_LEAD], {}),
        ("contact_first", [], {}),
    ],
)
def test_who_is_written_again_when_a_record_lets_go_of_an_email(
    shared_email: SharedEmail, remaining: list[Person], expected: dict[str, tuple[str, ...]]
) -> None:
    """A record that left an e-mail (its e-mail changed, or it was deleted) has the next owner written at once."""
    me = Contact(id=5, email=B, created_at=JAN.replace(month=3))
    facts_ = shared(me, "contact:5", remaining, left=(A,))
    assert follow_ups(facts_, Policy("email", shared_email=shared_email)) == expected


def test_a_record_that_writes_its_linked_contact_queues_those_it_displaced() -> None:
    """Writing the contact kept by id overwrites what other linked records with another e-mail had there: they are
    queued to write contacts of their own; without a write (or when it left the contact) nobody is."""
    me = Contact(id=5, email=A, created_at=JAN.replace(month=3))
    renamed_away, sharer = someone("lead:8", JAN, email=B), someone("lead:7", JAN, email=A)
    facts_ = shared(me, "contact:5", [], linked=[renamed_away, sharer], link=link(A))
    assert follow_ups(facts_, Policy("id"), wrote=True) == {OWNER_CHANGED: ("lead:8",)}
    assert follow_ups(facts_, Policy("id"), wrote=False) == {}
    newer = someone("contact:9", JUN, email=B)
    assert follow_ups(shared(me, "contact:5", [], linked=[newer], link=link(A)), Policy("id"), wrote=True) == {}
