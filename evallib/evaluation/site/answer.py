"""One answer per site: the protocol's primary estimate, what the other methods say, and why they differ.

The answer leads with the primary estimator (chosen by the calibration study and recorded in
the protocol); every other headline estimate, and the site's own series, is compared with it
by its conclusion (a significant decrease, a significant increase, or no clear effect) and
where they differ a reason is given in words from the analysis itself (a pre-period
divergence, a volatile site, comparisons that depend on which areas are chosen). Beside a null
it gives the effect the design could have detected. "Clear" has one rule, the one every interval
inverts (:func:`evallib.methods.inference.decision.rejects`, ``p <= 0.05``); where one placebo
assignment more or fewer would change it, the answer says it is at the edge of significance.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evallib.evaluation.site.estimators import Headline
from evallib.evaluation.site.outcome import OutcomeAnalysis
from evallib.evaluation.site.sampling import sampled
from evallib.evaluation.site.verdict import conclusion
from evallib.methods.base.results import Estimate
from evallib.methods.inference.decision import ALPHA, at_edge
from evallib.vocabulary import estimator_label, ordinal

__all__ = [
    "ALPHA",
    "TREND_BASED",
    "Answer",
    "View",
    "conclusion",
    "placebo_assignments",
    "sampled_placebo",
    "site_answer",
]

#: Estimators whose counterfactual projects the site's pre-period trend forward (the others assume its gap stays).
TREND_BASED = frozenset({"controlled_its"})


def _num(v: float) -> float | None:
    """A number for JSON: None for NaN or an infinite end."""
    return float(v) if math.isfinite(v) else None


def sampled_placebo(h: Headline) -> dict[str, Any]:
    """A sampled placebo p-value's random assignments and Monte Carlo standard error, as results.json names them
    (``placebo_draws``, ``p_value_mc_error``); empty when every assignment was tried (an exhaustive p-value gains
    no field). Every estimator that samples says so on its result (0 draws when exhaustive).
    """
    draws, error = sampled(h.row, h.result)
    return {"placebo_draws": draws, "p_value_mc_error": error} if draws > 0 else {}


def placebo_assignments(h: Headline) -> int | None:
    """How many assignments a headline's rank (placebo) p-value is a share of, the real one included.

    None when its test is not a rank test (or its fit kept no placebo distribution).
    """
    if not h.row.inference.startswith("placebo"):
        return None
    est = getattr(h.result, "placebo_estimates", None)
    if est is not None:
        return int(np.shape(est)[0])
    placebos = getattr(h.result, "placebos", None)  # the synthetic control: one row per comparison unit
    return len(placebos) + 1 if placebos is not None else None


@dataclass(frozen=True)
class View:
    """What one other method says, whether it agrees with the primary estimate, and why not."""

    name: str
    label: str
    row: Estimate
    conclusion: str
    agrees: bool
    why: str = ""
    #: As :class:`Answer`'s: a p-value from random placebo assignments says how many and its Monte Carlo error.
    placebo_draws: int = 0
    p_value_mc_error: float = 0.0

    def to_json_dict(self) -> dict[str, Any]:
        """The view as a JSON-ready dict: estimator, method, its estimate, interval and p-value (non-finite numbers
        become null), conclusion, agreement and why.
        """
        r = self.row
        return {
            "estimator": self.name,
            "method": r.method,
            "term": r.term,
            "inference": r.inference,
            "scale": r.scale,
            "estimate": _num(r.estimate),
            "ci_low": _num(r.ci_low),
            "ci_high": _num(r.ci_high),
            "p_value": _num(r.p_value),
            "conclusion": self.conclusion,
            "agrees": self.agrees,
            "why": self.why,
        } | _sampled_fields(self.placebo_draws, self.p_value_mc_error)


@dataclass(frozen=True)
class Answer:
    """The site's answer on its primary outcome.

    ``direction`` is ``hoped for`` when the primary estimate is a significant change in the
    protocol's expected direction, ``opposite`` when it is a significant change the other way,
    and ``unclear`` otherwise. ``mde`` is the smallest change (on the log scale, or in points
    for a percentage) the answer's own test would detect with 80% power (the primary estimator's
    placebo distribution: :func:`~evallib.evaluation.site.mde.answer_mde`). ``edge`` is True
    when the primary estimate's rank test is at the edge of significance (one placebo assignment
    more or fewer as extreme would change the conclusion).
    """

    estimator: str
    label: str
    row: Estimate
    conclusion: str
    direction: str
    others: tuple[View, ...] = field(default=())
    mde: float = float("nan")
    verdict: str = ""
    edge: bool = False
    #: A p-value from a seeded random subset of placebo assignments (past the exhaustive size): how many, and its
    #: Monte Carlo standard error (0 when every assignment was tried).
    placebo_draws: int = 0
    p_value_mc_error: float = 0.0

    @property
    def agreeing(self) -> tuple[View, ...]:
        """The other methods that agree with the primary estimate."""
        return tuple(v for v in self.others if v.agrees)

    @property
    def disagreeing(self) -> tuple[View, ...]:
        """The other methods that do not agree with the primary estimate."""
        return tuple(v for v in self.others if not v.agrees)

    def to_json_dict(self) -> dict[str, Any]:
        """The answer as a JSON-ready dict (non-finite numbers become null), for results.json."""
        r = self.row
        num = _num
        return {
            "estimator": self.estimator,
            "method": r.method,
            "term": r.term,
            "inference": r.inference,
            "scale": r.scale,
            "estimate": num(r.estimate),
            "std_error": num(r.std_error),
            "ci_low": num(r.ci_low),
            "ci_high": num(r.ci_high),
            "p_value": num(r.p_value),
            "conclusion": self.conclusion,
            "edge_of_significance": self.edge,
            "direction": self.direction,
            "robustness_verdict": self.verdict,
            "minimum_detectable_effect": num(self.mde),
            "other_methods": [v.to_json_dict() for v in self.others],
        } | _sampled_fields(self.placebo_draws, self.p_value_mc_error)


def _sampled_fields(draws: int, error: float) -> dict[str, Any]:
    """``placebo_draws`` and ``p_value_mc_error`` for a sampled p-value; nothing for an exhaustive one."""
    return {"placebo_draws": draws, "p_value_mc_error": error} if draws > 0 else {}


def _why(a: OutcomeAnalysis, name: str, main: str, other: str) -> str:
    """A reason, from the analysis, why ``name`` concludes ``other`` where the primary concludes ``main``."""
    trend = a.pretrend
    if (name in TREND_BASED) != (a.primary_estimator in TREND_BASED) and a.pretrend_evidence:
        way = "rising" if trend.estimate > 0 else "falling"
        return (
            f"before the start the site's series was already {way} relative to its comparison pool (pre-trend test "
            f"p = {trend.p_value:.2f}); methods that project that earlier divergence forward and methods that assume "
            "the gap stays where it was disagree on whether it would have continued, which the data cannot settle"
        )
    if {name, a.primary_estimator} == {"did", "did_studentized"}:
        vol = a.did.volatility
        pct = (
            f" (its noise ranks at the {ordinal(round(vol.percentile[0]))} percentile)"
            if vol is not None and vol.rank
            else ""
        )
        return (
            f"the two tests differ in how they treat the site's own month-to-month noise{pct}: the studentized test "
            "scales every unit's change by how far that unit wandered before the start, so it is the one to trust "
            "for an unusually noisy or quiet site"
        )
    if name in ("synthetic_control", "synthetic_did") or a.primary_estimator in ("synthetic_control", "synthetic_did"):
        return (
            "weighting the comparison units to track the site before the start gives a different answer from the "
            "whole pool: the result depends on which areas the site is compared with"
        )
    return f"{estimator_label(name)} finds {other} where the primary estimate finds {main}"


def _a(word: str) -> str:
    """``an increase``, ``a decrease``; ``no clear effect`` as it is."""
    if word.startswith("no "):
        return word
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _own_series(a: OutcomeAnalysis, main: str) -> View | None:
    """The site's own series (a description): noted when it shows a change the comparison does not."""
    try:
        row = a.its.row(f"effect_at_{a.periods_per_year}")  # one year after the start
    except KeyError:
        return None
    own = conclusion(row)
    if own == main or own == "unknown":
        return View("own_series", "the site's own series (ITS)", row, own, True)
    trend = a.pretrend
    if a.pretrend_evidence and a.primary_estimator not in TREND_BASED:
        way = "rising" if trend.estimate > 0 else "falling"
        why = (
            f"the site's own series projects its pre-period trend forward, and before the start the site was already "
            f"{way} relative to its comparison pool (pre-trend test p = {trend.p_value:.2f}); the comparison with "
            "that pool over the same months is the better guide to what the care model changed"
        )
    elif main == "no clear effect":
        why = (
            f"the site's own series shows {_a(own)} at the start, but its comparison pool changed in the same way, "
            "so relative to comparable areas there is no clear effect"
        )
    else:
        why = (
            f"the site's own series shows {_a(own)} on its own, while relative to comparable areas there is {_a(main)}: "
            "the comparison pool moved too"
        )
    return View("own_series", "the site's own series (ITS)", row, own, False, why)


def site_answer(a: OutcomeAnalysis, expected_direction: str) -> Answer:
    """The answer on one (primary) outcome: the primary estimate and the views of every other method."""
    main = a.main
    main_conclusion = conclusion(main.row)
    if main_conclusion in ("decrease", "increase"):
        direction = "hoped for" if main_conclusion == expected_direction else "opposite"
    else:
        direction = "unclear"
    others = []
    for name, h in a.headline.items():
        if name == main.name:
            continue
        c = conclusion(h.row)
        agrees = c == main_conclusion or c == "unknown"
        why = "" if agrees else _why(a, name, main_conclusion, c)
        others.append(View(name, h.label, h.row, c, agrees, why, **sampled_placebo(h)))
    own = _own_series(a, main_conclusion)
    if own is not None:
        others.append(own)
    verdict = a.robustness.verdict if a.robustness is not None else ""
    return Answer(
        estimator=main.name,
        label=main.label,
        row=main.row,
        conclusion=main_conclusion,
        direction=direction,
        others=tuple(others),
        mde=a.mde,
        verdict=verdict,
        edge=at_edge(main.row.p_value, placebo_assignments(main), ALPHA),
        **sampled_placebo(main),
    )
