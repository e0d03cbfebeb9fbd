"""`syncd demo` as a user runs it (a real subprocess: sandboxes in-process, the real daemon, a real state file), and
the pure pieces of its report table-tested."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from syncd.demo.report import SinkSummary, ranked_reasons, reason_kind
from syncd.demo.run import commands
from syncd.demo.view import flatten
from syncd.demo.world import POISON, expected
from syncd.routing import ROUTES
from syncd.sandbox.sell.history import generate_history, item
from tests.support import Processes, wait_until
from tests.terminal import Terminal

ROOT = Path(__file__).resolve().parents[2]
EVENTS = 2000
SECTIONS = (
    "Events ingested",
    "Destinations",
    "Dead letters",
    "History (deals, orders, line items, notes)",
    "A sample record",
    "A sample deal",
    "A sample note",
    "Timings",
    "Look further",
)


def syncd(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "syncd", *args], check=False, cwd=ROOT, capture_output=True, text=True, timeout=timeout
    )


def routed_from_history(events: int, seed: int) -> dict[str, int]:
    """Deliveries per destination, counted straight from the raw history: every event of a kind the destination
    takes (syncd.routing.ROUTES), organisations included (the history has no repeats, and sequences never fall)."""
    history = [i for _, i in generate_history(events, seed=seed, poison=POISON)]
    identities = {(i["meta"]["type"], i["data"]["id"], i["meta"]["sequence"], i["meta"]["event_type"]) for i in history}
    assert len(identities) == len(history)
    newest: dict[tuple[str, int], int] = {}
    for i in history:
        record = (i["meta"]["type"], i["data"]["id"])
        assert i["meta"]["sequence"] >= newest.get(record, 0)
        newest[record] = i["meta"]["sequence"]
    return {sink: sum(1 for i in history if i["meta"]["type"] in kinds) for sink, kinds in ROUTES.items()}


@pytest.fixture(scope="module")
def kept(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """One `syncd demo --events 2000 --json --keep DIR` run, shared by the tests that read what it left."""
    directory = tmp_path_factory.mktemp("demo") / "kept"
    return directory, syncd("demo", "--events", str(EVENTS), "--json", "--keep", str(directory))


def test_demo_json_accounts_for_every_event(kept: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    """`syncd demo --events 2000 --json` exits 0 and its JSON accounts for every event in both destinations."""
    directory, done = kept
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["events_ingested"] == EVENTS
    assert report["accounted_for"] is True
    assert all(s["at_top"] for s in report["streams"].values())
    assert sum(s["events"] for s in report["streams"].values()) == EVENTS
    routed = routed_from_history(EVENTS, seed=1)
    with sqlite3.connect(f"file:{directory / 'syncd.db'}?mode=ro", uri=True) as db:
        in_store = dict(db.execute("SELECT sink, COUNT(*) FROM deliveries GROUP BY sink").fetchall())
        requeued = dict(
            db.execute(
                "SELECT d.sink, COUNT(*) FROM deliveries d JOIN events e ON e.seq = d.seq"
                " WHERE e.action = 'touched' GROUP BY d.sink"
            ).fetchall()
        )
        statuses = Counter(
            {(s, st): n for s, st, n in db.execute("SELECT sink, status, COUNT(*) FROM deliveries GROUP BY 1, 2")}
        )
    assert set(report["destinations"]) == {"salesmanago", "ontraport"}
    for sink, counts in report["destinations"].items():
        # People written again for their organisation's change come from no stream: the report counts them apart.
        assert counts["requeued"] == requeued.get(sink, 0)
        settled = counts["delivered"] + counts["skipped"] + counts["dead"]
        assert settled == routed[sink] + counts["requeued"] == in_store[sink], sink
        assert counts["pending"] == 0
        assert counts["dead"] == statuses[(sink, "dead")]
        assert counts["delivered"] == statuses[(sink, "done")]
    assert report["destinations"]["salesmanago"]["dead"] >= 1  # the poison leads, refused by both
    assert report["destinations"]["ontraport"]["dead"] >= 1
    letters = report["dead_letters"]
    assert letters and all(letter["key"].startswith("lead:") for letter in letters)
    reasons = {letter["sink"]: letter["reason"] for letter in letters}
    assert "64 characters" in reasons["salesmanago"]
    assert "Invalid email" in reasons["ontraport"]
    assert report["duration_s"] > 0


def test_demo_sample_is_read_back_from_each_destination(kept: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    """The JSON sample holds one record as Sell sent it and as SALESmanago and Ontraport hold it."""
    sample: dict[str, Any] = json.loads(kept[1].stdout)["sample"]
    sell, sm, op = sample["sell"], sample["salesmanago"], sample["ontraport"]
    assert sample["record"].split(":")[0] in ("lead", "contact")
    assert sell["email"] and sm["email"].lower() == op["email"].lower() == sell["email"].lower()
    assert sm["name"] == f"{sell['first_name']} {sell['last_name']}".strip()
    assert op["firstname"] == sell["first_name"] and op["lastname"] == sell["last_name"]
    assert sm["contactId"] and op["id"]
    assert "ZENDESK_SELL" in sm["tags"]
    assert op["f1558"] == sm["externalId"] == f"sell-{sample['record'].replace(':', '-')}"


def test_demo_shows_the_history_each_destination_holds(kept: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    """The JSON report counts SALESmanago's external events by type and Ontraport's purchases, their lines,
    products and notes as the sandboxes hold them, with no invoice e-mailed; its sample deal is won, with its
    PURCHASE event in SALESmanago and its logged transactions (template -1) in Ontraport, and its sample note is
    the Sell note's text on an Ontraport contact."""
    report = json.loads(kept[1].stdout)
    history, sample = report["history"], report["history_sample"]
    assert history["ontraport_invoices_emailed"] == 0
    assert {"OFFER", "PURCHASE", "CANCELLED"} <= set(history["salesmanago_events"])
    assert history["ontraport_purchases"] >= 1 and history["ontraport_purchase_lines"] >= history["ontraport_purchases"]
    assert history["ontraport_purchases"] <= history["salesmanago_events"]["PURCHASE"]
    assert history["ontraport_products"] >= 1 and history["ontraport_notes"] >= 1
    deal = sample["deal"]
    assert deal["sell"]["stage"].endswith("(won)")
    assert "PURCHASE" in [e["contactExtEventType"] for e in deal["salesmanago"]]
    assert deal["ontraport"] and all(t["template_id"] == "-1" and t["status"] == "1" for t in deal["ontraport"])
    assert all(t["lines"] and t["external_order_id"].startswith("sell-") for t in deal["ontraport"])
    note = sample["note"]
    assert note["ontraport"]["data"] == note["sell"]["content"] and note["ontraport"]["contact_id"]


def test_kept_directory_serves_the_commands_to_look_further(
    kept: tuple[Path, subprocess.CompletedProcess[str]],
) -> None:
    """With --keep, `syncd status --config DIR/syncd.toml --json` reads the demo's state and agrees with its report."""
    directory, done = kept
    report = json.loads(done.stdout)
    status = syncd("status", "--config", str(directory / "syncd.toml"), "--json")
    assert status.returncode == 0, status.stderr
    data = json.loads(status.stdout)
    assert data["events"] == EVENTS
    assert all(s["at_top"] for s in data["streams"].values())
    for sink, counts in report["destinations"].items():
        assert data["sinks"][sink]["done"] == counts["delivered"]
        assert data["sinks"][sink]["dead"] == counts["dead"]
        assert data["sinks"][sink]["pending"] == 0
    assert any(f"--config {directory}/syncd.toml" in command for command in report["commands"])
    assert (directory / "syncd.log").stat().st_size > 0


def test_demo_never_shows_its_credentials(kept: tuple[Path, subprocess.CompletedProcess[str]]) -> None:
    """The generated credentials appear in no output, log line or config; only in their own 0600 files."""
    directory, done = kept
    files = sorted((directory / "secrets").iterdir())
    assert len(files) == 3
    texts = [done.stdout, done.stderr, (directory / "syncd.log").read_text(), (directory / "syncd.toml").read_text()]
    for file in files:
        assert file.stat().st_mode & 0o077 == 0
        secret = file.read_text().strip()
        assert len(secret) >= 16
        assert not any(secret in text for text in texts), file.name


def test_demo_human_summary_off_a_terminal() -> None:
    """Not on a terminal, the summary is plain text with every section (the history each destination holds: events,
    purchases, notes, no invoice e-mailed), and progress goes to stderr as lines."""
    done = syncd("demo", "--events", "300", "--seed", "3")
    assert done.returncode == 0, done.stderr
    for section in SECTIONS:
        assert section in done.stdout, section
    assert "every event accounted for" in done.stdout
    history = done.stdout.split("History (deals, orders, line items, notes)")[1].split("\n\n")[0]
    for line in ("SALESmanago external events", "Ontraport purchases logged", "Ontraport notes"):
        assert line in history, history
    assert re.search(r"invoices e-mailed\s+0\b", history), history
    assert "\x1b[" not in done.stdout
    # run as `python -m syncd`, it says so; without --keep, the first command keeps the same demo (no placeholder)
    assert f"{sys.executable} -m syncd demo --events 300 --seed 3 --keep ./syncd-demo " in done.stdout
    assert f"{sys.executable} -m syncd dlq list --config ./syncd-demo/syncd.toml " in done.stdout
    assert "syncd demo: 300 Sell events, seed 3" in done.stderr
    assert "Traceback" not in done.stderr and '"event"' not in done.stderr  # no daemon log lines


def test_demo_on_a_terminal_draws_a_live_table(processes: Processes) -> None:
    """On a terminal (a pseudo-terminal here) the progress is a live rich table, followed by the summary."""
    term = Terminal(50, 120)
    proc = processes.start(
        [sys.executable, "-m", "syncd", "demo", "--events", "300"],
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=term.follower,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **term.env},
    )
    with term.reading():
        try:
            assert proc.wait(timeout=60) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
    screen = term.screen()
    assert "events read" in screen and "pending" in screen  # the live table's headers
    assert "300 / 300" in screen
    for section in SECTIONS:
        assert section in screen, section


def test_sigint_stops_the_demo_gracefully(tmp_path: Path, processes: Processes) -> None:
    """Ctrl-C mid-run stops the daemon gracefully: exit 130 and a report saying it was interrupted."""
    directory = tmp_path / "demo"
    proc = processes.start(
        [
            sys.executable,
            "-m",
            "syncd",
            "demo",
            "--events",
            "3000",
            "--rate-limits",
            "--json",
            "--keep",
            str(directory),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        log = directory / "syncd.log"
        wait_until(lambda: log.exists() and "delivery_done" in log.read_text(), timeout=30, what="a first delivery")
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 130, err
    report = json.loads(out)
    assert report["interrupted"] is True and report["accounted_for"] is False
    assert report["events_ingested"] > 0
    assert '"daemon_stopped"' in (directory / "syncd.log").read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--events", "0"), "--events: expected a positive number"),
        (("--keep", "{existing}"), "already holds a demo's state"),
    ],
)
def test_demo_refuses_bad_options(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    """A bad option stops the demo before it starts, with exit 78 and one clear message."""
    (tmp_path / "syncd.db").write_bytes(b"")
    done = syncd("demo", *(a.format(existing=tmp_path) for a in args))
    assert done.returncode == 78
    assert message in done.stderr


# ---------------------------------------------------------------------------------------------------------------
# pure pieces


def _person(kind: str, record_id: int, sequence: int, action: str = "updated", **data: Any) -> dict[str, Any]:
    return item(kind, {"id": record_id, "email": f"p{record_id}@example.org", **data}, action=action, sequence=sequence)


@pytest.mark.parametrize(
    ("history", "events", "routed"),
    [
        ([], 0, 0),
        ([("leads", _person("lead", 1, 1, "created")), ("leads", _person("lead", 1, 2))], 2, 2),
        ([("leads", _person("lead", 1, 1, "created"))] * 2, 1, 1),  # a repeat is one event
        ([("leads", _person("lead", 1, 3)), ("leads", _person("lead", 1, 2))], 2, 1),  # the older one is stale
        ([("contacts", _person("contact", 5, 1, "created", is_organization=True))], 1, 1),  # written like people
        ([("stages", item("stage", {"id": 1, "name": "Won", "category": "won"}))], 1, 0),
    ],
)
def test_expected_counts_events_and_deliveries(
    history: list[tuple[str, dict[str, Any]]], events: int, routed: int
) -> None:
    """The demo's own count of what a history must produce: repeats once, stale and non-people (stages) never
    routed."""
    got = expected(history)
    assert got.events == events
    assert got.routed == {"salesmanago": routed, "ontraport": routed}


@pytest.mark.parametrize(
    ("counts", "accounted"),
    [
        ({"routed": 10, "queued": 10, "delivered": 7, "skipped": 2, "dead": 1, "pending": 0}, True),
        ({"routed": 10, "queued": 10, "delivered": 7, "skipped": 2, "dead": 0, "pending": 1}, False),
        ({"routed": 10, "queued": 9, "delivered": 7, "skipped": 2, "dead": 0, "pending": 0}, False),
        ({"routed": 10, "queued": 11, "delivered": 8, "skipped": 2, "dead": 1, "pending": 0}, False),
        ({"routed": 0, "queued": 0, "delivered": 0, "skipped": 0, "dead": 0, "pending": 0}, True),
        ({"routed": 10, "queued": 12, "requeued": 2, "delivered": 9, "skipped": 2, "dead": 1, "pending": 0}, True),
        ({"routed": 10, "queued": 12, "requeued": 1, "delivered": 9, "skipped": 2, "dead": 1, "pending": 0}, False),
    ],
)
def test_a_destination_is_accounted_for_only_when_settled(counts: dict[str, int], accounted: bool) -> None:
    """Delivered + skipped + dead must equal the routed events (and requeues) and the store's deliveries, with none
    pending."""
    summary = SinkSummary(
        sink="salesmanago",
        routed=counts["routed"],
        queued=counts["queued"],
        delivered=counts["delivered"],
        skipped=counts["skipped"],
        dead=counts["dead"],
        pending=counts["pending"],
        requeued=counts.get("requeued", 0),
    )
    assert summary.accounted_for is accounted


@pytest.mark.parametrize(
    ("reason", "kind"),
    [
        (
            "not deleted: contact:2000165 still maps to the same destination contact",
            "not deleted: contact:… still maps to the same destination contact",
        ),
        ("unchanged since the last write", "unchanged since the last write"),
        ("lead:12 and contact:7", "lead:… and contact:…"),
        ("  ", "(no reason given)"),
    ],
)
def test_reason_kind_drops_the_record(reason: str, kind: str) -> None:
    """Skip reasons are counted by kind, without the record they name."""
    assert reason_kind(reason) == kind


@pytest.mark.parametrize(
    ("counts", "top"),
    [
        ({}, ()),
        ({"a": 1, "b": 3}, (("b", 3), ("a", 1))),
        ({"a": 2, "b": 2, "c": 2, "d": 1, "e": 1}, (("a", 2), ("b", 2), ("c", 2), ("d", 1), ("e", 1))),
    ],
)
def test_every_reason_is_listed(counts: dict[str, int], top: tuple[tuple[str, int], ...]) -> None:
    """Every skip reason is shown, most frequent first: none is folded into "other reasons" (they hid what
    happened)."""
    assert ranked_reasons(Counter(counts)) == top


@pytest.mark.parametrize(
    ("values", "flat"),
    [
        ({"a": 1}, {"a": 1}),
        ({"address": {"city": "Praha", "zip": ""}}, {"address.city": "Praha"}),
        ({"custom": {"Office": {"city": "London"}}}, {"custom": {"Office": {"city": "London"}}}),
        ({"tags": ["x"]}, {"tags": ["x"]}),
    ],
)
def test_flatten_spells_out_plain_nested_values(values: dict[str, Any], flat: dict[str, Any]) -> None:
    """A dict of plain values shows as dotted keys; deeper structures stay whole."""
    assert flatten(values) == flat


@pytest.mark.parametrize(
    ("directory", "letter", "wanted"),
    [
        (None, 3, "syncd demo --seed 7 --keep ./syncd-demo"),
        (None, 3, "syncd dlq show 1 --config ./syncd-demo/syncd.toml"),
        (Path("/srv/demo"), 4, "syncd dlq show 4 --config /srv/demo/syncd.toml"),
    ],
)
def test_commands_name_the_kept_directory(directory: Path | None, letter: int | None, wanted: str) -> None:
    """The commands to look further point at the kept directory and its first dead letter; without --keep the first
    runs the same demo again keeping it (every command runs as printed: no placeholder such as DIR or ID)."""
    found = commands(directory, letter, again=" --seed 7")
    assert any(line.startswith(wanted) for line in found)
    assert any("syncd status --config" in line for line in found)
    assert not any(re.search(r"\b(DIR|ID)\b", line.split("#")[0]) for line in found)


def test_demo_feedback_shows_the_tags_on_the_sample_record(tmp_path: Path) -> None:
    """`syncd demo --feedback` writes each person's outcomes back on it in Sell: the sample record (held by both
    destinations) carries synced-salesmanago and synced-ontraport, a lead both refused carries both rejected tags,
    the echoes of those writes are stored and delivered nowhere, and everything is still accounted for."""
    done = syncd("demo", "--events", "400", "--feedback", "--json", "--keep", str(tmp_path / "kept"), timeout=300)
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    report = json.loads(done.stdout)
    assert report["accounted_for"] is True
    tags = report["sample"]["feedback"]["tags"]
    assert {"synced-salesmanago", "synced-ontraport"} <= set(tags)
    assert report["feedback"]["pending"] == 0 and report["feedback"]["written"] > 0
    assert report["feedback_echoes"] > 0
    with sqlite3.connect(tmp_path / "kept" / "syncd.db") as conn:
        refused = conn.execute(
            "SELECT COUNT(*) FROM outcomes WHERE outcome = 'dead' AND key IN (SELECT key FROM outcomes"
            " WHERE outcome = 'dead' GROUP BY key HAVING COUNT(*) = 2)"
        ).fetchone()[0]
    assert refused == 2 * POISON
    human = syncd("demo", "--events", "200", "--feedback", timeout=300)
    assert human.returncode == 0, (human.stdout[-3000:], human.stderr[-3000:])
    assert "Feedback to Sell" in human.stdout and "with syncd's feedback" in human.stdout
    assert "synced-salesmanago" in human.stdout


def repeated(report: dict[str, Any]) -> dict[str, Any]:
    """What a seeded demo repeats exactly: the events, what was routed to each destination, the dead letters and the
    history each destination holds (not the split of the rest between delivered and skipped: see the README)."""
    letters = sorted((x["sink"], x["key"], x["reason"]) for x in report["dead_letters"])
    routed = {sink: counts["routed"] for sink, counts in report["destinations"].items()}
    every = all(counts["accounted_for"] for counts in report["destinations"].values())
    return {"events": report["events_ingested"], "routed": routed, "accounted_for": every, "dead_letters": letters,
            "history": report["history"]}  # fmt: skip


def test_the_same_seed_repeats_the_history_routes_and_dead_letters() -> None:
    """Two demos with one seed: the same events, routes, dead letters and history in each destination."""
    first, second = (syncd("demo", "--events", "800", "--seed", "5", "--json", timeout=120) for _ in range(2))
    assert first.returncode == 0 and second.returncode == 0, first.stderr + second.stderr
    assert repeated(json.loads(first.stdout)) == repeated(json.loads(second.stdout))
