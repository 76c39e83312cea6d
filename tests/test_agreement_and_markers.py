"""A published results file agrees with itself (p-value, interval, words), publishing refuses one that does not, and
the marker on a page and the index's colours come from one function of the verdict and the direction (issue 18)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from evallib.reporting.agreement import disagreements
from evallib.reporting.publishing import SITE_MARKER, PublishError, SiteEntry, scan_results, swap_in
from evallib.reporting.static_site import index_row
from evallib.reporting.words import MARKERS, marker

from .conftest import ROOT


def _results(**answer: Any) -> dict[str, Any]:
    """A minimal evaluated site's results.json: V49's primary DiD at p = 0.05 exactly, now worded by the rule."""
    base = {
        "estimator": "did_studentized",
        "method": "did_twfe",
        "term": "treated_x_post",
        "inference": "placebo_studentized",
        "scale": "log",
        "estimate": 0.38,
        "ci_low": 0.091,
        "ci_high": 0.669,
        "p_value": 0.05,
        "conclusion": "increase",
        "edge_of_significance": True,
        "direction": "opposite",
        "robustness_verdict": "not confirmed",
        "other_methods": [
            {
                "estimator": "did",
                "method": "did_twfe",
                "term": "treated_x_post",
                "inference": "withheld_volatile_site",
                "scale": "log",
                "estimate": 0.38,
                "ci_low": None,
                "ci_high": None,
                "p_value": None,
                "conclusion": "unknown",
            },
            {
                "estimator": "rate_ratio",
                "method": "did_poisson_fe",
                "term": "treated_x_post",
                "inference": "placebo_in_space",
                "scale": "rate_ratio",
                "estimate": 1.4,
                "ci_low": 1.1,
                "ci_high": 1.9,
                "p_value": 0.025,
                "conclusion": "increase",
            },
        ],
    }
    base.update(answer)
    row = {k: base[k] for k in ("term", "estimate", "ci_low", "ci_high", "p_value", "method", "inference", "scale")}
    return {
        "site_id": "V49",
        "status": "evaluated",
        "expected_direction": "decrease",
        "answer": base,
        "results": [
            {"outcome": "ae_attendances", **row, "std_error": 0.09, "n_treated": 1, "n_control": 39},
            # a test statistic with no interval: nothing to compare
            {
                "outcome": "ae_attendances",
                "term": "joint_leads_wald",
                "estimate": 9.1,
                "ci_low": None,
                "ci_high": None,
                "p_value": 0.02,
                "method": "did_event_study_pretrend",
                "inference": "placebo_in_space",
                "scale": "statistic",
            },
        ],
    }


def test_a_results_file_whose_p_value_interval_and_words_agree_has_no_disagreement() -> None:
    assert disagreements(_results()) == []
    assert (
        disagreements(
            _results(
                estimate=-0.3,
                ci_low=-0.5,
                ci_high=0.1,
                p_value=0.3,
                conclusion="no clear effect",
                direction="unclear",
                robustness_verdict="no clear effect",
            )
        )
        == []
    )


@pytest.mark.parametrize(
    ("change", "found"),
    [
        # the published V49 before the rule: p = 0.05, an interval without zero, and "no clear effect"
        ({"conclusion": "no clear effect", "direction": "unclear", "robustness_verdict": "no clear effect"}, "says"),
        ({"ci_low": -0.1}, "holds it"),  # the interval keeps zero while p rejects
        (
            {
                "p_value": 0.06,
                "conclusion": "no clear effect",
                "direction": "unclear",
                "robustness_verdict": "no clear effect",
            },
            "leaves out",
        ),
        ({"direction": "hoped for"}, "direction"),
        ({"robustness_verdict": "no clear effect"}, "verdict"),
    ],
)
def test_each_kind_of_disagreement_is_found(change: dict[str, Any], found: str) -> None:
    problems = disagreements(_results(**change))
    assert problems and any(found in p for p in problems), problems
    assert all(p.startswith("V49") for p in problems)


def test_another_methods_words_are_checked_against_its_own_numbers() -> None:
    res = _results()
    res["answer"]["other_methods"][1]["conclusion"] = "no clear effect"
    assert any("rate_ratio: says 'no clear effect'" in p for p in disagreements(res))
    res = _results()
    res["answer"]["other_methods"][1]["ci_low"] = 0.9  # a ratio interval holding 1 beside p = 0.025
    assert any("rate_ratio" in p and "holds it" in p for p in disagreements(res))


def test_publishing_refuses_a_results_file_that_disagrees_and_keeps_the_old_site(tmp_path: Path) -> None:
    site = tmp_path / "site"
    site.mkdir()
    (site / SITE_MARKER).write_text("old")
    (site / "index.html").write_text("old")
    staging = tmp_path / ".site-staging-1"
    (staging / "downloads").mkdir(parents=True)
    (staging / "index.html").write_text("<p>new</p>")
    bad = _results(conclusion="no clear effect", direction="unclear", robustness_verdict="no clear effect")
    (staging / "downloads" / "V49.json").write_text(json.dumps(bad))
    assert scan_results(staging)
    with pytest.raises(PublishError, match="V49 answer: says 'no clear effect'"):
        swap_in(staging, site)
    assert (site / "index.html").read_text() == "old"


@pytest.mark.parametrize(
    ("verdict", "direction", "cls"),
    [
        ("confirmed", "hoped for", "good"),
        ("confirmed", "opposite", "bad"),
        ("not confirmed", "hoped for", "unconfirmed"),  # I13: never good beside "not confirmed"
        ("not confirmed", "opposite", "unconfirmed"),
        ("", "hoped for", "unconfirmed"),  # checks that never ran confirm nothing
        ("no clear effect", "unclear", "unclear"),
        ("not evaluable", "", "not-evaluable"),
    ],
)
def test_the_marker_follows_the_verdict_and_the_direction(verdict: str, direction: str, cls: str) -> None:
    assert marker(verdict, direction)[0] == cls


def test_every_kind_of_answer_has_its_own_marker_and_index_colour() -> None:
    classes = [c for c, _, _ in MARKERS.values()]
    assert len(set(classes)) == len(classes) == 5
    assert len({s for _, s, _ in MARKERS.values()}) == 5 and len({w for _, _, w in MARKERS.values()}) == 5
    css = (ROOT / "evallib" / "reporting" / "templates" / "style.css").read_text()
    colours = set()
    for cls in classes:
        rule = css.split(f".verdict-{cls}{{", 1)[1].split("}", 1)[0]
        colours.add(rule.split("color:", 1)[1].split(";", 1)[0])
        assert f".marker.{cls}{{" in css
    assert len(colours) == 5  # confirmed hoped-for, confirmed opposite, not confirmed, no clear effect, not evaluable


def _entry(status: str, **answer: Any) -> SiteEntry:
    res = _results(**answer)
    res["status"] = status
    return SiteEntry("V49", status, res, Path("V49/report.html"))


def test_the_index_row_takes_its_marker_and_verdict_colour_from_the_verdict() -> None:
    row = index_row(_entry("evaluated"))
    assert (row["marker"], row["marker_words"], row["verdict"]) == ("unconfirmed", "not confirmed", "not confirmed")
    assert row["verdict_class"] == "verdict-unconfirmed"
    good = index_row(
        _entry(
            "evaluated",
            estimate=-0.2,
            ci_low=-0.3,
            ci_high=-0.1,
            p_value=0.01,
            conclusion="decrease",
            direction="hoped for",
            robustness_verdict="confirmed",
        )
    )
    assert (good["marker"], good["verdict_class"]) == ("good", "verdict-good")
    unclear = index_row(
        _entry(
            "evaluated",
            estimate=-0.05,
            ci_low=-0.2,
            ci_high=0.1,
            p_value=0.4,
            conclusion="no clear effect",
            direction="unclear",
            robustness_verdict="no clear effect",
        )
    )
    assert (unclear["marker"], unclear["verdict_class"]) == ("unclear", "verdict-unclear")
    not_evaluable = index_row(SiteEntry("V50", "not evaluable", {"status": "not evaluable", "reason": "r"}, None))
    assert not_evaluable["verdict_class"] == "verdict-not-evaluable" and not_evaluable["effect"] == ""


def test_no_published_results_file_disagrees_with_itself() -> None:
    """The bundled sites as published under outputs/ (when a batch has run here): 0 disagreements."""
    files = sorted((ROOT / "outputs" / "site" / "downloads").glob("*.json"))
    if not files:
        pytest.skip("no published site under outputs/ (run `python3 tasks.py run`)")
    problems = [p for f in files for p in disagreements(json.loads(f.read_text()))]
    assert problems == []
