"""The minimum detectable effect comes from the estimator and test that give the answer (issue 18, point 4)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from evallib.evaluation.site.estimators import DesignData, fit_headline
from evallib.evaluation.site.mde import answer_mde, effect_scale_placebos
from evallib.methods.base.design import Design
from evallib.methods.inference.power import placebo_mde

pytestmark = pytest.mark.unit


def _data(treated_scale: float, seed: int = 3, n: int = 60) -> DesignData:
    rng = np.random.default_rng(seed)
    scale = np.exp(rng.normal(0, 0.3, n))
    scale[0] = treated_scale
    t = 60
    y = 7 + (rng.normal(0, 0.03, (n, t)).cumsum(axis=1) * 0.3 + rng.normal(0, 0.03, (n, t))) * scale[:, None]
    periods = pd.date_range("2013-04", periods=t, freq="MS")
    wide = pd.DataFrame(np.exp(y).T, index=periods, columns=[f"U{i:02d}" for i in range(n)])
    return DesignData(Design.from_wide(wide, ["U00"], periods[24], measure="count"), n_draws=199)


def test_the_rank_tests_critical_value_follows_p_at_most_alpha() -> None:
    # 39 placebos: p = (1 + #larger) / 40 <= 0.05 rejects with at most one placebo as large, so the critical value
    # is the second largest |placebo|; all placebos equal 1 except two larger ones (3 and 2).
    e = np.r_[np.ones(37), 3.0, 2.0]
    assert placebo_mde(e, skip_first=False, power=0.5, direction="increase") == pytest.approx(2.0 - 1.0)


def test_a_studentized_answer_reads_its_own_statistics_in_the_sites_units() -> None:
    d = _data(3.0)
    h = fit_headline("did_studentized", d)
    e = effect_scale_placebos(h)
    assert e is not None and len(e) == len(d.comparison_units)  # the real assignment left out
    res = h.result
    assert np.allclose(np.sort(e), np.sort(np.delete(res.placebo_statistics, 0)) / abs(res.statistic_per_effect))


def test_a_noisy_sites_studentized_mde_is_wider_than_the_plain_dids() -> None:
    d = _data(3.0)
    did, stud = fit_headline("did", d), fit_headline("did_studentized", d)
    assert answer_mde(stud, did) > 1.5 * answer_mde(did, did)


def test_synthetic_did_answers_with_its_own_placebo_distribution() -> None:
    d = _data(1.0)
    did, sdid = fit_headline("did", d), fit_headline("synthetic_did", d)
    e = effect_scale_placebos(sdid)
    assert e is not None and len(e) == len(sdid.result.placebo_estimates) - 1
    assert answer_mde(sdid, did) == pytest.approx(placebo_mde(e, skip_first=False))
    assert answer_mde(sdid, did) != pytest.approx(answer_mde(did, did))


def test_an_estimator_without_a_placebo_distribution_falls_back_to_the_dids() -> None:
    d = _data(1.0)
    did, rate = fit_headline("did", d), fit_headline("rate_ratio", d)
    assert effect_scale_placebos(rate) is None
    assert answer_mde(rate, did) == pytest.approx(answer_mde(did, did))
    assert math.isfinite(answer_mde(did, did))
