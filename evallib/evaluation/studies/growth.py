"""NHS England's own comparison: growth in emergency admissions of vanguard CCGs against the rest of England.

NHS England judged the New Care Models vanguards on growth in emergency admissions of their CCGs between a
baseline year and a later 12 months, against CCGs in no vanguard (New Care Models, April 2018: baseline
2014-15 against the 12 months to Q2 2017/18). This module computes that comparison from the bundled Monthly
Activity Return (``mar_commissioner_2008_2019``, ``nonelective_admissions``):

- **growth** of a group = summed count over the follow-up window / summed count over the base window - 1, in
  percent, over the group's CCGs that report every month of both windows (a CCG formed or closed in between
  is left out, as in the published comparison; ``harmonised=True`` uses the areas of
  :func:`evallib.sources.areas.harmonise` over the two windows instead, so merged CCGs count too);
- **vanguard CCGs** are the ``ccg_codes`` of the registry's vanguard rows, by care model (PACS, MCP, EHCH, UEC,
  ACC); **CCGs in no vanguard** are every other CCG;
- ``drop_suspect=True`` leaves out CCGs with a run of suspect months (:func:`evallib.sources.quality.suspect_runs`,
  single months included) overlapping either window;
- ``drop_breaks=True`` leaves out CCGs whose series shifts level in one month between the start of the base window
  and the end of the follow-up window (:func:`evallib.sources.quality.structural_breaks` with ``own_noise=True``,
  the screen of the sites' own series), so no growth spans an unexplained break;
- a **site average** is the mean over sites of each site's growth (its usable CCGs summed); a site with no
  usable CCG is left out;
- **growth per head** (``growth_per_head_pct``, as NHS England measured it: admissions per 1,000 population) =
  (follow-up count / follow-up population) / (base count / base population) - 1, where a window's population is
  the mean of the monthly resident populations (:mod:`evallib.sources.populations`) of the same CCGs; it uses
  the group's usable CCGs that have a population in every month of both windows (``n_units_per_head``; CCGs
  without one are Newcastle 00G and 00H before April 2015).

This is a descriptive comparison of growth, not an effect estimate: it has no comparison of trends before the
vanguards began and no interval (the per-site analyses provide both).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache

import pandas as pd

from evallib.errors import DataError
from evallib.sources.areas import harmonise, resolve
from evallib.sources.bundled import load_bundled
from evallib.sources.panel import Panel
from evallib.sources.populations import area_populations, monthly_populations
from evallib.sources.quality import structural_breaks, suspect_runs, units_with_runs
from evallib.sources.registry import load_registry

DATASET = "mar_commissioner_2008_2019"
OUTCOME = "nonelective_admissions"
CARE_MODELS = ("PACS", "MCP", "EHCH", "UEC", "ACC")
NO_VANGUARD = "no vanguard"
_ROW_COLUMNS = [
    "n_units",
    "base_total",
    "follow_total",
    "growth_pct",
    "units",
    "left_out",
    "n_units_per_head",
    "growth_per_head_pct",
]
GROWTH_COLUMNS = ["group", *_ROW_COLUMNS]
SITE_COLUMNS = ["site_id", "name", "care_model", *_ROW_COLUMNS]
Row = tuple[int, float, float, float, tuple[str, ...], tuple[str, ...], int, float]

Window = tuple[pd.Timestamp | str, pd.Timestamp | str]


def _months(window: Window) -> pd.DatetimeIndex:
    lo, hi = (pd.Timestamp(x) for x in window)
    if hi < lo:
        raise DataError(f"growth window {lo:%Y-%m} to {hi:%Y-%m} ends before it starts")
    return pd.date_range(lo, hi, freq="MS")


class _Growth:
    """The panel, windows and exclusions shared by every group of one comparison."""

    def __init__(
        self,
        base: Window,
        follow: Window,
        panel: Panel | None,
        drop_suspect: bool,
        harmonised: bool,
        drop_breaks: bool = False,
    ):
        self.base, self.follow = _months(base), _months(follow)
        raw = panel if panel is not None else load_bundled(DATASET)
        self.area_map = None
        data = raw
        if harmonised:
            data, self.area_map = harmonise(raw, min(self.base[0], self.follow[0]), max(self.base[-1], self.follow[-1]))
        wide = data.wide(OUTCOME)
        months = self.base.union(self.follow)
        if self.area_map is not None:
            pops = area_populations(raw, data, self.area_map, OUTCOME).reindex(months)
        else:
            pops = monthly_populations(months, wide.columns)
        # A window's population: the mean over its months (NaN unless every month has one).
        self.base_pop = pops.reindex(self.base).mean(skipna=False)
        self.follow_pop = pops.reindex(self.follow).mean(skipna=False)
        self.base_sum = wide.reindex(self.base).sum(min_count=1)
        self.follow_sum = wide.reindex(self.follow).sum(min_count=1)
        complete = wide.reindex(self.base).notna().all() & wide.reindex(self.follow).notna().all()
        self.reasons: dict[str, str] = {u: "not every month of both windows" for u in wide.columns[~complete]}
        if drop_suspect:  # runs are found on the codes' whole series, then mapped to areas
            runs = _bundled_runs() if panel is None else suspect_runs(raw, OUTCOME)
            to_unit = self.area_map.code_to_area if self.area_map is not None else {}
            for w in (self.base, self.follow):
                for code in sorted(units_with_runs(runs, w[0], w[-1])):
                    first = runs.loc[runs["unit"] == code, "first"].min()
                    unit = to_unit.get(code, code)
                    where = f"{code}, " if unit != code else ""
                    self.reasons.setdefault(unit, f"suspect months ({where}from {first:%b %Y})")
        if drop_breaks:
            lo, hi = min(self.base[0], self.follow[0]), max(self.base[-1], self.follow[-1])
            for b in structural_breaks(data, OUTCOME, lo, hi, own_noise=True).itertuples():
                self.reasons.setdefault(str(b.unit), f"level shift of {b.change_pct:+.0f}% in {b.month:%b %Y}")
        self.units = set(wide.columns)

    def codes(self, codes: Iterable[str]) -> list[str]:
        if self.area_map is None:
            return [c for c in dict.fromkeys(codes) if c in self.units]
        return list(resolve(codes, self.area_map)[0])

    def row(self, units: Iterable[str]) -> Row:
        units = sorted(set(units))
        used = [u for u in units if u not in self.reasons]
        left = tuple(f"{u}: {self.reasons[u]}" for u in units if u in self.reasons)
        b, f = float(self.base_sum[used].sum()), float(self.follow_sum[used].sum())
        growth = 100 * (f / b - 1) if used and b > 0 else float("nan")
        with_pop = [u for u in used if pd.notna(self.base_pop.get(u)) and pd.notna(self.follow_pop.get(u))]
        per_head = float("nan")
        if with_pop:
            bp, fp = float(self.base_pop[with_pop].sum()), float(self.follow_pop[with_pop].sum())
            bc, fc = float(self.base_sum[with_pop].sum()), float(self.follow_sum[with_pop].sum())
            per_head = 100 * ((fc / fp) / (bc / bp) - 1) if bc > 0 else float("nan")
        return len(used), b, f, growth, tuple(used), left, len(with_pop), per_head


@lru_cache(maxsize=1)
def _bundled_runs() -> pd.DataFrame:
    """The bundled Monthly Activity Return's suspect runs (the same for every window: found on whole series)."""
    return suspect_runs(load_bundled(DATASET), OUTCOME)


@lru_cache(maxsize=16)
def _bundled(base: Window, follow: Window, drop_suspect: bool, harmonised: bool, drop_breaks: bool) -> _Growth:
    # The bundled data never change in a process (load_bundled is cached too) and nothing changes a _Growth once
    # made: the pooled and site averages of one comparison (the programme page's four publications) share one.
    return _Growth(base, follow, None, drop_suspect, harmonised, drop_breaks)


def _growth(
    base: Window, follow: Window, panel: Panel | None, drop_suspect: bool, harmonised: bool, drop_breaks: bool
) -> _Growth:
    if panel is None:  # a window may come as a list (read from JSON or YAML): a tuple is a cache key
        return _bundled(tuple(base), tuple(follow), drop_suspect, harmonised, drop_breaks)
    return _Growth(base, follow, panel, drop_suspect, harmonised, drop_breaks)


def vanguard_ccgs(care_models: Iterable[str] = CARE_MODELS) -> dict[str, tuple[str, ...]]:
    """Registry CCG codes of the vanguards of each care model (a CCG in two vanguards counts in both)."""
    out: dict[str, list[str]] = {m: [] for m in care_models}
    for site in load_registry():
        if site.site_type == "vanguard" and site.care_model in out:
            out[site.care_model].extend(site.ccg_codes)
    return {m: tuple(dict.fromkeys(codes)) for m, codes in out.items()}


def group_growth(
    groups: Mapping[str, Iterable[str]],
    base: Window,
    follow: Window,
    *,
    drop_suspect: bool = False,
    harmonised: bool = False,
    panel: Panel | None = None,
    drop_breaks: bool = False,
) -> pd.DataFrame:
    """Growth in summed emergency admissions of each group of CCG codes between two windows.

    Parameters
    ----------
    groups : mapping
        Group name -> CCG codes. The special value ``None`` is not allowed; use :func:`programme_growth` for the
        comparison with CCGs in no vanguard.
    base, follow : (start, end)
        First and last month of each window, e.g. ``("2013-04", "2014-03")``.
    drop_suspect : bool
        Leave out CCGs with a run of suspect months overlapping either window.
    harmonised : bool
        Use areas stitched across mergers over the two windows instead of codes as published.
    drop_breaks : bool
        Leave out CCGs whose series shifts level in one month between the two windows.
    panel : Panel, optional
        Default: the bundled Monthly Activity Return.

    Returns
    -------
    DataFrame
        Columns ``group``, ``n_units``, ``base_total``, ``follow_total``, ``growth_pct``, ``units`` (used),
        ``left_out`` (code: reason), ``n_units_per_head`` and ``growth_per_head_pct`` (see the module).
    """
    g = _growth(base, follow, panel, drop_suspect, harmonised, drop_breaks)
    rows = [(name, *g.row(g.codes(codes))) for name, codes in groups.items()]
    return pd.DataFrame(rows, columns=GROWTH_COLUMNS)


def programme_growth(
    base: Window,
    follow: Window,
    *,
    care_models: Iterable[str | tuple[str, ...]] = (("PACS", "MCP"),),
    average: str = "pooled",
    drop_suspect: bool = False,
    harmonised: bool = False,
    panel: Panel | None = None,
    drop_breaks: bool = False,
) -> pd.DataFrame:
    """Growth of vanguard CCGs by care model against CCGs in no vanguard (NHS England's comparison).

    Parameters
    ----------
    base, follow : (start, end)
        The two windows (e.g. FY2014-15 ``("2014-04", "2015-03")`` and the 12 months to Q2 2017/18
        ``("2016-10", "2017-09")``).
    care_models : iterable
        Care models, each a name (``"PACS"``) or a tuple of names pooled into one group (``("PACS", "MCP")``).
    average : {"pooled", "site"}
        ``pooled``: growth of the group's summed CCGs (``n_units`` = CCGs). ``site``: mean of each site's growth
        (``n_units`` = sites; ``units`` = the sites used). CCGs in no vanguard are always pooled.
    drop_suspect, harmonised, panel, drop_breaks
        As in :func:`group_growth`.

    Returns
    -------
    DataFrame
        One row per care-model group, then ``no vanguard``; columns as :func:`group_growth`.
    """
    if average not in ("pooled", "site"):
        raise DataError(f"average must be 'pooled' or 'site', not {average!r}")
    g = _growth(base, follow, panel, drop_suspect, harmonised, drop_breaks)
    by_model = vanguard_ccgs()
    rows = []
    for group in care_models:
        models = (group,) if isinstance(group, str) else tuple(group)
        unknown = [m for m in models if m not in by_model]
        if unknown:
            raise DataError(f"unknown care model {unknown[0]!r}; choose from {', '.join(CARE_MODELS)}")
        name = "+".join(models)
        if average == "pooled":
            rows.append((name, *g.row(g.codes(c for m in models for c in by_model[m]))))
        else:
            sites = _site_rows(g, models)
            used = sites[sites["n_units"] > 0]
            left = tuple(f"{s}: no usable CCG" for s in sites.loc[sites["n_units"] == 0, "site_id"])
            per_head = used["growth_per_head_pct"].dropna()
            rows.append(
                (
                    name,
                    len(used),
                    float(used["base_total"].sum()),
                    float(used["follow_total"].sum()),
                    float(used["growth_pct"].mean()) if len(used) else float("nan"),
                    tuple(used["site_id"]),
                    left,
                    len(per_head),
                    float(per_head.mean()) if len(per_head) else float("nan"),
                )
            )
    vanguard = {c for codes in by_model.values() for c in g.codes(codes)}
    rows.append((NO_VANGUARD, *g.row(g.units - vanguard)))
    return pd.DataFrame(rows, columns=GROWTH_COLUMNS)


def site_growth(
    base: Window,
    follow: Window,
    *,
    care_models: Iterable[str] = CARE_MODELS,
    drop_suspect: bool = False,
    harmonised: bool = False,
    panel: Panel | None = None,
    drop_breaks: bool = False,
) -> pd.DataFrame:
    """Growth of each vanguard site's CCGs (summed) between two windows; columns :data:`SITE_COLUMNS`."""
    g = _growth(base, follow, panel, drop_suspect, harmonised, drop_breaks)
    return _site_rows(g, tuple(care_models))


def _site_rows(g: _Growth, models: tuple[str, ...]) -> pd.DataFrame:
    rows = [
        (s.site_id, s.name, s.care_model, *g.row(g.codes(s.ccg_codes)))
        for s in load_registry()
        if s.site_type == "vanguard" and s.care_model in models and s.ccg_codes
    ]
    return pd.DataFrame(rows, columns=SITE_COLUMNS)
