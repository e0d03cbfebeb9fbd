"""What an operator relies on: /readyz, /metrics, logs free of secrets, backpressure and pruning."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from structlog.testing import capture_logs

from syncd.config import ConfigWarning, loads
from syncd.daemon import Daemon
from syncd.metrics import REGISTRY
from syncd.runtime import Runtime
from syncd.sandbox.sell.history import item
from tests.e2e.world import SECRETS, SM_SECRET, World, person, world
from tests.support import Processes, await_until, wait_until

HEALTH = '[health]\nenabled = true\nlisten = "127.0.0.1:0"\n'


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def with_health(w: World, **keys: str) -> str:
    return w.config_text(**keys).replace("[health]\nenabled = false\n", HEALTH)


async def readyz(runtime: Runtime) -> httpx.Response:
    async with httpx.AsyncClient(base_url=runtime.health_url or "") as http:
        return await http.get("/readyz")


async def _true(value: bool) -> bool:
    return value


async def test_readyz_turns_unready_and_back_as_a_key_is_revoked_and_restored(w: World) -> None:
    """/readyz answers 503 naming the paused destination while its key is refused, and 200 again once restored;
    /livez stays 200 throughout."""
    config = loads(with_health(w))
    w.append("leads", person("lead", 1))
    daemon = Daemon(config, handle_signals=False)
    async with anyio.create_task_group() as tg:
        runtime: Runtime = await tg.start(daemon.run)
        await await_until(lambda: _true(w.sm.get("state")["contacts"] == 1), deadline=20, what="delivery")
        await await_until(lambda: _true(all(p.state.at_top for p in runtime.pollers)), deadline=20, what="top")
        assert (await readyz(runtime)).status_code == 200
        w.sm.post("credentials", {"api_secret": "revoked"})
        w.append("leads", person("lead", 2))

        async def unready() -> bool:
            return (await readyz(runtime)).status_code == 503

        await await_until(unready, deadline=20, what="/readyz to turn unready")
        body = (await readyz(runtime)).json()
        assert any("destination salesmanago paused" in p for p in body["problems"])
        async with httpx.AsyncClient(base_url=runtime.health_url or "") as http:
            assert (await http.get("/livez")).status_code == 200
        w.sm.post("credentials", {"api_secret": SM_SECRET})

        async def ready() -> bool:
            return (await readyz(runtime)).status_code == 200

        await await_until(ready, deadline=30, what="/readyz to turn ready again")
        daemon.stop()


async def test_metrics_parse_and_carry_every_family(w: World) -> None:
    """/metrics is valid Prometheus text (parsed with prometheus-client's parser) with ingest, delivery, backlog,
    position age, HTTP, rate-limit and dead-letter families, and values that match what happened."""
    refused_before = REGISTRY.get_sample_value("syncd_http_requests_total", {"api": "ontraport", "status": "422"}) or 0
    w.op.post("rules", {"reject_emails": ["lead3@example.org"]})
    w.append("leads", *[person("lead", i) for i in range(1, 6)])
    daemon = Daemon(loads(with_health(w)), handle_signals=False)
    async with anyio.create_task_group() as tg:
        runtime: Runtime = await tg.start(daemon.run)
        await await_until(lambda: _true(len(w.op_contacts()) == 4), deadline=20, what="delivery")

        async def settled() -> bool:
            return await runtime.store.pending() == 0

        await await_until(settled, deadline=20, what="nothing pending")
        async with httpx.AsyncClient(base_url=runtime.health_url or "") as http:
            text = (await http.get("/metrics")).text
        daemon.stop()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name in (
        "syncd_events_ingested",
        "syncd_deliveries",
        "syncd_pending_deliveries",
        "syncd_position_age_seconds",
        "syncd_http_requests",
        "syncd_rate_limit_waits",
        "syncd_dead_letters",
        "syncd_destination_paused",
        "syncd_ready",
    ):
        assert name in families, name

    def value(family: str, suffix: str = "", **labels: str) -> float:
        for sample in families[family].samples:
            if sample.name == family + suffix and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
        raise AssertionError(f"no {family}{suffix} {labels}")

    assert value("syncd_events_ingested", "_total", stream="leads") == 5
    assert value("syncd_deliveries", "_total", sink="ontraport", outcome="done") == 4
    assert value("syncd_deliveries", "_total", sink="ontraport", outcome="dead") == 1
    assert value("syncd_dead_letters", sink="ontraport") == 1
    assert value("syncd_pending_deliveries", sink="salesmanago") == 0
    assert value("syncd_http_requests", "_total", api="sell", status="200") >= 1
    # HTTP calls are counted per process (one daemon per process in production): compare with before this run.
    assert value("syncd_http_requests", "_total", api="ontraport", status="422") == refused_before + 1


def test_no_secret_reaches_logs_or_output_of_a_run_with_faults(w: World, processes: Processes) -> None:
    """A full `syncd run` at debug level through refused keys, throttling, server errors, dropped connections and
    a poison record — and `status`, `check`, `dlq` afterwards — never prints a configured secret; names and e-mails
    appear only in debug lines."""
    config = (
        w.config_file()
        .read_text()
        .replace("[health]\nenabled = false\n", '[log]\nlevel = "debug"\nformat = "json"\n[health]\nenabled = false\n')
    )
    file = w.tmp_path / "syncd.toml"
    file.write_text(config)
    w.op.post("rules", {"reject_emails": ["lead4@example.org"]})
    w.op.fault(path="/1/", status=429, times=2, headers={"X-Rate-Limit-Reset": "1", "X-Rate-Limit-Remaining": "0"})
    w.sm.fault(path="/api/", status=503, times=2)
    w.sm.fault(path="/api/", drop=True, times=1, after=2)
    w.sell.fault(path="/v3/leads/stream", status=500, times=1)
    w.append("leads", *[person("lead", i) for i in range(1, 9)])
    w.append("contacts", person("contact", 9), person("contact", 9, 2, "deleted"))
    outputs = []

    def syncd(*args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "syncd", *args, "--config", str(file)],
            check=False,
            capture_output=True,
            text=True,
            timeout=120,
        )
        outputs.append(done.stdout + done.stderr)
        return done

    w.sm.post("credentials", {"api_secret": "temporarily-wrong"})
    log = w.tmp_path / "run.log"
    with log.open("wb") as out:
        run = processes.syncd("run", "--config", str(file), stdout=out)
    try:
        wait_until(lambda: '"destination_paused"' in log.read_text(), timeout=30, what="the pause")
        w.sm.post("credentials", {"api_secret": SM_SECRET})
        wait_until(lambda: '"destination_resumed"' in log.read_text(), timeout=30, what="the resumption")
        wait_until(lambda: w.sm.get("state")["contacts"] >= 8, timeout=30, what="SALESmanago to catch up")
        wait_until(lambda: '"delivery_dead"' in log.read_text(), timeout=30, what="the poison record")
    finally:
        run.terminate()
        assert run.wait(timeout=60) == 0
    lines = log.read_text().splitlines()
    outputs.append("\n".join(lines))
    syncd("status")
    syncd("status", "--json")
    syncd("check")
    syncd("dlq", "list")
    syncd("dlq", "show", "1")
    everything = "\n".join(outputs)
    assert '"destination_paused"' in everything
    assert '"delivery_dead"' in everything
    for secret in SECRETS:
        assert secret not in everything
    for line in lines:
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry["level"] != "debug":
            assert "@example.org" not in line, line
            assert "Lovelace" not in line, line


async def test_an_old_max_pending_is_accepted_with_a_warning_and_a_backlog_never_stops_polling(w: World) -> None:
    """A config from before issue 10 naming `state.max_pending` still starts, with a warning saying it is no longer
    used; with Ontraport down and 120 deliveries waiting for it (four times the old mark), polling goes on, so
    SALESmanago gets everyone; once Ontraport is back it gets everyone too."""
    config_text = w.config_text(op="concurrency = 1").replace("[state]\n", "[state]\nmax_pending = 30\n")
    config_text = config_text.replace('poll_interval = "20ms"', 'poll_interval = "20ms"\npage_limit = 10')
    with pytest.warns(ConfigWarning, match="state.max_pending is no longer used"):
        config = loads(config_text)
    w.stop("op")
    w.append("leads", *[person("lead", i) for i in range(1, 121)])
    daemon = Daemon(config, handle_signals=False)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            await await_until(lambda: _true(w.sm.get("state")["contacts"] == 120), deadline=30, what="SALESmanago")
            w.start("op")
            await await_until(lambda: _true(len(w.op_contacts()) == 120), deadline=60, what="Ontraport")
            daemon.stop()
    assert not [e for e in logs if e["event"].startswith("polling_")]


async def test_finished_events_are_pruned_after_the_retention_period(w: World) -> None:
    """Events whose deliveries are all finished leave the store after `retention`; dead-lettered ones stay."""
    w.op.post("rules", {"reject_emails": ["lead2@example.org"]})
    w.append("leads", *[person("lead", i) for i in range(1, 4)])
    text = w.config_text().replace("[state]\n", '[state]\nretention = "0s"\nprune_interval = "50ms"\n')
    daemon = Daemon(loads(text), handle_signals=False)
    db = w.tmp_path / "syncd.db"

    def events() -> int:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM events").fetchone()[0])

    with capture_logs() as logs:  # from the start: pruning may come before the second contact is written
        async with anyio.create_task_group() as tg:
            await tg.start(daemon.run)
            await await_until(lambda: _true(len(w.op_contacts()) == 2), deadline=20, what="delivery")
            await await_until(lambda: _true(events() == 1), deadline=20, what="pruning")
            daemon.stop()
    assert any(e["event"] == "events_pruned" for e in logs)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT record_id FROM events").fetchall() == [(2,)]


async def test_mapping_drift_makes_readyz_unready_until_the_field_is_back(w: World) -> None:
    """A mapped Sell custom field renamed in Sell is reported as mapping drift (log and /readyz) while records keep
    flowing; renaming it back resolves it."""
    definition = {"id": 7001, "name": "Tier", "type": "list", "resource_type": "lead"}
    w.append("custom_fields", item("custom_field", definition, event_time=datetime.now(UTC)))
    text = with_health(w, op='[sinks.ontraport.fields]\n"custom.Tier" = "f1557"\n')
    text = text.replace('streams = ["leads", "contacts"]', 'streams = ["leads", "contacts", "custom_fields"]')
    daemon = Daemon(loads(text), handle_signals=False)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            runtime: Runtime = await tg.start(daemon.run)

            async def status() -> int:
                return (await readyz(runtime)).status_code

            def rename(record: dict[str, Any], sequence: int, was: str) -> None:
                change = item(
                    "custom_field",
                    record,
                    action="updated",
                    sequence=sequence,
                    previous={"name": was},
                    event_time=datetime.now(UTC),
                )
                w.append("custom_fields", change)

            await await_until(lambda: _true(all(p.state.at_top for p in runtime.pollers)), deadline=20, what="top")
            assert await status() == 200
            rename({**definition, "name": "Tier level"}, 2, was="Tier")
            await await_until(lambda: _true(bool(runtime.drift)), deadline=20, what="drift")
            body = (await readyz(runtime)).json()
            assert any('sinks.ontraport.fields."custom.Tier"' in p for p in body["problems"])
            w.append("leads", person("lead", 1))
            await await_until(lambda: _true(len(w.op_contacts()) == 1), deadline=20, what="records still flowing")
            rename(definition, 3, was="Tier level")
            await await_until(lambda: _true(not runtime.drift), deadline=20, what="drift resolved")
            assert await status() == 200
            daemon.stop()
    events = [e["event"] for e in logs]
    assert "mapping_drift" in events
    assert "mapping_drift_resolved" in events
