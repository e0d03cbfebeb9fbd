"""One reconciliation: every live lead and contact read from Sell's Core API, against what each destination holds.

1. Sell: the custom field definitions (how to read v2 values), then `/v2/leads` and `/v2/contacts` in id order by
   pages that reach back (syncd.backfill.scan), each item read into the normalised record a stream change gives.
   Nothing of this is stored unless `--repair` asks.
2. Each destination: which records it should hold a contact for, by the writer's own rules (no e-mail, an
   organisation, several records with one e-mail: sinks.persons), what the writer writes for each (its `payload`,
   the one mapping), what the destination holds (its read endpoints, in batches, through its limiter:
   sinks.<name>.inspect), compared field by field the way that destination keeps values; and the contacts syncd
   wrote for records Sell no longer has.
3. `--repair`: the records found different or missing are stored as they are now (a snapshot, delivered where it
   is new) and queued again for that destination to be written even if unchanged; records deleted in Sell whose
   contact is still there are deleted (on_delete) like a delete read from the stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from state import Cursor, JobRow, Quarantined
from syncd.backfill.job import gone
from syncd.backfill.scan import Page, Scanner
from syncd.errors import CallError, PermanentError
from syncd.events import ChangeEvent, Contact, CustomField, Lead, email_of
from syncd.ledger import Ledger
from syncd.logs import get_logger
from syncd.reconcile.report import Finding, SinkReport
from syncd.sell.normalise import NormaliseError
from syncd.sell.snapshot import Context, decode_collection, served_at, snapshot
from syncd.sinks.base import Writer
from syncd.sinks.ontraport import inspect as ontraport
from syncd.sinks.ontraport.writer import OntraportWriter
from syncd.sinks.persons import (
    REPAIR,
    organisation_without_email,
    person_of,
    shared_contact,
    skipped_organisation,
)
from syncd.sinks.salesmanago import inspect as salesmanago
from syncd.sinks.salesmanago.targets import tag_name
from syncd.sinks.salesmanago.writer import SalesmanagoWriter

PersonWriter = SalesmanagoWriter | OntraportWriter

KIND = "reconcile"
DEFINITIONS = ("lead", "contact", "prospect_and_customer")
LISTINGS = (("leads", "lead", "/v2/leads"), ("contacts", "contact", "/v2/contacts"))
NO_EMAIL = "no e-mail"


def job_params(sinks: Sequence[str], *, repair: bool) -> str:
    return json.dumps({"sinks": sorted(set(sinks)), "repair": repair}, sort_keys=True)


@dataclass(frozen=True, slots=True)
class Person:
    """A live Sell lead or contact as read now."""

    key: str
    stream: str
    event: ChangeEvent

    @property
    def record(self) -> Lead | Contact:
        record = self.event.record
        assert isinstance(record, Lead | Contact)
        return record


class Reconcile:
    """Runs one reconciliation job to its report."""

    def __init__(
        self,
        job: JobRow,
        *,
        ledger: Ledger,
        scanner: Scanner,
        writers: Mapping[str, Writer],  # the daemon's, with their limiters
        clock: Callable[[], float] = time.time,
    ) -> None:
        params = json.loads(job.params)
        self.job = job
        self.ledger = ledger
        self.scanner = scanner
        self.writers = {name: w for name, w in writers.items() if isinstance(w, SalesmanagoWriter | OntraportWriter)}
        self.clock = clock
        self.sinks = [s for s in params.get("sinks", []) if s in self.writers] or list(self.writers)
        self.repair = bool(params.get("repair"))
        self.requests = 0
        self.unreadable: list[Quarantined] = []
        self._log = get_logger(job=job.id)

    async def run(self) -> dict[str, Any]:
        started = time.monotonic()
        capture_seq = await self.ledger.store.highest_seq()
        # Deliveries still on their way when the reading began: differences they are about to fix may show.
        pending = {sink: await self.ledger.pending(sink) for sink in self.sinks}
        people = await self._sell()
        reports = {sink: await self._check(sink, self.writers[sink], people) for sink in self.sinks}
        result: dict[str, Any] = {
            "sell": {
                "leads": sum(1 for p in people.values() if p.event.kind == "lead"),
                "contacts": sum(1 for p in people.values() if p.event.kind == "contact"),
                "requests": self.requests,
                "unreadable": len(self.unreadable),
            },
            "sinks": {sink: report.to_json() for sink, report in reports.items()},
            "pending_at_start": pending,
            "seconds": round(time.monotonic() - started, 3),
        }
        if self.repair:
            result["repaired"] = await self._repair(reports, people, capture_seq)
        return result

    # -----------------------------------------------------------------------------------------------------------
    # Sell

    async def _sell(self) -> dict[str, Person]:
        context = Context(await self._custom_types(), {}, datetime.fromtimestamp(self.clock(), UTC))
        people: dict[str, Person] = {}
        for stream, kind, path in LISTINGS:

            async def store(page: Page, stream: str = stream, kind: str = kind) -> None:
                self.requests += page.requests
                seen = Context(context.custom_types, {}, served_at(page.date, self.clock()))
                for _, raw in page.items:
                    try:
                        event = snapshot(stream, kind, raw, seen)
                    except NormaliseError as exc:
                        self.unreadable.append(Quarantined(str(exc), raw))
                        continue
                    people[f"{kind}:{event.record_id}"] = Person(f"{kind}:{event.record_id}", stream, event)

            self.requests += 1
            await self.scanner.scan(path, {}, Cursor(-1, None), store, what=f"reconcile {stream}")
        return people

    async def _custom_types(self) -> dict[str, dict[str, str]]:
        """The custom field types by resource and name, read from Sell (how to read v2 custom values)."""
        types: dict[str, dict[str, str]] = {}
        for resource in DEFINITIONS:
            answer = await self.scanner.get(f"/v2/{resource}/custom_fields", {}, what="reconcile custom fields")
            self.requests += 1
            try:
                items = decode_collection(answer.body).items
            except CallError:
                continue
            context = Context({}, {"resource_type": resource}, served_at(answer.date, self.clock()))
            for raw in items:
                try:
                    record = snapshot("custom_fields", "custom_field", bytes(raw), context).record
                except NormaliseError:
                    continue
                if isinstance(record, CustomField) and record.name:
                    types.setdefault(resource, {})[record.name] = record.type
        contact = {**types.get("prospect_and_customer", {}), **types.get("contact", {})}
        return {**types, "contact": contact}

    # -----------------------------------------------------------------------------------------------------------
    # one destination

    async def _check(self, sink: str, writer: PersonWriter, people: Mapping[str, Person]) -> SinkReport:
        report = SinkReport(sink)
        owners = self._owners(writer, people, report)
        if isinstance(writer, SalesmanagoWriter):
            await self._salesmanago(writer, owners, report)
        else:
            await self._ontraport(writer, owners, report)
        await self._extras(sink, writer, people, report)
        counts = report.counts
        self._log.info("reconcile_checked", sink=sink, **{state: counts.get(state, 0) for state in sorted(counts)})
        return report

    def _owners(self, writer: PersonWriter, people: Mapping[str, Person], report: SinkReport) -> list[Person]:
        """The records the destination should hold a contact for (the others found "skipped" with the reason)."""
        policy = writer.policy
        # Without an e-mail Ontraport finds a person by the external id field, when one is configured.
        by_external_id = isinstance(writer, OntraportWriter) and bool(writer.config.external_id_field)
        candidates: list[Person] = []
        for person in people.values():
            record = person.record
            reason = skipped_organisation(record, policy) or organisation_without_email(record)
            if reason is None and not email_of(record) and not by_external_id:
                reason = NO_EMAIL
            if reason:
                report.add(Finding(person.key, "skipped", reason=reason))
            else:
                candidates.append(person)
        by_email: dict[str, list[Person]] = {}
        for person in candidates:
            by_email.setdefault(email_of(person.record) or person.key, []).append(person)
        owners: list[Person] = []
        for group in by_email.values():
            if len(group) == 1:
                owners.append(group[0])
                continue
            owner, held = shared_contact([person_of(p.key, p.record) for p in group], policy)
            for person in group:
                if person.key == owner:
                    owners.append(person)
                elif person.key in held:
                    report.add(Finding(person.key, "skipped", reason="shared e-mail: written from another record"))
                else:
                    owners.append(person)
        return owners

    async def _salesmanago(self, writer: SalesmanagoWriter, owners: Sequence[Person], report: SinkReport) -> None:
        mapped = {p.key: await writer.payload(p.record) for p in owners}
        contacts = await salesmanago.held(writer.api, [m.email for m in mapped.values()])
        for key, want in mapped.items():
            contact = contacts.get(want.email)
            if contact is None:
                report.add(Finding(key, "missing"))
                continue
            fields = salesmanago.differences(want, contact)
            report.add(Finding(key, "different", tuple(fields)) if fields else Finding(key, "equal"))

    async def _ontraport(self, writer: OntraportWriter, owners: Sequence[Person], report: SinkReport) -> None:
        wanted: dict[str, tuple[dict[str, str], str | None, str]] = {}
        for person in owners:
            try:
                payload = await writer.payload(person.record)
            except PermanentError as exc:
                report.add(Finding(person.key, "different", reason=f"cannot be written: {exc.message}"))
                continue
            link = await self.ledger.link(writer.name, person.key)
            email = (payload.get("email") or person.record.email).strip()
            wanted[person.key] = (payload, link.remote_id if link is not None else None, email)
        by_id = await ontraport.held(writer.api, [remote for _, remote, _ in wanted.values() if remote])
        unlinked = [email for _, remote, email in wanted.values() if not remote and email]
        by_email = await ontraport.by_emails(writer.api, unlinked) if unlinked else {}
        for key, (payload, remote, email) in wanted.items():
            contact = by_id.get(remote) if remote else by_email.get(email.casefold())
            if contact is None:
                report.add(Finding(key, "missing"))
                continue
            fields = ontraport.differences(payload, contact)
            report.add(Finding(key, "different", tuple(fields)) if fields else Finding(key, "equal"))

    async def _extras(self, sink: str, writer: PersonWriter, people: Mapping[str, Person], report: SinkReport) -> None:
        """Contacts still in the destination for records Sell no longer holds (deleted there, or gone without
        syncd seeing it): by what syncd wrote (the link: remote id, e-mail) and by the e-mail the shadow kept, unless
        a live Sell person has that e-mail (the contact is then theirs)."""
        policy = writer.policy
        kinds = ("lead", "contact")
        live = {email_of(p.record) for p in people.values()} - {""}
        candidates: dict[str, tuple[str, str | None, dict[str, Any]]] = {}  # key -> (e-mail, remote id, sent)
        for key, email, _deleted in await self.ledger.store.emails_of(kinds):
            if key not in people and email not in live:
                candidates[key] = (email, None, {})
        for row in await self.ledger.store.links_of(sink, kinds):
            if row.key in people:
                continue
            sent = row.sent or {}
            email = str(sent.get("email") or (candidates.get(row.key) or ("",))[0]).strip().lower()
            if email in live:
                continue
            candidates[row.key] = (email, row.remote_id, sent)
        if not candidates:
            return
        present: set[str] = set()
        tagged: set[str] = set()
        if isinstance(writer, SalesmanagoWriter):
            contacts = await salesmanago.held(writer.api, [email for email, _, _ in candidates.values() if email])
            deleted_tags = {tag_name(t).upper() for t in writer.config.tags.deleted}
            for key, (email, _, _) in candidates.items():
                contact = contacts.get(email)
                if contact is None:
                    continue
                present.add(key)
                tags = {str(t.get("tag", "")).upper() for t in contact.get("contactTags") or [] if isinstance(t, dict)}
                if deleted_tags and deleted_tags <= tags:
                    tagged.add(key)
        else:
            by_id = await ontraport.held(writer.api, [remote for _, remote, _ in candidates.values() if remote])
            rest = [email for email, remote, _ in candidates.values() if email and remote not in by_id]
            by_email = await ontraport.by_emails(writer.api, rest) if rest else {}
            for key, (email, remote, sent) in candidates.items():
                if (remote and remote in by_id) or (email and email.casefold() in by_email):
                    present.add(key)
                    if sent.get("tagged"):
                        tagged.add(key)
        for key in sorted(present):
            if policy.on_delete == "ignore":
                report.add(Finding(key, "skipped", reason="deleted in Sell, kept (on_delete = ignore)"))
            elif policy.on_delete == "tag" and key in tagged:
                report.add(Finding(key, "skipped", reason="deleted in Sell, tagged (on_delete = tag)"))
            else:
                report.add(Finding(key, "extra", reason=f"deleted in Sell (on_delete = {policy.on_delete})"))

    # -----------------------------------------------------------------------------------------------------------
    # --repair

    async def _repair(
        self, reports: Mapping[str, SinkReport], people: Mapping[str, Person], capture_seq: int
    ) -> dict[str, int]:
        """Store what Sell holds now for every record found different or missing (delivered wherever it is new),
        delete what Sell deleted, and queue each problem again for its destination."""
        fresh: dict[str, ChangeEvent] = {}
        dead: dict[str, ChangeEvent] = {}
        for report in reports.values():
            for finding in report.problems:
                person = people.get(finding.key)
                if person is not None:
                    fresh[finding.key] = person.event
                elif finding.state == "extra" and finding.key not in dead:
                    kind, _, record_id = finding.key.partition(":")
                    row = await self.ledger.store.record(kind, int(record_id))
                    if row is not None and not row.deleted:
                        dead[finding.key] = gone(f"{kind}s", row, self.job.id)
        for stream in {e.stream for e in [*fresh.values(), *dead.values()]}:
            events = [e for e in [*fresh.values(), *dead.values()] if e.stream == stream]
            await self.ledger.ingest_snapshots(
                self.job.id, KIND, stream, events, capture_seq=capture_seq, cursor=Cursor(-1, None), requests=0
            )
        queued = {}
        for sink, report in reports.items():
            keys = [f.key for f in report.problems]
            queued[sink] = await self.ledger.repair(sink, keys, cause=REPAIR)
            self._log.info("reconcile_repair_queued", sink=sink, keys=len(keys), deliveries=queued[sink])
        return queued
