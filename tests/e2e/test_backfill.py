"""Backfills end to end over loopback: an account whose history is older than the Firehose retention carried into
both destinations through the Core API, with changes made while the backfill runs; positions expired while the
daemon was stopped, re-synced or stopped by `on_expired`."""

from __future__ import annotations

import sqlite3
import subprocess
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import pytest
from structlog.testing import capture_logs

from syncd.config import Config
from syncd.daemon import EXIT_OK, EXIT_STREAM_FAILED, Daemon
from syncd.events import STREAM_KINDS
from syncd.health import problems
from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.sell.history import item
from tests.e2e.world import World, world
from tests.support import Processes, wait_until
from tests.terminal import Terminal

ALL_STREAMS = tuple(STREAM_KINDS)
PERSON_STREAMS = ("leads", "contacts")


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def box_of(w: World) -> SellSandbox:
    assert w.box is not None
    return w.box


def people(box: SellSandbox) -> dict[str, list[dict[str, Any]]]:
    """The live leads and contacts Sell holds with an e-mail (organisations too: destinations take them as
    contacts), by lower-case e-mail; several records may share one."""
    found: dict[str, list[dict[str, Any]]] = {}
    for kind in ("lead", "contact"):
        for snap in box.records.live(kind):
            email = (snap.data.get("email") or "").strip().lower()
            if email:
                found.setdefault(email, []).append({"kind": kind, **snap.data})
    return found


def name_of(data: dict[str, Any]) -> str:
    return " ".join(p for p in ((data.get("first_name") or "").strip(), (data.get("last_name") or "").strip()) if p)


def assert_destinations_hold(w: World, expected: dict[str, list[dict[str, Any]]], gone: set[str]) -> None:
    """Both destinations hold a contact for every e-mail of a live Sell record, people with the newest name (where
    one record alone has the e-mail), and none for the records deleted."""
    sm = {email: c for email, c in w.sm_contacts().items() if not c["deleted"]}
    op = w.op_by_email()
    assert set(sm) == set(expected)
    assert set(op) == set(expected)
    for email, records in expected.items():
        [data] = records if len(records) == 1 else [None]
        if data is None or data.get("is_organization"):
            continue
        assert sm[email]["name"] == name_of(data) or not name_of(data), email
        assert (op[email]["firstname"], op[email]["lastname"]) == (
            (data.get("first_name") or "").strip(),
            (data.get("last_name") or "").strip(),
        ), email
    assert not gone & set(sm)
    assert not gone & set(op)


def change(box: SellSandbox, kind: str, record_id: int, **changes: Any) -> None:
    """A change made in Sell now (the next sequence of the record, `previous` the old values)."""
    snap = box.records.get(kind, record_id)
    assert snap is not None
    data = {**snap.data, **changes}
    previous = {attr: snap.data.get(attr) for attr in changes}
    now = datetime.fromtimestamp(box.now(), UTC)
    box.append(
        f"{kind}s", [item(kind, data, action="updated", sequence=snap.sequence + 1, previous=previous, event_time=now)]
    )


def delete(box: SellSandbox, kind: str, record_id: int) -> None:
    snap = box.records.get(kind, record_id)
    assert snap is not None
    now = datetime.fromtimestamp(box.now(), UTC)
    box.append(
        f"{kind}s", [item(kind, {"id": record_id}, action="deleted", sequence=snap.sequence + 1, event_time=now)]
    )


def create(box: SellSandbox, kind: str, record_id: int, **data: Any) -> None:
    now = datetime.fromtimestamp(box.now(), UTC)
    record = {"id": record_id, "tags": [], "custom_field_values": [], "created_at": now.strftime("%Y-%m-%dT%H:%M:%SZ")}
    box.append(f"{kind}s", [item(kind, {**record, **data}, event_time=now)])


def ids(box: SellSandbox, kind: str, **where: Any) -> list[int]:
    return sorted(s.record_id for s in box.records.live(kind) if all(s.data.get(k) == v for k, v in where.items()))


def shadow(config: Config) -> dict[tuple[str, int], bool]:
    """(kind, id) -> deleted, for every record the store's shadow holds."""
    with sqlite3.connect(config.state.path) as conn:
        return {(k, i): bool(d) for k, i, d in conn.execute("SELECT kind, record_id, deleted FROM records")}


def lead_pages(box: SellSandbox) -> list[dict[str, list[str]]]:
    """The pages of the leads' listing a backfill read in id order (not its probes for the highest id)."""
    return [q for q in listings(box, "/v2/leads") if q["sort_by"] == ["id:asc"]]


def listings(box: SellSandbox, under: str = "/v2/") -> list[dict[str, list[str]]]:
    """The query of every v2 list request a backfill made (probes for the highest id included)."""
    found = []
    for request in box.requests(under):
        query = parse_qs(request["query"])
        if "page" in query and "ids" not in query:
            found.append(query)
    return found


@pytest.mark.slow
@pytest.mark.timeout(600)  # about 30 s on a 2-core machine with other work on it; a minute or more with it busy
async def test_a_fresh_deployment_carries_five_thousand_expired_records_and_the_changes_made_meanwhile(
    w: World,
) -> None:
    """An account of 5,000 records whose events have all expired, read with `start = "backfill"` while people keep
    changing it (records on pages already read and not yet read updated, one deleted before the page boundary,
    one created, an e-mail changed): every record reaches the shadow, every person both destinations, each with its
    newest version, and what was deleted is gone from both."""
    box = box_of(w)
    box.generate(200, records=5000, seed=1)
    assert sum(box.state()["records"].values()) >= 5000
    leads = ids(box, "lead")
    contacts = ids(box, "contact", is_organization=False)
    early, late = leads[5:8], leads[-3:]
    purged = leads[10:110]  # deleted together, once read: every later lead moves back 100 places
    # Hold one page of leads a while, once several are stored, and change Sell meanwhile.
    w.sell.fault(path="/v2/leads", after=6, times=1, latency=1.0)
    changed = threading.Event()
    read_before: list[int] = []  # the pages of leads asked for when the changes were done

    def meanwhile() -> None:
        wait_until(lambda: len(box.requests("/v2/leads")) >= 5, timeout=60, what="some pages of leads read")
        change(box, "lead", early[0], first_name="Early", last_name="Changed")
        change(box, "lead", early[0], first_name="Early", last_name="Twice")
        change(box, "lead", early[1], email="moved.early@example.org")
        delete(box, "lead", early[2])
        for record_id in purged:
            delete(box, "lead", record_id)
        change(box, "lead", late[0], first_name="Late", last_name="Changed")
        change(box, "contact", contacts[-1], first_name="Contact", last_name="Changed")
        create(box, "lead", 1_999_999, first_name="Brand", last_name="New", email="brand.new@example.org")
        read_before.append(len(lead_pages(box)))
        changed.set()

    worker = threading.Thread(target=meanwhile, daemon=True)
    worker.start()
    # Twelve streams at their top polled every 20 ms (the world's default) were up to 600 requests a second to the
    # simulator in this process: most of the run's time, taken from the delivery. Every change is still read.
    config = w.config(sell='start = "backfill"', streams=ALL_STREAMS, poll_interval="250ms")
    with capture_logs() as logs:
        assert await w.run(config) == EXIT_OK
    worker.join(timeout=10)
    assert changed.is_set()
    # The changes came before most of the leads were read: the late ones' page among those read after them.
    assert len(lead_pages(box)) >= read_before[0] + 2, (read_before, len(lead_pages(box)))
    [done] = [e for e in logs if e["event"] == "backfill_done"]
    assert done["records"] >= 5000
    assert done["quarantined"] == 0
    # The deletes moved every later lead back 101 places: the next page noticed and reached further back.
    assert any(e["event"] == "backfill_page_shifted" and e["part"] == "leads" for e in logs)
    expected = people(box)
    assert {"brand.new@example.org", "moved.early@example.org"} <= set(expected)
    gone = {str(box.records.latest("lead", i).data.get("email") or "").lower() for i in purged}  # type: ignore[union-attr]
    assert_destinations_hold(w, expected, gone=gone - {""})
    sm = w.sm_contacts()
    assert sm[box.records.get("lead", early[0]).data["email"].lower()]["name"] == "Early Twice"  # type: ignore[union-attr]
    # Every record Sell holds is in the shadow, live; the deleted lead is deleted there.
    held = shadow(config)
    for kind, counted in box.state()["records"].items():
        if kind == "pipeline":
            continue
        live = {(kind, s.record_id) for s in box.records.live(kind)}
        assert len(live) == counted
        assert all(held.get(key) is False for key in live), kind
    assert all(held[("lead", record_id)] is True for record_id in [early[2], *purged])
    # Every listing was read in id order, explicitly.
    sorts = {q["sort_by"][0] for q in listings(box)}
    assert sorts == {"id:asc", "id:desc"}  # id:desc only to learn each listing's highest id (progress)


def test_every_listing_asks_for_id_order_and_at_most_100_records(w: World) -> None:
    """Pages of 50..100 records in id order (sort_by always explicit: Sell's default orders move edited records)."""
    box = box_of(w)
    box.generate(50, records=800, seed=2)
    import anyio

    assert anyio.run(w.run, w.config(sell='start = "backfill"')) == EXIT_OK
    found = listings(box)
    assert found
    for query in found:
        assert "sort_by" in query
        assert 1 <= int(query["per_page"][0]) <= 100


# ---------------------------------------------------------------------------------------------------------------
# positions that expired while the daemon was stopped


async def expired_world(w: World) -> tuple[SellSandbox, dict[str, Any]]:
    """An account synced to the top, then changed while syncd was stopped for longer than the retention: updates,
    an e-mail change, a delete and a create whose events all expired with the leads stream's position."""
    box = box_of(w)
    box.generate(100, records=600, seed=3)
    assert await w.run(w.config(sell='start = "backfill"')) == EXIT_OK
    leads = ids(box, "lead")
    plan = {"renamed": leads[3], "moved": leads[4], "deleted": leads[5]}
    change(box, "lead", plan["renamed"], first_name="While", last_name="Stopped")
    change(box, "lead", plan["moved"], email="moved.while.stopped@example.org")
    delete(box, "lead", plan["deleted"])
    create(box, "lead", 1_888_888, first_name="Made", last_name="Meanwhile", email="made.meanwhile@example.org")
    box.expire("leads")
    return box, plan


async def test_an_expired_stream_is_resynced_with_nothing_lost(w: World) -> None:
    """`on_expired = "backfill"`: the 410 starts a backfill of the stream through the Core API; the changes whose
    events expired (an update, an e-mail change, a create, a delete) all reach both destinations and the stream
    goes on from the new head."""
    box, plan = await expired_world(w)
    deleted_email = str(box.records.latest("lead", plan["deleted"]).data["email"]).lower()  # type: ignore[union-attr]
    config = w.config(sell='start = "backfill"\non_expired = "backfill"')
    with capture_logs() as logs:
        assert await w.run(config) == EXIT_OK
    events = [e["event"] for e in logs]
    assert "stream_expired" in events and "backfill_done" in events
    [done] = [e for e in logs if e["event"] == "backfill_done"]
    assert done["gone"] == 1
    assert_destinations_hold(w, people(box), gone={deleted_email})
    assert w.sm_contacts()[deleted_email]["deleted"] is True
    with sqlite3.connect(config.state.path) as conn:
        assert conn.execute("SELECT expired FROM positions WHERE stream = 'leads'").fetchall() == [(0,)]
    # The stream goes on from where the backfill began: a change made now arrives through it.
    change(box, "lead", plan["renamed"], first_name="After", last_name="Resync")
    assert await w.run(config) == EXIT_OK
    email = str(box.records.get("lead", plan["renamed"]).data["email"]).lower()  # type: ignore[union-attr]
    assert w.sm_contacts()[email]["name"] == "After Resync"


async def test_an_expired_stream_stops_and_stays_unready_with_on_expired_stop(w: World) -> None:
    """`on_expired = "stop"`: the stream stops, readiness names it until an operator acts, nothing of what expired
    is guessed at; the hint names the backfill that recovers it, and that backfill does."""
    box, plan = await expired_world(w)
    config = w.config(sell='start = "backfill"\non_expired = "stop"')
    daemon = Daemon(config, until_idle=True, handle_signals=False)
    with capture_logs() as logs:
        assert await daemon.run() == EXIT_STREAM_FAILED
    assert daemon.runtime is not None
    assert any("stream leads expired" in p for p in problems(daemon.runtime))
    [expired] = [e for e in logs if e["event"] == "stream_expired"]
    assert "syncd backfill --streams leads" in expired["hint"]
    assert not [e for e in logs if e["event"] == "backfill_requested"]
    assert "made.meanwhile@example.org" not in w.sm_contacts()
    # The operator acts: `syncd backfill --streams leads` (here the daemon it runs).
    assert await Daemon(config, until_idle=True, handle_signals=False, backfill=["leads"]).run() == EXIT_OK
    deleted_email = str(box.records.latest("lead", plan["deleted"]).data["email"]).lower()  # type: ignore[union-attr]
    assert_destinations_hold(w, people(box), gone={deleted_email})


# ---------------------------------------------------------------------------------------------------------------
# a backfill killed halfway


def part_row(db: Path, part: str) -> tuple[int, int] | None:
    """(records stored, list position of the last one) of a backfill part, read while another process writes."""
    if not db.exists():
        return None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            row = conn.execute(
                "SELECT records, cursor_offset FROM backfill_parts WHERE part = ? ORDER BY job DESC LIMIT 1", (part,)
            ).fetchone()
    except sqlite3.OperationalError:  # not migrated yet
        return None
    return (int(row[0]), int(row[1])) if row else None


def windows(requests: list[dict[str, Any]]) -> list[tuple[int, int]]:
    """(start, end) list positions of the id-ordered pages among `requests`."""
    found = []
    for request in requests:
        query = parse_qs(request["query"])
        if query.get("sort_by") == ["id:asc"] and "ids" not in query:
            page, size = int(query["page"][0]), int(query["per_page"][0])
            found.append(((page - 1) * size, page * size))
    return found


def test_a_backfill_killed_halfway_goes_on_without_reading_a_finished_page_again(
    tmp_path: Path, processes: Processes
) -> None:
    """`syncd backfill` SIGKILLed while reading leads, then run again, finishes: every lead is stored, and no page
    it had stored before the kill is asked for again (each later page reaches back to the last record stored)."""
    import os
    import signal

    from syncd.sandbox.server import ServerThread
    from syncd.units import Rate

    box = SellSandbox(tokens=["kill-token"], rate=Rate(40, 1), seed=4)
    box.generate(50, records=5000, seed=4)
    with ServerThread(box.app) as server:
        config = tmp_path / "syncd.toml"
        config.write_text(
            f"""
[state]
path = "syncd.db"
[sell]
token = "kill-token"
base_url = "{server.url}"
streams = ["leads", "contacts"]
rate = "40/s"
poll_interval = "50ms"
max_backoff = "200ms"
[health]
enabled = false
"""
        )
        db = tmp_path / "syncd.db"
        with (tmp_path / "first.log").open("wb") as log:
            first = processes.syncd("backfill", "--config", str(config), "--json", stdout=log)
            wait_until(
                lambda: (part_row(db, "leads") or (0, 0))[0] >= 700 or first.poll() is not None,
                timeout=120,
                interval=0.005,
                what="half of the leads stored",
            )
            assert first.poll() is None, (tmp_path / "first.log").read_text()
            os.kill(first.pid, signal.SIGKILL)
            assert first.wait(timeout=10) == -signal.SIGKILL
        # The pages the killed run had asked for are answered (and logged) when Sell gets to them: under load after
        # the second run began, as if it had read them. Its connections closed and its requests done, none is left.
        state = server.server.server_state
        wait_until(lambda: not state.connections and not state.tasks, timeout=30, what="the killed run's requests")
        stored = part_row(db, "leads")
        assert stored is not None
        records, last_offset = stored
        assert 0 < records < len(ids(box, "lead"))
        before = len(box.requests())
        with (tmp_path / "second.log").open("wb") as log:
            second = processes.syncd("backfill", "--config", str(config), "--json", stdout=log)
            assert second.wait(timeout=180) == 0, (tmp_path / "second.log").read_text()
        after = [r for r in box.requests()[before:] if r["path"] == "/v2/leads"]
    again = windows(after)
    assert again, "the second run read the rest of the leads"
    assert all(end - 1 > last_offset for _, end in again)  # no page that ended at or before the checkpoint
    assert again[0][0] <= last_offset  # the first reaches back to the last lead stored
    with sqlite3.connect(db) as conn:
        held = {i for (i,) in conn.execute("SELECT record_id FROM records WHERE kind = 'lead' AND deleted = 0")}
        [(state,)] = conn.execute("SELECT state FROM jobs").fetchall()
    assert held == set(ids(box, "lead"))
    assert state == "done"


# ---------------------------------------------------------------------------------------------------------------
# a snapshot and a stream change of the same record, in both orders, under both readings of v2's version

VERSIONS = [pytest.param("sequence", id="version-is-the-sequence"), pytest.param("counter", id="version-apart")]


def three_leads(box: SellSandbox) -> None:
    """Leads 1..3, made an hour ago."""
    old = datetime.fromtimestamp(box.now() - 3600, UTC)
    box.append("leads", [item("lead", lead_data(i), event_time=old) for i in (1, 2, 3)])


def lead_data(record_id: int, **data: Any) -> dict[str, Any]:
    return {
        "id": record_id,
        "first_name": f"Lead{record_id}",
        "last_name": "Old",
        "email": f"lead{record_id}@example.org",
        "tags": [],
        "custom_field_values": [],
        **data,
    }


def captured(box: SellSandbox) -> bool:
    return any(parse_qs(r["query"]).get("position") == ["top"] for r in box.requests("/v3/leads/stream"))


def stored_events(config: Config, record_id: int) -> dict[tuple[int, str], bool]:
    """(sequence, action) -> stale, of the stored events of lead `record_id`."""
    with sqlite3.connect(config.state.path) as conn:
        rows = conn.execute(
            "SELECT sequence, action, stale FROM events WHERE kind = 'lead' AND record_id = ?", (record_id,)
        ).fetchall()
    return {(int(s), str(a)): bool(st) for s, a, st in rows}


def delivered_names(config: Config, record_id: int) -> list[str]:
    from syncd.events import decode_event

    with sqlite3.connect(config.state.path) as conn:
        bodies = conn.execute(
            "SELECT e.body FROM deliveries d JOIN events e ON e.seq = d.seq WHERE d.sink = 'salesmanago'"
            " AND e.kind = 'lead' AND e.record_id = ? ORDER BY d.seq",
            (record_id,),
        ).fetchall()
    return [str(getattr(decode_event(body).record, "last_name", "")) for (body,) in bodies]


@pytest.mark.parametrize("version_as", VERSIONS)
async def test_a_stream_change_that_arrives_before_an_older_snapshot_keeps_the_shadow(
    w: World, version_as: str
) -> None:
    """Lead 2 changes after the capture and the stream brings the change first; the backfill's page, read from a
    replica that lags (v2_lag), still shows lead 2 as it was: that snapshot is stored stale and never delivered,
    and the destinations keep the change."""
    box = box_of(w)
    three_leads(box)
    box.configure(v2_lag=30, version_as=version_as)
    w.sell.fault(path="/v2/leads", times=1, latency=1.0)  # its one page
    config = w.config(sell='start = "backfill"', streams=("leads",))

    def meanwhile() -> None:
        wait_until(lambda: captured(box), timeout=30, what="the capture of the leads stream")
        change(box, "lead", 2, last_name="Changed")
        wait_until(lambda: (2, "updated") in stored_events(config, 2), timeout=30, what="the change stored")

    worker = threading.Thread(target=meanwhile, daemon=True)
    worker.start()
    assert await w.run(config) == EXIT_OK
    worker.join(timeout=10)
    events = stored_events(config, 2)
    version = 1 if version_as == "sequence" else 1001
    assert events == {(2, "updated"): False, (version, "snapshot"): True}
    assert delivered_names(config, 2) == ["Changed"]
    assert w.sm_contacts()["lead2@example.org"]["name"] == "Lead2 Changed"
    assert w.op_by_email()["lead2@example.org"]["lastname"] == "Changed"


@pytest.mark.parametrize("version_as", VERSIONS)
async def test_a_stream_change_older_than_a_snapshot_stored_before_it_is_stale(w: World, version_as: str) -> None:
    """Lead 2 changes twice after the capture while the stream is held; the backfill's snapshot (with the second
    change) is stored first; when the stream brings both changes, the older one is stale (never delivered) and the
    one the snapshot already holds changes nothing: the destinations end with the second change."""
    box = box_of(w)
    three_leads(box)
    box.configure(version_as=version_as)
    w.sell.fault(path="/v3/leads/stream", after=1, times=1, latency=2.0)
    w.sell.fault(path="/v2/leads", times=1, latency=0.5)  # its one page
    config = w.config(sell='start = "backfill"', streams=("leads",))

    def meanwhile() -> None:
        wait_until(lambda: captured(box), timeout=30, what="the capture of the leads stream")
        now = box.now()
        first = datetime.fromtimestamp(now - 5, UTC)
        second = datetime.fromtimestamp(now - 2, UTC)
        box.append(
            "leads",
            [
                item("lead", lead_data(2, last_name="First"), action="updated", sequence=2, event_time=first),
                item("lead", lead_data(2, last_name="Second"), action="updated", sequence=3, event_time=second),
            ],
        )

    worker = threading.Thread(target=meanwhile, daemon=True)
    worker.start()
    assert await w.run(config) == EXIT_OK
    worker.join(timeout=10)
    version = 3 if version_as == "sequence" else 1003
    assert stored_events(config, 2) == {(version, "snapshot"): False, (2, "updated"): True, (3, "updated"): False}
    assert delivered_names(config, 2)[0] == "Second"
    assert "First" not in delivered_names(config, 2)
    assert w.sm_contacts()["lead2@example.org"]["name"] == "Lead2 Second"
    assert w.op_by_email()["lead2@example.org"]["lastname"] == "Second"


# ---------------------------------------------------------------------------------------------------------------
# the early warning, and what moving a position skips


async def test_a_stream_unread_for_two_days_warns_in_the_log_status_and_metrics(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A stream syncd has not read for 50 hours (stopped, then Sell failing) is within the 24-hour margin of
    expiring: the daemon logs a warning once, `syncd status` and the metrics say so."""
    import json
    import time

    import anyio

    from syncd.commands.cli import main
    from syncd.health import sample
    from syncd.metrics import exposition
    from tests.support import await_until

    box = box_of(w)
    three_leads(box)
    file = w.config_file()
    config = w.config()
    assert await w.run(config) == EXIT_OK
    with sqlite3.connect(config.state.path) as conn:
        conn.execute("UPDATE positions SET unread_since = ? WHERE stream = 'leads'", (time.time() - 50 * 3600,))
    w.sell.fault(path="/v3/leads/stream", status=503)
    daemon = Daemon(config, handle_signals=False)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            runtime = await tg.start(daemon.run)

            async def warned() -> bool:
                return any(e["event"] == "position_expiring" for e in logs)

            await await_until(warned, what="the early warning")
            metrics = exposition(await sample(runtime)).decode()
            daemon.stop()
    [warning] = [e for e in logs if e["event"] == "position_expiring"]
    assert (warning["stream"], warning["log_level"]) == ("leads", "warning")
    assert 21.5 < warning["expires_in_h"] <= 22.0
    assert not [e for e in logs if e["event"] == "position_expiring" and e["stream"] == "contacts"]
    assert 'syncd_position_expiry_warning{stream="leads"} 1.0' in metrics
    assert 'syncd_position_expiry_warning{stream="contacts"} 0.0' in metrics
    assert await anyio.to_thread.run_sync(main, ["status", "--config", str(file), "--json"]) == 0
    streams = json.loads(capsys.readouterr().out)["streams"]
    assert streams["leads"]["expiry_warning"] is True and streams["contacts"]["expiry_warning"] is False
    assert await anyio.to_thread.run_sync(main, ["status", "--config", str(file)]) == 0
    assert "warning: leads has not been read since" in capsys.readouterr().out


async def test_position_show_and_set_say_what_a_jump_skips(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    """`syncd position` names what an expired position lost and both ways out; `--set top` says what the jump
    skipped and which backfill carries it."""
    import anyio

    from syncd.commands.cli import main

    box = box_of(w)
    three_leads(box)
    file = w.config_file(streams=("leads",))
    config = w.config(streams=("leads",))
    assert await w.run(config) == EXIT_OK
    change(box, "lead", 1, last_name="Lost")
    box.expire("leads")
    assert await w.run(config) == EXIT_STREAM_FAILED
    capsys.readouterr()
    assert await anyio.to_thread.run_sync(main, ["position", "--config", str(file)]) == 0
    shown = capsys.readouterr().out
    assert "leads: the position expired" in shown and "syncd backfill --streams leads" in shown
    args = ["position", "--config", str(file), "--stream", "leads", "--set", "top"]
    assert await anyio.to_thread.run_sync(main, args) == 0
    moved = capsys.readouterr().out
    assert "the jump to the top skips every change since" in moved and "syncd backfill --streams leads" in moved


def test_syncd_backfill_beside_a_running_daemon_queues_the_job_for_it(w: World, processes: Processes) -> None:
    """With `syncd run` owning the state file, `syncd backfill` queues the job beside it, follows it from the store
    and exits 0 once the daemon has done it; the daemon's own log shows it ran the backfill."""
    import json

    box = box_of(w)
    box.generate(20, records=300, seed=6)
    file = w.config_file(extra='[log]\nformat = "json"')
    log = w.tmp_path / "daemon.log"
    with log.open("wb") as out:
        daemon = processes.syncd("run", "--config", str(file), stdout=out)
        wait_until(lambda: '"daemon_ready"' in log.read_text() or daemon.poll() is not None, timeout=60)
        assert daemon.poll() is None, log.read_text()
        result = w.tmp_path / "backfill.json"
        with result.open("wb") as printed:
            command = processes.syncd("backfill", "--config", str(file), "--json", stdout=printed, stderr=None)
            assert command.wait(timeout=120) == 0
    report = json.loads(result.read_text())
    assert report["state"] == "done" and report["records"] > 0
    events = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    assert any(e["event"] == "backfill_done" and e["job"] == report["job"] for e in events)
    wait_until(lambda: set(w.sm_contacts()) >= set(people(box)), timeout=60, what="the backfilled people delivered")


# ---------------------------------------------------------------------------------------------------------------
# what goes wrong


async def test_an_unreadable_record_is_quarantined_with_its_body_and_the_rest_goes_on(w: World) -> None:
    """A record the Core API serves with a value that cannot be read (an id where money belongs) is quarantined
    with its raw body and the reason; every other record is carried."""
    box = box_of(w)
    three_leads(box)
    old = datetime.fromtimestamp(box.now() - 3600, UTC)
    box.append("leads", [item("lead", lead_data(4, owner_id="not an id"), event_time=old)])
    config = w.config(sell='start = "backfill"', streams=("leads",))
    with capture_logs() as logs:
        assert await w.run(config) == EXIT_OK
    [done] = [e for e in logs if e["event"] == "backfill_done"]
    assert done["quarantined"] == 1
    with sqlite3.connect(config.state.path) as conn:
        [(stream, reason, raw)] = conn.execute("SELECT stream, reason, raw FROM quarantine").fetchall()
    assert stream == "leads" and "lead.owner_id" in reason and b'"not an id"' in raw
    assert {"lead1@example.org", "lead2@example.org", "lead3@example.org"} <= set(w.sm_contacts())


async def test_a_backfill_refused_by_the_core_api_fails_loudly_and_the_next_one_carries_everything(w: World) -> None:
    """The Core API refusing the token (403) fails the backfill with the reason and a hint; the streams go on from
    the heads it captured; once Sell answers again a new backfill carries every record."""
    box = box_of(w)
    three_leads(box)
    w.sell.fault(path="/v2/", status=403, body='{"errors": [{"error": {"code": "insufficient_scope"}}]}')
    config = w.config(sell='start = "backfill"', streams=("leads",))
    with capture_logs() as logs:
        assert await w.run(config) == EXIT_OK
    [failed] = [e for e in logs if e["event"] == "backfill_failed"]
    assert failed["http_status"] == 403 and "syncd backfill" in failed["hint"]
    assert "lead1@example.org" not in w.sm_contacts()
    change(box, "lead", 1, last_name="Streamed")  # the stream goes on from the captured head
    assert await w.run(config) == EXIT_OK
    assert w.sm_contacts()["lead1@example.org"]["name"] == "Lead1 Streamed"
    w.sell.clear_faults()
    assert await Daemon(config, until_idle=True, handle_signals=False, backfill=["leads"]).run() == EXIT_OK
    assert {"lead2@example.org", "lead3@example.org"} <= set(w.sm_contacts())
    assert w.sm_contacts()["lead1@example.org"]["name"] == "Lead1 Streamed"


# ---------------------------------------------------------------------------------------------------------------
# one limiter, and the progress shown


async def test_the_backfill_and_the_pollers_take_every_sell_request_through_one_limiter(w: World) -> None:
    """The backfill's Core API reads and the pollers' Firehose reads are limited together: the daemon gives both
    its one Sell limiter, and every request Sell answered (v2 and v3) is one the limiter let through."""
    box = box_of(w)
    box.generate(50, records=600, seed=9)
    daemon = Daemon(w.config(sell='start = "backfill"'), until_idle=True, handle_signals=False)
    assert await daemon.run() == EXIT_OK
    runtime = daemon.runtime
    assert runtime is not None and runtime.backfill is not None
    limiter = runtime.backfill.limiter
    assert runtime.pollers and all(poller.limiter is limiter for poller in runtime.pollers)
    answered = box.requests()
    assert {r["path"][:4] for r in answered} == {"/v2/", "/v3/"}
    # Every answered request was let through by it; at most one a stream or the backfill was let through and then
    # cancelled by the stop before it was sent.
    assert len(answered) <= limiter.started <= len(answered) + len(runtime.pollers) + 1


def sell_only(w: World, *, log_format: str = "console", rate: str = "10/s") -> Path:
    """A config file with Sell alone, at `rate` (Sell's real 10 requests/s unless slower), so a backfill of a few
    thousand records lasts seconds and nothing else (no destination) takes the machine's time."""
    from tests.e2e.world import SELL_TOKEN

    file = w.tmp_path / "sell-only.toml"
    file.write_text(
        f"""
[state]
path = "{w.tmp_path / "syncd.db"}"
[sell]
token = "{SELL_TOKEN}"
base_url = "{w.sell.url}"
streams = ["leads", "contacts"]
rate = "{rate}"
poll_interval = "1s"
max_backoff = "200ms"
[log]
format = "{log_format}"
[health]
enabled = false
"""
    )
    return file


def test_syncd_backfill_off_a_terminal_reports_its_progress_as_log_events(w: World, processes: Processes) -> None:
    """Not on a terminal, `syncd backfill` (the daemon here) logs `backfill_progress` events (the part, its records,
    the estimate of its size and percentage, the records so far, the rate), once per interval (the command adds no
    second series of its own), and ends with its summary line."""
    import json

    box = box_of(w)
    box.generate(50, records=3000, seed=10)
    file = sell_only(w, log_format="json", rate="5/s")  # about 8 s: more than one progress interval (5 s)
    out, err = w.tmp_path / "out.txt", w.tmp_path / "err.log"
    with out.open("wb") as stdout, err.open("wb") as stderr:
        command = processes.syncd("backfill", "--config", str(file), stdout=stdout, stderr=stderr)
        code = command.wait(timeout=120)
    assert code == 0, (code, out.read_text(), err.read_text()[-3000:])
    events = [json.loads(line) for line in err.read_text().splitlines() if line.startswith("{")]
    progress = [e for e in events if e["event"] == "backfill_progress"]
    assert progress, [e["event"] for e in events]
    assert all({"part", "records", "part_total", "percent", "records_total", "rate_per_s"} <= set(e) for e in progress)
    people = [e for e in progress if e["part"] in ("leads", "contacts")]
    assert any(e["records"] and e["percent"] is not None for e in people), progress
    assert out.read_text().startswith("backfill 1 done: ")


def test_syncd_backfill_on_a_terminal_draws_bars_with_counts_and_the_time_left(w: World, processes: Processes) -> None:
    """On a terminal (a pseudo-terminal here), `syncd backfill` draws a bar per listing with its records out of the
    estimate, the percentage and the time left, instead of log lines."""
    import os
    import re

    box = box_of(w)
    box.generate(50, records=3000, seed=10)
    file = sell_only(w)
    term = Terminal(50, 160)
    command = processes.syncd(
        "backfill",
        "--config",
        str(file),
        stdin=subprocess.DEVNULL,
        stdout=term.follower,
        stderr=term.follower,
        env={**os.environ, **term.env},
    )
    with term.reading():
        assert command.wait(timeout=120) == 0
    screen = term.screen()
    bars = [line for line in screen.splitlines() if line.lstrip().startswith("leads ")]
    assert bars, screen[-2000:]
    assert any(re.search(r"\d+/\d+\s+\d+%", line) for line in bars), bars[-3:]  # records of the estimate, percent
    assert any(re.search(r"-:--:--|\d:\d\d:\d\d\s*$", line) for line in bars), bars[-3:]  # the time left
    assert '"event"' not in screen and "backfill_progress" not in screen  # bars, not log lines
    assert "backfill 1 done: " in screen
