"""Pre-specified robustness checks of a site's primary conclusion, and a verdict that can be right.

Every falsification check is judged by what it can show: alternative comparison sets by agreement with the
main estimate (same sign, overlapping intervals), not by their own significance (ten matched
comparators can never give p < 0.05); a test is run only when its smallest attainable p-value
is below the level; sensitivity to parallel-trend violations follows Rambachan and Roth's
relative-magnitude bound, reported beside the verdict rather than judged (with two pre-period years
the largest departure between noisy leads is mostly noise: at Mbar = 1 it would overturn about a third of
true -20% effects); a check that did not run is reported as not run, never as passed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd

from evallib.evaluation.site.coverage import Coverage
from evallib.evaluation.site.estimators import on_log_scale
from evallib.methods.base.results import Estimate
from evallib.methods.did.sensitivity import RelativeMagnitudes, relative_magnitudes
from evallib.methods.did.twfe import DiD
from evallib.methods.synth.control import SynthResult
from evallib.methods.synth.matching import MatchResult, balance_table, match_comparators
from evallib.protocol.params import SiteProtocol

ALPHA = 0.05
#: Fewest pre-period periods (of any frequency) for the placebo-in-time check: a fake start halfway leaves three a side.
MIN_PLACEBO_TIME_PERIODS = 6
#: The benchmark for the parallel-trends sensitivity's words: a post-period departure as large as the largest
#: pre-period one (a breakdown value at or below it is reported as a caution).
MBAR = 1.0
#: "reported": a sensitivity analysis, given as a number beside the verdict, never counted for or against it.
Status = Literal["agrees", "disagrees", "not run", "reported"]


@dataclass(frozen=True)
class Check:
    """One robustness check: its name, whether it agrees with the main conclusion, and why, in words."""

    name: str
    status: Status
    detail: str

    def to_json_dict(self) -> dict[str, str]:
        """The check as a JSON-ready dict: its name, status and detail."""
        return {"check": self.name, "status": self.status, "detail": self.detail}


@dataclass(frozen=True)
class Robustness:
    """Pre-specified robustness checks of the primary outcome's main estimate.

    * ``placebo_in_time``: the same DiD with a fake start halfway through the pre-period, on
      pre-period data only (an "effect" there means the design finds effects where none can be);
    * ``leave_one_out``: the smallest and largest estimates dropping one comparator;
    * ``matched`` / ``synthetic``: the estimate against the 10 nearest comparators and against a
      synthetic control (trajectory-matched, demeaned logs);
    * ``sensitivity``: Rambachan and Roth's relative-magnitude breakdown value from the event
      study's leads (how many times the largest pre-period departure from parallel trends a
      post-period departure must be to overturn the conclusion).

    ``verdict`` is ``"confirmed"`` when the main estimate is significant at 5% and every
    falsification check that ran (placebo in time, leave one out, matched, synthetic) agrees
    with it, ``"not confirmed"`` when it is significant but some check disagrees, and ``"no
    clear effect"`` when the main estimate is not significant (a null is never "confirmed": the
    report gives the effect the design could have detected instead). The sensitivity's breakdown
    value is reported beside the verdict (:attr:`sensitivity_words`): it measures how much a
    conclusion rests on parallel trends, it cannot show the design wrong, and with leads as noisy
    as two pre-period years give it falls below 1 for about a third of true -20% effects
    (tests/montecarlo/README.md).
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

    @property
    def effect(self) -> bool:
        """Whether the main estimate is a significant decrease or increase (else there is nothing to confirm)."""
        return _conclusion(self.main) in ("decrease", "increase")

    @property
    def disagreements(self) -> tuple[Check, ...]:
        """The checks that disagree with the main estimate."""
        return tuple(c for c in self.checks if c.status == "disagrees")

    @property
    def verdict(self) -> str:
        """``confirmed``, ``not confirmed`` (a check disagrees) or ``no clear effect`` (nothing to confirm)."""
        if not self.effect:
            return "no clear effect"
        return "not confirmed" if self.disagreements else "confirmed"

    @property
    def sensitivity_words(self) -> str:
        """The parallel-trends sensitivity in one sentence ("" when it did not run)."""
        return next((c.detail for c in self.checks if c.status == "reported"), "")

    @property
    def rows(self) -> tuple[Estimate, ...]:
        """The checks' own estimates (the synthetic control's row is a headline estimate, listed there)."""
        return tuple(r for r in (self.placebo_in_time, self.matched_did) if r is not None)

    def to_json_dict(self) -> dict[str, Any]:
        """The robustness checks as a JSON-ready dict (non-finite numbers become null), for results.json."""

        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        rm = self.sensitivity
        return {
            "verdict": self.verdict,
            "checks": [c.to_json_dict() for c in self.checks],
            "leave_one_out_range": [num(self.leave_one_out[0]), num(self.leave_one_out[1])],
            "relative_magnitude_breakdown": None if rm is None else num(rm.breakdown),
            "largest_pre_period_violation": None if rm is None else num(rm.max_pre_violation),
            "matched_comparators": self.matched.units if self.matched is not None else [],
            "synthetic_weights": {}
            if self.synthetic is None
            else {k: round(float(v), 6) for k, v in self.synthetic.weights.items() if v > 0.001},
        }


def _conclusion(row: Estimate) -> str:
    if not math.isfinite(row.p_value):
        return "unknown"
    if row.p_value >= ALPHA:
        return "no clear effect"
    return "decrease" if row.estimate < 0 else "increase"


def _overlap(a: Estimate, b: Estimate) -> bool:
    # A withheld interval (NaN: a plain placebo test on a volatile site) says nothing: treat it as unbounded.
    def lo(r: Estimate) -> float:
        return -math.inf if math.isnan(r.ci_low) else r.ci_low

    def hi(r: Estimate) -> float:
        return math.inf if math.isnan(r.ci_high) else r.ci_high

    return max(lo(a), lo(b)) <= min(hi(a), hi(b))


def _agreement(name: str, main: Estimate, alt: Estimate | None, why_no_test: str = "") -> Check:
    """An alternative comparison agrees when its estimate has the main one's sign and the intervals overlap."""
    if alt is None or not math.isfinite(alt.estimate):
        return Check(name, "not run", "too few comparison units for this comparison set")
    same_sign = (alt.estimate < 0) == (main.estimate < 0)
    overlap = _overlap(main, alt)
    words = f"estimate {alt.estimate:+.3f}" + (
        f", 95% interval {alt.ci_low:+.3f} to {alt.ci_high:+.3f}"
        if math.isfinite(alt.ci_low) and math.isfinite(alt.ci_high)
        else f" ({why_no_test or 'interval unbounded'})"
    )
    if same_sign and overlap:
        return Check(name, "agrees", f"{words}: same direction, overlapping intervals")
    why = "the opposite direction" if not same_sign else "an interval that does not overlap the main one"
    return Check(name, "disagrees", f"{words}: {why}")


def check_robustness(
    protocol: SiteProtocol,
    *,
    outcome: str,
    main: Estimate,
    coverage: Coverage,
    is_proportion: bool,
    values: pd.DataFrame,
    long: pd.DataFrame,
    site_series: pd.Series,
    leads: Mapping[int, float] | None = None,
    n_post_bins: int = 0,
    synth: SynthResult | None = None,
    inference: str = "placebo_in_space",
) -> Robustness:
    """Run the robustness checks of one outcome's main estimate ``main``.

    ``values`` are the counts (period x unit, the site's units and the pool), ``long`` the
    DiD panel on the analysis scale, ``site_series`` the site's summed series; ``leads`` the
    event study's pre-period estimates by event time (the reference included as 0) and
    ``n_post_bins`` its number of post-period event times, for the parallel-trends check; ``synth``
    the site's synthetic control (an alternative comparison set). ``main`` may be any headline
    estimate: ratios and percent changes are compared on the log scale.
    """
    main = on_log_scale(main)
    w = protocol.windows
    cov = coverage
    treated = list(cov.treated_used)
    pool = list(cov.comparators)
    transform = "identity" if is_proportion else "log"
    roles: dict[str, Any] = {"outcome": "value", "unit": "unit", "time": "period", "treated": "treated", "post": "post"}
    common: dict[str, Any] = {
        "transform": transform,
        "inference": inference,
        "n_draws": protocol.n_placebo_draws,
        "seed": protocol.seed,
        "outcome_label": outcome,
    }
    # Placebo in time: a fake start halfway through the pre-period, on pre-period data only.
    pre = long[long["post"] == 0].copy()
    pre_periods = sorted(pre["period"].unique())
    placebo_time = None
    if len(pre_periods) >= MIN_PLACEBO_TIME_PERIODS:
        fake = pre_periods[len(pre_periods) // 2]
        pre["post"] = (pre["period"] >= fake).astype(int)
        r = DiD(**roles, **common).fit(pre).headline
        placebo_time = Estimate(
            **{
                **r.__dict__,
                "term": f"placebo_in_time_{pd.Timestamp(fake):%Y-%m}",
                "method": "did_twfe_placebo_in_time",
                "scale": main.scale,
            }
        )
    # Leave one comparator out (closed form: the DiD is a difference of mean changes).
    y = np.log(values) if transform == "log" else 100 * values  # proportions arrive as percentages already
    if is_proportion:
        y = long.pivot(index="period", columns="unit", values="value")
    post = y.index >= w.post_start
    change = y[post].mean() - y[~post].mean()
    treated_change = change[treated].mean()
    comp = change[pool]
    loo = treated_change - (comp.sum() - comp) / (len(comp) - 1) if len(comp) > 1 else pd.Series([main.estimate])
    matched = matched_row = balance = None
    if not is_proportion and len(pool) >= 3:
        pre_vals = values.loc[~post]
        matched = match_comparators(site_series[~post], pre_vals[pool], k=min(10, len(pool)))
        sub = long[long["unit"].isin(treated + matched.units)]
        r = DiD(**roles, **common).fit(sub).headline
        matched_row = Estimate(**{**r.__dict__, "method": "did_twfe_matched", "term": "treated_x_post"})
        sets = {
            "all eligible": pd.Series(1.0, index=pool),
            "matched": pd.Series(1.0, index=matched.units),
            **({"synthetic": synth.weights} if synth is not None else {}),
        }
        balance = balance_table(site_series[~post], pre_vals[pool], sets)
    sensitivity = None
    if leads and n_post_bins:
        sensitivity = relative_magnitudes(leads, n_post_periods=n_post_bins, ci_low=main.ci_low, ci_high=main.ci_high)
    checks = _judge(main, placebo_time, loo, matched_row, synth, sensitivity, n_comparators=len(pool))
    return Robustness(
        outcome=outcome,
        main=main,
        placebo_in_time=placebo_time,
        leave_one_out=(float(loo.min()), float(loo.max())),
        matched=matched,
        matched_did=matched_row,
        synthetic=synth,
        balance=balance,
        sensitivity=sensitivity,
        checks=checks,
    )


def _judge(
    main: Estimate,
    placebo_time: Estimate | None,
    loo: pd.Series,
    matched_row: Estimate | None,
    synth: SynthResult | None,
    sensitivity: RelativeMagnitudes | None,
    *,
    n_comparators: int,
) -> tuple[Check, ...]:
    checks = []
    # A placebo test is only worth running when it could reach p < 0.05: with one treated unit
    # its smallest attainable p is 1 / (comparators + 1).
    if placebo_time is None:
        checks.append(
            Check("placebo in time", "not run", f"fewer than {MIN_PLACEBO_TIME_PERIODS} periods before the start")
        )
    elif 1 / (n_comparators + 1) > ALPHA:
        checks.append(Check("placebo in time", "not run", "too few comparison units for the test to reach p < 0.05"))
    else:
        fake = placebo_time.p_value < ALPHA
        detail = f"a fake start in the pre-period gives {placebo_time.estimate:+.3f}, p = {placebo_time.p_value:.2f}"
        checks.append(
            Check(
                "placebo in time",
                "disagrees" if fake else "agrees",
                detail
                + (": the design finds an effect where none can be" if fake else ": no effect where none can be"),
            )
        )
    effect = _conclusion(main) in ("decrease", "increase")
    lo, hi = float(loo.min()), float(loo.max())
    if not effect:
        checks.append(
            Check("leave one comparator out", "not run", "no effect to lose: the main estimate is not significant")
        )
    else:
        stable = (lo < 0) == (hi < 0) == (main.estimate < 0)
        checks.append(
            Check(
                "leave one comparator out",
                "agrees" if stable else "disagrees",
                f"estimates range from {lo:+.3f} to {hi:+.3f}"
                + ("" if stable else ": one comparator changes the sign"),
            )
        )
    checks.append(_agreement("10 matched comparators", main, matched_row, "ten comparators cannot give p < 0.05"))
    checks.append(_agreement("synthetic control", main, on_log_scale(synth.headline) if synth is not None else None))
    if not effect:
        checks.append(Check("parallel-trends sensitivity", "not run", "no effect to overturn"))
    elif sensitivity is None or not math.isfinite(sensitivity.breakdown) and sensitivity.breakdown != math.inf:
        checks.append(Check("parallel-trends sensitivity", "not run", "fewer than two pre-period event times"))
    elif not (math.isfinite(main.ci_low) and math.isfinite(main.ci_high)) or main.ci_low <= 0 <= main.ci_high:
        # No bound to scale: the interval is unbounded, withheld or already holds zero.
        checks.append(Check("parallel-trends sensitivity", "not run", "the interval has no finite end away from zero"))
    else:
        checks.append(Check("parallel-trends sensitivity", "reported", _sensitivity_detail(sensitivity)))
    return tuple(checks)


def _sensitivity_detail(rm: RelativeMagnitudes) -> str:
    """The breakdown value in words, with a caution when a departure no larger than the pre-period's would do."""
    if rm.breakdown == math.inf:
        return "the event study shows no departure from parallel trends before the start to scale a bound by"
    words = (
        f"post-period departures from parallel trends would have to be {rm.breakdown:.2f} times the largest "
        f"pre-period one ({rm.max_pre_violation:.3f} on the estimate's scale) to overturn it "
        "(Rambachan-Roth relative magnitudes)"
    )
    if rm.robust(MBAR):
        return words
    return (
        words
        + ": a departure no larger than those before the start could, so the conclusion rests on trends staying parallel"
    )
