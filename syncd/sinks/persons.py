"""A Sell person (lead or contact, organisations included) in a destination: the one write its pending changes
amount to, which contact a write targets, what a write whose outcome was lost may have left, what a delete does,
which of several people with one e-mail owns the contact, and which other people must be written again because of
this one (an organisation's members after its rename, the next owner of an e-mail this one let go of).

Everything here is pure except `gather`, `ask` and `follow_up`: the first two put to the store (through `Lookups`)
every question a decision needs BEFORE it is made, the last queues the people the decision says must be written
again (`follow_ups`). The writers make the destination's own calls and carry out the plans.

The words both writers use:

- the record's **own contact**: the destination contact it wrote (its link: the remote id, and the e-mail last
  written, `sent["email"]`), or, when it wrote none, the one its e-mail leads to.
- a **leftover**: a contact under an e-mail the record had before (`PersonChange.earlier_emails`), which a write
  whose outcome was lost may have made or renamed, and which no other live Sell person holds: none has that
  e-mail, and none is linked to the contact under it. Anyone with the e-mail keeps it, whatever they are linked
  to: a leftover is only suspected to be this record's.
- another live person **maps to** the own contact when it is linked to it, or has an e-mail that reaches it and
  is not linked to a different contact (it would write to that one). A delete keeps the contact for such people.
- **removing** a contact applies `on_delete` to it: "delete" deletes it, "tag" tags it ("ignore" removes nothing).
- **several Sell people with one e-mail** (Sell allows it; both destinations key people by e-mail) share one
  destination contact, which has ONE **owner** at a time, by `shared_email`: "contact_first" (the default: a
  contact before a lead, then the newest), "newest" (the record created last), or "skip" (none while several
  share it). The others are held back (skipped with the reason), so the contact never flaps between them; when
  the owner lets go of the e-mail (deleted, or its e-mail changed), the next owner is written at once. A contact
  kept by id (Ontraport) is kept by the first, by the same order, of the records linked to it; one that loses it
  writes a contact of its own.
- an **organisation** (a Sell contact with `is_organization`) is written like a person when it has an e-mail
  (`organisations = "contact"`), or never (`"skip"`: its deliveries are skipped and it maps to nothing). Its people
  show its name as their company, so when it appears or is renamed, its **members** (the live individual contacts
  that belong to it) are written again.

Identity: a destination that keys contacts by e-mail (SALESmanago) holds the own contact under the e-mail last
written (after a lost rename, the contact under the newer e-mail is a leftover); one that keys them by id
(Ontraport) keeps the id through a rename, so another person reaches the own contact by either e-mail, and the id
of a contact under an earlier e-mail must come from the destination itself.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from syncd.events import Contact, Lead, Record, email_of
from syncd.sinks.base import Lookups
from syncd.work import Deferred, KeyWork, Link, split_key

PERSON_STREAMS = ("leads", "contacts")
RECHECK_SECONDS = 1.0  # how soon a delete waiting for the person streams first looks again
RECHECK_MAX_SECONDS = 30.0  # the longest a delete still waiting for them goes without looking again
Identity = Literal["email", "id"]
OnDelete = Literal["delete", "tag", "ignore"]
Organisations = Literal["contact", "skip"]
ORGANISATIONS_SKIPPED = "an organisation, and organisations = skip"
ORGANISATION_WITHOUT_EMAIL = "an organisation without an e-mail: only one with an e-mail is written as a contact"
ORGANISATION_CHANGED = "organisation_changed"  # why its members are queued again
SharedEmail = Literal["newest", "contact_first", "skip"]
OWNER_CHANGED = "shared_email_owner"  # why the next owner of a shared e-mail (or a displaced record) is queued
REPAIR = "reconcile"  # why `syncd reconcile --repair` queues a record: its destination contact differs, or is missing
REWRITE_CAUSES = frozenset({OWNER_CHANGED, REPAIR})  # written even when unchanged since the last write

# ---------------------------------------------------------------------------------------------------------------
# coalescing: a key's pending deliveries become one write


@dataclass(frozen=True, slots=True)
class PersonChange:
    """What one person key needs in a destination now. Any run of creates and updates is ONE upsert of the latest
    known snapshot (the shadow); a delete supersedes every earlier update, so re-deliveries are harmless."""

    key: str
    seqs: tuple[int, ...]
    intent: Literal["upsert", "delete"]
    record: Lead | Contact | None  # the latest known snapshot (for a delete: the last one before it)
    deleted_ingested_at: float | None  # when syncd stored the delete (a delete waits from then on)
    # E-mails other than the latest that a destination may hold for this record: the one last written (the link),
    # and, when the key was tried before, those the pending changes passed through (a write with one of them may
    # have landed before a timeout or a crash lost its outcome). Newest first, lower-case.
    earlier_emails: tuple[str, ...] = ()
    # E-mails the record held since its last delivery and holds no longer (those of its pending changes, the one
    # last written, and a deleted record's last one): shared ones may have a new owner now.
    left_emails: tuple[str, ...] = ()
    # Written even if unchanged: queued because the destination contact it owns now held another record's data, or
    # the key's late-write check (a write that landed late may have changed the contact since).
    rewrite: bool = False


def earlier_emails(work: KeyWork, current: str, *, pending: bool | None = None) -> tuple[str, ...]:
    """The e-mails this record had across its pending deliveries (when a write with them may have been made: the
    key was tried; or always, with `pending`) and its last write, other than `current`."""
    seen: list[str] = []
    for delivery in reversed(work.deliveries if (work.tried if pending is None else pending) else ()):
        event = delivery.event
        old = event.previous.get("email")
        for email in (email_of(event.record), old.strip().lower() if isinstance(old, str) else ""):
            if email and email != current and email not in seen:
                seen.append(email)
    sent = last_email(work.link)
    if sent and sent not in (current, *seen):
        seen.append(sent)
    return tuple(seen)


def coalesce_person(work: KeyWork) -> PersonChange:
    """The single write a person key's pending deliveries amount to."""
    latest: Lead | Contact | None = None
    if work.shadow is not None and isinstance(work.shadow.record, Lead | Contact):
        latest = work.shadow.record
    deleted = work.shadow.deleted if work.shadow is not None else False
    delete_times = [d.ingested_at for d in work.deliveries if d.event.action == "deleted"]
    if latest is None:
        # No shadow (cannot normally happen: ingest writes it in the same transaction); use the newest event.
        for delivery in reversed(work.deliveries):
            record = delivery.event.record
            if isinstance(record, Lead | Contact):
                latest = record
                deleted = delivery.event.action == "deleted"
                break
    # A deleted record has no current e-mail: every address it had may hold a contact a lost write left.
    current = "" if deleted or latest is None else email_of(latest)
    left = earlier_emails(work, current, pending=True)
    last = email_of(latest) if deleted and latest is not None else ""
    return PersonChange(
        key=work.key,
        seqs=work.seqs,
        intent="delete" if deleted else "upsert",
        record=latest,
        deleted_ingested_at=(max(delete_times) if delete_times else None) if deleted else None,
        earlier_emails=earlier_emails(work, current),
        left_emails=tuple(dict.fromkeys(e for e in (last, *left) if e)),
        # A new owner of a shared contact, or the key's late-write check: written even if unchanged.
        rewrite=work.reassert or any(d.event.cause in REWRITE_CAUSES for d in work.deliveries),
    )


# ---------------------------------------------------------------------------------------------------------------
# facts, gathered before any decision


@dataclass(frozen=True, slots=True)
class Policy:
    """How one destination treats people: how it identifies contacts, and what a Sell delete does there."""

    identity: Identity
    on_delete: OnDelete = "delete"
    grace: float = 0.0  # extra wait before a delete, on top of every person stream having caught up
    streams: tuple[str, ...] = PERSON_STREAMS  # the configured streams (a delete waits for the person ones)
    organisations: Organisations = "contact"
    shared_email: SharedEmail = "contact_first"


@dataclass(frozen=True, slots=True)
class Question:
    """Which other live Sell people hold the destination contact with this e-mail (or any, when "") and this
    remote id (when known): the store's `live_peers`."""

    email: str
    remote_id: str | None = None


Answers = Mapping[Question, tuple[str, ...]]  # the people (keys like "contact:5") for each question asked


@dataclass(frozen=True, slots=True)
class Facts:
    """Everything a decision about one person key reads."""

    change: PersonChange
    link: Link | None
    now: float = 0.0
    peers: Answers = field(default_factory=dict)
    caught_up: bool | None = None  # every person stream reached its top after the delete was due (None: not asked)
    members: tuple[str, ...] = ()  # an organisation's members, when its changes may change their company
    people: Mapping[str, Person] = field(default_factory=dict)  # what the rules between people read of each peer


@dataclass(frozen=True, slots=True)
class Own:
    """The record's own contact: its remote id (None when syncd holds no link), the e-mail it is addressed by (the
    one last written, else the record's; "" when there is neither), and the e-mails others reach it by."""

    remote_id: str | None
    email: str
    reach: tuple[str, ...]


def last_email(link: Link | None) -> str:
    """The e-mail the record's contact was last written with (lower-case; "" when none was)."""
    sent = link.sent.get("email") if link is not None and link.sent else None
    return sent.strip().lower() if isinstance(sent, str) else ""


def own_contact(change: PersonChange, link: Link | None, identity: Identity) -> Own:
    """The record's own contact (see the module docstring for the two identities)."""
    written = last_email(link)
    current = email_of(change.record) if change.record is not None else ""
    email = written or current
    reach = tuple(dict.fromkeys(e for e in ((email,) if identity == "email" else (current, written)) if e))
    return Own(link.remote_id if link is not None else None, email, reach)


def own_questions(own: Own) -> list[Question]:
    """Who maps to the own contact: by each e-mail that reaches it (and its remote id), or by its id alone."""
    return [Question(email, own.remote_id) for email in own.reach] or [Question("", own.remote_id)]


def leftover_questions(change: PersonChange, link: Link | None, identity: Identity) -> list[Question]:
    """What the store is asked about each earlier e-mail: who has it; and, by e-mail, who is linked to the
    contact last written (the only one whose id syncd knows before asking the destination)."""
    questions = [Question(email) for email in change.earlier_emails]
    linked = link.remote_id if link is not None else None
    if identity == "email" and linked and last_email(link) in change.earlier_emails:
        questions.append(Question("", linked))
    return questions


async def ask(lookups: Lookups, work: KeyWork, questions: Iterable[Question]) -> dict[Question, tuple[str, ...]]:
    """The store's answer to each question (I/O)."""
    answers: dict[Question, tuple[str, ...]] = {}
    for question in dict.fromkeys(questions):
        found = await lookups.live_peers(
            work.sink, work.kind, work.record_id, email=question.email, remote_id=question.remote_id
        )
        answers[question] = tuple(found)
    return answers


async def gather(lookups: Lookups, work: KeyWork, change: PersonChange, policy: Policy, *, now: float) -> Facts:
    """The facts every decision about this key reads (I/O): the peers of its earlier e-mails; for a delete that is
    due whether the person streams caught up since and who maps to its own contact; for an upsert who else has its
    e-mail (and, by id, who else is linked to its contact); unless the decision waits, who has each e-mail it let
    go of; what each of those peers is; and for an organisation that appeared or was renamed, its members."""
    members = await organisation_members(lookups, work) if organisation_changed(work, change) else ()
    if change.record is not None and skipped_organisation(change.record, policy):
        return Facts(change, work.link, now, members=members)
    questions = leftover_questions(change, work.link, policy.identity)
    caught_up: bool | None = None
    settled = True  # the decision will not wait: what follows from it is asked too
    if change.intent == "delete" and policy.on_delete != "ignore":
        due = delete_due_at(change, policy, now=now)
        settled = False
        if change.deleted_ingested_at is None:
            # No delete is pending (the key is written again, after the delete was carried out): nothing to wait for.
            caught_up = settled = True
            questions += own_questions(own_contact(change, work.link, policy.identity))
        elif now >= due:
            caught_up = await people_caught_up_since(lookups, policy, due)
            if caught_up:
                questions += own_questions(own_contact(change, work.link, policy.identity))
                settled = True
    questions += sharing_questions(change, work.link, policy.identity, settled=settled)
    peers = await ask(lookups, work, questions)
    people = await _people(lookups, peers)
    # Under organisations = "skip" an organisation writes nothing: it holds no destination contact, owns no
    # e-mail and keeps nothing from being removed.
    counted = {key for key, person in people.items() if counts(person, policy)}
    peers = {question: tuple(k for k in found if k in counted) for question, found in peers.items()}
    return Facts(change, work.link, now, peers, caught_up, members, {k: people[k] for k in counted})


def sharing_questions(change: PersonChange, link: Link | None, identity: Identity, *, settled: bool) -> list[Question]:
    """Who else has the record's e-mail (the destination contact may be another's), who else is linked to its
    contact (by id), and, when the decision does not wait, who has each e-mail it let go of (a new owner)."""
    questions: list[Question] = []
    if change.intent == "upsert" and change.record is not None:
        email = email_of(change.record)
        if email:
            questions.append(Question(email))
        if identity == "id" and link is not None and link.remote_id:
            questions.append(Question("", link.remote_id))
    if settled:
        questions += [Question(email) for email in change.left_emails]
    return questions


async def people_caught_up_since(lookups: Lookups, policy: Policy, since: float) -> bool:
    """Whether every person stream the destination reads reached its top at or after `since` (I/O): what a delete
    due by then waits for before it is carried out."""
    streams = [s for s in policy.streams if s in PERSON_STREAMS]
    return await lookups.streams_caught_up_since(streams, since)


async def _people(lookups: Lookups, peers: Answers) -> dict[str, Person]:
    """What each person in the answers is, from its shadow (I/O; none asked when nobody was found)."""
    found: dict[str, Person] = {}
    for key in dict.fromkeys(k for keys in peers.values() for k in keys):
        shadow = await lookups.shadow(*split_key(key))
        if shadow is not None and isinstance(shadow.record, Lead | Contact):
            found[key] = person_of(key, shadow.record)
    return found


def holders(peers: Answers, question: Question) -> tuple[str, ...]:
    """The answer to a question that was asked (a decision never reads one that was not)."""
    if question not in peers:
        raise KeyError(f"not asked of the store: {question}")
    return peers[question]


# ---------------------------------------------------------------------------------------------------------------
# leftovers, and which contact a write targets


def is_leftover(peers: Answers, email: str, remote_id: str | None = None) -> bool:
    """Whether the contact under an earlier `email` (with `remote_id`, when known) is a leftover: no other live
    Sell person has the e-mail, and none is linked to the contact."""
    if holders(peers, Question(email)):
        return False
    return remote_id is None or not holders(peers, Question("", remote_id))


def leftovers(facts: Facts, identity: Identity) -> tuple[str, ...]:
    """The earlier e-mails that may hold leftovers (newest first). By e-mail identity that is the answer (the link
    gives the id of the contact last written); by id identity, the destination still has to say which contact
    each e-mail leads to, and `is_leftover` decides with its id."""
    link = facts.link
    known = {last_email(link): link.remote_id} if identity == "email" and link is not None and link.remote_id else {}
    return tuple(email for email in facts.change.earlier_emails if is_leftover(facts.peers, email, known.get(email)))


@dataclass(frozen=True, slots=True)
class Target:
    """The contact an upsert to an e-mail-keyed destination writes: renamed from `rename_from` (`newEmail`, the
    contact id stays) or under the current e-mail; `leftovers` that exist are removed once it is written."""

    rename_from: str | None
    leftovers: tuple[str, ...]


def write_target(current: str, found_leftovers: Iterable[str], existing: Iterable[str]) -> Target:
    """Where a write goes when the record has leftovers, given the e-mails that `existing` contacts hold: the
    newest existing leftover is renamed to the current e-mail, unless the current e-mail has a contact of its own
    (a rename onto it would be refused: the write goes there); every other existing leftover is removed."""
    have = set(existing)
    held = [email for email in found_leftovers if email in have]
    if held and current not in have:
        return Target(held[0], tuple(held[1:]))
    return Target(None, tuple(held))


# ---------------------------------------------------------------------------------------------------------------
# what a delete does


@dataclass(frozen=True, slots=True)
class Keep:
    """The own contact stays, for `reason`: on_delete = "ignore", other live people map to it (`holders`), or the
    record lost its e-mail under on_delete = "ignore". `leftovers` (e-mails) are removed all the same."""

    reason: str
    holders: tuple[str, ...] = ()
    leftovers: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Remove:
    """Apply `mode` to the own contact (None: to the leftovers only) and to every leftover (e-mails)."""

    mode: Literal["delete", "tag"]
    own: Own | None
    leftovers: tuple[str, ...] = ()


IGNORED = "on_delete = ignore"


def delete_due_at(change: PersonChange, policy: Policy, *, now: float) -> float:
    """When a delete may first be carried out: its grace period after syncd stored it (now, when no delete is
    pending: the key is written again after its delete was carried out)."""
    if change.deleted_ingested_at is None:
        return now
    return change.deleted_ingested_at + policy.grace


def recheck_in(waited: float) -> float:
    """How soon a delete that has waited `waited` seconds for the person streams (since its grace ended) looks
    again: after a second at first, then after a quarter of its wait so far, at most RECHECK_MAX_SECONDS. Each look
    is a claim, a load and a commit of the key: during a long catch-up, a backlog of deletes looked at every second
    cost more than the ingest it waited for; this way it costs a few looks per delete, and a delete is carried out
    at most a quarter of its wait (or 30 s) after the streams caught up."""
    return min(RECHECK_MAX_SECONDS, max(RECHECK_SECONDS, waited / 4))


def plan_delete(facts: Facts, policy: Policy) -> Deferred | Keep | Remove:
    """What a Sell delete does to the destination. It waits (`Deferred`, not counted as an attempt) for its grace
    period and until every person stream has reached its top after that (a lead converted into a contact is then
    seen in both streams, whatever order they arrive in); the own contact stays while other live people map to it;
    leftovers are removed either way."""
    change, now = facts.change, facts.now
    if policy.on_delete == "ignore":
        return Keep(IGNORED)
    due = delete_due_at(change, policy, now=now)
    if now < due:
        return Deferred(change.key, due, "delete waits for its grace period")
    if not facts.caught_up:
        at = now + recheck_in(now - due)
        return Deferred(change.key, at, "delete waits until every person stream has caught up")
    own = own_contact(change, facts.link, policy.identity)
    peers = sorted({p for question in own_questions(own) for p in holders(facts.peers, question)})
    found = leftovers(facts, policy.identity)
    if peers:
        reason = f"not deleted: {', '.join(peers)} still maps to the same destination contact"
        return Keep(reason, tuple(peers), found)
    return Remove(policy.on_delete, own, tuple(email for email in found if email != own.email))


async def located_keep(lookups: Lookups, work: KeyWork, remote_id: str) -> Keep | None:
    """A delete's own contact found in the destination by its e-mail (the record holds no link: it never wrote
    it, or another record owns its e-mail) is removed, like a leftover, only while no other live person is linked
    to it: one whose e-mail change waits to be written still holds it there (I/O: the store is asked once the
    destination said which contact it is). None: nobody is; else why it stays."""
    question = Question("", remote_id)
    found = (await ask(lookups, work, [question]))[question]
    if not found:
        return None
    return Keep(f"not deleted: {', '.join(found)} is linked to the contact under its e-mail", found)


def plan_lost_email(facts: Facts, policy: Policy, *, reason: str) -> Keep | Remove | None:
    """A record whose e-mail is gone, in an e-mail-keyed destination: the contacts written under the e-mails it
    had stand for no one and are removed, or kept under on_delete = "ignore". None when it left none."""
    found = leftovers(facts, policy.identity)
    if not found:
        return None
    if policy.on_delete == "ignore":
        return Keep(f"{reason} ({IGNORED}: its old contact stays)")
    return Remove(policy.on_delete, None, found)


# ---------------------------------------------------------------------------------------------------------------
# organisations


def is_organisation(record: Record) -> bool:
    """Whether a Sell record is an organisation (a contact with `is_organization`)."""
    return isinstance(record, Contact) and record.is_organization


def skipped_organisation(record: Record, policy: Policy) -> str | None:
    """Why nothing of this record is written, deleted or looked for in the destination: an organisation under
    organisations = "skip" (None otherwise)."""
    return ORGANISATIONS_SKIPPED if policy.organisations == "skip" and is_organisation(record) else None


def organisation_without_email(record: Record) -> str | None:
    """Why an upsert of this record writes nothing: an organisation without an e-mail (a person without one may
    still be found by a destination's external id; an organisation is only ever written by its e-mail)."""
    return ORGANISATION_WITHOUT_EMAIL if is_organisation(record) and not email_of(record) else None


def organisation_changed(work: KeyWork, change: PersonChange) -> bool:
    """Whether an organisation's pending changes may change the company its members show: it appeared (its
    members may have been written before it was known) or was renamed. (Its delete changes nothing there: a
    destination keeps a company no longer named.)"""
    if change.record is None or not is_organisation(change.record):
        return False
    return any(d.event.introduces or "name" in d.event.previous for d in work.deliveries)


async def organisation_members(lookups: Lookups, work: KeyWork) -> tuple[str, ...]:
    """The live individual contacts that belong to the organisation of `work` (I/O: the reference index)."""
    found = await lookups.belonging_to("contact", [work.key])
    return tuple(
        f"contact:{s.record_id}"
        for s in found
        if not s.deleted and isinstance(s.record, Contact) and not s.record.is_organization
    )


# ---------------------------------------------------------------------------------------------------------------
# several Sell people with one e-mail: one owner of the destination contact


@dataclass(frozen=True, slots=True)
class Person:
    """What the rules between several Sell people read of one of them."""

    key: str
    kind: str
    record_id: int
    email: str
    created_at: datetime | None
    organisation: bool


def person_of(key: str, record: Lead | Contact) -> Person:
    kind, record_id = split_key(key)
    return Person(key, kind, record_id, email_of(record), record.created_at, is_organisation(record))


def counts(person: Person, policy: Policy) -> bool:
    """Whether the destination writes this person at all (an organisation under organisations = "skip" not)."""
    return not (person.organisation and policy.organisations == "skip")


_OLDEST = datetime.min.replace(tzinfo=UTC)


def rank(person: Person, shared_email: SharedEmail) -> tuple[bool | datetime | int, ...]:
    """The order in which people claim a destination contact, highest first: "newest" by the time the record was
    created in Sell; "contact_first" (and, between records linked to one contact, "skip") a contact before a
    lead, then the newest. Ties go to the kind, then the higher id, so every writer decides alike."""
    created = person.created_at or _OLDEST
    contact = person.kind == "contact"
    if shared_email == "newest":
        return (created, contact, person.record_id)
    return (contact, created, person.record_id)


def owner_of(people: Iterable[Person], policy: Policy) -> Person | None:
    """The one of several live Sell people with one e-mail whose record the destination contact is written from:
    the first by `rank`; none under "skip" while there are several (or when none is written at all)."""
    candidates = [person for person in people if counts(person, policy)]
    if not candidates or (len(candidates) > 1 and policy.shared_email == "skip"):
        return None
    return max(candidates, key=lambda person: rank(person, policy.shared_email))


def shared_contact(people: Iterable[Person], policy: Policy) -> tuple[str | None, tuple[str, ...]]:
    """Of the live people with one e-mail, the one its destination contact is written from (None: none is, under
    "skip") and the ones held back, by key: what `syncd status` shows."""
    counted = [person for person in people if counts(person, policy)]
    owner = owner_of(counted, policy)
    held = tuple(sorted(p.key for p in counted if owner is None or p.key != owner.key)) if len(counted) > 1 else ()
    return (owner.key if owner is not None else None), held


def myself(facts: Facts) -> Person | None:
    record = facts.change.record
    return person_of(facts.change.key, record) if record is not None else None


def held_back(facts: Facts, policy: Policy) -> str | None:
    """Why an upsert writes nothing: other live Sell people have the record's e-mail and the destination contact
    is written from one of them (or, under "skip", from none while they share it). None: the record owns it."""
    me = myself(facts)
    if me is None or not me.email or not counts(me, policy):
        return None
    others = [facts.people[key] for key in holders(facts.peers, Question(me.email)) if key in facts.people]
    if not others:
        return None
    owner = owner_of([*others, me], policy)
    if owner is None:
        return f"shared e-mail: {len(others) + 1} Sell records have it, and shared_email = skip writes none of them"
    if owner.key != me.key:
        return f"shared e-mail: the contact is written from {owner.key} (shared_email = {policy.shared_email})"
    return None


def keeps_link(facts: Facts, policy: Policy) -> bool:
    """Whether a record that keys its destination contact by id writes to the contact it is linked to: no other
    live person linked to that contact comes before it (`rank`; "skip" ranks as "contact_first" here). A contact
    another linked record renamed away belongs to the first of them; the others write contacts of their own."""
    link, me = facts.link, myself(facts)
    if link is None or not link.remote_id or me is None:
        return True
    linked = [facts.people[key] for key in holders(facts.peers, Question("", link.remote_id)) if key in facts.people]
    order: SharedEmail = "newest" if policy.shared_email == "newest" else "contact_first"
    return all(rank(me, order) > rank(other, order) for other in linked)


def follow_ups(facts: Facts, policy: Policy, *, wrote: bool = False) -> dict[str, tuple[str, ...]]:
    """Who must be written again after this decision, by why: an organisation's members (its name is their
    company); the new owner of each e-mail the record let go of; and, when the record wrote the contact it is
    linked to by id (it kept it), the other records linked to it with another e-mail (their data was there: each
    writes a contact of its own)."""
    queued: dict[str, list[str]] = {}
    if facts.members:
        queued[ORGANISATION_CHANGED] = list(facts.members)
    me = myself(facts)
    for email in facts.change.left_emails:
        question = Question(email)
        if question not in facts.peers:
            continue  # not asked: the decision waits
        others = [facts.people[key] for key in facts.peers[question] if key in facts.people]
        after = owner_of(others, policy)
        before = owner_of([*others, me], policy) if me is not None else after
        if after is not None and (before is None or before.key != after.key):
            queued.setdefault(OWNER_CHANGED, []).append(after.key)
    link = facts.link
    wrote_linked = wrote and policy.identity == "id" and link is not None and link.remote_id is not None
    if wrote_linked and link is not None and link.remote_id and me is not None and keeps_link(facts, policy):
        displaced = [key for key in facts.peers.get(Question("", link.remote_id), ()) if key in facts.people]
        queued.setdefault(OWNER_CHANGED, []).extend(k for k in displaced if facts.people[k].email != me.email)
    return {cause: tuple(dict.fromkeys(keys)) for cause, keys in queued.items() if keys}


async def follow_up(
    lookups: Lookups, work: KeyWork, facts: Facts, policy: Policy, *, wrote: bool = False
) -> dict[str, tuple[str, ...]]:
    """Queue the people `follow_ups` names (I/O), each with why; what was queued."""
    queued = follow_ups(facts, policy, wrote=wrote)
    for cause, keys in queued.items():
        await lookups.requeue(work.sink, keys, cause=cause)
    return queued
