"""The site's units and its candidate comparators as areas an analysis can trust over one window.

For the bundled NHS data, before any estimate:

1. **Suspect months** (commissioner data): every run of months whose share of England is far from
   the unit's usual share (:func:`evallib.sources.quality.suspect_runs`) and overlaps the window is
   imputed from the unit's usual share; an area holding an imputed month can still be the site (the
   report lists what was imputed and how) but is never a comparator.
2. **Areas** (:func:`evallib.sources.areas.harmonise`): codes merged, split or joined inside the
   window are summed into one area, so every series covers the same population throughout; the
   protocol's codes are mapped to those areas (:func:`~evallib.sources.areas.resolve`).
3. **Level shifts** (:func:`evallib.sources.quality.structural_breaks`): a comparator whose series
   jumps in one month far beyond its own noise (a service moving between returns) is screened out
   and listed with the reason; the same jump in the site's own series is stitched, cut around or makes
   the outcome not evaluable (:mod:`evallib.evaluation.site.breaks`), before any estimate.

An evaluator's own file is used as it is (its units are the areas), with the level-shift screen; for weekly
data a comparator's step must also stand out from its own steps (the rule for a site's own series), since weekly
noise carries over for weeks and the pools' rule alone flags about 1 unbroken weekly series in 8.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import pandas as pd

from evallib.sources.areas import AreaMap, harmonise, resolve
from evallib.sources.bundled import BUNDLED, load_bundled
from evallib.sources.panel import Panel
from evallib.sources.quality import impute_suspect, structural_breaks, suspect_runs, usual_share

#: Bundled datasets whose months are checked against the unit's usual share of England.
SUSPECT_MONTH_DATASETS = frozenset(name for name, d in BUNDLED.items() if d.unit_kind == "CCG")


@dataclass(frozen=True)
class AreaData:
    """One outcome's data as areas over the analysis window, and what was done to get there.

    ``treated`` are the site's areas; ``members`` maps each area to its published codes;
    ``stitches`` describe, in words, every merger, join, split or failed stitch of the site's
    areas and how the protocol's codes were mapped; ``imputed`` the site's imputed months;
    ``rolled_up`` the comparator areas combined from several codes; ``screened`` maps each
    comparator left out by the data-quality rules to the reason; ``site_breaks`` describe level
    shifts in the site's own series.
    """

    panel: Panel = field(repr=False)
    outcome: str
    treated: tuple[str, ...]
    members: dict[str, tuple[str, ...]] = field(default_factory=dict, repr=False)
    stitches: tuple[str, ...] = ()
    imputed: tuple[str, ...] = ()
    rolled_up: tuple[str, ...] = ()
    screened: dict[str, str] = field(default_factory=dict)
    site_breaks: tuple[str, ...] = ()
    area_map: AreaMap | None = field(default=None, repr=False)

    def codes(self, area: str) -> tuple[str, ...]:
        """The codes that make up ``area`` (the area itself when it is a single code)."""
        return self.members.get(area, (area,))

    def areas_for(self, codes: tuple[str, ...] | set[str] | list[str]) -> set[str]:
        """The areas holding any of ``codes`` (codes of any era; an own file's codes are its areas)."""
        if self.area_map is None:
            return set(codes)
        key = (self.panel.source, self.area_map.start, self.area_map.end, tuple(sorted(codes)))
        return set(_resolved(*key)[0])


@lru_cache(maxsize=8)
def _shares(source: str, outcome: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.Series]:
    # The same for every window (imputing one outcome leaves the others' rows as they are): once per outcome.
    return usual_share(load_bundled(source), outcome)


@lru_cache(maxsize=8)
def _runs(source: str, outcome: str) -> pd.DataFrame:
    return suspect_runs(load_bundled(source), outcome, shares=_shares(source, outcome))


#: Windows harmonised in another process (:func:`harmonised_windows`), each taken into the caches below once.
_SHIPPED: dict[tuple[Any, ...], Any] = {}


#: Big enough for every window of a whole batch (20 windows over 95 sites): prefetched before the forks.
@lru_cache(maxsize=64)
def _harmonised(
    source: str, start: pd.Timestamp, end: pd.Timestamp
) -> tuple[Panel, AreaMap, tuple[tuple[str, str], ...]]:
    """Imputed then harmonised bundled data for one window, every outcome at once (cached: sites share windows)."""
    shipped = _SHIPPED.pop(("harmonised", source, start, end), None)
    if shipped is not None:
        return shipped
    panel = load_bundled(source)
    notes: list[tuple[str, str]] = []
    if source in SUSPECT_MONTH_DATASETS:
        for outcome in panel.outcomes:
            runs = _runs(source, outcome)
            runs = runs[(runs["first"] <= end) & (runs["last"] >= start)]
            if len(runs):
                panel, words = impute_suspect(panel, runs, outcome, shares=_shares(source, outcome))
                notes.extend((w.split(":", 1)[0], w) for w in words)  # each note starts "<unit>: "
    harmonised, area_map = harmonise(panel, start, end)
    return harmonised, area_map, tuple(notes)


@lru_cache(maxsize=512)
def _breaks(source: str, outcome: str, start: pd.Timestamp, end: pd.Timestamp) -> dict[str, str]:
    shipped = _SHIPPED.pop(("breaks", source, outcome, start, end), None)
    if shipped is not None:
        return shipped
    breaks = structural_breaks(_harmonised(source, start, end)[0], outcome, start, end)
    return dict(zip(breaks["unit"], breaks["reason"], strict=True))


@lru_cache(maxsize=256)
def _resolved(
    source: str, start: pd.Timestamp, end: pd.Timestamp, codes: tuple[str, ...]
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return resolve(codes, _harmonised(source, start, end)[1])


def area_data(
    panel: Panel, outcome: str, treated_codes: tuple[str, ...], start: pd.Timestamp, end: pd.Timestamp
) -> AreaData:
    """The outcome's areas over ``[start, end]``, the site's areas among them, and the data-quality screening.

    ``panel`` is used as it is unless it is a bundled dataset as loaded (then the cached, imputed and
    harmonised version of it is used).
    """
    bundled = panel.source in BUNDLED and panel is load_bundled(panel.source)
    if not bundled:
        # Weekly noise carries over for weeks, which the pools' rule (periods as independent) reads as shifts in about
        # 1 series in 8; weekly series must also stand out from their own steps (README: data quality, weekly).
        breaks = structural_breaks(panel, outcome, start, end, own_noise=panel.frequency == "weekly")
        reasons = dict(zip(breaks["unit"], breaks["reason"], strict=True))
        site = tuple(c for c in treated_codes)
        return AreaData(
            panel=panel,
            outcome=outcome,
            treated=site,
            screened={u: r for u, r in reasons.items() if u not in site},
            site_breaks=tuple(f"{u}: {r}" for u, r in reasons.items() if u in site),
        )
    harmonised, area_map, imputed = _harmonised(panel.source, start, end)
    break_reasons = _breaks(panel.source, outcome, start, end)
    treated, resolve_notes = _resolved(panel.source, start, end, tuple(treated_codes))
    members = area_map.members
    code_area = area_map.code_to_area
    stitches = [*resolve_notes]
    for a in treated:
        stitches.extend(area_map.notes(a, outcome))
    site_codes = {c for a in treated for c in members[a]}
    imputed_site = tuple(words for code, words in imputed if code in site_codes)
    screened: dict[str, str] = {}
    for code, words in imputed:
        area = code_area.get(code)
        if area is not None and area not in treated:
            screened[area] = "months the data cannot be trusted for in the window: " + words
    site_breaks = []
    for unit, reason in break_reasons.items():
        if unit in treated:
            site_breaks.append(f"{unit}: {reason}")
        else:
            screened.setdefault(unit, reason)
    rolled_up = tuple(
        f"{area} = {' + '.join(codes)}"
        for area, codes in sorted(area_map.combined().items())
        if area not in treated and area in set(harmonised.units)
    )
    return AreaData(
        panel=harmonised,
        outcome=outcome,
        treated=treated,
        members=dict(members),
        stitches=tuple(dict.fromkeys(stitches)),
        imputed=imputed_site,
        rolled_up=rolled_up,
        screened=screened,
        site_breaks=tuple(site_breaks),
        area_map=area_map,
    )


def prefetch(windows: list[tuple[str, pd.Timestamp, pd.Timestamp]]) -> None:
    """Load, impute and harmonise bundled data for each ``(dataset, start, end)`` into this process's cache.

    The batch's worker processes call it once before forking a process per site, so no site pays
    for loading and harmonising the data again; other names and windows are ignored.
    """
    for source, start, end in windows:
        if source not in BUNDLED:
            continue
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        _harmonised(source, start, end)
        for outcome in load_bundled(source).outcomes:
            _breaks(source, outcome, start, end)


def harmonised_windows(windows: list[tuple[str, pd.Timestamp, pd.Timestamp]]) -> list[tuple[tuple[Any, ...], Any]]:
    """What :func:`prefetch` puts in this process's cache for ``windows``, as picklable ``(key, value)`` pairs,
    for another process to take in with :func:`adopt` (the batch harmonises windows in a helper process while
    its own process warms up).
    """
    prefetch(windows)
    out: list[tuple[tuple[Any, ...], Any]] = []
    for source, start, end in windows:
        if source not in BUNDLED:
            continue
        start, end = pd.Timestamp(start), pd.Timestamp(end)
        out.append((("harmonised", source, start, end), _harmonised(source, start, end)))
        for outcome in load_bundled(source).outcomes:
            out.append((("breaks", source, outcome, start, end), _breaks(source, outcome, start, end)))
    return out


def adopt(entries: list[tuple[tuple[Any, ...], Any]]) -> None:
    """Take windows harmonised in another process (:func:`harmonised_windows`) into this process's cache, as if
    harmonised here; a window this process already holds keeps its own.
    """
    for key, value in entries:
        _SHIPPED[key] = value
        if key[0] == "harmonised":
            _harmonised(*key[1:])
        else:
            _breaks(*key[1:])
        _SHIPPED.pop(key, None)
