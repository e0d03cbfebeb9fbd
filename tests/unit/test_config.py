"""The config file: typed, validated, secrets resolved, and every error naming the file and the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from syncd.config import ConfigWarning, find_config, load, loads
from syncd.errors import ConfigError
from syncd.units import Rate

GOOD = """
[state]
path = "data/syncd.db"

[sell]
token = "env:SELL_TOKEN"
base_url = "http://127.0.0.1:8001"
streams = ["leads", "contacts", "deals"]
poll_interval = "500ms"

[sinks.salesmanago]
base_url = "http://127.0.0.1:8002"
client_id = "client-1"
api_secret = "env:SM_SECRET"
owner = "owner@example.com"
rate = "50/s"

[sinks.ontraport]
base_url = "http://127.0.0.1:8003"
app_id = "2_50_x"
api_key = "env:OP_KEY"
"""
ENV = {"SELL_TOKEN": "tok-123456", "SM_SECRET": "sm-secret-9", "OP_KEY": "op-key-77"}


def test_good_config_is_typed_and_resolved(tmp_path: Path) -> None:
    """A valid file becomes typed values: durations in seconds, rates, resolved secrets, paths next to the file."""
    file = tmp_path / "syncd.toml"
    file.write_text(GOOD)
    config = load(file, environ=ENV)
    assert config.sell.poll_interval == 0.5
    assert config.sell.token.value == "tok-123456"
    assert "tok-123456" not in repr(config)
    assert config.sinks.salesmanago is not None and config.sinks.salesmanago.rate == Rate(50, 1)
    assert config.sinks.ontraport is not None and config.sinks.ontraport.rate == Rate(180, 60)
    assert config.state.path == str(tmp_path / "data" / "syncd.db")
    assert sorted(config.secret_values()) == sorted(ENV.values())
    assert [s.name for s in config.enabled_sinks()] == ["salesmanago", "ontraport"]


BASE = '[sell]\ntoken = "t0ken"\nbase_url = "http://127.0.0.1:1"\n'
SALESMANAGO = "[sinks.salesmanago]\nbase_url='https://a.b'\nclient_id='c'\napi_secret='s'\nowner='o@example.com'\n"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("[sell]\nbase_url = 'https://x.example'\n", "sell.token", "required"),
        (BASE + "page_limit = 101\n", "sell.page_limit", "1..100"),
        (BASE + "page_limit = 'many'\n", "sell.page_limit", "Expected `int`"),
        (BASE + "poll_interval = 'soon'\n", "sell.poll_interval", "duration"),
        (BASE + "start = 'middle'\n", "sell.start", "Invalid enum value"),
        (BASE + "streams = ['leads', 'tickets']\n", "sell.streams[1]", "unknown stream"),
        (BASE + "streams = []\n", "sell.streams", "at least one"),
        (BASE + "polll_interval = 5\n", "sell.polll_interval", "unknown key"),
        ('[sell]\ntoken = "t"\nbase_url = "http://api.example.com"\n', "sell.base_url", "only allowed on loopback"),
        ('[sell]\ntoken = "t"\nbase_url = "ftp://x"\n', "sell.base_url", "http(s) URL"),
        (BASE + "[sinks.ontraport]\napp_id = 'a'\napi_key = 'k'\nrate = 'lots'\n", "sinks.ontraport.rate", "rate"),
        (BASE + "[sinks.ontraport]\napi_key = 'k'\n", "sinks.ontraport.app_id", "required"),
        (
            BASE + "[sinks.salesmanago]\nbase_url='https://a.b'\nclient_id='c'\napi_secret='s'\nowner='nobody'\n",
            "sinks.salesmanago.owner",
            "e-mail",
        ),
        (BASE + "[sinks.salesmanago]\nclient_id='c'\n", "sinks.salesmanago.base_url", "required"),
        (
            BASE + "[sinks.ontraport]\napp_id='a'\napi_key='k'\nbatch_size = 1\n",
            "sinks.ontraport.batch_size",
            "unknown key",
        ),
        (BASE + SALESMANAGO + "batch_size = 0\n", "sinks.salesmanago.batch_size", "at least 1"),
        (BASE + SALESMANAGO + "batch_size = 1001\n", "sinks.salesmanago.batch_size", "at most 1000"),
        (BASE + "[sinks.ontraport]\napp_id='a'\napi_key='k'\non_delete='shred'\n", "sinks.ontraport.on_delete", "enum"),
        (BASE + "[health]\nlisten = 'nowhere'\n", "health.listen", "host:port"),
        (BASE + "[sinks.hubspot]\nx = 1\n", "sinks.hubspot", "unknown key"),
        ('[sell]\ntoken = "env:MISSING_VAR"\n', "sell.token", "MISSING_VAR is not set"),
        ('[sell]\ntoken = "credential:sell"\n', "sell.token", "CREDENTIALS_DIRECTORY"),
        ('[sell]\ntoken = "file:/nonexistent/token"\n', "sell.token", "cannot read the secret file"),
    ],
)
def test_bad_config_names_file_and_key(text: str, key: str, message: str) -> None:
    """Each kind of mistake stops start-up with the file, the dotted key and what was expected."""
    with pytest.raises(ConfigError) as caught:
        loads(text, source="/etc/syncd/syncd.toml", environ={})
    assert caught.value.key == key
    assert caught.value.path == "/etc/syncd/syncd.toml"
    assert str(caught.value).startswith(f"/etc/syncd/syncd.toml: {key}: ")
    assert message in str(caught.value)


def test_invalid_toml_names_the_file() -> None:
    """A syntax error names the file and the position."""
    with pytest.raises(ConfigError, match=r"^f\.toml: not valid TOML: .*line 1"):
        loads("[sell\n", source="f.toml")


def test_a_disabled_destination_needs_no_credentials() -> None:
    """A destination switched off may leave out its base_url and credentials; it is not among the enabled ones."""
    config = loads(BASE + "[sinks.salesmanago]\nenabled = false\n[sinks.ontraport]\nenabled = false\n")
    assert config.enabled_sinks() == []


def test_missing_file_is_a_config_error(tmp_path: Path) -> None:
    """A config file that does not exist is reported as such."""
    with pytest.raises(ConfigError, match="does not exist"):
        load(tmp_path / "absent.toml")


def test_secret_files_and_credentials(tmp_path: Path) -> None:
    """file: and credential: secrets are read and stripped; a file others can read draws a warning."""
    token = tmp_path / "token"
    token.write_text("from-file-secret\n")
    os.chmod(token, 0o644)
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "sell").write_text("from-credential")
    os.chmod(creds / "sell", 0o600)
    with pytest.warns(ConfigWarning, match="readable by others"):
        config = loads(f'[sell]\ntoken = "file:{token}"\n', environ={})
    assert config.sell.token.value == "from-file-secret"
    config = loads('[sell]\ntoken = "credential:sell"\n', environ={"CREDENTIALS_DIRECTORY": str(creds)})
    assert config.sell.token.value == "from-credential"


def test_config_search_order(monkeypatch: pytest.MonkeyPatch) -> None:
    """--config wins over $SYNCD_CONFIG, which wins over /etc/syncd/syncd.toml."""
    monkeypatch.setenv("SYNCD_CONFIG", "/from/env.toml")
    assert find_config("/explicit.toml") == Path("/explicit.toml")
    assert find_config(None) == Path("/from/env.toml")
    monkeypatch.delenv("SYNCD_CONFIG")
    assert find_config(None) == Path("/etc/syncd/syncd.toml")


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ('[sell]\ntoken = "t"\n[log]\nlevel = "verbose"\n', "log.level", "'debug', 'info', 'warning', 'error'"),
        ('[sell]\ntoken = "t"\nstart = "head"\n', "sell.start", "'tail', 'top'"),
        (
            '[sell]\ntoken = "t"\n[sinks.ontraport]\napp_id = "a"\napi_key = "k"\non_delete = "remove"\n',
            "sinks.ontraport.on_delete",
            "'delete', 'tag', 'ignore'",
        ),
    ],
)
def test_a_value_outside_a_fixed_set_lists_the_valid_values(text: str, key: str, expected: str) -> None:
    """A key that takes one of a fixed set of values, given another, names the key and lists every valid value."""
    with pytest.raises(ConfigError) as raised:
        loads(text, source="syncd.toml")
    assert f"syncd.toml: {key}: " in str(raised.value)
    assert f"expected one of {expected}" in str(raised.value)


@pytest.mark.parametrize(
    ("how", "raw"),
    [
        ("env", "tok-from-env\n"),
        ("env", "  tok-from-env\r\n"),
        ("file", "tok-from-env\r\n"),
        ("file", "\ufefftok-from-env\n"),
        ("credential", "\ttok-from-env \n"),
        ("literal", " tok-from-env "),
    ],
)
def test_every_secret_is_stripped_of_surrounding_whitespace(tmp_path: Path, how: str, raw: str) -> None:
    """However a secret is given, the newline, CR, spaces or byte-order mark around it are no part of it."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "sell").write_text(raw, encoding="utf-8")
    os.chmod(creds / "sell", 0o600)
    ref = {"env": "env:TOKEN", "file": f"file:{creds / 'sell'}", "credential": "credential:sell", "literal": raw}[how]
    environ = {"TOKEN": raw, "CREDENTIALS_DIRECTORY": str(creds)}
    config = loads(f"[sell]\ntoken = {ref!r}\n".replace("'", '"'), environ=environ)
    assert config.sell.token.value == "tok-from-env"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("tok\nen-value", "U+000A at position 4"),
        ("tok\x00en", "U+0000"),
        ("tok\x1b[0men", "U+001B"),
        ("a\u2028bcd", "U+2028"),
    ],
)
def test_a_secret_with_a_control_character_inside_is_refused_naming_the_key(raw: str, shown: str) -> None:
    """A control character inside a secret stops start-up naming the key and the character, never the value."""
    with pytest.raises(ConfigError) as raised:
        loads('[sell]\ntoken = "env:TOKEN"\n', source="syncd.toml", environ={"TOKEN": raw})
    message = str(raised.value)
    assert message.startswith("syncd.toml: sell.token: $TOKEN holds a control character")
    assert shown in message
    assert raw.strip() not in message


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('[sell]\ntoken = "tökenvalue"\n', "sell.token"),
        ('[sell]\ntoken = "t0ken"\n[sinks.ontraport]\napp_id = "a"\napi_key = "kéyvalue"\n', "sinks.ontraport.api_key"),
        ('[sell]\ntoken = "t0ken"\n[sinks.ontraport]\napp_id = "аpp"\napi_key = "k"\n', "sinks.ontraport.app_id"),
    ],
)
def test_a_value_sent_in_a_header_must_be_ascii(table: str, key: str) -> None:
    """A token or key sent in an HTTP header with a non-ASCII character (a pasted look-alike) is a config error."""
    with pytest.raises(ConfigError) as raised:
        loads(table, source="syncd.toml", environ={})
    assert raised.value.key == key
    assert "ASCII" in str(raised.value)


OP = BASE + "[sinks.ontraport]\napp_id = 'a'\napi_key = 'k'\n"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (OP + "[sinks.ontraport.purchases]\nreversal = 'delete'\n", "sinks.ontraport.purchases.reversal", "'void'"),
        (
            OP + "[sinks.ontraport.purchases]\non_deal_delete = 'x'\n",
            "sinks.ontraport.purchases.on_deal_delete",
            "keep",
        ),
        (
            OP + "[sinks.ontraport.purchases]\ndeal_product = ' '\n",
            "sinks.ontraport.purchases.deal_product",
            "1 to 255",
        ),
        (OP + "[sinks.ontraport.purchases]\ncurrency = 'usd'\n", "sinks.ontraport.purchases.currency", "ISO 4217"),
        (OP + "[sinks.ontraport.purchases]\ncurrency = 'DOLLARS'\n", "sinks.ontraport.purchases.currency", "ISO 4217"),
        (
            OP + "[sinks.ontraport.purchases]\nreferrer_field = ' Ref '\n",
            "sinks.ontraport.purchases.referrer_field",
            "blanks",
        ),
        (
            OP + "[sinks.ontraport.purchases]\nproduct_limit = 0\n",
            "sinks.ontraport.purchases.product_limit",
            "at least",
        ),
        (OP + "[sinks.ontraport.purchases]\nsettle = 'later'\n", "sinks.ontraport.purchases.settle", "duration"),
        (OP + "[sinks.ontraport.purchases]\ncharge = true\n", "sinks.ontraport.purchases.charge", "unknown key"),
        (OP + "[sinks.ontraport.notes]\nauthor = 0\n", "sinks.ontraport.notes.author", "user id"),
        (OP + "[sinks.ontraport.notes]\nauthor = 4294967296\n", "sinks.ontraport.notes.author", "user id"),
        (OP + "[sinks.ontraport.notes]\nauthor = 'me'\n", "sinks.ontraport.notes.author", "Expected `int`"),
    ],
)
def test_bad_history_settings_name_the_key(text: str, key: str, message: str) -> None:
    """The purchases and notes tables of Ontraport are checked like the rest: the key named, the reason given."""
    with pytest.raises(ConfigError) as caught:
        loads(text, source="syncd.toml", environ={})
    assert caught.value.key == key
    assert message in str(caught.value)


def test_history_settings_have_their_defaults_and_take_values() -> None:
    """Purchases log and void by default, with the deal product, no currency check, no referrer, the 50,000
    product limit and a 5 s settle; notes are written by user 1. Every key takes a value."""
    config = loads(OP, source="syncd.toml", environ={})
    assert config.sinks.ontraport is not None
    purchases, notes = config.sinks.ontraport.purchases, config.sinks.ontraport.notes
    assert (purchases.enabled, purchases.reversal, purchases.on_deal_delete) == (True, "void", "reverse")
    assert (purchases.deal_product, purchases.currency, purchases.referrer_field) == ("Zendesk Sell deal", "", "")
    assert (purchases.product_limit, purchases.settle, notes.enabled, notes.author) == (50_000, 5.0, True, 1)
    text = OP + (
        "[sinks.ontraport.purchases]\nenabled = false\nreversal = 'refund'\non_deal_delete = 'keep'\n"
        "deal_product = 'Deal'\ncurrency = 'EUR'\nreferrer_field = 'Referred by'\nproduct_limit = 100\n"
        "settle = '1m'\n[sinks.ontraport.notes]\nenabled = false\nauthor = 7\n"
    )
    op = loads(text, source="syncd.toml", environ={}).sinks.ontraport
    assert op is not None
    assert (op.purchases.reversal, op.purchases.currency, op.purchases.settle, op.notes.author) == (
        "refund",
        "EUR",
        60.0,
        7,
    )


def test_the_state_budget_is_read_as_sizes_and_an_old_max_pending_only_warns() -> None:
    """state.max_size and min_free take sizes ("1GB", "512MiB", bytes); a budget under 1 MB or not a size names the
    key; a file from before still naming state.max_pending starts, with a warning that it is no longer used."""
    config = loads('[sell]\ntoken = "t0ken"\n[state]\nmax_size = "1GB"\nmin_free = "512MiB"\n')
    assert (config.state.max_size, config.state.min_free) == (10**9, 512 * 2**20)
    for value, message in (('"lots"', "expected a size"), ('"100KB"', "at least 1MB")):
        with pytest.raises(ConfigError) as raised:
            loads(f'[sell]\ntoken = "t0ken"\n[state]\nmax_size = {value}\n', source="syncd.toml")
        assert raised.value.key == "state.max_size" and message in str(raised.value)
    with pytest.warns(ConfigWarning, match=r"state\.max_pending is no longer used.*state\.max_size"):
        loads('[sell]\ntoken = "t0ken"\n[state]\nmax_pending = 200000\n')


@pytest.mark.parametrize(
    ("sell", "key", "message"),
    [
        ('on_expired = "skip"', "sell.on_expired", "expected one of 'stop', 'backfill'"),
        ('start = "history"', "sell.start", "'backfill'"),
        ('expiry_warning = "0s"', "sell.expiry_warning", "above zero"),
        ('expiry_warning = "72h"', "sell.expiry_warning", "below Sell's 72-hour retention"),
        ('expiry_warning = "soon"', "sell.expiry_warning", "duration"),
    ],
)
def test_bad_history_settings_of_sell_name_the_key(sell: str, key: str, message: str) -> None:
    """What a first run, an expired position and the early warning do is checked: the key named, the reason given."""
    with pytest.raises(ConfigError) as caught:
        loads(f'[sell]\ntoken = "t"\n{sell}\n', source="syncd.toml", environ={})
    assert caught.value.key == key
    assert message in str(caught.value)


def test_sells_history_settings_have_their_defaults_and_take_values() -> None:
    """By default a first run starts at the tail, an expired stream stops, and the warning comes 24 h before expiry;
    each takes its other values."""
    default = loads('[sell]\ntoken = "t"\n', source="syncd.toml", environ={}).sell
    assert (default.start, default.on_expired, default.expiry_warning) == ("tail", "stop", 24 * 3600)
    text = '[sell]\ntoken = "t"\nstart = "backfill"\non_expired = "backfill"\nexpiry_warning = "36h"\n'
    sell = loads(text, source="syncd.toml", environ={}).sell
    assert (sell.start, sell.on_expired, sell.expiry_warning) == ("backfill", "backfill", 36 * 3600)
