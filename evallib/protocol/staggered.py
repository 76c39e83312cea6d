"""Staggered starts: a params file whose treated units started at different dates.

``intervention_start`` is either one month for every treated unit (``"2016-04"``) or a mapping of each treated
unit to its own first month (``{A01: "2019-04", A02: "2020-01"}``); with weekly data each start is the Monday of
its first ISO week (``{A01: "2019-04-01", A02: "2020-01-06"}``) and a phase-in counts weeks. The mapping is checked here, before any
kernel starts: every treated unit has one start and only treated units do, each start is a real month in
quotes, and each leaves a follow-up inside the protocol's windows. What needs the data (each start a period of
the data, a comparison for every cohort) is checked by ``evallib validate`` (``evaluation/site/staggered_site.py``).
Messages name the site, the field and the fix and quote no value from the file beyond a checked code or month.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from evallib.errors import ParamsError
from evallib.protocol.fields import CODE_PATTERN, field_error, month_field, period_field
from evallib.vocabulary import agree, plural

FIELD = "intervention_start"
_EXAMPLE = 'e.g. intervention_start: {A01: "2019-04", A02: "2020-01"}'
_WEEKLY_EXAMPLE = 'e.g. intervention_start: {A01: "2019-04-01", A02: "2020-01-06"}'


def _first(weekly: bool) -> str:
    return "ISO week's Monday" if weekly else "month"


def unit_starts_field(
    m: dict[str, Any], source: str, treated: tuple[str, ...], frequency: str = "monthly"
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The first start (``intervention_start`` as one month, or one ISO week's Monday for weekly data) and, when
    units started at different dates, each treated unit's start in the order of ``treated`` (else ``()``): months
    "YYYY-MM", or for weekly data Mondays "YYYY-MM-DD".
    """
    v = m.get(FIELD)
    weekly = frequency == "weekly"
    example = _WEEKLY_EXAMPLE if weekly else _EXAMPLE
    if weekly and not isinstance(v, (dict, list)):
        return period_field(m, source, FIELD, frequency), ()
    if isinstance(v, list):
        raise field_error(
            source,
            FIELD,
            "is a list",
            f'Give one month in quotes ("2016-04"), or a mapping of each treated unit to its first month ({_EXAMPLE}).'
            if not weekly
            else 'Give one Monday in quotes ("2019-01-07"), or a mapping of each treated unit to the Monday of its '
            f"first ISO week ({_WEEKLY_EXAMPLE}).",
        )
    if not isinstance(v, dict):
        return month_field(m, source, FIELD), ()
    if not v:
        raise field_error(
            source, FIELD, "is an empty mapping", f"Give each treated unit its first {_first(weekly)} ({example})."
        )
    starts: dict[str, str] = {}
    for i, (code, month) in enumerate(v.items()):
        if not isinstance(code, str) or not CODE_PATTERN.match(code):
            raise field_error(
                source,
                FIELD,
                f"has entry {i + 1} keyed by something other than a unit code",
                f"Write each entry as a quoted code of treated_units and its {'Monday' if weekly else 'month'}, "
                + example
                + ".",
            )
        key = code.upper()
        if key in starts:
            raise field_error(source, FIELD, f"gives {key} more than one start", "Give each unit one start.")
        name = f"{FIELD}.{key}"
        # Weekly data: each start is the Monday of an ISO week, checked as every weekly window date is.
        starts[key] = period_field({name: month}, source, name, frequency) if isinstance(month, str) else ""
        if not starts[key]:
            raise field_error(
                source,
                name,
                "is not a Monday in quotes" if weekly else "is not a month in quotes",
                ('Write it as "YYYY-MM-DD" (a Monday)' if weekly else 'Write it as "YYYY-MM"')
                + " in quotes: YAML reads an unquoted date as a date.",
            )
    extra = [c for c in starts if c not in treated]
    if extra:
        raise field_error(
            source,
            FIELD,
            f"gives a start to {', '.join(extra)}, not in treated_units",
            "Add the unit to treated_units, or remove its start.",
        )
    missing = [c for c in treated if c not in starts]
    if missing:
        raise field_error(
            source,
            FIELD,
            f"has no start for the treated {agree(len(missing), 'unit', 'units')} {', '.join(missing)}",
            f"Give every unit of treated_units its first {_first(weekly)} ({example}).",
        )
    first = min(starts.values())
    if len(set(starts.values())) == 1:
        return first, ()  # one common start, however it was written
    return first, tuple((c, starts[c]) for c in treated)


def check_staggered(
    m: dict[str, Any], source: str, unit_starts: tuple[tuple[str, str], ...], post_end: str, frequency: str = "monthly"
) -> None:
    """What a staggered protocol may not combine: secondary analyses on other units, a start that leaves a unit
    no follow-up before ``post_period_end``, or a ``post_period_start`` (a phase-in of the same months after each
    unit's own start) leaving a unit no follow-up after its phase-in.
    """
    if not unit_starts:
        return
    post_start = str(m.get("post_period_start", "") or "")
    if post_start:  # a phase-in: every unit's follow-up starts as many months after its own start
        first = min(s for _, s in unit_starts)
        if frequency == "weekly":  # the phase-in counts weeks; dates "YYYY-MM-DD" compare as text
            lag = phase_in_weeks(first, post_start)
            short = [c for c, s in unit_starts if f"{pd.Timestamp(s) + pd.Timedelta(weeks=lag):%Y-%m-%d}" > post_end]
        else:
            lag = phase_in_months(first, post_start)  # not negative: the params check puts it after the first start
            short = [c for c, s in unit_starts if _add_months(s, lag) > post_end]
        if short:
            raise field_error(
                source,
                "post_period_start",
                f"gives a phase-in of {plural(lag, 'week') if frequency == 'weekly' else f'{lag} months'} after each unit's "
                f"start, which leaves {', '.join(short)} no "
                f"follow-up before post_period_end {post_end}",
                "Shorten the phase-in (an earlier post_period_start) or end the follow-up later.",
            )
    if m.get("secondary_analyses"):
        raise field_error(
            source,
            "secondary_analyses",
            "is not supported with staggered starts (its units have no starts)",
            "Evaluate the other data source in its own params file, or give every treated unit one start.",
        )
    late = [c for c, s in unit_starts if s > post_end]
    if late:
        raise field_error(
            source,
            FIELD,
            f"starts {', '.join(late)} after post_period_end {post_end}, so no follow-up is left",
            "Check the start, or end the follow-up later.",
        )


def phase_in_months(first: str, post_start: str) -> int:
    """Months from the first start to ``post_period_start`` (``YYYY-MM``): each unit's phase-in."""
    (y0, m0), (y1, m1) = (map(int, first.split("-")[:2]), map(int, post_start.split("-")[:2]))
    return (y1 - y0) * 12 + m1 - m0


def phase_in_weeks(first: str, post_start: str) -> int:
    """Weeks from the first start to ``post_period_start`` (both Mondays, ``YYYY-MM-DD``): each unit's phase-in."""
    return int((pd.Timestamp(post_start) - pd.Timestamp(first)).days // 7)


def _add_months(month: str, n: int) -> str:
    y, m = map(int, month.split("-")[:2])
    y, m = divmod(y * 12 + m - 1 + n, 12)
    return f"{y:04d}-{m + 1:02d}"


def staggered_error(source: str, problem: str, fix: str) -> ParamsError:
    """A ParamsError about the staggered starts (for checks against the data)."""
    return field_error(source, FIELD, problem, fix)
