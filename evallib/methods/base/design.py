"""The design of a comparison, built once: who is compared with whom, on what measure, from when.

:class:`Design` plays the part of R ``synthdid``'s ``panel.matrices``: the units x periods matrix of the
outcome, which units are treated and from when, the comparison units, the exposure (denominator) and the
kind of measure, with the periods' frequency. Every estimator's ``fit`` takes one; the DataFrame entry
points build one with :meth:`Design.from_long`. Checks re-fit an estimator on a design with other
comparison units (:meth:`Design.subset`), or on the pre-period with a fake start (:meth:`Design.before`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np
import pandas as pd

from evallib.errors import DataError
from evallib.methods.base.arrays import PanelArrays, Transform

__all__ = ["Design", "Measure"]

#: What the outcome is: a count of events, a rate (events per ``per`` people), a percentage of a
#: denominator, or any other level.
Measure = Literal["count", "rate", "proportion", "level"]


@dataclass(frozen=True)
class Design:
    """A panel ready for estimation: the outcome matrix with its treated units, start and comparison units.

    Parameters
    ----------
    values : numpy.ndarray
        Units x periods matrix of the outcome on its own scale: counts, a rate per ``per`` people, a
        percentage, or a level. Complete (no missing cells).
    units : tuple of str
        Unit labels, sorted (the order placebo assignments are drawn in).
    periods : pandas.Index
        Period labels, sorted (timestamps, or numbers such as years).
    treated : numpy.ndarray
        Boolean per unit: received the intervention.
    start : object
        First treated period, common to every treated unit. For staggered adoption use ``unit_starts``.
    unit_starts : tuple, optional
        First treated period of each unit (``None`` for comparison units), when treated units started at
        different dates; ``start`` is then the earliest.
    counts : numpy.ndarray, optional
        Units x periods numerator counts when ``values`` is a rate or percentage (the rate ratio models them).
    exposure : numpy.ndarray, optional
        Units x periods denominator (population, attendances) of a rate or percentage.
    measure : {"count", "rate", "proportion", "level"}
        What ``values`` holds; decides the default scale of effects (proportional for counts and rates).
    per : int
        A rate's multiplier (events per ``per`` people).
    periods_per_year : int
        12 for monthly data, 4 quarterly, 1 yearly (seasonality and effect horizons).
    outcome : str
        The outcome's name, for result rows.
    input_order : tuple of int, optional
        The order the units were given in (positions in ``units``). Rows of :meth:`arrays` run period by
        period with the units in this order, and sums over units follow it, so a design gives bit for bit
        what long rows in that order gave before it existed. Sorted order when ``None``.

    Notes
    -----
    A design holds data, not assumptions: each estimator states its own estimand and identifying
    assumptions. Rows of the arrays an estimator works on run period by period, units sorted within each
    period, so every estimator sees the units in one order whichever entry point built the design.
    """

    values: np.ndarray = field(repr=False)
    units: tuple[str, ...]
    periods: pd.Index = field(repr=False)
    treated: np.ndarray = field(repr=False)
    start: object
    unit_starts: tuple[object, ...] | None = field(default=None, repr=False)
    counts: np.ndarray | None = field(default=None, repr=False)
    exposure: np.ndarray | None = field(default=None, repr=False)
    measure: Measure = "level"
    per: int = 1
    periods_per_year: int = 12
    outcome: str = ""
    input_order: tuple[int, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        v = np.asarray(self.values, float)
        if v.shape != (len(self.units), len(self.periods)):
            raise DataError(f"design: values are {v.shape}, expected {len(self.units)} units x {len(self.periods)}")
        if not np.isfinite(v).all():
            raise DataError("design: the outcome has missing or non-finite values; drop those units first")
        t = np.asarray(self.treated, bool)
        if not t.any():
            raise DataError("design: no treated units")
        if t.all():
            raise DataError("design: no comparison units")
        if not (self.periods < self.start).any() or not (self.periods >= self.start).any():
            raise DataError("design: need periods both before and from the start")
        if self.unit_starts is not None:
            if len(self.unit_starts) != len(self.units):
                raise DataError("design: unit_starts needs one entry per unit (None for comparison units)")
            if any((s is None) == bool(tr) for s, tr in zip(self.unit_starts, t, strict=True)):
                raise DataError("design: every treated unit needs a start, and comparison units none")
        for name in ("counts", "exposure"):
            m = getattr(self, name)
            if m is not None and np.shape(m) != v.shape:
                raise DataError(f"design: {name} must have the outcome's shape")
        object.__setattr__(self, "values", v)
        object.__setattr__(self, "treated", t)
        v.setflags(write=False)
        t.setflags(write=False)

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_wide(
        cls,
        values: pd.DataFrame,
        treated: Sequence[str],
        start: object,
        *,
        counts: pd.DataFrame | None = None,
        exposure: pd.DataFrame | None = None,
        measure: Measure = "level",
        per: int = 1,
        periods_per_year: int = 12,
        outcome: str = "",
    ) -> Design:
        """A design from a periods x units table (columns are units) and the treated units' labels."""
        missing = [u for u in treated if u not in values.columns]
        if missing:
            raise DataError(f"design: treated {'unit' if len(missing) == 1 else 'units'} {missing} not in the data")
        order = sorted(values.columns)
        wide = values.sort_index()[order]
        rank = {u: i for i, u in enumerate(order)}

        def mat(frame: pd.DataFrame | None) -> np.ndarray | None:
            return None if frame is None else frame.reindex(index=wide.index, columns=order).to_numpy(float).T

        return cls(
            values=wide.to_numpy(float).T,
            units=tuple(str(u) for u in order),
            periods=wide.index,
            treated=np.isin(order, list(treated)),
            start=start,
            counts=mat(counts),
            exposure=mat(exposure),
            measure=measure,
            per=per,
            periods_per_year=periods_per_year,
            outcome=outcome,
            input_order=tuple(rank[u] for u in values.columns),
        )

    @classmethod
    def staggered(
        cls,
        values: pd.DataFrame,
        starts: Mapping[str, object],
        *,
        measure: Measure = "level",
        periods_per_year: int = 12,
        outcome: str = "",
    ) -> Design:
        """A design whose treated units started at different dates: ``starts`` maps each treated unit to its
        first treated period (every other column is a comparison unit); ``start`` is the earliest of them.
        """
        if not starts:
            raise DataError("design: give at least one treated unit and its start")
        bad = [u for u, s in starts.items() if s not in set(values.index)]
        if bad:
            raise DataError(f"design: the start of {bad} is not a period of the data")
        base = cls.from_wide(
            values,
            list(starts),
            values.index[values.index.isin(list(starts.values()))].min(),
            measure=measure,
            periods_per_year=periods_per_year,
            outcome=outcome,
        )
        unit_starts = tuple(starts.get(u) for u in base.units)
        return replace(base, unit_starts=unit_starts)

    @classmethod
    def from_long(
        cls,
        data: pd.DataFrame,
        *,
        outcome: str,
        unit: str,
        time: str,
        treated: str,
        post: str | None = None,
        start: object = None,
        exposure: str | None = None,
        measure: Measure = "level",
        periods_per_year: int = 12,
        label: str = "",
    ) -> Design:
        """A design from long rows (one per unit and period) with named column roles.

        ``treated`` is a 0/1 column constant within unit; the start is given directly (``start``) or read
        from a 0/1 ``post`` column that switches on at one period for every unit.
        """
        cols = [c for c in (outcome, unit, time, treated, post, exposure) if c is not None]
        missing = [c for c in cols if c not in data.columns]
        if missing:
            raise DataError(
                f"design: missing {'column' if len(missing) == 1 else 'columns'} {', '.join(missing)}; data has {', '.join(map(str, data.columns))}"
            )
        if data.duplicated([unit, time]).any():
            raise DataError(f"design: more than one row per {unit} and {time}")
        wide = data.pivot(index=time, columns=unit, values=outcome)
        if wide.isna().any().any():
            raise DataError("design: the panel must be balanced (every unit in every period)")
        flags = data.groupby(unit)[treated].agg(["min", "max"])
        if (flags["min"] != flags["max"]).any():
            raise DataError(f"design: {treated!r} must be constant within each {unit}")
        if start is None:
            if post is None:
                raise DataError("design: give the start, or a 0/1 post column")
            by_period = data.groupby(time)[post].agg(["min", "max"])
            if (by_period["min"] != by_period["max"]).any():
                raise DataError(f"design: {post!r} must switch on at one period for every unit (one start)")
            on = by_period.index[by_period["max"] > 0]
            if len(on) == 0:
                raise DataError("design: no post-period periods")
            start = on.min()
        ex = None if exposure is None else data.pivot(index=time, columns=unit, values=exposure)
        return cls.from_wide(
            wide,
            [u for u, f in flags["max"].items() if f],
            start,
            exposure=ex,
            measure=measure,
            periods_per_year=periods_per_year,
            outcome=label or outcome,
        )

    # ------------------------------------------------------------------ what estimators read
    @property
    def n_units(self) -> int:
        """Number of units."""
        return len(self.units)

    @property
    def n_periods(self) -> int:
        """Number of periods."""
        return len(self.periods)

    @property
    def post(self) -> np.ndarray:
        """Boolean per period: on or after the start."""
        return np.asarray(self.periods >= self.start)

    @property
    def treated_units(self) -> tuple[str, ...]:
        """The treated units, in the design's unit order."""
        return tuple(u for u, t in zip(self.units, self.treated, strict=True) if t)

    @property
    def comparison_units(self) -> tuple[str, ...]:
        """The comparison units, in the design's unit order."""
        return tuple(u for u, t in zip(self.units, self.treated, strict=True) if not t)

    @property
    def positive(self) -> bool:
        """Every value above zero (a log scale is possible)."""
        return bool((self.values > 0).all())

    def frame(self, values: np.ndarray | None = None) -> pd.DataFrame:
        """A periods x units table of ``values`` (the outcome by default)."""
        v = self.values if values is None else values
        # Stored as pandas stores a pivoted table (one block, units x periods in column order), so that pandas
        # sums over a table of the design add in the same order as over the long rows it was built from.
        return pd.DataFrame(np.array(v.T, order="C"), index=self.periods, columns=list(self.units), copy=False)

    def treated_series(self) -> pd.Series:
        """The treated units together as one series: counts summed; rates and percentages from summed
        numerators and denominators; levels averaged.
        """
        return self._pooled(self.treated, self.outcome or "treated")

    def comparison_series(self) -> pd.Series:
        """The comparison units together as one series, pooled as :meth:`treated_series` pools the treated."""
        return self._pooled(~self.treated, "comparison")

    def _pooled(self, members: np.ndarray, name: str) -> pd.Series:
        rows = self._order[members[self._order]]  # the units, in the order they were given
        if self.measure in ("rate", "proportion") and self.exposure is not None:
            num = self.counts if self.counts is not None else self.values * self.exposure / self._multiplier
            s = self._multiplier * num[rows].sum(axis=0) / self.exposure[rows].sum(axis=0)
        elif self.measure == "count":
            s = self.values[rows].sum(axis=0)
        else:
            s = self.values[rows].mean(axis=0)
        return pd.Series(s, index=self.periods, name=name)

    @property
    def _order(self) -> np.ndarray:
        """Unit positions in the order the units were given."""
        return np.arange(self.n_units) if self.input_order is None else np.asarray(self.input_order)

    @property
    def _multiplier(self) -> float:
        return 100.0 if self.measure == "proportion" else float(self.per)

    def arrays(self, transform: Transform = "identity", *, values: np.ndarray | None = None) -> PanelArrays:
        """The design as the arrays the DiD-type estimators work on (rows period by period, units sorted);
        ``extra["post"]`` holds the post-period flag of each row.
        """
        v = self.values if values is None else np.asarray(values, float)
        if transform == "log":
            if (v <= 0).any():
                raise DataError(f"{self.outcome or 'outcome'}: a log scale needs positive values in every period")
            v = np.log(v)
        n_u, n_t = self.n_units, self.n_periods
        order = self._order
        unit = np.tile(order, n_t)
        time = np.repeat(np.arange(n_t), n_u)
        return PanelArrays(
            y=v[order].T.reshape(-1),
            treated=self.treated[unit],
            unit=unit,
            time=time,
            units=np.asarray(self.units, dtype=object),
            periods=np.asarray(self.periods),
            extra={"post": self.post[time].astype(int)},
        )

    def row_values(self, matrix: np.ndarray) -> np.ndarray:
        """A units x periods matrix (e.g. the exposure) flattened in the row order of :meth:`arrays`."""
        return np.asarray(matrix, float)[self._order].T.reshape(-1)

    # ------------------------------------------------------------------ other designs for checks
    def subset(self, comparison_units: Sequence[str]) -> Design:
        """The same design against other comparison units (the treated units kept), e.g. one comparator left out."""
        keep_set = set(comparison_units) | set(self.treated_units)
        keep = np.array([u in keep_set for u in self.units])
        return self._rows(keep)

    def drop(self, unit: str) -> Design:
        """The design without one comparison unit."""
        if unit in self.treated_units:
            raise DataError(f"design: {unit!r} is treated; only comparison units can be left out")
        return self._rows(np.array([u != unit for u in self.units]))

    def before(self, fake_start: object) -> Design:
        """The pre-period alone with a fake start (a placebo in time): no real post-period data remain."""
        keep = np.asarray(self.periods < self.start)
        return self._cols(keep, fake_start)

    def _rows(self, keep: np.ndarray) -> Design:
        def sub(m: np.ndarray | None) -> np.ndarray | None:
            return None if m is None else m[keep]

        new_position = np.cumsum(keep) - 1
        order = tuple(int(new_position[i]) for i in self._order if keep[i])

        return Design(
            values=self.values[keep],
            units=tuple(u for u, k in zip(self.units, keep, strict=True) if k),
            periods=self.periods,
            treated=self.treated[keep],
            start=self.start,
            unit_starts=None
            if self.unit_starts is None
            else tuple(s for s, k in zip(self.unit_starts, keep, strict=True) if k),
            counts=sub(self.counts),
            exposure=sub(self.exposure),
            measure=self.measure,
            per=self.per,
            periods_per_year=self.periods_per_year,
            outcome=self.outcome,
            input_order=order,
        )

    def _cols(self, keep: np.ndarray, start: object) -> Design:
        def sub(m: np.ndarray | None) -> np.ndarray | None:
            return None if m is None else m[:, keep]

        return Design(
            values=self.values[:, keep],
            units=self.units,
            periods=self.periods[keep],
            treated=self.treated,
            start=start,
            counts=sub(self.counts),
            exposure=sub(self.exposure),
            measure=self.measure,
            per=self.per,
            periods_per_year=self.periods_per_year,
            outcome=self.outcome,
            input_order=self.input_order,
        )
