"""The glossary of the "how to read these reports" page: every term a report uses, in plain words."""

from __future__ import annotations

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
        "least as large: honest when a site is only one or a few areas.",
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
        "Confirmed: the primary estimate is clear and every check that could run agrees with it: the primary "
        "estimator re-fitted on other comparison sets, with a fake start date and dropping each comparator, and "
        "the pre-trend test finding no diverging trends before the start. Not confirmed: at least one disagrees. "
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
    ("Rate ratio", "The same comparison as a Poisson model of the counts: 1 means no change, 0.9 a rate 10% lower."),
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
