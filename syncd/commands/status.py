"""`syncd status`: what the store says, as JSON for machines or a table for people. Never shows a secret."""

from __future__ import annotations

import argparse
import json
import shutil
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio

from state import JobRow, PartRow, RecordRow, StatusSnapshot
from state.keys import record_key
from syncd.commands import Command, load_config, state_path_errors
from syncd.config import OntraportConfig, SalesmanagoConfig
from syncd.diskspace import RESUME_AT, Usage, over_budget
from syncd.drift import drift_lines
from syncd.events import PERSON_KINDS, Contact, Lead, decode_record
from syncd.sell.poller import FAILING_AFTER
from syncd.sinks.persons import Person, Policy, counts, person_of, shared_contact

DEFAULT_MARGIN = 24 * 3600.0  # `[sell] expiry_warning` when the caller has no config at hand
HELD_BACK_SHOWN = 50


def _iso(ts: float | None) -> str | None:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z") if ts else None


def shared_emails(
    rows: Sequence[tuple[str, RecordRow]], sinks: Sequence[SalesmanagoConfig | OntraportConfig]
) -> dict[str, Any]:
    """Per destination, how it treats several live Sell people with one e-mail: its `shared_email` and
    `organisations` settings, how many e-mails are shared, and which records are held back (keys, never e-mails,
    at most `HELD_BACK_SHOWN` of them)."""
    groups: dict[str, list[Person]] = {}
    for email, row in rows:
        record = decode_record(row.body)
        if isinstance(record, Lead | Contact):
            groups.setdefault(email, []).append(person_of(record_key(row.kind, row.record_id), record))
    found: dict[str, Any] = {}
    for sink in sinks:
        policy = Policy("email", organisations=sink.organisations, shared_email=sink.shared_email)
        held = [key for people in groups.values() for key in shared_contact(people, policy)[1]]
        shared = sum(1 for people in groups.values() if sum(counts(p, policy) for p in people) > 1)
        found[sink.name] = {
            "shared_email": sink.shared_email,
            "organisations": sink.organisations,
            "emails": shared,
            "held_back": len(held),
            "held_back_keys": sorted(held)[:HELD_BACK_SHOWN],
        }
    return found


def as_dict(
    snapshot: StatusSnapshot,
    *,
    now: float,
    runtime: dict[str, Any] | None = None,
    sharing: dict[str, Any] | None = None,
    margin: float = DEFAULT_MARGIN,
) -> dict[str, Any]:
    """The JSON shape of `syncd status --json` (stable keys); `margin` is `[sell] expiry_warning`."""
    from syncd.sell.expiry import expiry, unread_since

    streams: dict[str, Any] = {}
    for s in snapshot.streams:
        age = max(0.0, now - s.updated_at)
        left = expiry(s, now=now, margin=margin)
        streams[s.stream] = {
            "position": s.position,
            "at_top": s.at_top,
            "updated_at": _iso(s.updated_at),
            "position_age_s": round(age, 1),
            "expired": s.expired,
            "stopped": s.stopped,
            "unread_since": _iso(unread_since(s)),
            "expires_in_h": left.hours_left,
            "expiry_warning": left.warning,
            "failures": s.failures,
            "failing": s.failures >= FAILING_AFTER,
            "last_error": s.last_error,
        }
    sinks: dict[str, Any] = {}
    for k in snapshot.sinks:
        sinks[k.sink] = {
            "pending": k.pending,
            "pending_keys": k.pending_keys,
            "oldest_pending_age_s": round(now - k.oldest_pending_at, 1) if k.oldest_pending_at else None,
            "done": k.done,
            "skipped": k.skipped,
            "dead": k.dead,
            "dead_letters": k.dead_letters,
            "max_attempts": k.max_attempts,
            "paused": k.paused,
            "paused_until": _iso(k.paused_until),
            "waiting": k.waiting,
            "late_write_checks": k.checking,
            "waits": [
                {
                    "key": w.key,
                    "on": w.wait.on,
                    "reason": w.wait.reason,
                    "waiting_s": round(max(0.0, now - w.wait.since), 1),
                    "checks": w.wait.checks,
                    "next_check": _iso(w.due_at),
                }
                for w in k.waits
            ],
        }
    result: dict[str, Any] = {
        "streams": streams,
        "jobs": [_job(job, snapshot.parts.get(job.id, []), now) for job in snapshot.jobs],
        "events": snapshot.events,
        "quarantined": snapshot.quarantined,
        "sinks": sinks,
        "drift": [
            {"scope": d.scope, "subject": d.subject, "problem": d.problem, "since": _iso(d.since)}
            for d in snapshot.drift
        ],
        # Throttle pauses holding an API account's calls now (each capped at its max_backoff), and their end.
        "throttled": {
            api: {"until": _iso(until), "remaining_s": round(until - now, 1)}
            for api, until in snapshot.throttles.items()
            if until > now
        },
    }
    if sharing is not None:
        result["shared_emails"] = sharing
    if runtime:
        result["runtime"] = runtime
    return result


def _job(job: JobRow, parts: list[PartRow], now: float) -> dict[str, Any]:
    """A backfill or reconciliation as status shows it: what it is for, where it stands, what came of it."""
    from syncd.backfill.job import estimate_part

    data: dict[str, Any] = {
        "id": job.id,
        "kind": job.kind,
        "state": job.state,
        "reason": job.reason,
        "params": json.loads(job.params),
        "requested_at": _iso(job.requested_at),
        "finished_at": _iso(job.finished_at),
        "error": job.error,
    }
    if parts:
        data["parts"] = {
            p.part: {
                "state": p.state,
                "records": p.records,
                "estimated_total": estimate_part(p).total,
                "requests": p.requests,
            }
            for p in parts
        }
        data["records"] = sum(p.records for p in parts)
    if job.result and not job.open:
        result = json.loads(job.result)
        if job.kind == "reconcile" and isinstance(result, dict):
            from syncd.reconcile.report import problems_in

            data["differences"] = problems_in(result)
        else:
            data["result"] = {k: v for k, v in result.items() if k != "parts"} if isinstance(result, dict) else result
    return data


def render_json(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=False)


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    if seconds < 120:
        return f"{seconds:.0f}s"
    if seconds < 7200:
        return f"{seconds / 60:.0f}m"
    return f"{seconds / 3600:.1f}h"


def state_budget(usage: Usage, *, max_size: int, min_free: int) -> dict[str, Any]:
    """The state file against its budget: bytes in use and free, the limits, and why it is over (polling pauses
    there: `over` is the same test the daemon makes before each page; a pause lasts until use is below
    `resume_below` bytes)."""
    reason = over_budget(usage, max_size=max_size, min_free=min_free)
    budget = {
        "over": bool(reason),
        "reason": reason or None,
        "max_size": max_size,
        "min_free": min_free,
        "resume_below": int(max_size * RESUME_AT),
    }
    return {"used_bytes": usage.used, "free_bytes": usage.free, "budget": budget}


def _free(directory: Path) -> int | None:
    try:
        return shutil.disk_usage(directory).free
    except OSError:
        return None


def _state_lines(state: dict[str, Any]) -> list[str]:
    budget = state["budget"]
    free = f", {state['free_bytes'] / 1e6:.1f} MB free" if state["free_bytes"] is not None else ""
    line = (
        f"state file: {state['used_bytes'] / 1e6:.1f} MB in use of {budget['max_size'] / 1e6:.1f} MB"
        f" (state.max_size){free} (floor {budget['min_free'] / 1e6:.1f} MB, state.min_free)"
    )
    if not budget["over"]:
        return [line]
    return [line, f"warning: polling pauses while {budget['reason']}: make room, or the positions expire"]


def _owner_line(owner: dict[str, Any] | None) -> str:
    if owner is None:
        return "owner: none (no syncd is running on this state file)"
    where = f", pid {owner['pid']}" + (f" on {owner['host']}" if owner["host"] else "") if owner["pid"] else ""
    since = f", since {owner['since']}" if owner["since"] else ""
    return f"owner: {owner['command'] or 'syncd'}{where}{since}"


def render_table(data: dict[str, Any]) -> str:
    """A plain-text report for a terminal or a ticket."""
    lines = [f"events stored: {data['events']}   quarantined items: {data['quarantined']}"]
    if "state" in data:
        lines += _state_lines(data["state"])
    if "owner" in data:
        lines.append(_owner_line(data["owner"]))
    lines.append("")
    lines.append(f"{'STREAM':<14}{'AT TOP':<8}{'LAST READ':<11}{'EXPIRES IN':<12}STATE")
    for name, s in data["streams"].items():
        state = "EXPIRED" if s["expired"] else (f"STOPPED: {s['stopped']}" if s["stopped"] else "ok")
        if state == "ok" and s["failing"]:
            state = f"FAILING: the same page failed {s['failures']} times in a row: {s['last_error']}"
        expires = (
            "-" if s["expires_in_h"] is None else f"{s['expires_in_h']}h" + (" (!)" if s["expiry_warning"] else "")
        )
        lines.append(
            f"{name:<14}{'yes' if s['at_top'] else 'no':<8}{_age(s['position_age_s']) + ' ago':<11}{expires:<12}{state}"
        )
    if not data["streams"]:
        lines.append("(no stream has been read yet)")
    for name, s in data["streams"].items():
        if s["expiry_warning"] and not s["expired"]:
            lines.append(
                f"warning: {name} has not been read since {s['unread_since']}: its position expires in"
                f" {s['expires_in_h']}h (Sell keeps 72 h); after that only `syncd backfill --streams {name}` recovers"
            )
    for job in data.get("jobs", []):
        lines.append("")
        lines.append(_job_line(job))
    lines.append("")
    lines.append(
        f"{'DESTINATION':<14}{'PENDING':>9}{'OLDEST':>9}{'DONE':>9}{'SKIPPED':>9}{'DEAD':>7}{'WAITING':>9}  STATE"
    )
    for name, k in data["sinks"].items():
        state = f"PAUSED: {k['paused']}" if k["paused"] else "ok"
        lines.append(
            f"{name:<14}{k['pending']:>9}{_age(k['oldest_pending_age_s']):>9}{k['done']:>9}{k['skipped']:>9}"
            f"{k['dead']:>7}{k['waiting']:>9}  {state}"
        )
    if not data["sinks"]:
        lines.append("(no destination has received anything yet)")
    waits = [(name, w) for name, k in data["sinks"].items() for w in k["waits"]]
    if waits:
        lines += ["", "WAITING (longest first)"]
        lines += [
            f"{name}: {w['key']} waits on {w['on']} for {_age(w['waiting_s'])}: {w['reason']}" for name, w in waits
        ]
    if data.get("shared_emails"):
        lines += ["", "SHARED E-MAILS (several Sell records with one e-mail: one owns each destination contact)"]
        for name, sharing in data["shared_emails"].items():
            held = ", ".join(sharing["held_back_keys"]) or "none"
            more = sharing["held_back"] - len(sharing["held_back_keys"])
            lines.append(
                f"{name}: shared_email = {sharing['shared_email']}, organisations = {sharing['organisations']}:"
                f" {sharing['emails']} shared e-mail(s); held back: {held}" + (f" and {more} more" if more > 0 else "")
            )
    if data.get("throttled"):
        lines += ["", "THROTTLED (every call waits)"]
        lines += [
            f"{api}: until {t['until']} ({_age(t['remaining_s'])} from now)" for api, t in data["throttled"].items()
        ]
    if data.get("drift"):
        lines += ["", "MAPPING DRIFT"]
        lines += drift_lines((d["scope"], d["subject"], d["problem"]) for d in data["drift"])
    return "\n".join(lines)


def _job_line(job: dict[str, Any]) -> str:
    params = job["params"]
    what = ", ".join(params.get("streams", []) or params.get("sinks", [])) + (
        " --repair" if params.get("repair") else ""
    )
    line = f"{job['kind'].upper()} {job['id']} ({what}, {job['reason']}): {job['state']}"
    if "differences" in job:
        line += f", {job['differences']} difference(s)"
    if job.get("parts"):
        parts = [
            f"{name} {p['records']}"
            + (f"/~{p['estimated_total']}" if p["state"] != "done" and p["estimated_total"] else "")
            for name, p in job["parts"].items()
            if p["state"] != "pending"
        ]
        line += f", {job.get('records', 0)} records" + (f" ({'; '.join(parts)})" if parts else "")
    if job.get("error"):
        line += f": {job['error']}"
    return line


def run(args: argparse.Namespace) -> int:
    """`syncd status`: read the store (read-only, also while the daemon runs: it never touches the daemon's
    claims) and print it. Reads no secret, so it works from any shell that can read the state file."""
    from state import Store, holder

    config = load_config(args, secrets=False)

    async def read() -> dict[str, Any]:
        with state_path_errors(config):
            store = await Store.open(config.state.path, readonly=True)
        try:
            snapshot = await store.status()
            shared = await store.shared_emails(sorted(PERSON_KINDS))
            used = await store.used_bytes()
        finally:
            await store.close()
        data = as_dict(
            snapshot,
            now=time.time(),
            sharing=shared_emails(shared, config.enabled_sinks()),
            margin=config.sell.expiry_warning,
        )
        data["state"] = state_budget(
            Usage(used, _free(Path(config.state.path).parent)),
            max_size=config.state.max_size,
            min_free=config.state.min_free,
        )
        owner = holder(Path(config.state.path))
        data["owner"] = (
            None
            if owner is None
            else {"command": owner.command, "pid": owner.pid, "host": owner.host, "since": _iso(owner.since)}
        )
        return data

    data = anyio.run(read)
    print(render_json(data) if args.json else render_table(data))
    return 0


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="machine-readable output")


COMMAND = Command(
    "status",
    "Show positions, the backlog and the health of each destination.",
    ("syncd status --config syncd.toml", "syncd status --config syncd.toml --json | jq .sinks"),
    run,
    _arguments,
)
