"""A whole sandboxed world for end-to-end tests: the three simulators on loopback and a config pointing at them."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from syncd.config import Config, loads
from syncd.daemon import Daemon
from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.salesmanago.app import SalesmanagoSandbox
from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.sell.history import item
from syncd.sandbox.server import ServerThread

SELL_TOKEN = "sell-token-e2e-0001"
SM_CLIENT = "client-e2e"
SM_SECRET = "sm-secret-e2e-0002"
SM_OWNER = "owner@example.com"
OP_APP = "2_50_e2e"
OP_KEY = "op-key-e2e-0003"
SECRETS = (SELL_TOKEN, SM_SECRET, OP_KEY)


class Api:
    """One simulator's control surface over HTTP."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.http = httpx.Client(base_url=url, timeout=30)

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(f"/_sandbox/{path}", params=params)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str, body: Any) -> Any:
        response = self.http.post(f"/_sandbox/{path}", json=body)
        assert response.status_code == 200, response.text
        return response.json()

    def fault(self, **fault: Any) -> None:
        self.post("faults", fault)

    def clear_faults(self) -> None:
        assert self.http.delete("/_sandbox/faults").status_code == 200


class World:
    def __init__(
        self,
        tmp_path: Path,
        sell: Api,
        sm: Api,
        op: Api,
        servers: dict[str, ServerThread],
        box: SellSandbox | None = None,
    ) -> None:
        self.tmp_path = tmp_path
        self.sell = sell
        self.box = box  # the Sell simulator itself (its records, its request log)
        self.sm = sm
        self.op = op
        self.servers = servers

    def stop(self, name: str) -> None:
        """Take one simulator off the network: its port refuses connections until `start`."""
        self.servers[name].stop()

    def start(self, name: str) -> None:
        """Serve a stopped simulator again, on the same port, with everything it held."""
        old = self.servers[name]
        self.servers[name] = ServerThread(old.app, port=old.port).start()

    def config(
        self,
        extra: str = "",
        *,
        sm: str = "",
        op: str = "",
        sell: str = "",
        streams: tuple[str, ...] = ("leads", "contacts"),
        poll_interval: str = "20ms",
    ) -> Config:
        """A config for this world; `sm`/`op`/`sell` add keys to those tables, `extra` adds whole tables; each
        stream at its top is polled every `poll_interval`."""
        text = self.config_text(extra, sm=sm, op=op, sell=sell, streams=streams, poll_interval=poll_interval)
        return loads(text, source=str(self.tmp_path / "syncd.toml"))

    def config_file(
        self,
        extra: str = "",
        *,
        sm: str = "",
        op: str = "",
        sell: str = "",
        streams: tuple[str, ...] = ("leads", "contacts"),
    ) -> Path:
        """The same config written to syncd.toml, for the command line."""
        file = self.tmp_path / "syncd.toml"
        file.write_text(self.config_text(extra, sm=sm, op=op, sell=sell, streams=streams))
        return file

    def config_text(
        self,
        extra: str = "",
        *,
        sm: str = "",
        op: str = "",
        sell: str = "",
        streams: tuple[str, ...] = ("leads", "contacts"),
        poll_interval: str = "20ms",
    ) -> str:
        return f"""
[state]
path = "{self.tmp_path / "syncd.db"}"
[sell]
token = "{SELL_TOKEN}"
base_url = "{self.sell.url}"
streams = {json.dumps(list(streams))}
poll_interval = "{poll_interval}"
rate = "100000/s"
max_backoff = "100ms"
{sell}
[sinks.salesmanago]
base_url = "{self.sm.url}"
client_id = "{SM_CLIENT}"
api_secret = "{SM_SECRET}"
owner = "{SM_OWNER}"
rate = "100000/s"
max_backoff = "200ms"
timeout = "2s"
late_write_window = "200ms"
{sm}
[sinks.ontraport]
base_url = "{self.op.url}"
app_id = "{OP_APP}"
api_key = "{OP_KEY}"
rate = "100000/s"
max_backoff = "200ms"
timeout = "2s"
late_write_window = "200ms"
external_id_field = "f1558"
{op}
[health]
enabled = false
{extra}
"""

    async def run(self, config: Config | None = None) -> int:
        """Run the daemon until every stream is at the top and nothing is pending."""
        return await Daemon(config or self.config(), until_idle=True, handle_signals=False).run()

    def append(self, stream: str, *items: dict[str, Any]) -> None:
        self.sell.post("events", {"stream": stream, "items": list(items)})

    def sm_contacts(self) -> dict[str, dict[str, Any]]:
        """SALESmanago contacts by e-mail (soft-deleted ones included, flagged)."""
        return {c["email"]: c for c in self.sm.get("contacts")["contacts"]}

    def op_contacts(self) -> list[dict[str, Any]]:
        return list(self.op.get("contacts")["contacts"])

    def op_by_email(self) -> dict[str, dict[str, Any]]:
        return {c["email"]: c for c in self.op_contacts() if c.get("email")}


@contextmanager
def world(tmp_path: Path, *, op_rate: str | None = None) -> Iterator[World]:
    """The three simulators, accepting exactly the credentials `World.config` names."""
    sell = SellSandbox(tokens=[SELL_TOKEN], rate=None, seed=1)
    sm = SalesmanagoSandbox(client_id=SM_CLIENT, api_secret=SM_SECRET, owners=[SM_OWNER], rate=None)
    op = OntraportSandbox(app_id=OP_APP, api_key=OP_KEY, rate=None)
    servers = {name: ServerThread(app).start() for name, app in (("sell", sell.app), ("sm", sm.app), ("op", op.app))}
    apis = [Api(s.url) for s in servers.values()]
    try:
        yield World(tmp_path, *apis, servers=servers, box=sell)
    finally:
        for api in apis:
            api.http.close()
        for server in servers.values():
            server.stop()


_NOW = datetime.now(UTC)


def person(
    kind: str,
    record_id: int,
    sequence: int = 1,
    action: str = "created",
    *,
    previous: dict[str, Any] | None = None,
    cause: str = "interaction",
    **fields: Any,
) -> dict[str, Any]:
    """A Firehose item for a lead or contact with realistic fields (override any with keyword arguments)."""
    data: dict[str, Any] = {
        "id": record_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"{kind}{record_id}@example.org",
        "phone": "+44 20 7946 0000",
        "mobile": "+44 7700 900123",
        "title": "Analyst",
        "website": "https://example.org",
        "address": {
            "line1": "12 Byron St",
            "city": "London",
            "postal_code": "N1 9GU",
            "state": "",
            "country": "United Kingdom",
        },
        "tags": [],
        "custom_field_values": [],
        "created_at": "2026-11-01T10:00:00Z",
    }
    if kind == "lead":
        data["organization_name"] = "Analytical Engines Ltd"
        data["status"] = "New"
    else:
        data.update({"is_organization": False, "customer_status": "none", "prospect_status": "current"})
    data.update(fields)
    return item(kind, data, action=action, sequence=sequence, previous=previous, event_time=_NOW, cause=cause)
