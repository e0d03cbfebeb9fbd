"""Checking a configuration against the real APIs: credentials, and the field mapping against each destination's
own field list (`syncd check`), plus the part of the mapping check that needs no network (run at start-up)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import anyio

from state import DriftRow
from syncd.commands import EX_CONFIG, Command, load_config
from syncd.config import Config, OntraportConfig, SalesmanagoConfig
from syncd.drift import SELL_SCOPE, Definitions, references, sell_drift
from syncd.errors import CallError, DestinationError
from syncd.ratelimit import Limiter
from syncd.redact import Redactor
from syncd.sell.client import SellClient
from syncd.sinks.base import NoLookups
from syncd.sinks.mapping import MappingProblem, sell_field_problem
from syncd.sinks.ontraport import map as ontraport_map
from syncd.sinks.registry import build_writer
from syncd.sinks.salesmanago import targets as salesmanago_targets


@dataclass
class Report:
    """What `syncd check` found: one line per check, and the problems that make it fail."""

    lines: list[str] = field(default_factory=list)
    unreachable: list[str] = field(default_factory=list)  # credentials refused, or the API could not be reached
    problems: list[MappingProblem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.unreachable and not self.problems


def offline_problems(config: Config) -> list[MappingProblem]:
    """Mapping problems visible without calling any API: unknown Sell fields, malformed destination keys."""
    problems: list[MappingProblem] = []
    for sink in config.enabled_sinks():
        rows = sink.mapping
        if isinstance(sink, SalesmanagoConfig):
            problems += salesmanago_targets.check_mapping(rows, custom_names=None)
            continue
        for row in rows:
            if row.sell.startswith(ontraport_map.CONSTANT_PREFIX):
                continue
            problem = sell_field_problem(row.sell)
            if problem:
                problems.append(MappingProblem(row.config_key, problem))
    return problems


async def check(config: Config, *, custom_names: frozenset[str] | None) -> Report:
    """Try every credential and validate every mapping against the destination's field list."""
    report = Report()
    client = SellClient(config.sell)
    try:
        await client.fetch_page(config.sell.streams[0], "top", 1)
        report.lines.append(f"ok    Sell: the token reads the {config.sell.streams[0]} stream")
    except CallError as exc:
        report.unreachable.append(f"Sell: {exc.message}")
    finally:
        await client.aclose()
    for sink in config.enabled_sinks():
        await _check_sink(sink, config, report, custom_names)
    if custom_names is None:
        report.lines.append(
            "note  custom field names are not known yet (no custom_fields events stored): custom.<name> keys"
            " were not checked against Sell"
        )
    return report


async def _check_sink(
    sink: SalesmanagoConfig | OntraportConfig, config: Config, report: Report, custom_names: frozenset[str] | None
) -> None:
    writer = build_writer(sink, store=NoLookups(), limiter=Limiter(sink.name, sink.rate), streams=config.sell.streams)
    rows = sink.mapping
    try:
        try:
            await writer.probe()
            report.lines.append(f"ok    {sink.name}: the credentials are accepted")
        except DestinationError as exc:
            report.unreachable.append(f"{sink.name}: credentials refused: {exc.message}")
            return
        except CallError as exc:
            report.unreachable.append(f"{sink.name}: {exc.message}")
            return
        if isinstance(sink, SalesmanagoConfig):
            found = salesmanago_targets.check_mapping(rows, custom_names=custom_names)
        else:
            meta = {f.key: f for f in await writer.fields()}
            found = ontraport_map.check_mapping(
                rows, meta, custom_names=custom_names, external_id_field=sink.external_id_field
            )
        report.problems += found
        if not found:
            report.lines.append(f"ok    {sink.name}: {len(rows)} mapped field(s) fit the destination's fields")
    except CallError as exc:
        report.unreachable.append(f"{sink.name}: {exc.message}")
    finally:
        await writer.aclose()


async def _stored(config: Config) -> tuple[Definitions, list[DriftRow]]:
    """What the store knows of Sell's definitions, and the drift the daemon's writers recorded (nothing without a
    store)."""
    from syncd.ledger import Ledger

    if not await anyio.Path(config.state.path).exists():
        return Definitions(), []
    async with await Ledger.open(config.state.path, readonly=True) as ledger:
        return await ledger.definitions(), [row for row in await ledger.drift() if row.scope != SELL_SCOPE]


def drift_problems(config: Config, known: Definitions, recorded: list[DriftRow]) -> list[MappingProblem]:
    """Drift as mapping problems: stages and pipelines the configuration names that Sell no longer has (custom
    fields are checked with each destination's mapping), and what the daemon's writers found gone in their
    destinations."""
    named = [ref for ref in references(config) if ref.kind in ("stage", "pipeline")]
    problems = [MappingProblem(key, problem) for key, problem in sell_drift(named, known).items()]
    problems += [MappingProblem(f"{row.scope}: {row.subject}", row.problem) for row in recorded]
    return problems


def run(args: argparse.Namespace) -> int:
    """`syncd check`: exit 0 when every check passes, 1 when a credential is refused or an API cannot be reached,
    78 when the field mapping does not fit (mapping drift included)."""

    config = load_config(args)
    redact = Redactor(config.secret_values())  # an API may echo a credential back in the error it answers

    async def checked() -> int:
        known, recorded = await _stored(config)
        report = await check(config, custom_names=known.custom_fields)
        report.problems += drift_problems(config, known, recorded)
        for line in report.lines:
            print(redact(line))
        for line in report.unreachable:
            print(redact(f"FAIL  {line}"))
        for problem in report.problems:
            print(redact(f"FAIL  {config.source}: {problem}"))
        if report.problems:
            return EX_CONFIG
        return 0 if report.ok else 1

    result: int = anyio.run(checked)
    return result


COMMAND = Command(
    "check",
    "Try every credential and validate the field mappings against each destination's own field list. Exit codes: 0"
    " every check passed; 1 a credential was refused or an API could not be reached; 78 the field mapping does not"
    " fit (a field or key that does not exist, mapping drift), whatever else failed.",
    ("syncd check --config syncd.toml",),
    run,
)
