"""The README's first commands, and the commands the demo prints, run exactly as printed in a clean shell.

A clean shell: `env -i` with only PATH=/usr/bin:/bin and HOME (no virtualenv active, nothing of the test's own
environment). The README's set-up is `python3 -m venv .venv`, `. .venv/bin/activate`, `pip install -e .` in the
checkout. The tests stand in for the first and third with a `.venv` that is this test run's own virtualenv, which
is exactly that: a virtualenv holding an editable install of this checkout (checked below), so nothing is
installed again; the activation line is run as the README prints it.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

import syncd

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
SETUP = ["python3 -m venv .venv", ". .venv/bin/activate", "pip install -e ."]
HINTS = re.compile(r"^Look further$\n(?P<block>(?:^  .*$\n?)+)", re.MULTILINE)


def first_block() -> list[str]:
    """The commands of the README's first shell block, one per line, comments and blank lines left out."""
    match = re.search(r"```sh\n(.*?)```", README.read_text(), re.DOTALL)
    assert match, "the README has no ```sh block"
    lines = [line.split(" #")[0].strip() for line in match.group(1).splitlines()]
    return [line for line in lines if line and not line.startswith("#")]


@pytest.fixture
def checkout(tmp_path: Path) -> Path:
    """A directory standing for the checkout after the README's set-up: `.venv` is this run's virtualenv."""
    venv = Path(sys.prefix)
    assert (venv / "bin" / "activate").is_file() and sys.prefix != sys.base_prefix, "the tests run in a virtualenv"
    assert Path(syncd.__file__).resolve().is_relative_to(REPO), "syncd is installed from this checkout (pip -e)"
    where = tmp_path / "checkout"
    where.mkdir()
    (where / ".venv").symlink_to(venv)
    return where


def clean_shell(script: str, cwd: Path, *, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    """`script` in `sh` with nothing but PATH=/usr/bin:/bin and HOME in its environment."""
    env = ["env", "-i", "PATH=/usr/bin:/bin", f"HOME={cwd}"]
    return subprocess.run(
        [*env, "sh", "-ec", script], cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
    )


def hints(output: str) -> list[str]:
    """The commands the demo printed under "Look further", without their comments."""
    match = HINTS.search(output)
    assert match, output
    commands = [line.split("   #")[0].strip() for line in match.group("block").splitlines()]
    return [command for command in commands if command and not command.startswith("(")]


def test_the_readme_set_up_is_what_this_test_stands_in_for() -> None:
    """The README's first block begins with exactly the set-up the other tests here reproduce."""
    assert first_block()[: len(SETUP)] == SETUP


@pytest.mark.slow  # the demo and each command it prints, one after another
def test_the_readme_first_commands_and_the_demo_hints_work_as_printed(checkout: Path) -> None:
    """After the set-up (activation as printed), each further command of the README's first block exits 0 in a
    clean shell, and so does each command the demo then prints to look further, run as printed."""
    activate = SETUP[1]
    for command in first_block()[len(SETUP) :]:
        done = clean_shell(f"{activate}\n{command}", checkout)
        assert done.returncode == 0, f"{command}: {done.stderr[-2000:]}"
        if command.startswith("syncd demo"):
            printed = hints(done.stdout)
            assert printed[0].startswith("syncd demo --keep ./syncd-demo"), printed
            for hint in printed:
                assert hint.startswith("syncd "), hint  # the activated shell reaches syncd by name
                again = clean_shell(f"{activate}\n{hint}", checkout)
                assert again.returncode == 0, f"{hint}: {again.stderr[-2000:]}"


def test_demo_hints_work_as_printed_in_a_shell_without_the_virtualenv(checkout: Path) -> None:
    """`.venv/bin/syncd demo` in a shell where `syncd` is not on PATH prints its commands with the program's full
    path, and each of them exits 0 in another clean shell, as printed."""
    done = clean_shell(".venv/bin/syncd demo --events 300 --keep kept", checkout)
    assert done.returncode == 0, done.stderr[-2000:]
    printed = hints(done.stdout)
    assert printed and all(hint.startswith(f"{checkout}/.venv/bin/syncd ") for hint in printed), printed
    assert clean_shell("syncd --version", checkout).returncode == 127  # not on PATH: the hints could not say `syncd`
    for hint in printed:
        again = clean_shell(hint, checkout)
        assert again.returncode == 0, f"{hint}: {again.stderr[-2000:]}"
