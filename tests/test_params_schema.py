"""The JSON Schema editors use to check params files as they are typed (``params/params.schema.json``).

It is generated from validation's own definitions (``protocol/schema.py``): the committed copy is up to date,
it is a valid draft 2020-12 schema, every committed params file passes it, and on a set of bad files the schema
and the validator agree (both reject each one). Editors find it through the first line the generator writes
(a yaml-language-server modeline) or VS Code's workspace settings.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from evallib.errors import ParamsError
from evallib.pipeline.cli import main as cli_main
from evallib.protocol import bounds
from evallib.protocol.generator import to_yaml, write_params
from evallib.protocol.params import NOTEBOOK_ONLY_FIELDS, PARAMETER_NAMES, REQUIRED_FIELDS, SiteProtocol
from evallib.protocol.safe_yaml import read_params_file
from evallib.protocol.schema import MODELINE, ONE_LINE, SCHEMA_NAME, params_schema, schema_text

from .conftest import ROOT

pytestmark = pytest.mark.unit
PARAMS = ROOT / "params"
COMMITTED = sorted(PARAMS.rglob("*.yaml"))


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = json.loads((PARAMS / SCHEMA_NAME).read_text(encoding="utf-8"))
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_the_committed_schema_is_up_to_date_and_valid_json_schema(capsys: pytest.CaptureFixture[str]) -> None:
    committed = (PARAMS / SCHEMA_NAME).read_text(encoding="utf-8")
    assert committed == schema_text(), "params/params.schema.json is out of date: run `evallib schema`"
    jsonschema.Draft202012Validator.check_schema(json.loads(committed))
    assert cli_main(["schema", "--check", "--params-dir", str(PARAMS)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_schema_check_fails_when_out_of_date_and_schema_writes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["schema", "--check", "--params-dir", str(tmp_path)]) == 1
    assert cli_main(["schema", "--params-dir", str(tmp_path)]) == 0
    assert (tmp_path / SCHEMA_NAME).read_text(encoding="utf-8") == schema_text()
    assert cli_main(["schema", "--check", "--params-dir", str(tmp_path)]) == 0
    capsys.readouterr()


def test_the_schema_has_validations_fields_required_fields_and_choices() -> None:
    schema = params_schema()
    assert list(schema["properties"]) == [*PARAMETER_NAMES, *NOTEBOOK_ONLY_FIELDS]
    assert schema["required"] == list(REQUIRED_FIELDS) and schema["additionalProperties"] is False
    assert all(p.get("description") for p in schema["properties"].values())


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: p.stem)
def test_every_committed_params_file_passes_the_schema(path: Path, validator: jsonschema.Draft202012Validator) -> None:
    errors = [e.message for e in validator.iter_errors(read_params_file(path))]
    assert errors == []


def test_every_committed_params_file_points_editors_at_the_schema() -> None:
    assert COMMITTED and all(p.read_text(encoding="utf-8").splitlines()[0] == MODELINE for p in COMMITTED)
    for p in COMMITTED:  # the modeline's relative path resolves from each params folder
        target = MODELINE.split("$schema=", 1)[1]
        assert (p.parent / target).resolve() == (PARAMS / SCHEMA_NAME).resolve()
    settings = json.loads((ROOT / ".vscode" / "settings.json").read_text(encoding="utf-8"))
    assert settings["yaml.schemas"] == {f"./params/{SCHEMA_NAME}": ["params/**/*.yaml"]}


def test_the_generator_writes_the_modeline_and_the_schema_beside_the_files(tmp_path: Path) -> None:
    mapping = read_params_file(PARAMS / "vanguards" / "V04.yaml")
    assert to_yaml(mapping).splitlines()[0] == MODELINE
    write_params(tmp_path)
    assert (tmp_path / SCHEMA_NAME).read_text(encoding="utf-8") == schema_text()
    written = sorted(tmp_path.rglob("*.yaml"))
    assert written and all(p.read_text(encoding="utf-8").startswith(MODELINE + "\n") for p in written)


def _own_file(**extra: Any) -> dict[str, Any]:
    return {"path": "data/mine.csv", "unit": "code", "period": "month", "outcomes": ["admissions"], **extra}


#: One mistake each, on an otherwise valid protocol (V04's): (name, field, value), value DELETE to remove it.
DELETE = object()
BAD: list[tuple[str, str, Any]] = [
    ("unknown field", "sitename", "x"),
    ("missing site_id", "site_id", DELETE),
    ("missing intervention_start", "intervention_start", DELETE),
    ("site_id with a slash", "site_id", "V04/../x"),
    ("reserved site_id in another case", "site_id", "Site"),
    ("reserved device name", "site_id", "LPT1"),
    ("empty site_name", "site_name", ""),
    ("blank site_name", "site_name", "   "),
    ("site_name with a line break", "site_name", "North\numberland"),
    ("site_name with a dollar", "site_name", "Cost $5"),
    ("site_name with an escape", "site_name", "North\x1b[2Jumberland"),
    ("site_name too long", "site_name", "x" * 201),
    ("site_type in the wrong case", "site_type", "Vanguard"),
    ("unknown care model", "care_model", "XYZ"),
    ("confidence as a number", "membership_confidence", 3),
    ("a code listed twice", "treated_units", ["00L", "00L"]),
    ("a code as a number", "treated_units", [123]),
    ("a code too short", "treated_units", ["R"]),
    ("a code with a space", "treated_units", "00 L"),
    ("too many codes", "treated_units", [f"A{i:04d}" for i in range(bounds.MAX_CODES + 1)]),
    ("codes as a mapping", "comparison_include", {"a": "RTF"}),
    ("month without a leading zero", "intervention_start", "2015-4"),
    ("month 13", "intervention_start", "2015-13"),
    ("month 00", "pre_period_start", "2013-00"),
    ("year before the NHS", "pre_period_end", "1900-01"),
    ("year after 2100", "post_period_end", "2101-01"),
    ("month as a number", "intervention_start", 201504),
    ("month as a YAML date", "intervention_start", dt.date(2015, 4, 1)),
    ("post_period_start not a month", "post_period_start", "April"),
    ("outcome with a dollar", "primary_outcome", "a$b"),
    ("outcome too long", "primary_outcome", "x" * (bounds.MAX_NAME + 1)),
    ("direction in other words", "expected_direction", "down"),
    ("unknown pool rule", "comparison_pool", "nearest"),
    ("yes for a boolean", "type1_comparators_only", "yes"),
    ("too few pre-periods", "min_pre_periods", 2),
    ("too many pre-periods", "min_pre_periods", 601),
    ("a boolean for a number", "min_post_periods", True),
    ("a number in quotes", "min_post_periods", "6"),
    ("too many placebo draws", "n_placebo_draws", bounds.MAX_PLACEBO_DRAWS + 1),
    ("negative seed", "seed", -1),
    ("a fractional seed", "seed", 1.5),
    ("notes too long", "notes", "x" * (bounds.MAX_NOTES + 1)),
    ("announced as a number", "announced", 20150310),
    ("secondary outcomes as text", "secondary_outcomes", "ae_attendances"),
    ("secondary outcome as a number", "secondary_outcomes", [1]),
    ("too many secondary outcomes", "secondary_outcomes", [f"o{i}" for i in range(bounds.MAX_OUTCOMES + 1)]),
    ("unknown estimator", "primary_estimator", "ols"),
    ("unknown bundled dataset", "data_source", "hes_2020"),
    ("data source as a number", "data_source", 7),
    ("own file without a unit column", "data_source", {"path": "x.csv", "period": "month", "outcomes": ["a"]}),
    ("own file with an unknown key", "data_source", _own_file(sheet="2")),
    ("own wide file without outcomes", "data_source", _own_file(outcomes=[])),
    ("own file weekly", "data_source", _own_file(frequency="weekly")),
    ("own file tall", "data_source", _own_file(layout="tall")),
    ("denominator without a measure", "data_source", _own_file(denominator="population")),
    ("a rate without a denominator", "data_source", _own_file(measure="rate")),
    ("per people for a proportion", "data_source", _own_file(denominator="n", measure="proportion", per=1000)),
    ("per zero", "data_source", _own_file(denominator="n", measure="rate", per=0)),
    ("an outcome column with a line break", "data_source", _own_file(outcomes=["a\nb"])),
    ("secondary analyses as a mapping", "secondary_analyses", {"outcome": "x"}),
    (
        "secondary analysis with an unknown key",
        "secondary_analyses",
        [{"outcome": "ae_attendances", "data_source": "ae_monthly_2010_2021", "treated_units": ["RTF"], "x": 1}],
    ),
    (
        "secondary analysis without its units",
        "secondary_analyses",
        [{"outcome": "ae_attendances", "data_source": "ae_monthly_2010_2021"}],
    ),
    (
        "eleven secondary analyses",
        "secondary_analyses",
        [{"outcome": f"o{i}", "data_source": "ae_monthly_2010_2021", "treated_units": ["RTF"]} for i in range(11)],
    ),
]


@pytest.fixture(scope="module")
def good() -> dict[str, Any]:
    mapping = read_params_file(PARAMS / "vanguards" / "V04.yaml")
    SiteProtocol.from_mapping(copy.deepcopy(mapping), "V04.yaml")  # valid to both, before one mistake is made
    return mapping


def test_the_base_protocol_is_valid_to_both(good: dict[str, Any], validator: jsonschema.Draft202012Validator) -> None:
    assert list(validator.iter_errors(good)) == []


@pytest.mark.parametrize(("name", "field", "value"), BAD, ids=[b[0] for b in BAD])
def test_the_schema_and_the_validator_reject_the_same_bad_files(
    good: dict[str, Any], validator: jsonschema.Draft202012Validator, name: str, field: str, value: Any
) -> None:
    mapping = copy.deepcopy(good)
    if value is DELETE:
        del mapping[field]
    else:
        mapping[field] = value
    with pytest.raises(ParamsError):
        SiteProtocol.from_mapping(copy.deepcopy(mapping), "bad.yaml")
    assert not validator.is_valid(mapping), f"the schema accepts {name}"


def test_a_mapping_that_is_not_a_params_file_is_rejected_by_both(validator: jsonschema.Draft202012Validator) -> None:
    for bad in (["site_id", "V04"], "V04", None):
        with pytest.raises(ParamsError):
            SiteProtocol.from_mapping(bad, "bad.yaml")  # type: ignore[arg-type]
        assert not validator.is_valid(bad)


def test_names_allow_exactly_the_characters_validation_allows() -> None:
    """The schema's one-line pattern and bounds.name_problem agree on every character of the Basic Multilingual
    Plane's first 12,288 code points (controls, '$', line and paragraph separators, bidirectional marks)."""
    check = jsonschema.Draft202012Validator({"type": "string", "pattern": ONE_LINE})
    disagree = [
        hex(cp)
        for cp in range(0x3000)
        if not 0xD800 <= cp <= 0xDFFF
        and (bounds.name_problem(f"a{chr(cp)}b") is None) != check.is_valid(f"a{chr(cp)}b")
    ]
    assert disagree == [], f"schema and validation disagree on {disagree[:10]}"
    assert re.fullmatch(ONE_LINE[1:-1], "Northumberland ACO (PACS)")
