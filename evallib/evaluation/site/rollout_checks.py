"""Robustness checks of a staggered site's answer: each a re-fit of the staggered estimator the answer comes from.

The common-start checks (:mod:`evallib.evaluation.site.robustness`) re-fit an estimator that assumes one start,
so they cannot judge a roll-out's answer. Here :class:`~evallib.methods.did.rollout.StaggeredPlacebo` itself is
re-fitted: with a fake start (every cohort's start moved back by the same number of periods, on the data before
the first real start, with its own placebo test) and without each comparison unit in turn (point estimates); the
pre-trend test of the data before the first start (when every unit was untreated) is read beside them, and the
stacked DiD (:class:`~evallib.methods.did.stacked.StackedDiD`, the other estimator built for staggered starts, with
the same placebo re-assignment of start dates) is another comparison, judged as the common-start sites' other
comparison sets are: it agrees when it has the answer's sign and an overlapping interval.
:func:`~evallib.evaluation.site.verdict.judge` judges them by the rule the common-start sites use: "confirmed"
needs a clear effect that every check that could test it agrees with and no failed pre-trend test.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pandas as pd

from evallib.evaluation.site.estimators import PERCENT_SCALES, extreme_changes, on_log_scale
from evallib.evaluation.site.robustness import FIT_ERRORS, Robustness
from evallib.evaluation.site.sampling import smallest_p_value
from evallib.evaluation.site.verdict import Check, agreement, judge
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate
from evallib.methods.did.rollout import StaggeredPlacebo, StaggeredPlaceboResult
from evallib.methods.inference.permutation import mc_error
from evallib.methods.synth.synthetic_did import LOO_ALL_UNITS, LOO_UNITS

#: The checks a staggered answer gets (the matched and synthetic comparisons and the sensitivity assume one start).
STAGGERED_CHECKS = ("placebo in time", "leave one comparator out", "stacked DiD", "pre-trend test")


def distinct_assignments(n_units: int, sizes: tuple[int, ...]) -> int:
    """How many different ways the cohorts (of these sizes) can be given to ``n_units`` units."""
    left, count = n_units, 1
    for k in sizes:
        count *= math.comb(left, k)
        left -= k
    return count


def check_staggered_robustness(
    estimator: StaggeredPlacebo,
    design: Design,
    result: StaggeredPlaceboResult,
    *,
    placebo_in_time: Estimate | None,
    pretrend: Estimate | None,
    estimator_name: str,
    estimator_label: str,
    is_proportion: bool = False,
    stacked: Estimate | None = None,
    why_no_stacked: str = "",
    stacked_draws: int = 0,
    pretrend_draws: int = 0,
    loo_all_units: int = LOO_ALL_UNITS,
    loo_top: int = LOO_UNITS,
) -> Robustness:
    """The staggered answer's robustness checks, each a re-fit of ``estimator`` on a modified ``design``.

    ``placebo_in_time`` is the estimator's overall row on the fake-start design (None when the periods before
    the first start cannot hold it); ``pretrend`` the pre-trend test of the data before the first start;
    ``stacked`` the stacked DiD's overall row on the same design (None, with ``why_no_stacked``, when it could not
    be fitted), judged by agreement with the answer. The start dates go to random units, so the fake start's test
    (the answer's draws), the stacked DiD's (``stacked_draws``) and, with several treated units, the pre-trend test's
    (``pretrend_draws``) are sampled: each check states its draws and Monte Carlo error.

    Leave-one-out drops every never-treated unit in turn up to ``loo_all_units`` of them
    (:data:`~evallib.methods.synth.synthetic_did.LOO_ALL_UNITS`, 500); past that, as for a common start, only the
    ``loo_top`` (:data:`~evallib.methods.synth.synthetic_did.LOO_UNITS`, 100) with the most extreme change from
    before the first start to after it (half from each end: those a comparison mean moves most without), each still
    the exact re-fit, and the check names that rule.
    """
    main = on_log_scale(_scaled(result.overall, is_proportion))
    why_not: dict[str, str] = {}
    if placebo_in_time is None:
        why_not["placebo in time"] = (
            "too few periods before the first start (after any phase-in) to move every cohort's start back"
        )
    # Leave one comparator out: the never-treated units, one at a time (point estimates only).
    comparators = [u for u, s in zip(design.units, _starts(design), strict=True) if s is None]
    loo = pd.Series([main.estimate], dtype=float)
    if len(comparators) <= 1:
        why_not["leave one comparator out"] = "fewer than two units that never start to leave out in turn"
    else:
        left_out, rule = comparators, ""
        if len(comparators) > loo_all_units and loo_top < len(comparators):  # each re-fit is linear in units
            left_out = extreme_changes(design, comparators, estimator.transform == "log", loo_top)
            rule = (
                f"the {loo_top} of {len(comparators):,} never-treated units with the most extreme change from "
                "before the first start to after it"
            )
        try:
            loo = pd.Series({u: float(estimator.point_estimates(design.drop(u))[0]) for u in left_out}, dtype=float)
        except FIT_ERRORS as e:
            why_not["leave one comparator out"] = f"the re-fit failed ({e})"
        if rule:
            loo.attrs["left_out"] = rule
    # The smallest p-value the fake start's test can reach: one over the draws, or the distinct assignments if fewer.
    min_p = smallest_p_value(distinct_assignments(len(design.units), result.cohort_sizes), result.placebo_draws)
    checks = judge(
        main,
        None if placebo_in_time is None else on_log_scale(_scaled(placebo_in_time, is_proportion)),
        loo,
        None,
        None,
        None,
        n_comparators=len(comparators),
        pretrend=pretrend,
        estimator=estimator_label,
        why_not=why_not,
        placebo_time_min_p=min_p,
    )
    stacked_check = agreement(
        "stacked DiD",
        main,
        None if stacked is None else on_log_scale(_scaled(stacked, is_proportion)),
        why_not=why_no_stacked or "no cohort has clean comparison units over its event window",
        label="the stacked DiD",
    )
    # After leave-one-out, before the pre-trend test: the checks that re-fit or compare estimates, then the design's.
    ordered = [c for c in checks if c.name != "pre-trend test"] + [stacked_check]
    ordered += [c for c in checks if c.name == "pre-trend test"]
    draws = {
        "placebo in time": (result.placebo_draws, placebo_in_time),
        "stacked DiD": (stacked_draws, stacked),
        "pre-trend test": (pretrend_draws, pretrend),
    }
    ordered = [_sampled(c, *draws[c.name]) if c.name in draws else c for c in ordered]
    return Robustness(
        outcome=design.outcome,
        main=main,
        placebo_in_time=placebo_in_time,
        leave_one_out=(float(np.min(loo)), float(np.max(loo))),
        matched=None,
        matched_did=None,
        synthetic=None,
        balance=None,
        checks=tuple(c for c in ordered if c.name in STAGGERED_CHECKS),
        estimator=estimator_name,
        label=estimator_label,
    )


def _sampled(check: Check, draws: int, row: Estimate | None) -> Check:
    """The check with its sampled test's draws and Monte Carlo error (unchanged when nothing was drawn)."""
    if row is None or draws <= 0 or not row.inference.startswith("placebo"):
        return check
    return check.sampled(draws, mc_error(row.p_value, draws))


def _starts(design: Design) -> tuple[object, ...]:
    return design.unit_starts or tuple(design.start if t else None for t in design.treated)


def _scaled(row: Estimate, is_proportion: bool) -> Estimate:
    """A percentage's row on the points scale the verdict words it in (as the common-start re-fits are)."""
    return replace(row, scale=PERCENT_SCALES.get(row.scale, row.scale)) if is_proportion else row
