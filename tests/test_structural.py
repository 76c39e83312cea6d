"""Structural impossibilities are "not evaluable" or a message before the run, never a run-time failure or a
nonsense result (issue 20): one comparator, a constant series, blank denominators, absurd magnitudes."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from evallib import evaluate_site, load_params
from evallib.pipeline.cli import main as cli_main

from .conftest import SMALL_SITE

pytestmark = pytest.mark.integration

RATE = SMALL_SITE.replace(
    'outcomes: ["admissions"]}', 'outcomes: ["admissions"], denominator: "population", measure: "rate", per: 1000}'
)


def _data(
    comparators: int = 20,
    *,
    flat: tuple[str, ...] = (),
    blank_denominator: tuple[str, ...] = (),
    value: str | None = None,
) -> str:
    rng = np.random.default_rng(1)
    units = ["SM1"] + [f"C{i:02d}" for i in range(comparators)]
    lines = ["trust,month,admissions,population"]
    for u in units:
        base = rng.uniform(200, 400)
        for y in range(2012, 2018):
            for m in range(1, 13):
                v = value if value is not None and u == "SM1" else 100 if u in flat else int(rng.poisson(base))
                pop = "" if u in blank_denominator and y == 2016 else "10000"
                lines.append(f"{u},{y}-{m:02d},{v},{pop}")
    return "\n".join(lines) + "\n"


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    (tmp_path / "params" / "other").mkdir(parents=True)
    (tmp_path / "notebooks").mkdir()
    (tmp_path / "data").mkdir()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("EVALLIB_PROJECT_ROOT", str(tmp_path))
    yield tmp_path


def _evaluate(root: Path, data: str, site: str = SMALL_SITE):  # noqa: ANN202 - a SiteEvaluation
    (root / "data" / "small.csv").write_text(data)
    (root / "params" / "other" / "S01.yaml").write_text(site)
    return evaluate_site(load_params(root / "params" / "other" / "S01.yaml"))


def test_one_comparator_is_not_evaluable(project: Path) -> None:
    ev = _evaluate(project, _data(comparators=1))
    assert ev.status == "not evaluable"
    assert "only 1 comparison area" in ev.reason and "at least 2" in ev.reason


def test_a_constant_site_series_is_not_evaluable(project: Path) -> None:
    ev = _evaluate(project, _data(flat=("SM1",)))
    assert ev.status == "not evaluable" and "the same in every pre-period month" in ev.reason


def test_a_constant_comparator_is_left_out_of_the_pool(project: Path) -> None:
    ev = _evaluate(project, _data(flat=("C03",)))
    assert ev.status == "evaluated"
    cov = ev.primary.coverage  # type: ignore[union-attr]
    assert "C03" not in cov.comparators and cov.n_comparators == 19
    assert cov.excluded["no variation before the start (a constant series)"] == 1


def test_blank_denominators_of_the_site_are_not_evaluable(project: Path) -> None:
    ev = _evaluate(project, _data(blank_denominator=("SM1",)), RATE)
    assert ev.status == "not evaluable" and "blank denominators" in ev.reason


def test_a_comparator_with_blank_denominators_is_left_out(project: Path) -> None:
    ev = _evaluate(project, _data(blank_denominator=("C05",)), RATE)
    assert ev.status == "evaluated"
    assert "C05" not in ev.primary.coverage.comparators  # type: ignore[union-attr]


def test_absurd_counts_are_refused_before_the_run_naming_the_column(project: Path, capsys) -> None:
    (project / "data" / "small.csv").write_text(_data(value="1e300"))
    (project / "params" / "other" / "S01.yaml").write_text(SMALL_SITE)
    assert cli_main(["validate"]) == 2
    err = capsys.readouterr().err
    assert "column 'admissions' has values over 1,000,000,000,000, not plausible as counts" in err
    assert "line 2:" in err and "Traceback" not in err
    assert os.environ["EVALLIB_PROJECT_ROOT"] == str(project)
