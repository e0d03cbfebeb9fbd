"""The demo's world: generated credentials, the config that points the real daemon at the in-process sandboxes, and
what the generated Sell history must produce (events per stream, deliveries per destination).

Credentials are written to files (mode 0600) that the config names as `file:secrets/...`, so the config itself holds
no secret and the commands a user runs after `syncd demo --keep DIR` read exactly what the demo used.
"""

from __future__ import annotations

import os
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgspec

from syncd.config import Config, SandboxConfig, loads
from syncd.events import STREAM_KINDS
from syncd.routing import route
from syncd.sell.normalise import NormaliseError, normalise

STREAMS = tuple(STREAM_KINDS)
SINKS = ("salesmanago", "ontraport")
POISON = 2  # leads whose e-mail both destinations refuse: the dead letters the demo shows
OWNER = "demo-owner@example.com"
CONFIG_NAME = "syncd.toml"
STATE_NAME = "syncd.db"
LOG_NAME = "syncd.log"
SECRETS_DIR = "secrets"
UNLIMITED = "100000/s"  # the daemon's own limit when the sandboxes enforce none
FEEDBACK = """[feedback]
# Each person's outcome in both destinations written on it in Sell: synced-<destination> or rejected-<destination>.
enabled = true
late_write_window = "2s"
rate = "{rate}"
concurrency = 4
"""


@dataclass(frozen=True, slots=True)
class Credentials:
    """What the sandboxes accept and the daemon sends; every value but the ids is a secret."""

    sell_token: str
    sm_client_id: str
    sm_secret: str
    op_app_id: str
    op_key: str

    @classmethod
    def generate(cls) -> Credentials:
        return cls(
            sell_token=secrets.token_hex(20),
            sm_client_id=f"demo{secrets.token_hex(4)}",
            sm_secret=secrets.token_hex(16),
            op_app_id=f"2_{secrets.randbelow(90000) + 10000}_demo",
            op_key=secrets.token_urlsafe(18),
        )

    def secret_values(self) -> list[str]:
        return [self.sell_token, self.sm_secret, self.op_key]

    def files(self) -> dict[str, str]:
        """Secret file name (under `secrets/`) -> its content."""
        return {"sell_token": self.sell_token, "salesmanago_secret": self.sm_secret, "ontraport_key": self.op_key}


@dataclass(frozen=True, slots=True)
class Ports:
    sell: int = 0
    salesmanago: int = 0
    ontraport: int = 0


def config_text(creds: Credentials, ports: Ports, *, rate_limits: bool, feedback: bool = False) -> str:
    """The demo's config: every stream, both destinations, secrets by file reference, state and logs beside it;
    with `feedback`, each person's outcomes written back on it in Sell as tags."""
    sell_rate = "10/s" if rate_limits else UNLIMITED
    sm_rate = "10/s" if rate_limits else UNLIMITED
    op_rate = "180/min" if rate_limits else UNLIMITED
    op_concurrency = 4 if rate_limits else 8
    limits = "the APIs' real limits" if rate_limits else "no rate limits (the sandboxes enforce none)"
    return f"""# Written by `syncd demo`: the daemon against the built-in sandboxes on loopback, with {limits}.
# The sandboxes lived inside the demo's process; these ports are closed once it ends.

[state]
path = "{STATE_NAME}"

[sell]
token = "file:{SECRETS_DIR}/sell_token"
base_url = "http://127.0.0.1:{ports.sell}"
streams = [{", ".join(f'"{s}"' for s in STREAMS)}]
start = "tail"
poll_interval = "200ms"
rate = "{sell_rate}"
max_backoff = "2s"

[sinks.salesmanago]
base_url = "http://127.0.0.1:{ports.salesmanago}"
client_id = "{creds.sm_client_id}"
api_secret = "file:{SECRETS_DIR}/salesmanago_secret"
owner = "{OWNER}"
rate = "{sm_rate}"
max_backoff = "5s"

[sinks.ontraport]
base_url = "http://127.0.0.1:{ports.ontraport}"
app_id = "{creds.op_app_id}"
api_key = "file:{SECRETS_DIR}/ontraport_key"
rate = "{op_rate}"
concurrency = {op_concurrency}
external_id_field = "f1558"
max_backoff = "5s"

[sinks.ontraport.purchases]
# A won deal waits this long for its orders and line items before it is logged (the sandbox serves them at once).
settle = "1s"

{FEEDBACK.format(rate="5/s" if rate_limits else "200/s") if feedback else ""}
[log]
level = "info"
format = "json"

[health]
enabled = false  # the demo shows its own progress instead of /livez, /readyz and /metrics

[run]
shutdown_timeout = "10s"
"""


def write_secrets(directory: Path, creds: Credentials) -> None:
    """The credential files, readable by the owner only."""
    folder = directory / SECRETS_DIR
    folder.mkdir(mode=0o700, exist_ok=True)
    for name, value in creds.files().items():
        path = folder / name
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(value + "\n")


def write_config(directory: Path, text: str) -> Path:
    path = directory / CONFIG_NAME
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as file:
        file.write(text)
    return path


@dataclass(frozen=True, slots=True)
class Expected:
    """What the history should leave in the store: distinct events per stream, deliveries per destination."""

    events: int
    by_stream: dict[str, int]
    routed: dict[str, int]
    unreadable: int  # items the daemon will quarantine instead of storing


def expected(history: Iterable[tuple[str, dict[str, Any]]], sinks: Sequence[str] = SINKS) -> Expected:
    """Count independently of the daemon what `history` routes where: each distinct (kind, id, sequence, action)
    once, an item older than one already seen for its record stored but not delivered (stale), as the store does."""
    seen: set[tuple[str, int, int, str]] = set()
    newest: dict[tuple[str, int], int] = {}
    by_stream: Counter[str] = Counter()
    routed: Counter[str] = Counter()
    unreadable = 0
    encoder = msgspec.json.Encoder()
    for stream, item in history:
        try:
            event = normalise(stream, encoder.encode(item))
        except NormaliseError:
            unreadable += 1
            continue
        if event.identity in seen:
            continue
        seen.add(event.identity)
        by_stream[stream] += 1
        record = (event.kind, event.record_id)
        if event.sequence < newest.get(record, event.sequence):
            continue
        newest[record] = event.sequence
        for sink in sinks:
            if route(sink, event) is not None:
                routed[sink] += 1
    return Expected(
        events=sum(by_stream.values()),
        by_stream=dict(by_stream),
        routed={sink: routed[sink] for sink in sinks},
        unreadable=unreadable,
    )


def sandbox_config(directory: Path, creds: Credentials, *, rate_limits: bool) -> Config:
    """The config the sandboxes are built from: the demo's credentials, port 0 everywhere (each server then takes
    a free port), and the sandboxes' rate limits: the APIs' real ones, or none."""
    config = loads(
        config_text(creds, Ports(), rate_limits=rate_limits), source=str(directory / CONFIG_NAME), base_dir=directory
    )
    if rate_limits:
        return config
    return msgspec.structs.replace(
        config, sandbox=SandboxConfig(sell_rate=None, salesmanago_rate=None, ontraport_rate=None)
    )
