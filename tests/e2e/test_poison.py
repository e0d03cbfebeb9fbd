"""One bad item never stops a stream: items a strict parser or the store cannot take are quarantined with their
raw bodies while the rest of their page goes on; a record a writer crashes on fails alone; a page that keeps
failing shows in `syncd status` and makes /readyz unready."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from structlog.testing import capture_logs

from state import Store
from syncd.commands.cli import main
from syncd.config import load
from syncd.daemon import Daemon
from syncd.runtime import Runtime
from syncd.sandbox.sell.streams import encode_position
from tests.e2e.world import World, person, world
from tests.support import await_until, free_port


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def _page(stream: str, items: list[dict[str, Any]]) -> str:
    """A Firehose page as Sell would send it, pointing on at the sandbox's own start of `stream`; strictly ASCII
    JSON, so a lone surrogate travels as the escape `\\ud83d`."""
    return json.dumps({"items": items, "meta": {"position": encode_position(stream, 0), "top": False}})


def _db(w: World) -> sqlite3.Connection:
    return sqlite3.connect(w.tmp_path / "syncd.db")


async def _cli(*args: str) -> int:
    code: int = await anyio.to_thread.run_sync(main, list(args))
    return code


async def test_bad_items_are_quarantined_and_the_rest_of_their_page_goes_on(w: World) -> None:
    """A leads page holding a lone surrogate, an id of 2^63, a sequence of 2^64 and a source id of 2^63, and a
    contacts page holding organisation ids of 2^63 and 2^64: those five are quarantined with their raw bodies, the
    daemon never crashes, and every other person of both pages (and the pages after them) reaches both
    destinations."""
    leads = [
        person("lead", 1),
        person("lead", 2, first_name="Zo\ud83d"),
        person("lead", 2**63),
        person("lead", 4, sequence=2**64),
        person("lead", 5, source_id=2**63),
        person("lead", 6),
    ]
    contacts = [
        person("contact", 1),
        person("contact", 2, contact_id=2**63),
        person("contact", 3, parent_organization_id=2**64),
        person("contact", 4),
    ]
    w.sell.fault(path="/v3/leads/stream", status=200, body=_page("leads", leads), times=1)
    w.sell.fault(path="/v3/contacts/stream", status=200, body=_page("contacts", contacts), times=1)
    w.append("leads", person("lead", 7))
    daemon = Daemon(w.config(), handle_signals=False)
    async with anyio.create_task_group() as tg:
        runtime: Runtime = await tg.start(daemon.run)
        await await_until(lambda: _people_at_both(w, 5), deadline=30, what="the good people at both destinations")
        daemon.stop()
    emails = {f"lead{n}@example.org" for n in (1, 6, 7)} | {f"contact{n}@example.org" for n in (1, 4)}
    assert set(w.sm_contacts()) == emails
    assert set(w.op_by_email()) == emails
    with _db(w) as conn:
        rows = conn.execute("SELECT stream, reason, raw FROM quarantine").fetchall()
    quarantined = {(stream, json.loads(raw)["data"]["id"]): (reason, raw) for stream, reason, raw in rows}
    assert len(rows) == len(quarantined) == 6
    expected = {
        ("leads", 2): "not valid JSON",
        ("leads", 2**63): "lead.id",
        ("leads", 4): "sequence",
        ("leads", 5): "lead.source_id",
        ("contacts", 2): "contact.contact_id",
        ("contacts", 3): "contact.parent_organization_id",
    }
    assert set(quarantined) == set(expected)
    for where, reason in expected.items():
        assert reason in quarantined[where][0]
    assert json.loads(quarantined[("leads", 2)][1])["data"]["first_name"] == "Zo\ud83d"  # the body as it came
    assert sum(p.state.quarantined for p in runtime.pollers) == 6
    assert all(not p.state.finished for p in runtime.pollers)


async def _people_at_both(w: World, people: int) -> bool:
    return len(w.sm_contacts()) >= people and len(w.op_by_email()) >= people


async def test_a_record_a_writer_crashes_on_fails_alone(w: World) -> None:
    """A contact whose organisation's stored shadow this syncd cannot read (written by something else) makes the
    writers fail on that contact alone, as syncd's own error: its batch's other contacts are delivered, the
    destinations are never paused, and the key keeps its error for `syncd status`."""
    async with await Store.open(w.tmp_path / "syncd.db") as store, store.transaction() as db:
        await db.execute(
            "INSERT INTO records (kind, record_id, sequence, deleted, email, body, updated_at, ref)"
            " VALUES ('contact', 999, 1, 0, '', X'00ff00', 0, '')"
        )
    contacts = [person("contact", n) for n in (1, 2, 4)]
    contacts.insert(2, person("contact", 3, contact_id=999))
    w.append("contacts", *contacts)
    daemon = Daemon(w.config(), handle_signals=False)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            runtime: Runtime = await tg.start(daemon.run)
            await await_until(lambda: _people_at_both(w, 3), deadline=30, what="the other contacts at both")
            await await_until(lambda: _retried_twice(w), deadline=30, what="contact:3 to be retried")
            daemon.stop()
    emails = {f"contact{n}@example.org" for n in (1, 2, 4)}
    assert set(w.sm_contacts()) == emails and set(w.op_by_email()) == emails
    with _db(w) as conn:
        rows = conn.execute("SELECT sink, key, attempts, last_error FROM outbox ORDER BY sink").fetchall()
    assert [(sink, key) for sink, key, _, _ in rows] == [("ontraport", "contact:3"), ("salesmanago", "contact:3")]
    assert all("syncd failed on this record" in error for _, _, _, error in rows)
    assert all(d.state.pause_kind is None for d in runtime.dispatchers)
    assert not [e for e in logs if e["event"] == "destination_unavailable"]
    crashed = [e for e in logs if e["event"] == "writer_key_crashed"]
    assert {e["key"] for e in crashed} == {"contact:3"}


async def _retried_twice(w: World) -> bool:
    with _db(w) as conn:
        attempts = [n for (n,) in conn.execute("SELECT attempts FROM outbox WHERE key = 'contact:3'")]
    return len(attempts) == 2 and min(attempts) >= 2


async def test_a_page_that_keeps_failing_shows_in_status_and_makes_readyz_unready(
    w: World, capsys: pytest.CaptureFixture[str]
) -> None:
    """A contacts page that cannot be decoded, again and again: after five failures in a row `syncd status`
    says the stream is failing (with the count and the error) and /readyz answers 503 naming it; once the page
    reads, both clear and the stream goes on."""
    w.sell.fault(path="/v3/contacts/stream", malformed=True)
    w.append("contacts", person("contact", 1))
    port = free_port()
    file = w.tmp_path / "syncd.toml"
    file.write_text(w.config_text().replace("[health]\nenabled = false", f'[health]\nlisten = "127.0.0.1:{port}"'))
    daemon = Daemon(load(file), handle_signals=False)
    async with anyio.create_task_group() as tg, httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        await tg.start(daemon.run)

        async def failing() -> bool:
            answer = await http.get("/readyz")
            return answer.status_code == 503 and "stream contacts failing" in answer.text

        await await_until(failing, deadline=30, what="/readyz to report the failing stream")
        capsys.readouterr()
        assert await _cli("status", "--json", "--config", str(file)) == 0
        stream = json.loads(capsys.readouterr().out)["streams"]["contacts"]
        assert stream["failing"] is True and stream["failures"] >= 5
        assert stream["last_error"].startswith("not a Firehose page: invalid JSON")
        assert await _cli("status", "--config", str(file)) == 0
        assert "FAILING: the same page failed" in capsys.readouterr().out
        w.sell.clear_faults()
        await await_until(lambda: _people_at_both(w, 1), deadline=30, what="the contact at both destinations")

        async def ready() -> bool:
            return (await http.get("/readyz")).status_code == 200

        await await_until(ready, deadline=10, what="/readyz to be ready again")
        daemon.stop()
    assert await _cli("status", "--json", "--config", str(file)) == 0
    stream = json.loads(capsys.readouterr().out)["streams"]["contacts"]
    assert (stream["failing"], stream["failures"], stream["last_error"]) == (False, 0, None)
