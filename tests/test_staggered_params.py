"""Staggered starts in a params file: each treated unit's own start, and every bad input refused before any
notebook runs with a message naming the site, the field and the fix, quoting nothing from the file.

``intervention_start`` may map each treated unit to its first month; the protocol keeps the first of them as
its start and the mapping in ``unit_starts``. A single start (every bundled params file) is read as before.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jsonschema
import pandas as pd
import pytest
import yaml

from evallib.errors import ParamsError
from evallib.pipeline.preflight import preflight
from evallib.protocol.params import PARAMETER_NAMES, SiteProtocol, find_params, load_params
from evallib.protocol.schema import params_schema

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "staggered"
STARTS = {"A01": "2016-04", "A02": "2016-04", "A03": "2017-01", "A04": "2017-10"}

pytestmark = pytest.mark.unit


def _mapping(**changes: Any) -> dict[str, Any]:
    m = yaml.safe_load((EXAMPLE / "rollout.yaml").read_text())
    m.update(changes)
    return {k: v for k, v in m.items() if v is not None}


def _refused(m: dict[str, Any]) -> str:
    with pytest.raises(ParamsError) as exc:
        SiteProtocol.from_mapping(m, "params/other/rollout.yaml")
    return str(exc.value)


def test_each_treated_unit_keeps_its_own_start_and_the_first_is_the_protocols() -> None:
    p = load_params(EXAMPLE / "rollout.yaml")
    assert p.staggered
    assert p.intervention_start == "2016-04"
    assert dict(p.unit_starts) == STARTS
    assert p.windows.post_start == pd.Timestamp("2016-04-01")
    assert p.to_mapping()["intervention_start"] == STARTS  # written back as the file wrote it
    assert SiteProtocol.from_mapping(p.to_mapping()) == p
    assert "unit_starts" not in PARAMETER_NAMES  # no new notebook parameter: the mapping is intervention_start


def test_starts_written_in_any_case_follow_the_treated_units_order() -> None:
    p = SiteProtocol.from_mapping(
        _mapping(intervention_start={"a04": "2017-10", **{k: STARTS[k] for k in STARTS if k != "A04"}})
    )
    assert [c for c, _ in p.unit_starts] == ["A01", "A02", "A03", "A04"]


def test_one_start_is_read_as_before_whether_written_once_or_per_unit() -> None:
    single = SiteProtocol.from_mapping(_mapping(intervention_start="2016-04"))
    same = SiteProtocol.from_mapping(_mapping(intervention_start=dict.fromkeys(STARTS, "2016-04")))
    assert not single.staggered and not same.staggered
    assert single == same and single.digest() == same.digest()
    assert single.to_mapping()["intervention_start"] == "2016-04"
    staggered = load_params(EXAMPLE / "rollout.yaml")
    assert staggered.digest() != single.digest()  # the starts are part of the protocol's fingerprint


def test_bundled_params_files_all_have_one_start() -> None:
    files = find_params(ROOT / "params")
    assert len(files) >= 95
    assert not any(load_params(f).staggered for f in files)


def test_a_treated_unit_without_a_start_is_named() -> None:
    msg = _refused(_mapping(intervention_start={k: v for k, v in STARTS.items() if k != "A03"}))
    assert "(site rollout)" in msg and "field 'intervention_start'" in msg
    assert "no start for the treated unit A03" in msg
    assert "Give every unit of treated_units its first month" in msg


def test_a_start_for_a_unit_not_treated_is_named() -> None:
    msg = _refused(_mapping(intervention_start={**STARTS, "B09": "2017-01"}))
    assert "gives a start to B09, not in treated_units" in msg
    assert "Add the unit to treated_units, or remove its start" in msg


def test_a_start_after_the_follow_up_is_refused() -> None:
    msg = _refused(_mapping(intervention_start={**STARTS, "A04": "2019-02"}))
    assert "starts A04 after post_period_end 2018-12, so no follow-up is left" in msg


def test_a_start_inside_the_pre_period_is_refused() -> None:
    msg = _refused(_mapping(intervention_start={**STARTS, "A01": "2015-06"}))
    assert "field 'pre_period_end'" in msg and "does not end before intervention_start 2015-06" in msg


def test_an_unquoted_date_or_a_malformed_month_names_the_unit() -> None:
    assert "field 'intervention_start.A02' is not a month in quotes" in _refused(
        _mapping(intervention_start={**STARTS, "A02": pd.Timestamp("2016-04-01").date()})
    )
    assert "field 'intervention_start.A02'" in _refused(_mapping(intervention_start={**STARTS, "A02": "April 2016"}))


def test_a_list_of_starts_gets_advice_that_works() -> None:
    msg = _refused(_mapping(intervention_start=["2016-04", "2017-01"]))
    assert "is a list" in msg and "a mapping of each treated unit to its first month" in msg
    assert "Put it in quotes" not in msg


def test_a_mapping_in_another_text_field_is_not_told_to_quote_it() -> None:
    msg = _refused(_mapping(primary_outcome={"A01": "admissions"}))
    assert "field 'primary_outcome' is a mapping. Give one value in quotes." in msg
    assert "Put it in quotes" not in msg


def test_keys_that_are_not_codes_are_refused_without_echoing_them() -> None:
    hostile = "<script>alert(1)</script>"
    msg = _refused(_mapping(intervention_start={**STARTS, hostile: "2017-01"}))
    assert "field 'intervention_start' has entry 5 keyed by something other than a unit code" in msg
    assert hostile not in msg and "script" not in msg


def test_what_a_staggered_protocol_may_not_combine_is_refused() -> None:
    # post_period_start is a phase-in after each unit's own start: tests/test_staggered_phase_in.py
    extra = [{"outcome": "x", "data_source": "ae_monthly_2010_2021", "treated_units": ["RTF"]}]
    msg = _refused(_mapping(secondary_analyses=extra))
    assert "field 'secondary_analyses' is not supported with staggered starts" in msg


def test_the_schema_takes_a_mapping_of_months_and_refuses_a_bad_one() -> None:
    schema = params_schema()
    jsonschema.validate(_mapping(), schema)
    jsonschema.validate(_mapping(intervention_start="2016-04"), schema)
    for bad in ({"A01": "April"}, {"a b": "2016-04"}, {}, ["2016-04"]):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(_mapping(intervention_start=bad), schema)
    committed = json.loads((ROOT / "params" / "params.schema.json").read_text())
    assert committed == json.loads(json.dumps(schema))


# ---- against the data, before any notebook runs (evallib validate / run) --------------------------------------


def _project(tmp_path: Path, *, keep_units: list[str] | None = None, **changes: Any) -> Path:
    data = pd.read_csv(EXAMPLE / "rollout.csv")
    if keep_units is not None:
        data = data[data["area"].isin(keep_units)]
    (tmp_path / "data").mkdir()
    data.to_csv(tmp_path / "data" / "rollout.csv", index=False)
    m = _mapping(**changes)
    m["data_source"] = {**m["data_source"], "path": "data/rollout.csv"}
    (tmp_path / "params" / "other").mkdir(parents=True)
    (tmp_path / "params" / "other" / "rollout.yaml").write_text(yaml.safe_dump(m, sort_keys=False))
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    return tmp_path


def _preflight_refuses(root: Path) -> str:
    with pytest.raises(ParamsError) as exc:
        preflight(find_params(root / "params"), root)
    return str(exc.value)


def test_the_example_passes_preflight(tmp_path: Path) -> None:
    jobs = preflight(find_params(_project(tmp_path) / "params"), tmp_path)
    assert [j.site_id for j in jobs] == ["rollout"]


def test_a_start_outside_the_data_is_refused_before_any_notebook(tmp_path: Path) -> None:
    root = _project(tmp_path, post_period_end="2019-06", intervention_start={**STARTS, "A04": "2019-03"})
    msg = _preflight_refuses(root)
    assert "params/other/rollout.yaml: field 'intervention_start' (site rollout) gives A04 a start outside" in msg
    assert "its periods run 2012-01 to 2018-12" in msg and "Check the start or the data source." in msg


def test_cohorts_left_without_comparison_are_refused(tmp_path: Path) -> None:
    root = _project(tmp_path, keep_units=list(STARTS))  # the data hold the treated areas alone
    msg = _preflight_refuses(root)
    assert "leaves the cohort starting 2017-10 (A04) no comparison" in msg
    assert "Add units that never received the intervention" in msg


def test_fewer_comparison_units_than_treated_ones_are_refused(tmp_path: Path) -> None:
    root = _project(tmp_path, keep_units=[*STARTS, "A10", "A11"])
    msg = _preflight_refuses(root)
    assert "field 'treated_units' (site rollout) lists 4 units with their own starts but only 2 areas" in msg


def test_a_unit_start_changed_in_the_notebook_is_a_departure(monkeypatch: pytest.MonkeyPatch) -> None:
    from evallib.pipeline.notebook import PARAMS_FILE_ENV, protocol_from_namespace
    from evallib.protocol.paths import ROOT_ENV

    monkeypatch.setenv(ROOT_ENV, str(ROOT))
    monkeypatch.setenv(PARAMS_FILE_ENV, str(EXAMPLE / "rollout.yaml"))
    same = protocol_from_namespace({"site_id": "rollout"})
    assert same.departures == () and same.staggered
    moved = protocol_from_namespace({"site_id": "rollout", "intervention_start": {**STARTS, "A04": "2018-01"}})
    assert [d.split(":")[0] for d in moved.departures] == ["intervention_start"]
    assert "2018-01" in moved.departures[0]
    assert dict(moved.unit_starts)["A04"] == "2018-01"
