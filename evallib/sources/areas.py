"""Codes that stay the same area over an analysis window: CCGs and trusts stitched across mergers and splits.

Organisations merge, split and are renamed, so a code's series may cover different populations at different
times, and a site named by 2020 codes may have no data under those codes before 2020. :func:`harmonise` turns a
panel of published codes into a panel of **areas** that are the same over one analysis window ``[start, end]``:

- **Successions inside the window are combined.** Every succession (ODS ``succ``/``succarc`` records between
  CCGs, PCTs, care trusts and NHS trusts, plus the PCT -> CCG joins of :mod:`evallib.sources.commissioners`)
  effective after ``start`` and on or before ``end`` links its old and new code; linked codes are combined by
  union-find, and each area's series is the sum of its codes. A merger is one area before and after
  (Newcastle Gateshead 13T = 00F + 00G + 00H, merged April 2015); a split keeps the divided code and all its
  successors together, so the area covers the same population throughout.
- **Successions outside the window are ignored**: one effective on or before ``start`` has no data left on its
  old side, one after ``end`` has not happened yet. So areas depend on the window: Leeds 02V, 03C and 03G are
  three areas in a 2013-2018 vanguard window and one (15F, merged April 2018) in a 2016-2019 ICS window.
- **An area is named by its latest code inside the window**: of the codes with data in the window, the one whose
  data end last (then: begin last; then the greater code).
- **A month counts only when it is complete**: each code's span is its first to its last month with data
  inside the window; an area's month is dropped when a code whose span covers it has no value (a gap).
- **Stitches are checked** (``check_continuity``): at every month where an area's reporting codes change, and
  at the first month on or after each succession date, the summed series must not shift level by the rule of
  :mod:`evallib.sources.quality` (a step beyond 0.2 log points and 5 standard errors of its own noise). A stitch
  that fails (typically a predecessor whose rows are absent from the file) is not used: the area keeps only the
  months from the shift on, and the event says why.

The returned :class:`AreaMap` records every area's codes and, in words, every merger, split, join, ignored
succession, code with no rows and failed stitch, so a report can list each one. :func:`resolve` maps any-era
codes (a site's 2020 CCG codes, a closed trust's code) to the window's areas and says when an area is only
partly covered by the site's codes.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd

from evallib.errors import DataError
from evallib.sources.area_map import EVENT_COLUMNS, LINK_COLUMNS, AreaMap, label, resolve
from evallib.sources.bundled import BUNDLED, load_successions, organisation_names
from evallib.sources.commissioners import join_links
from evallib.sources.panel import PANEL_COLUMNS, Panel
from evallib.sources.quality import BREAK_FLOOR, BREAK_K, BREAK_Z, level_step_arrays
from evallib.vocabulary import plural

#: A succession link as read (``LINK_COLUMNS``: old code, new code, effective date, source) and an event
#: (``EVENT_COLUMNS``: area, date, kind, codes, outcome, text).
Link = tuple[str, str, pd.Timestamp, str]
Event = tuple[str, pd.Timestamp, str, str, str, str]

__all__ = ["AreaMap", "default_links", "harmonise", "pool_codes", "resolve"]

_COMMISSIONERS = {"ccg", "pct", "care_trust"}


@lru_cache(maxsize=1)
def _default_links() -> pd.DataFrame:
    ods = load_successions()
    # A PCT handing its provider arm to a trust is not a change of population: keep commissioner links among
    # commissioners and trust links among trusts.
    same_kind = ods["old_kind"].isin(_COMMISSIONERS) == ods["new_kind"].isin(_COMMISSIONERS)
    ods = ods[same_kind].assign(source="ODS succession")[LINK_COLUMNS]
    return pd.concat([ods, join_links()[LINK_COLUMNS]], ignore_index=True)


def default_links() -> pd.DataFrame:
    """ODS successions (among CCGs, PCTs and care trusts; among NHS trusts) and the accepted PCT -> CCG joins."""
    return _default_links().copy()


def pool_codes(units: set[str] | frozenset[str], data_source: object) -> set[str]:
    """The codes a ``design_pool`` may name for data holding ``units`` (all upper case): those codes and, for a
    bundled source, every code :func:`default_links` chain to one of them, in either direction and any era. The one
    rule of the pre-run check and of ``evaluate_site``.
    """
    codes = {u.upper() for u in units}
    if not (isinstance(data_source, str) and data_source in BUNDLED):
        return codes
    links = _default_links()
    old, new = links["old_code"].astype(str).str.upper(), links["new_code"].astype(str).str.upper()
    root = _components(sorted(codes), list(zip(old, new, strict=True)))
    joined = {root[c] for c in codes}
    return {c for c, r in root.items() if r in joined}


def _components(codes: list[str], pairs: list[tuple[str, str]]) -> dict[str, str]:
    parent: dict[str, str] = {c: c for c in codes}

    def find(c: str) -> str:
        parent.setdefault(c, c)
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    for old, new in pairs:
        parent[find(old)] = find(new)
    return {c: find(c) for c in parent}


def _spans(observed: np.ndarray) -> np.ndarray:
    """True from each column's first to its last observed row."""
    return (np.cumsum(observed, axis=0) > 0) & (np.cumsum(observed[::-1], axis=0)[::-1] > 0)


def harmonise(
    panel: Panel,
    start: pd.Timestamp | str,
    end: pd.Timestamp | str,
    *,
    links: pd.DataFrame | None = None,
    check_continuity: bool = True,
    k: int = BREAK_K,
) -> tuple[Panel, AreaMap]:
    """A panel of areas that stay the same over ``[start, end]``, and the map of what was combined.

    Parameters
    ----------
    panel : Panel
        Counts by published code (CCG, PCT or trust), e.g. from :func:`evallib.sources.bundled.load_bundled`.
    start, end : timestamp or str
        The analysis window; rows outside it are dropped.
    links : DataFrame, optional
        Successions to use (``old_code``, ``new_code``, ``effective_date``; ``source`` optional); default
        :func:`default_links` (ODS successions and the accepted PCT -> CCG joins).
    check_continuity : bool
        Check each stitch for a level shift and keep only the months after one (see the module's rules).
    k : int
        Months either side of a stitch compared by the continuity check.

    Returns
    -------
    (Panel, AreaMap)
        The panel has the same outcomes, source and files, one unit per area (values and denominators summed
        over the area's codes, complete months only); the map says which codes each area holds and why.

    Notes
    -----
    Summing codes assumes each count is additive over organisations (admissions, attendances). A rate's
    numerator and denominator are summed separately, so the area's rate is the pooled rate.
    """
    start, end = pd.Timestamp(start), pd.Timestamp(end)
    links = _default_links() if links is None else links.assign(source=links.get("source", "given link"))
    links = links.assign(effective_date=pd.to_datetime(links["effective_date"]))[LINK_COLUMNS]
    if end < start:
        raise DataError(f"{panel.source}: the window {start:%Y-%m} to {end:%Y-%m} ends before it starts")
    # On arrays of the window's rows (in the data's order, so every sum adds in the same order as before).
    data = panel.data
    window = ((data["period"] >= start) & (data["period"] <= end)).to_numpy(dtype=bool)
    if not window.any():
        raise DataError(
            f"{panel.source}: no rows between {start:%Y-%m} and {end:%Y-%m}; choose a window the data cover"
        )
    period = data["period"].to_numpy()
    unit_code, unit_name = pd.factorize(data["unit"])
    outcome_code, outcome_name = pd.factorize(data["outcome"])
    inside = links[(links["effective_date"] > start) & (links["effective_date"] <= end)]
    link_rows = list(inside.itertuples(index=False, name=None))
    first, last = _span(unit_code[window], period[window], unit_name)
    root = _components(list(first), [(o, n) for o, n, _, _ in link_rows])
    groups: dict[str, list[str]] = {}
    for code, r in root.items():
        groups.setdefault(r, []).append(code)
    members: dict[str, tuple[str, ...]] = {}
    for codes in groups.values():
        reporting = [c for c in codes if c in first]
        if reporting:
            members[max(reporting, key=lambda c: (last[c], first[c], c))] = tuple(sorted(codes))
    code_area = {c: a for a, cs in members.items() for c in cs}
    names = organisation_names()
    events = _structure_events(members, code_area, link_rows, links, set(first), end, names)
    parts = []
    values, denominators = data["value"].to_numpy(dtype=float), data["denominator"].to_numpy(dtype=float)
    for j in sorted(np.unique(outcome_code[window]), key=lambda j: outcome_name[j]):
        rows = np.flatnonzero(window & (outcome_code == j))
        outcome = outcome_name[j]
        cols = (period[rows], unit_code[rows], unit_name, values[rows], denominators[rows])
        long, ev = _combine(*cols, outcome, code_area, members, link_rows, names, check_continuity, k)
        parts.append((outcome, long))
        events.extend(ev)
    out = _stack(parts)  # already in Panel order: outcome, unit, period
    harmonised = Panel(out[PANEL_COLUMNS], panel.frequency, panel.source, panel.files)
    events.sort(key=_event_order)
    ev_frame = pd.DataFrame(events, columns=EVENT_COLUMNS)
    return harmonised, AreaMap(start, end, members, ev_frame, links)


def _event_order(event: Event) -> tuple[str, bool, pd.Timestamp | int, str]:
    """Events in the order ``sort_values(["area", "date", "kind"])`` gives (stable, no date last), in Python: a
    window has a few dozen events, which pandas' sort takes longer to set up than to sort.
    """
    area, date, kind = event[0], event[1], event[2]
    return (area, pd.isna(date), 0 if pd.isna(date) else date, kind)


def _span(
    unit_code: np.ndarray, period: np.ndarray, unit_name: pd.Index
) -> tuple[dict[str, pd.Timestamp], dict[str, pd.Timestamp]]:
    """Each unit's first and last period, units in sorted order (as ``groupby("unit")["period"].agg``)."""
    ticks = period.view(np.int64)
    lo = np.full(len(unit_name), np.iinfo(np.int64).max)
    hi = np.full(len(unit_name), np.iinfo(np.int64).min)
    np.minimum.at(lo, unit_code, ticks)
    np.maximum.at(hi, unit_code, ticks)
    present = np.unique(unit_code)
    names = list(unit_name[present])
    firsts = list(pd.DatetimeIndex(lo[present].view(period.dtype)))
    lasts = list(pd.DatetimeIndex(hi[present].view(period.dtype)))
    by_name = sorted(range(len(names)), key=lambda i: names[i])
    return {names[i]: firsts[i] for i in by_name}, {names[i]: lasts[i] for i in by_name}


def _stack(parts: list[tuple[str, dict[str, np.ndarray]]]) -> pd.DataFrame:
    """The outcomes' long frames one after another (one frame built once, as ``pd.concat`` of each outcome's)."""
    lengths = [len(cols["value"]) for _, cols in parts]
    if 0 in lengths:  # concat's own rules for an empty frame's dtypes
        frames = [pd.DataFrame({**cols, "outcome": outcome})[PANEL_COLUMNS] for outcome, cols in parts]
        return pd.concat(frames, ignore_index=True)
    both = {c: np.concatenate([cols[c] for _, cols in parts]) for c in ("unit", "period", "value", "denominator")}
    both["outcome"] = np.repeat(np.array([o for o, _ in parts], dtype=object), lengths)
    return pd.DataFrame(both)[PANEL_COLUMNS]


def _structure_events(
    members: dict[str, tuple[str, ...]],
    code_area: dict[str, str],
    link_rows: list[Link],
    links: pd.DataFrame,
    with_data: set[str],
    end: pd.Timestamp,
    names: dict[str, str],
) -> list[Event]:
    events: list[Event] = []
    into: dict[tuple[str, pd.Timestamp, str], list[str]] = {}
    out_of: dict[str, list[tuple[str, pd.Timestamp]]] = {}
    for old, new, date, source in link_rows:
        into.setdefault((new, date, source), []).append(old)
        out_of.setdefault(old, []).append((new, date))
    for (new, date, source), olds in sorted(into.items()):
        area = code_area.get(new)
        if area is None:
            continue
        olds = sorted(olds)
        kind = "join" if "PCT -> CCG" in source else "merge"
        verb = "continues" if kind == "join" else ("is the merger of" if len(olds) > 1 else "succeeds")
        text = (
            f"{label(new, names)} {verb} {' + '.join(label(o, names) for o in olds)} from {date:%d %b %Y} "
            f"({source}): their series are summed in area {area}."
        )
        events.append((area, date, kind, " ".join([*olds, new]), "", text))
    for old, news in sorted(out_of.items()):
        split = sorted({n for n, _ in news if n in with_data})
        if len(split) > 1 and old in code_area:
            date = min(d for _, d in news)
            text = (
                f"{label(old, names)} was divided among {', '.join(split)} on {date:%d %b %Y}: all are kept "
                f"together in area {code_area[old]} so it covers the same population throughout."
            )
            events.append((code_area[old], date, "split", " ".join([old, *split]), "", text))
    after: dict[str, list[tuple[str, pd.Timestamp]]] = {}
    for old, new, date, _ in links[links["effective_date"] > end].itertuples(index=False, name=None):
        if old in code_area:
            after.setdefault(old, []).append((new, date))
    for old, news in sorted(after.items()):
        date = min(d for _, d in news)
        text = (
            f"{label(old, names)} becomes part of {', '.join(sorted({n for n, _ in news}))} on {date:%d %b %Y}, "
            "after the window: ignored here."
        )
        events.append((code_area[old], date, "after_window", " ".join([old, *sorted({n for n, _ in news})]), "", text))
    for area, codes in members.items():
        absent = [c for c in codes if c not in with_data]
        if absent:
            text = (
                f"Area {area}: {', '.join(label(c, names) for c in absent)} {'has' if len(absent) == 1 else 'have'} "
                "no rows in the data inside the window (no activity of this kind, or rows published under a name "
                "the file did not match)."
            )
            events.append((area, pd.NaT, "no_rows", " ".join(absent), "", text))
    return events


def _combine(
    period: np.ndarray,
    unit_code: np.ndarray,
    unit_name: pd.Index,
    value_rows: np.ndarray,
    denom_rows: np.ndarray,
    outcome: str,
    code_area: dict[str, str],
    members: dict[str, tuple[str, ...]],
    link_rows: list[Link],
    names: dict[str, str],
    check: bool,
    k: int,
) -> tuple[dict[str, np.ndarray], list[Event]]:
    # Period x code arrays, then sums over each area's codes by one product with a code x area indicator.
    p_idx, periods = pd.factorize(period, sort=True)
    periods = pd.DatetimeIndex(periods)
    u_idx, seen = pd.factorize(unit_code)  # codes in order of their first row, as before
    codes = list(unit_name[seen])
    value = np.full((len(periods), len(codes)), np.nan)
    denom = value.copy()
    value[p_idx, u_idx] = value_rows
    denom[p_idx, u_idx] = denom_rows
    a_idx, areas = pd.factorize(np.array([code_area[c] for c in codes], dtype=object), sort=True)
    onehot = np.zeros((len(codes), len(areas)))
    onehot[np.arange(len(codes)), a_idx] = 1.0
    observed = ~np.isnan(value)
    active = _spans(observed)
    summed = np.where(observed, value, 0.0) @ onehot
    summed[(observed @ onehot) == 0] = np.nan
    den_obs = ~np.isnan(denom)
    den = np.where(den_obs, denom, 0.0) @ onehot
    den[(den_obs @ onehot) == 0] = np.nan
    # A month is incomplete when a code whose span covers it has no value (a gap).
    incomplete = ((active & ~observed) @ onehot) > 0
    events: list[Event] = []
    multi = np.array([len(members[a]) > 1 for a in areas])
    n_gap = (incomplete & ~np.isnan(summed)).sum(axis=0)
    for j in np.flatnonzero(multi & (n_gap > 0)):
        area = areas[j]
        text = f"Area {area}, {outcome}: {plural(int(n_gap[j]), 'month')} dropped where one of its codes has no value while the others report."
        first_gap = periods[np.flatnonzero(incomplete[:, j])[0]]
        events.append((area, first_gap, "gap", " ".join(members[area]), outcome, text))
    summed[incomplete] = np.nan
    if check and multi.any():
        ev = _check_stitches(
            summed, active, onehot, multi, periods, areas, link_rows, code_area, members, set(codes), outcome, names, k
        )
        events.extend(ev)
    den[np.isnan(summed)] = np.nan
    cols, rows = np.nonzero(~np.isnan(summed.T))  # area-major, so the frame comes out sorted
    long = {
        "unit": np.asarray(areas, dtype=object)[cols],
        "period": periods[rows].to_numpy(),
        "value": summed[rows, cols],
        "denominator": den[rows, cols],
    }
    return long, events


def _check_stitches(
    summed: np.ndarray,
    active: np.ndarray,
    onehot: np.ndarray,
    multi: np.ndarray,
    periods: pd.DatetimeIndex,
    areas: pd.Index,
    link_rows: list[Link],
    code_area: dict[str, str],
    members: dict[str, tuple[str, ...]],
    reporting: set[str],
    outcome: str,
    names: dict[str, str],
    k: int,
) -> list[Event]:
    """Blank the months before a failed stitch in ``summed`` (in place); return the events."""
    st, sg = level_step_arrays(summed, k)
    prev = np.vstack([np.zeros((1, active.shape[1]), dtype=bool), active[:-1]])
    moved = ((active != prev) @ onehot) > 0
    now, before = (active @ onehot) > 0, (prev @ onehot) > 0
    check = moved & now & before & multi  # a code starts or stops while the area reports on both sides
    col = {a: j for j, a in enumerate(areas)}
    for _, new, date, _ in link_rows:  # and each succession date the area reports across
        c = col.get(code_area.get(new))
        if c is None or not multi[c]:
            continue
        i = int(np.searchsorted(periods, date))
        if 0 < i < len(periods) and now[i, c] and now[i - 1, c]:
            check[i, c] = True
    se = sg * np.sqrt(2 / k)
    with np.errstate(invalid="ignore"):
        unchecked = check & np.isnan(st)
        failed = check & (np.abs(st) > BREAK_FLOOR) & ((np.abs(st) > BREAK_Z * se) | ~(se > 0))
    events: list[Event] = []
    for j in np.flatnonzero(unchecked.any(axis=0)):
        months = periods[unchecked[:, j]]
        text = (
            f"Area {areas[j]}, {outcome}: the stitch in {', '.join(f'{m:%b %Y}' for m in months)} could not be "
            f"checked for a level shift (fewer than {k} complete months on one side)."
        )
        events.append((areas[j], months[0], "unchecked", areas[j], outcome, text))
    for j in np.flatnonzero(failed.any(axis=0)):
        area, i = areas[j], np.flatnonzero(failed[:, j])[-1]
        # Data often change hands a few months from the legal date: cut at the largest step near it.
        near = np.abs(st[max(i - k, 0) : i + k + 1, j])
        if np.isfinite(near).any():
            i = max(i - k, 0) + int(np.nanargmax(near))
        absent = [c for c in members[area] if c not in reporting]
        why = f" ({', '.join(label(c, names) for c in absent)}: no rows)" if absent else ""
        summed[:i, j] = np.nan
        text = (
            f"Area {area}, {outcome}: the summed series shifts by {100 * (np.exp(st[i, j]) - 1):+.0f}% in "
            f"{periods[i]:%b %Y} where its codes change{why}, so the stitch is not used: the series starts in "
            f"{periods[i]:%b %Y}."
        )
        events.append((area, periods[i], "not_stitched", area, outcome, text))
    return events
