"""`syncd status` shows how each destination treats several Sell records with one e-mail: its shared_email and
organisations settings, how many e-mails are shared, and which records are held back (keys, never e-mails)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from syncd.commands.cli import main
from syncd.ledger import Ledger
from tests.factories import event

ADA, BOB = "ada@example.org", "bob@example.org"


def write_config(tmp_path: Path, *, salesmanago: str, ontraport: str) -> Path:
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'[state]\npath = "{tmp_path / "syncd.db"}"\n'
        '[sell]\ntoken = "t"\nbase_url = "http://127.0.0.1:9"\n'
        '[sinks.salesmanago]\nbase_url = "http://127.0.0.1:9"\nclient_id = "c"\napi_secret = "s"\n'
        f'owner = "o@example.com"\n{salesmanago}\n'
        f'[sinks.ontraport]\nbase_url = "http://127.0.0.1:9"\napp_id = "a"\napi_key = "k"\n{ontraport}\n'
    )
    return config


def test_status_names_the_records_held_back_for_a_shared_email(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Per destination: its policy, the shared e-mails, and the held-back keys it implies (JSON and table)."""
    config = write_config(
        tmp_path,
        salesmanago='shared_email = "contact_first"',
        ontraport='shared_email = "skip"\norganisations = "skip"',
    )
    early, late = datetime(2026, 1, 1, tzinfo=UTC), datetime(2026, 6, 1, tzinfo=UTC)

    async def record() -> None:
        async with await Ledger.open(tmp_path / "syncd.db", sinks=("salesmanago", "ontraport")) as ledger:
            leads = [
                event("lead", 1, 1, "created", email=ADA, created_at=late),
                event("lead", 2, 1, "created", email=BOB),
            ]
            contacts = [
                event("contact", 5, 1, "created", email=ADA.upper(), created_at=early),
                event("contact", 70, 1, "created", email=BOB, is_organization=True, name="Office"),
                event("contact", 6, 1, "created", email="alone@example.org"),
            ]
            await ledger.ingest("leads", leads, position="l", at_top=True)
            await ledger.ingest("contacts", contacts, position="c", at_top=True)

    anyio.run(record)
    assert main(["status", "--config", str(config), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["shared_emails"] == {
        "salesmanago": {
            "shared_email": "contact_first", "organisations": "contact", "emails": 2, "held_back": 2,
            "held_back_keys": ["lead:1", "lead:2"],
        },
        "ontraport": {  # the organisation is never written there: bob's e-mail is not shared
            "shared_email": "skip", "organisations": "skip", "emails": 1, "held_back": 2,
            "held_back_keys": ["contact:5", "lead:1"],
        },
    }  # fmt: skip
    output = json.dumps(data)
    assert ADA not in output and BOB not in output
    assert main(["status", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert "salesmanago: shared_email = contact_first, organisations = contact: 2 shared e-mail(s); held back:" in table
    assert "held back: contact:5, lead:1" in table
