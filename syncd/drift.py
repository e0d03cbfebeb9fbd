"""Mapping drift on the Sell side: what the configuration names in Sell (custom fields by name, stages by name or
id, pipelines by id) that Sell no longer defines (renamed or deleted). Pure: the daemon reads the definitions from
the store, asks `sell_drift`, and records the answer (state's drift table) beside what the writers found in their
destinations; `syncd status`, `syncd check` and /readyz read it from there.

A reference is checked only once definitions of its kind have been read (a custom_fields or stages event, or the
look-ups loaded from Sell): before that nothing is known to be missing. Sell has no pipelines stream: a pipeline is
known by the live stages that name it, so one none of them names is gone (a pipeline without stages holds no deal).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Literal

from syncd.config import Config, OntraportConfig, SalesmanagoConfig
from syncd.events import Stage

SELL_SCOPE = "sell"  # the drift scope of what the configuration names in Sell


@dataclass(frozen=True, slots=True)
class Reference:
    """Something the configuration names in Sell, and the config key that names it."""

    config_key: str
    kind: Literal["custom_field", "stage", "pipeline"]
    name: str  # a custom field's or stage's name, or a stage's or pipeline's id as decimal digits


@dataclass(frozen=True, slots=True)
class Definitions:
    """What Sell defines now, as far as syncd knows (None: nothing of that kind read yet)."""

    custom_fields: frozenset[str] | None = None  # names
    stages: Mapping[int, Stage] | None = None  # live stages by id


def references(config: Config) -> list[Reference]:
    """Everything the configuration names in Sell: mapped custom fields of every enabled destination, the stages
    and pipelines SALESmanago's events name, the custom field Ontraport's purchases read the referring partner
    from, and the custom fields feedback writes each destination's status to."""
    found: list[Reference] = []
    for sink in config.enabled_sinks():
        found += [Reference(row.config_key, "custom_field", row.custom_name) for row in sink.mapping if row.custom_name]
        if isinstance(sink, SalesmanagoConfig):
            prefix = f"sinks.{sink.name}.events.stages"
            found += [Reference(f'{prefix}."{stage}"', "stage", stage) for stage in sink.events.stages]
            prefix = f"sinks.{sink.name}.events.pipelines"
            found += [Reference(f'{prefix}."{pipeline}"', "pipeline", pipeline) for pipeline in sink.events.pipelines]
        if isinstance(sink, OntraportConfig) and sink.purchases.enabled and sink.purchases.referrer_field:
            key = f"sinks.{sink.name}.purchases.referrer_field"
            found.append(Reference(key, "custom_field", sink.purchases.referrer_field))
    for name, own in config.feedback_destinations().items():
        if own.field:
            found.append(Reference(f"feedback.{name}.field", "custom_field", own.field))
    return found


def stage_named(stages: Iterable[Stage], name: str) -> Stage | None:
    """The stage `name` names: by id when it is decimal digits, else by name (case and outer blanks ignored)."""
    wanted = name.strip()
    if wanted.isascii() and wanted.isdigit():
        return next((s for s in stages if s.id == int(wanted)), None)
    folded = wanted.casefold()
    return next((s for s in stages if s.name.strip().casefold() == folded), None)


def sell_drift(refs: Iterable[Reference], known: Definitions) -> dict[str, str]:
    """The references Sell no longer defines: config key -> the problem."""
    drift: dict[str, str] = {}
    # as the events settings match them: the id's decimal text
    pipelines = {str(s.pipeline_id) for s in (known.stages or {}).values() if s.pipeline_id is not None}
    for ref in refs:
        if ref.kind == "custom_field" and known.custom_fields is not None and ref.name not in known.custom_fields:
            drift[ref.config_key] = f"Sell no longer defines custom field {ref.name!r} (renamed or deleted)"
        elif ref.kind == "stage" and known.stages is not None and stage_named(known.stages.values(), ref.name) is None:
            drift[ref.config_key] = f"Sell has no stage {ref.name!r} (renamed or deleted)"
        elif ref.kind == "pipeline" and pipelines and ref.name not in pipelines:
            drift[ref.config_key] = f"Sell has no pipeline {ref.name} (no live stage is in it: deleted or mistyped)"
    return drift


def drift_lines(rows: Iterable[tuple[str, str, str]]) -> list[str]:
    """Drift as one line each (scope, subject, problem): "<subject>: <problem>" for the Sell side, with the
    destination named for what a destination found."""
    return [
        f"{subject}: {problem}" if scope == SELL_SCOPE else f"{scope}: {subject}: {problem}"
        for scope, subject, problem in rows
    ]
