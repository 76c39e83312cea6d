"""Panel data as arrays for the DiD estimators: validated column roles, integer codes, within transformation.

Shared by :mod:`~evallib.methods.did.twfe`, :mod:`~evallib.methods.did.event_study` and
:mod:`~evallib.methods.did.rate_ratio`, so every estimator checks its input the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd

from evallib.errors import DataError

Transform = Literal["identity", "log"]


@dataclass(frozen=True)
class PanelArrays:
    """A validated DiD panel as arrays: outcome, treatment and integer unit/period codes."""

    y: np.ndarray
    treated: np.ndarray  # bool, per row
    unit: np.ndarray  # codes 0..n_units-1
    time: np.ndarray  # codes 0..n_periods-1 (sorted periods)
    units: np.ndarray  # labels
    periods: np.ndarray  # labels, sorted
    extra: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n_units(self) -> int:
        """Number of units."""
        return len(self.units)

    @property
    def n_periods(self) -> int:
        """Number of periods."""
        return len(self.periods)

    @property
    def balanced(self) -> bool:
        """Whether every unit has a row in every period."""
        return len(self.y) == self.n_units * self.n_periods

    @property
    def unit_treated(self) -> np.ndarray:
        """Boolean per unit: treated in any row."""
        out = np.zeros(self.n_units, bool)
        out[self.unit[self.treated]] = True
        return out

    def matrix(self, values: np.ndarray) -> np.ndarray:
        """Values as a units x periods matrix (NaN where a unit lacks a period)."""
        shape = (self.n_units, self.n_periods)
        flat = self.unit * self.n_periods + self.time
        if self.balanced and np.all(flat[1:] > flat[:-1]):
            return np.asarray(values, float).reshape(shape)  # rows already in unit-period order
        m = np.full(shape, np.nan)
        m[self.unit, self.time] = values
        return m


def as_binary(values: np.ndarray, name: str) -> np.ndarray:
    """A 0/1 (or boolean) column as booleans.

    Raises
    ------
    DataError
        When the column holds anything but 0 and 1; the message names ``name``.
    """
    v = np.asarray(values)
    if v.dtype == bool:
        return v
    if not np.all((v == 0) | (v == 1)):
        raise DataError(f"DiD: column {name!r} must hold 0/1 values")
    return v.astype(bool)


def prepare_panel(
    data: pd.DataFrame,
    outcome: str,
    unit: str,
    time: str,
    treated: str,
    transform: Transform,
    *,
    extra: Sequence[str] = (),
    denominator: str | None = None,
) -> PanelArrays:
    """Check the column roles of a DiD panel; return it as arrays with the (transformed) outcome.

    Validation runs on integer codes with numpy, so it costs little next to the estimate.
    """
    cols = [outcome, unit, time, treated, *extra]
    missing = [c for c in cols if c not in data.columns]
    if missing:
        raise DataError(
            f"DiD: missing {'column' if len(missing) == 1 else 'columns'} {', '.join(missing)}; data has {', '.join(map(str, data.columns))}"
        )
    y = pd.to_numeric(data[outcome], errors="coerce").to_numpy(float)
    if np.isnan(y).any():
        raise DataError(f"DiD: outcome column {outcome!r} has missing or non-numeric values; drop those rows first")
    if denominator is not None:
        if denominator not in data.columns:
            raise DataError(f"DiD: denominator column {denominator!r} is missing")
        den = pd.to_numeric(data[denominator], errors="coerce").to_numpy(float)
        if not np.all(den > 0):
            raise DataError(f"DiD: denominator {denominator!r} must be positive in every row")
        y = y / den  # a rate: events per unit of the denominator (e.g. per head of population)
    tr = as_binary(data[treated].to_numpy(), treated)
    u, units = pd.factorize(data[unit], sort=True)
    t, periods = pd.factorize(data[time], sort=True)
    n_u, n_t = len(units), len(periods)
    if np.bincount(u * n_t + t, minlength=n_u * n_t).max() > 1:
        raise DataError(f"DiD: more than one row per {unit} and {time}")
    rows_per_unit = np.bincount(u, minlength=n_u)
    treated_per_unit = np.bincount(u, weights=tr, minlength=n_u)
    if np.any((treated_per_unit > 0) & (treated_per_unit < rows_per_unit)):
        raise DataError(f"DiD: {treated!r} must be constant within each {unit}")
    if transform == "log":
        if (y <= 0).any():
            bad = data.loc[y <= 0, [unit, time]].head(5).to_dict("records")
            raise DataError(f"DiD: log transform needs positive {outcome!r}; zero or negative at {bad}")
        y = np.log(y)
    n_treated = int((treated_per_unit > 0).sum())
    if n_treated == 0:
        raise DataError("DiD: no treated units")
    if n_treated == n_u:
        raise DataError("DiD: no comparison units")
    return PanelArrays(
        y=y,
        treated=tr,
        unit=u,
        time=t,
        units=np.asarray(units),
        periods=np.asarray(periods),
        extra={c: data[c].to_numpy() for c in extra},
    )


def within_transform(
    x: np.ndarray, unit: np.ndarray, time: np.ndarray, *, tol: float = 1e-12, max_iter: int = 10_000
) -> np.ndarray:
    """Remove unit and period means from each column of ``x`` (rows are observations).

    Exact in one step for a balanced panel (double demeaning of a units x periods
    array); alternating projections otherwise.
    """
    x = np.asarray(x, dtype=float)
    return within_rows((x[:, None] if x.ndim == 1 else x).T, unit, time, tol=tol, max_iter=max_iter).T


def within_rows(
    xt: np.ndarray, unit: np.ndarray, time: np.ndarray, *, tol: float = 1e-12, max_iter: int = 10_000
) -> np.ndarray:
    """:func:`within_transform` on a ``(variables, observations)`` array (no transposes needed)."""
    k, n = xt.shape
    n_u, n_t = unit.max() + 1, time.max() + 1
    if n == n_u * n_t:
        flat = unit * n_t + time
        in_order = bool(np.all(flat[1:] > flat[:-1]))  # sorted by unit then period: a plain reshape
        if in_order or np.bincount(flat, minlength=n).max() == 1:
            if in_order:
                cube = np.array(xt, dtype=float, order="C").reshape(k, n_u, n_t)
            else:
                cube = np.empty((k, n))
                cube[:, flat] = xt
                cube = cube.reshape(k, n_u, n_t)
            cube -= cube.mean(axis=2, keepdims=True)
            cube -= cube.mean(axis=1, keepdims=True)
            out = cube.reshape(k, n)
            return out if in_order else out[:, flat]
    x = np.array(xt.T, dtype=float)
    cnt_u = np.bincount(unit, minlength=n_u).astype(float)
    cnt_t = np.bincount(time, minlength=n_t).astype(float)
    for _ in range(max_iter):
        before = x.copy()
        for codes, cnt, m in ((unit, cnt_u, n_u), (time, cnt_t, n_t)):
            sums = np.vstack([np.bincount(codes, weights=x[:, j], minlength=m) for j in range(k)]).T
            x -= (sums / cnt[:, None])[codes]
        if np.max(np.abs(x - before)) < tol:
            break
    return x.T
