"""What writers look up in the store besides people (syncd.sinks.base), against a real store."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.events import Contact, Lead
from syncd.ledger import Ledger
from syncd.sinks.base import organisation_name
from tests.factories import event


@pytest.mark.parametrize(
    ("record", "expected"),
    [
        (Contact(id=5, organization_id=70), "Analytical Engines Ltd"),
        (Contact(id=5, organization_id=71), None),  # deleted in Sell: no live organisation by that id
        (Contact(id=5, organization_id=72), None),  # never seen
        (Contact(id=5), ""),  # belongs to none
        (Lead(id=9, organization_name="Engines"), ""),  # a lead names its organisation itself
    ],
)
async def test_organisation_name(tmp_path: Path, record: Contact | Lead, expected: str | None) -> None:
    """A contact's company is its live Sell organisation's name; "" for none, None when syncd knows none by the id."""
    async with await Ledger.open(tmp_path / "syncd.db", sinks=["ontraport"]) as store:
        organisations = [
            event("contact", 70, 1, "created", is_organization=True, name="Analytical Engines Ltd"),
            event("contact", 71, 1, "created", is_organization=True, name="Gone Ltd"),
            event("contact", 71, 2, "deleted"),
        ]
        await store.ingest("contacts", organisations, position="c1", at_top=True)
        assert await organisation_name(store, record) == expected
