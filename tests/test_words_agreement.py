"""Plurals and agreement come from the words module (``evallib.vocabulary``): every sentence builder and
template that counts things says "1 site", "2 sites", "1 local authority", "2 local authorities", "disagrees"
for one check and "disagree" for two, "was" for a singular outcome and "were" for a plural one; no text hedges
with "(s)"; a site noisier than all its comparators is said to be so, never "noisier than 100%"."""

from __future__ import annotations

import ast
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest

from evallib.evaluation.site.evaluate import _noisier
from evallib.evaluation.studies.programme import ProgrammeData
from evallib.reporting import programme_page
from evallib.reporting.templating import render
from evallib.reporting.words import effect_sentence
from evallib.vocabulary import OUTCOME_LABELS, agree, be, is_plural, plural, plural_word, spell_out, unit_plural

from .conftest import ROOT


@pytest.mark.parametrize(
    ("word", "plural_form"),
    [
        ("site", "sites"),
        ("month", "months"),
        ("quarter", "quarters"),
        ("local authority", "local authorities"),
        ("day", "days"),
        ("practice", "practices"),
        ("GP practice", "GP practices"),
        ("box", "boxes"),
        ("church", "churches"),
        ("CCG", "CCGs"),
        ("person", "people"),
        ("analysis", "analyses"),
        ("trusts", "trusts"),
        ("comparison local authority", "comparison local authorities"),
    ],
)
def test_plural_follows_english(word: str, plural_form: str) -> None:
    assert plural_word(word) == plural_form
    assert plural(1, word) == f"1 {word}"
    assert plural(2, word) == f"2 {plural_form}"
    assert plural(1200, word) == f"1,200 {plural_form}"


def test_an_evaluators_unit_label_is_pluralised_by_the_rules() -> None:
    assert unit_plural("local authority") == "local authorities"
    assert unit_plural("CCG") == "CCGs" and unit_plural("trust") == "trusts" and unit_plural("ward") == "wards"


def test_every_outcome_label_takes_the_verb_that_agrees_with_it() -> None:
    singular = {"four_hour_performance"}
    for key, label in OUTCOME_LABELS.items():
        assert is_plural(label) is (key not in singular), label
        assert be(label, past=True) == ("was" if key in singular else "were")
    assert be("emergency admissions via A&E") == "are"  # the head noun comes before "via"
    assert be("emergency (non-elective) admissions per head (per 1,000 residents)", past=True) == "were"
    assert agree(1, "disagrees", "disagree") == "disagrees" and agree(2, "disagrees", "disagree") == "disagree"


def test_the_effect_sentence_agrees_with_its_outcome() -> None:
    row = {"scale": "log", "estimate": -0.05, "ci_low": -0.1, "ci_high": 0.01}
    assert "admissions per head (per 1,000 residents) were 4.9% lower" in effect_sentence(
        row, outcome="admissions per head (per 1,000 residents)", units="CCGs"
    )
    assert "performance was 4.9% lower" in effect_sentence(row, outcome="four-hour A&E performance", units="trusts")


def _analysis(k: int, pct: float, n: int = 39) -> SimpleNamespace:
    coverage = SimpleNamespace(
        treated_used=tuple(f"U{i}" for i in range(k)),
        n_comparators=n,
        units="trusts",
        unit_kind="trust",
        period_word="month",
    )
    return SimpleNamespace(coverage=coverage, noise_percentile=pct)


def test_a_noisy_site_is_said_to_be_noisier_than_its_comparators_in_plain_words() -> None:
    one_all = _noisier(_analysis(1, 100.0))  # type: ignore[arg-type]
    assert one_all == "noisier than every one of its 39 comparison trusts (month-to-month variation)"
    assert _noisier(_analysis(1, 100.0, n=1)).startswith("noisier than every one of its 1 comparison trust ")  # type: ignore[arg-type]
    assert _noisier(_analysis(1, 93.0)).startswith("noisier than 93% of its 39 comparison trusts")  # type: ignore[arg-type]
    three = _noisier(_analysis(3, 100.0))  # type: ignore[arg-type]
    assert three.startswith("noisier than every one of random sets of 3 comparison trusts")
    almost = _noisier(_analysis(3, 99.7))  # type: ignore[arg-type]
    assert almost.startswith("noisier than more than 99% of random sets of 3") and "100%" not in almost
    assert "100%" not in one_all + three


def test_the_robustness_verdict_agrees_with_how_many_checks_disagree() -> None:
    base = {
        "estimator": "difference-in-differences",
        "points": False,
        "units": "CCGs",
        "unit": "CCG",
        "period_word": "month",
        "table": "",
        "checks": [],
        "verdict": "not confirmed",
        "matched": None,
        "synthetic": None,
        "balance": None,
        "loo_all": 500,
        "loo_top": 100,
    }
    one = str(render("robustness.html.j2", **base, disagreements="placebo in time", n_disagree=1))
    two = str(render("robustness.html.j2", **base, disagreements="placebo in time, pre-trend test", n_disagree=2))
    assert "placebo in time disagrees;" in one and "pre-trend test disagree;" in two


def _programme(n_pacs: int, n_own: int) -> ProgrammeData:
    rows = [
        {
            "site_id": f"V{i:02d}",
            "site_name": "x",
            "care_model": "PACS",
            "status": "evaluated",
            "scale": "log",
            "estimate": -0.1 + 0.01 * i,
            "std_error": 0.03,
            "ci_low": -0.2,
            "ci_high": 0.05,
            "p_value": 0.3,
            "inputs": f"i{i}",
            "own_data": False,
        }
        for i in range(n_pacs)
    ]
    rows += [{**rows[0], "site_id": f"S{i:02d}", "inputs": f"s{i}", "own_data": True} for i in range(n_own)]
    return ProgrammeData(pd.DataFrame(rows))


@pytest.mark.parametrize(("n", "own"), [(1, 1), (2, 2), (3, 0)])
def test_the_programme_page_counts_sites_in_agreement(n: int, own: int) -> None:
    data = _programme(n, own)
    overview = programme_page.overview(data).html
    assert plural(n, "site") + " of the programme" in overview
    if own:
        assert f"Beside them, {plural(own, 'site')} on an evaluator" in overview
    else:
        assert "Beside them" not in overview
    answer = programme_page.pooled_answer(data).html
    assert f"PACS ({plural(n, 'site')})" in answer


def test_registry_abbreviations_are_spelled_out_where_they_first_appear() -> None:
    text = spell_out("registry: IAU/HSJ: PACS comprises Northumberland CCG + Northumbria Healthcare FT; IAU again")
    assert "IAU (the Improvement Analytics Unit" in text and "HSJ (Health Service Journal)" in text
    assert text.count("Improvement Analytics Unit") == 1 and text.endswith("IAU again")


def _words_in(path: Path) -> str:
    """The text a file can show a reader: a module's string literals (messages, docstrings), or the whole file."""
    if path.suffix != ".py":
        return path.read_text()
    tree = ast.parse(path.read_text())
    return "\n".join(n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str))


def test_no_template_or_sentence_builder_hedges_a_plural_with_parentheses() -> None:
    """ "disagree(s)", "site(s)": a count is known when the words are written, so the words say it (in everything
    that writes a page or a message: every module of the package, the tools, the templates and the notebooks).
    """
    lib = ROOT / "evallib"
    sources = [*lib.rglob("*.py"), *(ROOT / "tools").glob("*.py")]
    sources += [*(lib / "reporting" / "templates").glob("*.j2"), *(ROOT / "notebooks").glob("*.ipynb")]
    hedged = re.compile(r"(?<![\w.])[A-Za-z]+\((?:s|es)\)")  # a word, not code such as is_relative_to(s)
    found = [f"{p.relative_to(ROOT)}: {m.group(0)}" for p in sources for m in hedged.finditer(_words_in(Path(p)))]
    assert found == []


@pytest.mark.parametrize(
    ("words", "said"),
    [
        ("increase", "an increase"),
        ("decrease", "a decrease"),
        ("11.0% fall", "an 11.0% fall"),
        ("4.6% fall", "a 4.6% fall"),
        ("8% fall", "an 8% fall"),
        ("80.1% fall", "an 80.1% fall"),
        ("18-month follow-up", "an 18-month follow-up"),
        ("110% rise", "a 110% rise"),
        ("11,000 admissions", "an 11,000 admissions"),
    ],
)
def test_the_article_is_the_one_a_reader_says(words: str, said: str) -> None:
    """ "about a 11.0% fall" on the area-share note: numbers take the article of how they are read aloud."""
    from evallib.reporting.words import article

    assert article(words) == said


def test_a_skipped_outcomes_reason_ending_a_sentence_gets_one_full_stop() -> None:
    """Reasons may quote a stitch note that ends its own sentence; the page never shows "match).."."""
    html = str(
        render("data_coverage.html.j2", analyses=[], skipped=[("A&E attendances", "no rows (a name did not match).")])
    )
    assert "match)." in html and ".." not in html


def test_ranks_and_percentiles_are_read_as_ordinals() -> None:
    from evallib.vocabulary import ordinal

    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 100, 101, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "100th", "101st", "111th"
    ]  # fmt: skip


def test_a_withheld_pre_trend_test_says_nothing_either_way() -> None:
    """A volatile outcome's pre-trend p-value is withheld: the page never says 'no clear evidence ... ()'."""
    from evallib.reporting.sections import _pretrend_sentence

    nan = float("nan")
    a = SimpleNamespace(
        label="A&E attendances",
        pretrend=SimpleNamespace(p_value=nan),
        pretrend_evidence=False,
        event_study=SimpleNamespace(leads=(1,), pretrend=SimpleNamespace(p_value=nan)),
    )
    text = _pretrend_sentence(a)  # type: ignore[arg-type]
    assert "gave no p-value" in text and "no clear evidence" not in text and "()" not in text
    a.pretrend = SimpleNamespace(p_value=0.16)
    text = _pretrend_sentence(a)  # type: ignore[arg-type]
    assert "no clear evidence of diverging trends before the start (p = 0.16)." in text and "joint placebo" not in text


def test_an_interval_unbounded_both_ways_is_read_as_any_effect() -> None:
    """Ten matched comparators give eleven assignments: no effect can be ruled out, and the table says so in words."""
    from evallib.methods.base.results import Estimate
    from evallib.reporting.blocks import estimate_rows

    inf = float("inf")
    row = Estimate(
        "admissions", "treated_x_post", -0.02, 0.05, -inf, inf, 0.73, "did_matched", "placebo_in_space", "log", 1, 10
    )
    [cells] = estimate_rows([("Admissions", row, False)])
    assert cells["interval"] == "any effect (too few comparison units for a bound)"
    assert "unbounded" not in str(cells)
