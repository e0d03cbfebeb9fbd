"""What the demo reports once the daemon stops: the store's account of every event, a sample record as each
destination holds it (read back through the sandboxes' real read endpoints), and the dead letters.

Reading is I/O (the store read-only, HTTP over loopback); judging whether everything is accounted for is pure.
"""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import msgspec

from state import FEEDBACK_QUEUE, LinkedRecord, Store, record_key
from syncd.demo.history import HistoryTotals, SampleDeal, SampleNote, find_samples
from syncd.demo.world import OWNER, Credentials, Expected, Ports
from syncd.events import decode_record
from syncd.sinks.salesmanago.protocol import auth_fields

SELL_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "mobile",
    "title",
    "organization_name",
    "status",
    "customer_status",
    "address",
    "tags",
    "custom",
)


@dataclass(frozen=True, slots=True)
class SinkSummary:
    """One destination's account of the deliveries (events) routed to it."""

    sink: str
    routed: int  # deliveries the generated history should produce (counted independently of the daemon)
    queued: int  # deliveries the store holds for this destination
    delivered: int
    skipped: int
    dead: int
    pending: int
    paused: str | None = None
    skip_reasons: tuple[tuple[str, int], ...] = ()
    requeued: int = 0  # of the queued, people written again for a change of another record (an organisation's rename)

    @property
    def accounted_for(self) -> bool:
        """Every routed event (and every requeue) delivered, skipped or dead; none pending; none lost or made up by
        the store."""
        settled = self.delivered + self.skipped + self.dead
        return self.pending == 0 and settled == self.routed + self.requeued == self.queued


@dataclass(frozen=True, slots=True)
class Letter:
    id: int
    sink: str
    key: str
    reason: str
    http_status: int | None
    attempts: int
    events: int


@dataclass(frozen=True, slots=True)
class SampleRecord:
    """A Sell person that both destinations hold: where to look it up in each."""

    key: str
    email: str
    sell: dict[str, Any]
    ontraport_id: str | None


@dataclass(frozen=True, slots=True)
class StoreSummary:
    events_ingested: int
    by_stream: dict[str, int]
    at_top: dict[str, bool]
    quarantined: int
    sinks: tuple[SinkSummary, ...]
    letters: tuple[Letter, ...]
    sample: SampleRecord | None
    sample_deal: SampleDeal | None = None
    sample_note: SampleNote | None = None
    feedback: FeedbackSummary | None = None  # the feedback queue's account (`syncd demo --feedback`)
    echoes: int = 0  # stored events that are the Firehose's echoes of syncd's own feedback writes

    @property
    def streams_events(self) -> int:
        """Stored events that came from the generated history (echoes of feedback writes left out)."""
        return self.events_ingested - self.echoes


@dataclass(frozen=True, slots=True)
class FeedbackSummary:
    """The feedback queue's account: people whose outcomes were written on them in Sell."""

    queued: int  # people (events) queued for feedback; a person queued again reuses its row
    written: int  # outcomes of the queue: done (written, or Sell already showed it)
    skipped: int
    dead: int
    pending: int

    @property
    def accounted_for(self) -> bool:
        """Nothing left to write back (a person's later outcome queues it again, so outcomes outnumber rows)."""
        return self.pending == 0


@dataclass(frozen=True, slots=True)
class Timings:
    history_s: float = 0.0  # generating the Sell history
    startup_s: float = 0.0  # sandboxes listening, config written
    sync_s: float = 0.0  # the daemon, from start to idle
    total_s: float = 0.0


@dataclass(frozen=True, slots=True)
class Report:
    requested: int
    seed: int
    expected: Expected
    store: StoreSummary
    sample: dict[str, Any]
    timings: Timings
    interrupted: bool = False
    daemon_exit: int | None = 0  # what `Daemon.run` returned (None: it did not return)
    directory: str | None = None  # kept for the commands to look further (None: removed)
    commands: tuple[str, ...] = field(default_factory=tuple)
    history: HistoryTotals = field(default_factory=HistoryTotals)  # deals, orders and notes in the destinations
    history_sample: dict[str, Any] = field(default_factory=dict)  # a won deal and a note as each destination has them

    @property
    def streams_at_top(self) -> bool:
        return bool(self.store.at_top) and all(self.store.at_top.values())

    @property
    def accounted_for(self) -> bool:
        """Every generated event stored (or quarantined), every stream read to the top, every destination settled."""
        store = self.store
        return (
            not self.interrupted
            and self.daemon_exit == 0
            and self.streams_at_top
            and store.streams_events + store.quarantined == self.expected.events + self.expected.unreadable
            and all(s.accounted_for for s in store.sinks)
            and (store.feedback is None or store.feedback.accounted_for)
            and {s.sink for s in store.sinks} == set(self.expected.routed)
        )


def as_json(report: Report) -> dict[str, Any]:
    """The `--json` document (stable keys)."""
    store = report.store
    return {
        "events_requested": report.requested,
        "seed": report.seed,
        "events_ingested": store.events_ingested,
        "feedback_echoes": store.echoes,
        "streams": {
            name: {"events": store.by_stream.get(name, 0), "at_top": store.at_top.get(name, False)}
            for name in sorted(set(store.by_stream) | set(store.at_top))
        },
        "quarantined": store.quarantined,
        "destinations": {
            s.sink: {
                "delivered": s.delivered,
                "skipped": s.skipped,
                "dead": s.dead,
                "pending": s.pending,
                "routed": s.routed,
                "queued": s.queued,
                "requeued": s.requeued,
                "paused": s.paused,
                "skipped_reasons": dict(s.skip_reasons),
                "accounted_for": s.accounted_for,
            }
            for s in store.sinks
        },
        "feedback": None
        if store.feedback is None
        else {
            "queued": store.feedback.queued,
            "written": store.feedback.written,
            "skipped": store.feedback.skipped,
            "dead": store.feedback.dead,
            "pending": store.feedback.pending,
            "accounted_for": store.feedback.accounted_for,
        },
        "accounted_for": report.accounted_for,
        "interrupted": report.interrupted,
        "daemon_exit_code": report.daemon_exit,
        "sample": report.sample,
        "history": report.history.as_json(),
        "history_sample": report.history_sample,
        "dead_letters": [
            {
                "id": letter.id,
                "sink": letter.sink,
                "key": letter.key,
                "reason": letter.reason,
                "http_status": letter.http_status,
                "attempts": letter.attempts,
                "events": letter.events,
            }
            for letter in store.letters
        ],
        "duration_s": round(report.timings.total_s, 2),
        "timings": {
            "history_s": round(report.timings.history_s, 2),
            "startup_s": round(report.timings.startup_s, 2),
            "sync_s": round(report.timings.sync_s, 2),
        },
        "directory": report.directory,
        "commands": list(report.commands),
    }


# ---------------------------------------------------------------------------------------------------------------
# reading the store (read-only, after the daemon has closed it)


async def read_store(path: Path, expected: Expected, echo_ids: Sequence[str] = ()) -> StoreSummary:
    """The store's account of the run, read from a read-only connection (`echo_ids`: the Firehose event ids of
    Sell's echoes of feedback writes, counted apart from the history's events)."""
    async with await Store.open(path, readonly=True) as store:
        status = await store.status()
        by_stream = await store.events_by_stream()
        echoes = await store.events_with_ids(echo_ids) if echo_ids else {}
        by_stream = {name: n - echoes.get(name, 0) for name, n in by_stream.items()}
        queued = await store.deliveries_by_sink()
        requeued = await store.requeued_by_sink()
        reasons: dict[str, Counter[str]] = {}
        for sink, reason, n in await store.skip_reasons():
            reasons.setdefault(sink, Counter())[reason_kind(reason)] += n
        letters = [
            Letter(x.id, x.sink, x.key, x.reason, x.http_status, x.attempts, len(x.seqs))
            for x in await store.dead_letters()
        ]
        # A person both destinations hold (Ontraport is read back by its id), contacts before leads.
        sample = await store.linked_record(("contact", "lead"), {"salesmanago": False, "ontraport": True})
        sample_deal, sample_note = await find_samples(store)
    sinks = []
    others = {s.sink for s in status.sinks} - set(expected.routed) - {FEEDBACK_QUEUE}
    names = list(expected.routed) + sorted(others)
    found = {s.sink: s for s in status.sinks}
    fed = found.get(FEEDBACK_QUEUE)
    feedback = (
        FeedbackSummary(queued.get(FEEDBACK_QUEUE, 0), fed.done, fed.skipped, fed.dead, fed.pending)
        if fed is not None
        else None
    )
    for name in names:
        got = found.get(name)
        sinks.append(
            SinkSummary(
                sink=name,
                routed=expected.routed.get(name, 0),
                queued=queued.get(name, 0),
                requeued=requeued.get(name, 0),
                delivered=got.done if got else 0,
                skipped=got.skipped if got else 0,
                dead=got.dead if got else 0,
                pending=got.pending if got else 0,
                paused=got.paused if got else None,
                skip_reasons=ranked_reasons(reasons.get(name, Counter())),
            )
        )
    return StoreSummary(
        events_ingested=status.events,
        by_stream=by_stream,
        at_top={p.stream: p.at_top for p in status.streams},
        quarantined=status.quarantined,
        sinks=tuple(sinks),
        letters=tuple(letters),
        sample=_sample(sample) if sample else None,
        sample_deal=sample_deal,
        sample_note=sample_note,
        feedback=feedback,
        echoes=sum(echoes.values()),
    )


_RECORD_KEY = re.compile(r"\b(lead|contact|deal|note|order|line_item):\d+\b")


def reason_kind(reason: str) -> str:
    """A skip reason without the record it names, so reasons of one kind count together."""
    return _RECORD_KEY.sub(r"\1:…", reason.strip()) or "(no reason given)"


def ranked_reasons(counts: Counter[str]) -> tuple[tuple[str, int], ...]:
    """Every reason, the most frequent first (ties by text): a demo's kinds of reason are few, and each is worth
    reading."""
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def _sample(found: LinkedRecord) -> SampleRecord:
    row = found.record
    record = msgspec.to_builtins(decode_record(row.body))
    sell = {name: record[name] for name in SELL_FIELDS if record.get(name) not in (None, "", [], {})}
    remote_id = found.remote_ids.get("ontraport")
    return SampleRecord(record_key(row.kind, row.record_id), found.email, sell, str(remote_id) if remote_id else None)


# ---------------------------------------------------------------------------------------------------------------
# reading the destinations back over HTTP


async def fetch_sample(
    sample: SampleRecord | None, ports: Ports, creds: Credentials, *, feedback: bool = False
) -> dict[str, Any]:
    """The sample record as Sell sent it and as each destination's read endpoint answers for it; with `feedback`,
    also as Sell's Core API answers for it now (the tags and status syncd wrote back)."""
    if sample is None:
        return {}
    result: dict[str, Any] = {"record": sample.key, "sell": sample.sell}
    async with httpx.AsyncClient(timeout=10.0) as http:
        result["salesmanago"] = await _salesmanago(http, ports.salesmanago, creds, sample.email)
        result["ontraport"] = await _ontraport(http, ports.ontraport, creds, sample.ontraport_id)
        if feedback:
            result["feedback"] = await _sell_now(http, ports.sell, creds, sample.key)
    return result


async def _sell_now(http: httpx.AsyncClient, port: int, creds: Credentials, key: str) -> dict[str, Any]:
    """`GET /v2/leads/:id` (or contacts) with the account's token: the record's tags and custom fields now."""
    kind, _, record_id = key.partition(":")
    response = await http.get(
        f"http://127.0.0.1:{port}/v2/{kind}s/{record_id}",
        headers={"Authorization": f"Bearer {creds.sell_token}", "User-Agent": "syncd-demo/1.0"},
    )
    if response.status_code != 200:
        return {"error": f"GET /v2/{kind}s/{record_id} answered {response.status_code}"}
    data = response.json().get("data") or {}
    found = {"tags": data.get("tags") or []}
    fields = {k: v for k, v in (data.get("custom_fields") or {}).items() if v not in (None, "", [])}
    return found | ({"custom_fields": fields} if fields else {})


async def _salesmanago(http: httpx.AsyncClient, port: int, creds: Credentials, email: str) -> dict[str, Any]:
    """`POST /api/contact/basic` (signed, as the real API wants), plus the tags the sandbox keeps for the contact."""
    base = f"http://127.0.0.1:{port}"
    body = {
        **auth_fields(client_id=creds.sm_client_id, api_secret=creds.sm_secret, owner=OWNER, now=time.time()),
        "email": [email],
    }
    reply = (await http.post(f"{base}/api/contact/basic", json=body)).json()
    contacts = reply.get("contacts") or []
    if not reply.get("success") or not contacts:
        return {"error": "contact/basic did not find the contact"}
    contact: dict[str, Any] = {k: v for k, v in contacts[0].items() if v not in (None, "", [], {}, False, 0)}
    listing = (await http.get(f"{base}/_sandbox/contacts")).json().get("contacts", [])
    for held in listing:
        if str(held.get("email", "")).lower() == email.lower():
            contact["tags"] = held.get("tags", [])
            break
    return contact


async def _ontraport(http: httpx.AsyncClient, port: int, creds: Credentials, remote_id: str | None) -> dict[str, Any]:
    """`GET /1/Contact?id=` with the account's Api-Appid/Api-Key headers; empty fields left out."""
    if remote_id is None:
        return {"error": "no Ontraport id is linked to the record"}
    response = await http.get(
        f"http://127.0.0.1:{port}/1/Contact",
        params={"id": remote_id},
        headers={"Api-Appid": creds.op_app_id, "Api-Key": creds.op_key},
    )
    if response.status_code == 429:
        reset = response.headers.get("X-Rate-Limit-Reset", "?")
        return {"error": f"GET /1/Contact answered 429: the account's rate limit is used up (resets in {reset}s)"}
    if response.status_code != 200:
        return {"error": f"GET /1/Contact answered {response.status_code}"}
    data = response.json().get("data") or {}
    return {k: v for k, v in data.items() if v not in (None, "", "0", 0, [], {})}
