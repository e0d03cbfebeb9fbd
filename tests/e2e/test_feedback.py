"""Outcomes back to Sell, end to end (the daemon against the three sandboxes over loopback, a real SQLite file):
a lead SALESmanago takes and Ontraport refuses carries both tags in Sell and the refusal in the configured field;
a person's own tags survive every write, and syncd's tag no longer wanted goes; the Firehose's echo of syncd's
write reaches no destination while a person's edit made before it was read does; a SIGKILL mid-feedback loses no
feedback and doubles no tag; a write Sell refuses is a feedback dead letter shown by status and dlq."""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sqlite3
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from syncd.commands.cli import main
from syncd.config import Config
from syncd.daemon import Daemon
from syncd.runtime import Runtime
from syncd.sandbox.sell.history import item
from tests.e2e.world import SELL_TOKEN, World, person, world
from tests.support import Processes, await_until, wait_until

STREAMS = ("leads", "contacts", "custom_fields")
TIER = {"id": 7001, "name": "Tier", "type": "list", "resource_type": "lead"}
STATUS = {"id": 7002, "name": "Ontraport status", "type": "string", "resource_type": "lead"}
FEEDBACK = """
[feedback]
enabled = true
late_write_window = "200ms"
[feedback.ontraport]
field = "Ontraport status"
"""
OP_FIELDS = 'fields = { "custom.Tier" = "f1557" }'


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def tier(name: str) -> dict[str, Any]:
    """A Firehose custom field value of the Tier list field."""
    options = {"Gold": 1, "Platinum": 9}
    return {
        "value": {"id": options[name], "name": name},
        "custom_field": {"data": TIER, "meta": {"type": "custom_field"}},
    }


def setup(w: World, *, tier_name: str = "Platinum", tags: tuple[str, ...] = ("vip",)) -> None:
    """The two custom fields, then lead 1 with a Tier Ontraport has no option for and a person's own tag."""
    now = datetime.now(UTC)
    w.append("custom_fields", *(item("custom_field", d, event_time=now) for d in (TIER, STATUS)))
    w.append("leads", person("lead", 1, tags=[_tag(t) for t in tags], custom_field_values=[tier(tier_name)]))


def _tag(name: str) -> dict[str, Any]:
    return {"data": {"id": abs(hash(name)) % 1000 + 1, "name": name, "resource_type": "lead"}, "meta": {"type": "tag"}}


def config(w: World, extra: str = "") -> Config:
    return w.config(FEEDBACK + extra, op=OP_FIELDS, streams=STREAMS)


def sell_lead(w: World, lead_id: int = 1) -> dict[str, Any]:
    """The lead as Sell's Core API answers it now."""
    with sell_api(w) as api:
        response = api.get(f"/v2/leads/{lead_id}")
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def sell_api(w: World) -> httpx.Client:
    headers = {"Authorization": f"Bearer {SELL_TOKEN}", "User-Agent": "a-person/1.0"}
    return httpx.Client(base_url=w.sell.url, headers=headers, timeout=10)


def edit(w: World, lead_id: int, **data: Any) -> None:
    """A person's edit in Sell (through the Core API, as Sell's own UI writes)."""
    with sell_api(w) as api:
        response = api.put(f"/v2/leads/{lead_id}", json={"data": data})
    assert response.status_code == 200, response.text


def puts(w: World) -> list[dict[str, Any]]:
    """syncd's writes to Sell's leads (the sandbox's write log; a person's edits from the test included)."""
    return [x for x in w.sell.get("writes", resource="leads")["writes"] if x.get("status") == 200]


def feedback_done(db: Path) -> bool:
    """Nothing of the feedback queue is pending any more, and it wrote at least once."""
    with sqlite3.connect(db) as conn:
        pending = conn.execute("SELECT COUNT(*) FROM deliveries WHERE sink = 'feedback' AND status = 'pending'")
        done = conn.execute("SELECT COUNT(*) FROM deliveries WHERE sink = 'feedback' AND status <> 'pending'")
        return int(pending.fetchone()[0]) == 0 and int(done.fetchone()[0]) > 0


@asynccontextmanager
async def running(config: Config) -> AsyncIterator[Runtime]:
    daemon = Daemon(config, handle_signals=False)
    async with anyio.create_task_group() as tg:
        runtime: Runtime = await tg.start(daemon.run)
        try:
            yield runtime
        finally:
            daemon.stop()


async def true(value: bool) -> bool:
    return value


def tags_of(w: World) -> list[str]:
    return list(sell_lead(w)["tags"])


async def settle(w: World, want: set[str]) -> None:
    await await_until(lambda: true(set(tags_of(w)) == want), deadline=30, what=f"Sell's tags to be {sorted(want)}")


# ---------------------------------------------------------------------------------------------------------------


async def test_accepted_by_one_refused_by_the_other_both_tags_and_the_reason(w: World) -> None:
    """SALESmanago takes the lead, Ontraport refuses it (its Tier matches no option): in Sell the lead carries
    `synced-salesmanago` and `rejected-ontraport` beside the person's own `vip`, and the Ontraport status field
    holds the refusal's reason; the write's echo on the Firehose reaches neither destination."""
    setup(w)
    async with running(config(w)):
        await settle(w, {"vip", "synced-salesmanago", "rejected-ontraport"})
        lead = sell_lead(w)
        assert lead["custom_fields"]["Ontraport status"] == f"refused: {dead_reason(w.tmp_path / 'syncd.db')}"
        assert "f1557" in lead["custom_fields"]["Ontraport status"]
        await await_until(lambda: true(echo_stored(w.tmp_path / "syncd.db")), deadline=30, what="the echo")
        sm_writes = w.sm.get("state")["requests_by_method"]
        op_writes = w.op.get("state")["writes"]
    assert tags_of(w).count("synced-salesmanago") == 1
    assert echo_deliveries(w.tmp_path / "syncd.db") == 0
    assert (w.sm.get("state")["requests_by_method"], w.op.get("state")["writes"]) == (sm_writes, op_writes)


def echo_stored(db: Path) -> bool:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT COUNT(*) FROM events WHERE kind = 'lead' AND sequence = 2").fetchone()[0] == 1


def echo_deliveries(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute(
                "SELECT COUNT(*) FROM deliveries d JOIN events e ON e.seq = d.seq"
                " WHERE e.kind = 'lead' AND e.sequence = 2 AND d.sink <> 'feedback'"
            ).fetchone()[0]
        )


def dead_reason(db: Path, sink: str = "ontraport") -> str:
    with sqlite3.connect(db) as conn:
        [(reason,)] = conn.execute("SELECT reason FROM dead_letters WHERE sink = ? AND key = 'lead:1'", (sink,))
    return str(reason)


async def test_a_persons_tags_survive_and_syncds_tag_no_longer_wanted_goes(w: World) -> None:
    """A person adds a tag and fixes the Tier in Sell: Ontraport now takes the lead, so `rejected-ontraport`
    (syncd's, no longer wanted) is removed and `synced-ontraport` added, while the person's `vip` and `hot` stay;
    the status field says delivered."""
    setup(w)
    async with running(config(w)):
        await settle(w, {"vip", "synced-salesmanago", "rejected-ontraport"})
        edit(w, 1, tags=[*tags_of(w), "hot"], custom_fields={"Tier": "Gold"})
        await settle(w, {"vip", "hot", "synced-salesmanago", "synced-ontraport"})
        await await_until(
            lambda: true(sell_lead(w)["custom_fields"]["Ontraport status"] == "delivered"), deadline=30, what="status"
        )
    assert w.op_by_email()["lead1@example.org"]["f1557"] == "1"  # Gold


async def test_a_real_edit_between_syncds_write_and_its_echo_still_reaches_the_destinations(w: World) -> None:
    """syncd writes its tags while the leads stream is not being read (Sell fails it), a person renames the lead,
    then the stream is read again: the echo of syncd's write goes nowhere, the person's rename reaches both
    destinations (with the person's tags, never syncd's), and `rejected-salesmanago` (from SALESmanago's earlier
    refusal) is gone."""
    w.sm.post("rules", {"reject_emails": ["lead1@example.org"]})
    setup(w)
    db = w.tmp_path / "syncd.db"
    async with running(config(w)):
        await settle(w, {"vip", "rejected-salesmanago", "rejected-ontraport"})
        await await_until(lambda: true(echo_stored(db)), deadline=30, what="the first echo")
        w.sell.fault(path="/v3/leads/stream", status=503)
        w.sm.post("rules", {"reject_emails": []})
        seq = last_lead_sequence(db)
        config_file = w.config_file(FEEDBACK, op=OP_FIELDS, streams=STREAMS)
        assert await cli("dlq", "retry", "--all", "--sink", "salesmanago", "--config", str(config_file)) == 0
        await settle(w, {"vip", "synced-salesmanago", "rejected-ontraport"})  # syncd's write, its echo unread
        edit(w, 1, last_name="Byron")
        assert last_lead_sequence(db) == seq  # neither read yet
        w.sell.clear_faults()
        await await_until(
            lambda: true(w.sm_contacts()["lead1@example.org"].get("name", "").endswith("Byron")),
            deadline=30,
            what="the person's rename in SALESmanago",
        )
        await await_until(lambda: true(last_lead_sequence(db) == seq + 2), deadline=30, what="both read")
    echo, rename = seq + 1, seq + 2
    assert deliveries_of(db, echo) == []
    assert sorted(deliveries_of(db, rename)) == ["ontraport", "salesmanago"]
    # The rename carried Sell's tags to SALESmanago, the person's own but none of syncd's feedback tags.
    held = set(w.sm_contacts()["lead1@example.org"]["tags"])
    assert "VIP" in held and not {"SYNCED-SALESMANAGO", "REJECTED-SALESMANAGO", "REJECTED-ONTRAPORT"} & held


def last_lead_sequence(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return int(conn.execute("SELECT MAX(sequence) FROM events WHERE kind = 'lead' AND record_id = 1").fetchone()[0])


def deliveries_of(db: Path, sequence: int) -> list[str]:
    """The destinations the lead's change of that sequence was queued for (the feedback queue aside)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT d.sink FROM deliveries d JOIN events e ON e.seq = d.seq WHERE e.kind = 'lead'"
            " AND e.record_id = 1 AND e.sequence = ? AND e.action = 'updated' AND d.sink <> 'feedback'",
            (sequence,),
        ).fetchall()
    return [str(r[0]) for r in rows]


async def cli(*args: str) -> int:
    """A `syncd` command, in a worker thread (it runs its own event loop)."""
    return await anyio.to_thread.run_sync(main, list(args))


def test_a_sigkill_mid_feedback_loses_no_feedback_and_doubles_no_tag(w: World, processes: Processes) -> None:
    """`syncd run` SIGKILLed after Sell applied its feedback write but before the answer was read: the next run
    finds the tags there and writes nothing again (one tag each, no second write), and what syncd owns survived
    the crash: once Ontraport takes the lead, `rejected-ontraport` is removed and the person's tag stays."""
    setup(w)
    file = w.config_file(FEEDBACK, op=OP_FIELDS, streams=STREAMS)
    w.sell.fault(path="/v2/leads/1", method="PUT", latency_after=60, times=1)
    log = w.tmp_path / "killed.log"
    with log.open("wb") as out:
        proc = processes.syncd("run", "--config", str(file), stdout=out)
    wait_until(lambda: bool(puts(w)) or proc.poll() is not None, timeout=60, what="Sell to apply the feedback write")
    assert proc.poll() is None, log.read_text()[-2000:]
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=10) == -signal.SIGKILL
    assert set(tags_of(w)) == {"vip", "synced-salesmanago", "rejected-ontraport"}  # applied, answer never read
    w.sell.clear_faults()
    final_log = w.tmp_path / "final.log"
    with final_log.open("wb") as out:
        final = processes.syncd("run", "--config", str(file), "--until-idle", stdout=out)
    assert final.wait(timeout=120) == 0, final_log.read_text()[-3000:]
    assert feedback_done(w.tmp_path / "syncd.db"), final_log.read_text()[-3000:]
    assert sorted(tags_of(w)) == sorted(["vip", "synced-salesmanago", "rejected-ontraport"])
    assert len(puts(w)) == 1  # the write the killed run made; nothing to write again
    edit(w, 1, custom_fields={"Tier": "Gold"})
    with final_log.open("wb") as out:
        again = processes.syncd("run", "--config", str(file), "--until-idle", stdout=out)
    assert again.wait(timeout=120) == 0, final_log.read_text()[-3000:]
    assert sorted(tags_of(w)) == sorted(["vip", "synced-salesmanago", "synced-ontraport"])


async def test_a_write_sell_refuses_is_a_feedback_dead_letter_shown_by_status_and_dlq(w: World) -> None:
    """A status field Sell does not have: Sell answers 422 unknown_attribute, the feedback is dead-lettered with
    Sell's reason (its pointer named), `syncd status` shows the feedback queue's dead letter and `syncd dlq list
    --sink feedback` lists it; the destinations' deliveries are untouched by it."""
    setup(w)
    extra = FEEDBACK.replace('field = "Ontraport status"', 'field = "Not in Sell"')
    async with running(w.config(extra, op=OP_FIELDS, streams=STREAMS)):
        db = w.tmp_path / "syncd.db"
        await await_until(lambda: true(bool(feedback_letters(db))), deadline=30, what="the feedback dead letter")
    [(reason, status)] = feedback_letters(db)
    assert status == 422 and "unknown_attribute" in reason and "/custom_fields/Not in Sell" in reason
    file = w.config_file(extra, op=OP_FIELDS, streams=STREAMS)
    out = await cli_output("dlq", "list", "--sink", "feedback", "--config", str(file))
    assert "lead:1" in out and "unknown_attribute" in out
    status = json.loads(await cli_output("status", "--config", str(file), "--json"))
    assert status["sinks"]["feedback"]["dead"] >= 1
    assert w.sm_contacts()["lead1@example.org"]  # SALESmanago got the lead all the same


def feedback_letters(db: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT reason, http_status FROM dead_letters WHERE sink = 'feedback'").fetchall()
    return [(str(r), int(s)) for r, s in rows]


async def cli_output(*args: str) -> str:
    """A `syncd` command's standard output (in a worker thread: it runs its own event loop)."""

    def call() -> str:
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            assert main(list(args)) == 0
        return buffer.getvalue()

    return await anyio.to_thread.run_sync(call)
