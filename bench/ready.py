"""Start-up time: from starting `syncd run` to systemd's READY=1, with an empty store.

A unix datagram socket stands in for systemd's $NOTIFY_SOCKET; the Sell sandbox runs in its own process. Each run
starts the daemon on a fresh state file, waits for READY=1, then stops it with SIGTERM (it must exit 0). Prints
the median of several runs and every run.

    python bench/ready.py [--runs 5]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sandboxes import free_port, remove_database, start_sandbox, write_sell_config


def one_run(config: Path, directory: Path) -> float:
    remove_database(directory / "syncd.db")
    address = str(directory / "notify.sock")
    Path(address).unlink(missing_ok=True)
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(address)
        sock.settimeout(60)
        env = {**os.environ, "NOTIFY_SOCKET": address}
        started = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-m", "syncd", "run", "--config", str(config)],
            cwd=directory,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            while True:
                fields = sock.recv(4096).decode().split("\n")
                if "READY=1" in fields:
                    ready = time.perf_counter() - started
                    break
        finally:
            proc.send_signal(signal.SIGTERM)
            code = proc.wait(timeout=60)
    if code != 0:
        raise SystemExit(f"syncd run exited {code} after SIGTERM")
    return ready


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        config = write_sell_config(directory, free_port())
        sandbox = start_sandbox(config, 1000, directory / "sandbox.log")
        try:
            runs = [one_run(config, directory) for _ in range(args.runs)]
        finally:
            sandbox.send_signal(signal.SIGTERM)
            sandbox.wait(timeout=30)
    result = {
        "runs": args.runs,
        "ready_s_median": round(statistics.median(runs), 3),
        "ready_s_all": [round(x, 3) for x in runs],
    }
    print("start to READY=1:", json.dumps(result))


if __name__ == "__main__":
    main()
