"""Mapping drift, pure and through the commands: what the configuration names in Sell that Sell no longer defines,
and `syncd status` / `syncd check` showing what the store recorded (the daemon's and the writers' findings)."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest

from syncd.commands.cli import main
from syncd.config import loads
from syncd.drift import Definitions, Reference, drift_lines, references, sell_drift, stage_named
from syncd.events import Stage
from syncd.ledger import Ledger
from syncd.work import Waiting
from tests.factories import event

STAGES = {4: Stage(id=4, name="Won", category="won"), 5: Stage(id=5, name=" Demo booked ", category="qualified")}
PIPELINED = {n: Stage(id=n, name=f"S{n}", category="qualified", pipeline_id=1 + n % 2) for n in (1, 2)}
FIELD = Reference('sinks.ontraport.fields."custom.Tier"', "custom_field", "Tier")


@pytest.mark.parametrize(
    ("refs", "known", "expected"),
    [
        pytest.param([FIELD], Definitions(custom_fields=frozenset({"Tier"})), {}, id="field-defined"),
        pytest.param(
            [FIELD],
            Definitions(custom_fields=frozenset({"Tier (v2)"})),
            {FIELD.config_key: "Sell no longer defines custom field 'Tier' (renamed or deleted)"},
            id="field-renamed",
        ),
        pytest.param([FIELD], Definitions(), {}, id="no-definitions-read-yet"),
        pytest.param([Reference("k", "stage", "won")], Definitions(stages=STAGES), {}, id="stage-by-name-any-case"),
        pytest.param([Reference("k", "stage", "demo booked")], Definitions(stages=STAGES), {}, id="stage-blanks"),
        pytest.param([Reference("k", "stage", "4")], Definitions(stages=STAGES), {}, id="stage-by-id"),
        pytest.param(
            [Reference("k", "stage", "Lost")],
            Definitions(stages=STAGES),
            {"k": "Sell has no stage 'Lost' (renamed or deleted)"},
            id="stage-gone",
        ),
        pytest.param(
            [Reference("k", "stage", "6")],
            Definitions(stages=STAGES),
            {"k": "Sell has no stage '6' (renamed or deleted)"},
            id="stage-id-gone",
        ),
        pytest.param([Reference("k", "stage", "Lost")], Definitions(), {}, id="no-stages-read-yet"),
        pytest.param([Reference("k", "pipeline", "1")], Definitions(stages=PIPELINED), {}, id="pipeline-has-stages"),
        pytest.param(
            [Reference("k", "pipeline", "3")],
            Definitions(stages=PIPELINED),
            {"k": "Sell has no pipeline 3 (no live stage is in it: deleted or mistyped)"},
            id="pipeline-gone",
        ),
        pytest.param([Reference("k", "pipeline", "3")], Definitions(), {}, id="pipeline-no-stages-read-yet"),
        pytest.param([Reference("k", "pipeline", "3")], Definitions(stages=STAGES), {}, id="stages-name-no-pipeline"),
    ],
)
def test_sell_drift_names_what_sell_no_longer_defines(
    refs: list[Reference], known: Definitions, expected: dict[str, str]
) -> None:
    """A reference drifts when definitions of its kind are known and none matches it (stages by id or by name,
    case and outer blanks ignored; a pipeline by the live stages in it); before any definition is read nothing
    drifts, nor a pipeline while no stage says which pipeline it is in."""
    assert sell_drift(refs, known) == expected


def test_stage_named_prefers_an_id_for_digits() -> None:
    """Digits name a stage by id, anything else by name."""
    assert stage_named(STAGES.values(), " 5 ") == STAGES[5]
    assert stage_named(STAGES.values(), "WON") == STAGES[4]
    assert stage_named(STAGES.values(), "7") is None


def test_references_are_the_mapped_custom_fields_of_enabled_destinations() -> None:
    """Every `custom.<name>` row of an enabled destination is a reference; plain fields and disabled ones are not."""
    config = loads(
        """
[sell]
token = "t"
[sinks.ontraport]
app_id = "a"
api_key = "k"
[sinks.ontraport.fields]
"custom.Tier" = "f1"
"industry" = "f2"
[sinks.salesmanago]
enabled = false
base_url = "https://app3.salesmanago.com"
[sinks.salesmanago.fields]
"custom.Other" = "property.other"
"""
    )
    assert references(config) == [FIELD]


def test_drift_lines_name_the_destination_that_found_it() -> None:
    """The Sell side's drift reads "<key>: <problem>", a destination's is prefixed with its name."""
    assert drift_lines([("sell", "k", "gone"), ("ontraport", "product Pro", "deleted")]) == [
        "k: gone",
        "ontraport: product Pro: deleted",
    ]


def test_status_and_check_show_recorded_waits_and_drift(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`syncd status` (JSON and table) lists waiting keys and drift from the store; `syncd check` fails with the
    destinations' recorded drift (exit 78) before it calls any API for it."""
    config = tmp_path / "syncd.toml"
    config.write_text(
        f'[state]\npath = "{tmp_path / "syncd.db"}"\n[sell]\ntoken = "t"\nbase_url = "http://127.0.0.1:9"\n'
    )

    async def record() -> None:
        async with await Ledger.open(tmp_path / "syncd.db", sinks=("ontraport",)) as ledger:
            await ledger.ingest("leads", [event("lead", 1, 1, "created")], position="p", at_top=True)
            await ledger.claim("ontraport", 1)
            await ledger.commit("ontraport", [Waiting("lead:1", "contact:2", "contact:2 is not in Ontraport yet", 0)])
            await ledger.report_drift("ontraport", "product 'Pro'", "gone from Ontraport")

    anyio.run(record)
    assert main(["status", "--config", str(config), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    sink = data["sinks"]["ontraport"]
    assert (sink["waiting"], sink["waits"][0]["key"], sink["waits"][0]["on"]) == (1, "lead:1", "contact:2")
    assert [(d["scope"], d["subject"]) for d in data["drift"]] == [("ontraport", "product 'Pro'")]
    assert main(["status", "--config", str(config)]) == 0
    table = capsys.readouterr().out
    assert "lead:1 waits on contact:2" in table and "ontraport: product 'Pro': gone from Ontraport" in table
    assert main(["check", "--config", str(config)]) == 78
    assert "ontraport: product 'Pro': gone from Ontraport" in capsys.readouterr().out


def test_the_referrer_field_is_a_reference_while_purchases_are_on() -> None:
    """The custom field Ontraport's purchases read the referring partner from drifts like a mapped one."""
    text = """
[sell]
token = "t"
[sinks.ontraport]
app_id = "a"
api_key = "k"
[sinks.ontraport.purchases]
referrer_field = "Referred by"
"""
    ref = Reference("sinks.ontraport.purchases.referrer_field", "custom_field", "Referred by")
    assert references(loads(text)) == [ref]
    assert (
        references(loads(text.replace("[sinks.ontraport.purchases]", "[sinks.ontraport.purchases]\nenabled = false")))
        == []
    )
    assert sell_drift([ref], Definitions(custom_fields=frozenset({"Referred by (old)"}))) == {
        ref.config_key: "Sell no longer defines custom field 'Referred by' (renamed or deleted)"
    }


def test_the_pipelines_and_stages_salesmanagos_events_name_are_references() -> None:
    """Each stage and each pipeline `[sinks.salesmanago.events]` names drifts when Sell no longer has it, and
    `syncd check` names both among its problems."""
    config = loads(
        """
[sell]
token = "t"
[sinks.salesmanago]
base_url = "https://app3.salesmanago.com"
client_id = "c"
api_secret = "s"
owner = "owner@example.com"
[sinks.salesmanago.events.stages]
"Demo booked" = "MEETING"
[sinks.salesmanago.events.pipelines."2"]
won = "RETURN"
"""
    )
    prefix = "sinks.salesmanago.events"
    assert references(config) == [
        Reference(f'{prefix}.stages."Demo booked"', "stage", "Demo booked"),
        Reference(f'{prefix}.pipelines."2"', "pipeline", "2"),
    ]
    from syncd.commands.check import drift_problems

    found = drift_problems(config, Definitions(stages={4: Stage(id=4, name="Won", pipeline_id=1)}), [])
    assert [problem.key for problem in found] == [f'{prefix}.stages."Demo booked"', f'{prefix}.pipelines."2"']


def test_the_field_feedback_writes_is_a_reference_while_feedback_is_on() -> None:
    """The Sell custom field a destination's feedback status goes to drifts like a mapped one, only while
    feedback is on."""
    text = """
[sell]
token = "t"
[sinks.ontraport]
app_id = "a"
api_key = "k"
[feedback]
enabled = true
[feedback.ontraport]
field = "Ontraport status"
"""
    ref = Reference("feedback.ontraport.field", "custom_field", "Ontraport status")
    assert references(loads(text)) == [ref]
    assert references(loads(text.replace("enabled = true", "enabled = false"))) == []
    assert ref.config_key in sell_drift([ref], Definitions(custom_fields=frozenset({"Status"})))
