"""Values the types alone would accept but syncd refuses (non-finite or zero durations, a key the file cannot set,
a state path that is a directory), and configs read without their secrets for commands that only use the store."""

from __future__ import annotations

from pathlib import Path

import pytest

from syncd.config import load, loads
from syncd.errors import ConfigError

BASE = '[sell]\ntoken = "t0ken"\nbase_url = "http://127.0.0.1:1"\n'
ONTRAPORT = "[sinks.ontraport]\napp_id = 'a'\napi_key = 'k'\n"


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        (BASE + "timeout = 0\n", "sell.timeout", "above zero"),
        (BASE + "timeout = '0s'\n", "sell.timeout", "above zero"),
        (BASE + "timeout = nan\n", "sell.timeout", "finite"),
        (BASE + "max_backoff = inf\n", "sell.max_backoff", "finite"),
        (BASE + "max_backoff = 0\n", "sell.max_backoff", "above zero"),
        (BASE + "poll_interval = -inf\n", "sell.poll_interval", "finite"),
        (BASE + ONTRAPORT + "timeout = 0\n", "sinks.ontraport.timeout", "above zero"),
        (BASE + ONTRAPORT + "max_backoff = inf\n", "sinks.ontraport.max_backoff", "finite"),
        (BASE + ONTRAPORT + "delete_grace = nan\n", "sinks.ontraport.delete_grace", "finite"),
        (BASE + "[state]\nprune_interval = 0\n", "state.prune_interval", "above zero"),
        (BASE + "[run]\nshutdown_timeout = inf\n", "run.shutdown_timeout", "finite"),
        ('source = "/elsewhere.toml"\n' + BASE, "source", "unknown key"),
        ("bogus = 1\n" + BASE, "bogus", "unknown key"),
    ],
)
def test_values_the_types_accept_but_syncd_cannot_use_are_refused(text: str, key: str, message: str) -> None:
    """A zero or non-finite duration where one would spin or never end, and a top-level key the file cannot set
    (`source` included), stop start-up naming the file and the key."""
    with pytest.raises(ConfigError) as caught:
        loads(text, source="/etc/syncd/syncd.toml", environ={})
    assert caught.value.key == key
    assert str(caught.value).startswith(f"/etc/syncd/syncd.toml: {key}: ")
    assert message in str(caught.value)


def test_the_file_read_is_what_the_config_says_it_came_from(tmp_path: Path) -> None:
    """`source` is always the file actually read (the file cannot set it)."""
    file = tmp_path / "syncd.toml"
    file.write_text(BASE)
    assert load(file).source == str(file)


def test_a_state_path_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    """`state.path` naming a directory is a configuration error naming the key, not a traceback at open."""
    with pytest.raises(ConfigError) as caught:
        loads(BASE + f'[state]\npath = "{tmp_path}"\n', source="syncd.toml")
    assert caught.value.key == "state.path"
    assert f"{tmp_path} is a directory" in str(caught.value)


@pytest.mark.parametrize("reference", ["env:SYNCD_NOT_SET", "credential:sell_token", "file:/nonexistent/token"])
def test_a_config_read_without_secrets_leaves_their_sources_unread(reference: str) -> None:
    """Without resolving secrets (status, dlq, replay, position), a secret whose environment variable, systemd
    credential or file is out of reach in an operator's shell is no error; it stays unresolved."""
    text = f'[sell]\ntoken = "{reference}"\n[sinks.ontraport]\napp_id = "a"\napi_key = "{reference}"\n'
    with pytest.raises(ConfigError):
        loads(text, source="syncd.toml", environ={})
    config = loads(text, source="syncd.toml", environ={}, resolve_secrets=False)
    assert config.sell.token.source == "unresolved"
    assert [s.name for s in config.enabled_sinks()] == ["ontraport"]
