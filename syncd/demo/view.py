"""How the demo looks: live progress (a rich table on a terminal, one plain line otherwise) and the final summary.

Everything here is pure: it turns a `Progress` snapshot or a `Report` into rich renderables or text.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from syncd.demo.report import Report, SinkSummary
from syncd.demo.world import STREAMS

VALUE_WIDTH = 70


@dataclass(frozen=True, slots=True)
class StreamProgress:
    stream: str
    events: int
    at_top: bool
    phase: str


@dataclass(frozen=True, slots=True)
class SinkProgress:
    sink: str
    done: int
    skipped: int
    dead: int
    pending: int
    paused: str | None


@dataclass(frozen=True, slots=True)
class Progress:
    elapsed_s: float
    expected_events: int
    streams: tuple[StreamProgress, ...]
    sinks: tuple[SinkProgress, ...]

    @property
    def events(self) -> int:
        return sum(s.events for s in self.streams)


def progress_table(progress: Progress, *, title: str, footer: str = "") -> RenderableType:
    """The live view: per stream events read and whether it is at the top; per destination where each event is."""
    streams = Table(expand=False)
    streams.add_column("stream")
    streams.add_column("events read", justify="right")
    streams.add_column("at top", justify="center")
    for s in progress.streams:
        top = Text("yes", style="green") if s.at_top else Text(s.phase, style="yellow")
        streams.add_row(s.stream, str(s.events), top)
    streams.add_row(
        Text("all", style="bold"), Text(f"{progress.events} / {progress.expected_events}", style="bold"), ""
    )
    sinks = Table(expand=False)
    sinks.add_column("destination")
    for name in ("done", "skipped", "dead", "pending"):
        sinks.add_column(name, justify="right")
    sinks.add_column("state")
    for k in progress.sinks:
        state = Text(f"paused: {k.paused}", style="red") if k.paused else Text("ok", style="green")
        dead = Text(str(k.dead), style="red" if k.dead else "")
        sinks.add_row(k.sink, str(k.done), str(k.skipped), dead, str(k.pending), state)
    heading = Text(f"{title}   {progress.elapsed_s:.1f}s", style="bold")
    parts: list[RenderableType] = [heading, streams, sinks]
    if footer:
        parts.append(Text(footer, style="dim"))
    return Group(*parts)


def progress_line(progress: Progress) -> str:
    """One plain line for a log or a pipe."""
    top = sum(1 for s in progress.streams if s.at_top)
    sinks = "; ".join(
        f"{k.sink} {k.done} done {k.skipped} skipped {k.dead} dead {k.pending} pending"
        + (f" (paused: {k.paused})" if k.paused else "")
        for k in progress.sinks
    )
    return (
        f"[{progress.elapsed_s:6.1f}s] read {progress.events}/{progress.expected_events} events,"
        f" {top}/{len(progress.streams)} streams at top | {sinks}"
    )


# ---------------------------------------------------------------------------------------------------------------
# the summary


def ordered_streams(names: Iterable[str]) -> list[str]:
    """Streams in the config's order (unknown names last, alphabetically)."""
    rank = {name: i for i, name in enumerate(STREAMS)}
    return sorted(names, key=lambda name: (rank.get(name, len(rank)), name))


def _heading(text: str) -> Text:
    return Text(f"\n{text}", style="bold underline")


def _clip(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= VALUE_WIDTH else text[: VALUE_WIDTH - 1] + "…"


def flatten(values: dict[str, Any]) -> dict[str, Any]:
    """One level of nesting spelled out (`address.city`) where a value is a dict of plain values."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict) and value and not any(isinstance(v, dict | list) for v in value.values()):
            flat.update({f"{key}.{k}": v for k, v in value.items() if v not in (None, "")})
        else:
            flat[key] = value
    return flat


def _fields(title: str, values: dict[str, Any]) -> Iterator[RenderableType]:
    yield Text(f"  {title}", style="bold")
    if not values:
        yield Text("    (nothing)")
    flat = flatten(values)
    width = max((len(k) for k in flat), default=0)
    for key, value in flat.items():
        yield Text(f"    {key:<{width}}  {_clip(value)}")


def _sink_row(table: Table, s: SinkSummary) -> None:
    verdict = Text("yes", style="green") if s.accounted_for else Text("NO", style="bold red")
    table.add_row(
        s.sink,
        str(s.routed),
        str(s.delivered),
        str(s.skipped),
        Text(str(s.dead), style="red" if s.dead else ""),
        str(s.pending),
        verdict,
    )


def _history(report: Report) -> Iterator[RenderableType]:
    """What the destinations hold of Sell's deals, orders and notes."""
    h = report.history
    yield _heading("History (deals, orders, line items, notes)")
    events = ", ".join(f"{n} {kind}" for kind, n in h.events) if h.events else "none"
    yield Text(f"  SALESmanago external events   {events}")
    yield Text(
        f"  Ontraport purchases logged    {h.purchases} ({h.purchase_lines} lines, {h.value} in all),"
        f" {h.reversed} voided or refunded; {h.products} products"
    )
    yield Text(f"  Ontraport notes               {h.notes}")
    emailed = Text(f"  invoices e-mailed             {h.invoices_emailed}", style="red" if h.invoices_emailed else "")
    yield emailed.append("  (purchases are logged, never charged or invoiced)", style="dim")


def _history_samples(found: dict[str, Any]) -> Iterator[RenderableType]:
    deal = found.get("deal")
    yield _heading(f"A sample deal: {deal['record'] if deal else '(none won with history in both destinations)'}")
    if deal:
        yield from _fields("in Sell (the last snapshot syncd stored)", deal.get("sell", {}))
        for event in deal.get("salesmanago", []):
            yield from _fields(f"in SALESmanago: {event.get('contactExtEventType')} (contact/list)", event)
        for purchase in deal.get("ontraport", []):
            title = f"in Ontraport: transaction {purchase.get('id', purchase.get('invoice'))} (GET /1/Transaction)"
            yield from _fields(title, purchase)
    note = found.get("note")
    if note:
        yield _heading(f"A sample note: {note['record']}")
        yield from _fields("in Sell", note.get("sell", {}))
        yield from _fields("in Ontraport (GET /1/Note?id=…)", note.get("ontraport", {}))


def summary(report: Report) -> Iterator[RenderableType]:
    """The human summary, section by section."""
    store = report.store
    t = report.timings
    verdict = "every event accounted for" if report.accounted_for else "NOT everything is accounted for"
    if report.interrupted:
        verdict = "interrupted: " + verdict
    yield Text(
        f"syncd demo: {report.requested} Sell events (seed {report.seed}) synced in {t.sync_s:.1f}s — {verdict}",
        style="bold green" if report.accounted_for else "bold red",
    )

    yield _heading("Events ingested")
    yield Text(
        f"  {store.streams_events} of {report.expected.events} events stored"
        + (f", {store.quarantined} quarantined" if store.quarantined else "")
    )
    streams = Table(box=None, padding=(0, 2), pad_edge=True)
    streams.add_column("stream")
    streams.add_column("events", justify="right")
    streams.add_column("at top", justify="center")
    for name in ordered_streams(store.by_stream.keys() | store.at_top.keys()):
        streams.add_row(name, str(store.by_stream.get(name, 0)), "yes" if store.at_top.get(name, False) else "NO")
    yield streams

    yield _heading("Destinations (deliveries = events routed to a destination)")
    sinks = Table(box=None, padding=(0, 2), pad_edge=True)
    sinks.add_column("destination")
    for name in ("routed", "delivered", "skipped", "dead", "pending", "accounted for"):
        sinks.add_column(name, justify="right")
    for s in store.sinks:
        _sink_row(sinks, s)
    yield sinks
    for s in store.sinks:
        if s.skip_reasons:
            yield Text(f"  {s.sink}: skipped because")
            for reason, n in s.skip_reasons:
                yield Text(f"    {n:>6}  {reason}")
        if s.paused:
            yield Text(f"  {s.sink}: PAUSED: {s.paused}", style="red")

    if store.feedback is not None:
        fed = store.feedback
        verdict = "accounted for" if fed.accounted_for else "NOT accounted for"
        yield _heading("Feedback to Sell (each person's outcomes written on it as tags)")
        yield Text(
            f"  {fed.written} written (or Sell already showed it), {fed.skipped} skipped, {fed.dead} dead,"
            f" {fed.pending} pending — {verdict}; {store.echoes} echoes of these writes read back from the"
            " Firehose and delivered nowhere",
            style="" if fed.accounted_for else "bold red",
        )

    yield _heading("Dead letters (refused for good; the rest went on)")
    if not store.letters:
        yield Text("  none")
    for letter in store.letters:
        status = f"HTTP {letter.http_status}, " if letter.http_status else ""
        yield Text(
            f"  #{letter.id} {letter.sink} {letter.key} ({status}{letter.events} event(s), attempt {letter.attempts})"
        )
        yield Text(f"      {letter.reason}")

    yield from _history(report)

    sample = report.sample
    yield _heading(f"A sample record: {sample.get('record', '(none)')}")
    if sample:
        yield from _fields("in Sell (the last snapshot syncd stored)", sample.get("sell", {}))
        yield from _fields("in SALESmanago (POST /api/contact/basic)", sample.get("salesmanago", {}))
        yield from _fields("in Ontraport (GET /1/Contact?id=…)", sample.get("ontraport", {}))
        if "feedback" in sample:
            yield from _fields("in Sell now, with syncd's feedback (GET /v2/…/:id)", sample["feedback"])
    else:
        yield Text("  no record is held by both destinations")
    yield from _history_samples(report.history_sample)

    yield _heading("Timings")
    rate = store.events_ingested / t.sync_s if t.sync_s > 0 else 0.0
    yield Text(f"  generating the Sell history  {t.history_s:6.2f}s")
    yield Text(f"  starting the sandboxes       {t.startup_s:6.2f}s")
    yield Text(f"  syncing (daemon start→idle)  {t.sync_s:6.2f}s   ({rate:,.0f} events/s)")
    yield Text(f"  total                        {t.total_s:6.2f}s")

    yield _heading("Look further")
    for command in report.commands:
        yield Text(f"  {command}")
    if report.directory is None:
        yield Text(
            "  (this demo's directory was removed; the first command runs the same demo again and keeps it)",
            style="dim",
        )
