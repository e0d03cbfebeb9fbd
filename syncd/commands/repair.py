"""`syncd dlq …`, `syncd replay …` and `syncd position`: look at dead letters, send them again or drop them, replay
stored events, show or move stream positions. Each command prints what it changed.

None of them reads a secret. While the daemon runs: `dlq list`, `dlq show` and `position` (showing) only read;
`dlq retry`, `dlq drop` and `replay` are safe (each one transaction beside the daemon's, which never disturbs a
key in flight); `position --set` refuses (exit 75), since the running daemon would overwrite the position it sets.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

import anyio

from state import DeadLetter, Holder, Store, StoreOwned, holder
from syncd.commands import Command, add_config_argument, examples_epilog, load_config, state_path_errors
from syncd.config import Config
from syncd.errors import ConfigError
from syncd.ledger import Ledger
from syncd.routing import ROUTES
from syncd.sell.expiry import expired_note, skipped, unread_for_set, unread_since
from syncd.units import parse_duration
from syncd.work import split_key


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def letter_json(letter: DeadLetter, *, with_request: bool = False) -> dict[str, Any]:
    data: dict[str, Any] = {
        "id": letter.id,
        "sink": letter.sink,
        "key": letter.key,
        "reason": letter.reason,
        "http_status": letter.http_status,
        "attempts": letter.attempts,
        "created_at": _when(letter.created_at),
        "events": len(letter.seqs),
        "seqs": list(letter.seqs),
    }
    if with_request:
        data["request"] = request_value(letter.request)
    return data


def request_value(text: str | None) -> Any:
    """The stored request as the JSON it is (its body an object, not a JSON string inside JSON); text that is not
    JSON (a form body, a request cut short) stays as it is."""
    if text is None:
        return None
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_since(text: str, *, now: float | None = None) -> datetime:
    """An ISO-8601 time ("2026-11-20T10:00:00Z") or a duration ago ("24h", "90m")."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            ago = parse_duration(text)
        except ValueError:
            raise ConfigError(f"--since: expected an ISO-8601 time or a duration such as 24h, got {text!r}") from None
        return datetime.fromtimestamp(now if now is not None else time.time(), UTC) - timedelta(seconds=ago)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_record(text: str) -> tuple[str, int]:
    """`KIND:ID` of a Sell record a destination takes (`lead:9`, `contact:5`, `deal:77`, `note:12`) as (kind, id)."""
    kinds = sorted({kind for routes in ROUTES.values() for kind in routes})
    try:
        kind, record_id = split_key(text)
    except ValueError:
        kind, record_id = "", -1
    if kind not in kinds or not 0 <= record_id < 2**63:
        raise ConfigError(f"--record: expected KIND:ID with KIND one of {', '.join(kinds)}, got {text!r}")
    return kind, record_id


Access = Literal["readonly", "shared", "owner"]


async def _with_store(config: Config, action: Any, access: Access, command: str = "") -> Any:
    """Run `action(store)` on the state file opened as `access` says:

    - "readonly" for commands that only look (the daemon's claims are never touched);
    - "shared" for repairs that are safe while the daemon runs (one transaction each; SQLite serialises it with
      the daemon's, whose dispatchers pick re-queued keys up within a second; claims in flight are left alone);
    - "owner" for repairs that need the daemon stopped: they take the file's owner lock, so while `syncd run`
      holds it they refuse (exit 75) instead of writing what the daemon would overwrite.
    """
    sinks = [s.name for s in config.enabled_sinks()]
    with state_path_errors(config):
        try:
            store = await Store.open(
                config.state.path,
                sinks=sinks,
                readonly=access == "readonly",
                shared=access == "shared",
                command=f"syncd {command}",
            )
        except StoreOwned as exc:
            if access != "owner" or not isinstance(exc.holder, Holder):
                raise
            raise StoreOwned(
                f"{config.state.path}: `syncd {command}` needs syncd stopped, but {exc.holder.describe()} is using"
                " this state file. Stop it (systemctl stop syncd), run this again, then start syncd",
                exc.holder,
            ) from None
    try:
        return await action(store)
    finally:
        await store.close()


def _who_delivers(config: Config) -> str:
    """What happens next to re-queued work: the running daemon takes it, or the next one will."""
    owner = holder(Path(config.state.path))
    if owner is not None:
        return f"the running syncd ({owner.describe()}) delivers them within a second or two"
    return "no syncd is running on this state file: they are delivered when `syncd run` starts"


def cmd_dlq(args: argparse.Namespace) -> int:
    config = load_config(args, secrets=False)

    async def run(store: Store) -> int:
        if args.dlq_command == "list":
            letters = await store.dead_letters(args.sink)
            if args.json:
                print(json.dumps([letter_json(x) for x in letters], indent=2))
                return 0
            if not letters:
                print("no dead letters")
                return 0
            print(f"{'ID':>5}  {'SINK':<12}{'KEY':<18}{'EVENTS':>6}  {'WHEN':<21}REASON")
            for x in letters:
                print(f"{x.id:>5}  {x.sink:<12}{x.key:<18}{len(x.seqs):>6}  {_when(x.created_at):<21}{x.reason}")
            return 0
        if args.dlq_command == "show":
            letter = await store.dead_letter(args.id)
            if letter is None:
                print(f"no dead letter {args.id}")
                return 1
            print(json.dumps(letter_json(letter, with_request=True), indent=2, ensure_ascii=False))
            return 0
        if args.dlq_command == "retry":
            if args.all == (args.id is not None):
                raise ConfigError("dlq retry: give a dead letter ID or --all")
            moved = await store.retry_dead(None if args.all else [args.id], sink=args.sink)
            for x in moved:
                print(f"re-queued dead letter {x.id}: {x.sink} {x.key} ({len(x.seqs)} event(s))")
            print(f"{len(moved)} dead letter(s) re-queued" + (f"; {_who_delivers(config)}" if moved else ""))
            return 0 if moved or args.all else 1
        dropped = await store.drop_dead(args.id)
        if dropped is None:
            print(f"no dead letter {args.id}")
            return 1
        print(
            f"dropped dead letter {dropped.id}: {dropped.sink} {dropped.key} ({len(dropped.seqs)} event(s) now skipped)"
        )
        return 0

    access: Access = "shared" if args.dlq_command in ("retry", "drop") else "readonly"
    result: int = anyio.run(_with_store, config, run, access, f"dlq {args.dlq_command}")
    return result


def cmd_replay(args: argparse.Namespace) -> int:
    config = load_config(args, secrets=False)
    names = [s.name for s in config.enabled_sinks()]
    if args.sink not in names:
        raise ConfigError(f"--sink {args.sink}: not an enabled destination (enabled: {', '.join(names) or 'none'})")
    since = parse_since(args.since) if args.since else None
    record = parse_record(args.record) if args.record else None

    async def run(store: Store) -> int:
        done = await Ledger(store).replay(args.sink, since=since, record=record)
        scope = f"since {since.isoformat()}" if since else f"of {args.record}"
        again = f"{done.keys} record(s) will be written again"
        print(f"re-queued {done.events} stored event(s) {scope} for {args.sink}: {again}")
        if done.keys:
            print(_who_delivers(config))
        return 0

    result: int = anyio.run(_with_store, config, run, "shared", "replay")
    return result


def cmd_position(args: argparse.Namespace) -> int:
    config = load_config(args, secrets=False)
    if args.set is not None:
        if args.stream is None:
            raise ConfigError("--set needs --stream")
        if args.stream not in config.sell.streams:
            raise ConfigError(f"--stream {args.stream}: not one of sell.streams ({', '.join(config.sell.streams)})")

    async def run(store: Store) -> int:
        if args.set is not None:
            before = await store.position(args.stream)
            now = time.time()
            await store.set_position(args.stream, args.set, unread_since=unread_for_set(args.set, now))
            old = before.position if before is not None and before.position else "(none)"
            print(f"{args.stream}: position {old} -> {args.set} (expired and stopped flags cleared)")
            print(skipped(args.stream, args.set, before, now=now))
            print("start syncd for the stream to be read from there")
            return 0
        snapshot = await store.status()
        rows = [s for s in snapshot.streams if args.stream in (None, s.stream)]
        if args.json:
            print(
                json.dumps(
                    {
                        s.stream: {
                            "position": s.position,
                            "at_top": s.at_top,
                            "expired": s.expired,
                            "stopped": s.stopped,
                            "updated_at": _when(s.updated_at),
                            "unread_since": _when(unread_since(s)),
                        }
                        for s in rows
                    },
                    indent=2,
                )
            )
            return 0
        now = time.time()
        for s in rows:
            state = "EXPIRED" if s.expired else (f"STOPPED: {s.stopped}" if s.stopped else "ok")
            print(f"{s.stream:<14}{s.position:<40}{'at top' if s.at_top else '':<8}{_when(s.updated_at)}  {state}")
        for s in rows:
            if s.expired:
                print(expired_note(s.stream, s, now=now))
            elif not s.at_top:
                print(skipped(s.stream, "top", s, now=now) + " (if you jumped it to the top now)")
        return 0

    access: Access = "owner" if args.set is not None else "readonly"
    result: int = anyio.run(_with_store, config, run, access, "position --set")
    return result


def _dlq_arguments(dlq: argparse.ArgumentParser) -> None:
    sub = dlq.add_subparsers(dest="dlq_command", metavar="ACTION", required=True)

    def action(name: str, help_text: str, *examples: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = sub.add_parser(
            name,
            help=help_text,
            description=help_text,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=examples_epilog(examples),
        )
        add_config_argument(parser, suppress=True)
        return parser

    listing = action(
        "list", "list dead letters (only reads: safe while syncd runs)", "syncd dlq list", "syncd dlq list --json"
    )
    listing.add_argument("--sink", choices=["salesmanago", "ontraport", "feedback"])
    listing.add_argument("--json", action="store_true")
    show = action("show", "one dead letter with its request, secrets removed (only reads)", "syncd dlq show 12")
    show.add_argument("id", type=int)
    retry = action(
        "retry",
        "queue dead letters again (safe while syncd runs: it picks them up within a second)",
        "syncd dlq retry 12",
        "syncd dlq retry --all --sink salesmanago",
    )
    retry.add_argument("id", type=int, nargs="?")
    retry.add_argument("--all", action="store_true", help="every dead letter (of --sink, when given)")
    retry.add_argument("--sink", choices=["salesmanago", "ontraport", "feedback"])
    drop = action(
        "drop", "give up on a dead letter, its events counted as skipped (safe while syncd runs)", "syncd dlq drop 12"
    )
    drop.add_argument("id", type=int)


def _replay_arguments(replay: argparse.ArgumentParser) -> None:
    replay.add_argument(
        "--sink",
        required=True,
        choices=["salesmanago", "ontraport"],
        help="the destination to send them to again",
    )
    which = replay.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--since", metavar="TIME", help="events that occurred at or after TIME (ISO-8601, or e.g. 24h ago)"
    )
    which.add_argument(
        "--record", metavar="KIND:ID", help="every stored event of one Sell record, e.g. lead:9001 or deal:77"
    )


def _position_arguments(position: argparse.ArgumentParser) -> None:
    position.add_argument("--stream", help="one stream")
    position.add_argument("--set", metavar="POSITION", help="tail, top, or a position string syncd printed before")
    position.add_argument("--json", action="store_true", help="machine-readable output")


COMMANDS = (
    Command(
        "dlq",
        "Dead letters: records a destination refused for good. List, show, retry or drop them; every action is"
        " safe while syncd runs, and none reads a secret.",
        (
            "syncd dlq list --sink ontraport",
            "syncd dlq show 12",
            "syncd dlq retry 12",
            "syncd dlq retry --all --sink salesmanago",
            "syncd dlq drop 12",
        ),
        cmd_dlq,
        _dlq_arguments,
    ),
    Command(
        "replay",
        "Queue stored events for a destination again (safe: writes are idempotent). Safe while syncd runs: it"
        " picks them up within a second; reads no secret.",
        (
            "syncd replay --sink ontraport --since 24h",
            "syncd replay --sink salesmanago --since 2026-11-20T00:00:00Z",
            "syncd replay --sink ontraport --record contact:9001",
        ),
        cmd_replay,
        _replay_arguments,
    ),
    Command(
        "position",
        "Show each stream's stored Firehose position (safe while syncd runs), or move one with --set, which"
        " refuses while syncd runs (exit 75): stop syncd first. Reads no secret.",
        (
            "syncd position --config syncd.toml",
            "syncd position --config syncd.toml --stream leads --set top     # after an expired position, skip ahead",
            "syncd position --config syncd.toml --stream leads --set tail    # re-read all retained history",
        ),
        cmd_position,
        _position_arguments,
    ),
)
