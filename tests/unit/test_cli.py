"""The command line: a version, and help with examples on every command."""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from pathlib import Path

import anyio
import pytest

from state import DeadLetter
from state.store import Store
from syncd import __version__
from syncd.commands import program
from syncd.commands.cli import main
from syncd.commands.repair import letter_json
from tests.support import Processes

COMMANDS = [
    ["run"],
    ["status"],
    ["check"],
    ["fields"],
    ["sandbox"],
    ["demo"],
    ["logs"],
    ["replay"],
    ["position"],
    ["dlq"],
    ["dlq", "list"],
    ["dlq", "show"],
    ["dlq", "retry"],
    ["dlq", "drop"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_has_help_with_examples(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    """`syncd COMMAND --help` describes the command and shows at least one example invocation."""
    with pytest.raises(SystemExit) as done:
        main([*command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    assert "examples:" in out
    assert f"syncd {command[0]}" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    """`syncd --version` prints the installed version."""
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"syncd {__version__}"


def test_missing_config_file_is_exit_78(capsys: pytest.CaptureFixture[str]) -> None:
    """A config path that does not exist stops with EX_CONFIG and names the file."""
    assert main(["status", "--config", "/nonexistent/syncd.toml"]) == 78
    assert "/nonexistent/syncd.toml: the config file does not exist" in capsys.readouterr().err


def test_a_key_a_destination_does_not_have_is_exit_78(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`batch_size` under [sinks.ontraport] (which has no batch endpoint) stops start-up with EX_CONFIG, naming the
    file and the key."""
    config = tmp_path / "syncd.toml"
    config.write_text('[sell]\ntoken = "t"\n[sinks.ontraport]\napp_id = "a"\napi_key = "k"\nbatch_size = 1\n')
    assert main(["check", "--config", str(config)]) == 78
    assert f"{config}: sinks.ontraport.batch_size: unknown key" in capsys.readouterr().err


def test_a_reader_that_goes_away_early_ends_the_command_quietly(tmp_path: Path, processes: Processes) -> None:
    """`syncd status --json | head`: when the reader closes the pipe first, the command exits 0 without a traceback."""
    anyio.run(_empty_store, tmp_path / "syncd.db")
    config = tmp_path / "syncd.toml"
    config.write_text(f'[state]\npath = "{tmp_path / "syncd.db"}"\n[sell]\ntoken = "t"\n')
    child = processes.syncd("status", "--config", str(config), "--json", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert child.stdout is not None and child.stderr is not None
    child.stdout.close()  # before the child has written a byte (its imports alone take longer)
    err = child.stderr.read().decode()
    assert child.wait(timeout=30) == 0, err
    assert "Traceback" not in err and "BrokenPipeError" not in err


async def _empty_store(path: Path) -> None:
    store = await Store.open(path)
    await store.close()


def test_program_is_how_this_shell_reaches_the_running_syncd(tmp_path: Path) -> None:
    """`syncd` only when PATH's syncd is this very program; else its full path; `python -m syncd` when run so."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    script = bin_dir / "syncd"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "syncd").write_text("#!/bin/sh\n")
    (other / "syncd").chmod(0o755)
    assert program(str(script), path=str(bin_dir)) == "syncd"
    assert program(str(script), path=f"{other}:{bin_dir}") == str(script)  # another syncd comes first on PATH
    assert program(str(script), path="/usr/bin:/bin") == str(script)
    assert program("/x/syncd/__main__.py", path=str(bin_dir)) == f"{shlex.quote(sys.executable)} -m syncd"


@pytest.mark.parametrize(
    ("stored", "shown"),
    [
        (
            '{"method": "contact/batchupsert", "body": {"owner": "o"}}',
            {"method": "contact/batchupsert", "body": {"owner": "o"}},
        ),
        ("firstname=Ada&email=x", "firstname=Ada&email=x"),  # not JSON: the text as stored
        (None, None),
    ],
)
def test_dlq_show_prints_the_request_as_json_not_a_string_inside_json(stored: str | None, shown: object) -> None:
    """`dlq show`'s request is the stored request's JSON itself (its body an object), or the text when it is none."""
    letter = DeadLetter(7, "salesmanago", "lead:1", "refused", 200, stored, 1, 1_795_000_000.0, (3,))
    data = json.loads(json.dumps(letter_json(letter, with_request=True)))
    assert data["request"] == shown


def test_check_help_documents_its_exit_codes(capsys: pytest.CaptureFixture[str]) -> None:
    """`syncd check --help` says what 0, 1 and 78 mean, as the code returns them."""
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for said in ("0 every check passed", "1 a credential was refused or an API could not be reached", "78 the field"):
        assert said in text
