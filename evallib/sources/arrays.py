"""Array forms of two pandas/NumPy steps the data-quality rules repeat for every window, bit for bit the same.

A batch harmonises and screens every bundled window before its sites run (``evaluation.site.units.prefetch``);
there ``np.nanmedian`` over a few hundred units (NumPy's masked-array path) and ``DataFrame.pivot`` cost most
of the time. :func:`nanmedian` and :func:`wide_table` give the same numbers, index and columns at a fraction of
the cost (``tests/test_quality_arrays.py`` checks them against NumPy and pandas bit for bit).
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from evallib.sources.panel import Panel


def nanmedian(a: np.ndarray, axis: int) -> np.ndarray:
    """``np.nanmedian(a, axis=axis)`` for a 2-D float array, bit for bit, without its warnings.

    The median of the values that are not NaN: the middle one of an odd count, ``(low + high) / 2`` of the two
    middle ones of an even count, added as NumPy adds them in both its paths (from 0.0, so never -0.0); NaN where
    a slice has none.
    """
    a = np.asarray(a, dtype=float)
    if a.ndim != 2:
        raise ValueError("nanmedian takes a 2-D array")
    moved = np.moveaxis(a, axis, -1)
    if moved.shape[-1] == 0:  # NumPy's mean of nothing: 0 / 0, the platform's NaN
        with np.errstate(invalid="ignore"):
            return np.zeros(moved.shape[:-1]) / 0.0
    out = np.full(moved.shape[:-1], np.nan)
    ordered = np.sort(moved, axis=-1)  # NaN sort last
    counts = np.count_nonzero(~np.isnan(moved), axis=-1)
    # NumPy adds from 0.0 (so a median of -0.0 is 0.0): the middle value of an odd count is 0.0 + x, the two
    # middle values of an even count give ((0.0 + low) + high) / 2.
    odd = np.flatnonzero(counts % 2 == 1)
    even = np.flatnonzero((counts > 0) & (counts % 2 == 0))
    out[odd] = 0.0 + ordered[odd, counts[odd] // 2]
    out[even] = ((0.0 + ordered[even, counts[even] // 2 - 1]) + ordered[even, counts[even] // 2]) / 2
    return out


def rows_by_label(labels: np.ndarray | pd.Series) -> dict[object, np.ndarray]:
    """The positions of each label's rows, in order (``groupby(labels).indices``, on arrays)."""
    codes, names = pd.factorize(labels)
    order = np.argsort(codes, kind="stable")
    bounds = np.searchsorted(codes[order], np.arange(len(names) + 1))
    return {name: order[bounds[i] : bounds[i + 1]] for i, name in enumerate(names)}


def wide_table(panel: Panel, outcome: str, column: Literal["value", "denominator"] = "value") -> pd.DataFrame:
    """``panel.wide(outcome, column)``, the period x unit table ``DataFrame.pivot`` makes, without the pivot.

    Falls back to :meth:`Panel.wide` itself (which raises) for an outcome with no rows, a unit with two rows for
    one period, or a column that is not float.
    """
    data = panel.data
    rows = (data["outcome"] == outcome).to_numpy(dtype=bool)
    if not rows.any() or data[column].dtype != np.float64:
        return panel.wide(outcome, column)
    p_idx, periods = pd.factorize(data["period"].to_numpy()[rows], sort=True)
    u_idx, units = pd.factorize(data["unit"][rows], sort=True)
    cells = np.bincount(p_idx.astype(np.int64) * len(units) + u_idx, minlength=len(periods) * len(units))
    if cells.max() > 1:
        return panel.wide(outcome, column)
    values = np.full((len(periods), len(units)), np.nan)
    values[p_idx, u_idx] = data[column].to_numpy(dtype=float)[rows]
    return pd.DataFrame(values, index=pd.DatetimeIndex(periods, name="period"), columns=pd.Index(units, name="unit"))
