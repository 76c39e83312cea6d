"""Whether a published results file agrees with itself: p-value, interval and words, row by row.

One rule decides "clear" (:func:`evallib.methods.inference.decision.rejects`, ``p <= 0.05``) and every interval is
its inversion, so in every published row the interval leaves out no change exactly when the p-value rejects; the
answer's conclusion is "no clear effect" exactly then, its direction follows its conclusion, its verdict only
confirms a clear change, and its marker is never good beside anything but "confirmed". :func:`disagreements`
lists every row of one ``results.json`` that breaks this; :func:`evallib.reporting.publishing.swap_in` refuses to
replace the public site while any published results file has one.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from evallib.methods.inference.decision import ALPHA, holds_null, rejects
from evallib.reporting.words import marker

__all__ = ["disagreements"]

#: Inference names whose rows carry no test (an estimate shown without p-value or interval).
_NO_TEST = ("withheld_volatile_site", "none")


def _num(v: Any) -> float:
    """A results-file number: None (JSON's null for NaN or an infinite end) becomes NaN."""
    try:
        return float(v) if v is not None else math.nan
    except (TypeError, ValueError):
        return math.nan


def _row_problem(where: str, row: Mapping[str, Any]) -> str | None:
    """Why one row's interval and p-value disagree, or None when they agree (or there is no test to read)."""
    p = _num(row.get("p_value"))
    if not math.isfinite(p) or str(row.get("inference", "")) in _NO_TEST or row.get("scale") == "statistic":
        return None  # no test, or a test statistic with no interval (the joint test of the event-study leads)
    lo, hi, scale = _num(row.get("ci_low")), _num(row.get("ci_high")), str(row.get("scale", ""))
    if holds_null(lo, hi, scale) == (not rejects(p, ALPHA)):
        return None
    said = "rejects" if rejects(p, ALPHA) else "does not reject"
    inside = "holds" if holds_null(lo, hi, scale) else "leaves out"
    return f"{where}: p = {p:.4g} {said} no effect but the interval {lo:.4g} to {hi:.4g} {inside} it"


def _expected_conclusion(answer: Mapping[str, Any]) -> str:
    """The conclusion the one rule gives an estimate (the answer's, or another method's view)."""
    p = _num(answer.get("p_value"))
    if not math.isfinite(p):
        return "unknown"
    if not rejects(p, ALPHA):
        return "no clear effect"
    est, scale = _num(answer.get("estimate")), str(answer.get("scale", ""))
    below = est < 1 if scale == "rate_ratio" else est < 0
    return "decrease" if below else "increase"


def _answer_problems(site: str, answer: Mapping[str, Any], expected_direction: str) -> list[str]:
    """The answer's words against its own p-value and interval: conclusion, direction, verdict and marker."""
    out = []
    where = f"{site} answer"
    if (problem := _row_problem(where, answer)) is not None:
        out.append(problem)
    said, rule = str(answer.get("conclusion", "")), _expected_conclusion(answer)
    if said != rule:
        out.append(f"{where}: says {said!r} where p = {_num(answer.get('p_value')):.4g} gives {rule!r}")
    clear = said in ("decrease", "increase")
    direction = str(answer.get("direction", ""))
    should = ("hoped for" if said == expected_direction else "opposite") if clear else "unclear"
    if direction != should:
        out.append(f"{where}: direction {direction!r} beside the conclusion {said!r} (expected {should!r})")
    verdict = str(answer.get("robustness_verdict") or "")
    if verdict in ("confirmed", "not confirmed") and not clear:
        out.append(f"{where}: verdict {verdict!r} on no clear effect")
    if verdict == "no clear effect" and clear:
        out.append(f"{where}: verdict 'no clear effect' beside a clear {said}")
    cls, _, _ = marker(verdict or said, direction)
    if cls in ("good", "bad") and verdict != "confirmed":
        out.append(f"{where}: marker {cls!r} beside the verdict {verdict!r}")
    for view in answer.get("other_methods") or []:
        if not isinstance(view, Mapping) or "p_value" not in view:
            continue  # a results file from before views carried their numbers
        name = f"{site} {view.get('estimator', '')}"
        if (problem := _row_problem(name, view)) is not None:
            out.append(problem)
        said, rule = str(view.get("conclusion", "")), _expected_conclusion(view)
        if said != rule and str(view.get("inference", "")) not in _NO_TEST:
            out.append(f"{name}: says {said!r} where p = {_num(view.get('p_value')):.4g} gives {rule!r}")
    return out


def _verdict_problems(site: str, robustness: Mapping[str, Any]) -> list[str]:
    """The robustness verdict against its own checks: "confirmed" needs a check that agrees and none that disagrees.

    A check that could not have disagreed ("could not test") counts neither way, so it never confirms.
    """
    checks = [c for c in robustness.get("checks") or [] if isinstance(c, Mapping)]
    if not checks:
        return []  # a results file from before the checks were recorded
    statuses = [str(c.get("status", "")) for c in checks]
    verdict = str(robustness.get("verdict") or "")
    where = f"{site} robustness"
    if verdict == "confirmed" and "disagrees" in statuses:
        return [f"{where}: 'confirmed' beside a check that disagrees"]
    if verdict == "confirmed" and "agrees" not in statuses:
        return [f"{where}: 'confirmed' with no check that could test it agreeing"]
    if verdict == "not confirmed" and "disagrees" not in statuses and "agrees" in statuses:
        return [f"{where}: 'not confirmed' though a check agrees and none disagrees"]
    return []


def disagreements(results: Mapping[str, Any]) -> list[str]:
    """Every place in one site's ``results.json`` where p-value, interval and words disagree (empty when none).

    Each published row with a p-value (other than withheld ones): the interval holds no change (0, or 1 for a rate
    ratio; a missing end is unbounded) exactly when the p-value does not reject. The answer: the same for its
    primary estimate; its conclusion is the one rule's; its direction follows its conclusion and the protocol's
    hoped-for direction; its verdict confirms only a clear change; its marker is good or bad only when confirmed. The
    robustness verdict: "confirmed" only with a check that agrees and none that disagrees ("could not test" counts
    neither way).
    """
    site = str(results.get("site_id", "?"))
    out = []
    for i, row in enumerate(results.get("results") or []):
        if isinstance(row, Mapping):
            where = f"{site} row {i} ({row.get('outcome', '')} {row.get('method', '')} {row.get('term', '')})"
            if (problem := _row_problem(where, row)) is not None:
                out.append(problem)
    answer = results.get("answer")
    if isinstance(answer, Mapping) and answer:
        out.extend(_answer_problems(site, answer, str(results.get("expected_direction", ""))))
    robustness = results.get("robustness")
    if isinstance(robustness, Mapping):
        out.extend(_verdict_problems(site, robustness))
    return out
