"""Every `syncd …` command the README prints, and every example in `--help`, names a subcommand and options the
parser has."""

from __future__ import annotations

import argparse
import re
import shlex
from pathlib import Path

import pytest

from syncd.commands.cli import COMMANDS, build_parser

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCK = re.compile(r"```(?:sh|bash|shell|console)\n(.*?)```", re.DOTALL)
SPAN = re.compile(r"`([^`\n]+)`")
PROGRAM = re.compile(r"^(?:\S*/)?syncd$")  # syncd, .venv/bin/syncd, /opt/syncd/bin/syncd


def syncd_stages(lines: list[str]) -> list[str]:
    """The pipeline stages of `lines` that run syncd with something after its name (`syncd …` excepted)."""
    stages: list[str] = []
    for line in lines:
        for stage in re.split(r"\s(?:\|\||&&|\||;)\s|\|(?=\w)", line):
            words = stage.strip().split(" ")
            if PROGRAM.match(words[0]) and len(words) > 1 and words[1] != "…":
                stages.append(stage.strip())
    return stages


def readme_commands(text: str) -> list[str]:
    """Each `syncd …` command in the README's shell blocks and inline code, one pipeline stage each."""
    found: list[str] = []
    for block in BLOCK.findall(text):
        found += [line for line in block.replace("\\\n", " ").splitlines() if line.strip()]
    found += SPAN.findall(BLOCK.sub("", text))
    return syncd_stages(found)


def _subparsers(parser: argparse.ArgumentParser) -> argparse._SubParsersAction[argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def problems(command: str) -> list[str]:
    """What in `command` the parser does not have: the subcommand (and a nested one, `dlq show`) and each option."""
    try:
        words = shlex.split(command, comments=True)
    except ValueError as exc:
        return [f"not a shell command ({exc})"]
    parser = build_parser()
    found: list[str] = []
    rest = words[1:]
    while (sub := _subparsers(parser)) is not None:
        if not rest or rest[0] not in sub.choices:
            wanted = rest[0] if rest else "(nothing)"
            return [f"{wanted!r} is not one of {', '.join(sub.choices)}"]
        parser, rest = sub.choices[rest[0]], rest[1:]
    options = parser._option_string_actions
    for word in rest:
        flag = word.strip("[]").split("=")[0]
        if flag.startswith("-") and flag not in ("-", "--") and not flag[1:].isdigit() and flag not in options:
            found.append(f"{flag} is not an option of `{parser.prog}`")
    return found


README_COMMANDS = readme_commands(README.read_text())
EXAMPLES = syncd_stages([example for command in COMMANDS for example in command.examples])


def test_the_readme_prints_syncd_commands() -> None:
    """The extraction finds the README's commands (a guard against a pattern that finds nothing)."""
    subcommands = {shlex.split(c, comments=True)[1] for c in README_COMMANDS}
    assert {"demo", "run", "status", "check", "logs", "dlq", "replay", "position", "backfill", "reconcile"} <= (
        subcommands
    )


@pytest.mark.parametrize("command", README_COMMANDS)
def test_each_readme_command_exists(command: str) -> None:
    """The subcommand and every option of this README command are the parser's."""
    assert problems(command) == []


@pytest.mark.parametrize("example", EXAMPLES)
def test_each_help_example_exists(example: str) -> None:
    """Every example a command's --help shows names options its parser has."""
    assert problems(example) == []


@pytest.mark.parametrize(
    ("command", "wrong"),
    [
        ("syncd statuz --json", True),
        ("syncd status --jsn", True),
        ("syncd dlq shw 3", True),
        ("syncd run --until-idle --max-wait 1m", False),
        (".venv/bin/syncd dlq show 3 --config x.toml", False),
    ],
)
def test_the_check_catches_what_the_parser_lacks(command: str, wrong: bool) -> None:
    """An unknown subcommand, nested subcommand or option is reported; a real one is not."""
    assert bool(problems(command)) is wrong
