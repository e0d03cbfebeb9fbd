"""`syncd demo`: the whole pipeline against the built-in simulators (the work is in syncd.demo, imported when the
command runs)."""

from __future__ import annotations

import argparse

from syncd.commands import Command

DEFAULT_EVENTS = 3000
DEFAULT_SEED = 1

EXAMPLES = (
    "syncd demo                              # 3000 events, live progress, then the summary",
    "syncd demo --events 20000 --seed 7",
    "syncd demo --json | jq .destinations",
    "syncd demo --keep ./demo                # keep state, config and log for status / dlq / logs",
    "syncd status --config ./demo/syncd.toml",
    "syncd demo --rate-limits --events 300   # the APIs' real limits (Sell 10/s, Ontraport 180/min): slow",
    "syncd demo --feedback                   # outcomes written back on the Sell records as tags",
)


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--events", type=int, default=DEFAULT_EVENTS, metavar="N", help=f"Sell events to generate ({DEFAULT_EVENTS})"
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, metavar="S", help=f"seed of the generated history ({DEFAULT_SEED})"
    )
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object instead")
    parser.add_argument(
        "--keep",
        metavar="DIR",
        help="keep the state file, config, credentials and log in DIR (default: a temporary directory, removed)",
    )
    parser.add_argument(
        "--rate-limits",
        action="store_true",
        help="enforce the APIs' real rate limits (Sell 10/s, Ontraport 180/min); slow (default: none)",
    )
    parser.add_argument(
        "--feedback",
        action="store_true",
        help="write each person's outcomes back on it in Sell as tags ([feedback] enabled), and show them",
    )


def run(args: argparse.Namespace) -> int:
    """Run the demo."""
    from syncd.demo.run import run as run_demo

    return run_demo(args)


COMMAND = Command(
    "demo",
    "Run the whole pipeline against the built-in sandboxes and show where every event went.",
    EXAMPLES,
    run,
    _arguments,
    takes_config=False,
)
