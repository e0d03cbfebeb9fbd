"""Firehose ingest end to end: the daemon against the Sell sandbox over loopback, into a real SQLite file."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from structlog.testing import capture_logs

from syncd.commands.cli import main
from syncd.config import Config, loads
from syncd.daemon import EXIT_OK, EXIT_STREAM_FAILED, Daemon
from syncd.events import source_kind
from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.sell.history import generate_history, item
from syncd.sandbox.server import ServerThread

TOKEN = "sell-test-token-1234"
STREAMS = ["leads", "contacts", "deals", "notes", "orders", "line_items", "stages", "custom_fields", "sources"]


class Sell:
    """The Sell sandbox served on loopback, with helpers to drive it over HTTP like a test operator would."""

    def __init__(self, box: SellSandbox, server: ServerThread) -> None:
        self.box = box
        self.url = server.url
        self.http = httpx.Client(base_url=server.url, timeout=10)

    def control(self, path: str, body: Any) -> Any:
        response = self.http.post(f"/_sandbox/{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def identities(self, stream: str) -> set[tuple[str, int, int, str]]:
        """(kind, id, sequence, action) of every event of `stream`, the kind as syncd stores it: a source is a
        lead_source or a deal_source."""
        items = self.http.get("/_sandbox/events", params={"stream": stream}).json()["items"]
        return {(_kind(i), i["data"]["id"], i["meta"]["sequence"], i["meta"]["event_type"]) for i in items}

    def head(self, stream: str) -> str:
        return str(self.http.get("/_sandbox/state").json()["streams"][stream]["head"])


def _kind(wire: dict[str, Any]) -> str:
    kind = str(wire["meta"]["type"])
    return source_kind(wire["data"].get("resource_type") or "") if kind == "source" else kind


@pytest.fixture
def sell() -> Iterator[Sell]:
    box = SellSandbox(tokens=[TOKEN], rate=None, seed=3)
    with ServerThread(box.app) as server:
        sell = Sell(box, server)
        yield sell
        sell.http.close()


def config(tmp_path: Path, sell: Sell, *, streams: list[str] | None = None, **sell_keys: str | int) -> Config:
    extra = "".join(f"{k} = {json.dumps(v)}\n" for k, v in sell_keys.items())
    return loads(
        f"""
[state]
path = "{tmp_path / "syncd.db"}"
[sell]
token = "{TOKEN}"
base_url = "{sell.url}"
streams = {streams or STREAMS}
poll_interval = "20ms"
rate = "100000/s"
max_backoff = "100ms"
timeout = "2s"
{extra}
[health]
enabled = false
"""
    )


async def run_until_idle(cfg: Config) -> int:
    return await Daemon(cfg, until_idle=True, handle_signals=False).run()


def stored(cfg: Config, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(cfg.state.path) as conn:
        return conn.execute(sql).fetchall()


def stored_identities(cfg: Config) -> list[tuple[str, int, int, str]]:
    return [tuple(r) for r in stored(cfg, "SELECT kind, record_id, sequence, action FROM events")]  # type: ignore[misc]


def lead(record_id: int, sequence: int = 1, action: str = "created", **fields: Any) -> dict[str, Any]:
    data = {"id": record_id, "first_name": "Ada", "last_name": "Lovelace", "email": f"lead{record_id}@example.org"}
    data.update(fields)
    return item("lead", data, action=action, sequence=sequence, event_time=datetime.now(UTC))


async def test_tail_reads_the_whole_history_once_despite_short_empty_and_repeated_pages(
    tmp_path: Path, sell: Sell
) -> None:
    """From `tail`, every retained event of every stream is stored exactly once and each position ends at the head,
    although pages come short, empty with top false, and with repeated items."""
    sell.box.load(generate_history(3000, seed=11))
    # Every page after a stream's first repeats the previous page's last item. (At 0.2 the nine pollers, drawing
    # from the simulator's one random stream in whatever order they happen to run, met about 3.5 repeated pages
    # per run: none at all about one run in thirty, and the last assertion failed.)
    sell.control("behaviour", {"short_pages": 0.2, "empty_pages": 0.1, "duplicates": 1.0})
    cfg = config(tmp_path, sell)
    with capture_logs() as logs:
        assert await run_until_idle(cfg) == EXIT_OK
    stored_ids = stored_identities(cfg)
    assert len(stored_ids) == len(set(stored_ids))
    expected = set().union(*(sell.identities(s) for s in STREAMS))
    assert set(stored_ids) == expected
    assert len(expected) == 3000
    positions = dict(stored(cfg, "SELECT stream, position FROM positions"))  # type: ignore[arg-type]
    assert positions == {s: sell.head(s) for s in STREAMS}
    assert sum(e.get("duplicates", 0) for e in logs if e["event"] == "page_ingested") > 0


async def test_top_skips_history_and_reads_what_comes_after(tmp_path: Path, sell: Sell) -> None:
    """`start = "top"` stores nothing from before the first poll, then everything appended later."""
    sell.control("events", {"stream": "leads", "items": [lead(1), lead(2)]})
    cfg = config(tmp_path, sell, streams=["leads"], start="top")
    assert await run_until_idle(cfg) == EXIT_OK
    assert stored_identities(cfg) == []
    sell.control("events", {"stream": "leads", "items": [lead(3), lead(1, 2, "updated")]})
    assert await run_until_idle(cfg) == EXIT_OK
    assert sorted(stored_identities(cfg)) == [("lead", 1, 2, "updated"), ("lead", 3, 1, "created")]


async def test_stored_position_wins_over_the_configured_start(tmp_path: Path, sell: Sell) -> None:
    """A restart resumes from the stored position: nothing is read twice, nothing new is missed."""
    sell.control("events", {"stream": "leads", "items": [lead(i) for i in range(1, 51)]})
    cfg = config(tmp_path, sell, streams=["leads"])
    assert await run_until_idle(cfg) == EXIT_OK
    sell.control("events", {"stream": "leads", "items": [lead(i) for i in range(51, 61)]})
    with capture_logs() as logs:
        assert await run_until_idle(cfg) == EXIT_OK
    assert len(stored_identities(cfg)) == 60
    assert [e["position_kind"] for e in logs if e["event"] == "stream_started"] == ["stored"]
    assert sum(e["events"] for e in logs if e["event"] == "page_ingested") == 10


async def test_repeats_and_stale_sequences(tmp_path: Path, sell: Sell) -> None:
    """A redelivered event is absorbed; an older sequence arriving late never overwrites the newer shadow."""
    newer = lead(7, 3, "updated", email="new@example.org")
    older = lead(7, 2, "updated", email="old@example.org")
    sell.control("events", {"stream": "leads", "items": [lead(7), newer, newer, older]})
    cfg = config(tmp_path, sell, streams=["leads"])
    assert await run_until_idle(cfg) == EXIT_OK
    assert sorted(stored_identities(cfg)) == [
        ("lead", 7, 1, "created"),
        ("lead", 7, 2, "updated"),
        ("lead", 7, 3, "updated"),
    ]
    assert stored(cfg, "SELECT sequence, email FROM records WHERE record_id = 7") == [(3, "new@example.org")]
    assert stored(cfg, "SELECT stale FROM events WHERE sequence = 2") == [(1,)]


@pytest.mark.parametrize(
    ("fault", "status"),
    [
        ({"status": 429, "times": 3}, 429),
        ({"status": 409, "times": 2}, 409),
        ({"status": 503, "times": 2}, 503),
        ({"status": 500, "times": 1, "body": "oops", "content_type": "text/plain"}, 500),
        ({"drop": True, "times": 2}, None),
        ({"latency": 3.0, "times": 1}, None),
    ],
)
async def test_transient_failures_back_off_and_lose_nothing(
    tmp_path: Path, sell: Sell, fault: dict[str, Any], status: int | None
) -> None:
    """Throttling (429, 409), server errors, dropped connections and timeouts are retried with backoff from the
    same position, and every event still arrives exactly once."""
    sell.control("events", {"stream": "leads", "items": [lead(i) for i in range(1, 21)]})
    sell.control("faults", {"path": "/v3/leads/stream", **fault})
    cfg = config(tmp_path, sell, streams=["leads"], page_limit=7)
    with capture_logs() as logs:
        assert await run_until_idle(cfg) == EXIT_OK
    assert len(stored_identities(cfg)) == 20
    failures = [e for e in logs if e["event"] == "poll_failed"]
    assert failures
    assert all(e["http_status"] == status for e in failures)
    assert [e["attempt"] for e in failures] == list(range(1, len(failures) + 1))


async def test_throttling_uses_the_sandbox_rate_limit(tmp_path: Path, sell: Sell) -> None:
    """Against the real 10 requests/s limit, a daemon configured for more is throttled, backs off, and completes."""
    sell.control("events", {"stream": "leads", "items": [lead(i) for i in range(1, 41)]})
    sell.control("behaviour", {"rate": "10/s"})
    cfg = config(tmp_path, sell, streams=["leads", "contacts", "deals"], page_limit=4)
    with capture_logs() as logs:
        assert await run_until_idle(cfg) == EXIT_OK
    assert len(stored_identities(cfg)) == 40
    assert any(e["event"] == "poll_failed" and e["http_status"] == 429 for e in logs)


async def test_malformed_page_is_retried_without_advancing(tmp_path: Path, sell: Sell) -> None:
    """A page that cannot be decoded is reported and read again from the same position."""
    sell.control("events", {"stream": "leads", "items": [lead(i) for i in range(1, 11)]})
    sell.control("faults", {"path": "/v3/leads/stream", "malformed": True, "times": 2, "after": 1})
    cfg = config(tmp_path, sell, streams=["leads"], page_limit=5)
    with capture_logs() as logs:
        assert await run_until_idle(cfg) == EXIT_OK
    assert len(stored_identities(cfg)) == 10
    failures = [e for e in logs if e["event"] == "poll_failed"]
    assert len(failures) == 2
    assert "page" in failures[0]["error"].lower()


async def test_an_item_that_cannot_be_normalised_is_quarantined(tmp_path: Path, sell: Sell) -> None:
    """One bad item is kept with its raw body and reason; the rest of its page is stored and the position moves."""
    bad = lead(2)
    bad["data"]["id"] = "not-a-number"
    sell.control("events", {"stream": "leads", "items": [lead(1), bad, lead(3)]})
    cfg = config(tmp_path, sell, streams=["leads"])
    with capture_logs() as logs:
        assert await run_until_idle(cfg) == EXIT_OK
    assert sorted(r[1] for r in stored_identities(cfg)) == [1, 3]
    [(reason, raw)] = stored(cfg, "SELECT reason, raw FROM quarantine")
    assert "id" in reason
    assert b"not-a-number" in raw
    assert any(e["event"] == "item_quarantined" for e in logs)
    assert stored(cfg, "SELECT position FROM positions") == [(sell.head("leads"),)]


@pytest.mark.parametrize("ids_as", ["number", "string"])
async def test_ids_shown_as_numbers_or_documented_as_strings_are_both_stored(
    tmp_path: Path, sell: Sell, ids_as: str
) -> None:
    """order.deal_id and line_item.product_id are read whether the Firehose shows them as numbers or as the
    documented strings (the sandbox's ids_as): nothing is quarantined, and the records keep integer ids."""
    sell.box.load(generate_history(400, seed=5))
    sell.control("behaviour", {"ids_as": ids_as})
    cfg = config(tmp_path, sell, streams=["orders", "line_items"])
    assert await run_until_idle(cfg) == EXIT_OK
    assert stored(cfg, "SELECT COUNT(*) FROM quarantine") == [(0,)]
    bodies = [json.loads(b) for (b,) in stored(cfg, "SELECT body FROM records WHERE kind IN ('order', 'line_item')")]
    assert bodies and {type(b.get("deal_id", 0)) for b in bodies} == {int}
    assert {type(b["product_id"]) for b in bodies if b["kind"] == "line_item"} == {int}


async def test_a_lead_source_and_a_deal_source_sharing_an_id_are_both_kept(tmp_path: Path, sell: Sell) -> None:
    """Sell keeps lead sources and deal sources apart and their ids may coincide: both are stored, each under its
    own kind, and neither overwrites the other."""
    at = datetime.now(UTC)
    sources = [
        item("source", {"id": 5, "name": "Website", "resource_type": "lead"}, event_time=at),
        item("source", {"id": 5, "name": "Partner referral", "resource_type": "deal"}, event_time=at),
    ]
    sell.control("events", {"stream": "sources", "items": sources})
    cfg = config(tmp_path, sell, streams=["sources"])
    assert await run_until_idle(cfg) == EXIT_OK
    kept = {(kind, json.loads(body)["name"]) for kind, body in stored(cfg, "SELECT kind, body FROM records")}
    assert kept == {("lead_source", "Website"), ("deal_source", "Partner referral")}


async def test_an_id_beyond_what_sqlite_holds_is_quarantined_and_the_page_goes_on(tmp_path: Path, sell: Sell) -> None:
    """A record id (or a person's reference) beyond 2^63-1 is quarantined with its reason instead of failing the
    page at the store; the other items of the page are stored and the position moves on."""
    huge, bad_ref = lead(2), lead(3, source_id=2**64)
    huge["data"]["id"] = 2**63
    sell.control("events", {"stream": "leads", "items": [lead(1), huge, bad_ref, lead(4)]})
    cfg = config(tmp_path, sell, streams=["leads"])
    assert await run_until_idle(cfg) == EXIT_OK
    assert sorted(r[1] for r in stored_identities(cfg)) == [1, 4]
    reasons = sorted(r for (r,) in stored(cfg, "SELECT reason FROM quarantine"))
    assert [r.split(":")[0] for r in reasons] == ["lead.id", "lead.source_id"]
    assert stored(cfg, "SELECT position FROM positions") == [(sell.head("leads"),)]


async def test_refused_token_stops_the_stream_and_says_so(tmp_path: Path, sell: Sell) -> None:
    """401 stops that stream (no blind retrying), records why, and --until-idle ends with a failure code."""
    sell.control("events", {"stream": "leads", "items": [lead(1)]})
    sell.control("tokens", {"tokens": ["someone-else"]})
    cfg = config(tmp_path, sell, streams=["leads"])
    with capture_logs() as logs:
        assert await run_until_idle(cfg) == EXIT_STREAM_FAILED
    [stopped] = [e for e in logs if e["event"] == "stream_stopped"]
    assert stopped["http_status"] == 401
    assert stopped["log_level"] == "error"
    [(reason,)] = stored(cfg, "SELECT stopped FROM positions WHERE stream = 'leads'")
    assert "401" in reason
    assert TOKEN not in str(logs)


async def test_forbidden_plan_stops_the_stream_with_a_hint(tmp_path: Path, sell: Sell) -> None:
    """403 (not the root user, or a plan without the Firehose) stops the stream with an explanation."""
    sell.control("faults", {"path": "/v3/leads/stream", "status": 403, "body": "{}"})
    cfg = config(tmp_path, sell, streams=["leads"])
    with capture_logs() as logs:
        assert await run_until_idle(cfg) == EXIT_STREAM_FAILED
    [stopped] = [e for e in logs if e["event"] == "stream_stopped"]
    assert "root user" in stopped["error"]


async def test_expired_position_marks_the_stream_and_skips_nothing(tmp_path: Path, sell: Sell) -> None:
    """410 marks the stream expired, reports it loudly, and never jumps ahead to newer events."""
    sell.control("events", {"stream": "leads", "items": [lead(i) for i in range(1, 6)]})
    cfg = config(tmp_path, sell, streams=["leads"])
    assert await run_until_idle(cfg) == EXIT_OK
    sell.control("events", {"stream": "leads", "items": [lead(i) for i in range(6, 11)]})
    sell.control("expire", {"stream": "leads", "keep": 2})
    [(before,)] = stored(cfg, "SELECT position FROM positions")
    with capture_logs() as logs:
        assert await run_until_idle(cfg) == EXIT_STREAM_FAILED
    [expired] = [e for e in logs if e["event"] == "stream_expired"]
    assert expired["log_level"] == "error"
    assert expired["http_status"] == 410
    assert stored(cfg, "SELECT position, expired FROM positions") == [(before, 1)]
    assert len(stored_identities(cfg)) == 5


async def test_an_operator_recovers_an_expired_stream_with_syncd_position(
    tmp_path: Path, sell: Sell, capsys: pytest.CaptureFixture[str]
) -> None:
    """After a 410, `syncd position --set tail` (the runbook's step) clears the mark and the next run reads every
    retained event again; nothing stored is duplicated."""
    sell.control("events", {"stream": "leads", "items": [lead(i) for i in range(1, 6)]})
    cfg = config(tmp_path, sell, streams=["leads"])
    assert await run_until_idle(cfg) == EXIT_OK
    sell.control("events", {"stream": "leads", "items": [lead(i) for i in range(6, 11)]})
    sell.control("expire", {"stream": "leads", "keep": 3})
    assert await run_until_idle(cfg) == EXIT_STREAM_FAILED
    file = tmp_path / "syncd.toml"
    file.write_text(
        f'[state]\npath = "{cfg.state.path}"\n[sell]\ntoken = "{TOKEN}"\nbase_url = "{sell.url}"\nstreams = ["leads"]\n'
    )
    args = ["position", "--config", str(file), "--stream", "leads", "--set", "tail"]
    assert await anyio.to_thread.run_sync(main, args) == 0
    assert "leads: position" in capsys.readouterr().out
    assert await run_until_idle(cfg) == EXIT_OK
    assert sorted(r[1] for r in stored_identities(cfg)) == [1, 2, 3, 4, 5, 8, 9, 10]
    assert stored(cfg, "SELECT expired FROM positions") == [(0,)]
