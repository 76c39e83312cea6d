"""Params files: every committed file loads; every ParamsError case names file, field and fix."""

from __future__ import annotations

from pathlib import Path

import papermill as pm
import pytest
import yaml

from evallib.errors import ParamsError
from evallib.protocol.generator import edited_by_hand, protocol_for, to_yaml, write_params
from evallib.protocol.params import PARAMETER_NAMES, SiteProtocol, find_params, load_params
from evallib.sources.registry import load_registry

from .conftest import ROOT

pytestmark = pytest.mark.unit
PARAMS = find_params(ROOT / "params")


def test_one_params_file_per_registry_row() -> None:
    assert len(load_registry()) == 95
    assert sorted(p.stem for p in PARAMS) == sorted(s.site_id for s in load_registry())
    assert sum(p.parent.name == "vanguards" for p in PARAMS) == 50
    assert sum(p.parent.name == "ics" for p in PARAMS) == 45


@pytest.mark.parametrize("path", PARAMS, ids=[p.stem for p in PARAMS])
def test_every_params_file_loads(path: Path) -> None:
    p = load_params(path)
    assert p.site_id == path.stem
    assert all(isinstance(c, str) for c in p.treated_units)
    site = next(s for s in load_registry() if s.site_id == p.site_id)
    # The protocol's rules (evallib.protocol.generator): commissioner emergency admissions where the registry
    # gives CCGs (acute care collaborations excepted), trusts' A&E otherwise; specialist vanguards not evaluable.
    if p.not_evaluable_reason:
        assert site.care_model == "ACC" and "does not act on" in p.not_evaluable_reason
    elif site.ccg_codes and site.care_model != "ACC":
        assert p.treated_units == site.ccg_codes
        if "no resident population" in p.notes:  # Newcastle before April 2015: counts, said in the notes
            assert p.primary_outcome == "nonelective_admissions" and p.secondary_outcomes == ()
        else:  # admissions per head, with counts kept as the secondary analysis
            assert p.primary_outcome == "nonelective_admissions_per_head"
            assert p.secondary_outcomes == ("nonelective_admissions",)
        assert {a.outcome for a in p.secondary_analyses} <= {
            "ae_attendances",
            "emergency_admissions",
            "four_hour_performance",
        }
    else:
        assert p.primary_outcome == "ae_attendances" and p.treated_units == site.acute_trust_codes


def test_generator_writes_valid_files_and_keeps_hand_edits(tmp_path: Path) -> None:
    written = write_params(tmp_path)
    assert len(written) == 95
    v01, v02 = tmp_path / "vanguards" / "V01.yaml", tmp_path / "vanguards" / "V02.yaml"
    v01.write_text(v01.read_text().replace("seed: 2015", "seed: 7"))  # a hand edit
    assert write_params(tmp_path) == []  # existing files are not overwritten
    assert "seed: 7" in v01.read_text()
    assert not edited_by_hand(v02.read_text()) and edited_by_hand(v01.read_text())
    # --update regenerates only files nobody edited; here none changed, so nothing is rewritten...
    assert write_params(tmp_path, update=True) == []
    # ...and an old generated file (say, from before a rule change) is rewritten, the hand-edited one kept.
    stale = to_yaml({**yaml.safe_load(v02.read_text()), "notes": "an older rule"})
    v02.write_text(stale)
    assert write_params(tmp_path, update=True) == [v02]
    assert "seed: 7" in v01.read_text() and "an older rule" not in v02.read_text()
    assert write_params(tmp_path, overwrite=True) == [v01]  # identical files are not rewritten


def test_generated_yaml_quotes_codes_and_survives_papermill_types() -> None:
    site = next(s for s in load_registry() if s.site_id == "V01")
    text = to_yaml(protocol_for(site))
    assert 'treated_units: ["12F"]' in text and 'intervention_start: "2015-04"' in text  # Wirral CCG, quoted
    assert 'secondary_analyses: [{"outcome": "ae_attendances", "data_source": "ae_monthly_2010_2021", ' in text
    assert SiteProtocol.from_mapping(yaml.safe_load(text)).site_id == "V01"


def test_notebook_parameters_are_the_protocol_fields() -> None:
    params = pm.inspect_notebook(str(ROOT / "notebooks" / "site_evaluation.ipynb"))
    assert set(params) == set(PARAMETER_NAMES) | {"output_dir"}


def _write(tmp_path: Path, text: str, name: str = "X01.yaml") -> Path:
    f = tmp_path / name
    f.write_text(text)
    return f


BASE = (ROOT / "params" / "vanguards" / "V04.yaml").read_text()


@pytest.mark.parametrize(
    ("edit", "field", "hint"),
    [
        (lambda t: t.replace("primary_outcome:", "primary_outcom:"), "primary_outcom", "Allowed fields"),
        (
            lambda t: t.replace('care_model: "PACS"', 'care_model: "XYZ"'),
            "care_model",
            "PACS, MCP, EHCH, UEC, ACC, ICS",
        ),
        (lambda t: t.replace('treated_units: ["00L"]', "treated_units: [0123]"), "treated_units[0]", "octal"),
        (
            lambda t: t.replace('intervention_start: "2015-04"', "intervention_start: 2015-04-01"),
            "intervention_start",
            "quotes",
        ),
        (
            lambda t: t.replace('intervention_start: "2015-04"', 'intervention_start: "April 2015"'),
            "intervention_start",
            "YYYY-MM",
        ),
        (
            lambda t: t.replace('intervention_start: "2015-04"', 'intervention_start: "2015-13"'),
            "intervention_start",
            "real month",
        ),
        (
            lambda t: t.replace('pre_period_end: "2015-03"', 'pre_period_end: "2015-06"'),
            "pre_period_end",
            "before the intervention",
        ),
        (
            lambda t: t.replace('post_period_end: "2018-03"', 'post_period_end: "2014-03"'),
            "post_period_end",
            "post-period",
        ),
        (
            lambda t: t.replace('expected_direction: "decrease"', 'expected_direction: "down"'),
            "expected_direction",
            "decrease, increase",
        ),
        (
            lambda t: t.replace('membership_confidence: "high"', "membership_confidence: 3"),
            "membership_confidence",
            "quotes",
        ),
        (
            lambda t: t.replace('data_source: "mar_commissioner_2008_2019"', 'data_source: "hes_2020"'),
            "data_source",
            "bundled",
        ),
        (
            lambda t: t.replace('data_source: "mar_commissioner_2008_2019"', 'data_source: {path: "x.csv", unit: "u"}'),
            "period",
            "missing",
        ),
        (
            lambda t: t.replace(
                'data_source: "mar_commissioner_2008_2019"',
                'data_source: {path: "x.csv", unit: "u", period: "p", colour: "red"}',
            ),
            "data_source.colour",
            "Allowed keys",
        ),
        (lambda t: t.replace("n_placebo_draws: 999", "n_placebo_draws: 5"), "n_placebo_draws", "19 to 4999"),
        (
            lambda t: t.replace("type1_comparators_only: true", 'type1_comparators_only: "yes"'),
            "type1_comparators_only",
            "true or false",
        ),
        (lambda t: t.replace('site_id: "V04"', 'site_id: "../etc"'), "site_id", "letters, digits"),
        (
            lambda t: t.replace('site_name: "Northumberland', 'site_name: "Line one\\nNorthumberland'),
            "site_name",
            "one line",
        ),
        (
            lambda t: "\n".join(line for line in t.splitlines() if not line.startswith("primary_outcome")),
            "primary_outcome",
            "Required fields",
        ),
        (
            lambda t: t.replace("comparison_exclude: []", 'comparison_exclude: ["R#1"]'),
            "comparison_exclude[0]",
            "2-10 letters",
        ),
    ],
)
def test_params_errors_name_file_field_and_fix(tmp_path: Path, edit, field: str, hint: str) -> None:
    text = edit(BASE)
    assert text != BASE, "the edit did not apply"
    with pytest.raises(ParamsError) as info:
        load_params(_write(tmp_path, text))
    msg = str(info.value)
    assert "X01.yaml" in msg and f"'{field}'" in msg and hint in msg


def test_unreadable_and_malformed_yaml(tmp_path: Path) -> None:
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(_write(tmp_path, "site_id: [unclosed\n"))
    with pytest.raises(ParamsError, match="must be a YAML mapping"):
        load_params(_write(tmp_path, "- just\n- a list\n"))
    with pytest.raises(ParamsError, match="cannot read"):
        load_params(tmp_path / "missing.yaml")


def test_find_params_unknown_site() -> None:
    with pytest.raises(ParamsError, match="no params file for site.*V99"):
        find_params(ROOT / "params", ["V01", "V99"])
