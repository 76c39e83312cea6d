"""One scale per reader: every effect a rendered site page shows in words or in its estimate tables is in
percent (percentage points for shares), with the unit named; log values are left to the downloads and
results.json. Pages are rendered for several kinds of site: a vanguard leading with synthetic DiD and a
pre-trend caution (V04), a volatile ICS answered by the studentized test (I13), an ICS with staggered waves and
a share outcome (I12), and an evaluator's own data on local authorities with a clear effect.
"""

from __future__ import annotations

import math
import re
from html.parser import HTMLParser

import pytest

from evallib import evaluate_site, load_params
from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.reporting.report import full_report

from .conftest import ROOT
from .test_answer import _simulated_site

pytestmark = pytest.mark.integration

#: Words that say a number on the page is on the log scale.
LOG_WORDS = re.compile(r"\blog (?:points?|scale|units?|difference)\b|\bdifference in logs?\b", re.I)
#: A signed number with two or more decimals and no unit after it ("estimate -0.026", "+0.143").
BARE_SIGNED = re.compile(r"(?<![\w.])[+\-\u2212]\d+\.\d{2,}(?!\d)(?!\s*(?:%|percentage points?|pts))")
#: Signed numbers that are not effects: correlations.
NOT_EFFECTS = ("autocorrelation of the errors", "correlation")
#: An effect cell of an estimates table: a signed percent, points, percent or points a year, a count of events.
EFFECT_CELL = re.compile(
    r"^(?:|[+-][\d,]+(?:\.\d)?(?:%|% a year| pts| pts a year)?|unbounded|-unbounded|withheld|any effect \(too few comparison units for a bound\))$"
)


class _Page(HTMLParser):
    """The words of a page outside tables, and each table's header and rows (figures and styles skipped)."""

    def __init__(self) -> None:
        super().__init__()
        self.words: list[str] = []
        self.tables: list[tuple[list[str], list[list[str]]]] = []
        self._skip = 0
        self._table = 0
        self._row: list[str] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in ("svg", "style", "script"):
            self._skip += 1
        elif tag == "table":
            self._table += 1
            self.tables.append(([], []))
        elif tag == "tr" and self._table:
            self._row = []
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("svg", "style", "script"):
            self._skip -= 1
        elif tag == "table":
            self._table -= 1
        elif tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row.append(" ".join("".join(self._cell).split()))
            self._cell = None
        elif tag == "tr" and self._row is not None:
            head, rows = self.tables[-1]
            (rows if head else head).extend([self._row] if head else self._row)
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if self._cell is not None:
            self._cell.append(data)
        elif not self._table:
            self.words.append(data)


def parse(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def _own_data_site() -> SiteEvaluation:
    protocol, panel = _simulated_site(math.log(0.7), volatility=1.0)
    return evaluate_site(protocol, panel=panel)


@pytest.fixture(scope="module")
def pages() -> dict[str, str]:
    out = {
        sid: full_report(evaluate_site(load_params(ROOT / "params" / kind / f"{sid}.yaml")))
        for sid, kind in (("V04", "vanguards"), ("I13", "ics"), ("I12", "ics"))
    }
    out["own data"] = full_report(_own_data_site())
    return out


def bare_log_numbers(html: str) -> list[str]:
    """Every place a page says a number on the log scale, or shows an effect without its unit."""
    page = parse(html)
    text = " ".join(" ".join(page.words).split())
    found = [m.group(0) for m in LOG_WORDS.finditer(text)]
    found += [
        text[max(0, m.start() - 60) : m.end()]
        for m in BARE_SIGNED.finditer(text)
        if not text[max(0, m.start() - 40) : m.start()].rstrip().endswith(NOT_EFFECTS)
    ]
    for head, rows in page.tables:
        effect_columns = [i for i, h in enumerate(head) if h in ("Estimate", "95% interval")]
        for row in rows:
            for i in effect_columns:
                cells = row[i].split(" to ") if head[i] == "95% interval" else [row[i]]
                found += [f"{row[:2]}: {c}" for c in cells if not EFFECT_CELL.match(c)]
        growth = [i for i, h in enumerate(head) if "growth" in h.lower()]
        found += [f"{row[0]}: {row[i]}" for row in rows for i in growth if row[i] and not row[i].endswith("%")]
    return found


def test_no_page_shows_an_effect_on_the_log_scale_or_without_its_unit(pages: dict[str, str]) -> None:
    for name, html in pages.items():
        assert bare_log_numbers(html) == [], name


def test_the_checker_finds_the_slips_the_reports_once_made() -> None:
    """The scan would fail on what issue 18 found: log-scale robustness bullets, a bare growth, log words."""
    slips = (
        "<ul><li>agrees: placebo in time: estimate -0.026, p = 0.4.</li></ul>",
        "<p>a fake start gives +0.143</p>",
        "<p>Pre-period fit (RMSPE, log scale): 0.023</p>",
        "<table><tr><th>Estimate</th><th>95% interval</th></tr><tr><td>-0.064</td><td>-0.1 to 0.2</td></tr></table>",
        "<table><tr><th>CCG</th><th>Pre-period growth per year</th></tr><tr><td>10H</td><td>+0.191</td></tr></table>",
    )
    for html in slips:
        assert bare_log_numbers(html), html
    fine = "<p>-6.4% (-17.2% to +5.7%, p = 0.28); +1.2 percentage points; AR(1) 0.13; rising by about 12.6% a year</p>"
    assert bare_log_numbers(fine) == []


def test_the_pre_trend_caution_says_percent_a_year(pages: dict[str, str]) -> None:
    text = " ".join(parse(pages["V04"]).words)
    assert "points a year" not in text
    assert re.search(r"was (?:rising|falling) by about \d+\.\d% a year relative to its comparison pool", text)


def test_the_placebo_histogram_names_the_estimator_it_shows(pages: dict[str, str]) -> None:
    """V04 leads with synthetic DiD: its histogram is synthetic DiD's placebos, and its description says so."""
    assert 'alt="placebo distribution of the synthetic difference-in-differences for' in pages["V04"]
    assert 'alt="placebo distribution of the difference-in-differences for' not in pages["V04"]


def test_the_placebo_histogram_legend_names_its_estimator_and_its_axis_speaks_percent() -> None:
    from evallib import DiD
    from evallib.methods.simulate import simulate_panel
    from evallib.reporting import plots

    d = simulate_panel(20, 24, start_period=12, seed=2)
    fig = plots.plot_placebo_distribution(DiD("value", "unit", "period", "treated", "post").fit(d))
    assert "this site (difference-in-differences)" in [line.get_label() for line in fig.axes[0].lines]
    plots.percent_axis(fig.axes[0], "x")
    fmt = fig.axes[0].xaxis.get_major_formatter()
    assert fmt(math.log(1.1), 0) == "+10%" and fmt(math.log(0.8), 0) == "-20%" and fmt(0.0, 0) == "0"
