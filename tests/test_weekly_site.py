"""Weekly own data: ISO weeks dated by their Mondays, checked at the boundary, and a worked example evaluated.

The worked example (``examples/weekly``: 40 areas, 157 ISO weeks with a winter peak and week-to-week noise that
carries over, three areas with a true 8% fall from the week of Monday 1 January 2018) is evaluated through
``evaluate_site`` with its interval holding the truth and the page counting weeks; daily, irregular and mixed
files are refused with a message naming the column and the fix, quoting nothing from the file but dates.
"""

from __future__ import annotations

import math
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError, ParamsError
from evallib.methods.its.model import fourier_terms
from evallib.protocol.params import SiteProtocol, load_params
from evallib.sources.files import FileSource, load_file

from .conftest import ROOT, project_root, report_text

EXAMPLE = ROOT / "examples" / "weekly"
TRUE_LOG = math.log(0.92)  # examples/weekly/make_data.py: 8% fewer attendances from 2018-01-01


def _write(tmp_path: Path, weeks: list[str], units: tuple[str, ...] = ("A", "B")) -> FileSource:
    rows = [f"{u},{w},{100 + i}" for u in units for i, w in enumerate(weeks)]
    (tmp_path / "w.csv").write_text("area,week,attendances\n" + "\n".join(rows) + "\n")
    return FileSource(path="w.csv", unit="area", period="week", frequency="weekly", outcomes=("attendances",))


def _mondays(n: int = 10, first: str = "2019-01-07") -> list[str]:
    return [f"{d:%Y-%m-%d}" for d in pd.date_range(first, periods=n, freq="W-MON")]


@pytest.mark.unit
def test_weekly_files_dated_by_mondays_load_as_iso_weeks(tmp_path: Path) -> None:
    panel = load_file(_write(tmp_path, _mondays(60, "2019-11-04")), base_dir=tmp_path)  # across a 53-week year
    assert panel.frequency == "weekly" and len(panel.periods()) == 60
    assert (panel.periods().day_of_week == 0).all()


@pytest.mark.unit
def test_daily_data_are_refused_naming_the_column_and_the_fix(tmp_path: Path) -> None:
    days = [f"{d:%Y-%m-%d}" for d in pd.date_range("2019-01-07", periods=14, freq="D")]
    with pytest.raises(DataError) as e:
        load_file(_write(tmp_path, days), base_dir=tmp_path)
    msg = str(e.value)
    assert "column 'week'" in msg and "not weekly periods" in msg
    assert "not Mondays" in msg and "sum each ISO week's seven days" in msg


@pytest.mark.unit
def test_irregular_spacing_is_refused_naming_the_column_and_the_fix(tmp_path: Path) -> None:
    fortnightly = [f"{d:%Y-%m-%d}" for d in pd.date_range("2019-01-07", periods=10, freq="2W-MON")]
    with pytest.raises(DataError) as e:
        load_file(_write(tmp_path, fortnightly), base_dir=tmp_path)
    msg = str(e.value)
    assert "column 'week' is not weekly" in msg and "9 of the 19 ISO weeks" in msg
    assert "14 days apart" in msg and "one row per unit and ISO week, dated by its Monday" in msg


@pytest.mark.unit
@pytest.mark.parametrize(
    ("odd", "hint"),
    [
        ("2019-01-09", "not Mondays"),  # a Wednesday among Mondays
        ("2019-W03", "write each ISO week label (2019-W02) as the date of its Monday"),
        ("secret-token-abc123", "expected the Monday that starts each ISO week"),
    ],
)
def test_a_mixed_column_is_refused_with_its_line_and_no_file_text(tmp_path: Path, odd: str, hint: str) -> None:
    weeks = _mondays(6)
    weeks[2] = odd
    with pytest.raises(DataError) as e:
        load_file(_write(tmp_path, weeks, units=("A",)), base_dir=tmp_path)
    msg = str(e.value)
    assert hint in msg and "line 4" in msg
    if not odd[0].isdigit() or "W" in odd:
        assert odd not in msg  # text that is not a plain date is described, never quoted


@pytest.mark.unit
def test_monthly_data_dated_by_mondays_are_told_to_declare_weekly(tmp_path: Path) -> None:
    spec = _write(tmp_path, _mondays(8))
    monthly = FileSource(path=spec.path, unit="area", period="week", outcomes=("attendances",))
    with pytest.raises(DataError, match="set frequency: weekly"):
        load_file(monthly, base_dir=tmp_path)


def _params(**changes: object) -> dict[str, object]:
    m = load_params(EXAMPLE / "clinics.yaml").to_mapping()
    m.update(changes)
    return m


@pytest.mark.unit
@pytest.mark.parametrize(
    ("field", "value", "words"),
    [
        ("intervention_start", "2018-01", "write the Monday that starts the ISO week"),
        ("intervention_start", "2018-01-03", "a Wednesday"),
        ("pre_period_end", "2017-W52", "write the Monday"),
    ],
)
def test_weekly_windows_are_mondays_in_the_params_file(field: str, value: str, words: str) -> None:
    with pytest.raises(ParamsError) as e:
        SiteProtocol.from_mapping(_params(**{field: value}), "clinics.yaml")
    assert field in str(e.value) and words in str(e.value)
    if value == "2018-01-03":
        assert 'That week\'s Monday is "2018-01-01"' in str(e.value)


@pytest.mark.unit
def test_the_pre_period_is_counted_in_weeks() -> None:
    with pytest.raises(ParamsError, match=r"pre-period of 5 weeks, fewer than min_pre_periods \(52\)"):
        SiteProtocol.from_mapping(_params(pre_period_start="2017-11-27"), "clinics.yaml")
    p = load_params(EXAMPLE / "clinics.yaml")
    assert p.windows.pre_periods("weekly") == 104 and p.windows.pre_text() == "4 Jan 2016 to 25 Dec 2017"


@pytest.mark.unit
def test_weekly_seasonality_has_the_period_of_a_year_in_53_week_years_too() -> None:
    weeks = pd.date_range("2015-01-05", "2021-12-27", freq="W-MON")  # 2015 and 2020 have 53 ISO weeks
    f = fourier_terms(weeks, 2, periods_per_year=52)
    same_day = [
        pd.Timestamp(f"{y}-03-02") - pd.Timedelta(days=pd.Timestamp(f"{y}-03-02").day_of_week) for y in (2016, 2021)
    ]
    # The same calendar week in different years sits at (about) the same place in the cycle, whatever the year's
    # length in weeks: the phase moves by at most 7 days' worth.
    a, b = f.loc[same_day[0]], f.loc[same_day[1]]
    assert abs(a["sin1"] - b["sin1"]) < math.sin(2 * math.pi * 7 / 365.25) + 1e-9
    assert np.allclose(
        fourier_terms(pd.date_range("2016-01-01", periods=24, freq="MS"), 2)["sin1"].iloc[:12].to_numpy(),
        np.sin(2 * np.pi * np.arange(1, 13) / 12),
    )


@pytest.mark.integration
def test_the_shipped_data_are_what_make_data_writes(tmp_path: Path) -> None:
    sys.path.insert(0, str(EXAMPLE))
    try:
        from make_data import clinics  # type: ignore[import-not-found]
    finally:
        sys.path.remove(str(EXAMPLE))
    shipped = pd.read_csv(EXAMPLE / "clinics.csv", dtype={"week": str})
    pd.testing.assert_frame_equal(clinics(), shipped, check_dtype=False)


@pytest.fixture(scope="module")
def example():  # type: ignore[no-untyped-def]
    from evallib.evaluation.site.evaluate import evaluate_site

    with project_root():
        yield evaluate_site(load_params(EXAMPLE / "clinics.yaml"))


@pytest.mark.integration
def test_the_weekly_example_is_evaluated_with_the_interval_holding_the_truth(example) -> None:  # type: ignore[no-untyped-def]
    ev = example
    assert ev.status == "evaluated", ev
    cov = ev.primary.coverage
    assert cov.frequency == "weekly" and cov.n_pre == 104 and cov.n_post == 53 and cov.periods_per_year == 52
    ans = ev.answer
    assert ans.row.scale == "log" and ans.row.ci_low <= TRUE_LOG <= ans.row.ci_high
    assert ans.conclusion == "decrease"


@pytest.mark.integration
def test_every_estimator_runs_at_weekly_frequency(example) -> None:  # type: ignore[no-untyped-def]
    methods = {r.method for r in example.rows}
    a = example.primary
    assert a.its is not None and any(r.term == "effect_at_52" for r in a.its.rows)
    assert a.event_study is not None
    assert any(m.startswith("did") for m in methods) and any("its" in m for m in methods)
    for r in example.rows:
        if r.scale == "log" and r.term in ("att", "effect_at_52") and np.isfinite(r.ci_low):
            assert r.ci_low <= TRUE_LOG <= r.ci_high, (r.method, r.term, r.estimate)


@pytest.mark.integration
def test_the_weekly_page_counts_weeks_not_months(example) -> None:  # type: ignore[no-untyped-def]
    text = report_text(example)
    assert "104 weeks" in text or "104 pre-period weeks" in text
    assert "53 weeks" in text
    assert not re.search(r"\b\d+ months?\b", text), re.findall(r".{60}\b\d+ months?\b.{20}", text)
    d = example.to_json_dict()
    assert d["growth"]["months_in_follow_up_window"] == 12


@pytest.mark.e2e
def test_the_weekly_example_runs_with_one_command(tmp_path: Path) -> None:
    """As the README says: ``evallib run --params-dir examples/weekly`` evaluates and publishes it."""
    import shutil

    from evallib.pipeline.batch import run_batch

    (tmp_path / "examples").mkdir()
    shutil.copytree(EXAMPLE, tmp_path / "examples" / "weekly")
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks")
    result = run_batch(None, root=tmp_path, params_dir=tmp_path / "examples" / "weekly", progress=False)
    assert result.exit_code == 0, result.runs
    page = (tmp_path / "outputs" / "site" / "clinics.html").read_text()
    assert "weeks" in page


@pytest.mark.integration
def test_evallib_validate_exits_2_on_daily_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from evallib.pipeline.cli import main as cli_main
    from evallib.protocol.paths import ROOT_ENV

    (tmp_path / "examples" / "weekly").mkdir(parents=True)
    days = pd.date_range("2016-01-04", "2018-12-31", freq="D")
    rows = [f"{a},{d:%Y-%m-%d},{10 + i % 7}" for a in ("W01", "W02", "W03", "W04") for i, d in enumerate(days)]
    (tmp_path / "examples" / "weekly" / "clinics.csv").write_text("area,week,attendances\n" + "\n".join(rows) + "\n")
    (tmp_path / "examples" / "weekly" / "clinics.yaml").write_text((EXAMPLE / "clinics.yaml").read_text())
    monkeypatch.setenv(ROOT_ENV, str(tmp_path))
    monkeypatch.chdir(tmp_path)
    assert cli_main(["validate", "--params-dir", "examples/weekly"]) == 2
    err = capsys.readouterr().err
    assert "column 'week'" in err and "sum each ISO week's seven days" in err


@pytest.mark.unit
def test_the_schema_takes_mondays_for_weekly_files_and_months_otherwise() -> None:
    import json

    import jsonschema

    from evallib.protocol.safe_yaml import read_params_file

    schema = json.loads((ROOT / "params" / "params.schema.json").read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema)
    weekly = read_params_file(EXAMPLE / "clinics.yaml")
    assert list(validator.iter_errors(weekly)) == []
    assert list(validator.iter_errors({**weekly, "intervention_start": "2018-01"}))
    monthly = read_params_file(ROOT / "examples" / "staggered" / "rollout.yaml")
    assert list(validator.iter_errors(monthly)) == []
    assert list(validator.iter_errors({**monthly, "pre_period_end": "2016-03-28"}))


@pytest.mark.unit
@pytest.mark.parametrize(
    ("freq", "ppy", "word"), [("MS", 12, "month"), ("QS", 4, "quarter"), ("YS", 1, "year"), ("W-MON", 52, "week")]
)
def test_matching_and_plots_tell_weekly_periods_from_their_spacing(freq: str, ppy: int, word: str) -> None:
    from evallib.methods.base.plotting import _period_step
    from evallib.methods.synth.matching import periods_per_year

    index = pd.date_range("2016-01-04" if freq == "W-MON" else "2016-01-01", periods=30, freq=freq)
    assert periods_per_year(index) == ppy and _period_step(index)[0] == word
