"""Segmented Poisson, quasi-Poisson and negative binomial ITS with a population offset (rate ratios).

The count model of Bernal, Cummins & Gasparrini (2017).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.genmod import families
from statsmodels.genmod.generalized_linear_model import GLM

from evallib.errors import DataError
from evallib.methods.base.design import Design
from evallib.methods.its.model import (
    ITSResult,
    SlopeCoding,
    check_series,
    intervention_columns,
    its_design,
    its_result,
    its_row,
)


@dataclass(frozen=True)
class PoissonITS:
    """Segmented Poisson, quasi-Poisson or negative binomial regression with an exposure offset.

    Parameters
    ----------
    start : str or Timestamp, optional
        First period of the intervention.
    harmonics : int
        Fourier pairs for seasonality (0 for none).
    slope_change : bool
        Add a change in trend after the start.
    slope_coding : {"itsa", "bernal2017"}
        With ``slope_change``: ``itsa`` (default) makes ``level_change`` the rate ratio of
        the first post period (time since the start is 0 there); ``bernal2017`` reproduces
        the published Sicily model (1 there), whose step is one month's slope change short
        of that jump. See :func:`evallib.methods.its.model.its_design`.
    dispersion : {"poisson", "quasi", "negative_binomial"}
        ``quasi`` scales SEs by the Pearson dispersion (reported in the result);
        ``negative_binomial`` fits NB2 by maximum likelihood (``dispersion`` is its alpha).

    Notes
    -----
    Estimand: the rate ratio at the intervention (step) and, with ``slope_change``,
    the ratio of monthly growth rates after vs before, relative to the projected
    pre-intervention trend, with counts per unit of exposure (population).
    ``std_error`` is on the log scale; estimate and interval are rate ratios. The
    result's ``trend_per_year`` is the underlying (pre-intervention) trend as a
    yearly rate ratio.
    """

    start: str | pd.Timestamp | None = None
    harmonics: int = 0
    periods_per_year: int = 12
    slope_change: bool = False
    dispersion: Literal["poisson", "quasi", "negative_binomial"] = "poisson"
    alpha: float = 0.05
    outcome_label: str = "outcome"
    slope_coding: SlopeCoding = "itsa"

    def fit(self, counts: Design | pd.Series, exposure: pd.Series | None = None) -> ITSResult:
        """Fit to the treated units' summed counts of a :class:`~evallib.methods.base.design.Design` (their summed
        exposure as the offset, from its start), or to ``counts`` with an optional ``exposure``.
        """
        if isinstance(counts, Design):
            d = counts
            num = d.counts if d.counts is not None else d.values
            total = pd.Series(num[d.treated].sum(axis=0), index=d.periods)
            exp = None if d.exposure is None else pd.Series(d.exposure[d.treated].sum(axis=0), index=d.periods)
            model = self if self.start is not None else replace(self, start=d.start)
            return model.fit(total, exp)
        if self.start is None:
            raise DataError("PoissonITS: give the start (the first period of the intervention)")
        start = pd.Timestamp(self.start)
        X = its_design(
            pd.DatetimeIndex(counts.sort_index().index),
            [start],
            slope=self.slope_change,
            seasonality="fourier" if self.harmonics else "none",
            harmonics=self.harmonics,
            periods_per_year=self.periods_per_year,
            slope_coding=self.slope_coding,
        )
        s = check_series(counts, start, X.shape[1], f"Poisson ITS of {self.outcome_label}")
        if (s < 0).any() or not np.allclose(s, np.round(s)):
            raise DataError(f"Poisson ITS of {self.outcome_label}: counts must be non-negative whole numbers")
        offset = None
        if exposure is not None:
            e = exposure.reindex(s.index).astype(float)
            if e.isna().any() or (e <= 0).any():
                raise DataError(f"Poisson ITS of {self.outcome_label}: exposure must be positive for every period")
            offset = np.log(e.to_numpy())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            if self.dispersion == "negative_binomial":
                from statsmodels.discrete.discrete_model import NegativeBinomial

                nb = NegativeBinomial(s.to_numpy(), X.to_numpy(), offset=offset, loglike_method="nb2").fit(
                    disp=False, maxiter=200
                )
                params = pd.Series(np.asarray(nb.params)[: X.shape[1]], index=X.columns)
                se = pd.Series(np.asarray(nb.bse)[: X.shape[1]], index=X.columns)
                scale_value = float(np.asarray(nb.params)[-1])
                resid_raw = (s.to_numpy() - nb.predict(X.to_numpy(), offset=offset)) / np.sqrt(
                    nb.predict(X.to_numpy(), offset=offset)
                )
            else:
                model = GLM(s.to_numpy(), X.to_numpy(), family=families.Poisson(), offset=offset)
                fit = model.fit(scale="X2" if self.dispersion == "quasi" else 1.0)
                params = pd.Series(fit.params, index=X.columns)
                se = pd.Series(fit.bse, index=X.columns)
                scale_value = float(fit.scale)
                resid_raw = np.asarray(fit.resid_deviance)
        z = stats.norm.ppf(1 - self.alpha / 2)
        terms = ["level_change"] + (["slope_change"] if self.slope_change else [])
        rows = []
        for term in terms:
            b, e = params[term], se[term]
            rows.append(
                its_row(
                    self.outcome_label,
                    term,
                    np.exp(b),
                    e,
                    np.exp(b - z * e),
                    np.exp(b + z * e),
                    2 * stats.norm.sf(abs(b / e)),
                    "its_poisson" if self.dispersion != "negative_binomial" else "its_negative_binomial",
                    "model_based",
                    "rate_ratio",
                )
            )
        X_cf = X.assign(**{c: 0.0 for c in intervention_columns(X)})
        off = offset if offset is not None else 0.0
        fitted = np.exp(X.to_numpy() @ params.to_numpy() + off)
        cf = np.exp(X_cf.to_numpy() @ params.to_numpy() + off)
        return its_result(
            rows,
            s,
            start,
            fitted,
            cf,
            resid_raw,
            self.periods_per_year,
            dispersion=scale_value,
            warnings=tuple(str(w.message) for w in caught),
            residuals=pd.Series(resid_raw, index=s.index),
            errors="model_based",
            trend_per_year=float(np.exp(params["time"] * self.periods_per_year)),
        )
