"""Months and units the data cannot be trusted for: suspect months and one-month level shifts.

Two pre-specified rules, with their thresholds as named constants below.

**Suspect months** (:func:`suspect_runs`). The Monthly Activity Return's own ``qa_nonel_outlier`` flag catches
only short gaps. Here each unit's month is compared with the unit's usual share of England: the share is the
unit's count over England's total that month, its usual level the centred rolling median of the share over
``SUSPECT_WINDOW`` (37) calendar months (fewer at the ends of a series: the median of whatever months the
window holds). A month is suspect when share / usual share is below ``SUSPECT_LOW`` (0.7) or above
``SUSPECT_HIGH`` (1.4); consecutive suspect months of a unit form a run. The median over three years is not
moved by a run of up to 18 months, so a nine-month under-report (Solihull 05P, Sandwell and West Birmingham
05Q, Birmingham CrossCity 13P from July 2014) is found, as are Gloucestershire 11M from December 2016 for
seven months, Calderdale 02T and Greater Huddersfield 03A May-July 2017, and about fifteen single months.
:func:`impute_suspect` replaces a suspect month by the usual share times England's total that month and says so.

**Level shifts** (:func:`structural_breaks`), for screening comparison units. On the log scale, relative to
the typical unit's path (each period's median log change over units reporting in it and the period before,
cumulated: this takes out seasonality and national shocks, and units entering or leaving do not move it), the
step at month
``m`` is the mean of the ``BREAK_K`` (6) months from ``m`` on minus the mean of the 6 months before. The unit's
own noise ``sigma`` is the robust standard deviation of its month-to-month changes (1.4826 x their median
absolute deviation) over sqrt(2), so that a step between two 6-month means has standard error
``sigma * sqrt(2 / 6)``. A unit has a break at the month of its largest step when that step exceeds both
``BREAK_FLOOR`` (0.2 log points: +22% or -18%) and ``BREAK_Z`` (5) standard errors. A walk-in centre that
moves into a trust's return (+60% in one month) is far beyond both; seasonal noise and slow trends are not.

**Level shifts in a site's own series** (``own_noise=True``; :mod:`evallib.evaluation.site.breaks` acts on them:
stitched, cut around or not evaluable). The noise measure above treats months as independent, but NHS series
wander (autocorrelated noise, drifts): a step between two 6-month means spreads about 2.2 times (commissioner
admissions) to 3 times (trust A&E) what it implies, so for a site's own areas the rule above flags noise in about
2% of exchangeable simulated CCGs. A step there must also stand out by ``OWN_Z`` (5) robust standard deviations
(1.4826 x median absolute deviation), both (a) of **the same step statistic over the unit's other months** (those
``BREAK_K`` or more months from it, centred on their median, so a drift is out of it; with fewer than
``OWN_MIN_STEPS`` (12) such months this measure is not used), and (b) of its month-to-month noise scaled by the
panel's typical ratio of the two (the median over units of the robust spread of each unit's steps over the
standard error its month-to-month noise implies; precise where (a), from a few dozen overlapping steps, is not).
On simulated NHS-like panels (:func:`evallib.methods.simulate.simulate_nhs_panel`, the Monte Carlo suite's
vanguard design, 400 panels) it flags 10 of 57,200 exchangeable CCG series (0.02%) and none of 400 three-times-
volatile ones, where the rule above flags 1.9% and 48% (``tests/test_site_breaks.py``), while the real breaks of
the bundled data are still found, with scores (the smaller z) of 12 (Furness leaving 01H, -37%), 9 (trust RBD,
+96%), 9 (Dudley 05C, -31%), 10 and 6 (Bradford 02R +41%, 02W +43%) and 5.3 (Leeds West 03C, -22%).

**Weekly data** (an evaluator's own file): the same rules and thresholds per period (6-week means either side of a
step; week-to-week noise). Weekly noise persists for weeks, so the pools' rule alone flags about 1 unbroken weekly
series in 8; a weekly comparison pool is screened with ``own_noise=True`` too
(:func:`evallib.evaluation.site.units.area_data`; README: data quality, for the measured rates).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable

import numpy as np
import pandas as pd

from evallib.errors import DataError
from evallib.sources.arrays import nanmedian, rows_by_label, wide_table
from evallib.sources.bundled import BUNDLED, england_total
from evallib.sources.panel import PANEL_COLUMNS, Panel
from evallib.vocabulary import plural

#: A month is suspect below this share of the unit's usual share of England ...
SUSPECT_LOW = 0.7
#: ... or above this.
SUSPECT_HIGH = 1.4
#: Months in the centred rolling median that defines a unit's usual share of England.
SUSPECT_WINDOW = 37
#: Months either side of a candidate level shift.
BREAK_K = 6
#: A level shift must exceed this many log points (0.2: +22% or -18%) ...
BREAK_FLOOR = 0.2
#: ... and this many standard errors of the unit's own noise.
BREAK_Z = 5.0
#: A shift in a site's own series must also exceed this many robust standard deviations of the unit's own steps.
OWN_Z = 5.0
#: Steps at least ``BREAK_K`` periods from a candidate needed to measure its unit's own spread of steps.
OWN_MIN_STEPS = 12
#: Robust standard deviation from the median absolute deviation of a normal sample.
_MAD_SD = 1.4826

RUN_COLUMNS = ["unit", "first", "last", "months", "ratio"]
BREAK_COLUMNS = ["unit", "month", "step", "change_pct", "sigma", "z", "reason"]


def _outcome(panel: Panel, outcome: str | None) -> str:
    if outcome is None:
        if len(panel.outcomes) != 1:
            raise DataError(f"{panel.source}: name the outcome; the panel holds {', '.join(panel.outcomes)}")
        return panel.outcomes[0]
    return outcome


def _monthly_wide(panel: Panel, outcome: str) -> pd.DataFrame:
    wide = wide_table(panel, outcome)
    if panel.frequency != "monthly":
        return wide
    return wide.reindex(pd.date_range(wide.index.min(), wide.index.max(), freq="MS"))


def _england(panel: Panel, outcome: str, england: pd.Series | None, index: pd.DatetimeIndex) -> pd.Series:
    if england is None:
        if panel.source in BUNDLED:
            england = england_total(panel.source, outcome)
        else:  # an evaluator's own file: its units are taken to be the whole country
            england = panel.wide(outcome).sum(axis=1, min_count=1)
    return england.reindex(index)


def usual_share(
    panel: Panel, outcome: str | None = None, england: pd.Series | None = None, *, window: int = SUSPECT_WINDOW
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    """Each unit's share of England, its centred rolling median share, and England's total (all by month).

    Returns ``(share, usual, england)``: two period x unit frames and the England series on the same months.
    """
    outcome = _outcome(panel, outcome)
    wide = _monthly_wide(panel, outcome)
    eng = _england(panel, outcome, england, wide.index)
    share = wide.div(eng, axis=0)
    usual = share.rolling(window, center=True, min_periods=1).median()
    return share, usual, eng


def suspect_runs(
    panel: Panel,
    outcome: str | None = None,
    england: pd.Series | None = None,
    *,
    low: float = SUSPECT_LOW,
    high: float = SUSPECT_HIGH,
    window: int = SUSPECT_WINDOW,
    shares: tuple[pd.DataFrame, pd.DataFrame, pd.Series] | None = None,
) -> pd.DataFrame:
    """Runs of months whose share of England is far from the unit's usual share (see the module's rule).

    Parameters
    ----------
    panel : Panel
        Counts by unit and month (e.g. ``load_bundled("mar_commissioner_2008_2019")`` or a harmonised panel).
    outcome : str, optional
        Needed when the panel holds several outcomes.
    england : Series, optional
        England's total by month; by default the bundled dataset's England total (:func:`england_total`), or the
        sum over the panel's units for an evaluator's own file. ``shares``: :func:`usual_share`'s result, if held.

    Returns
    -------
    DataFrame
        One row per run: ``unit``, ``first`` and ``last`` month, ``months`` (count) and ``ratio`` (median of
        share / usual share over the run, e.g. 0.1 = a tenth of the usual count), sorted by unit and month.
    """
    share, usual, _ = shares if shares is not None else usual_share(panel, outcome, england, window=window)
    ratio = share / usual
    flagged = ((ratio < low) | (ratio > high)) & share.notna()
    rows = []
    for unit in flagged.columns[flagged.any().to_numpy()]:
        observed = share[unit].notna()
        f = flagged.loc[observed, unit]
        run_id = (f != f.shift()).cumsum()
        for _, months in f[f].groupby(run_id[f]):
            idx = months.index
            rows.append((unit, idx.min(), idx.max(), len(idx), float(ratio.loc[idx, unit].median())))
    return pd.DataFrame(rows, columns=RUN_COLUMNS).sort_values(["unit", "first"], ignore_index=True)


def units_with_runs(runs: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp) -> set[str]:
    """Units with a suspect run overlapping ``[start, end]``."""
    hit = (runs["first"] <= pd.Timestamp(end)) & (runs["last"] >= pd.Timestamp(start))
    return set(runs.loc[hit, "unit"])


def impute_suspect(
    panel: Panel,
    runs: pd.DataFrame,
    outcome: str | None = None,
    england: pd.Series | None = None,
    *,
    window: int = SUSPECT_WINDOW,
    shares: tuple[pd.DataFrame, pd.DataFrame, pd.Series] | None = None,
) -> tuple[Panel, list[str]]:
    """Replace every month of ``runs`` by the unit's usual share of England times England's total that month.

    Returns the panel with those values replaced (other outcomes and rows untouched) and one note per run saying
    which months were imputed, how, and how far the reported figure was from the imputed one. ``shares``:
    :func:`usual_share`'s result for the panel and outcome, if the caller holds it.
    """
    outcome = _outcome(panel, outcome)
    share, usual, eng = shares if shares is not None else usual_share(panel, outcome, england, window=window)
    data = panel.data.copy()
    # On arrays, run by run in order (a run sees what earlier runs imputed): pandas look-ups per run were slow.
    values, periods_all = data["value"].to_numpy(dtype=float, copy=True), data["period"].to_numpy()
    rows_of = np.flatnonzero((data["outcome"] == outcome).to_numpy())
    unit_rows = rows_by_label(data["unit"].iloc[rows_of])  # each unit's rows of the outcome, in order
    usual_arr, eng_arr = usual.to_numpy(dtype=float), eng.to_numpy(dtype=float)
    notes: list[str] = []
    for run in runs.itertuples(index=False):
        months = pd.date_range(run.first, run.last, freq="MS") if panel.frequency == "monthly" else [run.first]
        rows = rows_of[unit_rows[run.unit]] if run.unit in unit_rows else rows_of[:0]
        rows = rows[pd.DatetimeIndex(periods_all[rows]).isin(months)]
        if not len(rows):
            continue
        at = usual.index.get_indexer(periods_all[rows])
        if (at < 0).any():
            raise KeyError(f"{run.unit}: months missing from the usual shares")
        usual_run = usual_arr[at, usual.columns.get_loc(run.unit)]
        imputed = usual_run * eng_arr[at]
        reported = pd.Series(values[rows]).sum()  # pandas' sum and mean, as on the frame
        values[rows] = np.round(imputed)
        span = f"{run.first:%b %Y}" if run.months == 1 else f"{run.first:%b %Y} - {run.last:%b %Y}"
        notes.append(
            f"{run.unit}: {plural(run.months, 'month')} {span} imputed as the unit's usual share of England "
            f"(centred {window}-month rolling median, about {100 * float(pd.Series(usual_run).mean()):.2f}%) "
            f"times England's total that month; the reported {reported:,.0f} became {imputed.sum():,.0f} "
            f"(reported / usual share {run.ratio:.2f})."
        )
    data["value"] = values
    return Panel(data[PANEL_COLUMNS], panel.frequency, panel.source, panel.files), notes


def relative_log(wide: pd.DataFrame) -> pd.DataFrame:
    """Log counts relative to the typical unit's path (zeros and gaps are NaN).

    The typical path is chain-linked: each period's median log change over the units that report in both it and
    the period before, cumulated. Units entering or leaving the data (PCTs giving way to CCGs in April 2013, a
    new provider) therefore do not move it, as a median of levels would.
    """
    return pd.DataFrame(_relative_log(wide.to_numpy(dtype=float)), index=wide.index, columns=wide.columns)


def _relative_log(values: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore"):
        logs = np.log(np.where(values > 0, values, np.nan))
    change = nanmedian(np.diff(logs, axis=0), axis=1)  # NaN for a period no unit spans
    path = np.concatenate([[0.0], np.cumsum(np.nan_to_num(change, nan=0.0))])
    return logs - path[:, None]


def level_steps(wide: pd.DataFrame, k: int = BREAK_K) -> tuple[pd.DataFrame, pd.Series]:
    """Step at every month of every unit and each unit's noise scale (see the module's rule).

    ``wide`` is period x unit counts (rows are the periods the data hold; a missing calendar month is skipped).
    Returns ``(step, sigma)``: the step at month ``m`` is the mean of the relative log series over ``m`` and
    the ``k - 1`` months after minus its mean over the ``k`` months before (NaN without ``k`` months on each
    side); ``sigma`` is the robust standard deviation of the unit's month-to-month change over sqrt(2).
    """
    step, sigma = level_step_arrays(wide.to_numpy(dtype=float), k)
    return pd.DataFrame(step, index=wide.index, columns=wide.columns), pd.Series(sigma, index=wide.columns)


def level_step_arrays(values: np.ndarray, k: int = BREAK_K) -> tuple[np.ndarray, np.ndarray]:
    """:func:`level_steps` on a period x unit array of counts: ``(step, sigma)`` as arrays."""
    rel = _relative_log(values)
    with np.errstate(invalid="ignore"):  # all-NaN columns give NaN, as they should
        diff = np.diff(rel, axis=0)
        sigma = _MAD_SD * nanmedian(np.abs(diff - nanmedian(diff, axis=0)), axis=0) / np.sqrt(2)
    # Means of k consecutive rows by cumulative sums; a window with any gap is NaN.
    ok = ~np.isnan(rel)
    zeros = np.zeros((1, rel.shape[1]))
    csum = np.vstack([zeros, np.cumsum(np.where(ok, rel, 0.0), axis=0)])
    ccount = np.vstack([zeros, np.cumsum(ok, axis=0)])
    n = rel.shape[0]
    step = np.full(rel.shape, np.nan)
    if n >= 2 * k:
        m = np.arange(k, n - k + 1)  # months with k rows before and k from m on
        after = (csum[m + k] - csum[m]) / k
        before = (csum[m] - csum[m - k]) / k
        full = (ccount[m + k] - ccount[m] == k) & (ccount[m] - ccount[m - k] == k)
        step[m] = np.where(full, after - before, np.nan)
    return step, sigma


def is_break(step: float, sigma: float, k: int = BREAK_K, floor: float = BREAK_FLOOR, z: float = BREAK_Z) -> bool:
    """Whether a step is a level shift by the module's rule (beyond ``floor`` and ``z`` standard errors)."""
    se = sigma * np.sqrt(2 / k)
    return bool(abs(step) > floor and (not se > 0 or abs(step) > z * se))


def step_spread_ratio(steps: pd.DataFrame, sigma: pd.Series, k: int = BREAK_K) -> float:
    """The panel's typical ratio of the robust spread of a unit's steps to the standard error its month-to-month
    noise implies (``sigma * sqrt(2 / k)``): the median over units; 1 for independent months, more where series
    wander. NaN without a unit with both.
    """
    arr = steps.to_numpy(dtype=float)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # units without steps give NaN, left out below
        centre = np.nanmedian(arr, axis=0)
        spread = _MAD_SD * np.nanmedian(np.abs(arr - centre), axis=0)
    se = sigma.reindex(steps.columns).to_numpy(dtype=float) * np.sqrt(2 / k)
    ratio = spread / np.where(se > 0, se, np.nan)
    ratio = ratio[np.isfinite(ratio)]
    return float(np.median(ratio)) if len(ratio) else float("nan")


def own_noise_score(column: np.ndarray, i: int, sigma: float, ratio: float, k: int = BREAK_K) -> float:
    """How far the step at position ``i`` of one unit's steps stands out from the unit's own noise (see the module's
    rule for a site's own series): the smaller of its robust z against the unit's steps ``k`` or more positions away
    and against ``ratio`` times the standard error its month-to-month noise implies; inf where neither can be
    measured.
    """
    pos = np.arange(len(column))
    others = column[~np.isnan(column) & (np.abs(pos - i) >= k)]
    centre = float(np.median(others)) if len(others) else 0.0
    gap = abs(float(column[i]) - centre)
    scores = []
    if len(others) >= OWN_MIN_STEPS:
        spread = _MAD_SD * float(np.median(np.abs(others - centre)))
        scores.append(gap / spread if spread > 0 else np.inf)
    se = ratio * sigma * np.sqrt(2 / k)
    if np.isfinite(se):
        scores.append(gap / se if se > 0 else np.inf)
    return min(scores) if scores else np.inf


def structural_breaks(
    panel: Panel,
    outcome: str | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    *,
    units: Iterable[str] | None = None,
    k: int = BREAK_K,
    floor: float = BREAK_FLOOR,
    z: float = BREAK_Z,
    own_noise: bool = False,
) -> pd.DataFrame:
    """Units whose series shifts level in one month far beyond their own noise, within ``[start, end]``.

    Parameters
    ----------
    panel : Panel
        Counts by unit and period (raw or harmonised).
    outcome : str, optional
        Needed when the panel holds several outcomes; for a rate the numerator's counts are screened.
    start, end : timestamp, optional
        The analysis window (default: all the data); both sides of a step lie inside it.
    units : iterable of str, optional
        Screen only these units (the period medians still use every unit of the panel).
    own_noise : bool
        Also require the step to stand out from the unit's own steps (the rule for a site's own series; see the
        module). The comparison pools are screened without it.

    Returns
    -------
    DataFrame
        One row per flagged unit: ``unit``, ``month`` (first month at the new level), ``step`` (log points),
        ``change_pct`` (100 x (exp(step) - 1)), ``sigma`` (the unit's noise), ``z`` (step / its standard error)
        and ``reason`` in words; sorted by unit.
    """
    outcome = _outcome(panel, outcome)
    wide = wide_table(panel, outcome)
    lo = pd.Timestamp(start) if start is not None else wide.index.min()
    hi = pd.Timestamp(end) if end is not None else wide.index.max()
    wide = wide.loc[lo:hi]
    arr, sigmas = level_step_arrays(wide.to_numpy(dtype=float), k)
    chosen = list(units) if units is not None else list(wide.columns)
    # Each unit's largest step, on arrays (a loop of pandas look-ups cost most of a batch's start).
    absolute = np.where(np.isnan(arr), -np.inf, np.abs(arr))
    at = absolute.argmax(axis=0)  # the first month of the largest step, as idxmax
    largest, se = arr[at, np.arange(arr.shape[1])], sigmas * np.sqrt(2 / k)
    with np.errstate(invalid="ignore"):  # is_break's test on every unit at once: only candidates are looked at
        candidate = np.isfinite(largest) & (np.abs(largest) > floor) & (~(se > 0) | (np.abs(largest) > z * se))
    column = {u: i for i, u in enumerate(wide.columns)}
    ratio = float("nan")
    if own_noise:
        steps = pd.DataFrame(arr, index=wide.index, columns=wide.columns)
        ratio = step_spread_ratio(steps, pd.Series(sigmas, index=wide.columns), k)
    weekly = panel.frequency == "weekly"  # the same rule per period; the words name a week by its Monday
    noise = "week-to-week" if weekly else "month-to-month"

    def when(ts: pd.Timestamp) -> str:
        return f"in the week of {ts.day} {ts:%b %Y}" if weekly else f"in {ts:%b %Y}"

    rows = []
    for unit in chosen:
        i = column.get(unit)
        if i is None or not candidate[i] or not np.isfinite(absolute[at[i], i]):
            continue
        step = float(arr[at[i], i])
        s = float(sigmas[i])
        if not is_break(step, s, k, floor, z):
            continue
        month = wide.index[at[i]]
        if own_noise and not own_noise_score(arr[:, i], int(at[i]), s, ratio, k) > OWN_Z:
            continue
        score = abs(step) / (s * np.sqrt(2 / k)) if s > 0 else np.inf
        change = 100 * (np.exp(step) - 1)
        rows.append(
            (
                unit,
                month,
                step,
                change,
                s,
                score,
                f"level shift of {change:+.0f}% {when(month)} relative to other units "
                f"({score:.0f} times the standard error from its own {noise} noise)",
            )
        )
    return pd.DataFrame(rows, columns=BREAK_COLUMNS).sort_values("unit", ignore_index=True)
