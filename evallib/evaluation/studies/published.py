"""NHS England's published comparisons of vanguards with the rest of England, and Morciano et al.'s, reproduced.

Each publication compared growth in emergency admissions between a baseline window and a later one. For each,
:func:`published_comparisons` computes, from the bundled Monthly Activity Return and resident populations
(:mod:`evallib.evaluation.studies.growth`), the growth of each group's CCGs per head and in counts, pooled (the
group's CCGs summed) and as a site mean (each vanguard's CCGs summed, then the mean over vanguards), with CCGs
that have a run of suspect months in either window, or a one-month level shift between the two (the screen of
the sites' own series, :func:`evallib.sources.quality.structural_breaks`), left out, beside the figure the
publication gave.

Why the figures differ, in words (:data:`DIFFERENCES`): NHS England measured each vanguard's **registered
practice population** (GP lists run a median 3% above ONS residents for the same CCG) and, for several MCPs and
PACS, only the practices in the vanguard, where this project can see only whole CCGs (the CCG's admissions
dilute the vanguard's); and its averages may be weighted by population where the site mean here is not.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from evallib.evaluation.studies.growth import NO_VANGUARD, Window, programme_growth


@dataclass(frozen=True)
class Publication:
    """One published comparison: who, when, the two windows, the measure, and the figures by group."""

    key: str
    source: str
    base: Window
    follow: Window
    window_text: str
    measure: str  # "per head" or "counts"
    #: Group -> published growth in percent, or None where the window is shown for a care model the
    #: publication gave no comparable figure for (groups: "PACS", "MCP", "EHCH", "UEC", "PACS+MCP", NO_VANGUARD).
    figures: dict[str, float | None]
    note: str = ""


PUBLICATIONS: tuple[Publication, ...] = (
    Publication(
        "nhse_2018",
        'NHS England, "The New Care Models programme: achievements, learnings and next steps" (26 April 2018)',
        ("2014-04", "2015-03"),
        ("2016-10", "2017-09"),
        "2014-15 against the 12 months to September 2017 (Q2 2017/18)",
        "per head",
        {"PACS": 1.2, "MCP": 2.6, "EHCH": None, "UEC": None, NO_VANGUARD: 4.9},
        note="the publication's EHCH figure (-1.4% against +6.7%) is for care-home residents' admissions, which "
        "CCG totals cannot separate; UEC vanguards had no published figure",
    ),
    Publication(
        "nhse_2017_next_steps",
        'NHS England, "Next Steps on the NHS Five Year Forward View" (31 March 2017)',
        ("2014-04", "2015-03"),
        ("2016-01", "2016-12"),
        "2014-15 against calendar 2016",
        "per head",
        {"PACS": 1.1, "MCP": 1.9, NO_VANGUARD: 3.2},
    ),
    Publication(
        "nhse_2017_letter",
        "NHS England, letter to vanguards (July 2017, reported by HSJ)",
        ("2014-04", "2015-03"),
        ("2016-04", "2017-03"),
        "2014-15 against 2016-17",
        "per head",
        {"PACS": 0.8, "MCP": 2.5, NO_VANGUARD: 3.0},
        note="the report gives the baseline as 2015; read here as NHS England's usual baseline year 2014-15",
    ),
    Publication(
        "morciano_2021",
        "Morciano et al., BMC Health Services Research 2021 (doi 10.1186/s12913-021-06692-x)",
        ("2013-04", "2014-03"),
        ("2017-04", "2018-03"),
        "2013-14 against 2017-18",
        "counts",
        {"PACS+MCP": 8.8, NO_VANGUARD: 12.0},
        note="CCGs in the vanguard programme against CCGs elsewhere; the vanguard CCGs here are those of PACS and "
        "MCP vanguards",
    ),
)

#: The reasons the reproduced figures differ from the published ones, for the page.
DIFFERENCES: tuple[str, ...] = (
    "Resident against registered population: the populations here are ONS residents of each CCG; NHS England "
    "divided by the vanguards' registered practice lists, which run a median 3% above residents for the same "
    "CCG and grow differently.",
    "Whole CCG against the vanguard's practices: several MCPs and PACS (Lakeside, Modality, Encompass, West "
    "Wakefield, Better Local Care) served only some practices of their CCG, and the registry's CCG can be larger "
    "than the vanguard (V03 South Somerset is all of Somerset; V06 is all of pre-2017 Cumbria). The CCG's "
    "admissions dilute the vanguard's: Lakeside's CCG (Corby) grew +19.4% per head where NHS England's "
    "dashboard showed +7.1% for the vanguard.",
    "Site mean against population-weighted: NHS England's averages may weight vanguards by population, as the "
    "pooled column here does; the site mean gives each vanguard one vote, so small sites weigh as much as large.",
    "Counts against per head: population grew about 2% between 2014-15 and 2017, so growth in counts runs about "
    "2 points above growth per head.",
)

COMPARISON_COLUMNS = [
    "publication",
    "source",
    "window",
    "measure",
    "group",
    "n_ccgs",
    "n_sites",
    "per_head_pooled_pct",
    "per_head_site_mean_pct",
    "counts_pooled_pct",
    "counts_site_mean_pct",
    "published_pct",
    "note",
]


def reproduce(pub: Publication) -> pd.DataFrame:
    """One publication reproduced: a row per group it reported (columns :data:`COMPARISON_COLUMNS`)."""
    models = tuple(tuple(g.split("+")) for g in pub.figures if g != NO_VANGUARD)
    # CCGs whose series shifts level between the windows are left out too: no growth spans an unexplained break.
    pooled, site = (
        programme_growth(pub.base, pub.follow, care_models=models, average=a, drop_suspect=True, drop_breaks=True)
        for a in ("pooled", "site")
    )
    pooled, site = pooled.set_index("group"), site.set_index("group")
    rows = []
    for group, published in pub.figures.items():
        p, s = pooled.loc[group], site.loc[group]
        rest = group == NO_VANGUARD
        rows.append(
            (
                pub.key,
                pub.source,
                pub.window_text,
                pub.measure,
                group,
                int(p["n_units"]),
                0 if rest else int(s["n_units"]),
                float(p["growth_per_head_pct"]),
                float("nan") if rest else float(s["growth_per_head_pct"]),
                float(p["growth_pct"]),
                float("nan") if rest else float(s["growth_pct"]),
                float("nan") if published is None else published,
                pub.note,
            )
        )
    return pd.DataFrame(rows, columns=COMPARISON_COLUMNS)


def published_comparisons(publications: tuple[Publication, ...] = PUBLICATIONS) -> pd.DataFrame:
    """Every publication reproduced, one row per (publication, group); see :func:`reproduce`."""
    return pd.concat([reproduce(p) for p in publications], ignore_index=True)
