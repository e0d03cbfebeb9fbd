"""`syncd reconcile`: the proof that every record arrived. Every live lead and contact Sell holds now, against what
each destination holds (through the destinations' own read endpoints, within their rate limits): present and
equal, present and different (which fields), missing, present though deleted in Sell. `--repair` queues the
differences as deliveries. Run it before switching Sell off.

The work is the daemon's, like a backfill's (syncd.commands.jobs): beside a running `syncd run` the job is queued
for it; with none, this command runs the daemon until the reconciliation (and, with `--repair`, what it queued)
is done. Exit 0 when there are zero differences, 1 when some were found (run it again after `--repair`).
"""

from __future__ import annotations

import argparse
import json
import sys

import anyio

from syncd.commands import Command, load_config
from syncd.errors import ConfigError
from syncd.logs import configure as configure_logs


def run(args: argparse.Namespace) -> int:
    from syncd.commands.check import offline_problems
    from syncd.commands.jobs import run_job
    from syncd.reconcile.job import KIND, job_params
    from syncd.reconcile.report import problems_in, render

    config = load_config(args)
    enabled = [s.name for s in config.enabled_sinks()]
    sinks = [args.sink] if args.sink else enabled
    if args.sink and args.sink not in enabled:
        raise ConfigError(f"--sink {args.sink}: not an enabled destination (enabled: {', '.join(enabled) or 'none'})")
    if not sinks:
        raise ConfigError("no destination is enabled: there is nothing to reconcile", path=config.source)
    problems = offline_problems(config)
    if problems:
        for problem in problems:
            print(f"syncd: configuration error: {config.source}: {problem}", file=sys.stderr)
        return 78
    quiet = config.log.level in ("debug", "info") and not args.json
    configure_logs(
        level="warning" if quiet else config.log.level,
        fmt=config.log.format,
        secrets=config.secret_values(),
        stream=sys.stderr,
    )

    async def main() -> int:
        job = await run_job(
            config,
            KIND,
            job_params(sinks, repair=args.repair),
            daemon={"reconcile": (sinks, args.repair)},
            note=lambda text: print(text, file=sys.stderr),
        )
        if job is None or job.state != "done" or not job.result:
            error = job.error if job is not None else "it never ran"
            print(f"syncd: the reconciliation failed: {error}", file=sys.stderr)
            return 1
        result = json.loads(job.result)
        print(json.dumps({"job": job.id, **result}, indent=2) if args.json else render(result))
        return 0 if problems_in(result) == 0 else 1

    code: int = anyio.run(main)
    return code


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sink", choices=["salesmanago", "ontraport"], help="one destination (default: every one)")
    parser.add_argument(
        "--repair", action="store_true", help="queue what differs, is missing or was deleted in Sell as deliveries"
    )
    parser.add_argument("--json", action="store_true", help="the report as JSON (it lists the keys, never e-mails)")


COMMAND = Command(
    "reconcile",
    "Compare every live Sell lead and contact with what each destination holds (equal, different, missing, deleted"
    " in Sell); --repair queues the differences. Exit 0 when there are none: the proof before switching Sell off.",
    (
        "syncd reconcile --config syncd.toml",
        "syncd reconcile --config syncd.toml --sink ontraport --json > proof.json",
        "syncd reconcile --config syncd.toml --repair && syncd reconcile --config syncd.toml",
    ),
    run,
    _arguments,
)
