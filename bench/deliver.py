"""Delivery throughput per destination, against the sandboxes in their own process with rate limits off.

For each destination alone, `syncd run --until-idle` ingests a generated Sell history and delivers it; the figures
come from the daemon's own JSON log (first to last delivery outcome), so ingest time does not count:

- deliveries/s: delivered events per second (a coalesced write carries several events of one record);
- writes/s: destination records written per second (keys done).

SALESmanago is measured with batchupsert (batch_size 100) and with single upserts (batch_size 1).

    python bench/deliver.py [--events 20000] [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from sandboxes import free_port, remove_database, start_sandbox

SETUPS = {
    "salesmanago (batchupsert, batch_size 100)": ("salesmanago", "batch_size = 100\nconcurrency = 4"),
    "salesmanago (single upserts, batch_size 1)": ("salesmanago", "batch_size = 1\nconcurrency = 4"),
    "ontraport (one call per contact, concurrency 4)": ("ontraport", "concurrency = 4"),
}


def config_text(ports: dict[str, int], sink: str, sink_keys: str, db: Path) -> str:
    sm_enabled = "true" if sink == "salesmanago" else "false"
    op_enabled = "true" if sink == "ontraport" else "false"
    return f"""
[state]
path = "{db}"
[sell]
token = "bench-token"
base_url = "http://127.0.0.1:{ports["sell"]}"
streams = ["leads", "contacts"]
poll_interval = "1s"
rate = "1000000/s"
[sinks.salesmanago]
enabled = {sm_enabled}
base_url = "http://127.0.0.1:{ports["salesmanago"]}"
client_id = "bench-client"
api_secret = "bench-secret"
owner = "owner@example.com"
rate = "1000000/s"
{sink_keys if sink == "salesmanago" else ""}
[sinks.ontraport]
enabled = {op_enabled}
base_url = "http://127.0.0.1:{ports["ontraport"]}"
app_id = "bench-app"
api_key = "bench-key"
rate = "1000000/s"
external_id_field = "f1558"
{sink_keys if sink == "ontraport" else ""}
[sandbox]
sell_rate = "1000000/s"
ontraport_rate = "1000000/s"
[health]
enabled = false
[log]
level = "info"
format = "json"
"""


def one_run(config: Path, db: Path, log: Path) -> tuple[float, float, int]:
    remove_database(db)
    with log.open("wb") as out:
        code = subprocess.call(
            [sys.executable, "-m", "syncd", "run", "--config", str(config), "--until-idle"], stdout=out, stderr=out
        )
    if code != 0:
        raise SystemExit(f"syncd run exited {code}:\n{log.read_text()[-3000:]}")
    stamps: list[float] = []
    events = keys = 0
    for line in log.read_text().splitlines():
        if not line.startswith("{"):
            continue
        entry = json.loads(line)
        if entry["event"] in ("delivery_done", "delivery_skipped"):
            stamps.append(datetime.fromisoformat(entry["ts"].replace("Z", "+00:00")).timestamp())
            events += int(entry.get("events", 1))
            keys += entry["event"] == "delivery_done"
    span = max(stamps) - min(stamps)
    return events / span, keys / span, events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}; sandboxes in their own process")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        ports = {name: free_port() for name in ("sell", "salesmanago", "ontraport")}
        db = directory / "syncd.db"
        sandbox_config = directory / "sandbox.toml"
        sandbox_config.write_text(
            config_text(ports, "salesmanago", "", db).replace("enabled = false", "enabled = true")
        )
        sandbox = start_sandbox(sandbox_config, args.events, directory / "sandbox.log", apis=3)
        try:
            for label, (sink, keys) in SETUPS.items():
                config = directory / "run.toml"
                config.write_text(config_text(ports, sink, keys, db))
                results = [one_run(config, db, directory / "run.log") for _ in range(args.runs)]
                per_s = [r[0] for r in results]
                writes = [r[1] for r in results]
                print(
                    f"{label}: deliveries/s median {statistics.median(per_s):.0f} (runs {[round(x) for x in per_s]}),"
                    f" writes/s median {statistics.median(writes):.0f}, events delivered per run {results[0][2]}"
                )
        finally:
            sandbox.send_signal(signal.SIGTERM)
            sandbox.wait(timeout=30)


if __name__ == "__main__":
    main()
