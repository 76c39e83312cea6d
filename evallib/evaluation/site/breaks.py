"""Level shifts in the site's own series, handled before any estimate: stitched, cut around, or not evaluable.

The screen that keeps broken areas out of the comparison pool (:func:`evallib.sources.quality.structural_breaks`:
a one-period step beyond 0.2 log points and 5 standard errors of the area's own noise, relative to the typical
area) runs on the site's own areas over the analysis window, with one more condition, since here a false alarm
cuts the site's window or leaves it not evaluable: the step must also stand out by 5 robust standard deviations
from the same step statistic over the area's other periods (``own_noise=True``; README: data quality, for the
false-alarm rates on simulated monthly and weekly series). Each break found is handled by one rule, in order:

1. **At the start** (within ``START_TOLERANCE`` periods of the first follow-up period, or between the pre-period
   and the follow-up): a step there is what the analysis measures, so it is kept and said (a caution that the
   estimate may reflect a change in recording as much as the care model), unless another area shifts the other
   way in the same months by about as much (a boundary change: Furness moving from 01H to 01K in April 2017, three
   months before I04's start); that one is stitched or cut like any other.
2. **Stitched**: another of the site's own areas shifts the opposite way within a period of it and their sum
   does not shift (a boundary change between two of the site's areas: the population moved, the site did not
   change), so the two are summed into one area, as successions are (:mod:`evallib.sources.areas`).
3. **Cut**: otherwise the window is cut at the break to the clean stretch holding the start (a break in the
   pre-period starts the pre-period at the break; one in the follow-up ends the follow-up before it), when that
   stretch still meets the protocol's ``min_pre_periods`` and ``min_post_periods``. An area outside the site that
   shifts the opposite way in the same months is named (a boundary change with an area outside the site is not
   stitched: that would add an untreated population to the site).
4. **Not evaluable**, with the reason, when no clean stretch meets the minimums.

The screen then runs again on the stitched or cut window until the site's areas show no break (each pass removes
one), so no estimate spans an unexplained break. Weekly data: periods are weeks, said by their Mondays.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Literal

import numpy as np
import pandas as pd

from evallib.errors import NotEvaluable
from evallib.evaluation.site.units import AreaData, area_data
from evallib.protocol.params import SiteProtocol
from evallib.protocol.windows import in_period, period_label, period_text
from evallib.sources.panel import PANEL_COLUMNS, Panel
from evallib.sources.quality import BREAK_K, OWN_Z, is_break, level_steps, own_noise_score, step_spread_ratio
from evallib.vocabulary import plural

#: A break within this many periods of the first follow-up period is the change being measured, not a data break (3:
#: with a true -20% and CCG-like noise the largest step lands 3 months away in 1 site in 200, which 2 would cut).
START_TOLERANCE = 3
#: Two areas' shifts offset (a boundary change) when one's count change is within this factor of the other's.
BALANCE = 1.5
#: Screening passes before giving up (each pass stitches or cuts one break).
MAX_PASSES = 8

Action = Literal["at the start", "stitched", "cut", "not evaluable"]


@dataclass(frozen=True)
class SiteBreak:
    """One level shift in one of the site's areas and what was done about it.

    ``month`` is the first period at the new level; ``size_percent`` the shift relative to the typical area
    (100 x (exp(step) - 1)); ``action`` one of ``"at the start"``, ``"stitched"``, ``"cut"``,
    ``"not evaluable"``; ``detail`` says what was done and why, in words.
    """

    outcome: str
    unit: str
    month: pd.Timestamp
    size_percent: float
    action: Action
    detail: str
    #: ``weekly`` when ``month`` is the Monday of an ISO week (said as "the week of 1 Jan 2018", written as the date).
    frequency: str = "monthly"

    @property
    def words(self) -> str:
        """The break and what was done, in one sentence for a caution or a table."""
        # The detail may already end a sentence; a caution adds its own full stop.
        detail, when = self.detail.rstrip("."), in_period(self.month, self.frequency)
        return f"{self.unit}: level shift of {self.size_percent:+.0f}% {when}; {detail}"

    def to_json_dict(self) -> dict[str, Any]:
        """The ``breaks`` entry of ``results.json``."""
        return {
            "outcome": self.outcome,
            "unit": self.unit,
            "month": period_label(self.month, self.frequency),
            "size_percent": float(self.size_percent),
            "action": self.action,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Shift:
    """A break found by the screen: ``unit``, first ``month`` at the new level, ``step`` in log points."""

    unit: str
    month: pd.Timestamp
    step: float

    @property
    def size_percent(self) -> float:
        """The step in percent."""
        return float(100 * (np.exp(self.step) - 1))


def _steps(panel: Panel, outcome: str, start: pd.Timestamp, end: pd.Timestamp) -> tuple[pd.DataFrame, pd.Series]:
    wide = panel.wide(outcome).loc[start:end]
    return level_steps(wide, BREAK_K)


def find_shifts(
    panel: Panel,
    outcome: str,
    start: pd.Timestamp,
    end: pd.Timestamp,
    units: list[str] | tuple[str, ...],
    at_start: dict[str, Shift] | None = None,
) -> list[Shift]:
    """Each of ``units`` whose largest step over ``[start, end]`` is a break.

    The rule of :func:`evallib.sources.quality.structural_breaks` for a site's own series (``own_noise=True``: the
    comparison pools' rule, and the step stands out from the unit's own steps in other months). A unit in
    ``at_start`` has that shift (the one at the start, which the analysis measures) taken out of its series first,
    and its steps within ``START_TOLERANCE`` periods of it left out, so the screen looks past it: a step leaks
    into the months either side of it, and a large effect would otherwise read as a break a few months away.
    """
    wide = panel.wide(outcome).loc[start:end]
    at_start = at_start or {}
    if at_start:
        wide = wide.copy()
        for unit, s in at_start.items():
            if unit in wide.columns:
                wide.loc[wide.index >= s.month, unit] *= np.exp(-s.step)
    steps, sigma = level_steps(wide, BREAK_K)
    ratio = step_spread_ratio(steps, sigma, BREAK_K)
    out = []
    for unit in units:
        if unit not in steps.columns:
            continue
        col = steps[unit].abs()
        if unit in at_start:
            i = int(np.searchsorted(col.index, at_start[unit].month))
            col.iloc[max(i - START_TOLERANCE, 0) : i + START_TOLERANCE + 1] = np.nan
        if not col.notna().any():
            continue
        month = col.idxmax()
        step = float(steps.at[month, unit])
        # The unit's own steps, those beside a shift at the start left out (they carry part of it).
        own = steps[unit].where(col.notna()).to_numpy(dtype=float)
        i = int(col.index.get_loc(month))
        if is_break(step, float(sigma[unit]), BREAK_K) and own_noise_score(own, i, float(sigma[unit]), ratio) > OWN_Z:
            out.append(Shift(unit, pd.Timestamp(month), step))
    return out


def _near_start(periods: pd.DatetimeIndex, pre_end: pd.Timestamp, post_start: pd.Timestamp) -> pd.DatetimeIndex:
    """Periods within ``START_TOLERANCE`` of the start, and the gap between pre-period and follow-up."""
    i = int(np.searchsorted(periods, post_start))
    lo = periods[max(i - START_TOLERANCE, 0)] if len(periods) else post_start
    hi = periods[min(i + START_TOLERANCE, len(periods) - 1)] if len(periods) else post_start
    weekly = len(periods) > 1 and (periods[1] - periods[0]).days < 28
    lo = min(lo, pre_end + (pd.DateOffset(days=7) if weekly else pd.DateOffset(months=1)))
    return periods[(periods >= lo) & (periods <= hi)]


def summed(panel: Panel, outcome: str, into: str, other: str) -> Panel:
    """``panel`` with ``other``'s ``outcome`` series added into ``into``'s (months both report only)."""
    d = panel.data
    pair = (d["outcome"] == outcome) & d["unit"].isin([into, other])
    both = d[pair].assign(unit=into)
    n = both.groupby("period")["value"].transform("size")
    both = both[n == 2]
    agg = both.groupby(["unit", "period", "outcome"], as_index=False).agg(
        value=("value", "sum"), denominator=("denominator", lambda s: s.sum(min_count=1))
    )
    rest = d[~pair]
    data = pd.concat([rest, agg[PANEL_COLUMNS]], ignore_index=True).sort_values(
        ["outcome", "unit", "period"], ignore_index=True
    )
    return Panel(data[PANEL_COLUMNS], panel.frequency, panel.source, panel.files)


def stitch_partner(
    panel: Panel,
    outcome: str,
    shift: Shift,
    candidates: list[str],
    start: pd.Timestamp,
    end: pd.Timestamp,
    months_apart: int = 1,
) -> str | None:
    """One of ``candidates`` that shifts the opposite way within ``months_apart`` of ``shift`` such that their sum
    does not.

    Candidates are tried from the step closest in size (opposite sign) first; None when none qualifies.
    """
    others = [u for u in candidates if u != shift.unit]
    days, one = (7, pd.DateOffset(days=7)) if panel.frequency == "weekly" else (31, pd.DateOffset(months=1))
    found = [
        s
        for s in find_shifts(panel, outcome, start, end, others)
        if np.sign(s.step) == -np.sign(shift.step) and abs((s.month - shift.month).days) <= days * months_apart
    ]
    wide = panel.wide(outcome).loc[start:end]
    for s in sorted(found, key=lambda s: abs(s.step + shift.step)):
        if not 1 / BALANCE <= -_count_change(wide[s.unit], s) / _count_change(wide[shift.unit], shift) <= BALANCE:
            continue  # what one area lost, the other did not gain
        joined = summed(panel, outcome, shift.unit, s.unit)
        steps, sigma = _steps(joined, outcome, start, end)
        near = steps[shift.unit].loc[shift.month - one : shift.month + one]
        # The sum must not move by the screen's noise test alone (no floor): a moved population adds up.
        if near.notna().any() and not any(
            is_break(float(x), float(sigma[shift.unit]), BREAK_K, 0.0) for x in near.dropna()
        ):
            return s.unit
    return None


def _count_change(series: pd.Series, shift: Shift) -> float:
    """The shift in counts: the mean over the ``BREAK_K`` periods before it times the relative change (the step is
    relative to the typical area, so seasonality and national change are out of it).
    """
    before = float(series.loc[: shift.month].iloc[:-1].iloc[-BREAK_K:].mean())
    change = before * (np.exp(shift.step) - 1)
    return change if change != 0 else float("nan")


def mirror(panel: Panel, outcome: str, shift: Shift, units: list[str], start: pd.Timestamp, end: pd.Timestamp) -> str:
    """Words naming an area outside the site that shifts the other way in the same month and with which the site's
    area sums to no shift (part of the area may have moved to or from it), or an empty string.
    """
    others = [u for u in panel.wide(outcome).columns if u not in units]
    # The same month only: among hundreds of areas some shift the other way a month apart by chance.
    partner = stitch_partner(panel, outcome, shift, [shift.unit, *others], start, end, months_apart=0)
    if partner is None:
        return ""
    return (
        f" {partner} shifted the other way in the same {'week' if panel.frequency == 'weekly' else 'month'} by about as "
        f"much, so part of the area may have moved to or from {partner}, outside the site; summing them would add an "
        "untreated population to the site, so the series is not stitched."
    )


def cut_protocol(
    protocol: SiteProtocol, shift: Shift, periods: pd.DatetimeIndex, label: str, word: str
) -> tuple[SiteProtocol, str]:
    """The protocol with its window cut at ``shift`` and the reason in words; raises NotEvaluable when too short.

    ``periods`` are the outcome's periods in the data inside the current window.
    """
    w = protocol.windows
    freq, when = ("weekly" if word == "week" else "monthly"), shift.month
    if shift.month <= w.pre_end:
        n_pre = int(((periods >= shift.month) & (periods <= w.pre_end)).sum())
        if n_pre < protocol.min_pre_periods:
            raise NotEvaluable(
                f"the site's {label} series ({shift.unit}) shifts by {shift.size_percent:+.0f}% {in_period(when, freq)}, "
                f"before the start and not explained by a change between the site's own areas; the pre-period after "
                f"it has {plural(n_pre, word)}, fewer than the protocol's minimum of {protocol.min_pre_periods}, so no "
                "before-and-after comparison avoids it"
            )
        # A weekly window starts on the shift's Monday, not the first of its month.
        new = replace(protocol, pre_period_start=period_label(shift.month, freq))
        return new, (
            f"the pre-period now starts at the shift ({period_text(when, freq)}, was {period_text(w.pre_start, freq)}): "
            f"{plural(n_pre, 'pre-period ' + word)} remain"
        )
    before = periods[periods < shift.month]
    n_post = int(((before >= w.post_start) & (before <= w.post_end)).sum())
    if n_post < protocol.min_post_periods or not len(before):
        raise NotEvaluable(
            f"the site's {label} series ({shift.unit}) shifts by {shift.size_percent:+.0f}% {in_period(when, freq)}, "
            f"during the follow-up and not explained by a change between the site's own areas; the follow-up before "
            f"it has {plural(n_post, word)}, fewer than the protocol's minimum of {protocol.min_post_periods}, so no "
            "before-and-after comparison avoids it"
        )
    last = before.max()
    new = replace(protocol, post_period_end=period_label(last, freq))
    return new, (
        f"the follow-up now ends before the shift ({period_text(last, freq)}, was {period_text(w.post_end, freq)}): "
        f"{plural(n_post, 'follow-up ' + word)} remain"
    )


def near_start(periods: pd.DatetimeIndex, protocol: SiteProtocol) -> pd.DatetimeIndex:
    """The periods a step is read as the change being measured (see ``START_TOLERANCE``)."""
    w = protocol.windows
    return _near_start(periods, w.pre_end, w.post_start)


def stitch_areas(areas: AreaData, into: str, other: str, text: str) -> AreaData:
    """``areas`` with the site's area ``other`` summed into ``into`` (one area from then on)."""
    members = dict(areas.members)
    members[into] = tuple(sorted({*areas.codes(into), *areas.codes(other)}))
    members.pop(other, None)
    return replace(
        areas,
        panel=summed(areas.panel, areas.outcome, into, other),
        treated=tuple(u for u in areas.treated if u != other),
        members=members,
        stitches=(*areas.stitches, text),
    )


def _boundary(areas: AreaData, s: Shift, start: pd.Timestamp, end: pd.Timestamp) -> bool:
    """Whether another area shifts the other way as ``s`` does (a population moved: not the care model's effect)."""
    treated = list(areas.treated)
    return stitch_partner(areas.panel, areas.outcome, s, treated, start, end) is not None or bool(
        mirror(areas.panel, areas.outcome, s, treated, start, end)
    )


def screen_site(
    protocol: SiteProtocol, panel: Panel, outcome: str, treated_codes: tuple[str, ...], label: str, word: str
) -> tuple[SiteProtocol, AreaData, tuple[SiteBreak, ...]]:
    """The site's areas with every break in its own series handled (see the module's rules).

    Returns the protocol with its windows as analysed (cut when a break was cut around), the areas (stitched
    where a break was stitched) and every break with its action; raises NotEvaluable when a break cannot be
    avoided with the protocol's minimum pre- and post-periods.
    """
    breaks: list[SiteBreak] = []
    freq = "weekly" if word == "week" else "monthly"
    pairs: list[tuple[str, str, str]] = []
    kept: dict[str, Shift] = {}
    for _ in range(MAX_PASSES):
        w = protocol.windows
        start, end = w.span
        areas = area_data(panel, outcome, treated_codes, start, end)
        for into, other, text in pairs:
            if into in areas.treated and other in areas.treated:
                areas = stitch_areas(areas, into, other, text)
        periods = areas.panel.wide(outcome).loc[start:end].index
        ignore = near_start(pd.DatetimeIndex(periods), protocol)
        treated = list(areas.treated)
        while True:  # until no shift at the start is new: taking one out changes the panel's noise measure
            shifts = find_shifts(areas.panel, outcome, start, end, treated, kept)
            fresh = [
                s for s in shifts if s.month in ignore and s.unit not in kept and not _boundary(areas, s, start, end)
            ]
            if not fresh:
                break
            for s in fresh:
                kept[s.unit] = s
                breaks.append(
                    SiteBreak(
                        outcome,
                        s.unit,
                        s.month,
                        s.size_percent,
                        "at the start",
                        "kept: a shift at the start is what the analysis measures, but it may reflect a change in "
                        "how activity was recorded as much as the care model; check locally",
                        freq,
                    )
                )
        if not shifts:
            return protocol, areas, tuple(breaks)
        shift = max(shifts, key=lambda s: abs(s.step))
        partner = stitch_partner(areas.panel, outcome, shift, list(areas.treated), start, end)
        if partner is not None:
            text = (
                f"Areas {shift.unit} and {partner}, {outcome}: {shift.unit} shifts by {shift.size_percent:+.0f}% "
                f"{in_period(shift.month, freq)} and {partner} the other way, and their sum does not shift (a boundary change "
                "between two of the site's areas), so their series are summed into one area."
            )
            pairs.append((shift.unit, partner, text))
            breaks.append(
                SiteBreak(
                    outcome,
                    shift.unit,
                    shift.month,
                    shift.size_percent,
                    "stitched",
                    f"stitched: {partner} (also the site's) shifts the other way in the same months and their sum does "
                    f"not shift, so the two are summed into one area, {shift.unit}",
                    freq,
                )
            )
            continue
        outside = mirror(areas.panel, outcome, shift, list(areas.treated), start, end)
        try:
            protocol, why = cut_protocol(protocol, shift, pd.DatetimeIndex(periods), label, word)
        except NotEvaluable as exc:
            raise NotEvaluable(f"{exc}.{outside[:-1]}" if outside else str(exc)) from None
        breaks.append(
            SiteBreak(
                outcome,
                shift.unit,
                shift.month,
                shift.size_percent,
                "cut",
                f"cut: an estimate across the shift would mix it with any effect, so {why}.{outside}",
                freq,
            )
        )
    raise NotEvaluable(
        f"the site's {label} series still shifts level after {MAX_PASSES} stitches and cuts; no clean window remains"
    )
