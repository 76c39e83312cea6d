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
(:mod:`evallib.evaluation.studies.calibration`): the most precise estimator that holds its size on the
real data. The others are reported beside it, and the findings say where they disagree.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from evallib.methods.base.arrays import Transform
from evallib.methods.base.design import Design
from evallib.methods.base.results import Estimate
from evallib.methods.did.rate_ratio import PoissonDiD
from evallib.methods.did.twfe import DiD, Inference
from evallib.methods.its.controlled import ControlledITS
from evallib.methods.synth.control import SyntheticControl
from evallib.methods.synth.synthetic_did import LOO_ALL_UNITS, LOO_UNITS, SyntheticDiD
from evallib.protocol.params import PRIMARY_ESTIMATORS
from evallib.vocabulary import ESTIMATOR_LABELS

#: The estimators, in the order reports list them; the first is the default primary estimator. The
#: protocol layer keeps the same names (``PRIMARY_ESTIMATORS``), which params files may name.
HEADLINE_ESTIMATORS: tuple[str, ...] = PRIMARY_ESTIMATORS
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
        """The estimator's name in words."""
        return ESTIMATOR_LABELS[self.name]


@dataclass(frozen=True)
class DesignData:
    """One outcome's design (:class:`~evallib.methods.base.design.Design`, built once) and the settings every
    headline estimator shares: the scale effects are measured on, the placebo draws and their seed.

    The checks re-fit an estimator on :meth:`restricted_to` (another comparison set) or :meth:`with_fake_start`
    (the pre-period alone with a fake start).
    """

    design: Design
    transform: Transform = "log"
    n_draws: int = 999
    seed: int = 2015

    @property
    def start(self) -> object:
        """The first period of the follow-up."""
        return self.design.start

    @property
    def outcome(self) -> str:
        """The outcome's name, for result rows."""
        return self.design.outcome

    @property
    def periods_per_year(self) -> int:
        """Periods a year of the data (12 monthly)."""
        return self.design.periods_per_year

    @property
    def treated_units(self) -> list[str]:
        """The site's units, sorted."""
        return list(self.design.treated_units)

    @property
    def comparison_units(self) -> list[str]:
        """The comparison pool, sorted."""
        return list(self.design.comparison_units)

    def restricted_to(self, units: Iterable[str]) -> DesignData:
        """The same design on these units only (another comparison set: the treated units are named too)."""
        keep = set(units)
        return replace(self, design=self.design.subset([u for u in self.design.comparison_units if u in keep]))

    def with_fake_start(self, fake: pd.Timestamp) -> DesignData:
        """The pre-period alone with the start moved to ``fake`` (a placebo in time: no effect can exist there)."""
        return replace(self, design=self.design.before(fake))


def _did(d: DesignData, inference: Inference) -> Headline:
    res = DiD(transform=d.transform, inference=inference, n_draws=d.n_draws, seed=d.seed, outcome_label=d.outcome).fit(
        d.design
    )
    name = "did" if inference == "placebo_in_space" else "did_studentized"
    return Headline(name, res.headline, res)


def _rate_ratio(d: DesignData) -> Headline:
    res = PoissonDiD(
        inference="placebo_in_space", n_draws=min(d.n_draws, COSTLY_DRAWS), seed=d.seed, outcome_label=d.outcome
    ).fit(d.design)
    return Headline("rate_ratio", res.headline, res)


def _controlled_its(d: DesignData) -> Headline:
    res = ControlledITS(
        transform=d.transform,
        harmonics=min(2, (d.periods_per_year - 1) // 2),  # none for yearly data, one pair for quarterly
        periods_per_year=d.periods_per_year,
        horizons=(d.periods_per_year, 2 * d.periods_per_year),
        n_draws=d.n_draws,
        seed=d.seed,
        outcome_label=d.outcome,
    ).fit(d.design)
    return Headline("controlled_its", res.row("mean_post_effect"), res)


def _synthetic_control(d: DesignData, *, placebo: bool = True) -> Headline:
    res = SyntheticControl(
        placebo=placebo,
        demean=True,
        seed=d.seed,
        outcome_label=d.outcome,
        scale="log" if d.transform == "log" else "level",
        transform=d.transform,
        donors=SYNTH_DONORS,
    ).fit(d.design)
    return Headline("synthetic_control", res.headline, res)


def _synthetic_did(d: DesignData) -> Headline:
    res = SyntheticDiD(
        transform=d.transform, n_draws=min(d.n_draws, COSTLY_DRAWS), seed=d.seed, outcome_label=d.outcome
    ).fit(d.design)
    return Headline("synthetic_did", res.headline, res)


_FITS: dict[str, Callable[[DesignData], Headline]] = {
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


def leave_one_out(name: str, data: DesignData, *, all_units: int = LOO_ALL_UNITS, top: int = LOO_UNITS) -> pd.Series:
    """The estimator's point estimate refitted without each comparison unit in turn, indexed by that unit.

    Estimates only (no placebo inference: the check reads their signs), on the log scale for proportional
    effects. The DiD is a difference of mean changes (closed form, every unit); synthetic DiD refits every set
    of weights in one batch (:meth:`~evallib.methods.synth.synthetic_did.SyntheticDiD.leave_one_out`); any
    other estimator is refitted once per comparison unit (past ``all_units``, the rate ratio's refits are one
    batched solve, :meth:`~evallib.methods.did.rate_ratio.PoissonDiD.leave_one_out`).

    Past ``all_units`` (:data:`~evallib.methods.synth.synthetic_did.LOO_ALL_UNITS`, 500) comparison units, the
    refitted estimators leave out only ``top`` (:data:`~evallib.methods.synth.synthetic_did.LOO_UNITS`, 100) of
    them, so that the check stays linear in units (each refit is): synthetic DiD its most heavily weighted
    units, the synthetic control its donors (the :data:`SYNTH_DONORS` nearest, heaviest first), the others the
    units with the most extreme pre- to post-period change of the outcome (half from each end), the ones a
    comparison mean moves most without; and they are fitted without their placebo tests (the estimate does not
    depend on them). Each estimate is still the exact refit without
    its unit; the rule is in the Series' ``attrs["left_out"]`` for the check's wording.
    """
    treated, comparators = data.treated_units, data.comparison_units
    if name in ("did", "did_studentized"):  # the studentized test shares the DiD's estimate
        wide = data.design.frame()
        y = np.log(wide) if data.transform == "log" else wide
        post = data.design.post
        change = y[post].mean() - y[~post].mean()
        comp = change[comparators]
        return change[treated].mean() - (comp.sum() - comp) / (len(comp) - 1)
    if name == "synthetic_did":
        sdid = SyntheticDiD(transform=data.transform, outcome_label=data.outcome)
        return sdid.leave_one_out(data.design, all_units=all_units, top=top)
    one = replace(data, n_draws=1)  # one random draw when several units are treated: the estimate is all we read
    left_out, rule, fit = list(comparators), "", fit_headline
    if len(comparators) > all_units and top < len(comparators):
        left_out, rule = _most_influential(name, one, top)
        fit = _estimate_only
    if rule and name == "rate_ratio":  # every refit in one batched solve (log rate ratios)
        out = PoissonDiD(outcome_label=data.outcome).leave_one_out(data.design, left_out)
    else:
        out = pd.Series(
            {
                u: on_log_scale(
                    fit(name, one.restricted_to([*treated, *(c for c in comparators if c != u)])).row
                ).estimate
                for u in left_out
            },
            name="estimate",
        )
    if rule:
        out.attrs["left_out"] = rule
    return out


def _estimate_only(name: str, data: DesignData) -> Headline:
    """The headline estimator's point estimate without its placebo test (the same estimate, for leave-one-out)."""
    if name == "synthetic_control":
        return _synthetic_control(data, placebo=False)
    return fit_headline(name, data)


def _most_influential(name: str, data: DesignData, top: int) -> tuple[list[str], str]:
    """The ``top`` comparison units a large pool's leave-one-out check leaves out (unit order), and the rule in words."""
    comparators = data.comparison_units
    n = len(comparators)
    if name == "synthetic_control":  # its donors (the nearest SYNTH_DONORS), heaviest first
        donors = list(_synthetic_control(data, placebo=False).result.weights.index[:top])
        return sorted(donors), f"the {len(donors)} donors of its synthetic control, of {n:,} comparison units"
    left_out = extreme_changes(data.design, comparators, data.transform == "log", top)
    return (
        left_out,
        f"the {top} of {n:,} comparison units with the most extreme change from the pre- to the post-period",
    )


def extreme_changes(design: Design, units: Sequence[str], log: bool, top: int) -> list[str]:
    """The ``top`` of ``units`` (in unit order) with the most extreme change of the outcome from before the design's
    start (the first start, for staggered starts) to after it: half from each end, the units whose removal moves a
    comparison mean most. The leave-one-out check's rule for a large pool of a mean-based estimator.
    """
    wide = design.frame()[list(units)]
    y = np.log(wide) if log and design.positive else wide
    post = design.post
    change = (y[post].mean() - y[~post].mean()).to_numpy()
    order = np.argsort(change, kind="stable")
    ends = np.concatenate([order[: top // 2], order[len(order) - (top - top // 2) :]])
    return [units[i] for i in sorted(ends)]


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
