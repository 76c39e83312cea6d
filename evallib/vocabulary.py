"""The domain's words, defined once: what reports call each outcome, period, kind of unit, estimator, inference
and tidy row.

Every layer may use it and it imports nothing of evallib (import-linter: ``vocabulary``), like ``errors.py``.
Numbers in words (effects, p-values) stay in :mod:`evallib.reporting.words`.
"""

from __future__ import annotations

import re

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
PERIOD_WORDS = {"monthly": "month", "quarterly": "quarter", "yearly": "year", "weekly": "week"}
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
    "withheld_volatile_site": "withheld: the site is noisier than its comparators",
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
    "did_stacked": "stacked difference-in-differences (staggered starts)",
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
    """One period of a frequency in words: ``month``, ``quarter``, ``year``, ``week`` (``period`` when unknown)."""
    return PERIOD_WORDS.get(frequency, "period")


def unit_plural(kind: str) -> str:
    """``CCG`` -> ``CCGs``; an evaluator's own label in the plural (``local authority`` -> ``local authorities``)."""
    return UNIT_PLURALS.get(kind) or plural_word(kind)


def estimator_label(name: str) -> str:
    """A headline or contrast estimator in words (its name when unknown)."""
    return ESTIMATOR_LABELS.get(name) or CONTRAST_LABELS.get(name, name)


def inference_label(name: str) -> str:
    """A tidy row's ``inference`` in words."""
    return INFERENCE_LABELS.get(name, _words(name))


#: English plurals that no rule gives (the last word of a label is looked up, lower case).
IRREGULAR_PLURALS = {
    "person": "people",
    "child": "children",
    "man": "men",
    "woman": "women",
    "analysis": "analyses",
    "criterion": "criteria",
    "datum": "data",
}
#: Abbreviations that reach pages from the registry's notes, spelled out where they are first used.
ABBREVIATIONS = {
    "IAU": "the Improvement Analytics Unit of NHS England and the Health Foundation",
    "HSJ": "Health Service Journal",
    "CCG": "clinical commissioning group",
    "ICS": "integrated care system",
    "FT": "foundation trust",
}


def plural_word(word: str) -> str:
    """The plural of a singular noun or noun phrase: its last word follows English's rules.

    ``local authority`` -> ``local authorities``, ``practice`` -> ``practices``, ``box`` -> ``boxes``,
    ``person`` -> ``people``, ``CCG`` -> ``CCGs``; a word that is already plural (ends in s after a letter
    that is not s) is kept (``trusts``, ``GP practices``).
    """
    head, sep, last = word.rpartition(" ")
    low = last.lower()
    if not last:
        return word
    if low in IRREGULAR_PLURALS:
        out = IRREGULAR_PLURALS[low]
        out = out.capitalize() if last[:1].isupper() else out
    elif last.isupper():  # an abbreviation: CCG -> CCGs, PCN -> PCNs
        out = last + "s"
    elif low.endswith(("ss", "sh", "ch", "x", "z")):
        out = last + "es"
    elif low.endswith("s"):
        out = last  # already plural
    elif low.endswith("y") and len(low) > 1 and low[-2] not in "aeiou":
        out = last[:-1] + "ies"
    else:
        out = last + "s"
    return head + sep + out


def is_plural(noun: str) -> bool:
    """Whether a noun phrase (an outcome's label) is plural, from its head noun (the last word before a
    preposition such as "per" or "via"):
    ``A&E attendances``, ``emergency admissions per head``, ``people`` are; ``four-hour A&E performance``,
    ``process`` are not.
    """
    head = re.sub(r"\([^)]*\)", " ", re.split(r"\s(?:per|via|in|of|at|for|from|to|by|with)\s", noun)[0]).split()
    last = head[-1].lower() if head else ""
    if last in set(IRREGULAR_PLURALS.values()):
        return True
    return last.endswith("s") and not last.endswith(("ss", "us", "is"))


def be(noun: str, *, past: bool = False) -> str:
    """The verb "to be" agreeing with ``noun``: ``was``/``were`` (``past``) or ``is``/``are``."""
    if past:
        return "were" if is_plural(noun) else "was"
    return "are" if is_plural(noun) else "is"


def agree(n: int, singular: str, plural_form: str) -> str:
    """The verb form for ``n`` subjects: ``agree(1, "disagrees", "disagree")`` -> ``disagrees``."""
    return singular if n == 1 else plural_form


def plural(n: int, word: str) -> str:
    """``1 month``, ``2 months``, ``2 local authorities`` (``word`` is singular)."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {plural_word(word)}"


def spell_out(text: str) -> str:
    """``text`` with each abbreviation in :data:`ABBREVIATIONS` spelled out in brackets where it first occurs
    (``IAU`` -> ``IAU (the Improvement Analytics Unit of NHS England and the Health Foundation)``).
    """
    for short, long in ABBREVIATIONS.items():
        text = re.sub(rf"\b{short}\b", f"{short} ({long})", text, count=1)
    return text


def ordinal(n: int) -> str:
    """``1st``, ``2nd``, ``3rd``, ``4th``, ``11th``-``13th``, ``21st``, ``23rd``: a rank or percentile as read."""
    n = int(n)
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"
