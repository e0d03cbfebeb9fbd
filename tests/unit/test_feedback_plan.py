"""The pure core of feedback to Sell: which outcomes it notes, the tags and texts they call for, the read-merge-write
of Sell's whole tag set (a person's tags never removed, syncd's own removed once unwanted), and the recognition of
the Firehose's echo of syncd's own write."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import msgspec
import pytest

from syncd.config import FeedbackSink
from syncd.feedback.plan import (
    Status,
    clip,
    is_echo,
    managed,
    merge,
    noted,
    status_text,
    wanted,
)
from syncd.work import Dead, Deferred, Done, Outcome, Retry, Skipped, Waiting
from tests.factories import event

MANAGEABLE = frozenset({"synced-salesmanago", "rejected-salesmanago", "synced-ontraport", "rejected-ontraport"})
WHEN = datetime(2026, 11, 1, 12, 0, 2, tzinfo=UTC).timestamp()  # the factory's event time for sequence 2


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (Done("lead:1", (3,)), Status("delivered")),
        (Done("lead:1", (3,), wrote=False, detail="found again"), Status("delivered")),
        (Done("lead:1", (3,), unlink=True, detail="deleted"), Status("deleted", "deleted")),
        (Skipped("lead:1", (3,), "no e-mail"), Status("skipped", "no e-mail")),
        (Skipped("lead:1", (3,), "unchanged since the last write"), None),  # keeps the outcome it had
        (Dead("lead:1", (3,), "refused: bad phone", 400), Status("dead", "refused: bad phone")),
        (Retry("lead:1", 5.0, "503"), None),
        (Deferred("lead:1", 5.0, "waiting for streams"), None),
        (Waiting("lead:1", "contact:2", "not yet"), None),
    ],
)
def test_noted_outcomes(outcome: Outcome, expected: Status | None) -> None:
    """Only finishing outcomes that say something new become feedback statuses."""
    assert noted(outcome) == expected


@pytest.mark.parametrize(
    ("status", "text"),
    [
        (Status("delivered"), "delivered"),
        (Status("skipped", "no e-mail"), "skipped: no e-mail"),
        (Status("dead", "Ontraport answered 400"), "refused: Ontraport answered 400"),
        (Status("deleted", "deleted"), "deleted"),
        (Status("skipped"), "skipped"),
    ],
)
def test_status_text(status: Status, text: str) -> None:
    """The field's text names the outcome, and the reason of a skip or refusal."""
    assert status_text(status) == text


def test_clip_keeps_sells_limit() -> None:
    """A long reason is cut to Sell's 255 characters with an ellipsis; a short one is left alone."""
    assert clip("x" * 300) == "x" * 254 + "…" and len(clip("x" * 300)) == 255
    assert clip("short") == "short"


BOTH = {"salesmanago": FeedbackSink(), "ontraport": FeedbackSink(field="Ontraport status")}


@pytest.mark.parametrize(
    ("outcomes", "destinations", "tags", "fields"),
    [
        ({}, BOTH, (), {}),
        (
            {"salesmanago": Status("delivered"), "ontraport": Status("dead", "bad Tier")},
            BOTH,
            ("synced-salesmanago", "rejected-ontraport"),
            {"Ontraport status": "refused: bad Tier"},
        ),
        ({"salesmanago": Status("skipped", "no e-mail")}, BOTH, (), {}),  # skipped sets no tag by default
        (
            {"salesmanago": Status("skipped", "no e-mail")},
            {"salesmanago": FeedbackSink(skipped="not-in-salesmanago", field="Status")},
            ("not-in-salesmanago",),
            {"Status": "skipped: no e-mail"},
        ),
        (
            {"salesmanago": Status("delivered"), "ontraport": Status("delivered")},
            {
                "salesmanago": FeedbackSink(delivered="synced", field="Sync"),
                "ontraport": FeedbackSink(delivered="synced", field="Sync"),
            },
            ("synced",),
            {"Sync": "salesmanago: delivered; ontraport: delivered"},
        ),
        ({"salesmanago": Status("delivered")}, {"salesmanago": FeedbackSink(delivered="")}, (), {}),
        ({"ontraport": Status("delivered")}, {"salesmanago": FeedbackSink()}, (), {}),  # not feeding back
    ],
)
def test_wanted(
    outcomes: dict[str, Status], destinations: dict[str, FeedbackSink], tags: tuple[str, ...], fields: dict[str, str]
) -> None:
    """Each destination's outcome sets its configured tag and field text; a shared field names each destination."""
    found = wanted(outcomes, destinations)
    assert (found.tags, found.fields) == (tags, fields)


def test_managed_tags_are_every_configured_tag() -> None:
    """The tags feedback may remove are exactly those it may set."""
    assert managed(BOTH) == MANAGEABLE


@pytest.mark.parametrize(
    ("current", "want", "owned", "tags", "owns", "changed"),
    [
        # a first write: the person's tags first, in their order, then syncd's
        (["vip"], ["synced-salesmanago"], [], ["vip", "synced-salesmanago"], ["synced-salesmanago"], True),
        # syncd's earlier tag no longer wanted goes; the person's stays
        (
            ["vip", "rejected-ontraport"],
            ["synced-ontraport"],
            ["rejected-ontraport"],
            ["vip", "synced-ontraport"],
            ["synced-ontraport"],
            True,
        ),
        # a wanted tag the person had already set stays the person's (never removed later)
        (["synced-salesmanago"], ["synced-salesmanago"], [], ["synced-salesmanago"], [], False),
        (["synced-salesmanago"], [], [], ["synced-salesmanago"], [], False),
        # a tag syncd owned that a person removed meanwhile is not added back unless wanted, nor owned any more
        (["vip"], [], ["rejected-ontraport"], ["vip"], [], False),
        # nothing to do: already as wanted
        (["vip", "synced-ontraport"], ["synced-ontraport"], ["synced-ontraport"], ["vip", "synced-ontraport"],
         ["synced-ontraport"], False),
        # an owned tag outside what feedback may set (config changed) is never removed
        (["vip", "old-tag"], [], ["old-tag"], ["vip", "old-tag"], [], False),
        # after a crash the write had landed: owned noted before the write, so nothing is doubled or lost
        (["vip", "synced-salesmanago"], ["synced-salesmanago"], ["synced-salesmanago"], ["vip", "synced-salesmanago"],
         ["synced-salesmanago"], False),
        # duplicates in Sell's answer collapse
        (["vip", "vip"], ["synced-salesmanago"], [], ["vip", "synced-salesmanago"], ["synced-salesmanago"], True),
    ],
)  # fmt: skip
def test_merge(
    current: list[str], want: list[str], owned: list[str], tags: list[str], owns: list[str], changed: bool
) -> None:
    """Read, merge, write: a person's tags are never removed; syncd's unwanted ones are; ownership is tracked."""
    found = merge(current, want, owned, MANAGEABLE)
    assert (list(found.tags), list(found.owned), found.changed) == (tags, owns, changed)


def lead_update(previous: dict[str, Any], *, tags: list[str], custom: dict[str, Any] | None = None) -> Any:
    return event("lead", 1, 2, "updated", previous=previous, tags=tags, custom=custom or {}, email="ada@example.org")


WRITE = {"tags": ["vip", "synced-salesmanago"], "fields": {"Ontraport status": "refused: bad Tier"}, "at": WHEN}
FIELDS = {"Ontraport status"}


@pytest.mark.parametrize(
    ("previous", "tags", "custom", "writes", "echo"),
    [
        # syncd's write, under both readings of `previous` (written keys, or only the changed ones)
        ({"tags": ["vip"], "custom": {"Ontraport status": None}}, ["vip", "synced-salesmanago"],
         {"Ontraport status": "refused: bad Tier"}, [WRITE], True),
        ({"tags": ["vip"]}, ["synced-salesmanago", "vip"], {"Ontraport status": "refused: bad Tier"}, [WRITE], True),
        # a person's change of anything else is no echo, even beside the tags
        ({"tags": ["vip"], "last_name": "Lovelace"}, ["vip", "synced-salesmanago"],
         {"Ontraport status": "refused: bad Tier"}, [WRITE], False),
        # other tags than syncd wrote: a person's tag edit
        ({"tags": ["vip", "synced-salesmanago"]}, ["vip", "synced-salesmanago", "hot"],
         {"Ontraport status": "refused: bad Tier"}, [WRITE], False),
        # a custom field feedback does not write
        ({"custom": {"Tier": "Gold"}}, ["vip", "synced-salesmanago"],
         {"Ontraport status": "refused: bad Tier", "Tier": "Platinum"}, [WRITE], False),
        # the field does not hold what syncd wrote
        ({"custom": {"Ontraport status": None}}, ["vip", "synced-salesmanago"],
         {"Ontraport status": "typed by a person"}, [WRITE], False),
        # an older write of syncd's still matches (two writes, two echoes)
        ({"tags": ["vip"]}, ["vip", "rejected-ontraport"], {"Ontraport status": "refused: bad Tier"},
         [{**WRITE, "tags": ["vip", "rejected-ontraport"]}, WRITE], True),
        # a write of the field alone: tags not in `previous`
        ({"custom": {"Ontraport status": "delivered"}}, ["vip", "anything"], {"Ontraport status": "refused: bad Tier"},
         [{**WRITE, "tags": None}], True),
        ({"tags": ["vip"]}, ["vip", "anything"], {"Ontraport status": "refused: bad Tier"}, [{**WRITE, "tags": None}],
         False),
        # no write of syncd's, or one made long before: a person's change that happens to look the same
        ({"tags": ["vip"]}, ["vip", "synced-salesmanago"], {"Ontraport status": "refused: bad Tier"}, [], False),
        ({"tags": ["vip"]}, ["vip", "synced-salesmanago"], {"Ontraport status": "refused: bad Tier"},
         [{**WRITE, "at": WHEN - 3600}], False),
        # nothing in `previous`
        ({}, ["vip", "synced-salesmanago"], {"Ontraport status": "refused: bad Tier"}, [WRITE], False),
    ],
)  # fmt: skip
def test_is_echo(
    previous: dict[str, Any], tags: list[str], custom: dict[str, Any], writes: list[dict[str, Any]], echo: bool
) -> None:
    """Only the Firehose's `updated` of syncd's own write is its echo; a person's change in that window is not."""
    assert is_echo(lead_update(previous, tags=tags, custom=custom), writes, FIELDS) is echo


@pytest.mark.parametrize("action", ["created", "deleted", "snapshot"])
def test_only_an_update_is_an_echo(action: str) -> None:
    """A create, delete or backfill snapshot is never an echo."""
    change = event("lead", 1, 2, action, previous={"tags": ["vip"]}, tags=["vip", "synced-salesmanago"])  # type: ignore[arg-type]
    assert not is_echo(change, [WRITE | {"fields": {}}], FIELDS)


def test_deals_are_never_echoes() -> None:
    """Feedback writes leads and contacts only."""
    change = event("deal", 1, 2, "updated", previous={"tags": []}, tags=["synced-salesmanago"])
    assert not is_echo(change, [WRITE | {"fields": {}, "tags": ["synced-salesmanago"]}], FIELDS)


def test_feedback_sink_defaults() -> None:
    """Unset, delivered is synced-<destination> and dead is rejected-<destination>; the others set nothing."""
    assert FeedbackSink().tags("ontraport") == {
        "delivered": "synced-ontraport", "skipped": "", "dead": "rejected-ontraport", "deleted": "",
    }  # fmt: skip
    assert msgspec.structs.replace(FeedbackSink(), delivered="").tag("ontraport", "delivered") == ""
