"""Recompute the Sicily interrupted-time-series reference values with statsmodels GLM.

The same four models as ``bernal2017_sicily.R`` (Lopez Bernal, Cummins & Gasparrini 2017, whose R code uses
``glm`` with ``offset(log(stdpop))``, ``tsModel::harmonic(month, 2, 12)`` and ``Epi::ci.exp``). Run by hand from the
repository root, with statsmodels installed (it is a core dependency)::

    python tests/reference/sicily/statsmodels_sicily.py > tests/reference/sicily/statsmodels_sicily.out

It prints ``name = value`` lines named as in ``bernal2017_sicily.out`` (the R output), at full precision.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm
from scipy.stats import norm
from statsmodels.genmod.generalized_linear_model import GLMResults
from statsmodels.stats.diagnostic import acorr_ljungbox

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "sicily.csv"
Z = norm.ppf(0.975)  # Epi::ci.exp: Wald intervals with the normal quantile


def _design(d: pd.DataFrame, harmonics: int = 0, slope: bool = False) -> pd.DataFrame:
    X = pd.DataFrame({"const": 1.0, "smokban": d["smokban"], "time": d["time"]}, index=d.index)
    if slope:  # the authors' I(time - 36):smokban, 1 in the ban's first month
        X["slope"] = (d["time"] - 36) * d["smokban"]
    for k in range(1, harmonics + 1):  # tsModel::harmonic(month, k, 12)
        X[f"sin{k}"] = np.sin(2 * np.pi * k * d["month"] / 12)
        X[f"cos{k}"] = np.cos(2 * np.pi * k * d["month"] / 12)
    return X


def _fit(d: pd.DataFrame, quasi: bool, harmonics: int = 0, slope: bool = False) -> GLMResults:
    model = sm.GLM(d["aces"], _design(d, harmonics, slope), family=sm.families.Poisson(), offset=np.log(d["stdpop"]))
    return model.fit(scale="X2" if quasi else 1.0)  # quasi-Poisson: Pearson chi-square / residual df


def _print_ratio(name: str, fit: GLMResults, term: str) -> None:
    b, se = fit.params[term], fit.bse[term]
    print(f"{name}.rate_ratio = {np.exp(b):.10f}")
    print(f"{name}.ci_low = {np.exp(b - Z * se):.10f}")
    print(f"{name}.ci_high = {np.exp(b + Z * se):.10f}")


def main() -> None:
    d = pd.read_csv(DATA)
    print(f"# statsmodels {version('statsmodels')}, scipy {version('scipy')}; data tests/fixtures/sicily.csv")
    _print_ratio("poisson", _fit(d, quasi=False), "smokban")
    quasi = _fit(d, quasi=True)
    _print_ratio("quasipoisson", quasi, "smokban")
    print(f"quasipoisson.dispersion = {quasi.scale:.10f}")
    harmonic = _fit(d, quasi=True, harmonics=2)
    _print_ratio("harmonic", harmonic, "smokban")
    print(f"harmonic.dispersion = {harmonic.scale:.10f}")
    print(f"harmonic.trend_per_year = {np.exp(12 * harmonic.params['time']):.10f}")
    lb = acorr_ljungbox(harmonic.resid_deviance, lags=[12])
    print("harmonic.ljung_box_lags = 12")
    print(f"harmonic.ljung_box_p = {lb['lb_pvalue'].iloc[0]:.10f}")
    slope = _fit(d, quasi=True, harmonics=2, slope=True)
    _print_ratio("slope_change.step", slope, "smokban")
    _print_ratio("slope_change.slope", slope, "slope")


if __name__ == "__main__":
    main()
