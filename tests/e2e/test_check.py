"""`syncd check`, `syncd fields` and the start-up mapping check, against the sandboxes over loopback."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.commands.cli import EX_CONFIG, main
from tests.e2e.world import SECRETS, World, world


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def test_fields_lists_ontraport_fields_from_its_meta(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    """`syncd fields --sink ontraport` shows the account's fields as /1/Contacts/meta describes them."""
    assert main(["fields", "--sink", "ontraport", "--config", str(w.config_file()), "--json"]) == 0
    fields = {f["key"]: f for f in json.loads(capsys.readouterr().out)}
    assert fields["firstname"]["label"] == "First Name"
    assert fields["f1557"]["options"] == {"1": "Gold", "2": "Silver"}
    assert fields["f1561"]["editable"] is False
    assert main(["fields", "--sink", "ontraport", "--config", str(w.config_file())]) == 0
    table = capsys.readouterr().out
    assert "f1557" in table
    assert "options: 1=Gold, 2=Silver" in table


def test_fields_lists_salesmanago_contact_fields(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    """`syncd fields --sink salesmanago` shows the fixed contact fields and the free-form property targets."""
    assert main(["fields", "--sink", "salesmanago", "--config", str(w.config_file()), "--json"]) == 0
    keys = {f["key"] for f in json.loads(capsys.readouterr().out)}
    assert {"contact.email", "contact.name", "contact.phone"} <= keys


def test_check_passes_with_good_credentials_and_mapping(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    """A working config: every credential accepted and every mapped field found; exit code 0."""
    file = w.config_file(
        sm='[sinks.salesmanago.fields]\n"industry" = "property.industry"\n',
        op='[sinks.ontraport.fields]\n"custom.Tier" = "f1557"\n"twitter" = "f1559"\n',
    )
    assert main(["check", "--config", str(file)]) == 0
    out = capsys.readouterr().out
    assert "ok    Sell" in out
    assert "ok    salesmanago: the credentials are accepted" in out
    assert "ok    ontraport: 2 mapped field(s) fit" in out


def test_check_names_the_config_key_of_each_mapping_problem(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    """Unknown or read-only destination keys and unknown Sell fields are each reported with their config key."""
    file = w.config_file(
        sm='[sinks.salesmanago.fields]\n"industry" = "nowhere.industry"\n',
        op='[sinks.ontraport.fields]\n"industry" = "f9999"\n"title" = "f1561"\n"shoe_size" = "f1559"\n',
    )
    assert main(["check", "--config", str(file)]) == EX_CONFIG
    out = capsys.readouterr().out
    assert f'FAIL  {file}: sinks.ontraport.fields."industry": ' in out
    assert 'sinks.ontraport.fields."title": ' in out
    assert "read-only" in out
    assert 'sinks.ontraport.fields."shoe_size": unknown Sell field' in out
    assert 'sinks.salesmanago.fields."industry": ' in out


def test_check_reports_refused_credentials_without_showing_them(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    """Revoked keys are reported per API with exit code 1, and no secret appears in the output."""
    w.sm.post("credentials", {"api_secret": "rotated-secret"})
    w.op.post("credentials", {"api_key": "rotated-key"})
    assert main(["check", "--config", str(w.config_file())]) == 1
    captured = capsys.readouterr()
    assert "FAIL  salesmanago: credentials refused" in captured.out
    assert "FAIL  ontraport: credentials refused" in captured.out
    for secret in SECRETS:
        assert secret not in captured.out + captured.err


def test_run_refuses_to_start_with_an_unknown_sell_field(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    """`syncd run` stops before doing anything when a mapping names a Sell field that does not exist (exit 78)."""
    file = w.config_file(op='[sinks.ontraport.fields]\n"shoe_size" = "f1559"\n')
    assert main(["run", "--config", str(file), "--until-idle"]) == EX_CONFIG
    err = capsys.readouterr().err
    assert f'{file}: sinks.ontraport.fields."shoe_size": unknown Sell field' in err
    assert not (w.tmp_path / "syncd.db").exists()
