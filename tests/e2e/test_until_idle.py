"""`syncd run --until-idle --max-wait`: a real process gives up, with exit 69 and the URL, on what it cannot reach."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from syncd.idle import EXIT_UNREACHABLE
from tests.e2e.world import World, person, world
from tests.support import Processes, free_port


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path) as created:
        yield created


def run_until_idle(processes: Processes, config: Path, *extra: str) -> tuple[int, str]:
    proc = processes.syncd(
        "run", "--config", str(config), "--until-idle", *extra, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = proc.communicate(timeout=60)
    return proc.returncode, err.decode() + out.decode()


def test_until_idle_gives_up_on_a_sell_that_refuses_connections(w: World, processes: Processes) -> None:
    """Sell's port closed: --until-idle --max-wait 2s exits 69 and names Sell's URL (it waited forever before)."""
    closed = f"http://127.0.0.1:{free_port()}"
    config = w.tmp_path / "syncd.toml"
    config.write_text(w.config_text().replace(w.sell.url, closed))
    code, output = run_until_idle(processes, config, "--max-wait", "2s")
    assert code == EXIT_UNREACHABLE, output
    assert (
        f"syncd: --until-idle gave up after waiting 2s (--max-wait) for what it could not reach: Sell at {closed}"
        in (output)
    )
    assert "until_idle_gave_up" in output


def test_until_idle_gives_up_on_a_destination_that_refuses_connections(w: World, processes: Processes) -> None:
    """Ontraport's port closed with a lead to write: SALESmanago gets it, then exit 69 naming Ontraport's URL."""
    w.append("leads", person("lead", 1))
    op_url = w.op.url
    w.stop("op")
    config = w.config_file()
    code, output = run_until_idle(processes, config, "--max-wait", "2s")
    assert code == EXIT_UNREACHABLE, output
    assert f"ontraport at {op_url}" in output
    assert "Sell at" not in output.split("syncd: --until-idle gave up")[-1]
    assert "lead1@example.org" in w.sm_contacts()


def test_max_wait_never_fires_when_everything_answers(w: World, processes: Processes) -> None:
    """Without anything unreachable, --max-wait never fires: a normal --until-idle run exits 0."""
    w.append("leads", person("lead", 1))
    code, output = run_until_idle(processes, w.config_file(), "--max-wait", "1s")
    assert code == 0, output
    assert "gave up" not in output
