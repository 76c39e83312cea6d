"""Loaders and every DataError case, on bundled data and on the evaluator's own files."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.sources.bundled import BUNDLED, bundled_data_dir, load_bundled
from evallib.sources.files import FileSource, load_file
from evallib.sources.panel import require_no_gaps, validate_panel

pytestmark = pytest.mark.unit


def test_bundled_monthly_attendances_2010_2021() -> None:
    p = load_bundled("ae_monthly_2010_2021")
    assert p.frequency == "monthly" and p.outcomes == ["ae_attendances"]
    assert len(p.data) == 16447  # 19,806 rows less 3,359 without a trust code (non-trust sites, England total)
    assert p.periods().min() == pd.Timestamp("2010-11-01") and p.periods().max() == pd.Timestamp("2021-12-01")
    assert pd.Timestamp("2019-02-01") not in p.periods()  # a month missing from the source
    assert list(p.data.columns) == ["unit", "period", "outcome", "value", "denominator"]


def test_bundled_2016_2019_outcomes_and_denominators() -> None:
    p = load_bundled("ae_attendances_2016_2019")
    assert set(p.outcomes) == set(BUNDLED["ae_attendances_2016_2019"].outcomes)
    raw = pd.read_csv(bundled_data_dir() / "ae_attendances.csv")
    one = raw[(raw["org_code"] == "RX1") & (raw["period"] == "2017-06-01")]
    w = p.wide("ae_attendances")
    assert w.loc["2017-06-01", "RX1"] == one["attendances"].sum()
    perf = p.data[
        (p.data["outcome"] == "four_hour_performance") & (p.data["unit"] == "RX1") & (p.data["period"] == "2017-06-01")
    ]
    assert perf["value"].item() == one["attendances"].sum() - one["breaches"].sum()
    assert perf["denominator"].item() == one["attendances"].sum()
    assert p.has_denominator("four_hour_performance") and not p.has_denominator("emergency_admissions")


def test_unknown_bundled_name() -> None:
    with pytest.raises(DataError, match="unknown bundled dataset 'nope'"):
        load_bundled("nope")


def _long(**over) -> pd.DataFrame:
    d = pd.DataFrame(
        {
            "unit": ["A", "A", "B", "B"],
            "period": ["2016-04-01", "2016-05-01"] * 2,
            "outcome": "x",
            "value": [1.0, 2.0, 3.0, 4.0],
        }
    )
    for k, v in over.items():
        d[k] = v
    return d


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (_long().drop(columns="value"), "missing column.*value"),
        (_long(unit=["A", "A", "A", "B"]), "duplicate unit-period rows"),
        (_long(value=[1, -2, 3, 4]), "negative counts"),
        (_long(value=["1", "two", "3", "4"]), "non-numeric values"),
        (_long(value=[1, None, 3, 4]), "missing values"),
        (_long(period=["2016-04-01", "2016-05-15", "2016-04-01", "2016-05-01"]), "not monthly periods"),
        (_long(period=["2016-04-01", "junk", "2016-04-01", "2016-05-01"]), "not monthly periods"),
        (_long(unit=["A", "", "B", "B"]), "empty unit codes"),
        (_long(denominator=[10, 0, 10, 10]), "denominators must be positive"),
    ],
)
def test_validation_errors_name_problem_and_rows(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(DataError, match=message) as info:
        validate_panel(frame, "monthly", source="my.csv")
    assert "my.csv" in str(info.value)
    if "rows" in message or "counts" in message or "periods" in message:
        assert "line " in str(info.value)  # offending rows are shown with their line numbers


def test_other_frequencies() -> None:
    q = validate_panel(_long(period=["2016Q1", "2016Q2"] * 2), "quarterly", source="q")
    assert list(q.periods()) == [pd.Timestamp("2016-01-01"), pd.Timestamp("2016-04-01")]
    y = validate_panel(_long(period=["2015", "2016"] * 2), "yearly", source="y")
    assert y.periods()[1] == pd.Timestamp("2016-01-01")
    with pytest.raises(DataError, match="not quarterly"):
        validate_panel(_long(period=["2016-02-01", "2016-04-01"] * 2), "quarterly", source="q")


def test_gaps_the_analysis_cannot_tolerate() -> None:
    p = validate_panel(_long(period=["2016-04-01", "2016-07-01"] * 2), "monthly", source="g")
    with pytest.raises(DataError, match=r"(?s)gaps.*A: 2 missing, e.g. 2016-05, 2016-06"):
        require_no_gaps(p, "x", ["A"], pd.Timestamp("2016-04-01"), pd.Timestamp("2016-07-01"))
    require_no_gaps(p, "x", ["A"], pd.Timestamp("2016-04-01"), pd.Timestamp("2016-07-01"), max_missing=2)


def _wide_csv(tmp_path: Path) -> Path:
    f = tmp_path / "mine.csv"
    f.write_text(
        "area,month,admits,ae,pop\nX1,2016-04,10,100,5000\nX1,2016-05,12,90,5000\nX2,2016-04,7,80,4000\nX2,2016-05,8,85,4000\n"
    )
    return f


def test_wide_csv_with_denominator(tmp_path: Path) -> None:
    _wide_csv(tmp_path)
    spec = FileSource(path="mine.csv", unit="area", period="month", outcomes=("admits", "ae"), denominator="pop")
    p = load_file(spec, base_dir=tmp_path)
    assert p.outcomes == ["admits", "ae"] and p.units == ["X1", "X2"]
    assert p.wide("ae").loc["2016-05-01", "X2"] == 85
    assert p.wide("admits", "denominator").loc["2016-04-01", "X1"] == 5000


def test_long_parquet(tmp_path: Path) -> None:
    pytest.importorskip("pyarrow")
    df = pd.DataFrame({"org": ["A", "A"], "q": ["2017Q1", "2017Q2"], "measure": "beds", "n": [3.0, 4.0]})
    df.to_parquet(tmp_path / "beds.parquet")
    spec = FileSource(
        path="beds.parquet",
        unit="org",
        period="q",
        frequency="quarterly",
        layout="long",
        outcome_column="measure",
        value_column="n",
    )
    assert load_file(spec, base_dir=tmp_path).outcomes == ["beds"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (FileSource(path="absent.csv", unit="area", period="month", outcomes=("ae",)), "does not exist"),
        (
            FileSource(path="mine.csv", unit="trust", period="month", outcomes=("ae",)),
            "missing column.*trust.*the file has 5 column",
        ),
        (FileSource(path="mine.csv", unit="area", period="month"), "needs data_source.outcomes"),
        (FileSource(path="mine.xlsx", unit="area", period="month", outcomes=("ae",)), "unsupported format"),
    ],
)
def test_file_errors(tmp_path: Path, spec: FileSource, message: str) -> None:
    _wide_csv(tmp_path)
    (tmp_path / "mine.xlsx").write_bytes(b"not really")
    with pytest.raises(DataError, match=message):
        load_file(spec, base_dir=tmp_path)


def test_unreadable_csv(tmp_path: Path) -> None:
    (tmp_path / "bad.csv").write_bytes(b'a,b\n"unterminated,1\n')
    with pytest.raises(DataError, match="cannot read data file bad.csv"):
        load_file(FileSource(path="bad.csv", unit="a", period="b", outcomes=("b",)), base_dir=tmp_path)
