"""Pre-specified robustness checks of a site's primary DiD conclusion, and their verdict."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from evallib.evaluation.coverage import Coverage
from evallib.methods.did import DiD
from evallib.methods.matching import MatchResult, balance_table, match_comparators
from evallib.methods.results import Estimate
from evallib.methods.synth import SyntheticControl, SynthResult
from evallib.protocol.params import SiteProtocol


@dataclass(frozen=True)
class Robustness:
    """Pre-specified robustness checks of the primary outcome's DiD conclusion.

    * ``placebo_in_time``: the same DiD with a fake start halfway through the
      pre-period, on pre-period data only (an "effect" there means the design
      finds effects where none can be);
    * ``leave_one_out``: the smallest and largest estimates dropping one comparator;
    * ``matched`` / ``synthetic``: the estimate against the 10 nearest comparators
      and against a synthetic control (trajectory-matched, demeaned logs);
    * ``trend_breakdown``: the differential linear trend (log points per year) that
      would be needed to overturn the conclusion, against the largest trend the
      pre-period allows (upper end of the pre-trend interval). This is a simple
      linear-extrapolation version of Rambachan and Roth's bounds: a trend of M per
      year biases the DiD by M times the gap in years between the mean post- and
      mean pre-period months.
    """

    outcome: str
    main: Estimate
    placebo_in_time: Estimate | None
    leave_one_out: tuple[float, float]
    matched: MatchResult | None
    matched_did: Estimate | None
    synthetic: SynthResult | None
    balance: pd.DataFrame | None = field(repr=False)
    trend_gap_years: float = float("nan")
    trend_breakdown: float = float("nan")
    pretrend_bound: float = float("nan")
    checks: tuple[tuple[str, bool, str], ...] = ()

    @property
    def survives(self) -> bool:
        return all(ok for _, ok, _ in self.checks)

    @property
    def rows(self) -> tuple[Estimate, ...]:
        out = [r for r in (self.placebo_in_time, self.matched_did) if r is not None]
        if self.synthetic is not None:
            out.append(self.synthetic.row)
        return tuple(out)

    def to_json_dict(self) -> dict[str, Any]:
        def num(v: float) -> float | None:
            return float(v) if math.isfinite(v) else None

        return {
            "survives": self.survives,
            "checks": [{"check": name, "passed": ok, "detail": detail} for name, ok, detail in self.checks],
            "leave_one_out_range": [num(self.leave_one_out[0]), num(self.leave_one_out[1])],
            "trend_breakdown_per_year": num(self.trend_breakdown),
            "pretrend_bound_per_year": num(self.pretrend_bound),
            "matched_comparators": self.matched.units if self.matched is not None else [],
            "synthetic_weights": {}
            if self.synthetic is None
            else {k: round(float(v), 6) for k, v in self.synthetic.weights.items() if v > 0.001},
        }


def _conclusion(row: Estimate) -> str:
    if not math.isfinite(row.p_value):
        return "unknown"
    if row.p_value >= 0.05:
        return "no clear effect"
    return "decrease" if row.estimate < 0 else "increase"


def check_robustness(
    protocol: SiteProtocol,
    *,
    outcome: str,
    main: Estimate,
    pretrend: Estimate,
    coverage: Coverage,
    is_proportion: bool,
    values: pd.DataFrame,
    long: pd.DataFrame,
    site_series: pd.Series,
) -> Robustness:
    """Run the robustness checks of one outcome's DiD estimate ``main``.

    ``values`` are the counts (period x unit, the site's units and the pool), ``long``
    the DiD panel on the analysis scale and ``site_series`` the site's summed series.
    """
    w = protocol.windows
    cov = coverage
    treated = list(cov.treated_used)
    pool = list(cov.comparators)
    transform = "identity" if is_proportion else "log"
    roles = {"outcome": "value", "unit": "unit", "time": "period", "treated": "treated", "post": "post"}
    common = {
        "transform": transform,
        "inference": "placebo_in_space",
        "n_draws": protocol.n_placebo_draws,
        "seed": protocol.seed,
        "outcome_label": outcome,
    }
    # Placebo in time: a fake start halfway through the pre-period, on pre-period data only.
    pre = long[long["post"] == 0].copy()
    pre_periods = sorted(pre["period"].unique())
    placebo_time = None
    if len(pre_periods) >= 12:
        fake = pre_periods[len(pre_periods) // 2]
        pre["post"] = (pre["period"] >= fake).astype(int)
        r = DiD(**roles, **common).fit(pre).row
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
    post = y.index >= w["post_start"]
    change = y[post].mean() - y[~post].mean()
    treated_change = change[treated].mean()
    comp = change[pool]
    loo = treated_change - (comp.sum() - comp) / (len(comp) - 1) if len(comp) > 1 else pd.Series([main.estimate])
    matched = matched_row = synth = balance = None
    if not is_proportion and len(pool) >= 3:
        pre_vals = values.loc[~post]
        matched = match_comparators(site_series[~post], pre_vals[pool], k=min(10, len(pool)))
        sub = long[long["unit"].isin(treated + matched.units)]
        r = DiD(**roles, **common).fit(sub).row
        matched_row = Estimate(**{**r.__dict__, "method": "did_twfe_matched", "term": "treated_x_post"})
        # Donors: the trusts most like the site, fewer than the pre-period months, so that the
        # synthetic control cannot interpolate the pre-period exactly (which would make the
        # RMSPE-ratio test meaningless).
        n_donors = max(5, min(20, int((~post).sum()) // 2, len(pool)))
        donors = match_comparators(site_series[~post], pre_vals[pool], k=n_donors).units
        synth_data = (
            np.log(pd.concat([site_series.rename("SITE"), values[donors]], axis=1)).stack().rename("y").reset_index()
        )
        synth_data.columns = ["period", "unit", "y"]
        synth = SyntheticControl(
            "y",
            "unit",
            "period",
            "SITE",
            w["post_start"],
            demean=True,
            seed=protocol.seed,
            outcome_label=outcome,
            scale="log",
        ).fit(synth_data)
        sets = {
            "all eligible": pd.Series(1.0, index=pool),
            "matched": pd.Series(1.0, index=matched.units),
            "synthetic": synth.weights,
        }
        balance = balance_table(site_series[~post], pre_vals[pool], sets)
    # Linear-trend sensitivity.
    months = np.arange(len(y.index))
    gap_years = float((months[post].mean() - months[~post].mean()) / 12)
    pt = pretrend
    bound = (
        max(abs(pt.ci_low), abs(pt.ci_high)) if math.isfinite(pt.ci_low) and math.isfinite(pt.ci_high) else float("inf")
    )
    conclusion = _conclusion(main)
    if conclusion in ("decrease", "increase") and math.isfinite(main.ci_low) and math.isfinite(main.ci_high):
        breakdown = min(abs(main.ci_low), abs(main.ci_high)) / gap_years
    else:
        breakdown = 0.0
    checks: list[tuple[str, bool, str]] = []
    if placebo_time is not None:
        checks.append(
            (
                "placebo in time",
                placebo_time.p_value >= 0.10,
                f"a fake start in the pre-period gives p = {placebo_time.p_value:.2f}",
            )
        )
    lo_loo, hi_loo = float(loo.min()), float(loo.max())
    same_sign = (lo_loo > 0) == (hi_loo > 0) == (main.estimate > 0) if conclusion != "no clear effect" else True
    checks.append(("leave one comparator out", bool(same_sign), f"estimates range from {lo_loo:+.3f} to {hi_loo:+.3f}"))
    for name, row in (("matched comparators", matched_row), ("synthetic control", synth.row if synth else None)):
        if row is None:
            continue
        alt = _conclusion(row)
        ok = alt == conclusion if conclusion != "no clear effect" else alt in ("no clear effect", "unknown")
        checks.append((name, ok, f"estimate {row.estimate:+.3f}, p = {row.p_value:.2f} ({alt})"))
    if conclusion in ("decrease", "increase"):
        checks.append(
            (
                "linear violations of parallel trends",
                breakdown > bound,
                f"a differential trend of {breakdown:.3f} per year would overturn it; the pre-period allows up to {bound:.3f}",
            )
        )
    return Robustness(
        outcome=outcome,
        main=main,
        placebo_in_time=placebo_time,
        leave_one_out=(lo_loo, hi_loo),
        matched=matched,
        matched_did=matched_row,
        synthetic=synth,
        balance=balance,
        trend_gap_years=gap_years,
        trend_breakdown=breakdown,
        pretrend_bound=bound,
        checks=tuple(checks),
    )
