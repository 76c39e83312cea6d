"""Pre-specified robustness checks of a site's answer: every one a re-fit of the estimator it comes from.

The answer's estimator (the protocol's primary estimator; the studentized DiD for a volatile site) is
re-fitted by name (:func:`~evallib.evaluation.site.estimators.fit_headline`) on copies of the outcome's design:
against the 10 nearest comparators, with a fake start halfway through the pre-period (pre-period data only,
with the estimator's own placebo test), and without each comparator in turn (point estimates only). The
synthetic control is kept as another comparison set, and the pre-trend test and the parallel-trends
sensitivity are read beside them; :mod:`evallib.evaluation.site.verdict` judges them all, so the verdict is about
the answer, not about another estimator.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from evallib.errors import DataError
from evallib.evaluation.site.coverage import Coverage
from evallib.evaluation.site.estimators import (
    PERCENT_SCALES,
    DesignData,
    Headline,
    fit_headline,
    leave_one_out,
    on_log_scale,
)
from evallib.evaluation.site.sampling import row_smallest_p_value, sampled
from evallib.evaluation.site.verdict import MIN_PLACEBO_TIME_PERIODS, Check, conclusion, judge
from evallib.methods.base.results import Estimate
from evallib.methods.did.sensitivity import RelativeMagnitudes, relative_magnitudes
from evallib.methods.inference.permutation import mc_error
from evallib.methods.synth.control import SynthResult
from evallib.methods.synth.matching import MatchResult, balance_table, match_comparators
from evallib.protocol.windows import period_label
from evallib.vocabulary import ESTIMATOR_LABELS

#: What a re-fit on a modified design may raise (too few units or periods for the estimator): the check is "not run".
FIT_ERRORS = (DataError, ValueError, np.linalg.LinAlgError)


@dataclass(frozen=True)
class Robustness:
    """Pre-specified robustness checks of the primary outcome's main estimate, each a re-fit of its estimator.

    * ``placebo_in_time``: the same estimator (``estimator``) with a fake start halfway through the
      pre-period, on pre-period data only, with its own placebo inference (an "effect" there means the
      design finds effects where none can be); method ``<method>_placebo_in_time``;
    * ``leave_one_out``: the smallest and largest estimates of the same estimator dropping one comparator
      (point estimates only);
    * ``matched`` / ``matched_did``: the 10 nearest comparators and the same estimator fitted against them
      (method ``<method>_matched``); ``synthetic``: the synthetic control (trajectory-matched, demeaned
      logs), another comparison set;
    * the pre-specified pre-trend test (a check of the design);
    * ``sensitivity``: Rambachan and Roth's relative-magnitude breakdown value from the event
      study's leads (how many times the largest pre-period departure from parallel trends a
      post-period departure must be to overturn the conclusion).

    ``verdict`` is ``"confirmed"`` when the main estimate is significant at 5% and every
    falsification check that could test it (placebo in time, leave one out, matched, synthetic, pre-trend test)
    agrees with it, ``"not confirmed"`` when it is significant but some check disagrees or none could run and test
    it (a check that ran but could not have disagreed, ``"could not test"``, counts neither way), and ``"no
    clear effect"`` when the main estimate is not significant (a null is never "confirmed": the
    report gives the effect the design could have detected instead). The sensitivity's breakdown
    value is reported beside the verdict (:attr:`sensitivity_words`): it measures how much a
    conclusion rests on parallel trends, it cannot show the design wrong, and with leads as noisy
    as two pre-period years give it falls below 1 for about a third of true -20% effects
    (tests/montecarlo/README.md). ``main`` is on the log scale for proportional effects.
    """

    outcome: str
    main: Estimate
    placebo_in_time: Estimate | None
    leave_one_out: tuple[float, float]
    matched: MatchResult | None
    matched_did: Estimate | None
    synthetic: SynthResult | None
    balance: pd.DataFrame | None = field(repr=False)
    sensitivity: RelativeMagnitudes | None = None
    checks: tuple[Check, ...] = ()
    estimator: str = "did"
    #: The estimator in words when it is not a headline estimator (a staggered site's, rollout_checks.py).
    label: str = ""

    @property
    def estimator_label(self) -> str:
        """The estimator every check re-fits, in words."""
        return self.label or ESTIMATOR_LABELS.get(self.estimator, self.estimator)

    @property
    def effect(self) -> bool:
        """The main estimate is clear (significant at 5%)."""
        return conclusion(self.main) in ("decrease", "increase")

    @property
    def disagreements(self) -> tuple[Check, ...]:
        """The checks that disagree with the main estimate."""
        return tuple(c for c in self.checks if c.status == "disagrees")

    @property
    def verdict(self) -> str:
        """``confirmed``, ``not confirmed`` or ``no clear effect`` (see the class notes)."""
        if not self.effect:
            return "no clear effect"
        # Nothing that could test it agreed (every check withheld, or unable to disagree): nothing confirms it.
        nothing_ran = not any(c.status == "agrees" for c in self.checks)
        return "not confirmed" if self.disagreements or nothing_ran else "confirmed"

    @property
    def untested(self) -> tuple[Check, ...]:
        """The checks that ran but could not have disagreed (``"could not test"``): counted neither way."""
        return tuple(c for c in self.checks if c.status == "could not test")

    @property
    def sensitivity_words(self) -> str:
        """The parallel-trends sensitivity in one sentence ("" when it did not run)."""
        return next((c.detail for c in self.checks if c.status == "reported"), "")

    @property
    def rows(self) -> tuple[Estimate, ...]:
        """The checks' own estimates (the synthetic control's row is a headline estimate, listed there)."""
        return tuple(r for r in (self.placebo_in_time, self.matched_did) if r is not None)

    def to_json_dict(self) -> dict[str, Any]:
        """The checks as ``results.json`` records them."""

        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        rm = self.sensitivity
        return {
            "verdict": self.verdict,
            "estimator": self.estimator,
            "checks": [c.to_json_dict() for c in self.checks],
            # The checks that ran but could not have disagreed: not counted toward "confirmed".
            "could_not_test": [c.name for c in self.untested],
            "leave_one_out_range": [num(self.leave_one_out[0]), num(self.leave_one_out[1])],
            "relative_magnitude_breakdown": None if rm is None else num(rm.breakdown),
            "largest_pre_period_violation": None if rm is None else num(rm.max_pre_violation),
            "matched_comparators": self.matched.units if self.matched is not None else [],
            "synthetic_weights": {}
            if self.synthetic is None
            else {k: round(float(v), 6) for k, v in self.synthetic.weights.items() if v > 0.001},
        }


def check_robustness(
    *,
    main: Headline,
    design: DesignData,
    coverage: Coverage,
    is_proportion: bool,
    values: pd.DataFrame,
    site_series: pd.Series,
    leads: Mapping[int, float] | None = None,
    n_post_bins: int = 0,
    synth: SynthResult | None = None,
    pretrend: Estimate | None = None,
    pretrend_draws: int = 0,
) -> Robustness:
    """Run the robustness checks of one outcome's main estimate ``main``, each a re-fit of its estimator.

    ``design`` is the outcome's design (every headline estimator's input): the checks re-fit
    ``main``'s estimator by name on a copy of it with other comparison units or a fake start.
    ``values`` are the counts (or rates; period x unit, the site's units and the pool) and
    ``site_series`` the site's summed series, from which the matched comparators are chosen;
    ``leads`` the event study's pre-period estimates by event time (the reference included as 0)
    and ``n_post_bins`` its number of post-period event times, for the parallel-trends
    sensitivity; ``synth`` the site's synthetic control (an alternative comparison set);
    ``pretrend`` the pre-specified pre-trend test (``pretrend_draws``: the random placebo assignments its p-value
    ranks among, 0 when exhaustive). Ratios and percent changes are compared on the log scale. A check whose test
    ranks among random placebo assignments (several treated units, or past 500 units for the estimators that refit)
    states its draws and Monte Carlo error (:meth:`~evallib.evaluation.site.verdict.Check.sampled`); the fake start
    counts only when its own assignments could reach 5%
    (:func:`~evallib.evaluation.site.sampling.row_smallest_p_value`).
    """
    name = main.name
    judged = on_log_scale(main.row)
    cov = coverage
    treated = list(cov.treated_used)
    pool = list(cov.comparators)
    why_not: dict[str, str] = {}
    # Placebo in time: a fake start halfway through the pre-period, on pre-period data only.
    pre_periods = list(design.design.periods[~design.design.post])
    placebo_time = None
    # Each re-fit's sampled draws and Monte Carlo error, by check (none when every assignment was tried).
    draws: dict[str, tuple[int, float]] = {}
    time_min_p = None
    if len(pre_periods) >= MIN_PLACEBO_TIME_PERIODS:
        fake = pd.Timestamp(pre_periods[len(pre_periods) // 2])
        h = _refit(name, design.with_fake_start(fake), is_proportion, why_not, "placebo in time")
        if h is not None:
            r = h.row
            when = period_label(fake, cov.frequency)
            placebo_time = replace(r, term=f"placebo_in_time_{when}", method=f"{r.method}_placebo_in_time")
            draws["placebo in time"] = sampled(r, h.result)
            time_min_p = row_smallest_p_value(r, h.result)
    # Leave one comparator out: the estimate alone, re-fitted without each comparator in turn.
    loo = pd.Series([judged.estimate])
    if len(pool) > 1:
        try:
            loo = leave_one_out(name, design)
        except FIT_ERRORS as e:
            why_not["leave one comparator out"] = f"the re-fit failed ({e})"
    matched = matched_row = balance = None
    post = values.index >= design.start
    if not is_proportion and len(pool) >= 3:
        pre_vals = values.loc[~post]
        matched = match_comparators(site_series[~post], pre_vals[pool], k=min(10, len(pool)))
        h = _refit(name, design.restricted_to(treated + matched.units), is_proportion, why_not, "matched")
        if h is not None:
            matched_row = replace(h.row, method=f"{h.row.method}_matched")
            draws["10 matched comparators"] = sampled(h.row, h.result)
        sets = {
            "all eligible": pd.Series(1.0, index=pool),
            "matched": pd.Series(1.0, index=matched.units),
            **({"synthetic": synth.weights} if synth is not None else {}),
        }
        balance = balance_table(site_series[~post], pre_vals[pool], sets)
    if name == "synthetic_control":
        why_not["synthetic control"] = "the synthetic control is the primary estimate"
    elif synth is not None:
        draws["synthetic control"] = sampled(synth.headline, synth)
    if pretrend is not None and pretrend_draws > 0 and pretrend.inference.startswith("placebo"):
        draws["pre-trend test"] = (pretrend_draws, mc_error(pretrend.p_value, pretrend_draws))
    sensitivity = None
    if leads and n_post_bins:
        sensitivity = relative_magnitudes(
            leads, n_post_periods=n_post_bins, ci_low=judged.ci_low, ci_high=judged.ci_high
        )
    checks = judge(
        judged,
        None if placebo_time is None else on_log_scale(placebo_time),
        loo,
        None if matched_row is None else on_log_scale(matched_row),
        None if name == "synthetic_control" else synth,
        sensitivity,
        n_comparators=len(pool),
        pretrend=pretrend,
        estimator=name,
        why_not=why_not,
        placebo_time_min_p=time_min_p,
    )
    checks = tuple(c.sampled(*draws.get(c.name, (0, 0.0))) for c in checks)
    return Robustness(
        outcome=design.outcome,
        main=judged,
        placebo_in_time=placebo_time,
        leave_one_out=(float(loo.min()), float(loo.max())),
        matched=matched,
        matched_did=matched_row,
        synthetic=synth,
        balance=balance,
        sensitivity=sensitivity,
        checks=checks,
        estimator=name,
    )


def _refit(name: str, design: DesignData, is_proportion: bool, why_not: dict[str, str], check: str) -> Headline | None:
    """The primary estimator on a modified design, its row on the reader's scale (``None``, with the reason kept,
    when it cannot be fitted); the fitted result says how its placebo test was drawn.
    """
    try:
        h = fit_headline(name, design)
    except FIT_ERRORS as e:
        why_not[check] = f"the re-fit failed ({e})"
        return None
    if is_proportion:  # fitted on the percentage's own scale
        h = replace(h, row=replace(h.row, scale=PERCENT_SCALES.get(h.row.scale, h.row.scale)))
    return h
