"""`syncd backfill`: carry what Sell already holds, through the Core API, into every destination.

The work is the daemon's (it shares Sell's one limiter with the pollers, and owns the state file):

- with `syncd run` running on the state file, this command queues a backfill job beside it (a shared write, like
  `syncd replay`) and shows the job's progress from the store until it is finished; Ctrl-C only stops watching;
- with no daemon running it becomes the daemon itself (the state file's owner): it runs the pollers, dispatchers
  and the backfill until the backfill is done and everything it queued is delivered, then exits.

Exit 0 when the backfill finished, 1 when it failed. A backfill stopped halfway (Ctrl-C of the daemon, a crash,
SIGKILL) goes on from its last stored page the next time a daemon runs.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from anyio.abc import TaskStatus

from state import StoreOwned, holder
from syncd.commands import Command, load_config
from syncd.config import Config
from syncd.errors import ConfigError
from syncd.logs import configure as configure_logs

if TYPE_CHECKING:
    from syncd.runtime import Runtime


def streams_of(args: argparse.Namespace, config: Config) -> list[str]:
    """The streams named by --streams (default: every configured one); each must be one of sell.streams."""
    if not args.streams:
        return list(config.sell.streams)
    wanted = [s.strip() for s in args.streams.split(",") if s.strip()]
    unknown = [s for s in wanted if s not in config.sell.streams]
    if unknown or not wanted:
        raise ConfigError(
            f"--streams {args.streams}: expected names from sell.streams ({', '.join(config.sell.streams)})"
        )
    return list(dict.fromkeys(wanted))


def run(args: argparse.Namespace) -> int:
    from syncd.commands.check import offline_problems
    from syncd.daemon import Daemon

    config = load_config(args)
    streams = streams_of(args, config)
    problems = offline_problems(config)
    if problems:
        for problem in problems:
            print(f"syncd: configuration error: {config.source}: {problem}", file=sys.stderr)
        return 78
    terminal = sys.stderr.isatty() and not args.json
    # On a terminal the bars show the progress; the log keeps to what needs attention.
    level = "warning" if terminal and config.log.level in ("debug", "info") else config.log.level
    configure_logs(level=level, fmt=config.log.format, secrets=config.secret_values(), stream=sys.stderr)
    owner = holder(Path(config.state.path))
    if owner is not None:
        return anyio.run(_beside, config, streams, owner.describe(), terminal, args.json)
    daemon = Daemon(config, until_idle=True, backfill=streams, command="syncd backfill")

    async def main() -> int:
        code = 1

        async def run_daemon(*, task_status: TaskStatus[Runtime] = anyio.TASK_STATUS_IGNORED) -> None:
            nonlocal code
            code = await daemon.run(task_status=task_status)
            tg.cancel_scope.cancel()  # the bars too: the daemon is done

        try:
            async with anyio.create_task_group() as tg:
                runtime = await tg.start(run_daemon)
                if terminal:
                    tg.start_soon(_show, runtime)
        except StoreOwned as exc:  # a daemon started meanwhile: it does the work
            return await _beside(config, streams, str(exc), terminal, args.json)
        return await _report(config, streams, code, as_json=args.json)

    result: int = anyio.run(main)
    return result


async def _beside(config: Config, streams: list[str], owner: str, terminal: bool, as_json: bool) -> int:
    """Queue the backfill for the daemon that owns the state file, and follow it from the store."""
    from state import Store
    from syncd.backfill.job import job_params
    from syncd.backfill.progress import follow

    async with await Store.open(config.state.path, shared=True) as store:
        job = await store.request_job("backfill", job_params(streams), reason="operator")
    if not as_json:
        print(f"backfill {job.id} of {', '.join(streams)} queued for the running daemon ({owner})", file=sys.stderr)
    async with await Store.open(config.state.path, readonly=True) as store:
        await follow(store, job.id, terminal=terminal)
    return await _report(config, streams, 0, as_json=as_json)


async def _show(runtime: Runtime) -> None:
    """Bars for the backfill the daemon runs (read from its own store)."""
    from syncd.backfill.progress import deliveries, follow

    jobs = await runtime.store.jobs("backfill", limit=1)
    if jobs:
        await follow(runtime.store, jobs[0].id, terminal=True)
    await deliveries(runtime.store)  # until the daemon is done delivering what the backfill queued


async def _report(config: Config, streams: list[str], code: int, *, as_json: bool) -> int:
    """What came of the newest backfill of `streams`, printed; the exit code."""
    from state import Store
    from syncd.backfill.job import job_params

    async with await Store.open(config.state.path, readonly=True) as store:
        jobs = [j for j in await store.jobs("backfill", limit=50) if j.params == job_params(streams)]
    if not jobs:
        print("syncd: no backfill ran", file=sys.stderr)
        return code or 1
    job = jobs[0]
    result = json.loads(job.result) if job.result else {}
    if as_json:
        print(json.dumps({"job": job.id, "state": job.state, "error": job.error, **result}, indent=2))
    elif job.state == "done":
        found = f"; {result.get('found_again', 0)} found again, {result.get('gone', 0)} gone from Sell"
        quarantined = f"; {result['quarantined']} quarantined (syncd status)" if result.get("quarantined") else ""
        print(
            f"backfill {job.id} done: {result.get('records', 0)} records of {', '.join(streams)} read in"
            f" {result.get('requests', 0)} requests{found}{quarantined}; the Firehose goes on from where it began"
        )
    elif job.state == "failed":
        print(f"syncd: backfill {job.id} failed: {job.error}", file=sys.stderr)
    else:
        print(f"backfill {job.id} is {job.state}: it goes on from its last stored page when syncd runs again")
    if job.state == "failed":
        return 1
    return code


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--streams", metavar="S1,S2", help="the streams to backfill (default: every stream of sell.streams)"
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON (no progress bars)")


COMMAND = Command(
    "backfill",
    "Read every record Sell already holds (the Core API) and deliver it like a change; the Firehose goes on from"
    " where the backfill began. Resumable; shares Sell's rate limit with the pollers.",
    (
        "syncd backfill --config syncd.toml",
        "syncd backfill --config syncd.toml --streams leads,contacts",
        "syncd backfill --config syncd.toml --json > backfill.json",
    ),
    run,
    _arguments,
)
