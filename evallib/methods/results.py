"""The tidy-table contract every estimator's result follows.

One row per estimated quantity, always these columns. Summaries, plots, the
report's words and ``results.json`` all derive from this table.

Method names (``method``):
    ``did_twfe``                   two-way fixed-effects difference-in-differences
    ``did_poisson_fe``             the same as a Poisson model with fixed effects (rate ratio)
    ``did_pretrend``               difference in linear pre-period trends, treated vs comparison
    ``did_event_study``            effects by event time; ``did_event_study_pretrend`` its joint lead test
    ``did_callaway_santanna_*``    staggered adoption (``never_treated`` / ``not_yet_treated`` controls)
    ``its_segmented``              segmented regression on the site's own series (OLS)
    ``its_gls_ar1``                the same by GLS with AR(1) errors (REML); ``*_gls_ar1`` for a controlled one
    ``its_controlled_*``           the same against a comparison series (difference or two-group)
    ``its_controlled_placebo``     the treated units against the comparison pool, each comparison unit a placebo
    ``its_arima``                  the same with ARMA errors (SARIMAX)
    ``its_poisson``                segmented Poisson / quasi-Poisson regression with an offset
    ``<method>_placebo_in_time``   robustness: that estimator re-fitted with a fake start in the pre-period
                                   (e.g. ``did_synthetic_placebo_in_time``, ``did_twfe_placebo_in_time``)
    ``<method>_matched``           robustness: that estimator re-fitted against the 10 most similar comparators
                                   (e.g. ``did_synthetic_matched``, ``did_twfe_matched``)

Inference names (``inference``):
    ``placebo_in_space``   rank p-value among comparison units given the treatment in turn;
                           interval by inverting that permutation test
    ``placebo_studentized``  the same test on each unit's change divided by its pre-period noise
    ``ar1_reml_bootstrap_t`` GLS with REML AR(1) errors, parametric bootstrap-t p-value and interval
    ``*_approx``           intervals that do not reach their nominal coverage in the Monte Carlo suite
                           (``newey_west_approx``, ``ols_approx``, ``arima_approx``,
                           ``arima_forecast_approx``, ``driscoll_kraay_approx``): descriptions, not tests
    ``wild_bootstrap_*``   restricted wild cluster bootstrap-t (Webb or Rademacher weights)
    ``cluster_cr1``        cluster-robust (by unit) SE with the CR1 small-sample factor
    ``analytic_influence_function``  Callaway-Sant'Anna influence-function SEs
    ``hc1``                heteroskedasticity-robust SE
    ``model_based``        the GLM's own (Poisson, or quasi-Poisson scaled) SE

Scale names (``scale``):
    ``log``                difference in natural logs; ``exp(estimate) - 1`` is the proportional change
    ``log_per_year``       difference in log growth per year
    ``percentage_points``  difference in a percentage
    ``level``              difference in the outcome's own units
    ``rate_ratio``         ratio of rates (already exponentiated); ``std_error`` on the log scale
    ``statistic``          a test statistic; read the p-value
    ``percent``            a percent change; ``count`` a number of events (model output)
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

TIDY_COLUMNS: tuple[str, ...] = (
    "outcome",
    "term",
    "estimate",
    "std_error",
    "ci_low",
    "ci_high",
    "p_value",
    "method",
    "inference",
    "scale",
    "n_treated",
    "n_control",
)


@dataclass(frozen=True)
class Estimate:
    """One row of a tidy table."""

    outcome: str
    term: str
    estimate: float
    std_error: float
    ci_low: float
    ci_high: float
    p_value: float
    method: str
    inference: str
    scale: str
    n_treated: int
    n_control: int

    def as_dict(self) -> dict[str, object]:
        """JSON-safe mapping (NaN and infinities become None)."""
        out: dict[str, object] = {}
        for c in TIDY_COLUMNS:
            v = getattr(self, c)
            if isinstance(v, float) and not math.isfinite(v):
                v = None
            out[c] = v
        return out


def tidy_frame(rows: list[Estimate] | tuple[Estimate, ...]) -> pd.DataFrame:
    """A DataFrame with exactly :data:`TIDY_COLUMNS`."""
    return pd.DataFrame([{c: getattr(r, c) for c in TIDY_COLUMNS} for r in rows], columns=list(TIDY_COLUMNS))


def percent_change(log_estimate: float) -> float:
    """Proportional change in percent implied by a log-scale estimate."""
    return 100.0 * (math.exp(log_estimate) - 1.0) if math.isfinite(log_estimate) else float("nan")
