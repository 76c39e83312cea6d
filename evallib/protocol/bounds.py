"""Bounds on what a params file may hold, so that every value is safe to run, draw and publish.

Params files may come from collaborators (a pull request): each limit here keeps a
hostile or mistaken value from costing unbounded time or memory, colliding with the
published site's own files, or breaking a figure. :mod:`evallib.protocol.params`
applies them while validating.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from evallib.errors import ParamsError
from evallib.sources.text import text_problem

#: Site ids that would collide with the published site's own files and folders (compared case-insensitively:
#: "Site" and "site" are one folder on macOS and Windows), and names Windows reserves for devices.
RESERVED_SITE_IDS = frozenset(
    {"site", "programme", "index", "scratch", "con", "prn", "aux", "nul"}
    | {f"{d}{i}" for d in ("com", "lpt") for i in range(10)}
)
#: Most placebo assignments. The p-value's Monte Carlo SE at p = 0.05 is then 0.003, far below any decision's
#: margin, while the interval's test inversion costs time quadratic in draws (measured: 0.6 s per statistic at
#: 2,000 draws, 2.4 s at 4,000 on this project's 2 cores; a multi-trust site has about 15 statistics) and,
#: chunked, memory linear in draws. 10,000 draws took 6.5 GB before chunking; 100,000 asked for 293 GiB.
MAX_PLACEBO_DRAWS = 4_999
#: Longest notes, names and other text fields (characters).
MAX_NOTES = 2_000
MAX_TEXT = 255
MAX_NAME = 64
#: Most codes in one list, most outcomes.
MAX_CODES = 1_000
MAX_OUTCOMES = 20
#: Months must fall in these years (the NHS began in 1948; "0000-01" is a typing error, not a date).
MONTH_YEARS = (1948, 2100)


def is_reserved(site_id: str) -> bool:
    """Whether ``site_id`` names something the published site uses itself (ignoring case)."""
    return site_id.lower() in RESERVED_SITE_IDS


def name_problem(value: str) -> str | None:
    """Why ``value`` cannot be a name drawn in figures (control, direction-changing or line-separating
    characters: :func:`~evallib.sources.text.text_problem`; '$'), or None.
    """
    problem = text_problem(value)
    if problem:
        return problem
    if "$" in value:
        return "holds '$', which figures read as the start of mathematics"
    return None


def upper_codes(codes: Iterable[str]) -> tuple[tuple[str, ...], list[str]]:
    """ODS codes in upper case (they are case-insensitive: "rtf" is RTF), and those listed more than once."""
    out = tuple(c.upper() for c in codes)
    return out, sorted({c for c in out if out.count(c) > 1})


def overlap(lists: dict[str, tuple[str, ...]]) -> tuple[str, str, str] | None:
    """(field, problem, fix) when a code is both treated and an included comparator, or included and excluded."""
    for a, b, fix in (
        ("treated_units", "comparison_include", "A site's own trust cannot be its comparator."),
        ("comparison_include", "comparison_exclude", "Include or exclude each code, not both."),
    ):
        both = sorted(set(lists[a]) & set(lists[b]))
        if both:
            return b, f"repeats {', '.join(both)} from {a}", fix
    return None


def check_name(value: str, source: str, field: str) -> str:
    """``value`` when it can be a name drawn in figures; else :class:`ParamsError` naming the field."""
    problem = name_problem(value) or ("is too long" if len(value) > MAX_NAME else None)
    if problem:
        raise ParamsError(
            f"{source}: field '{field}' {problem}. Use one line of up to {MAX_NAME} characters without '$' "
            "or control characters."
        )
    return value


def ids_of(files: list[Path], root: Path) -> dict[str, Path]:
    """The params file of each site id (lower case); two files for one id are an error, never a silent pick."""
    by_id: dict[str, Path] = {}
    for p in files:
        other = by_id.setdefault(p.stem.lower(), p)
        if other != p:
            raise ParamsError(
                f"site {p.stem}: two params files, {other.relative_to(root)} and {p.relative_to(root)}; "
                "keep one (site ids are compared ignoring case)"
            )
    return by_id
