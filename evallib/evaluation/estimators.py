"""The headline estimators a protocol can lead with, fitted the same way for a site and for a fake site.

Every headline estimate carries placebo-in-space inference with its interval found by
inverting the same test, so p-value and interval always agree:

* ``did``: two-way fixed-effects difference-in-differences, placebo test;
* ``did_studentized``: the same estimate, each unit's change scaled by its own pre-period noise
  (protects against a volatile site);
* ``rate_ratio``: Poisson model of the counts with unit and month effects (a rate ratio);
* ``controlled_its``: the site's series relative to its comparison pool's, segmented regression,
  mean effect over the follow-up, every comparison unit a placebo site;
* ``synthetic_control``: a weighted mix of comparison units tracking the site before the start
  (mean gap after it);
* ``synthetic_did``: synthetic difference-in-differences (unit and time weights).

Which one a protocol leads with (``primary_estimator``) is chosen from the calibration study
(:mod:`evallib.evaluation.calibration`): the most precise estimator that holds its size on the
real data. The others are reported beside it, and the findings say where they disagree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from evallib.methods.did import DiD
from evallib.methods.its_placebo import ControlledITS
from evallib.methods.matching import match_comparators
from evallib.methods.rates import PoissonDiD
from evallib.methods.results import Estimate
from evallib.methods.sdid import SyntheticDiD
from evallib.methods.synth import SyntheticControl
from evallib.protocol.params import PRIMARY_ESTIMATORS

#: The estimators, in the order reports list them; the first is the default primary estimator. The
#: protocol layer keeps the same names (``PRIMARY_ESTIMATORS``), which params files may name.
HEADLINE_ESTIMATORS: tuple[str, ...] = PRIMARY_ESTIMATORS
ESTIMATOR_LABELS = {
    "did": "difference-in-differences",
    "did_studentized": "difference-in-differences, studentized test",
    "rate_ratio": "rate ratio (Poisson)",
    "controlled_its": "controlled interrupted time series",
    "synthetic_control": "synthetic control",
    "synthetic_did": "synthetic difference-in-differences",
}
#: A percentage's scales once labelled: an estimator fitted on the percentage's own scale gives points.
PERCENT_SCALES = {"level": "percentage_points", "level_per_year": "percentage_points_per_year"}
#: Donors for the synthetic control: the comparison units most like the site before the start.
SYNTH_DONORS = 40
#: Placebo draws for the costlier estimators when several units are treated.
COSTLY_DRAWS = 199


@dataclass(frozen=True)
class Headline:
    """One headline estimate: the estimator's name, its tidy row and the fitted result (for plots)."""

    name: str
    row: Estimate
    result: Any = field(default=None, repr=False, compare=False)

    @property
    def label(self) -> str:
        return ESTIMATOR_LABELS[self.name]


@dataclass(frozen=True)
class DesignData:
    """What every headline estimator needs for one outcome: the panel with its DiD roles and the counts.

    ``long`` has columns ``period, unit, value, treated, post`` (counts, or percentages for a
    proportion); ``counts`` the same rows with the counts in ``value`` and, for a rate or
    proportion, its ``exposure``.
    """

    long: pd.DataFrame = field(repr=False)
    counts: pd.DataFrame = field(repr=False)
    start: pd.Timestamp
    transform: str = "log"
    n_draws: int = 999
    seed: int = 2015
    outcome: str = ""
    periods_per_year: int = 12

    @property
    def treated_units(self) -> list[str]:
        return sorted(self.long.loc[self.long["treated"] == 1, "unit"].unique())

    @property
    def comparison_units(self) -> list[str]:
        return sorted(self.long.loc[self.long["treated"] == 0, "unit"].unique())

    def restricted_to(self, units: Iterable[str]) -> DesignData:
        """The same design on these units only (another comparison set: the treated units are named too)."""
        keep = set(units)
        return replace(
            self, long=self.long[self.long["unit"].isin(keep)], counts=self.counts[self.counts["unit"].isin(keep)]
        )

    def with_fake_start(self, fake: pd.Timestamp) -> DesignData:
        """The pre-period alone with the start moved to ``fake`` (a placebo in time: no effect can exist there)."""

        def cut(frame: pd.DataFrame) -> pd.DataFrame:
            pre = frame[frame["post"] == 0].copy()
            pre["post"] = (pre["period"] >= fake).astype(int)
            return pre

        return replace(self, long=cut(self.long), counts=cut(self.counts), start=fake)


_ROLES = {"outcome": "value", "unit": "unit", "time": "period", "treated": "treated", "post": "post"}


def _did(d: DesignData, inference: str) -> Headline:
    res = DiD(
        **_ROLES, transform=d.transform, inference=inference, n_draws=d.n_draws, seed=d.seed, outcome_label=d.outcome
    ).fit(d.long)
    name = "did" if inference == "placebo_in_space" else "did_studentized"
    return Headline(name, res.row, res)


def _rate_ratio(d: DesignData) -> Headline:
    exposure = "exposure" if "exposure" in d.counts.columns else None
    res = PoissonDiD(
        **_ROLES,
        exposure=exposure,
        inference="placebo_in_space",
        n_draws=min(d.n_draws, COSTLY_DRAWS),
        seed=d.seed,
        outcome_label=d.outcome,
    ).fit(d.counts)
    return Headline("rate_ratio", res.row, res)


def _controlled_its(d: DesignData) -> Headline:
    res = ControlledITS(
        outcome="value",
        unit="unit",
        time="period",
        treated="treated",
        start=d.start,
        transform=d.transform,  # type: ignore[arg-type]
        harmonics=min(2, (d.periods_per_year - 1) // 2),  # none for yearly data, one pair for quarterly
        periods_per_year=d.periods_per_year,
        horizons=(d.periods_per_year, 2 * d.periods_per_year),
        n_draws=d.n_draws,
        seed=d.seed,
        outcome_label=d.outcome,
    ).fit(d.long)
    return Headline("controlled_its", res.row("mean_post_effect"), res)


def _synthetic_control(d: DesignData) -> Headline:
    wide = d.long.pivot(index="period", columns="unit", values="value")
    treated = sorted(d.long.loc[d.long["treated"] == 1, "unit"].unique())
    site = wide[treated].sum(axis=1) if d.transform == "log" else wide[treated].mean(axis=1)
    pool = wide.drop(columns=treated)
    pre = wide.index < d.start
    positive = bool((wide > 0).all().all())
    n_donors = min(SYNTH_DONORS, pool.shape[1])
    donors = match_comparators(site[pre], pool.loc[pre], k=n_donors).units if positive else list(pool.columns)
    frame = pd.concat([site.rename("SITE"), pool[donors]], axis=1)
    y = np.log(frame) if d.transform == "log" else frame
    data = y.stack().rename("y").reset_index()
    data.columns = ["period", "unit", "y"]
    res = SyntheticControl(
        "y",
        "unit",
        "period",
        "SITE",
        d.start,
        demean=True,
        seed=d.seed,
        outcome_label=d.outcome,
        scale="log" if d.transform == "log" else "level",
    ).fit(data)
    return Headline("synthetic_control", res.row, res)


def _synthetic_did(d: DesignData) -> Headline:
    res = SyntheticDiD(
        **_ROLES,
        transform=d.transform,  # type: ignore[arg-type]
        n_draws=min(d.n_draws, COSTLY_DRAWS),
        seed=d.seed,
        outcome_label=d.outcome,
    ).fit(d.long)
    return Headline("synthetic_did", res.row, res)


_FITS = {
    "did": lambda d: _did(d, "placebo_in_space"),
    "did_studentized": lambda d: _did(d, "placebo_studentized"),
    "rate_ratio": _rate_ratio,
    "controlled_its": _controlled_its,
    "synthetic_control": _synthetic_control,
    "synthetic_did": _synthetic_did,
}


def fit_headline(name: str, data: DesignData) -> Headline:
    """Fit one headline estimator by name (see :data:`HEADLINE_ESTIMATORS`)."""
    return _FITS[name](data)


def leave_one_out(name: str, data: DesignData) -> pd.Series:
    """The estimator's point estimate refitted without each comparison unit in turn, indexed by that unit.

    Estimates only (no placebo inference: the check reads their signs), on the log scale for proportional
    effects. The DiD is a difference of mean changes (closed form); synthetic DiD refits every set of
    weights in one batch (:meth:`~evallib.methods.sdid.SyntheticDiD.leave_one_out`); any other estimator
    is refitted once per comparison unit.
    """
    treated, comparators = data.treated_units, data.comparison_units
    if name in ("did", "did_studentized"):  # the studentized test shares the DiD's estimate
        wide = data.long.pivot(index="period", columns="unit", values="value")
        y = np.log(wide) if data.transform == "log" else wide
        post = y.index >= data.start
        change = y[post].mean() - y[~post].mean()
        comp = change[comparators]
        return change[treated].mean() - (comp.sum() - comp) / (len(comp) - 1)
    if name == "synthetic_did":
        return SyntheticDiD(**_ROLES, transform=data.transform, outcome_label=data.outcome).leave_one_out(  # type: ignore[arg-type]
            data.long
        )
    one = replace(data, n_draws=1)  # one random draw when several units are treated: the estimate is all we read
    return pd.Series(
        {
            u: on_log_scale(
                fit_headline(name, one.restricted_to([*treated, *(c for c in comparators if c != u)])).row
            ).estimate
            for u in comparators
        },
        name="estimate",
    )


def fit_headlines(data: DesignData, names: tuple[str, ...] = HEADLINE_ESTIMATORS) -> dict[str, Headline]:
    """Every named headline estimator on the same design, in the order given."""
    return {name: fit_headline(name, data) for name in names}


def on_log_scale(row: Estimate) -> Estimate:
    """The row with its estimate and interval as differences in logs (proportional effects comparable).

    Rate ratios become their logs and percent changes ``log(1 + x/100)``; rows on other scales
    (logs already, percentage points, levels) are returned as they are.
    """

    def conv(v: float) -> float:
        if not math.isfinite(v):
            return v
        if row.scale == "rate_ratio":
            return math.log(v) if v > 0 else -math.inf
        return math.log1p(v / 100) if v > -100 else -math.inf

    if row.scale not in ("rate_ratio", "percent"):
        return row
    return Estimate(
        **{
            **row.__dict__,
            "estimate": conv(row.estimate),
            "ci_low": conv(row.ci_low),
            "ci_high": conv(row.ci_high),
            "scale": "log",
        }
    )
