"""No secret anywhere: a real `syncd run` with distinctive secrets read with stray whitespace, against simulators
that echo the credentials back in their error bodies; every log line, health answer, command output and the state
database's files are searched for them."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from syncd.sandbox.ontraport.app import OntraportSandbox
from syncd.sandbox.salesmanago.app import SalesmanagoSandbox
from syncd.sandbox.sell.app import SellSandbox
from syncd.sandbox.server import ServerThread
from tests.e2e.world import Api, person
from tests.support import Processes, free_port, wait_until

SELL = "SeLLtok-7f3a9c1e42"
SM = "SmSeCret-51d0e2aa97"
OP = "OpKey-9b44c7de13"
SECRETS = (SELL, SM, OP)
SM_CLIENT, SM_OWNER, OP_APP = "client-secrets", "owner@example.com", "2_50_secrets"


@pytest.fixture
def apis() -> Iterator[dict[str, Api]]:
    sell = SellSandbox(tokens=[SELL], rate=None, seed=1)
    sm = SalesmanagoSandbox(client_id=SM_CLIENT, api_secret=SM, owners=[SM_OWNER], rate=None)
    op = OntraportSandbox(app_id=OP_APP, api_key=OP, rate=None)
    servers = [ServerThread(app).start() for app in (sell.app, sm.app, op.app)]
    made = dict(zip(("sell", "sm", "op"), (Api(s.url) for s in servers), strict=True))
    try:
        yield made
    finally:
        for api in made.values():
            api.http.close()
        for server in servers:
            server.stop()


def _environment(tmp_path: Path) -> dict[str, str]:
    """The secrets as an operator's shell and systemd hand them over, each with stray whitespace around it."""
    creds = tmp_path / "credentials"
    creds.mkdir(exist_ok=True)
    (creds / "op").write_text(f"  {OP}\r\n")
    os.chmod(creds / "op", 0o600)
    (tmp_path / "sm.secret").write_text(f"{SM}\n\n")
    os.chmod(tmp_path / "sm.secret", 0o600)
    return {**os.environ, "SYNCD_TEST_SELL": f"{SELL}\n", "CREDENTIALS_DIRECTORY": str(creds)}


def _config(tmp_path: Path, apis: dict[str, Api], health: int) -> Path:
    file = tmp_path / "syncd.toml"
    file.write_text(
        f"""
[state]
path = "{tmp_path / "syncd.db"}"
[sell]
token = "env:SYNCD_TEST_SELL"
base_url = "{apis["sell"].url}"
streams = ["leads", "contacts"]
poll_interval = "20ms"
rate = "100000/s"
max_backoff = "100ms"
[sinks.salesmanago]
base_url = "{apis["sm"].url}"
client_id = "{SM_CLIENT}"
api_secret = "file:{tmp_path / "sm.secret"}"
owner = "{SM_OWNER}"
rate = "100000/s"
batch_size = 1
concurrency = 1
max_backoff = "100ms"
timeout = "2s"
[sinks.ontraport]
base_url = "{apis["op"].url}"
app_id = "{OP_APP}"
api_key = "credential:op"
rate = "100000/s"
concurrency = 1
max_backoff = "100ms"
timeout = "2s"
[health]
listen = "127.0.0.1:{health}"
[log]
level = "debug"
format = "json"
"""
    )
    return file


def _echo(secret: str) -> str:
    return f"the credential {secret} is not valid here"


def _sell_error(status: int, secret: str) -> dict[str, Any]:
    body = {"errors": [{"error": {"code": "unauthorized", "message": _echo(secret)}}], "meta": {"logref": "x1"}}
    return {"status": status, "body": json.dumps(body)}


def _sm_refusal(message: str) -> str:
    return json.dumps({"success": False, "message": [message]})


def _syncd(env: dict[str, str], *args: str) -> str:
    """One command as an operator runs it: its stdout and stderr together."""
    done = subprocess.run(
        [sys.executable, "-m", "syncd", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    return f"$ syncd {' '.join(args)} -> {done.returncode}\n{done.stdout}{done.stderr}"


def _dead_letter_ids(tmp_path: Path) -> list[int]:
    with sqlite3.connect(tmp_path / "syncd.db") as conn:
        return [int(row[0]) for row in conn.execute("SELECT id FROM dead_letters ORDER BY id")]


def test_no_secret_reaches_logs_health_commands_or_the_database(
    tmp_path: Path, apis: dict[str, Api], processes: Processes
) -> None:
    """Secrets read with stray whitespace work once stripped; with every API echoing them back in error bodies
    (5xx, 401, a refused record), none appears in the daemon's log, /readyz, /metrics, status, dlq, position,
    check, `syncd logs`, or the database, its WAL and shared-memory files."""
    sell, sm, op = apis["sell"], apis["sm"], apis["op"]
    health = free_port()
    config = _config(tmp_path, apis, health)
    env = _environment(tmp_path)
    sell.fault(path="/v3/contacts/stream", times=3, **_sell_error(500, SELL))
    sell.fault(path="/v3/leads/stream", times=1, **_sell_error(401, SELL))
    sm.fault(path="/api/contact/upsert", times=1, status=500, body=_sm_refusal(_echo(SM)))
    sm.fault(path="/api/contact/upsert", after=1, times=1, status=200, body=_sm_refusal(_echo(SM)))
    op.fault(path="/1/Contacts/saveorupdate", times=1, status=400, body=_echo(OP), content_type="text/plain")
    op.fault(path="/1/Contacts/saveorupdate", after=1, status=401, body=_echo(OP), content_type="text/plain")
    op.fault(path="/1/Contacts/meta", after=1, status=401, body=_echo(OP), content_type="text/plain")  # the probes
    sell.post("events", {"stream": "contacts", "items": [person("contact", i) for i in range(1, 5)]})
    log = tmp_path / "daemon.log"
    outputs: list[str] = []
    with log.open("wb") as out:
        daemon = processes.syncd("run", "--config", str(config), env=env, stdout=out)
        url = f"http://127.0.0.1:{health}"

        def readyz() -> httpx.Response | None:
            try:
                answer = httpx.get(f"{url}/readyz", timeout=2)
            except httpx.HTTPError:
                return None
            return answer if "ontraport paused" in answer.text else None

        answer = wait_until(readyz, timeout=60, what="/readyz to report Ontraport's refused credentials")
        outputs.append(answer.text)
        outputs.append(httpx.get(f"{url}/metrics", timeout=5).text)
        wait_until(lambda: len(_dead_letter_ids(tmp_path)) >= 2, timeout=60, what="both dead letters")
        op.clear_faults()
        wait_until(lambda: len(op.get("contacts")["contacts"]) >= 3, timeout=60, what="Ontraport to resume")
        wait_until(lambda: sm.get("state")["contacts"] >= 3, timeout=60, what="SALESmanago's contacts")
        outputs.append(httpx.get(f"{url}/readyz", timeout=5).text)
        outputs.append(httpx.get(f"{url}/livez", timeout=5).text)
        for args in (("status",), ("status", "--json"), ("dlq", "list"), ("dlq", "list", "--json")):
            outputs.append(_syncd(env, *args, "--config", str(config)))
        for letter in _dead_letter_ids(tmp_path):
            outputs.append(_syncd(env, "dlq", "show", str(letter), "--config", str(config)))
        for args in (("position",), ("position", "--json")):
            outputs.append(_syncd(env, *args, "--config", str(config)))
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    sell.fault(path="/v3/leads/stream", times=1, **_sell_error(401, SELL))
    sm.fault(path="/api/contact/hasContact", times=1, status=200, body=_sm_refusal(f"Not authenticated: {_echo(SM)}"))
    op.fault(path="/1/Contacts/meta", times=1, status=401, body=_echo(OP), content_type="text/plain")
    checked = _syncd(env, "check", "--config", str(config))
    assert checked.count("FAIL") == 3, checked  # every API refused, echoing the credential
    outputs += [checked, _syncd(env, "logs", str(log), "--color", "never")]
    text = log.read_text() + "\n".join(outputs)
    assert "[redacted]" in text  # the echoes did happen, and were masked
    for secret in SECRETS:
        assert secret not in text, f"{secret} leaked"
    for suffix in ("", "-wal", "-shm"):
        file = tmp_path / f"syncd.db{suffix}"
        if file.exists():
            data = file.read_bytes()
            for secret in SECRETS:
                assert secret.encode() not in data, f"{secret} is in {file.name}"


@pytest.mark.parametrize(
    ("value", "character"),
    [("SeCrEtOnE\nSeCrEtTwO", "U+000A"), ("SeCrEtOnE\rSeCrEtTwO", "U+000D"), ("SeCrEtOnE\x1b[0mSeCrEtTwO", "U+001B")],
)
def test_a_secret_with_a_control_character_inside_stops_start_up_with_78(
    tmp_path: Path, apis: dict[str, Api], value: str, character: str
) -> None:
    """`syncd run` with a token that has a line break (or an escape) inside exits 78 at once, naming the file, the
    key and the character, never the token."""
    config = _config(tmp_path, apis, free_port())
    env = {**_environment(tmp_path), "SYNCD_TEST_SELL": value}
    done = subprocess.run(
        [sys.executable, "-m", "syncd", "run", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 78
    assert f"{config}: sell.token: $SYNCD_TEST_SELL holds a control character ({character}" in done.stderr
    assert "SeCrEtOnE" not in done.stdout + done.stderr and "SeCrEtTwO" not in done.stdout + done.stderr


def test_a_token_with_a_non_ascii_look_alike_stops_start_up_with_78(tmp_path: Path, apis: dict[str, Api]) -> None:
    """A Sell token pasted with a Cyrillic look-alike (it could never be sent in a header; before, the process hung
    after the traceback) makes `syncd run` exit 78 at once with one line naming the file and the key, never the
    token, before the state file is created."""
    config = _config(tmp_path, apis, free_port())
    env = {**_environment(tmp_path), "SYNCD_TEST_SELL": "SeCrEtOnE\u0430SeCrEtTwO"}  # U+0430, not "a"
    done = subprocess.run(
        [sys.executable, "-m", "syncd", "run", "--config", str(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 78
    [line] = done.stderr.strip().splitlines()
    assert line.startswith(f"syncd: configuration error: {config}: sell.token: expected ASCII characters only"), line
    assert "SeCrEtOnE" not in done.stdout + done.stderr and "SeCrEtTwO" not in done.stdout + done.stderr
    assert not (tmp_path / "syncd.db").exists()


def test_secrets_an_older_syncd_stored_are_masked_by_the_next_run(
    tmp_path: Path, apis: dict[str, Api], processes: Processes
) -> None:
    """A state file whose dead letter and stream error an older syncd stored with the token in them (it masked
    secrets only in its log): the next `syncd run` masks them (state_secrets_masked), so `dlq list`, `dlq show`
    and `status`, which read no secret, never show it, and the database and its log no longer hold it, while the
    daemon still runs."""
    config = _config(tmp_path, apis, free_port())
    env = _environment(tmp_path)
    first = subprocess.run(
        [sys.executable, "-m", "syncd", "run", "--config", str(config), "--until-idle"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert first.returncode == 0, first.stderr
    db = tmp_path / "syncd.db"
    old = f"Sell answered 401: Bearer {SELL} is not valid; apiKey={OP}"
    with sqlite3.connect(db) as conn:  # what an older syncd left
        conn.execute(
            "INSERT INTO dead_letters (sink, key, reason, request, created_at) VALUES ('ontraport', 'lead:9', ?, ?, 0)",
            (old, json.dumps({"api_key": OP, "note": old})),
        )
        conn.execute("UPDATE positions SET last_error = ?, failures = 1 WHERE stream = 'leads'", (old,))
    log = tmp_path / "again.log"
    with log.open("wb") as out:
        daemon = processes.syncd("run", "--config", str(config), env=env, stdout=out)
        wait_until(lambda: "state_secrets_masked" in log.read_text(), timeout=60, what="the old secrets masked")
        [letter] = _dead_letter_ids(tmp_path)
        shell = {k: v for k, v in os.environ.items() if k not in ("SYNCD_TEST_SELL", "CREDENTIALS_DIRECTORY")}
        outputs = [
            _syncd(shell, *args, "--config", str(config))
            for args in (("dlq", "list"), ("dlq", "show", str(letter)), ("status", "--json"))
        ]
        files = {f.name: f.read_bytes() for f in (db, tmp_path / "syncd.db-wal") if f.exists()}
        daemon.send_signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    text = "\n".join(outputs)
    assert "[redacted] is not valid; apiKey=[redacted]" in text, text
    for secret in (SELL, OP):
        assert secret not in text + log.read_text()
        for name, data in files.items():
            assert secret.encode() not in data, f"{secret} in {name}"
        assert secret.encode() not in db.read_bytes()
