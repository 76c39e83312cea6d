"""The glossary of the "how to read these reports" page: every term a report uses, in plain words.

Pages link a term to its entry with :func:`term_link` (``how-to-read.html#<entry id>``); every estimator a
protocol may lead with and every inference a page shows has an entry (``ESTIMATOR_ENTRIES``,
``INFERENCE_ENTRIES``), and a test follows every such link on rendered pages to an entry that exists.
"""

from __future__ import annotations

import re

from markupsafe import Markup

GLOSSARY: tuple[tuple[str, str], ...] = (
    (
        "Comparison areas",
        "The CCGs, trusts or areas the site is compared with: units the protocol's rule allows "
        "(never other vanguards or ICSs designated during follow-up) with complete data. Also called the comparison pool.",
    ),
    (
        "Difference-in-differences (DiD)",
        "How much more, or less, the site's outcome changed after the start than its "
        "comparison areas' did over the same months. It assumes that without the care model the two would have moved "
        "in parallel.",
    ),
    (
        "Parallel trends, pre-trend test",
        "Before the start the site and its comparison areas should move together. The "
        "pre-trend test asks whether they were already drifting apart; if so (p at most 0.05) the report says so as a caution.",
    ),
    (
        "Placebo test (placebo in space)",
        "Each comparison area in turn is treated as if it had started the care model, "
        "and the site's estimate is ranked among these placebo estimates. The p-value is the share of placebos at "
        "least as large: honest when a site is only one or a few areas. When trying every area (or, for a site of "
        "several areas, every set of as many) would cost too much, a random sample of them is tried instead; the "
        "p-value then estimates the full test's, and the report gives how many were drawn and its Monte Carlo error.",
    ),
    (
        "95% interval",
        "Every effect the placebo test does not reject: the range of effects the data are consistent "
        "with. An interval that includes no change means no clear effect.",
    ),
    (
        "p-value",
        "How often an effect at least this large would appear by chance if the care model did nothing. At or "
        "below 0.05 is called a clear effect here, exactly when the 95% interval leaves out no change; it is not the "
        "probability that the care model worked. At the edge of significance: one placebo more or fewer as large "
        "as the site's would change that.",
    ),
    (
        "Primary estimate",
        "The one estimate the protocol chose before the results were seen to answer its question; "
        "the summary and the index lead with it. Other methods are reported beside it, and where they disagree the "
        "report says why.",
    ),
    (
        "Hoped-for direction",
        "The change the protocol expected (for emergency admissions, a decrease). The marker on "
        "the index is good for a clear change in that direction that the robustness checks confirm, bad for a "
        "confirmed clear change the other way, not confirmed for a clear change the checks do not confirm, unclear "
        "otherwise.",
    ),
    (
        "Robustness verdict",
        "Confirmed: the primary estimate is clear and every check that could test it agrees with it: the primary "
        "estimator re-fitted on other comparison sets, with a fake start date and dropping each comparator, and "
        "the pre-trend test finding no diverging trends before the start. A check that ran but could not have "
        "disagreed (too few placebo assignments for its test to reach 5%) says 'could not test' and is not counted. "
        "Not confirmed: at least one disagrees, or none could test it. "
        "No clear effect: there is nothing for the checks to confirm. Beside it, the parallel-trends sensitivity: how many times the "
        "largest departure from parallel trends before the start a departure after it would have to be to overturn "
        "the conclusion (below 1: the conclusion rests on trends staying parallel).",
    ),
    (
        "Minimum detectable effect",
        "The smallest change the design would have detected four times in five (80% power). "
        "A null result is only reassuring when this is small.",
    ),
    (
        "Interrupted time series (ITS)",
        "The site's own series before the start, projected forward, against what "
        "happened. On its own it attributes anything that changed at the same time to the site, so it is a description; "
        "the controlled version uses the site's series relative to its comparison areas'.",
    ),
    (
        "Synthetic control",
        "A weighted mix of comparison areas chosen to track the site before the start; after it, the "
        "gap between the site and that mix is the effect.",
    ),
    (
        "Rate ratio",
        "The same comparison as a Poisson model of the counts. A ratio of 0.9 is a rate 10% lower, so the reports "
        "show it as a percent change (-10.0%), like every other effect.",
    ),
    (
        "Synthetic difference-in-differences (synthetic DiD)",
        "Difference-in-differences on weighted comparison areas and weighted pre-period months (Arkhangelsky et "
        "al., 2021): the weights make the comparison track the site before the start, so it leans less on parallel "
        "trends than plain DiD. Its p-value and interval come from the placebo test.",
    ),
    (
        "Studentized placebo test",
        "A placebo test in which each area's change is divided by its own month-to-month noise before the start, so "
        "that a site much noisier than its comparison areas cannot look significant by chance (a plain placebo test "
        "ranks it among quieter areas). A site noisier than 90% of what its comparison areas would give is answered "
        "by this test, and the plain tests' p-values and intervals are withheld for it.",
    ),
    (
        "Controlled interrupted time series (controlled ITS)",
        "The site's series relative to its comparison areas', projected forward from before the start: unlike "
        "difference-in-differences it carries forward any trend in the gap, so it disagrees with DiD when the site "
        "was already drifting away before the start. Tested with the placebo test.",
    ),
    (
        "Own-series ITS (AR(1) errors, bootstrap-t)",
        "An interrupted time series of the site alone: errors that follow an AR(1) process, fitted by REML, and "
        "intervals from a bootstrap of the t statistics. It attributes anything that changed at the start to the "
        "site, so it is a description, not an evaluation.",
    ),
    (
        "Placebo in time (fake start)",
        "The primary estimator re-fitted with a fake start date inside the pre-period, where no effect can exist: "
        "a clear effect there means the method finds effects that are not there.",
    ),
    (
        "Leave one out",
        "The primary estimator re-fitted dropping each comparison area in turn: a clear effect that disappears "
        "without one comparator rests on that comparator.",
    ),
    (
        "Matched comparators",
        "The 10 comparison areas most like the site before the start (size, growth, seasonal profile), as another "
        "comparison set for the primary estimator.",
    ),
    (
        "Parallel-trends sensitivity (relative magnitudes)",
        "Rambachan and Roth's check: how large a departure from parallel trends after the start, relative to the "
        "largest one before it, would overturn the conclusion. Reported beside the verdict, not counted in it.",
    ),
    (
        "Percent a year",
        "A difference in growth: +5% a year means the site's outcome grew 5% a year faster than its comparison "
        "areas' (relative to them, it is 5% higher after one year, about 10% after two).",
    ),
    (
        "Pooled effect (random effects)",
        "On the programme page, one effect per care model from its sites' primary estimates, each weighted by its "
        "precision plus the variation between sites (tau², by restricted maximum likelihood; I² is the share of the "
        "variation that is between sites rather than chance), with a Hartung-Knapp interval that stays honestly wide "
        "with few sites. Only sites analysed on the programme's NHS data are pooled.",
    ),
    (
        "Care models (PACS, MCP, EHCH, UEC, ACC, ICS)",
        "NHS England's new care models: primary and acute care systems (PACS), multispecialty community providers "
        "(MCP), enhanced health in care homes (EHCH), urgent and emergency care networks (UEC), acute care "
        "collaborations (ACC); integrated care systems (ICS) came later, in waves from 2017.",
    ),
    (
        "CCG, trust",
        "A clinical commissioning group (CCG) bought care for the people of an area (2013 to 2022); a trust is an "
        "NHS provider, such as a hospital trust with an A&E department.",
    ),
    (
        "IAU, HSJ",
        "Sources of the registry of sites: the Improvement Analytics Unit (IAU) of NHS England and the Health "
        "Foundation, which evaluated several vanguards, and the Health Service Journal (HSJ).",
    ),
    (
        "Percentage points",
        "The unit of a change in a percentage (a share of a whole): four-hour performance going from "
        "80% to 78% is 2 percentage points lower, not 2.5% lower.",
    ),
    (
        "Rate per head",
        "A count divided by the population it comes from (per person or per 1,000): its effects are "
        "proportional, in percent.",
    ),
    (
        "Event study",
        "The difference between the site and its comparison areas period by period; before the start it "
        "should hover around zero.",
    ),
    (
        "Cautions",
        "What a reader must weigh before relying on a result: short follow-up, uncertain membership, trends "
        "diverging before the start, too few comparison areas.",
    ),
    (
        "Not evaluable",
        "The data cannot answer the question for this site (for example follow-up overlapping COVID-19, "
        "or none of its units in the data); no estimate is shown, because any number would mislead.",
    ),
    (
        "Suppressed counts (*)",
        "NHS rules for published sub-national counts: 1 to 7 are shown as *, other counts are "
        "rounded to the nearest 5.",
    ),
)


def entry_id(term: str) -> str:
    """The anchor of a glossary entry: ``Synthetic difference-in-differences (synthetic DiD)`` ->
    ``synthetic-difference-in-differences-synthetic-did``.
    """
    return re.sub(r"[^a-z0-9]+", "-", term.lower()).strip("-")


#: Every entry's anchor.
ENTRY_IDS = frozenset(entry_id(t) for t, _ in GLOSSARY)
#: The entry for each estimator a protocol may lead with (``vocabulary.ESTIMATOR_LABELS``).
ESTIMATOR_ENTRIES = {
    "did": entry_id("Difference-in-differences (DiD)"),
    "did_studentized": entry_id("Studentized placebo test"),
    "rate_ratio": entry_id("Rate ratio"),
    "controlled_its": entry_id("Controlled interrupted time series (controlled ITS)"),
    "synthetic_control": entry_id("Synthetic control"),
    "synthetic_did": entry_id("Synthetic difference-in-differences (synthetic DiD)"),
}
#: The entry for each inference a site page shows (the ``inference`` of its tidy rows).
INFERENCE_ENTRIES = {
    "placebo_in_space": entry_id("Placebo test (placebo in space)"),
    "placebo_studentized": entry_id("Studentized placebo test"),
    "ar1_reml_bootstrap_t": entry_id("Own-series ITS (AR(1) errors, bootstrap-t)"),
    "withheld_volatile_site": entry_id("Studentized placebo test"),
}


def glossary_entries() -> list[tuple[str, str, str]]:
    """(anchor, term, meaning) of every entry, in the glossary's order."""
    return [(entry_id(t), t, m) for t, m in GLOSSARY]


def term_link(text: str, entry: str) -> Markup:
    """``text`` linked to its glossary entry (escaped); a link to an entry that does not exist is an error."""
    if entry not in ENTRY_IDS:
        raise KeyError(f"no glossary entry {entry!r}: add it to evallib/reporting/glossary.py")
    return Markup('<a class="term" href="how-to-read.html#{}">{}</a>').format(entry, text)
