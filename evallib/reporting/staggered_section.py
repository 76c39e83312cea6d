"""The report section of a site whose treated units started at different dates: Callaway-Sant'Anna per cohort
and overall, each with its placebo test (:mod:`evallib.evaluation.site.staggered_site`).
"""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.methods.base.results import Estimate
from evallib.methods.did.rollout import cohort_term
from evallib.reporting.blocks import HTMLBlock, cap, estimate_table, figure_html, render
from evallib.vocabulary import plural

TITLE = "Staggered starts"


def _rows(ev: SiteEvaluation) -> list[tuple[str, Estimate, bool]]:
    st = ev.staggered
    assert st is not None  # only called for a staggered site
    weekly = st.frequency == "weekly"
    members = {cohort_term(s, 52 if weekly else 12): (s, units) for s, units in st.cohort_members()}
    out = []

    def add(name: str, rows: tuple[Estimate, ...]) -> None:
        for r in rows:  # the overall effect, then each cohort's
            if r.term == "overall":
                words = f"all {st.units}, cohorts weighted by size"
            else:
                start, units = members[r.term]
                words = f"cohort starting {st.when(start)} ({', '.join(units)})"
            out.append((cap(st.label), replace(r, term=f"{name}: {words}"), st.is_proportion))

    add("Callaway-Sant'Anna", st.result.rows)
    if st.placebo_in_time is not None:
        out.append((cap(st.label), st.placebo_in_time, st.is_proportion))
    if st.stacked is not None:  # the second estimator built for staggered starts
        add("stacked DiD", st.stacked.rows)
    return out


def _fake_start(term: str) -> str:
    """``placebo_in_time_2013-10`` -> ``October 2013``; weekly ``placebo_in_time_2017-03-06`` -> ``6 March 2017``."""
    date = term.removeprefix("placebo_in_time_")
    ts = pd.Timestamp(date)
    return f"{ts.day} {ts:%B %Y}" if len(date) == len("2017-03-06") else ts.strftime("%B %Y")


def staggered(ev: SiteEvaluation) -> HTMLBlock:
    """Callaway-Sant'Anna effects per cohort and overall (empty unless the site's units started at different dates)."""
    st = ev.staggered
    if not ev.evaluable or st is None:
        return HTMLBlock("")
    period = ev.primary.coverage.period_word if ev.primary is not None else "month"
    fig = st.result.plot(title=f"{cap(st.label)}: effect by cohort and overall")
    html = render(
        "staggered.html.j2",
        units=st.units,
        unit=st.units.removesuffix("s"),
        period=period,
        n_comparators=st.n_comparators,
        studentized=st.studentized,
        fake_start=None if st.placebo_in_time is None else _fake_start(st.placebo_in_time.term),
        draws=f"{len(st.result.placebo) - 1:,}",
        stacked=None
        if st.stacked is None
        else {
            "pre": plural(st.stacked.pre_periods, period),
            "post": plural(st.stacked.post_periods, period),
            "phase_in": plural(st.stacked.phase_in, period) if st.stacked.phase_in else "",
        },
        table=estimate_table(_rows(ev), period),
        figure=figure_html(fig, "effect of each cohort and overall, with 95% intervals"),
    )
    return HTMLBlock(str(html))
