"""What `syncd sandbox` (and the demo) build before serving."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from syncd.config import loads
from syncd.sandbox.serve import build


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    try:
        yield
    finally:
        gc.unfreeze()  # the test process's objects go back to the collector


def test_a_generated_history_is_kept_out_of_the_collectors_reach(unfrozen: None) -> None:
    """The Sell history a sandbox generates at start is frozen, so no collection walks it while pages are served."""
    config = loads('[sell]\ntoken = "t"\nbase_url = "http://127.0.0.1:9"\n')
    (box,) = build(config, events=2000, serve=["sell"])
    assert box.name == "sell"
    # About 16 objects an event: in the permanent generation, next to nothing left in the young ones.
    assert gc.get_freeze_count() > 2000 * 10
    assert sum(gc.get_count()) < 2000
