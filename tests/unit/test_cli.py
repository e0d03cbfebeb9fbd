"""The command line: a version, and help with examples on every command."""

from __future__ import annotations

import pytest

from syncd import __version__
from syncd.commands.cli import main

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
