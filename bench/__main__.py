"""`python -m bench`: every figure of syncd's performance in one run, written as JSON and as a Markdown table.

The simulators run in their own processes (`syncd sandbox`), and so does every daemon (`syncd run`); CPU is the
daemon process's own (user + system, from /proc or rusage), wall time from the bench's clock. Each figure is the
median of several runs with their min and max (`--runs`, 5 by default; `--quick` takes fewer and smaller runs and
says so in its output). The sections:

- ingest: `syncd run` reading every stream of a generated history of N events (`--ingest-sizes`, 50k and 1M by
  default) with BOTH destinations enabled, reachable, and limited to one call a minute: every delivery stays queued,
  the store grows by what a full fan-out adds, and next to no delivery CPU is counted. Events/s and CPU µs/event
  over the whole run and over its last tenth (the cost at that store size), and the bytes it wrote per event (its
  WAL and checkpoints: the same whatever the load); resident memory at 100k events and at the end, peak;
- delivery: a backlog of each destination (queued while it was unreachable) drained by `syncd run --until-idle`
  with rate limits off: deliveries/s (events delivered a second, first to last outcome), and the daemon's CPU per
  destination call and per delivered key (less the CPU of an idle start and stop on the drained store);
- drain: the same backlog with a rate limit on both sides: time ÷ (distinct writes ÷ rate), calls made and 429s per
  limiter window;
- latency: a lead appended to Sell every 0.5 s while the daemon runs at poll_interval 1 s with the real limits:
  appended → written in each destination (the daemon's delivery_done), p50 and p99;
- start-up: `syncd run` to READY=1 on an empty store (bench/ready.py);
- backfill: records/s against Sell's bound (bench/backfill.py);
- naive loop: bench/naive.py (read the stream, post each event to both destinations) on the same workload as syncd
  with limits off: seconds, calls, and what it loses or repeats when SIGKILLed halfway;
- floor: bench/floor.py, each part of ingest (fetch, normalise, store) and one bare destination call measured alone
  in one process, the floor under the ingest and per-call figures.

    python -m bench [--quick] [--runs 5] [--ingest-sizes 50000,1000000] [--only ingest,delivery,...]
                    [--json bench-results.json] [--markdown bench-results.md]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from floor import floor  # noqa: E402
from sandboxes import SELL_STREAMS, UNLIMITED, config_text, free_port, remove_database, sandbox, summary  # noqa: E402

PYTHON = sys.executable
TICK = os.sysconf("SC_CLK_TCK")
SECTIONS = ("ingest", "delivery", "drain", "latency", "ready", "backfill", "naive", "floor")
PERSONS = ["leads", "contacts"]


# ------------------------------------------------------------------------------------------------------------------
# processes, configs and readings


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=60) as reply:
        return json.load(reply)


def post_json(url: str, body: Any) -> Any:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}, method="POST"
    )
    with urllib.request.urlopen(request, timeout=60) as reply:
        return json.load(reply)


def proc_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_written(pid: int) -> int:
    """Bytes a live process has handed to write() so far (its WAL, its checkpoints, its logs): what a page of
    events costs the store in I/O, the same whatever else the machine is doing."""
    for line in Path(f"/proc/{pid}/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def proc_kib(pid: int, key: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    return 0


def db_value(db: Path, sql: str) -> int:
    try:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as conn:
            return int(conn.execute(sql).fetchone()[0] or 0)
    except sqlite3.OperationalError:
        return 0


def run_daemon(config: Path, log: Path, *args: str, timeout: float = 3600) -> tuple[int, float, float, int]:
    """`syncd run --config config *args` to its end: (exit code, wall s, CPU s, peak RSS KiB)."""
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen([PYTHON, "-m", "syncd", "run", "--config", str(config), *args], stdout=out, stderr=out)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - started, usage.ru_utime + usage.ru_stime, usage.ru_maxrss


def stop(proc: subprocess.Popen[bytes]) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=120)
    except subprocess.TimeoutExpired:
        proc.kill()
        return proc.wait()


def log_entries(log: Path) -> Iterator[dict[str, Any]]:
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                yield json.loads(line)


def stamp(entry: dict[str, Any]) -> float:
    return datetime.fromisoformat(str(entry["ts"]).replace("Z", "+00:00")).timestamp()


def destination_calls(ports: dict[str, int]) -> dict[str, dict[str, int]]:
    """Requests each destination simulator answered so far, per endpoint."""
    sm = get_json(f"http://127.0.0.1:{ports['salesmanago']}/_sandbox/state")
    op = get_json(f"http://127.0.0.1:{ports['ontraport']}/_sandbox/state")
    return {
        "salesmanago": dict(sm["requests_by_method"]),
        "ontraport": {endpoint: sum(counts.values()) for endpoint, counts in op["requests"].items()},
    }


def refusals(ports: dict[str, int]) -> dict[str, int]:
    sm = get_json(f"http://127.0.0.1:{ports['salesmanago']}/_sandbox/state")
    op = get_json(f"http://127.0.0.1:{ports['ontraport']}/_sandbox/state")
    op_429 = sum(counts.get("429", 0) for counts in op["requests"].values())
    return {"salesmanago": int(sm.get("throttled", 0)), "ontraport": op_429}


# ------------------------------------------------------------------------------------------------------------------
# ingest


def ingest(work: Path, sizes: list[int], runs: int) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for size in sizes:
        directory = work / f"ingest-{size}"
        directory.mkdir()
        ports = {name: free_port() for name in ("sell", "salesmanago", "ontraport")}
        db = directory / "syncd.db"
        config = directory / "run.toml"
        # Both destinations enabled and reachable, limited to a call a minute: every delivery is queued (the store
        # grows by what the fan-out adds) and the dispatchers run (claims, deferrals) without delivery CPU to speak of.
        slow = {"salesmanago": "1/min", "ontraport": "1/min"}
        config.write_text(config_text(db, ports, streams=SELL_STREAMS, rate=slow))
        rows = []
        with (
            sandbox(config, directory / "sandbox.log", events=size, serve="sell"),
            sandbox(config, directory / "destinations.log", serve="salesmanago,ontraport"),
        ):
            for _ in range(runs):
                rows.append(ingest_run(config, db, size, directory / "run.log"))
        per_s = [r["events_per_s"] for r in rows]
        cpu = [r["cpu_us_per_event"] for r in rows]
        results[str(size)] = {
            "events": size,
            "runs": runs,
            "events_per_s": summary(per_s, 0),
            "cpu_us_per_event": summary(cpu),
            "last_tenth_events_per_s": summary([r["last_tenth_events_per_s"] for r in rows], 0),
            "last_tenth_cpu_us_per_event": summary([r["last_tenth_cpu_us_per_event"] for r in rows]),
            "written_kib_per_event": summary([r["written_kib_per_event"] for r in rows]),
            "last_tenth_written_kib_per_event": summary([r["last_tenth_written_kib_per_event"] for r in rows]),
            "deliveries_queued": rows[-1]["deliveries"],
            "rss_mib_at_100k": summary([r["rss_mib_at_100k"] for r in rows if r["rss_mib_at_100k"]] or [0.0]),
            "rss_mib_at_end": summary([r["rss_mib_at_end"] for r in rows]),
            "peak_rss_mib": summary([r["peak_rss_mib"] for r in rows]),
        }
        print(f"  ingest {size}: {json.dumps(results[str(size)])}", flush=True)
    return results


def ingest_run(config: Path, db: Path, size: int, log: Path) -> dict[str, float]:
    """One daemon from an empty store until it holds `size` events (then SIGTERM); samples events, CPU and RSS."""
    remove_database(db)
    started = time.perf_counter()
    with log.open("wb") as out:
        proc = subprocess.Popen([PYTHON, "-m", "syncd", "run", "--config", str(config)], stdout=out, stderr=out)
    samples: list[tuple[float, int, float, int, int]] = []  # (wall, events, cpu, rss KiB, bytes written)
    try:
        while True:
            events = db_value(db, "SELECT MAX(seq) FROM events")
            pid = proc.pid
            samples.append(
                (time.perf_counter() - started, events, proc_cpu(pid), proc_kib(pid, "VmRSS"), proc_written(pid))
            )
            if events >= size:
                break
            if proc.poll() is not None:
                raise SystemExit(f"syncd run exited {proc.returncode}:\n{log.read_text()[-3000:]}")
            time.sleep(0.05 if size <= 100_000 else 0.2)
        peak = proc_kib(proc.pid, "VmHWM")
    finally:
        code = stop(proc)
    if code != 0:
        raise SystemExit(f"syncd run exited {code} after SIGTERM:\n{log.read_text()[-3000:]}")
    wall, _, cpu, rss, written = samples[-1]
    tenth = next(s for s in samples if s[1] >= size * 0.9)
    at_100k = next((s for s in samples if s[1] >= 100_000), None)
    span = max(wall - tenth[0], 1e-9)
    return {
        "events_per_s": size / wall,
        "cpu_us_per_event": cpu / size * 1e6,
        "last_tenth_events_per_s": (size - tenth[1]) / span,
        "last_tenth_cpu_us_per_event": (cpu - tenth[2]) / max(size - tenth[1], 1) * 1e6,
        "written_kib_per_event": written / size / 1024,
        "last_tenth_written_kib_per_event": (written - tenth[4]) / max(size - tenth[1], 1) / 1024,
        "rss_mib_at_100k": at_100k[3] / 1024 if at_100k and size > 100_000 else 0.0,
        "rss_mib_at_end": rss / 1024,
        "peak_rss_mib": peak / 1024,
        "deliveries": db_value(db, "SELECT COUNT(*) FROM deliveries"),
    }


# ------------------------------------------------------------------------------------------------------------------
# delivery and drain: a backlog built while the destination was unreachable, then drained


SETUPS = {
    "salesmanago": ("salesmanago", "batch_size = 100\nconcurrency = 4"),
    "ontraport": ("ontraport", "concurrency = 4"),
}


def backlog(directory: Path, ports: dict[str, int], sink: str, events: int) -> Path:
    """A store holding the `events` of leads and contacts and a backlog for `sink` (queued while it was unreachable)."""
    db = directory / f"backlog-{sink}.db"
    config = directory / f"backlog-{sink}.toml"
    config.write_text(config_text(db, ports, streams=PERSONS, sinks=(sink,), down=(sink,), poll="1s"))
    with subprocess.Popen(
        [PYTHON, "-m", "syncd", "run", "--config", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    ) as proc:
        try:
            deadline = time.monotonic() + 1800
            while db_value(db, "SELECT MAX(seq) FROM events") < events:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"the backlog of {sink} was not built")
                time.sleep(0.2)
        finally:
            stop(proc)
    return db


def drain_run(
    directory: Path, ports: dict[str, int], template: Path, sink: str, rate: str, keys: str, log_level: str
) -> dict[str, Any]:
    """Drain a copy of `template`'s backlog of `sink` into a fresh destination simulator with `rate` on both sides;
    then an idle run on the drained store (its CPU is the fixed cost left out of the per-call figures)."""
    db = directory / "drain.db"
    remove_database(db)
    shutil.copyfile(template, db)
    config = directory / "drain.toml"
    rates = {sink: rate}
    config.write_text(
        config_text(db, ports, streams=PERSONS, sinks=(sink,), rate=rates, poll="1s", log=log_level, extra={sink: keys})
    )
    keys_queued = db_value(db, f"SELECT COUNT(*) FROM outbox WHERE sink = '{sink}'")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        gone = {f"{k}:{i}" for k, i in conn.execute("SELECT kind, record_id FROM records WHERE deleted = 1")}
        deleted_keys = sum(key in gone for (key,) in conn.execute("SELECT key FROM outbox WHERE sink = ?", (sink,)))
    events_queued = db_value(db, f"SELECT COUNT(*) FROM deliveries WHERE sink = '{sink}' AND status = 'pending'")
    with sandbox(config, directory / f"sandbox-{sink}.log", serve=sink):
        code, wall, cpu, rss = run_daemon(config, directory / "drain.log", "--until-idle")
        if code != 0:
            raise SystemExit(f"the drain exited {code}:\n{(directory / 'drain.log').read_text()[-3000:]}")
        calls = destination_calls_one(ports, sink)
        refused = refusals_one(ports, sink)
        idle_code, _, idle_cpu, _ = run_daemon(config, directory / "idle.log", "--until-idle")
    stamps, events, done = [], 0, 0
    for entry in log_entries(directory / "drain.log"):
        if entry.get("event") in ("delivery_done", "delivery_skipped"):
            stamps.append(stamp(entry))
            events += int(entry.get("events", 1))
            done += 1
    span = (max(stamps) - min(stamps)) if len(stamps) > 1 else wall
    total_calls = sum(calls.values())
    work_cpu = max(cpu - idle_cpu, 0.0)
    return {
        "keys_queued": keys_queued,
        "deleted_keys": deleted_keys,
        "events_queued": events_queued,
        "wall_s": wall,
        "span_s": span,
        "deliveries_per_s": events / span if span else 0.0,
        "keys_done": done,
        "calls": calls,
        "calls_total": total_calls,
        "refused_429": refused,
        "cpu_s": cpu,
        "idle_cpu_s": idle_cpu,
        "cpu_ms_per_call": work_cpu / total_calls * 1e3 if total_calls else 0.0,
        "cpu_ms_per_key": work_cpu / max(done, 1) * 1e3,
        "peak_rss_mib": rss / 1024,
        "idle_exit": idle_code,
    }


def destination_calls_one(ports: dict[str, int], sink: str) -> dict[str, int]:
    if sink == "salesmanago":
        return dict(get_json(f"http://127.0.0.1:{ports['salesmanago']}/_sandbox/state")["requests_by_method"])
    state = get_json(f"http://127.0.0.1:{ports['ontraport']}/_sandbox/state")
    return {endpoint: sum(counts.values()) for endpoint, counts in state["requests"].items()}


def refusals_one(ports: dict[str, int], sink: str) -> int:
    if sink == "salesmanago":
        return int(get_json(f"http://127.0.0.1:{ports['salesmanago']}/_sandbox/state").get("throttled", 0))
    state = get_json(f"http://127.0.0.1:{ports['ontraport']}/_sandbox/state")
    return sum(int(counts.get("429", 0)) for counts in state["requests"].values())


def delivery_and_drain(work: Path, events: int, runs: int, drain_rates: dict[str, str], sections: set[str]) -> dict:
    directory = work / "delivery"
    directory.mkdir()
    ports = {name: free_port() for name in ("sell", "salesmanago", "ontraport")}
    sell_config = directory / "sell.toml"
    sell_config.write_text(config_text(directory / "x.db", ports, streams=PERSONS))
    out: dict[str, Any] = {"events": events}
    with sandbox(sell_config, directory / "sell.log", events=events, serve="sell"):
        state = get_json(f"http://127.0.0.1:{ports['sell']}/_sandbox/state")
        people = sum(int(state["streams"][s]["appended"]) for s in PERSONS)
        out["person_events"] = people
        for sink, (_, keys) in SETUPS.items():
            template = backlog(directory, ports, sink, people)
            if "delivery" in sections:
                rows = [drain_run(directory, ports, template, sink, UNLIMITED, keys, "info") for _ in range(runs)]
                out[f"delivery_{sink}"] = {
                    "runs": runs,
                    "keys_queued": rows[0]["keys_queued"],
                    "events_queued": rows[0]["events_queued"],
                    "deliveries_per_s": summary([r["deliveries_per_s"] for r in rows], 0),
                    "cpu_ms_per_call": summary([r["cpu_ms_per_call"] for r in rows], 2),
                    "cpu_ms_per_key": summary([r["cpu_ms_per_key"] for r in rows], 2),
                    "calls": rows[0]["calls"],
                    "peak_rss_mib": summary([r["peak_rss_mib"] for r in rows]),
                }
                print(f"  delivery {sink}: {json.dumps(out[f'delivery_{sink}'])}", flush=True)
            if "drain" in sections:
                rate = drain_rates[sink]
                per_s = parse_per_second(rate)
                rows = [drain_run(directory, ports, template, sink, rate, keys, "info") for _ in range(runs)]
                ratios, span_ratios, writes_ratio, per_window = [], [], [], []
                for r in rows:
                    # Distinct writes the backlog needs: its live records in batches (SALESmanago: 100 a call,
                    # Ontraport: one), and one call per deleted one.
                    batch = 100 if sink == "salesmanago" else 1
                    live = r["keys_queued"] - r["deleted_keys"]
                    needed = -(-live // batch) + r["deleted_keys"]
                    ratios.append(r["wall_s"] / (needed / per_s))
                    span_ratios.append(r["span_s"] / (needed / per_s))
                    writes_ratio.append(r["calls_total"] / max(needed, 1))
                    per_window.append(r["refused_429"] / max(r["wall_s"] * per_s / window_calls(rate), 1))
                out[f"drain_{sink}"] = {
                    "runs": runs,
                    "rate": rate,
                    "keys_queued": rows[0]["keys_queued"],
                    "deleted_keys": rows[0]["deleted_keys"],
                    "writes_needed": needed,
                    "time_over_bound": summary(ratios, 2),
                    # Beside the figure (wall time of `syncd run --until-idle`, start-up and the idle check
                    # included): first to last outcome over the bound.
                    "span_over_bound": summary(span_ratios, 2),
                    "calls_over_writes_needed": summary(writes_ratio, 2),
                    "refused_429": summary([float(r["refused_429"]) for r in rows], 0),
                    "refused_per_window": summary(per_window, 2),
                    "calls": rows[0]["calls"],
                    "wall_s": summary([r["wall_s"] for r in rows]),
                    "span_s": summary([r["span_s"] for r in rows]),
                    "cpu_s": summary([r["cpu_s"] for r in rows]),
                }
                print(f"  drain {sink}: {json.dumps(out[f'drain_{sink}'])}", flush=True)
    return out


def parse_per_second(rate: str) -> float:
    count, _, unit = rate.partition("/")
    return float(count) / {"s": 1, "min": 60, "h": 3600}[unit]


def window_calls(rate: str) -> float:
    """Calls a limiter window of `rate` lets through (the count before the slash)."""
    return float(rate.partition("/")[0])


# ------------------------------------------------------------------------------------------------------------------
# latency


def latency(work: Path, samples: int) -> dict[str, Any]:
    """Leads appended one at a time to a running daemon (poll_interval 1 s, every API's real limit)."""
    directory = work / "latency"
    directory.mkdir()
    ports = {name: free_port() for name in ("sell", "salesmanago", "ontraport")}
    db = directory / "syncd.db"
    config = directory / "run.toml"
    real = {"sell": "10/s", "salesmanago": "10/s", "ontraport": "180/min"}
    config.write_text(config_text(db, ports, streams=PERSONS, rate=real, poll="1s", log="info"))
    log = directory / "run.log"
    sell = f"http://127.0.0.1:{ports['sell']}"
    appended: dict[int, float] = {}
    with sandbox(config, directory / "sandbox.log", events=200, serve="sell,salesmanago,ontraport"):
        template = get_json(f"{sell}/_sandbox/events?stream=leads")["items"][0]
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [PYTHON, "-m", "syncd", "run", "--config", str(config)], stdout=out, stderr=subprocess.STDOUT
            )
        try:
            deadline = time.monotonic() + 120
            while db_value(db, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'") or not db_value(
                db, "SELECT COUNT(*) FROM deliveries"
            ):
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit("the daemon did not catch up with the sandbox's history")
                time.sleep(0.2)
            for n in range(samples):
                record_id = 9_000_000 + n
                item = json.loads(json.dumps(template))
                item["data"].update(id=record_id, email=f"latency{n}@example.com")
                item["meta"].update(
                    event_type="created",
                    sequence=1,
                    event_id=f"latency-{n}",
                    event_time=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
                appended[record_id] = time.time()
                post_json(f"{sell}/_sandbox/events", {"stream": "leads", "items": [item]})
                time.sleep(0.5)
            deadline = time.monotonic() + 60
            while db_value(db, "SELECT COUNT(*) FROM events WHERE record_id >= 9000000") < samples or db_value(
                db, "SELECT COUNT(*) FROM deliveries WHERE status = 'pending'"
            ):
                if time.monotonic() > deadline:
                    break
                time.sleep(0.2)
        finally:
            stop(proc)
    delays: dict[str, list[float]] = {"salesmanago": [], "ontraport": []}
    for entry in log_entries(log):
        key = str(entry.get("key", ""))
        if entry.get("event") == "delivery_done" and key.startswith("lead:"):
            record_id = int(key.partition(":")[2])
            if record_id in appended:
                delays[str(entry["sink"])].append(stamp(entry) - appended[record_id])
    result: dict[str, Any] = {"samples": samples, "poll_interval_s": 1.0}
    for sink, values in delays.items():
        values.sort()
        if not values:
            result[sink] = {"delivered": 0}
            continue
        p99 = values[min(len(values) - 1, round(0.99 * (len(values) - 1)))]
        result[sink] = {
            "delivered": len(values),
            "p50_ms": round(statistics.median(values) * 1e3),
            "p99_ms": round(p99 * 1e3),
            "max_ms": round(values[-1] * 1e3),
        }
    print(f"  latency: {json.dumps(result)}", flush=True)
    return result


# ------------------------------------------------------------------------------------------------------------------
# start-up, backfill


def ready(work: Path, runs: int) -> dict[str, Any]:
    import ready as ready_bench
    from sandboxes import start_sandbox, write_sell_config

    directory = work / "ready"
    directory.mkdir()
    config = write_sell_config(directory, free_port())
    proc = start_sandbox(config, 1000, directory / "sandbox.log")
    try:
        values = [ready_bench.one_run(config, directory) for _ in range(runs)]
    finally:
        stop(proc)
    result = {"runs": runs, "ready_s": summary(values, 3)}
    print(f"  ready: {json.dumps(result)}", flush=True)
    return result


def backfill(work: Path, records: int, runs: int) -> dict[str, Any]:
    """bench/backfill.py in a child process (its daemon runs in that process; the sandbox in another)."""
    command = [PYTHON, str(HERE / "backfill.py"), "--records", str(records), "--runs", str(runs)]
    text = subprocess.run(command, capture_output=True, text=True, check=True, cwd=work).stdout
    lines = {k.strip(): v.strip() for k, _, v in (line.partition(":") for line in text.splitlines()) if v}
    rate = float(lines["throughput"].split()[0])
    bound = float(lines["bound"].split()[0])
    result = {
        "records": records,
        "runs": runs,
        "records_per_s_median": rate,
        "bound_records_per_s": bound,
        "of_bound": round(rate / bound, 2),
        "records_per_request": float(lines["records per request"].split()[0]),
        "report": text.strip().splitlines(),
    }
    print(f"  backfill: {json.dumps({k: v for k, v in result.items() if k != 'report'})}", flush=True)
    return result


# ------------------------------------------------------------------------------------------------------------------
# the naive loop beside syncd


def naive(work: Path, events: int, runs: int) -> dict[str, Any]:
    directory = work / "naive"
    directory.mkdir()
    ports = {name: free_port() for name in ("sell", "salesmanago", "ontraport")}
    db = directory / "syncd.db"
    config = directory / "run.toml"
    config.write_text(config_text(db, ports, streams=PERSONS, poll="1s"))
    urls = {api: f"http://127.0.0.1:{port}" for api, port in ports.items()}
    naive_command = [
        PYTHON,
        str(HERE / "naive.py"),
        "--sell",
        urls["sell"],
        "--salesmanago",
        urls["salesmanago"],
        "--ontraport",
        urls["ontraport"],
        "--state",
    ]
    syncd_rows, naive_rows, killed = [], [], []
    with sandbox(config, directory / "sell.log", events=events, serve="sell"):
        read = sum(get_json(f"{urls['sell']}/_sandbox/state")["streams"][s]["appended"] for s in PERSONS)
        for _ in range(runs):
            with sandbox(config, directory / "dest.log", serve="salesmanago,ontraport"):
                remove_database(db)
                code, wall, cpu, _ = run_daemon(config, directory / "syncd.log", "--until-idle")
                if code != 0:
                    raise SystemExit(f"syncd exited {code}:\n{(directory / 'syncd.log').read_text()[-3000:]}")
                calls = destination_calls(ports)
                syncd_rows.append({"wall_s": wall, "cpu_s": cpu, "calls": calls, "contacts": contacts(ports)})
            with sandbox(config, directory / "dest.log", serve="salesmanago,ontraport"):
                state = directory / "naive.json"
                state.unlink(missing_ok=True)
                started = time.perf_counter()
                text = subprocess.run([*naive_command, str(state)], capture_output=True, text=True, check=True).stdout
                wall = time.perf_counter() - started
                naive_rows.append({"wall_s": wall, **json.loads(text), "contacts": contacts(ports)})
        # Killed halfway through, then run again from its position file, into fresh destinations.
        with sandbox(config, directory / "dest.log", serve="salesmanago,ontraport"):
            state = directory / "naive.json"
            state.unlink(missing_ok=True)
            proc = subprocess.Popen([*naive_command, str(state)], stdout=subprocess.PIPE)
            time.sleep(statistics.median(r["wall_s"] for r in naive_rows) / 2)
            proc.kill()
            proc.wait()
            assert proc.stdout is not None
            proc.stdout.close()
            before = destination_calls(ports)
            text = subprocess.run([*naive_command, str(state)], capture_output=True, text=True, check=True).stdout
            second = json.loads(text)
            after = destination_calls(ports)
            killed.append({"calls_before_kill": before, "calls_total": after, "after_restart": second})
            killed_contacts = contacts(ports)
    syncd_wall = [r["wall_s"] for r in syncd_rows]
    naive_wall = [r["wall_s"] for r in naive_rows]
    sm_syncd = sum(syncd_rows[0]["calls"]["salesmanago"].values())
    op_syncd = sum(syncd_rows[0]["calls"]["ontraport"].values())
    sm_naive, op_naive = naive_rows[0]["salesmanago_calls"], naive_rows[0]["ontraport_calls"]
    clean_calls = sm_naive + op_naive
    k = killed[0]
    killed_calls = sum(k["calls_total"]["salesmanago"].values()) + sum(k["calls_total"]["ontraport"].values())
    result = {
        "events_in_streams": read,
        "runs": runs,
        "syncd_s": summary(syncd_wall, 2),
        "naive_s": summary(naive_wall, 2),
        "syncd_events_per_s": round(read / statistics.median(syncd_wall)),
        "naive_events_per_s": round(read / statistics.median(naive_wall)),
        "syncd_speedup": round(statistics.median(naive_wall) / statistics.median(syncd_wall), 2),
        "syncd_calls": {"salesmanago": sm_syncd, "ontraport": op_syncd},
        "naive_calls": {"salesmanago": sm_naive, "ontraport": op_naive},
        "syncd_calls_by_endpoint": syncd_rows[0]["calls"],
        # At the real limits the calls are the time: SALESmanago 10/s, Ontraport 3/s.
        "at_real_limits_s": {
            "syncd": {"salesmanago": round(sm_syncd / 10, 1), "ontraport": round(op_syncd / 3, 1)},
            "naive": {"salesmanago": round(sm_naive / 10, 1), "ontraport": round(op_naive / 3, 1)},
        },
        "syncd_contacts": syncd_rows[0]["contacts"],
        "naive_contacts": naive_rows[0]["contacts"],
        "naive_deletes_dropped": naive_rows[0]["deletes_dropped"],
        "naive_killed": {
            "extra_calls_after_restart": killed_calls - clean_calls,
            "contacts_after": killed_contacts,
            "detail": k,
        },
    }
    print(f"  naive: {json.dumps({k: v for k, v in result.items() if k != 'naive_killed'})}", flush=True)
    return result


def contacts(ports: dict[str, int]) -> dict[str, int]:
    sm = get_json(f"http://127.0.0.1:{ports['salesmanago']}/_sandbox/state")
    op = get_json(f"http://127.0.0.1:{ports['ontraport']}/_sandbox/state")
    return {"salesmanago": int(sm["contacts"]), "ontraport": int(op["contacts"])}


# ------------------------------------------------------------------------------------------------------------------
# the report


def machine() -> dict[str, Any]:
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], check=False, capture_output=True, text=True, cwd=HERE
    ).stdout
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "--", ":/syncd", ":/state"],
        check=False,
        capture_output=True,
        text=True,
        cwd=HERE,
    ).stdout
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cores": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "sqlite": sqlite3.sqlite_version,
        "commit": commit.strip() + ("+changes" if dirty.strip() else ""),
        "load_before": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


def fmt(figure: dict[str, Any] | None, unit: str = "") -> str:
    if not figure:
        return "–"
    return f"{figure['median']:g}{unit} ({figure['min']:g}–{figure['max']:g})"


def markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"Measured {m['date']} on {m['cores']} cores ({m['cpu']}), Python {m['python']}, SQLite {m['sqlite']},"
        f" commit {m['commit']}, load average {m['load_before']} at the start ({report['mode']};"
        f" median of the runs, min–max in brackets).",
        "",
        "| Figure | Measured | Target |",
        "|---|---|---|",
    ]
    row = lines.append
    for size, r in report.get("ingest", {}).items():
        n = f"{int(size):,}"
        row(f"| ingest {n} events, both destinations enabled: events/s | {fmt(r['events_per_s'])} | ≥ 10,000 |")
        row(f"| ingest {n}: CPU µs/event | {fmt(r['cpu_us_per_event'])} | ≤ 50 |")
        row(
            f"| ingest {n}: last tenth events/s, CPU µs/event | {fmt(r['last_tenth_events_per_s'])},"
            f" {fmt(r['last_tenth_cpu_us_per_event'])} | flat ±10 % |"
        )
        if "written_kib_per_event" in r:
            row(
                f"| ingest {n}: KiB written per event (WAL, checkpoints, logs), whole run / last tenth |"
                f" {fmt(r['written_kib_per_event'])} / {fmt(r['last_tenth_written_kib_per_event'])} | – |"
            )
        if r["rss_mib_at_100k"]["median"]:
            row(
                f"| RSS at 100k → {n} events (MiB) | {fmt(r['rss_mib_at_100k'])} → {fmt(r['rss_mib_at_end'])}"
                " | growth ≤ 10 % |"
            )
        row(f"| peak RSS ingesting {n} (MiB) | {fmt(r['peak_rss_mib'])} | ≤ 100 MB |")
    for sink in ("salesmanago", "ontraport"):
        d = report.get("delivery", {}).get(f"delivery_{sink}")
        if d:
            row(f"| {sink} delivery (limits off): deliveries/s | {fmt(d['deliveries_per_s'])} | – |")
            row(
                f"| {sink}: syncd CPU ms per call, per key | {fmt(d['cpu_ms_per_call'])},"
                f" {fmt(d['cpu_ms_per_key'])} | ≤ 0.5, ≤ 1 |"
            )
        dr = report.get("delivery", {}).get(f"drain_{sink}")
        if dr:
            row(f"| {sink} drain at {dr['rate']}: time ÷ bound | {fmt(dr['time_over_bound'])} | ≤ 1.1 |")
            row(
                f"| {sink} drain: calls ÷ writes needed; 429s per window | {fmt(dr['calls_over_writes_needed'])};"
                f" {fmt(dr['refused_per_window'])} | 1.0; ≤ 1 |"
            )
    lat = report.get("latency")
    if lat:
        for sink in ("salesmanago", "ontraport"):
            s = lat.get(sink, {})
            if s.get("delivered"):
                row(
                    f"| latency appended → {sink} (poll 1 s, {s['delivered']} leads): p50, p99 ms |"
                    f" {s['p50_ms']}, {s['p99_ms']} | p99 ≤ 1,300 |"
                )
    r = report.get("ready")
    if r:
        row(f"| start-up to READY=1 (s) | {fmt(r['ready_s'])} | ≤ 0.5 |")
    b = report.get("backfill")
    if b:
        row(
            f"| backfill records/s vs Sell's bound | {b['records_per_s_median']:g} of {b['bound_records_per_s']:g}"
            f" ({100 * b['of_bound']:.0f} %) | – |"
        )
    n = report.get("naive")
    if n:
        row(
            f"| naive loop vs syncd, {n['events_in_streams']:,} events, limits off: seconds |"
            f" naive {fmt(n['naive_s'])}, syncd {fmt(n['syncd_s'])} (syncd {n['syncd_speedup']}×) | syncd ≥ 1× |"
        )
        row(
            f"| calls made (SALESmanago, Ontraport) | naive {n['naive_calls']['salesmanago']:,},"
            f" {n['naive_calls']['ontraport']:,}; syncd {n['syncd_calls']['salesmanago']:,},"
            f" {n['syncd_calls']['ontraport']:,} | – |"
        )
        lim = n["at_real_limits_s"]
        row(
            f"| at the real limits (calls ÷ rate, s: SALESmanago, Ontraport) | naive {lim['naive']['salesmanago']:g},"
            f" {lim['naive']['ontraport']:g}; syncd {lim['syncd']['salesmanago']:g}, {lim['syncd']['ontraport']:g}"
            " | syncd ≥ 10× to SALESmanago |"
        )
        k = n["naive_killed"]
        row(
            f"| naive loop SIGKILLed halfway | {k['extra_calls_after_restart']:,} calls repeated after restart;"
            f" {n['naive_deletes_dropped']:,} deletes never carried; no retry (a failed call drops its event) |"
            " syncd: nothing lost |"
        )
    f = report.get("floor")
    if f:
        row(
            f"| floor, {f['events']:,} events: each ingest part alone, CPU µs/event: fetch, normalise, store (sum) |"
            f" {fmt(f['fetch_us_per_event'])}, {fmt(f['normalise_us_per_event'])}, {fmt(f['store_us_per_event'])}"
            f" ({fmt(f['sum_us_per_event'])}) | the sum ≤ 50 |"
        )
        row(
            f"| floor: one Ontraport look-up alone, CPU ms per call: httpx alone, syncd's call path |"
            f" {fmt(f['httpx_ms_per_call'])}, {fmt(f['syncd_ms_per_call'])} | ≤ 0.5 |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="fewer, smaller runs (under 3 minutes)")
    parser.add_argument("--runs", type=int, default=None, help="runs of each figure (default 5; --quick 1 or 2)")
    parser.add_argument("--ingest-sizes", default=None, help="comma-separated event counts (default 50000,1000000)")
    parser.add_argument("--ingest-runs", type=int, default=None, help="runs of the largest ingest size")
    parser.add_argument("--delivery-events", type=int, default=None, help="events behind the delivery backlog")
    parser.add_argument(
        "--drain-rates",
        default=None,
        help="the drain's rate per destination, e.g. salesmanago=50/s,ontraport=200/s"
        " (default salesmanago=10/s,ontraport=100/s; --quick 50/s and 200/s)",
    )
    parser.add_argument("--naive-events", type=int, default=None)
    parser.add_argument("--latency-samples", type=int, default=None)
    parser.add_argument("--backfill-records", type=int, default=None)
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"sections to run: {','.join(SECTIONS)}")
    parser.add_argument("--json", type=Path, default=Path("bench-results.json"))
    parser.add_argument("--markdown", type=Path, default=Path("bench-results.md"))
    args = parser.parse_args()
    quick = args.quick
    runs = args.runs or (2 if quick else 5)
    sizes = [int(s) for s in (args.ingest_sizes or ("10000,30000" if quick else "50000,1000000")).split(",")]
    sections = {s.strip() for s in args.only.split(",") if s.strip()}
    unknown = sections - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections: {', '.join(sorted(unknown))}")
    mode = f"quick: {runs} runs, smaller sizes" if quick else f"full: {runs} runs"
    report: dict[str, Any] = {"machine": machine(), "mode": mode}
    print(f"python -m bench ({mode}); {json.dumps(report['machine'])}", flush=True)
    began = time.monotonic()
    steps: list[tuple[str, Callable[[Path], Any]]] = []
    if "ingest" in sections:
        largest_runs = args.ingest_runs or runs

        def run_ingest(work: Path) -> Any:
            out = ingest(work, sizes[:-1], runs) if len(sizes) > 1 else {}
            return {**out, **ingest(work, sizes[-1:], largest_runs)}

        steps.append(("ingest", run_ingest))
    if sections & {"delivery", "drain"}:
        events = args.delivery_events or (3000 if quick else 20_000)
        drain_rates = (
            {"salesmanago": "10/s", "ontraport": "100/s"}
            if not quick
            else {"salesmanago": "50/s", "ontraport": "200/s"}
        )
        for pair in (args.drain_rates or "").split(","):
            sink, _, rate = pair.strip().partition("=")
            if sink:
                if sink not in drain_rates or not rate:
                    parser.error(f"--drain-rates: {pair!r} is not destination=rate (salesmanago, ontraport)")
                drain_rates[sink] = rate
        steps.append(("delivery", lambda w: delivery_and_drain(w, events, 1 if quick else runs, drain_rates, sections)))
    if "latency" in sections:
        steps.append(("latency", lambda w: latency(w, args.latency_samples or (12 if quick else 60))))
    if "ready" in sections:
        steps.append(("ready", lambda w: ready(w, 3 if quick else runs)))
    if "backfill" in sections:
        steps.append(
            (
                "backfill",
                lambda w: backfill(w, args.backfill_records or (1000 if quick else 5000), 1 if quick else runs),
            )
        )
    if "naive" in sections:
        steps.append(
            ("naive", lambda w: naive(w, args.naive_events or (2000 if quick else 10_000), 1 if quick else runs))
        )
    if "floor" in sections:
        floor_events = 10_000 if quick else 50_000
        steps.append(("floor", lambda w: floor(w, floor_events, 1 if quick else runs, 500 if quick else 2000)))
    with tempfile.TemporaryDirectory(prefix="syncd-bench-") as tmp:
        for name, step in steps:
            print(f"{name} …", flush=True)
            work = Path(tmp) / name
            work.mkdir()
            started = time.monotonic()
            report[name] = step(work)
            report.setdefault("seconds", {})[name] = round(time.monotonic() - started, 1)
    report["machine"]["load_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    report["seconds"]["total"] = round(time.monotonic() - began, 1)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    table = markdown(report)
    args.markdown.write_text(table)
    print()
    print(table)
    print(f"({report['seconds']['total']:.0f} s; JSON in {args.json}, Markdown in {args.markdown})")


if __name__ == "__main__":
    main()
