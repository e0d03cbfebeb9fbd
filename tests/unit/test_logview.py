"""`syncd logs`: parsing, filtering and rendering (table-tested), following a growing file, and the command on REAL
log output captured from a `syncd run` subprocess against the three sandboxes."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from syncd.commands.cli import build_parser
from syncd.commands.logs import (
    Entry,
    Follower,
    LogFilter,
    format_time,
    format_value,
    level_of,
    parse,
    render,
    run,
    use_color,
)
from syncd.sandbox.faults import Fault
from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.salesmanago.app import SalesmanagoSandbox
from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.sell.history import generate_history
from syncd.sandbox.server import ServerThread
from tests.support import Processes, wait_until

ANSI = re.compile(r"\033\[[0-9;]*m")
DEAD = (
    '{"sink": "salesmanago", "key": "lead:1000001", "seq": 123, "reason": "refused: Invalid email", '
    '"http_status": 200, "attempt": 1, "event": "delivery_dead", "level": "error", "ts": "2026-11-22T07:50:02.061450Z"}'
)
PAGE = (
    '{"stream": "deals", "events": 39, "top": true, "duration_ms": 35.0, "event": "page_ingested", '
    '"level": "info", "ts": "2026-11-22T07:50:00.888732Z"}'
)
RETRY = (
    '{"sink": "ontraport", "key": "contact:7", "seq": 9, "error": "HTTP 503", "attempt": 2, '
    '"event": "delivery_failed", "level": "warning", "ts": "2026-11-22T07:50:03Z"}'
)
DEBUG = '{"stream": "leads", "event": "page_read", "level": "debug", "ts": "2026-11-22T07:50:04.5+00:00"}'
TRACE = "Traceback (most recent call last):"


# ---------------------------------------------------------------------------------------------------------------
# pure parts


@pytest.mark.parametrize(
    ("line", "is_record", "prefix"),
    [
        (DEAD, True, ""),
        (DEAD + "\n", True, ""),
        (f"syncd-1  | {PAGE}", True, "syncd-1  | "),
        (f"Nov 22 07:50:00 host syncd[42]: {PAGE}", True, "Nov 22 07:50:00 host syncd[42]: "),
        (TRACE, False, ""),
        ("", False, ""),
        ("[1, 2, 3]", False, ""),
        ('{"level": "info", "msg": "no event key"}', False, ""),
        ('{"event": 42}', False, ""),
        ('{"event": "cut off", "level": "in', False, ""),
        ("INFO uvicorn: {not json}", False, ""),
    ],
)
def test_parse_recognises_syncd_json_lines_only(line: str, is_record: bool, prefix: str) -> None:
    """A line is a syncd record only when it holds a JSON object with an `event`; a prefix before it is kept."""
    entry = parse(line)
    assert (entry.record is not None) is is_record
    assert entry.raw == line.rstrip("\n")
    assert entry.prefix == prefix


@pytest.mark.parametrize(
    ("level", "expected"),
    [("info", "info"), ("WARNING", "warning"), ("warn", "warning"), ("exception", "error"), ("fatal", "critical"),
     (None, "info"), ("chatty", "info")],
)  # fmt: skip
def test_level_of_normalises_names(level: str | None, expected: str) -> None:
    """Level names are case-folded, aliases mapped, and a missing or unknown level counts as info."""
    record = {"event": "x"} if level is None else {"event": "x", "level": level}
    assert level_of(record) == expected


@pytest.mark.parametrize(
    ("log_filter", "line", "shown"),
    [
        (LogFilter(), DEBUG, True),
        (LogFilter(min_level="info"), DEBUG, False),
        (LogFilter(min_level="warning"), PAGE, False),
        (LogFilter(min_level="warning"), RETRY, True),
        (LogFilter(min_level="warning"), DEAD, True),
        (LogFilter(min_level="error"), RETRY, False),
        (LogFilter(min_level="critical"), TRACE, True),
        (LogFilter(sinks=frozenset({"ontraport"})), RETRY, True),
        (LogFilter(sinks=frozenset({"ontraport"})), DEAD, False),
        (LogFilter(sinks=frozenset({"ontraport"})), PAGE, False),
        (LogFilter(sinks=frozenset({"ontraport", "salesmanago"})), DEAD, True),
        (LogFilter(streams=frozenset({"deals"})), PAGE, True),
        (LogFilter(streams=frozenset({"leads"})), PAGE, False),
        (LogFilter(streams=frozenset({"leads"})), TRACE, True),
        (LogFilter(pattern=re.compile(r"lead:\d+")), DEAD, True),
        (LogFilter(pattern=re.compile(r"lead:\d+")), RETRY, False),
        (LogFilter(pattern=re.compile("Traceback")), TRACE, True),
        (LogFilter(pattern=re.compile("Traceback")), PAGE, False),
        (LogFilter(min_level="error", pattern=re.compile("delivery")), RETRY, False),
        (LogFilter(min_level="warning", sinks=frozenset({"ontraport"}), pattern=re.compile("503")), RETRY, True),
    ],
)
def test_filter_decides_which_lines_show(log_filter: LogFilter, line: str, shown: bool) -> None:
    """--level is a minimum, --sink/--stream must match, --grep sees the raw line; other lines only meet --grep."""
    assert log_filter.accepts(parse(line)) is shown


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2026-11-22T07:50:02.061450Z", "2026-11-22 07:50:02.061"),
        ("2026-11-22T07:50:03Z", "2026-11-22 07:50:03.000"),
        ("2026-11-22T09:50:04.5+02:00", "2026-11-22 07:50:04.500"),
        ("2026-11-22T07:50:04", "2026-11-22 07:50:04.000"),
        ("yesterday", "yesterday"),
        (1732261802, "1732261802"),
        (None, ""),
    ],
)
def test_format_time_shows_utc_to_the_millisecond(value: object, expected: str) -> None:
    """Timestamps read as UTC date and time to the millisecond; anything else is shown as it is."""
    assert format_time(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("salesmanago", "salesmanago"),
        ("lead:1000001", "lead:1000001"),
        ("http://127.0.0.1:9187", "http://127.0.0.1:9187"),
        ("<e-mail>", "<e-mail>"),
        ("merged or created", '"merged or created"'),
        ("", '""'),
        ('say "hi"', '"say \\"hi\\""'),
        ("\033[31mred", '"\\u001b[31mred"'),
        (12, "12"),
        (35.0, "35.0"),
        (True, "true"),
        (None, "null"),
        (["leads", "contacts"], '["leads","contacts"]'),
        ({"a": 1}, '{"a":1}'),
        ("Zürich", "Zürich"),
    ],
)
def test_format_value_quotes_what_is_not_a_plain_word(value: object, expected: str) -> None:
    """Plain words print bare; spaces, quotes, control characters (never raw escapes) and structures as JSON."""
    assert format_value(value) == expected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (
            DEAD,
            "2026-11-22 07:50:02.061 error   delivery_dead        sink=salesmanago key=lead:1000001 seq=123 attempt=1"
            ' http_status=200 reason="refused: Invalid email"',
        ),
        (
            PAGE,
            "2026-11-22 07:50:00.888 info    page_ingested        stream=deals duration_ms=35.0 events=39 top=true",
        ),
        (
            f"syncd-1  | {RETRY}",
            "syncd-1  | 2026-11-22 07:50:03.000 warning delivery_failed      sink=ontraport key=contact:7 seq=9"
            ' attempt=2 error="HTTP 503"',
        ),
        ('{"event": "sandbox_ready", "api": "sell"}', "info    sandbox_ready        api=sell"),
        ('{"event": "idle", "level": "info", "ts": "2026-11-22T07:50:03Z"}', "2026-11-22 07:50:03.000 info    idle"),
        (
            '{"event": "boom", "level": "error", "ts": "2026-11-22T07:50:03Z", "exception": "Traceback:\\n  x\\nE"}',
            "2026-11-22 07:50:03.000 error   boom\n    Traceback:\n      x\n    E",
        ),
        (TRACE, TRACE),
        ("  indented text stays  ", "  indented text stays  "),
    ],
)
def test_render_reads_time_level_event_then_fields(line: str, expected: str) -> None:
    """Records read time, level, event, identity keys, explanations last; tracebacks indented; other lines as-is."""
    assert render(parse(line)) == expected


def test_render_colours_only_when_asked() -> None:
    """With colour, level, event and keys carry ANSI styles and the text without them is the plain rendering."""
    entry = parse(DEAD)
    coloured = render(entry, color=True)
    assert "\033[1;31m" in coloured  # error in bold red
    assert ANSI.sub("", coloured) == render(entry, color=False)
    assert not ANSI.search(render(entry))
    assert render(Entry(TRACE), color=True) == TRACE


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize(
    ("choice", "tty", "environ", "expected"),
    [
        ("auto", True, {}, True),
        ("auto", False, {}, False),
        ("auto", True, {"NO_COLOR": ""}, False),
        ("auto", True, {"TERM": "dumb"}, False),
        ("always", False, {"NO_COLOR": "1"}, True),
        ("never", True, {}, False),
    ],
)
def test_colour_choice(choice: str, tty: bool, environ: dict[str, str], expected: bool) -> None:
    """auto colours only on a terminal (and not with $NO_COLOR or TERM=dumb); always/never are obeyed."""
    out = _Terminal() if tty else io.StringIO()
    assert use_color(choice, out, environ) is expected


# ---------------------------------------------------------------------------------------------------------------
# following a file


def test_follower_waits_for_complete_lines(tmp_path: Path) -> None:
    """Only complete lines are returned; a half-written last line comes once its newline is written."""
    log = tmp_path / "syncd.log"
    log.write_bytes(b"one\ntw")
    follower = Follower(log)
    assert follower.read_available() == ["one"]
    assert follower.read_available() == []
    with log.open("ab") as f:
        f.write(b"o\nthree\n")
    assert follower.read_available() == ["two", "three"]
    follower.close()


def test_follower_rereads_a_truncated_file(tmp_path: Path) -> None:
    """A file truncated in place (copytruncate) is read again from its start."""
    log = tmp_path / "syncd.log"
    log.write_bytes(b"old line one\nold line two\n")
    follower = Follower(log)
    assert len(follower.read_available()) == 2
    log.write_bytes(b"new\n")
    assert follower.read_available() == ["new"]
    follower.close()


def test_follower_moves_to_a_rotated_file(tmp_path: Path) -> None:
    """After a rotation (rename, new file), the old file is drained and the new one read from its start."""
    log = tmp_path / "syncd.log"
    log.write_bytes(b"a\n")
    follower = Follower(log)
    assert follower.read_available() == ["a"]
    with log.open("ab") as f:
        f.write(b"b\n")
    log.rename(tmp_path / "syncd.log.1")
    assert follower.read_available() == ["b"]  # the old file's tail first
    assert follower.read_available() == []  # no new file yet: keep the old one
    log.write_bytes(b"c\nd\n")
    assert follower.read_available() == ["c", "d"]
    follower.close()


def test_follower_reads_invalid_utf8_without_failing(tmp_path: Path) -> None:
    """Bytes that are not UTF-8 are replaced, never an error."""
    log = tmp_path / "syncd.log"
    log.write_bytes(b"caf\xe9\n")
    with Follower(log) as follower:
        assert follower.read_available() == ["caf\ufffd"]


# ---------------------------------------------------------------------------------------------------------------
# the command on real output of `syncd run`

EVENTS = 150
SELL_TOKEN = "logview-sell-token"
SM_SECRET = "logview-sm-secret"
OP_KEY = "logview-op-key"


@pytest.fixture(scope="module")
def real_log(tmp_path_factory: pytest.TempPathFactory) -> list[str]:
    """stdout of `syncd run --until-idle` (a subprocess) against Sell, SALESmanago and Ontraport sandboxes: a
    generated history with two records every destination refuses, and one 503 from Sell on the leads stream."""
    sell = SellSandbox(tokens=[SELL_TOKEN], rate=None, seed=11)
    sell.load(generate_history(EVENTS, seed=11, poison=2))
    sell.faults.add(Fault(path="/v3/leads/stream", status=503, times=1))
    sm = SalesmanagoSandbox(client_id="logview", api_secret=SM_SECRET, owners=["owner@example.com"])
    op = OntraportSandbox(app_id="2_logview", api_key=OP_KEY, rate=None)
    tmp = tmp_path_factory.mktemp("real-log")
    config = tmp / "syncd.toml"
    with ServerThread(sell.app) as s, ServerThread(sm.app) as m, ServerThread(op.app) as o:
        config.write_text(
            f"""
[state]
path = "syncd.db"
[sell]
token = "{SELL_TOKEN}"
base_url = "{s.url}"
streams = ["leads", "contacts", "deals", "notes"]
poll_interval = "50ms"
rate = "1000/s"
max_backoff = "100ms"
[sinks.salesmanago]
base_url = "{m.url}"
client_id = "logview"
api_secret = "{SM_SECRET}"
owner = "owner@example.com"
rate = "1000/s"
[sinks.ontraport]
base_url = "{o.url}"
app_id = "2_logview"
api_key = "{OP_KEY}"
rate = "1000/s"
[health]
enabled = false
"""
        )
        result = subprocess.run(
            [sys.executable, "-m", "syncd", "run", "--config", str(config), "--until-idle"],
            capture_output=True,
            timeout=90,
            check=False,
        )
    assert result.returncode == 0, result.stderr.decode()
    lines = result.stdout.decode().splitlines()
    assert all(parse(line).record is not None for line in lines), "syncd run wrote a line that is not JSON"
    return lines


def records(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in lines]


def logs(argv: list[str], text: str) -> list[str]:
    """`syncd logs ARGV` in this process, with `text` on stdin; the printed lines."""
    args = build_parser().parse_args(["logs", *argv])
    out = io.StringIO()
    assert run(args, stdin=io.BytesIO(text.encode()), out=out) == 0
    return out.getvalue().splitlines()


def test_real_output_renders_every_line(real_log: list[str]) -> None:
    """Every line `syncd run` wrote renders as `date time level event key=value ...`, in order, one for one."""
    shown = logs([], "\n".join(real_log) + "\n")
    assert len(shown) == len(real_log) > 20
    for line, printed in zip(real_log, shown, strict=True):
        record = json.loads(line)
        head = f"{format_time(record['ts'])} {record['level']:<7} {record['event']}"
        assert printed.startswith(head), printed
        assert not ANSI.search(printed)
    assert any(re.search(r" delivery_done +sink=(salesmanago|ontraport) key=\w+:\d+ seq=\d+ ", p) for p in shown)


Wanted = Callable[[dict[str, Any]], bool]


@pytest.mark.parametrize(
    ("argv", "wanted"),
    [
        (["--sink", "ontraport"], lambda r: r.get("sink") == "ontraport"),
        (["--sink", "salesmanago,ontraport"], lambda r: r.get("sink") in ("salesmanago", "ontraport")),
        (["--stream", "leads"], lambda r: r.get("stream") == "leads"),
        (["--level", "warning"], lambda r: r["level"] in ("warning", "error")),
        (["--level", "error"], lambda r: r["level"] == "error"),
        (
            ["--level", "error", "--sink", "salesmanago"],
            lambda r: r["level"] == "error" and r.get("sink") == "salesmanago",
        ),
        (["--grep", r"key.: .lead:"], lambda r: str(r.get("key", "")).startswith("lead:")),
    ],
)
def test_real_output_filters(real_log: list[str], argv: list[str], wanted: Wanted) -> None:
    """Each filter keeps exactly the records it names, in their order; the run had some of each kind."""
    expected = [r for r in records(real_log) if wanted(r)]
    shown = logs(argv, "\n".join(real_log))
    assert 0 < len(expected) < len(real_log)
    assert len(shown) == len(expected)
    for record, printed in zip(expected, shown, strict=True):
        assert f" {record['event']}" in printed
        assert f"seq={record['seq']}" in printed if "seq" in record else True


def test_real_output_has_the_faults_it_was_given(real_log: list[str]) -> None:
    """The captured run logged the Sell 503 as a warning and the refused records as dead letters (errors)."""
    shown = logs(["--level", "warning"], "\n".join(real_log))
    assert any(
        " warning poll_failed " in line and "stream=leads" in line and "http_status=503" in line for line in shown
    )
    assert sum(" error   delivery_dead " in line for line in shown) >= 2


def test_non_json_lines_pass_through_in_place(real_log: list[str]) -> None:
    """Lines that are not syncd JSON come out unchanged and where they were, whatever --level/--sink say."""
    mixed = [*real_log[:3], TRACE, '  File "x.py", line 1', *real_log[3:], "plain text at the end"]
    shown = logs(["--level", "error", "--sink", "salesmanago"], "\n".join(mixed))
    assert shown[0] == TRACE
    assert shown[1] == '  File "x.py", line 1'
    assert shown[-1] == "plain text at the end"
    assert all("delivery_dead" in line for line in shown[2:-1])
    assert logs(["--grep", "^plain"], "\n".join(mixed)) == ["plain text at the end"]


def test_last_lines_only(real_log: list[str]) -> None:
    """-n N prints only the last N lines that pass the filters."""
    everything = logs(["--sink", "ontraport"], "\n".join(real_log))
    assert logs(["--sink", "ontraport", "-n", "3"], "\n".join(real_log)) == everything[-3:]
    assert logs(["-n", "0"], "\n".join(real_log)) == []


def test_colour_on_request(real_log: list[str]) -> None:
    """--color always styles the output; the default on a pipe does not."""
    assert ANSI.search("\n".join(logs(["--color", "always"], "\n".join(real_log))))
    assert not ANSI.search("\n".join(logs([], "\n".join(real_log))))


def syncd_logs(processes: Processes, *argv: str, stdin: int | None = None) -> subprocess.Popen[bytes]:
    return processes.syncd(
        "logs",
        *argv,
        stdin=stdin if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def test_command_reads_a_pipe(real_log: list[str], processes: Processes) -> None:
    """`... | syncd logs --level error` as a process: reads the pipe to EOF and prints the dead letters."""
    proc = syncd_logs(processes, "--level", "error", stdin=subprocess.PIPE)
    out, err = proc.communicate(("\n".join(real_log) + "\n").encode(), timeout=30)
    assert proc.returncode == 0, err.decode()
    lines = out.decode().splitlines()
    assert lines and all(" error   " in line for line in lines)
    assert len(lines) == sum(r["level"] == "error" for r in records(real_log))


def test_command_stops_quietly_when_the_reader_goes(real_log: list[str], tmp_path: Path, processes: Processes) -> None:
    """`syncd logs FILE | head -1`: once the reader closes the pipe, syncd logs exits 0 without a traceback."""
    big = tmp_path / "big.log"
    big.write_text("\n".join(real_log * 40) + "\n")  # well over a pipe's buffer
    proc = syncd_logs(processes, str(big))
    assert proc.stdout is not None and proc.stderr is not None
    assert proc.stdout.readline()
    proc.stdout.close()
    assert proc.wait(timeout=30) == 0
    assert proc.stderr.read() == b""
    proc.stderr.close()


def _collect(stream: io.BufferedReader, into: list[str]) -> None:
    for raw in stream:
        into.append(raw.decode().rstrip("\n"))


@pytest.fixture
def follower_proc(tmp_path: Path, processes: Processes) -> Iterator[tuple[subprocess.Popen[bytes], Path, list[str]]]:
    log = tmp_path / "syncd.log"
    log.write_text("")
    proc = syncd_logs(processes, str(log), "--follow", "--sink", "ontraport")
    printed: list[str] = []
    assert proc.stdout is not None
    reader = threading.Thread(target=_collect, args=(proc.stdout, printed), daemon=True)
    reader.start()
    try:
        yield proc, log, printed
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=10)
        reader.join(timeout=10)
        for stream in (proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()


def test_follow_prints_lines_as_the_file_grows(
    real_log: list[str], follower_proc: tuple[subprocess.Popen[bytes], Path, list[str]]
) -> None:
    """`syncd logs FILE --follow` prints lines appended later, filtered, as they arrive; Ctrl-C ends it (130)."""
    proc, log, printed = follower_proc
    ontraport = [line for line in real_log if json.loads(line).get("sink") == "ontraport"]
    assert len(ontraport) >= 4
    half = len(real_log) // 2
    with log.open("a") as f:
        f.write("\n".join(real_log[:half]) + "\n")
    first = sum(json.loads(line).get("sink") == "ontraport" for line in real_log[:half])
    assert 0 < first < len(ontraport)
    wait_until(lambda: len(printed) >= first, timeout=15, what="the first half to be printed")
    rest = "\n".join(real_log[half:]) + "\n"
    with log.open("a") as f:
        f.write(rest[:40])
        f.flush()
        os.fsync(f.fileno())
        f.write(rest[40:])
    wait_until(lambda: len(printed) >= len(ontraport), timeout=15, what="the rest to be printed")
    assert len(printed) == len(ontraport)
    assert all("sink=ontraport" in line for line in printed)
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 130
