"""Delivery guarantees under faults, asserting on what the sandboxes received: outages, 429 storms, revoked keys,
poison records."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from syncd.commands.cli import main
from syncd.config import loads
from syncd.daemon import EXIT_OK, Daemon
from syncd.runtime import Runtime
from tests.e2e.world import World, person, world
from tests.support import await_until


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def dispatcher_state(runtime: Runtime, sink: str) -> Any:
    return next(d.state for d in runtime.dispatchers if d.sink == sink)


def dead_letters(w: World) -> list[tuple[Any, ...]]:
    with sqlite3.connect(w.tmp_path / "syncd.db") as conn:
        return conn.execute("SELECT sink, key, reason, http_status, request FROM dead_letters").fetchall()


async def cli(*args: str) -> int:
    """The command line, run as an operator would while the daemon runs (its own thread and event loop)."""
    code: int = await anyio.to_thread.run_sync(main, list(args))
    return code


async def _at_least(value: int, wanted: int) -> bool:
    return value >= wanted


async def test_a_destination_down_for_a_long_backlog_loses_and_duplicates_nothing(w: World) -> None:
    """Ontraport refusing connections, then answering 503, for a backlog of 200 people: the dispatcher backs off as
    a whole (no request storm), and once Ontraport is back every person arrives exactly once."""
    people = 200
    w.stop("op")
    w.append("leads", *[person("lead", i) for i in range(1, people + 1)])
    daemon = Daemon(w.config(op="concurrency = 4"), handle_signals=False)
    async with anyio.create_task_group() as tg:
        runtime: Runtime = await tg.start(daemon.run)
        await await_until(lambda: _at_least(w.sm.get("state")["contacts"], people), deadline=30, what="SALESmanago")
        state = dispatcher_state(runtime, "ontraport")
        await await_until(lambda: _at_least(int(state.pause_kind == "unavailable"), 1), deadline=10, what="breaker")
        assert "could not be reached" in (state.paused or "")
        w.start("op")
        w.op.fault(path="/1/", status=503, times=6)
        await await_until(lambda: _at_least(len(w.op_contacts()), people), deadline=60, what="Ontraport to catch up")
        daemon.stop()
    op_state = w.op.get("state")
    # The breaker held the backlog back: a handful of probe keys failed, not one attempt per person.
    assert state.outcomes.get("retried", 0) <= 30
    served = sum(sum(counts.values()) for counts in op_state["requests"].values())
    assert served <= people + 20
    assert len(w.op_by_email()) == people
    assert op_state["creates"] == people
    assert sum(op_state["writes"].values()) == people
    assert dead_letters(w) == []


async def test_a_backlog_queued_during_an_outage_costs_no_lookups_for_keys_never_tried(w: World) -> None:
    """People who change their e-mail while Ontraport is down each cost one write once it is back: only the few
    keys the breaker let through (tried, so a lost write may have landed) are looked up before their write."""
    people = 60
    w.stop("op")
    w.append("leads", *[person("lead", i, email=f"old{i}@example.org") for i in range(1, people + 1)])
    w.append(
        "leads",
        *[
            person("lead", i, 2, "updated", email=f"new{i}@example.org", previous={"email": f"old{i}@example.org"})
            for i in range(1, people + 1)
        ],
    )
    daemon = Daemon(w.config(op="concurrency = 4"), handle_signals=False)
    async with anyio.create_task_group() as tg:
        runtime: Runtime = await tg.start(daemon.run)
        state = dispatcher_state(runtime, "ontraport")
        await await_until(lambda: _at_least(int(state.pause_kind == "unavailable"), 1), deadline=10, what="breaker")
        w.start("op")
        await await_until(lambda: _at_least(len(w.op_contacts()), people), deadline=60, what="Ontraport to catch up")
        daemon.stop()
    requests: dict[str, dict[str, int]] = w.op.get("state")["requests"]
    lookups = sum(requests.get("GET /1/object/getByEmail", {}).values())
    searches = sum(requests.get("GET /1/Contacts", {}).values())
    tried = state.outcomes.get("retried", 0)
    assert 0 < tried < people // 4
    assert lookups <= tried and searches <= tried
    assert sorted(w.op_by_email()) == sorted(f"new{i}@example.org" for i in range(1, people + 1))
    assert w.op.get("state")["creates"] == people


async def test_a_429_storm_costs_at_most_one_refusal_per_pause(w: World) -> None:
    """Against Ontraport's rolling limit (tightened to 40 per second here) syncd, configured for far more, pauses
    the whole destination on the limit headers and on each 429: the sandbox refuses at most one call per pause, and
    everything is delivered."""
    people = 100
    w.op.post("behaviour", {"rate": "40/s"})
    w.append("leads", *[person("lead", i) for i in range(1, people + 1)])
    # A server's wait is honoured up to max_backoff: here it must cover the 1 s window (the world's is 200 ms).
    text = w.config_text(op="concurrency = 4").replace('max_backoff = "200ms"', 'max_backoff = "2s"')
    daemon = Daemon(loads(text), until_idle=True, handle_signals=False)
    async with anyio.create_task_group() as tg:
        runtime: Runtime = await tg.start(daemon.run)
    assert len(w.op_contacts()) == people
    limiter = next(lim for lim in runtime.limiters if lim.name == "ontraport")
    refused = w.op.get("state")["rate_limited"]
    assert limiter.pauses >= 1
    assert refused <= limiter.pauses
    assert dead_letters(w) == []


async def test_a_429_storm_without_limit_headers_is_ridden_out(w: World) -> None:
    """SALESmanago throttling with 429 and Retry-After (no limit headers): the destination pauses, then completes."""
    w.sm.post("behaviour", {"rate": "10/s"})
    w.append("leads", *[person("lead", i) for i in range(1, 26)])
    config = w.config(sm="batch_size = 1\nconcurrency = 1", op="enabled = false")
    daemon = Daemon(config, until_idle=True, handle_signals=False)
    async with anyio.create_task_group() as tg:
        runtime: Runtime = await tg.start(daemon.run)
    assert w.sm.get("state")["contacts"] == 25
    limiter = next(lim for lim in runtime.limiters if lim.name == "salesmanago")
    assert 1 <= w.sm.get("state")["throttled"] <= limiter.pauses
    assert dead_letters(w) == []


async def test_a_revoked_key_pauses_the_destination_and_dead_letters_nothing(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """With SALESmanago's secret rotated, the destination pauses and says why (logs, status), nothing is
    dead-lettered, Ontraport goes on; once the secret matches again everything is delivered."""
    w.append("leads", person("lead", 1))
    config_file = w.config_file()
    daemon = Daemon(w.config(), handle_signals=False)
    async with anyio.create_task_group() as tg:
        runtime: Runtime = await tg.start(daemon.run)
        await await_until(lambda: _at_least(w.sm.get("state")["contacts"], 1), deadline=20, what="the first lead")
        w.sm.post("credentials", {"api_secret": "someone-rotated-it"})
        w.append("leads", *[person("lead", i) for i in range(2, 21)])
        state = dispatcher_state(runtime, "salesmanago")
        await await_until(lambda: _at_least(int(state.pause_kind == "auth"), 1), deadline=20, what="the pause")
        await await_until(lambda: _at_least(len(w.op_contacts()), 20), deadline=20, what="Ontraport")
        assert await cli("status", "--config", str(config_file), "--json") == 0
        status = json.loads(capsys.readouterr().out)
        assert "credentials refused" in status["sinks"]["salesmanago"]["paused"]
        assert status["sinks"]["salesmanago"]["pending"] >= 19
        w.sm.post("credentials", {"api_secret": "sm-secret-e2e-0002"})
        await await_until(lambda: _at_least(w.sm.get("state")["contacts"], 20), deadline=30, what="resumption")
        daemon.stop()
    assert dead_letters(w) == []
    assert state.pause_kind is None


async def test_a_poison_record_is_dead_lettered_and_retried_once_fixed(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """Ontraport refusing one e-mail (422): that record is dead-lettered with its reason and request while every
    other record goes on; after the destination accepts it, `syncd dlq retry` delivers it."""
    w.op.post("rules", {"reject_emails": ["lead3@example.org"]})
    w.append("leads", *[person("lead", i) for i in range(1, 6)])
    assert await w.run() == EXIT_OK
    assert sorted(w.op_by_email()) == [f"lead{i}@example.org" for i in (1, 2, 4, 5)]
    [(sink, key, reason, status, request)] = dead_letters(w)
    assert (sink, key, status) == ("ontraport", "lead:3", 422)
    assert "Invalid email" in reason
    assert "op-key-e2e-0003" not in (request or "")
    config = str(w.config_file())
    capsys.readouterr()
    assert await cli("dlq", "list", "--config", config, "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)
    assert listed["key"] == "lead:3"
    w.op.post("rules", {"reject_emails": []})
    assert await cli("dlq", "retry", str(listed["id"]), "--config", config) == 0
    assert "re-queued dead letter" in capsys.readouterr().out
    assert await w.run() == EXIT_OK
    assert "lead3@example.org" in w.op_by_email()
    assert dead_letters(w) == []
    assert w.sm.get("state")["contacts"] == 5


async def test_dlq_drop_and_replay(w: World, capsys: pytest.CaptureFixture[str]) -> None:
    """`dlq drop` turns a dead letter into a skip; `replay --record` writes a record again even though unchanged."""
    w.op.post("rules", {"reject_emails": ["lead2@example.org"]})
    w.append("leads", person("lead", 1), person("lead", 2))
    assert await w.run() == EXIT_OK
    config = str(w.config_file())
    [(_, _, _, _, _)] = dead_letters(w)
    capsys.readouterr()
    assert await cli("dlq", "list", "--config", config) == 0
    letter_id = int(capsys.readouterr().out.splitlines()[1].split()[0])
    assert await cli("dlq", "drop", str(letter_id), "--config", config) == 0
    assert "now skipped" in capsys.readouterr().out
    assert dead_letters(w) == []
    writes_before = w.sm.get("state")["writes_per_email"]["lead1@example.org"]
    assert await cli("replay", "--sink", "salesmanago", "--record", "lead:1", "--config", config) == 0
    assert "1 record(s) will be written again" in capsys.readouterr().out
    assert await w.run() == EXIT_OK
    assert w.sm.get("state")["writes_per_email"]["lead1@example.org"] == writes_before + 1


def _changed_email(n: int) -> list[dict[str, Any]]:
    """Lead `n` created with an old e-mail and then given a new one (both pending)."""
    old, new = f"old{n}@example.org", f"new{n}@example.org"
    return [person("lead", n, email=old), person("lead", n, 2, "updated", email=new, previous={"email": old})]


async def test_keys_whose_every_attempt_was_refused_at_connect_are_written_without_lookups(w: World) -> None:
    """SALESmanago refusing connections while people change their e-mail: the keys attempted then (refused at
    connect: nothing was sent) count as never tried, so once it is back each is written with no contact/basic
    look-up for what a lost write might have left."""
    people = 20
    w.stop("sm")
    w.append("leads", *[item for n in range(1, people + 1) for item in _changed_email(n)])
    daemon = Daemon(w.config(sm="concurrency = 4\nbatch_size = 5"), handle_signals=False)
    async with anyio.create_task_group() as tg:
        runtime: Runtime = await tg.start(daemon.run)
        state = dispatcher_state(runtime, "salesmanago")
        await await_until(lambda: _at_least(int(state.pause_kind == "unavailable"), 1), deadline=10, what="breaker")
        assert state.outcomes.get("retried", 0) > 0  # attempted while down
        w.start("sm")
        await await_until(lambda: _at_least(w.sm.get("state")["contacts"], people), deadline=60, what="SALESmanago")
        daemon.stop()
    assert w.sm.get("state")["requests_by_method"].get("contact/basic", 0) == 0
    assert sorted(w.sm_contacts()) == sorted(f"new{n}@example.org" for n in range(1, people + 1))


async def test_a_key_whose_write_outcome_was_lost_is_looked_up_before_it_is_written_again(w: World) -> None:
    """A write answered 500 (it may have landed) makes the key tried: its next write first asks contact/basic
    about the e-mails a lost write may have used, and the person ends up with one contact under the new e-mail."""
    w.sm.fault(path="/api/contact/upsert", status=500, times=1)
    w.append("leads", *_changed_email(1))
    assert await w.run() == EXIT_OK
    by_method = w.sm.get("state")["requests_by_method"]
    assert by_method.get("contact/basic", 0) >= 1
    assert [email for email, c in w.sm_contacts().items() if not c["deleted"]] == ["new1@example.org"]
