"""`syncd reconcile` end to end over loopback: the proof (zero differences after a sync), and what it finds, and
with --repair fixes, when someone changes or deletes contacts in a destination behind syncd's back."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd.commands.cli import main
from syncd.config import Config
from syncd.daemon import EXIT_OK, Daemon
from syncd.ratelimit import Limiter
from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.sell.history import item
from syncd.sinks.ontraport.http import OntraportApi
from syncd.sinks.salesmanago.http import SalesmanagoApi
from tests.e2e.world import World, world


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def box_of(w: World) -> SellSandbox:
    assert w.box is not None
    return w.box


async def synced(w: World) -> Config:
    """An account of 600 records with live changes, carried into both destinations."""
    box_of(w).generate(60, records=600, seed=8)
    config = w.config(sell='start = "backfill"')
    assert await w.run(config) == EXIT_OK
    return config


async def reconcile(config: Config, *, repair: bool = False) -> dict[str, Any]:
    """One reconciliation (the daemon runs it, then delivers what it queued): its result."""
    sinks = [s.name for s in config.enabled_sinks()]
    assert await Daemon(config, until_idle=True, handle_signals=False, reconcile=(sinks, repair)).run() == EXIT_OK
    with sqlite3.connect(config.state.path) as conn:
        (result,) = conn.execute("SELECT result FROM jobs WHERE kind = 'reconcile' ORDER BY id DESC LIMIT 1").fetchone()
    return dict(json.loads(result))


def problems(result: dict[str, Any], sink: str) -> dict[str, dict[str, list[str]]]:
    """{state: {key: fields}} of one destination's findings."""
    report = result["sinks"][sink]
    states = ("different", "missing", "extra")
    return {state: {f["key"]: f.get("fields", []) for f in report[state]} for state in states}


def lone_leads(box: SellSandbox, n: int) -> list[tuple[int, str]]:
    """`n` live leads (id, e-mail) whose e-mail no other live record has."""
    emails: dict[str, int] = {}
    for kind in ("lead", "contact"):
        for snap in box.records.live(kind):
            email = (snap.data.get("email") or "").lower()
            if email:
                emails[email] = emails.get(email, 0) + 1
    found = [
        (s.record_id, str(s.data["email"]).lower())
        for s in sorted(box.records.live("lead"), key=lambda s: s.record_id)
        if s.data.get("email") and emails[str(s.data["email"]).lower()] == 1 and s.data.get("last_name")
    ]
    return found[:n]


async def test_reconcile_reports_zero_differences_after_a_sync(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    """After a backfill and the live changes, every live person is present and equal in both destinations (those
    not synced by design are counted with their reason); the command says "zero differences" and exits 0."""
    config = await synced(w)
    result = await reconcile(config)
    for sink in ("salesmanago", "ontraport"):
        counts = result["sinks"][sink]["counts"]
        assert (counts["different"], counts["missing"], counts["extra"]) == (0, 0, 0), result["sinks"][sink]
        assert counts["equal"] > 300
    sell = result["sell"]
    assert sell["leads"] == len(list(box_of(w).records.live("lead")))
    assert sell["contacts"] == len(list(box_of(w).records.live("contact")))
    file = w.config_file()
    assert await anyio.to_thread.run_sync(main, ["reconcile", "--config", str(file)]) == 0
    assert "zero differences" in capsys.readouterr().out


async def test_reconcile_finds_and_repairs_what_changed_behind_syncds_back(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone renames a contact in SALESmanago, deletes one there, changes a last name in Ontraport, deletes one
    there, and brings back both destinations' contacts of a lead deleted in Sell: reconcile names each (by key,
    with the fields that differ) and exits 1; --repair queues them, the daemon delivers them, and the next
    reconcile finds zero differences."""
    box = box_of(w)
    config = await synced(w)
    (a, a_mail), (b, b_mail), (c, c_mail), (d, d_mail), (e, e_mail) = lone_leads(box, 5)
    # lead e is deleted in Sell, and syncd deletes it in both destinations
    now = datetime.fromtimestamp(box.now(), UTC)
    sequence = box.records.get("lead", e).sequence  # type: ignore[union-attr]
    box.append("leads", [item("lead", {"id": e}, action="deleted", sequence=sequence + 1, event_time=now)])
    assert await w.run(config) == EXIT_OK
    assert w.sm_contacts()[e_mail]["deleted"] is True and e_mail not in w.op_by_email()
    sm_config, op_config = config.sinks.salesmanago, config.sinks.ontraport
    assert sm_config is not None and sm_config.api_secret is not None and op_config is not None
    sm = SalesmanagoApi(sm_config, sm_config.api_secret, Limiter("salesmanago", None))
    op = OntraportApi(op_config, Limiter("ontraport", None))
    try:
        await sm.call("contact/upsert", {"contact": {"email": a_mail, "name": "Someone Else"}}, known=(a_mail,))
        await sm.call("contact/delete", {"email": b_mail}, known=(b_mail,))
        await sm.call("contact/upsert", {"contact": {"email": e_mail, "name": "Brought Back"}}, known=(e_mail,))
        op_ids = {email: str(contact["id"]) for email, contact in w.op_by_email().items()}
        await op.call("PUT", "/1/Contacts", body={"id": op_ids[c_mail], "lastname": "Changed Behind"})
        await op.call("DELETE", "/1/Contact", params={"id": op_ids[d_mail]})
        await op.call("POST", "/1/Contacts", body={"email": e_mail, "firstname": "Brought", "lastname": "Back"})
    finally:
        await sm.aclose()
        await op.aclose()

    file = w.config_file()
    assert await anyio.to_thread.run_sync(main, ["reconcile", "--config", str(file), "--json"]) == 1
    found = json.loads(capsys.readouterr().out)
    assert problems(found, "salesmanago") == {
        "different": {f"lead:{a}": ["name"]},
        "missing": {f"lead:{b}": []},
        "extra": {f"lead:{e}": []},
    }
    assert problems(found, "ontraport") == {
        "different": {f"lead:{c}": ["lastname"]},
        "missing": {f"lead:{d}": []},
        "extra": {f"lead:{e}": []},
    }
    assert all("@" not in json.dumps(found["sinks"][s]) for s in found["sinks"])  # keys only, never e-mails

    repaired = await reconcile(config, repair=True)
    assert repaired["repaired"] == {"salesmanago": 3, "ontraport": 3}
    after = await reconcile(config)
    for sink in ("salesmanago", "ontraport"):
        assert problems(after, sink) == {"different": {}, "missing": {}, "extra": {}}
    sm_now = w.sm_contacts()
    assert sm_now[a_mail]["name"] != "Someone Else" and sm_now[b_mail]["deleted"] is False
    assert sm_now[e_mail]["deleted"] is True
    op_now = w.op_by_email()
    assert op_now[c_mail]["lastname"] != "Changed Behind" and d_mail in op_now and e_mail not in op_now


async def test_reconcile_of_one_destination_reads_and_repairs_only_it(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--sink` narrows the proof to one destination: a last name changed in Ontraport behind syncd's back is no
    difference of SALESmanago's (exit 0, only it reported); `--sink ontraport --repair` names it, repairs it alone
    (the command runs the daemon and delivers the repair) and the next `--sink ontraport` finds zero differences."""
    box = box_of(w)
    await synced(w)
    [(lead, email)] = lone_leads(box, 1)
    op_config = w.config().sinks.ontraport
    assert op_config is not None
    op = OntraportApi(op_config, Limiter("ontraport", None))
    try:
        remote = str(w.op_by_email()[email]["id"])
        await op.call("PUT", "/1/Contacts", body={"id": remote, "lastname": "Changed Behind"})
    finally:
        await op.aclose()
    file = w.config_file()

    async def command(*args: str) -> tuple[int, dict[str, Any]]:
        code = await anyio.to_thread.run_sync(main, ["reconcile", "--config", str(file), "--json", *args])
        return code, dict(json.loads(capsys.readouterr().out))

    code, report = await command("--sink", "salesmanago")
    assert (code, set(report["sinks"])) == (0, {"salesmanago"})
    code, report = await command("--sink", "ontraport", "--repair")
    assert (code, set(report["sinks"])) == (1, {"ontraport"})
    assert problems(report, "ontraport")["different"] == {f"lead:{lead}": ["lastname"]}
    assert report["repaired"] == {"ontraport": 1}
    assert w.op_by_email()[email]["lastname"] != "Changed Behind"
    code, report = await command("--sink", "ontraport")
    assert code == 0 and report["sinks"]["ontraport"]["counts"]["different"] == 0
