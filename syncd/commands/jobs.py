"""Commands whose work the daemon does (`syncd backfill`, `syncd reconcile`): the job is the daemon's, since it owns
the state file and the limiters every call to Sell and the destinations goes through.

- With `syncd run` running on the state file, the command queues the job beside it (a shared write, like
  `syncd replay`) and follows it in the store until it is finished; Ctrl-C only stops watching.
- With no daemon running, the command becomes the daemon (the state file's owner, under its own name in the lock
  file): it runs the pollers, the dispatchers and the job until the job is done and everything queued is
  delivered, then exits.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from anyio.abc import TaskStatus

from state import JobRow, Store, StoreOwned, holder
from syncd.config import Config

if TYPE_CHECKING:
    from syncd.runtime import Runtime

# (the store, the job's id, beside: whether another process, the running daemon, does the job) -> until it is done
Watch = Callable[[Store, int, bool], Awaitable[object]]


async def _until_finished(store: Store, job_id: int) -> None:
    """Until the job is finished (another process, the daemon, writes it: the store is read again and again)."""
    while True:
        job = await store.job(job_id)
        if job is None or not job.open:
            return
        await anyio.sleep(0.2)


async def _cancel_when_set(event: anyio.Event, scope: anyio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


async def run_job(
    config: Config,
    kind: str,
    params: str,
    *,
    daemon: dict[str, Any],
    watch: Watch | None = None,
    after: Callable[[Runtime], Awaitable[object]] | None = None,
    note: Callable[[str], None] = lambda text: None,
) -> JobRow | None:
    """Have the job (`kind`, `params`) done, by the running daemon or by becoming it (`daemon`: what Daemon takes to
    queue it); `watch` shows its progress, `after` what follows while the daemon delivers (only when this process
    runs it), `note` says who does the work. The job as it ended (None when it never ran)."""
    owner = holder(Path(config.state.path))
    if owner is not None:
        return await _beside(config, kind, params, owner.describe(), watch, note)
    from syncd.daemon import Daemon

    # Signals reach the main thread only (a caller running the command in a thread keeps its own handling).
    signals = threading.current_thread() is threading.main_thread()
    runner = Daemon(config, until_idle=True, command=f"syncd {kind}", handle_signals=signals, **daemon)

    async def run_daemon(*, task_status: TaskStatus[Runtime] = anyio.TASK_STATUS_IGNORED) -> None:
        await runner.run(task_status=task_status)
        tg.cancel_scope.cancel()  # the progress too: the daemon is done

    async def show(runtime: Runtime) -> None:
        # Only while the daemon runs: once stopping, it closes the store, and a read of a closed store fails.
        async with anyio.create_task_group() as shown:
            shown.start_soon(_cancel_when_set, runner.stop_event, shown.cancel_scope)
            jobs = [j for j in await runtime.store.jobs(kind, limit=5) if j.params == params]
            if jobs and watch is not None:
                await watch(runtime.store, jobs[0].id, False)
            if after is not None:
                await after(runtime)
            shown.cancel_scope.cancel()

    try:
        async with anyio.create_task_group() as tg:
            runtime = await tg.start(run_daemon)
            tg.start_soon(show, runtime)
    except StoreOwned as exc:  # a daemon started meanwhile: it does the work
        return await _beside(config, kind, params, str(exc), watch, note)
    return await newest(config, kind, params)


async def _beside(
    config: Config, kind: str, params: str, owner: str, watch: Watch | None, note: Callable[[str], None]
) -> JobRow | None:
    async with await Store.open(config.state.path, shared=True) as store:
        job = await store.request_job(kind, params, reason="operator")
    note(f"{kind} {job.id} queued for the running daemon ({owner})")
    async with await Store.open(config.state.path, readonly=True) as store:
        if watch is not None:
            await watch(store, job.id, True)
        await _until_finished(store, job.id)
    return await newest(config, kind, params)


async def newest(config: Config, kind: str, params: str) -> JobRow | None:
    """The newest job of `kind` with `params`."""
    async with await Store.open(config.state.path, readonly=True) as store:
        jobs = [j for j in await store.jobs(kind, limit=50) if j.params == params]
    return jobs[0] if jobs else None
