"""Programme pooling weighs each site by the standard error its own interval implies (issue 18, point 4)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from evallib.evaluation.studies import programme


def _write(root: Path, sid: str, answer: dict[str, object]) -> None:
    folder = root / sid
    folder.mkdir()
    (folder / "results.json").write_text(
        json.dumps(
            {
                "site_id": sid,
                "site_name": sid,
                "care_model": "PACS",
                "status": "evaluated",
                "primary_outcome": "nonelective_admissions_per_head",
                "intervention_start": "2015-04",
                "coverage": {"treated_units": [sid]},
                "answer": answer,
                "results": [],
            }
        ),
        encoding="utf-8",
    )


def _answer(estimate: float, low: float, high: float, sd: float, scale: str = "log") -> dict[str, object]:
    return {
        "method": "did_twfe",
        "term": "treated_x_post",
        "scale": scale,
        "estimate": estimate,
        "std_error": sd,
        "ci_low": low,
        "ci_high": high,
        "p_value": 0.5,
    }


def test_interval_std_error_is_width_over_two_z() -> None:
    assert programme.interval_std_error(-0.2, 0.2) == pytest.approx(0.4 / (2 * 1.959964), rel=1e-6)
    assert programme.interval_std_error(-math.inf, 0.2) is None
    assert programme.interval_std_error(None, 0.2) is None
    assert programme.interval_std_error(0.1, 0.1) is None


def test_site_pooled_with_the_se_of_its_own_interval_not_its_placebo_sd(tmp_path: Path) -> None:
    # A studentized site: its placebo SD (0.02) is a third of what its interval (width 0.392) implies (0.1).
    _write(tmp_path, "V01", _answer(-0.10, -0.296, 0.096, sd=0.02))
    data = programme.load_programme(tmp_path)
    assert data.sites.loc[0, "std_error"] == pytest.approx(0.1, rel=1e-3)


def test_percent_answer_uses_its_interval_on_the_log_scale(tmp_path: Path) -> None:
    lo, hi = 100 * math.expm1(-0.3), 100 * math.expm1(0.1)
    _write(tmp_path, "V02", _answer(100 * math.expm1(-0.1), lo, hi, sd=1.0, scale="percent"))
    data = programme.load_programme(tmp_path)
    assert data.sites.loc[0, "std_error"] == pytest.approx(0.4 / (2 * 1.959964), rel=1e-5)


def test_site_without_a_finite_interval_keeps_its_placebo_sd(tmp_path: Path) -> None:
    _write(tmp_path, "V03", _answer(-0.1, -math.inf, math.inf, sd=0.05))
    data = programme.load_programme(tmp_path)
    assert data.sites.loc[0, "std_error"] == pytest.approx(0.05)
