"""Array forms of two pandas/NumPy steps the data-quality rules repeat for every window, bit for bit the same.

A batch harmonises and screens every bundled window before its sites run (``evaluation.site.units.prefetch``);
there ``np.nanmedian`` over a few hundred units (NumPy's masked-array path) and ``DataFrame.pivot`` cost most
of the time. :func:`nanmedian` and :func:`wide_table` give the same numbers, index and columns at a fraction of
the cost (``tests/test_quality_arrays.py`` checks them against NumPy and pandas bit for bit).
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def nanmedian(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmedian(a, axis=axis)`` for a 2-D float array, bit for bit, without its warnings.

    The median of the values that are not NaN: the middle one of an odd count, ``(low + high) / 2`` of the two
    middle ones of an even count (NumPy's arithmetic in both its paths), NaN where a slice has none.
    """
    a = np.asarray(a, dtype=float)
    if a.ndim != 2:
        raise ValueError("nanmedian takes a 2-D array")
    moved = np.moveaxis(a, axis, -1)
    out = np.full(moved.shape[:-1], np.nan)
    if moved.shape[-1] == 0:
        return out
    ordered = np.sort(moved, axis=-1)  # NaN sort last
    counts = np.count_nonzero(~np.isnan(moved), axis=-1)
    some = counts > 0
    high = counts // 2
    low = np.where(counts % 2 == 1, high, high - 1)
    rows = np.flatnonzero(some)
    out[rows] = (ordered[rows, low[rows]] + ordered[rows, high[rows]]) / 2
    return out


def wide_table(data: pd.DataFrame, outcome: str, column: str = "value") -> pd.DataFrame:
    """``Panel.wide``: the period x unit table of one outcome of a panel's long frame, as ``DataFrame.pivot`` makes it.

    Falls back to ``pivot`` itself (which raises) where a unit has two rows for one period, and where the column is
    not float.
    """
    d = data[data["outcome"] == outcome]
    if d[column].dtype != np.float64:
        return d.pivot(index="period", columns="unit", values=column).sort_index()
    p_idx, periods = pd.factorize(d["period"], sort=True)
    u_idx, units = pd.factorize(d["unit"], sort=True)
    cell = p_idx.astype(np.int64) * max(len(units), 1) + u_idx
    if len(np.unique(cell)) < len(cell):
        return d.pivot(index="period", columns="unit", values=column).sort_index()
    values = np.full((len(periods), len(units)), np.nan)
    values[p_idx, u_idx] = d[column].to_numpy(dtype=float)
    return pd.DataFrame(values, index=pd.Index(periods, name="period"), columns=pd.Index(units, name="unit"))
