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
from typing import TYPE_CHECKING

import anyio

from syncd.commands import Command, load_config
from syncd.config import Config
from syncd.errors import ConfigError
from syncd.logs import configure as configure_logs

if TYPE_CHECKING:
    from state import JobRow, Store
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
    from syncd.backfill.job import job_params
    from syncd.commands.check import offline_problems
    from syncd.commands.jobs import run_job

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

    async def watch(store: Store, job_id: int, beside: bool) -> None:
        from syncd.backfill.progress import follow

        # Off a terminal, the daemon running the job logs its progress: this process only when the daemon is another.
        await follow(store, job_id, terminal=terminal, events=beside)

    async def deliveries(runtime: Runtime) -> None:
        from syncd.backfill.progress import deliveries

        if terminal:
            await deliveries(runtime.store)  # until the daemon is done delivering what the backfill queued

    async def main() -> int:
        job = await run_job(
            config,
            "backfill",
            job_params(streams),
            daemon={"backfill": streams},
            watch=watch,
            after=deliveries,
            note=lambda text: None if args.json else print(text, file=sys.stderr),
        )
        return report(job, streams, as_json=args.json)

    result: int = anyio.run(main)
    return result


def report(job: JobRow | None, streams: list[str], *, as_json: bool) -> int:
    """What came of the backfill, printed; the exit code (1 when it failed or never ran)."""
    if job is None:
        print("syncd: no backfill ran", file=sys.stderr)
        return 1
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
    return 0 if job.state == "done" else 1


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
