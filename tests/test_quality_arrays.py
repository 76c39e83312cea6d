"""The array forms behind a batch's prefetch give the same bits as the pandas code they replaced.

Each window's harmonised panel, area map, notes and screens must not move by one bit when the work moves from pandas
to arrays (issue 22). Each replaced step is checked here against a straightforward reference (the code it
replaced) on the bundled data and on small panels with the awkward cases: NaNs, zeros, gaps, units starting or
stopping, suspect months, runs with no rows, ties and missing dates in the events.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from evallib.errors import DataError
from evallib.sources.areas import _event_order, _span, _stack, harmonise
from evallib.sources.arrays import nanmedian, rows_by_label, wide_table
from evallib.sources.bundled import BUNDLED, load_bundled
from evallib.sources.panel import PANEL_COLUMNS, Panel
from evallib.sources.quality import (
    RUN_COLUMNS,
    impute_suspect,
    level_step_arrays,
    level_steps,
    relative_log,
    suspect_runs,
    usual_share,
)
from evallib.vocabulary import plural

MAR = "mar_commissioner_2008_2019"


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    if a.shape != b.shape or a.dtype != b.dtype:
        return False
    if a.dtype.kind in "mM":
        return bool(np.array_equal(a.view(np.int64), b.view(np.int64)))
    if a.dtype.kind != "f":
        return bool(np.array_equal(a, b))
    return bool(np.array_equal(a, b, equal_nan=True) and np.array_equal(np.signbit(a), np.signbit(b)))


def _same_frame(a: pd.DataFrame, b: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert list(a.dtypes) == list(b.dtypes) and a.index.dtype == b.index.dtype and a.columns.dtype == b.columns.dtype
    for c in a.columns:
        assert _same_bits(a[c].to_numpy(), b[c].to_numpy()), c


# --------------------------------------------------------------------------- references: the code replaced


def _ref_relative_log(wide: pd.DataFrame) -> pd.DataFrame:
    logs = np.log(wide.where(wide > 0).to_numpy(dtype=float))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        change = np.nanmedian(np.diff(logs, axis=0), axis=1)
    path = np.concatenate([[0.0], np.cumsum(np.nan_to_num(change, nan=0.0))])
    return pd.DataFrame(logs - path[:, None], index=wide.index, columns=wide.columns)


def _ref_level_steps(wide: pd.DataFrame, k: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rel = _ref_relative_log(wide).to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        diff = np.diff(rel, axis=0)
        sigma = 1.4826 * np.nanmedian(np.abs(diff - np.nanmedian(diff, axis=0)), axis=0) / np.sqrt(2)
    ok = ~np.isnan(rel)
    zeros = np.zeros((1, rel.shape[1]))
    csum = np.vstack([zeros, np.cumsum(np.where(ok, rel, 0.0), axis=0)])
    ccount = np.vstack([zeros, np.cumsum(ok, axis=0)])
    n = rel.shape[0]
    step = np.full(rel.shape, np.nan)
    if n >= 2 * k:
        m = np.arange(k, n - k + 1)
        full = (ccount[m + k] - ccount[m] == k) & (ccount[m] - ccount[m - k] == k)
        step[m] = np.where(full, (csum[m + k] - csum[m]) / k - (csum[m] - csum[m - k]) / k, np.nan)
    return step, sigma


def _ref_impute(
    panel: Panel, runs: pd.DataFrame, outcome: str, england: pd.Series | None = None
) -> tuple[pd.DataFrame, list[str]]:
    share, usual, eng = usual_share(panel, outcome, england)
    data = panel.data.copy()
    notes = []
    for run in runs.itertuples(index=False):
        months = pd.date_range(run.first, run.last, freq="MS")
        rows = (data["outcome"] == outcome) & (data["unit"] == run.unit) & data["period"].isin(months)
        if not rows.any():
            continue
        periods = data.loc[rows, "period"]
        imputed = usual.loc[periods, run.unit].to_numpy() * eng.loc[periods].to_numpy()
        reported = data.loc[rows, "value"].sum()
        data.loc[rows, "value"] = np.round(imputed)
        span = f"{run.first:%b %Y}" if run.months == 1 else f"{run.first:%b %Y} - {run.last:%b %Y}"
        notes.append(
            f"{run.unit}: {plural(run.months, 'month')} {span} imputed as the unit's usual share of England "
            f"(centred 37-month rolling median, about {100 * float(usual.loc[periods, run.unit].mean()):.2f}%) "
            f"times England's total that month; the reported {reported:,.0f} became {imputed.sum():,.0f} "
            f"(reported / usual share {run.ratio:.2f})."
        )
    return data[PANEL_COLUMNS], notes


# --------------------------------------------------------------------------- small awkward panels


def _awkward_panel(seed: int = 3) -> Panel:
    """Two outcomes, 30 units over 60 months: gaps, zeros, a NaN value, units that start late or stop early."""
    rng = np.random.default_rng(seed)
    months = pd.date_range("2012-01-01", periods=60, freq="MS")
    frames = []
    for outcome in ("adm", "att"):
        for i in range(30):
            v = np.round(rng.normal(500 + 20 * i, 25, len(months)))
            keep = np.ones(len(months), dtype=bool)
            if i % 7 == 1:
                keep[:18] = False  # starts late
            if i % 9 == 2:
                keep[45:] = False  # stops early
            if i % 5 == 3:
                keep[rng.integers(0, 60, 3)] = False  # gaps
            if i == 4:
                v[10:13] = 0.0
            if i == 6:
                v[20] = np.nan
            if i == 8:
                v[30:40] *= 0.2  # a suspect run
            frames.append(
                pd.DataFrame(
                    {"unit": f"U{i:02d}", "period": months[keep], "outcome": outcome, "value": v[keep]}
                ).assign(denominator=np.nan)
            )
    data = pd.concat(frames, ignore_index=True).sort_values(["outcome", "unit", "period"], ignore_index=True)
    return Panel(data[PANEL_COLUMNS], "monthly", "awkward")


# --------------------------------------------------------------------------- nanmedian, wide_table


@pytest.mark.parametrize("shape", [(5, 3), (61, 376), (1, 700), (700, 3), (0, 4), (4, 0), (59, 1), (2, 2)])
def test_nanmedian_gives_numpys_bits_on_both_axes(shape: tuple[int, int]) -> None:
    rng = np.random.default_rng(sum(shape))
    a = rng.normal(size=shape) * 10.0 ** rng.integers(-5, 5, size=shape)
    a[rng.random(shape) < 0.3] = np.nan
    if shape[0] > 2:
        a[1] = np.nan  # an all-NaN row
    if shape[1] > 2:
        a[:, 2] = np.nan  # an all-NaN column
        a[:, 0] = np.round(a[:, 0])  # ties
    for axis in (0, 1):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = np.nanmedian(a, axis=axis)
        assert _same_bits(nanmedian(a, axis), want), axis


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_wide_table_is_panel_wide_for_every_bundled_outcome(name: str) -> None:
    panel = load_bundled(name)
    for outcome in panel.outcomes:
        for column in ("value", "denominator"):
            got, want = wide_table(panel, outcome, column), panel.wide(outcome, column)
            _same_frame(got, want)
            assert (got.index.name, got.columns.name, got.index.freq) == (want.index.name, want.columns.name, None)


def test_wide_table_falls_back_to_pivot_for_what_pivot_refuses() -> None:
    panel = _awkward_panel()
    _same_frame(wide_table(panel, "adm"), panel.wide("adm"))
    with pytest.raises(DataError, match="not in data source"):
        wide_table(panel, "nothing")
    twice = Panel(pd.concat([panel.data, panel.data.iloc[:1]], ignore_index=True), "monthly", "twice")
    with pytest.raises(ValueError, match="duplicate"):
        twice.wide("adm")
    with pytest.raises(ValueError, match="duplicate"):
        wide_table(twice, "adm")


# --------------------------------------------------------------------------- level steps


@pytest.mark.parametrize("window", [("2013-04-01", "2019-12-01"), ("2014-07-01", "2019-06-01"), (None, None)])
def test_level_steps_give_the_same_bits_as_before_on_the_bundled_data(window: tuple[str | None, str | None]) -> None:
    for name in (MAR, "ae_attendances_2016_2019"):
        panel = load_bundled(name)
        wide = panel.wide(panel.outcomes[0]).loc[window[0] : window[1]]
        step, sigma = level_step_arrays(wide.to_numpy(dtype=float))
        want_step, want_sigma = _ref_level_steps(wide)
        assert _same_bits(step, want_step) and _same_bits(sigma, want_sigma)
        frame, series = level_steps(wide)
        assert _same_bits(frame.to_numpy(), want_step) and frame.index.equals(wide.index)
        assert _same_bits(series.to_numpy(), want_sigma) and series.index.equals(wide.columns)
        _same_frame(relative_log(wide), _ref_relative_log(wide))


def test_level_steps_give_the_same_bits_with_zeros_gaps_and_short_series() -> None:
    wide = _awkward_panel().wide("adm")
    for k in (3, 6, 40):
        for got, want in zip(level_step_arrays(wide.to_numpy(), k), _ref_level_steps(wide, k), strict=True):
            assert _same_bits(got, want), k


# --------------------------------------------------------------------------- suspect months


def test_imputing_suspect_months_gives_the_same_bits_and_notes_as_before_on_the_bundled_data() -> None:
    panel = load_bundled(MAR)
    for outcome in panel.outcomes:
        runs = suspect_runs(panel, outcome)
        assert len(runs) > 10
        fixed, notes = impute_suspect(panel, runs, outcome, shares=usual_share(panel, outcome))
        want, want_notes = _ref_impute(panel, runs, outcome)
        _same_frame(fixed.data, want)
        assert notes == want_notes


def test_imputing_suspect_months_gives_the_same_bits_for_awkward_runs() -> None:
    panel = _awkward_panel()
    runs = suspect_runs(panel, "adm", england=panel.wide("adm").sum(axis=1))
    assert "U08" in set(runs["unit"])
    extra = pd.DataFrame(
        [
            ("U01", pd.Timestamp("2012-01-01"), pd.Timestamp("2012-06-01"), 6, 0.5),  # months with no rows
            ("ZZZ", pd.Timestamp("2013-01-01"), pd.Timestamp("2013-02-01"), 2, 0.5),  # a unit with no rows
            ("U06", pd.Timestamp("2013-07-01"), pd.Timestamp("2013-10-01"), 4, 0.6),  # holds a NaN value
            ("U06", pd.Timestamp("2013-09-01"), pd.Timestamp("2013-11-01"), 3, 0.6),  # overlaps the run before
            ("U03", pd.Timestamp("2012-01-01"), pd.Timestamp("2016-12-01"), 60, 0.9),  # across gaps
        ],
        columns=RUN_COLUMNS,
    )
    runs = pd.concat([runs, extra], ignore_index=True)
    england = panel.wide("adm").sum(axis=1)
    fixed, notes = impute_suspect(panel, runs, "adm", england)
    want, want_notes = _ref_impute(panel, runs, "adm", england)
    _same_frame(fixed.data, want)
    assert notes == want_notes and len(notes) == len(runs) - 2


# --------------------------------------------------------------------------- harmonise's pieces


@pytest.mark.parametrize("window", [("2013-04-01", "2019-12-01"), ("2014-07-01", "2018-03-01")])
def test_each_units_span_is_groupbys(window: tuple[str, str]) -> None:
    for name in (MAR, "ae_attendances_2016_2019"):
        data = load_bundled(name).data
        data = data[(data["period"] >= window[0]) & (data["period"] <= window[1])]
        want = data.groupby("unit")["period"].agg(["min", "max"])
        code, units = pd.factorize(data["unit"])
        first, last = _span(code, data["period"].to_numpy(), units)
        assert list(first) == list(want.index) == list(last)
        assert first == want["min"].to_dict() and last == want["max"].to_dict()


def test_outcomes_stack_as_concat_stacks_them_even_when_one_is_empty() -> None:
    rng = np.random.default_rng(5)
    periods = pd.date_range("2015-01-01", periods=4, freq="MS").as_unit("us")

    def part(n: int) -> dict[str, np.ndarray]:
        return {
            "unit": np.array([f"A{i}" for i in range(n)], dtype=object),
            "period": periods.to_numpy()[rng.integers(0, 4, n)],
            "value": rng.normal(size=n),
            "denominator": np.where(rng.random(n) < 0.5, np.nan, rng.normal(size=n)),
        }

    for sizes in ([3, 5], [4], [0, 3], [2, 0, 1]):
        parts = [(f"o{i}", part(n)) for i, n in enumerate(sizes)]
        want = pd.concat(
            [
                pd.DataFrame(
                    {
                        **{c: cols[c] for c in ("unit", "period")},
                        "outcome": o,
                        **{c: cols[c] for c in ("value", "denominator")},
                    }
                )
                for o, cols in parts
            ],
            ignore_index=True,
        )[PANEL_COLUMNS]
        _same_frame(_stack(parts), want)


def test_events_come_out_in_sort_values_order() -> None:
    rng = np.random.default_rng(9)
    dates = [pd.Timestamp("2014-04-01"), pd.Timestamp("2015-04-01"), pd.NaT, pd.Timestamp("2013-04-01")]
    events = [
        (
            str(rng.choice(["02R", "02W", "03C", "RBD"])),
            dates[rng.integers(0, 4)],
            str(rng.choice(["merge", "gap"])),
            "",
            "",
            f"event {i}",
        )
        for i in range(80)
    ]
    columns = ["area", "date", "kind", "codes", "outcome", "text"]
    want = pd.DataFrame(events, columns=columns).sort_values(["area", "date", "kind"], ignore_index=True)
    _same_frame(pd.DataFrame(sorted(events, key=_event_order), columns=columns), want)
    _, area_map = harmonise(load_bundled("ae_attendances_2016_2019"), "2018-05-01", "2023-04-01")
    assert area_map.events["date"].isna().any()  # codes with no rows: events without a date
    _same_frame(area_map.events, area_map.events.sort_values(["area", "date", "kind"], ignore_index=True))


def test_rows_by_label_are_groupbys_indices_in_order() -> None:
    labels = np.array(["b", "a", "b", "c", "a", "b"], dtype=object)
    got = rows_by_label(labels)
    want = pd.Series(labels).groupby(labels).indices
    assert list(got) == ["b", "a", "c"] and {k: list(v) for k, v in got.items()} == {
        k: list(v) for k, v in want.items()
    }
