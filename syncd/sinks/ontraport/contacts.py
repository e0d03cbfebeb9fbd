"""The Ontraport contact a Sell fact (a deal's purchases, a note) goes on: its person's, through the link syncd keeps.

A person Ontraport will never hold as Sell has it (an organisation under `organisations = "skip"`, an organisation
without an e-mail, a person without an e-mail when no external id field is set) makes the fact unreachable (skipped
with the reason) instead of waiting forever. A person held back because another Sell record with its e-mail owns
the Ontraport contact (`shared_email`) has its facts go on that contact: it is the same person there.
"""

from __future__ import annotations

from collections.abc import Callable

from syncd.config import OntraportConfig
from syncd.events import Contact, Lead, email_of
from syncd.sinks.base import Lookups
from syncd.sinks.dependencies import NotThere, Person, Unreachable, person_in
from syncd.work import split_key

SINK = "ontraport"


def never(config: OntraportConfig) -> Callable[[Lead | Contact], str | None]:
    """Why Ontraport can never hold a Sell person as it is (None when it can)."""

    def reason(record: Lead | Contact) -> str | None:
        organisation = isinstance(record, Contact) and record.is_organization
        if organisation and config.organisations == "skip":
            return "is an organisation, and organisations are not written (sinks.ontraport.organisations)"
        if not email_of(record):
            if organisation:
                return "is an organisation without an e-mail, which is not written"
            if not config.external_id_field:
                return "has no e-mail, and sinks.ontraport.external_id_field is not set"
        return None

    return reason


async def contact_for(
    lookups: Lookups, key: str, never: Callable[[Lead | Contact], str | None]
) -> Person | NotThere | Unreachable:
    """The person `key` names as Ontraport holds it: its own contact, else the contact another live Sell record with
    its e-mail was written as (the owner of a shared e-mail)."""
    person = await person_in(lookups, SINK, key, never=never)
    if not isinstance(person, NotThere) or not key:
        return person
    kind, record_id = split_key(key)
    shadow = await lookups.shadow(kind, record_id)
    if shadow is None or not isinstance(shadow.record, Lead | Contact) or not email_of(shadow.record):
        return person
    record = shadow.record
    for peer in await lookups.live_peers(SINK, kind, record_id, email=email_of(record), remote_id=None):
        link = await lookups.link(SINK, peer)
        if link is not None and link.remote_id:
            return Person(key, record, link)
    return person
