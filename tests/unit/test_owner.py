"""One owner per state file: the OS lock an owner holds for as long as its store is open, claims that carry the
owner's token, and stores opened beside the owner (shared, read-only) that never touch a claim."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from state import SCHEMA_VERSION, Store, StoreError, StoreOwned, holder
from state.owner import OwnerLock, lock_path
from syncd.ledger import Ledger
from syncd.work import Done
from tests.factories import event
from tests.support import Processes, wait_until

SINKS = ("salesmanago", "ontraport")


@pytest.fixture
async def owner(tmp_path: Path) -> AsyncIterator[Ledger]:
    opened = await Ledger.open(tmp_path / "syncd.db", sinks=SINKS)
    await opened.ingest(
        "leads", [event("lead", i, 1, "created", email=f"{i}@x.org") for i in (1, 2)], position="p", at_top=True
    )
    yield opened
    await opened.close()


def claims(path: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT sink, key, claimed, claimed_by FROM outbox ORDER BY sink, key").fetchall()


async def test_a_second_owner_is_refused_while_the_first_holds_the_file(owner: Ledger) -> None:
    """While an owner has the store open, opening it as owner again fails at once, naming who holds it; once the
    first closes, the file has no owner and the next one gets it."""
    with pytest.raises(StoreOwned) as refused:
        await Store.open(owner.path, sinks=SINKS)
    assert str(refused.value).startswith(f"{owner.path}: another process owns this state file (`syncd run`, pid ")
    found = holder(owner.path)
    assert found is not None and found.command == "syncd run"
    await owner.close()
    assert holder(owner.path) is None
    again = await Store.open(owner.path, sinks=SINKS)
    await again.close()


async def test_claims_carry_the_owners_token_and_openings_beside_it_never_touch_them(owner: Ledger) -> None:
    """A claim is stamped with its owner's token. A shared store (a repair while the daemon runs) and a read-only
    one (status) may open and close the file any number of times: the claimed key stays claimed, so the owner is
    never handed a key that is still in flight."""
    assert await owner.claim("salesmanago", 1) == ["lead:1"]
    token = owner.store.owner_token()
    for _ in range(2):
        shared = await Store.open(owner.path, sinks=SINKS, shared=True)
        assert [x.key for x in await shared.dead_letters()] == []
        await shared.close()
        readonly = await Store.open(owner.path, sinks=SINKS, readonly=True)
        await readonly.status()
        await readonly.close()
    assert ("salesmanago", "lead:1", 1, token) in claims(owner.path)
    assert await owner.claim("salesmanago", 5) == ["lead:2"]  # lead:1 is still in flight


async def test_a_replay_of_a_key_in_flight_has_it_written_again_after_its_outcome(owner: Ledger) -> None:
    """`syncd replay` of a key the daemon has in flight leaves its claim alone, and once the write in flight settles
    the key is not retired: it is claimed again as a re-assert (its latest state written even if unchanged), since
    the write in flight began before the replay. (Before, the in-flight outcome marked the replayed deliveries done
    and retired the key: the replay was lost.)"""
    [work] = await owner.load_work("ontraport", await owner.claim("ontraport", 1))
    shared = Ledger(await Store.open(owner.path, sinks=SINKS, shared=True))
    try:
        replayed = await shared.replay("ontraport", record=("lead", 1))
    finally:
        await shared.close()
    assert (replayed.events, replayed.keys) == (1, 1)
    assert ("ontraport", "lead:1", 1, owner.store.owner_token()) in claims(owner.path)  # still the daemon's
    await owner.commit("ontraport", [Done(work.key, work.seqs, remote_id="7")])
    again = await owner.load_work("ontraport", await owner.claim("ontraport", 5))
    assert [(w.key, w.reassert) for w in again] == [("lead:1", True), ("lead:2", False)]


async def test_only_the_owner_claims(owner: Ledger) -> None:
    """A store opened beside the owner cannot claim keys (it would take work from under the daemon)."""
    shared = await Store.open(owner.path, sinks=SINKS, shared=True)
    try:
        with pytest.raises(StoreError, match="only the process that owns the state file claims keys"):
            await shared.claim("salesmanago", 1)
    finally:
        await shared.close()


async def test_a_dead_owners_claims_lapse_when_the_next_owner_opens(owner: Ledger) -> None:
    """Claims the previous owner left (it died with keys in flight) are due again for the next owner."""
    assert await owner.claim("ontraport", 5) == ["lead:1", "lead:2"]
    await owner.close()
    assert all(row[2] == 1 for row in claims(owner.path) if row[0] == "ontraport")
    nxt = await Ledger.open(owner.path, sinks=SINKS)
    try:
        assert all(row[2:] == (0, None) for row in claims(owner.path))
        assert await nxt.claim("ontraport", 5) == ["lead:1", "lead:2"]
    finally:
        await nxt.close()


async def test_a_shared_store_needs_an_existing_file_at_the_current_schema(tmp_path: Path) -> None:
    """Beside the owner nothing is created or migrated: a missing file, or one an older syncd wrote, is refused
    with what to do."""
    path = tmp_path / "syncd.db"
    with pytest.raises(StoreError, match="no state database here yet"):
        await Store.open(path, shared=True)
    assert not path.exists()
    await (await Store.open(path)).close()
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE schema_version SET version = ?", (SCHEMA_VERSION - 1,))
    with pytest.raises(StoreError, match="start `syncd run` of this version once to upgrade it"):
        await Store.open(path, shared=True)


HOLD = """
import sys, time
from pathlib import Path
from state.owner import OwnerLock
OwnerLock.acquire(Path(sys.argv[1]))
print("locked", flush=True)
time.sleep(600)
"""


def test_the_kernel_drops_the_lock_of_an_owner_killed_with_sigkill(tmp_path: Path, processes: Processes) -> None:
    """An owner in another process holds the file until it dies; after a SIGKILL the next owner gets it at once
    (nothing stale to clean up)."""
    db = tmp_path / "syncd.db"
    child = processes.start([sys.executable, "-c", HOLD, str(db)], stdout=subprocess.PIPE)
    assert child.stdout is not None and child.stdout.readline() == b"locked\n"
    found = holder(db)
    assert found is not None and found.pid == child.pid
    with pytest.raises(StoreOwned, match=f"pid {child.pid} on "):
        OwnerLock.acquire(db, wait=0.05)
    child.send_signal(signal.SIGKILL)
    assert child.wait(timeout=10) == -signal.SIGKILL
    wait_until(lambda: holder(db) is None, what="the lock to go with its owner")
    OwnerLock.acquire(db, wait=0).release()
    assert lock_path(db).stat().st_mode & 0o077 == 0
