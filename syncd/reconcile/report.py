"""A reconciliation's findings: per destination, each Sell person present and equal, present and different (in
which fields), missing, present in the destination though deleted in Sell, or not synced by design. Pure."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

State = Literal["equal", "different", "missing", "extra", "skipped"]
PROBLEMS: tuple[State, ...] = ("different", "missing", "extra")
LISTED = 200  # findings listed per destination and state (the counts are always whole)


@dataclass(frozen=True, slots=True)
class Finding:
    """One Sell record against one destination (keys only: e-mails and names are personal data)."""

    key: str
    state: State
    fields: tuple[str, ...] = ()  # "different": the destination fields that differ
    reason: str = ""  # "skipped", "extra", or a different one that cannot be written: why


@dataclass
class SinkReport:
    sink: str
    findings: list[Finding] = field(default_factory=list)

    def add(self, finding: Finding) -> None:
        self.findings.append(finding)

    @property
    def counts(self) -> Counter[str]:
        return Counter(f.state for f in self.findings)

    @property
    def problems(self) -> list[Finding]:
        return [f for f in self.findings if f.state in PROBLEMS]

    def to_json(self) -> dict[str, Any]:
        counts = self.counts
        listed: dict[str, list[dict[str, Any]]] = {}
        for state in PROBLEMS:
            chosen = [f for f in self.findings if f.state == state][:LISTED]
            listed[state] = [
                {
                    "key": f.key,
                    **({"fields": list(f.fields)} if f.fields else {}),
                    **({"reason": f.reason} if f.reason else {}),
                }
                for f in chosen
            ]
        skipped = Counter(f.reason for f in self.findings if f.state == "skipped")
        return {
            "counts": {state: counts.get(state, 0) for state in ("equal", *PROBLEMS, "skipped")},
            **listed,
            "skipped": dict(sorted(skipped.items())),
        }


def problems_in(result: Mapping[str, Any]) -> int:
    """How many differences, missing and extra records a reconciliation's result holds, over every destination."""
    return sum(int(sink["counts"][state]) for sink in result.get("sinks", {}).values() for state in PROBLEMS)


def render(result: Mapping[str, Any]) -> str:
    """The report for people: Sell's side, then each destination's counts and its problems by key."""
    sell = result.get("sell", {})
    lines = [
        f"Sell holds {sell.get('leads', 0)} live leads and {sell.get('contacts', 0)} live contacts"
        f" (read in {sell.get('requests', 0)} requests)"
        + (f"; {sell['unreadable']} could not be read (quarantined)" if sell.get("unreadable") else "")
    ]
    for sink, report in result.get("sinks", {}).items():
        counts = report["counts"]
        skipped = ", ".join(f"{reason}: {n}" for reason, n in report["skipped"].items())
        lines.append("")
        lines.append(
            f"{sink}: {counts['equal']} equal, {counts['different']} different, {counts['missing']} missing,"
            f" {counts['extra']} present but deleted in Sell, {counts['skipped']} not synced by design"
        )
        if skipped:
            lines.append(f"  not synced: {skipped}")
        for state, label in (("different", "different"), ("missing", "missing"), ("extra", "deleted in Sell")):
            for finding in report[state]:
                detail = ", ".join(finding.get("fields", ())) or finding.get("reason", "")
                lines.append(f"  {label:<16}{finding['key']:<22}{detail}")
            if counts[state] > len(report[state]):
                lines.append(f"  ... and {counts[state] - len(report[state])} more {label} (--json lists {LISTED})")
    busy = {sink: n for sink, n in result.get("pending_at_start", {}).items() if n}
    if busy:
        waiting = ", ".join(f"{n} for {sink}" for sink, n in busy.items())
        lines += [
            "",
            f"note: deliveries were still pending when this began ({waiting}): what they are about to write"
            " may show as different or missing; run it again once `syncd status` shows none pending",
        ]
    repaired = result.get("repaired")
    if repaired is not None:
        queued = ", ".join(f"{n} to {sink}" for sink, n in repaired.items()) or "nothing"
        lines += ["", f"--repair queued {queued}; run syncd reconcile again once they are delivered"]
    total = problems_in(result)
    lines += ["", "zero differences" if total == 0 else f"{total} difference(s) found"]
    return "\n".join(lines)
