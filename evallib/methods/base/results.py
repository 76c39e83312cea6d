"""The tidy-table contract every estimator's result follows.

One row per estimated quantity, always these columns. Summaries, plots, the
report's words and ``results.json`` all derive from this table.

Method names (``method``):
    ``did_twfe``                   two-way fixed-effects difference-in-differences
    ``did_poisson_fe``             the same as a Poisson model with fixed effects (rate ratio)
    ``did_pretrend``               difference in linear pre-period trends, treated vs comparison
    ``did_event_study``            effects by event time; ``did_event_study_pretrend`` its joint lead test
    ``did_callaway_santanna_*``    staggered adoption (``never_treated`` / ``not_yet_treated`` controls)
    ``did_stacked``                staggered adoption: one sub-experiment per cohort with clean comparisons, stacked
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

import html
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

import pandas as pd

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

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


class EstimatorResult:
    """What every estimator's frozen result offers, whatever the method.

    A result holds its tidy rows (:attr:`rows`, one :class:`Estimate` each) and names the row it leads with
    (:attr:`headline`). From those come :meth:`tidy`, :attr:`estimate`, :attr:`p_value`, :meth:`conf_int`,
    :meth:`summary` and the display in JupyterLab; :meth:`plot` draws the result on ``ax=``. Subclasses are
    frozen dataclasses that define ``rows`` (a field or a property) and may set :attr:`headline_term`.
    """

    #: The term of the row the result leads with (the first row when ``None``).
    headline_term: ClassVar[str | None] = None
    #: Every estimate of the result, in the order :meth:`tidy` lists them (a field or a property of each subclass).
    rows: tuple[Estimate, ...]

    def row(self, term: str | None = None) -> Estimate:
        """The row for ``term`` (the headline row when ``None``)."""
        rows = self.rows
        want = self.headline_term if term is None else term
        if want is None:
            return rows[0]
        for r in rows:
            if r.term == want:
                return r
        raise KeyError(f"no term {want!r}; terms: {', '.join(r.term for r in rows)}")

    @property
    def headline(self) -> Estimate:
        """The row the result leads with."""
        return self.row()

    @property
    def estimate(self) -> float:
        """The headline estimate."""
        return self.headline.estimate

    @property
    def p_value(self) -> float:
        """The headline estimate's p-value."""
        return self.headline.p_value

    def tidy(self) -> pd.DataFrame:
        """Every estimate as one tidy table with the columns :data:`TIDY_COLUMNS`."""
        return tidy_frame(list(self.rows))

    def conf_int(self) -> pd.DataFrame:
        """The 95% (``1 - alpha``) interval of every term, indexed by term (columns ``ci_low``, ``ci_high``)."""
        t = self.tidy()
        return t.set_index("term")[["ci_low", "ci_high"]]

    def summary(self) -> str:
        """A plain-text table of the estimates with the method and inference named, and, for a placebo p-value from
        random assignments, how many and its Monte Carlo error.
        """
        head = self.headline
        columns = ["term", "estimate", "std_error", "ci_low", "ci_high", "p_value"]
        errors = self.term_mc_errors()
        lines = [
            f"{type(self).__name__}: {head.outcome} ({head.method}; inference: {head.inference}; scale: {head.scale})",
            f"treated units: {head.n_treated}; comparison units: {head.n_control}",
            self._shown()[columns + (["p_value_mc_error"] if len(errors) > 1 else [])].to_string(
                index=False, float_format=lambda x: f"{x:.4g}"
            ),
        ]
        draws = int(getattr(self, "placebo_draws", 0) or 0)  # a sampled placebo test says so (0: every one tried)
        if len(errors) > 1:
            lines.append(f"placebo p-value from {draws} seeded random assignments for every term (p_value_mc_error)")
        elif errors:  # none for a withheld p-value: its error would give it back
            err = next(iter(errors.values()))
            lines.append(f"placebo p-value from {draws} seeded random assignments (Monte Carlo error {err:.3g})")
        return "\n".join(lines)

    def term_mc_errors(self) -> dict[str, float]:
        """Monte Carlo standard error of each term's sampled placebo p-value, by term; empty when none was sampled.

        The headline term's (``p_value_mc_error``) unless the result states every term's (the controlled ITS).
        """
        if int(getattr(self, "placebo_draws", 0) or 0) <= 0 or not math.isfinite(self.headline.p_value):
            return {}  # none sampled, or the p-value withheld (its error would give it back)
        return {self.headline.term: float(getattr(self, "p_value_mc_error", 0.0) or 0.0)}

    def _shown(self) -> pd.DataFrame:
        """The tidy table as displayed: with each sampled p-value's Monte Carlo error beside it when several terms'
        p-values were sampled (a single one is stated below the table).
        """
        t = self.tidy()
        errors = self.term_mc_errors()
        return t.assign(p_value_mc_error=t["term"].map(errors)) if len(errors) > 1 else t

    def __str__(self) -> str:
        return self.summary()

    def _repr_html_(self) -> str:
        caption = f"{type(self).__name__}: {self.headline.method}, {self.headline.inference} inference"
        body = self._shown().to_html(index=False, float_format=lambda x: f"{x:.4g}")
        return f"<p><b>{html.escape(caption)}</b></p>{body}"

    def plot(self, *, ax: Axes | None = None, title: str = "") -> Figure:
        """Draw the result on ``ax`` (a new figure when ``None``); returns the Figure."""
        raise NotImplementedError(f"{type(self).__name__} has no plot")
