"""Resident populations of CCGs and of harmonised areas, month by month, for rates per head.

The bundled file (:func:`evallib.sources.bundled.load_ccg_populations`) gives each CCG code's mid-year resident
population (ONS basis, 30 June) from mid-2011 to mid-2020. From it:

- **Months are interpolated linearly** between the mid-year estimates, each month at its middle (the 15th). A
  month before mid-June 2011 or after mid-June 2020 has no population (no extrapolation): rates per head start in
  July 2011.
- **A PCT continued by a CCG** (the accepted joins of :mod:`evallib.sources.commissioners`: same name, one to one,
  same share of England's admissions) has its CCG's population; other PCTs have none.
- **An area's population follows its counts** (:func:`area_populations`): in each month it is the sum of the
  populations of the codes whose counts make up the area's count that month (a merged area sums its CCGs as
  :func:`evallib.sources.areas.harmonise` sums their admissions), and it is missing where any of those codes has
  no population (Newcastle North and East 00G and Newcastle West 00H, to March 2015) or where the area's count is
  missing.

Limits (from the compiler's notes): within a local authority the 2017 distribution is held for all years, and a
CCG closed before 2021 grows like its larger 2021 successor; populations are residents, not the registered lists
NHS England used for vanguards (lists run a median 3% above residents).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache

import pandas as pd

from evallib.errors import DataError
from evallib.sources.area_map import AreaMap
from evallib.sources.bundled import load_ccg_populations
from evallib.sources.commissioners import join_links
from evallib.sources.mid_year import interpolate_months
from evallib.sources.panel import Panel


@lru_cache(maxsize=1)
def _annual() -> pd.DataFrame:
    pop = load_ccg_populations()
    wide = pop.pivot(index="mid_year", columns="ccg_code", values="population").sort_index()
    # A PCT continued by a CCG covers the same population: it takes the CCG's figures.
    for r in join_links().itertuples(index=False):
        if r.new_code in wide.columns and r.old_code not in wide.columns:
            wide[r.old_code] = wide[r.new_code]
    return wide


def monthly_populations(months: Iterable[pd.Timestamp | str], codes: Iterable[str] | None = None) -> pd.DataFrame:
    """Population of each code in each month, interpolated linearly between mid-year estimates.

    Parameters
    ----------
    months : iterable of timestamps or ``YYYY-MM`` strings
        Months (any day of the month; the result is indexed by month start).
    codes : iterable of str, optional
        CCG (or joined PCT) codes; default every code with a population. A code with no population gives a
        column of NaN.

    Returns
    -------
    DataFrame
        Index ``period`` (month starts), one column per code; NaN outside mid-2011 to mid-2020 (see
        :func:`evallib.sources.mid_year.interpolate_months`).
    """
    annual = _annual()
    cols = list(annual.columns) if codes is None else list(dict.fromkeys(codes))
    return interpolate_months(annual.reindex(columns=cols), months)


def area_populations(raw: Panel, harmonised: Panel, area_map: AreaMap, outcome: str) -> pd.DataFrame:
    """Population of each harmonised area in each month, summed over the codes its counts come from.

    Parameters
    ----------
    raw : Panel
        The panel of published codes that :func:`evallib.sources.areas.harmonise` was given.
    harmonised, area_map : Panel, AreaMap
        What ``harmonise(raw, start, end)`` returned.
    outcome : str
        The count outcome whose reporting codes define each area-month.

    Returns
    -------
    DataFrame
        Index ``period`` (the harmonised panel's months), one column per area; NaN where the area's count is
        missing or one of its reporting codes has no population.
    """
    counts = harmonised.wide(outcome)
    codes_wide = raw.wide(outcome).reindex(counts.index)
    pops = monthly_populations(counts.index, codes_wide.columns)
    # Each code counts where it reports; a reporting code with no population makes the area's month unknown.
    reporting = codes_wide.notna()
    contrib = pops.where(reporting, 0.0)
    unknown = (reporting & pops.isna()).astype(float)
    to_area = area_map.code_to_area
    groups = [to_area.get(c, c) for c in codes_wide.columns]
    summed = contrib.T.groupby(groups).sum().T
    missing = unknown.T.groupby(groups).sum().T > 0
    summed = summed.reindex(columns=counts.columns)
    missing = missing.reindex(columns=counts.columns, fill_value=True)
    out = summed.mask(missing | counts.isna() | (summed <= 0))
    out.index.name, out.columns.name = "period", "unit"
    return out


def code_populations(codes: Iterable[str], months: Iterable[pd.Timestamp | str]) -> pd.Series:
    """Mean monthly population of each code over some months (NaN when any month has none).

    Raises
    ------
    DataError
        When ``months`` is empty.
    """
    month_list = list(months)
    if not month_list:
        raise DataError("no months given for the mean population")
    return monthly_populations(month_list, codes).mean(skipna=False)
