"""The map of a harmonised panel (which codes make up each area of one window, and why) and code resolution.

:func:`evallib.sources.areas.harmonise` builds an :class:`AreaMap`; :func:`resolve` maps codes of any era (a
site's 2020 merged CCG codes, a closed trust's code) to the areas of that window and says, in words, how each
was mapped and when an area holds codes the site does not cover (a partly treated area).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import pandas as pd

from evallib.sources.bundled import organisation_names
from evallib.vocabulary import agree

EVENT_COLUMNS = ["area", "date", "kind", "codes", "outcome", "text"]
LINK_COLUMNS = ["old_code", "new_code", "effective_date", "source"]


_UPPER = {"NHS", "CCG", "PCT", "ICB", "UK"}
_LOWER = {"and", "of", "the", "on", "in", "for"}


def _title(name: str) -> str:
    words = []
    for i, word in enumerate(name.split()):
        w = word.capitalize()
        words.append(word if word in _UPPER else (w.lower() if i and w.lower() in _LOWER else w))
    return " ".join(words)


def label(code: str, names: dict[str, str]) -> str:
    """``CODE (Name)`` for reports, or the bare code when its name is unknown."""
    name = names.get(code)
    return f"{code} ({_title(name)})" if name else code


@dataclass(frozen=True)
class AreaMap:
    """Which codes make up each area of a harmonised panel, for one window, and what was done, in words.

    Attributes
    ----------
    start, end : Timestamp
        The analysis window.
    members : dict
        Area name -> every code combined into it (including codes with no rows in the window), sorted.
    events : DataFrame
        Columns ``area``, ``date``, ``kind`` (``merge``, ``split``, ``join``, ``after_window``, ``no_rows``,
        ``gap``, ``not_stitched``, ``unchecked``), ``codes``, ``outcome`` (empty unless the event concerns one outcome),
        ``text`` (a sentence for the report).
    links : DataFrame
        The links considered (``old_code``, ``new_code``, ``effective_date``, ``source``).
    """

    start: pd.Timestamp
    end: pd.Timestamp
    members: dict[str, tuple[str, ...]]
    events: pd.DataFrame = field(repr=False)
    links: pd.DataFrame = field(repr=False)

    @property
    def areas(self) -> list[str]:
        """The area names, sorted."""
        return sorted(self.members)

    @property
    def code_to_area(self) -> dict[str, str]:
        """Each code's area (the inverse of ``members``)."""
        return {code: area for area, codes in self.members.items() for code in codes}

    def area_of(self, code: str) -> str | None:
        """The area a code belongs to in this window (None when the code is in no area)."""
        return self.code_to_area.get(code)

    def combined(self) -> dict[str, tuple[str, ...]]:
        """Only the areas made of more than one code."""
        return {a: c for a, c in self.members.items() if len(c) > 1}

    def notes(self, area: str, outcome: str | None = None) -> list[str]:
        """Every event of one area in words (those of other outcomes left out)."""
        ev = self.events[self.events["area"] == area]
        if outcome is not None:
            ev = ev[(ev["outcome"] == "") | (ev["outcome"] == outcome)]
        return list(ev["text"])


def _label(code: str, names: dict[str, str]) -> str:
    name = names.get(code)
    return f"{code} ({name.title().replace('Nhs', 'NHS').replace('Ccg', 'CCG')})" if name else code


def resolve(codes: Iterable[str], area_map: AreaMap) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Map codes of any era to the window's areas, saying how and when an area is only partly covered.

    A code in an area maps to it. A code formed after the window (a 2020 merged CCG such as 36L South West
    London) maps to the areas of its predecessors, followed back through every succession until codes that
    are in the window. A code closed before the window maps to the areas of its successors. A code is covered
    when it is given, when all its successors are covered (it was wholly absorbed into given codes) or when all
    its predecessors are covered (it is made of them); an area holding a code that is not covered is only partly
    covered (partly treated), and a note says so.

    Returns
    -------
    (areas, notes)
        The areas in order of first mention (no duplicates) and sentences for the report.
    """
    codes = list(dict.fromkeys(codes))
    code_area = area_map.code_to_area
    links = area_map.links
    names = organisation_names()
    areas: list[str] = []
    notes: list[str] = []
    covered: set[str] = set(codes)
    for code in codes:
        if code in code_area:
            area = code_area[code]
            areas.append(area)
            if area != code:
                notes.append(f"{label(code, names)} is counted in area {area} ({' + '.join(area_map.members[area])}).")
            continue
        back = _walk(code, links, code_area, backward=True, after=area_map.end)
        if back:
            found = sorted({code_area[c] for c in back[0]})
            areas.extend(found)
            notes.append(
                f"{label(code, names)} was formed after the window; it is represented by its predecessors' "
                f"{agree(len(found), 'area', 'areas')} {', '.join(found)}."
            )
            continue
        fwd = _walk(code, links, code_area, backward=False, after=area_map.start)
        if fwd:
            found = sorted({code_area[c] for c in fwd[0]})
            areas.extend(found)
            notes.append(
                f"{label(code, names)} closed before the window; its successor {agree(len(found), 'area', 'areas')}: {', '.join(found)}."
            )
            continue
        notes.append(
            f"{label(code, names)} has no data in the window and no predecessor or successor that has: left out."
        )
    areas = list(dict.fromkeys(areas))
    covered = _covered(covered, links)
    for area in areas:
        uncovered = [c for c in area_map.members[area] if c not in covered]
        if uncovered:
            notes.append(
                f"Area {area} is only partly covered by the given codes: it also holds {', '.join(uncovered)} "
                "(codes not given, or only partly made of given codes)."
            )
    return tuple(areas), tuple(notes)


def _walk(
    code: str, links: pd.DataFrame, code_area: dict[str, str], *, backward: bool, after: pd.Timestamp
) -> tuple[set[str], set[str]] | None:
    """Follow links from ``code`` until codes in the map: predecessors via links effective after ``after``
    (backward) or successors via links effective on or before ``after`` (forward). Returns (found, visited).
    """
    frm, to = ("new_code", "old_code") if backward else ("old_code", "new_code")
    usable = links[links["effective_date"] > after] if backward else links[links["effective_date"] <= after]
    found: set[str] = set()
    seen = {code}
    todo = [code]
    while todo:
        c = todo.pop()
        for nxt in usable.loc[usable[frm] == c, to]:
            if nxt in seen:
                continue
            seen.add(nxt)
            if nxt in code_area:
                found.add(nxt)
            else:
                todo.append(nxt)
    return (found, seen) if found else None


def _covered(given: set[str], links: pd.DataFrame) -> set[str]:
    """Codes whose whole population is in the given codes: the given codes, codes all of whose successors
    are covered (wholly absorbed), and codes all of whose predecessors are covered (made of them).
    """
    succ: dict[str, set[str]] = {}
    pred: dict[str, set[str]] = {}
    for old, new in zip(links["old_code"], links["new_code"], strict=True):  # a plain loop: groupby(set) is 50x slower
        if pd.isna(old) or pd.isna(new):  # a link missing one side says nothing (as groupby dropped it)
            continue
        succ.setdefault(old, set()).add(new)
        pred.setdefault(new, set()).add(old)
    covered = set(given)
    grew = True
    while grew:
        grew = False
        for code in (set(succ) | set(pred)) - covered:
            if (code in succ and succ[code] <= covered) or (code in pred and pred[code] <= covered):
                covered.add(code)
                grew = True
    return covered
