"""The verdict's rules: what each robustness check of a site's answer is judged by, and its words.

:mod:`evallib.evaluation.site.robustness` re-fits the answer's estimator; this module judges the re-fits. Other
comparison sets agree when they have the main estimate's sign and overlapping intervals (their own significance is
not asked for); the pre-specified pre-trend test must not find diverging trends; the parallel-trends sensitivity is
reported beside the verdict, never counted; a check that did not run says "not run", never "agrees". A check that ran
but could not have disagreed says "could not test", never "agrees", and counts neither way: a placebo test whose
smallest attainable p-value is above 5% (too few placebo assignments to reject: counted from the assignments its own
test ranks among, :mod:`evallib.evaluation.site.sampling`), or a comparison whose 95% interval
has no finite end (it holds every value, so it overlaps any interval, and the sign of its estimate is not a test). Effects are worded in percent (logs) or percentage points, never in log units.
Every significance here is :func:`evallib.methods.inference.decision.rejects` (``p <= alpha``), the rule the
intervals invert.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

import pandas as pd

from evallib.evaluation.site.estimators import on_log_scale
from evallib.evaluation.site.sampling import sampled_text
from evallib.methods.base.results import Estimate
from evallib.methods.did.sensitivity import RelativeMagnitudes
from evallib.methods.inference.decision import ALPHA, rejects
from evallib.methods.synth.control import SynthResult
from evallib.vocabulary import ESTIMATOR_LABELS

#: Pre-trend p-values that reject at this level are reported as evidence of diverging trends (and leave an effect
#: unconfirmed).
PRETREND_ALPHA = ALPHA
#: Fewest pre-period periods (of any frequency) for the placebo-in-time check: a fake start halfway leaves three a side.
MIN_PLACEBO_TIME_PERIODS = 6
#: The benchmark for the parallel-trends sensitivity's words: a post-period departure as large as the largest
#: pre-period one (a breakdown value at or below it is reported as a caution).
MBAR = 1.0
#: "reported": a sensitivity analysis, given as a number beside the verdict, never counted for or against it.
#: "could not test": the check ran but its own test could not have disagreed at 5% (never counted toward "confirmed").
Status = Literal["agrees", "disagrees", "not run", "could not test", "reported"]
#: A check that ran but could not have disagreed with the main estimate.
COULD_NOT_TEST: Status = "could not test"


def unbounded(row: Estimate) -> bool:
    """The row's 95% interval has no finite end (both ends infinite or missing): it holds every value.

    A rank test's interval is its inversion, so it has no finite end exactly when the test cannot reject at 5%
    (fewer placebo assignments than 1 / 0.05); such an interval overlaps any other, so nothing can disagree with it.
    """
    return not (math.isfinite(row.ci_low) or math.isfinite(row.ci_high))


@dataclass(frozen=True)
class Check:
    """One robustness check: its name, whether it agrees with the main conclusion, and why, in words.

    ``placebo_draws`` and ``p_value_mc_error``: the random placebo assignments its own test ranked the re-fit among
    and its p-value's Monte Carlo error, when they were sampled (0 when every assignment was tried, or no test ran).
    """

    name: str
    status: Status
    detail: str
    placebo_draws: int = 0
    p_value_mc_error: float = 0.0

    def to_json_dict(self) -> dict[str, Any]:
        """The check as ``results.json`` records it (the draws and Monte Carlo error only when sampled)."""
        out: dict[str, Any] = {"check": self.name, "status": self.status, "detail": self.detail}
        if self.placebo_draws > 0:
            out |= {"placebo_draws": self.placebo_draws, "p_value_mc_error": self.p_value_mc_error}
        return out

    def sampled(self, draws: int, error: float) -> Check:
        """The check with its test's sampled draws and Monte Carlo error, stated in its detail too; unchanged when
        nothing was sampled (``draws`` 0) or the check did not run.
        """
        if draws <= 0 or self.status == "not run":
            return self
        return replace(
            self, detail=f"{self.detail} ({sampled_text(draws, error)})", placebo_draws=draws, p_value_mc_error=error
        )


def effect_text(value: float, scale: str) -> str:
    """One estimate in words on the reader's scale: percent for logs (``-8.1%``), points for percentages."""
    if not math.isfinite(value):
        return "unbounded" if math.isinf(value) else "unknown"
    if scale == "log":
        return f"{100 * math.expm1(value):+.1f}%"
    if scale == "rate_ratio":  # a ratio of 0.9 is a rate 10% lower
        return f"{100 * (value - 1):+.1f}%"
    if scale.startswith("percentage_points"):
        return f"{value:+.1f} percentage points"
    return f"{value:+.3f}"


def conclusion(row: Estimate) -> str:
    """What an estimate concludes at the 5% level: ``decrease``, ``increase``, ``no clear effect`` or ``unknown``.

    Clear exactly when its p-value rejects (:func:`~evallib.methods.inference.decision.rejects`, ``p <= 0.05``),
    which is exactly when its interval leaves out no change; ``unknown`` without a p-value (withheld).
    """
    if not math.isfinite(row.p_value):
        return "unknown"
    if not rejects(row.p_value, ALPHA):
        return "no clear effect"
    return "decrease" if on_log_scale(row).estimate < 0 else "increase"


def _overlap(a: Estimate, b: Estimate) -> bool:
    # A withheld interval (NaN: a plain placebo test on a volatile site) says nothing: treat it as unbounded.
    def lo(r: Estimate) -> float:
        return -math.inf if math.isnan(r.ci_low) else r.ci_low

    def hi(r: Estimate) -> float:
        return math.inf if math.isnan(r.ci_high) else r.ci_high

    return max(lo(a), lo(b)) <= min(hi(a), hi(b))


def _agreement(
    name: str, main: Estimate, alt: Estimate | None, why_no_test: str = "", *, why_not: str = "", label: str = ""
) -> Check:
    """An alternative comparison agrees when its estimate has the main one's sign and the intervals overlap."""
    if alt is None or not math.isfinite(alt.estimate):
        return Check(name, "not run", why_not or "too few comparison units for this comparison set")
    words = (f"{label} gives " if label else "estimate ") + effect_text(alt.estimate, main.scale)
    if unbounded(alt):
        # Overlap is certain and the estimate's sign is no test: the check could not have disagreed.
        why = (
            "it has no 95% interval"
            if math.isnan(alt.ci_low) and math.isnan(alt.ci_high)
            else why_no_test or "its 95% interval is unbounded"
        )
        return Check(
            name,
            COULD_NOT_TEST,
            f"{words} ({why}): an interval that holds every value can neither agree nor disagree with the main "
            "estimate, so it is not counted",
        )
    same_sign = (alt.estimate < 0) == (main.estimate < 0)
    overlap = _overlap(main, alt)
    words += (
        f", 95% interval {effect_text(alt.ci_low, main.scale)} to {effect_text(alt.ci_high, main.scale)}"
        if math.isfinite(alt.ci_low) and math.isfinite(alt.ci_high)
        else f" ({why_no_test or 'interval unbounded'})"
    )
    if same_sign and overlap:
        return Check(name, "agrees", f"{words}: same direction, overlapping intervals")
    why = "the opposite direction" if not same_sign else "an interval that does not overlap the main one"
    return Check(name, "disagrees", f"{words}: {why}")


def agreement(name: str, main: Estimate, alt: Estimate | None, *, why_not: str = "", label: str = "") -> Check:
    """Another estimate of the same effect judged against ``main`` (both on the log scale for proportional effects).

    It agrees with the same sign and overlapping 95% intervals, disagrees otherwise, "could not test" when its
    interval has no finite end, and is "not run" (``why_not``) when absent.
    """
    return _agreement(name, main, alt, why_not=why_not, label=label)


def judge(
    main: Estimate,
    placebo_time: Estimate | None,
    loo: pd.Series,
    matched_row: Estimate | None,
    synth: SynthResult | None,
    sensitivity: RelativeMagnitudes | None,
    *,
    n_comparators: int,
    pretrend: Estimate | None = None,
    estimator: str = "did",
    why_not: Mapping[str, str] | None = None,
    placebo_time_min_p: float | None = None,
) -> tuple[Check, ...]:
    """Judge each check of ``main`` (on the log scale for proportional effects) by what it can show.

    ``placebo_time_min_p`` is the smallest p-value the fake start's own test can give, from the assignments it
    ranks the re-fit among (:func:`~evallib.evaluation.site.sampling.row_smallest_p_value`); when None, that of one
    treated unit tried against each of ``n_comparators`` in turn, ``1 / (n_comparators + 1)``.
    """
    why_not = why_not or {}
    label = ESTIMATOR_LABELS.get(estimator, estimator)
    scale = main.scale
    checks = []
    # A placebo test is only worth counting when it could reject: its smallest attainable p-value is one over the
    # assignments it ranks the re-fit among (1 / (comparators + 1) for one treated unit tried against each in turn).
    min_p = 1 / (n_comparators + 1) if placebo_time_min_p is None else placebo_time_min_p
    if placebo_time is None:
        checks.append(
            Check(
                "placebo in time",
                "not run",
                why_not.get("placebo in time", f"fewer than {MIN_PLACEBO_TIME_PERIODS} periods before the start"),
            )
        )
    elif not rejects(min_p, ALPHA) or (unbounded(placebo_time) and not rejects(placebo_time.p_value, ALPHA)):
        checks.append(
            Check(
                "placebo in time",
                COULD_NOT_TEST,
                f"{label} with a fake start in the pre-period gives {effect_text(placebo_time.estimate, scale)}, but "
                "too few placebo assignments for its test to reach significance at 5%, so it could not have found an "
                "effect and is not counted",
            )
        )
    else:
        fake = rejects(placebo_time.p_value, ALPHA)
        detail = (
            f"{label} with a fake start in the pre-period gives {effect_text(placebo_time.estimate, scale)}, "
            f"p = {placebo_time.p_value:.2f}"
        )
        checks.append(
            Check(
                "placebo in time",
                "disagrees" if fake else "agrees",
                detail
                + (": the design finds an effect where none can be" if fake else ": no effect where none can be"),
            )
        )
    effect = conclusion(main) in ("decrease", "increase")
    lo, hi = float(loo.min()), float(loo.max())
    if not effect:
        checks.append(
            Check("leave one comparator out", "not run", "no effect to lose: the main estimate is not significant")
        )
    elif "leave one comparator out" in why_not:
        checks.append(Check("leave one comparator out", "not run", why_not["leave one comparator out"]))
    else:
        stable = (lo < 0) == (hi < 0) == (main.estimate < 0)
        checks.append(
            Check(
                "leave one comparator out",
                "agrees" if stable else "disagrees",
                f"{label} without each comparator in turn"
                + (f" ({loo.attrs['left_out']}, a large pool)" if "left_out" in loo.attrs else "")
                + f" ranges from {effect_text(lo, scale)} to "
                f"{effect_text(hi, scale)}" + ("" if stable else ": one comparator changes the sign"),
            )
        )
    checks.append(
        _agreement(
            "10 matched comparators",
            main,
            matched_row,
            "its 95% interval is unbounded: the matched comparators give too few placebo assignments for its test to "
            "reach significance at 5%",
            why_not=why_not.get("matched", ""),
            label=label,
        )
    )
    checks.append(
        _agreement(
            "synthetic control",
            main,
            on_log_scale(synth.headline) if synth is not None else None,
            why_not=why_not.get("synthetic control", ""),
            label="the synthetic control",
        )
    )
    checks.append(_pretrend_check(pretrend))
    if not effect:
        checks.append(Check("parallel-trends sensitivity", "not run", "no effect to overturn"))
    elif sensitivity is None or not math.isfinite(sensitivity.breakdown) and sensitivity.breakdown != math.inf:
        checks.append(Check("parallel-trends sensitivity", "not run", "fewer than two pre-period event times"))
    elif not (math.isfinite(main.ci_low) and math.isfinite(main.ci_high)) or main.ci_low <= 0 <= main.ci_high:
        # No bound to scale: the interval is unbounded, withheld or already holds zero.
        checks.append(Check("parallel-trends sensitivity", "not run", "the interval has no finite end away from zero"))
    else:
        checks.append(Check("parallel-trends sensitivity", "reported", _sensitivity_detail(sensitivity, scale)))
    return tuple(checks)


def _pretrend_check(pretrend: Estimate | None) -> Check:
    """The pre-specified pre-trend test (5%): diverging trends before the start leave an effect unconfirmed."""
    if pretrend is None or not math.isfinite(pretrend.p_value):
        return Check("pre-trend test", "not run", "the pre-trend test gave no p-value (withheld for a volatile site)")
    p = pretrend.p_value
    if unbounded(pretrend) and not rejects(p, PRETREND_ALPHA):
        return Check(
            "pre-trend test",
            COULD_NOT_TEST,
            f"p = {p:.3f}, but too few comparison units for the test to reach significance at 5% (its interval is "
            "unbounded), so it could not have found diverging trends and is not counted",
        )
    # Three decimals; a p-value that rounds to 0.050 without being it says which side of 0.05 it is on.
    words = f"p = {p:.3f}"
    if f"{p:.3f}" == f"{PRETREND_ALPHA:.3f}" and p != PRETREND_ALPHA:
        words = "p < 0.05" if p < PRETREND_ALPHA else "p > 0.05"
    if rejects(p, PRETREND_ALPHA):
        return Check(
            "pre-trend test", "disagrees", f"the site's trend before the start differs from its comparators' ({words})"
        )
    return Check("pre-trend test", "agrees", f"no clear difference in trends before the start ({words})")


def _sensitivity_detail(rm: RelativeMagnitudes, scale: str = "log") -> str:
    """The breakdown value in words, with a caution when a departure no larger than the pre-period's would do."""
    if rm.breakdown == math.inf:
        return "the event study shows no departure from parallel trends before the start to scale a bound by"
    size = effect_text(rm.max_pre_violation, scale).lstrip("+")
    words = (
        f"post-period departures from parallel trends would have to be {rm.breakdown:.2f} times the largest "
        f"pre-period one ({size}) to overturn it "
        "(Rambachan-Roth relative magnitudes)"
    )
    if rm.robust(MBAR):
        return words
    return (
        words
        + ": a departure no larger than those before the start could, so the conclusion rests on trends staying parallel"
    )
