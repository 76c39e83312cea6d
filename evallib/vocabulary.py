"""The domain's words, defined once: what reports call each outcome, period, kind of unit, estimator, inference
and tidy row.

Every layer may use it and it imports nothing of evallib (import-linter: ``vocabulary``), like ``errors.py``.
Numbers in words (effects, p-values) stay in :mod:`evallib.reporting.words`.
"""

from __future__ import annotations

#: Words for each outcome, for reports (an outcome of the evaluator's own data is named by its column).
OUTCOME_LABELS = {
    "nonelective_admissions": "emergency (non-elective) admissions",
    "nonelective_admissions_per_head": "emergency (non-elective) admissions per head",
    "ae_attendances": "A&E attendances",
    "ae_type1_attendances": "type-1 A&E attendances",
    "emergency_admissions": "emergency admissions via A&E",
    "four_hour_performance": "four-hour A&E performance",
}
#: Words for one period of each frequency.
PERIOD_WORDS = {"monthly": "month", "quarterly": "quarter", "yearly": "year"}
#: Plural of each kind of unit ("comparison CCGs", "comparison trusts").
UNIT_PLURALS = {"trust": "trusts", "CCG": "CCGs", "area": "areas"}
#: The headline estimators a protocol may lead with (``PRIMARY_ESTIMATORS``), in words.
ESTIMATOR_LABELS = {
    "did": "difference-in-differences",
    "did_studentized": "difference-in-differences, studentized test",
    "rate_ratio": "rate ratio (Poisson)",
    "controlled_its": "controlled interrupted time series",
    "synthetic_control": "synthetic control",
    "synthetic_did": "synthetic difference-in-differences",
}
#: Estimators the calibration study shows for contrast only (model-based inference a protocol may not lead with).
CONTRAST_LABELS = {
    "did_cr1": "difference-in-differences, cluster-robust (CR1) errors",
    "own_series_its": "the site's own series (REML AR(1) errors, as reports describe it)",
}
#: The ``inference`` values of tidy rows, in words.
INFERENCE_LABELS = {
    "placebo_in_space": "placebo test",
    "placebo_studentized": "studentized placebo test",
    "wild_bootstrap_webb": "wild bootstrap (Webb)",
    "wild_bootstrap_rademacher": "wild bootstrap (Rademacher)",
    "cluster_cr1": "cluster-robust (CR1)",
    "hc1": "heteroskedasticity-robust",
    "analytic_influence_function": "influence functions",
    "newey_west": "Newey-West",
    "newey_west_approx": "Newey-West (approximate)",
    "ols": "OLS",
    "ols_approx": "OLS (approximate)",
    "arima_model_based": "ARIMA model",
    "arima_forecast": "ARIMA forecast",
    "driscoll_kraay": "Driscoll-Kraay",
    "driscoll_kraay_approx": "Driscoll-Kraay (approximate)",
    "model_based": "model-based",
    "ar1_reml_bootstrap_t": "AR(1) errors, bootstrap-t",
}
#: Robustness rows: the answer's estimator's method with one of these endings (evaluation/site/robustness.py).
CHECK_LABELS = {"_placebo_in_time": "placebo in time (fake start)", "_matched": "10 matched comparators"}
#: What the ``method`` of a tidy row estimates, in words (the estimates table).
METHOD_LABELS = {
    "synthetic_control_outcome": "synthetic control (mean gap)",
    "synthetic_control_nested": "synthetic control (mean gap)",
    "its_controlled_difference": "controlled ITS (model-based)",
    "its_controlled_two_group": "controlled ITS (two groups)",
    "its_controlled_placebo": "controlled ITS",
    "its_arima": "ITS, ARIMA errors",
    "its_gls_ar1": "own series ITS (approximate)",
    "did_synthetic": "synthetic difference-in-differences",
    "did_twfe": "difference-in-differences",
    "did_callaway_santanna_not_yet_treated": "Callaway-Sant'Anna (staggered starts)",
    "did_poisson_fe": "rate ratio (Poisson)",
    "did_pretrend": "pre-trend difference per year",
    "did_event_study": "event study",
    "did_event_study_pretrend": "event study: joint test of the leads",
    "its_segmented": "ITS",
    "its_poisson": "ITS (Poisson)",
}
#: The ``term`` of an ITS row, in words.
TERM_LABELS = {
    "level_change": "level change",
    "slope_change": "change in yearly growth",
    "cumulative_effect": "cumulative effect (events)",
    "mean_post_effect": "mean effect over follow-up",
}


def _words(name: str) -> str:
    return name.replace("_", " ")


def outcome_label(outcome: str) -> str:
    """``nonelective_admissions`` -> ``emergency (non-elective) admissions``; other names with spaces."""
    return OUTCOME_LABELS.get(outcome, _words(outcome))


def period_word(frequency: str) -> str:
    """One period of a frequency in words: ``month``, ``quarter``, ``year`` (``period`` when unknown)."""
    return PERIOD_WORDS.get(frequency, "period")


def unit_plural(kind: str) -> str:
    """``CCG`` -> ``CCGs``; an evaluator's own label gains an s unless it has one."""
    return UNIT_PLURALS.get(kind, kind if kind.endswith("s") else kind + "s")


def estimator_label(name: str) -> str:
    """A headline or contrast estimator in words (its name when unknown)."""
    return ESTIMATOR_LABELS.get(name) or CONTRAST_LABELS.get(name, name)


def inference_label(name: str) -> str:
    """A tidy row's ``inference`` in words."""
    return INFERENCE_LABELS.get(name, _words(name))


def plural(n: int, word: str) -> str:
    """``1 month``, ``2 months`` (``word`` is singular)."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"
