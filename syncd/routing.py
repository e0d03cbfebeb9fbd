"""Which destination receives which event, and under which key. Pure.

A key names one destination record (`lead:9001`): a dispatcher never works on one key twice at once, and coalesces
all pending deliveries of a key into the fewest calls.
"""

from __future__ import annotations

from state.keys import record_key
from syncd.events import PERSON_KINDS, ChangeEvent

# sink name -> the kinds it receives
ROUTES: dict[str, frozenset[str]] = {
    "salesmanago": PERSON_KINDS,
    "ontraport": PERSON_KINDS,
}


def route(sink: str, event: ChangeEvent) -> str | None:
    """The key under which `sink` receives `event`, or None when the sink does not take it."""
    if event.kind not in ROUTES.get(sink, frozenset()):
        return None
    if event.kind == "contact" and getattr(event.record, "is_organization", False):
        # Organisations are not people: they have no e-mail identity in either destination.
        return None
    return record_key(event.kind, event.record_id)
