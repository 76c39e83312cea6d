"""A staggered site's verdict: the stacked DiD beside Callaway-Sant'Anna is one of its checks (agreement with the
answer, the rule the common-start sites' other comparison sets follow), and the site honours ``design_pool`` as a
single-start site does (it narrows the comparators, never adds one).
"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from evallib.evaluation.site.rollout_checks import check_staggered_robustness
from evallib.evaluation.site.staggered_site import ESTIMATOR, LABEL
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate
from evallib.methods.did.rollout import StaggeredPlacebo
from evallib.methods.did.stacked import StackedDiD

from .conftest import rollout_design


def _checks(design: Design, stacked: Estimate | None, why: str = ""):  # type: ignore[no-untyped-def]
    est = StaggeredPlacebo(n_draws=499, seed=3)
    return check_staggered_robustness(
        est,
        design,
        est.fit(design),
        placebo_in_time=None,
        pretrend=None,
        estimator_name=ESTIMATOR,
        estimator_label=LABEL,
        stacked=stacked,
        why_no_stacked=why,
    )


@pytest.mark.unit
def test_a_stacked_did_that_agrees_confirms_and_one_that_disagrees_leaves_the_effect_not_confirmed() -> None:
    design = rollout_design(1, -0.2)
    stacked = StackedDiD(n_draws=499, seed=3).fit(design).overall
    rb = _checks(design, stacked)
    check = {c.name: c for c in rb.checks}["stacked DiD"]
    assert check.status == "agrees" and "the stacked DiD gives" in check.detail
    assert rb.verdict == "confirmed"  # leave one out and the stacked DiD agree
    other_way = replace(stacked, estimate=0.15, ci_low=0.05, ci_high=0.25, p_value=0.002)
    rb = _checks(design, other_way)
    assert {c.name: c.status for c in rb.checks}["stacked DiD"] == "disagrees"
    assert rb.verdict == "not confirmed" and [c.name for c in rb.disagreements] == ["stacked DiD"]


@pytest.mark.unit
def test_a_stacked_did_that_cannot_reject_or_could_not_be_fitted_is_not_counted() -> None:
    design = rollout_design(1, -0.2)
    stacked = StackedDiD(n_draws=499, seed=3).fit(design).overall
    unbounded = replace(stacked, ci_low=-np.inf, ci_high=np.inf, p_value=0.3)
    assert {c.name: c.status for c in _checks(design, unbounded).checks}["stacked DiD"] == "could not test"
    rb = _checks(design, None, "the stacked DiD could not be fitted (no clean comparison)")
    check = {c.name: c for c in rb.checks}["stacked DiD"]
    assert check.status == "not run" and "no clean comparison" in check.detail


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html)).replace("&#39;", "'")


@pytest.mark.integration
def test_the_worked_examples_stacked_did_is_a_check_in_results_json_and_on_the_page(staggered_example) -> None:  # type: ignore[no-untyped-def]
    from evallib.reporting.robustness_section import robustness
    from evallib.reporting.staggered_section import staggered

    ev = staggered_example
    checks = {c["check"]: c for c in ev.to_json_dict()["robustness"]["checks"]}
    assert checks["stacked DiD"]["status"] == "agrees"
    assert "the stacked DiD gives" in checks["stacked DiD"]["detail"]
    assert "agrees: stacked DiD" in _text(robustness(ev).html)
    assert "one of the robustness checks of the answer" in _text(staggered(ev).html)


@pytest.mark.integration
def test_a_staggered_site_compares_only_with_the_pool_chosen_at_design_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from evallib.errors import ParamsError
    from evallib.evaluation.site.evaluate import evaluate_site
    from evallib.protocol.params import load_params
    from evallib.protocol.paths import ROOT_ENV

    root = Path(__file__).resolve().parents[1]
    monkeypatch.setenv(ROOT_ENV, str(root))
    protocol = load_params(root / "examples" / "staggered" / "rollout.yaml")
    chosen = tuple(f"A{i:02d}" for i in range(5, 30))  # 25 of the 36 areas that never start
    with pytest.raises(ParamsError, match=r"design_pool.*\(Z99\)"):  # not in the data: refused, never dropped
        evaluate_site(replace(protocol, design_pool=(*chosen, "Z99")))
    ev = evaluate_site(replace(protocol, design_pool=chosen))
    st = ev.staggered
    assert ev.status == "evaluated" and st is not None
    assert st.n_comparators == len(chosen)
    units = set(ev.primary.coverage.comparators)
    assert units == set(chosen)
    assert ev.to_json_dict()["answer"]["estimator"] == ESTIMATOR  # the staggered answer, on the chosen pool
    assert ev.primary.coverage.excluded["not in the pool chosen at design time (design_pool)"] == 36 - len(chosen)
