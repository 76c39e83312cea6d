"""A clear effect is "confirmed" only when some check could run and agreed: with every check withheld (no fake
start fits, one never-started unit to leave out, no pre-trend test) nothing confirms it (adversarial review)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from evallib.evaluation.site.rollout_checks import check_staggered_robustness
from evallib.evaluation.site.staggered_site import ESTIMATOR, LABEL
from evallib.methods.base.design import Design
from evallib.methods.did.rollout import StaggeredPlacebo
from evallib.reporting.templating import render


def _five_units() -> Design:
    """Five units, four starting at months 48, 54, 60 and 66 with a -40% effect: one unit never starts."""
    rng = np.random.default_rng(0)
    periods = pd.date_range("2011-01-01", periods=96, freq="MS")
    logs = 7 + np.cumsum(rng.normal(0, 0.01, (96, 5)), axis=0) + rng.normal(0, 0.02, (96, 5))
    wide = pd.DataFrame(logs, index=periods, columns=[f"U{i}" for i in range(5)])
    starts = {"U1": 48, "U2": 54, "U3": 60, "U4": 66}
    for u, s in starts.items():
        wide.loc[periods[s] :, u] -= 0.5
    return Design.staggered(np.exp(wide), {u: periods[s] for u, s in starts.items()}, measure="count")


@pytest.mark.unit
def test_a_clear_effect_with_no_check_that_could_run_is_not_confirmed() -> None:
    design = _five_units()
    est = StaggeredPlacebo(n_draws=499, seed=3)
    result = est.fit(design)
    rb = check_staggered_robustness(
        est, design, result, placebo_in_time=None, pretrend=None, estimator_name=ESTIMATOR, estimator_label=LABEL
    )
    assert rb.effect  # a clear effect ...
    assert {c.name: c.status for c in rb.checks}["leave one comparator out"] == "not run"  # one never-started unit
    assert all(c.status == "not run" for c in rb.checks)
    assert rb.verdict == "not confirmed"  # ... that nothing could check


@pytest.mark.unit
def test_the_page_says_no_check_could_run_rather_than_naming_a_disagreement() -> None:
    html = render(
        "robustness.html.j2",
        verdict="not confirmed",
        n_disagree=0,
        disagreements="",
        estimator="Callaway-Sant'Anna",
        checks=[],
        table="",
        staggered=True,
        loo_all=500,
        loo_top=100,
        points=False,
        units=5,
        unit="area",
        period_word="month",
        matched=None,
        synthetic=None,
        balance=None,
    )
    assert "no check of Callaway-Sant&#39;Anna could run" in html and "but  disagree" not in html
