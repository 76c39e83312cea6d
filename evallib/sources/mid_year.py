"""Mid-year estimates (30 June) interpolated to months: the one rule every population in the package follows.

Each month is read at its 15th, linearly between the two mid-year estimates around it; a month before the first
estimate's date or after the last one's has none (no extrapolation). Pure: no data files are read here.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

#: Day of the year a mid-year estimate stands for, and the day of a month its population is read at.
MID_YEAR = (6, 30)
MID_MONTH_DAY = 15


def interpolate_months(annual: pd.DataFrame, months: Iterable[pd.Timestamp | str]) -> pd.DataFrame:
    """Monthly values from mid-year ones.

    Parameters
    ----------
    annual : DataFrame
        Index: years (int), one column per code, the mid-year (30 June) value; NaN where unknown.
    months : iterable of timestamps or ``YYYY-MM`` strings
        Months (any day of the month; the result is indexed by month start).

    Returns
    -------
    DataFrame
        Index ``period`` (month starts), the columns of ``annual``; NaN outside the estimates' span and for a
        code with fewer than two estimates.
    """
    annual = annual.sort_index()
    idx = pd.DatetimeIndex([pd.Timestamp(m).to_period("M").to_timestamp() for m in months], name="period")
    anchors = np.array([pd.Timestamp(int(y), *MID_YEAR).toordinal() for y in annual.index], dtype=float)
    at = np.array([(m + pd.Timedelta(days=MID_MONTH_DAY - 1)).toordinal() for m in idx], dtype=float)
    out = np.full((len(idx), annual.shape[1]), np.nan)
    if len(anchors):
        inside = (at >= anchors[0]) & (at <= anchors[-1])
        for j in range(annual.shape[1]):
            series = annual.iloc[:, j].to_numpy(dtype=float)
            ok = np.isfinite(series)
            if ok.sum() >= 2:
                out[inside, j] = np.interp(at[inside], anchors[ok], series[ok])
    return pd.DataFrame(out, index=idx, columns=pd.Index(list(annual.columns), name="unit"))
