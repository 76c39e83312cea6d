"""The calibration study's size by tenth of pre-period noise, in its summary and on its page (issue 18, point 5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from evallib.evaluation.studies.calibration import LEADING, noise_tenth, size_by_noise_tenth
from evallib.reporting.calibration_page import CalibrationFileError, by_noise_context

pytestmark = pytest.mark.unit


def _results(n: int = 40) -> pd.DataFrame:
    # One design, n fake sites, noise rising with the site's number; the plain DiD rejects the noisiest tenth only,
    # the studentized DiD the quietest tenth only.
    rows = []
    for i in range(n):
        for est in ("did", "did_studentized"):
            reject = (i >= n - n // 10) if est == "did" else (i < n // 10)
            rows.append(("d1", f"S{i:02d}", est, 0.0, -1.0, 1.0, 0.01 if reject else 0.5, 0.01 * (i + 1)))
    return pd.DataFrame(
        rows, columns=["design", "fake_site", "estimator", "estimate", "ci_low", "ci_high", "p_value", "noise"]
    )


def test_noise_tenths_rank_fake_sites_within_their_design() -> None:
    r = _results()
    tenth = noise_tenth(r)
    assert tenth[r["fake_site"] == "S00"].eq(0).all() and tenth[r["fake_site"] == "S39"].eq(9).all()
    assert (tenth.value_counts() == 8).all()  # 4 fake sites x 2 estimators in each tenth
    assert noise_tenth(r.assign(noise=np.nan)).isna().all()


def test_size_by_tenth_shows_where_each_test_fails() -> None:
    t = size_by_noise_tenth(_results(), estimators=("did", "did_studentized")).set_index(["estimator", "tenth"])
    assert t.loc[("did", 10), "rejection_rate"] == 1.0 and t.loc[("did", 1), "rejection_rate"] == 0.0
    assert t.loc[("did_studentized", 1), "rejection_rate"] == 1.0
    assert t.loc[("did_studentized", 10), "rejection_rate"] == 0.0
    assert (t["fake_sites"] == 4).all() and len(t) == 20


def test_every_estimator_a_report_can_lead_with_is_in_the_table() -> None:
    assert "did_studentized" in LEADING and "synthetic_did" in LEADING


def test_rejection_at_exactly_alpha_counts() -> None:
    r = _results().assign(p_value=0.05)
    t = size_by_noise_tenth(r, estimators=("did",))
    assert (t["rejection_rate"] == 1.0).all()  # the rule is p <= alpha


def test_the_page_shows_the_table_and_refuses_values_that_are_not_rates(tmp_path: Path) -> None:
    (tmp_path / "params").mkdir()
    t = size_by_noise_tenth(_results(), estimators=("did", "did_studentized"))
    path = tmp_path / "params" / "calibration_by_noise.csv"
    t.to_csv(path, index=False)
    ctx = by_noise_context(tmp_path)
    assert ctx is not None and len(ctx["rows"]) == 2 and len(ctx["head"]) == 10
    assert ctx["rows"][0]["cells"][9] == "100.0 (4)"
    t.assign(rejection_rate=7.0).to_csv(path, index=False)
    with pytest.raises(CalibrationFileError, match="size by noise"):
        by_noise_context(tmp_path)
    path.unlink()
    assert by_noise_context(tmp_path) is None


def test_the_published_page_shows_size_by_tenth_for_every_leading_estimator() -> None:
    from evallib.reporting.calibration_page import calibration_context
    from evallib.reporting.static_site import page
    from evallib.vocabulary import estimator_label

    root = Path(__file__).resolve().parents[1]
    ctx = calibration_context(root)
    assert ctx is not None and ctx["by_noise"] is not None
    html = page("Calibration study", "", template="calibration.html.j2", **ctx, calibration_link=True)
    assert "Size by tenth of pre-period noise" in html and "Tenth 10 (%)" in html
    shown = {r["estimator"] for r in ctx["by_noise"]["rows"]}
    assert shown == {estimator_label(e) for e in LEADING}
