"""Validators for the fields of a params file, and the analyses a protocol may add from other data sources.

Each validator reads one field from a mapping (as YAML or Papermill gives it), checks it and
raises :class:`~evallib.errors.ParamsError` naming the file, the field, the problem and the fix,
quoting values only clipped (:func:`~evallib.protocol.safe_yaml.clip`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, fields
from typing import Any, Literal, TypeVar, overload

import pandas as pd

from evallib.errors import ParamsError
from evallib.protocol import bounds
from evallib.protocol.safe_yaml import clip
from evallib.sources.bundled import BUNDLED
from evallib.sources.files import FileSource
from evallib.sources.panel import FREQUENCIES
from evallib.sources.text import TEXT_FIX, text_problem

#: What a data_source's outcome is, given its denominator (see FileSource.kind).
MEASURES: tuple[Literal["count", "rate", "proportion"], ...] = ("count", "rate", "proportion")
LAYOUTS: tuple[Literal["long", "wide"], ...] = ("long", "wide")
#: A text field's allowed values (a tuple of literals): the field is typed as one of them.
_Choice = TypeVar("_Choice", bound=str)
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
CODE_PATTERN = re.compile(r"^[A-Za-z0-9]{2,10}$")


@dataclass(frozen=True)
class AnalysisSpec:
    """One outcome of a site's analysis: the data source it comes from and which of that source's units are
    the site (trust codes for trust-level data, CCG codes for commissioner data, the evaluator's own codes).
    """

    outcome: str
    data_source: str | FileSource
    treated_units: tuple[str, ...]
    primary: bool = False


def field_error(source: str, fld: str, problem: str, fix: str) -> ParamsError:
    """A ParamsError naming the file and the field, with the problem (values clipped) and the fix."""
    # ``problem`` quotes values from the file: never more than a line of them.
    return ParamsError(f"{source}: field '{clip(fld, 60)}' {clip(problem, 200)}. {fix}")


@overload
def text_field(
    m: dict[str, Any],
    source: str,
    name: str,
    *,
    allowed: tuple[_Choice, ...],
    default: str | None = None,
    max_len: int = bounds.MAX_TEXT,
    line_breaks: bool = False,
) -> _Choice: ...
@overload
def text_field(
    m: dict[str, Any],
    source: str,
    name: str,
    *,
    allowed: None = None,
    default: str | None = None,
    max_len: int = bounds.MAX_TEXT,
    line_breaks: bool = False,
) -> str: ...
def text_field(
    m: dict[str, Any],
    source: str,
    name: str,
    *,
    allowed: tuple[str, ...] | None = None,
    default: str | None = None,
    max_len: int = bounds.MAX_TEXT,
    line_breaks: bool = False,
) -> str:
    """Field ``name`` of ``m`` as text: present (or ``default``), a string, one of ``allowed``, at most
    ``max_len`` characters, and passing the one published-text check (``line_breaks`` for free text).
    """
    v = m.get(name, default)
    if v is None:
        raise field_error(source, name, "is missing", "Add it to the params file.")
    if isinstance(v, dict | list):  # quoting would not help: the field takes one value
        kind = "mapping" if isinstance(v, dict) else "list"
        raise field_error(source, name, f"is a {kind}", "Give one value in quotes.")
    if not isinstance(v, str):
        hint = " YAML reads unquoted dates as dates and codes such as 00123 as (octal) numbers: quote the value."
        raise field_error(source, name, f"must be text, got {type(v).__name__} {v!r}", "Put it in quotes." + hint)
    if allowed is not None and v not in allowed:
        raise field_error(source, name, f"is {v!r}", f"Allowed values: {', '.join(allowed)}.")
    if len(v) > max_len:
        raise field_error(source, name, f"is {len(v):,} characters long", f"Keep it to {max_len:,} characters.")
    problem = text_problem(v, line_breaks=line_breaks)
    if problem:
        raise field_error(source, name, problem, TEXT_FIX)
    return v


def month_field(m: dict[str, Any], source: str, name: str, default: str | None = None) -> str:
    """A month written "YYYY-MM" (``default`` when absent; empty only when the default is)."""
    v = text_field(m, source, name, default=default)
    if v == "" and default == "":
        return v
    if not _MONTH.match(v):
        raise field_error(source, name, f"is {v!r}", 'Write a month as "YYYY-MM" in quotes, e.g. "2015-04".')
    try:
        pd.Timestamp(v)
    except ValueError:
        raise field_error(source, name, f"is {v!r}, not a real month", 'Write a month as "YYYY-MM".') from None
    if not bounds.MONTH_YEARS[0] <= int(v[:4]) <= bounds.MONTH_YEARS[1]:
        raise field_error(source, name, f"is {v!r}", "Use a year from {} to {}.".format(*bounds.MONTH_YEARS))
    return v


def period_field(
    m: dict[str, Any], source: str, name: str, frequency: str = "monthly", default: str | None = None
) -> str:
    """A window date at the data's frequency: a month "YYYY-MM", or for weekly data the Monday that starts an ISO
    week, "YYYY-MM-DD" (``default`` when absent; empty only when the default is).
    """
    if frequency != "weekly":
        return month_field(m, source, name, default)
    v = text_field(m, source, name, default=default)
    if v == "" and default == "":
        return v
    fix = 'Weekly data: write the Monday that starts the ISO week as "YYYY-MM-DD" in quotes, e.g. "2019-01-07".'
    if not _DAY.match(v):
        raise field_error(source, name, f"is {v!r}", fix)
    try:
        ts = pd.Timestamp(v)
    except ValueError:
        raise field_error(source, name, f"is {v!r}, not a real date", fix) from None
    if ts.day_of_week != 0:
        monday = ts - pd.Timedelta(days=ts.day_of_week)
        raise field_error(source, name, f"is {v!r}, a {ts:%A}", f'{fix} That week\'s Monday is "{monday:%Y-%m-%d}".')
    if not bounds.MONTH_YEARS[0] <= ts.year <= bounds.MONTH_YEARS[1]:
        raise field_error(source, name, f"is {v!r}", "Use a year from {} to {}.".format(*bounds.MONTH_YEARS))
    return v


def codes_field(m: dict[str, Any], source: str, name: str, *, required: bool) -> tuple[str, ...]:
    """A list of organisation codes (one code may be written alone), each checked; ``required`` when it must be present."""
    # An empty treated_units list is allowed: the site is then reported as not evaluable.
    v = m.get(name, [] if not required else None)
    if v is None:
        raise field_error(source, name, "is missing", 'List the organisation codes, e.g. ["RBL"].')
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list):
        raise field_error(source, name, f"must be a list of codes, got {v!r}", 'Write e.g. ["RBL", "RXA"].')
    if len(v) > bounds.MAX_CODES:
        raise field_error(source, name, f"lists {len(v):,} codes", f"List at most {bounds.MAX_CODES:,}.")
    for i, c in enumerate(v):
        if not isinstance(c, str):
            raise field_error(
                source,
                f"{name}[{i}]",
                f"is the number {c!r}, not a code",
                "Quote every code: YAML reads 00123 as octal 83 and 007 as 7.",
            )
        if not CODE_PATTERN.match(c):
            raise field_error(
                source, f"{name}[{i}]", f"is {c!r}", "Organisation codes are 2-10 letters and digits (ODS codes)."
            )
    codes, repeated = bounds.upper_codes(v)
    if repeated:
        raise field_error(
            source, name, f"lists {', '.join(repeated)} more than once", "List each code once (case is ignored)."
        )
    return codes


def int_field(m: dict[str, Any], source: str, name: str, default: int, lo: int, hi: int) -> int:
    """A whole number from ``lo`` to ``hi`` (``default`` when absent); a ParamsError naming the field otherwise."""
    v = m.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise field_error(source, name, f"is {v!r}", f"Use a whole number from {lo} to {hi}.")
    return v


def data_source_field(m: dict[str, Any], source: str, name: str = "data_source") -> str | FileSource:
    """A data source: a bundled dataset's name or the mapping of an evaluator's own file (as a FileSource)."""
    v = m.get(name)
    if isinstance(v, str):
        if v not in BUNDLED:
            raise field_error(
                source,
                name,
                f"names {v!r}, which is not a bundled dataset",
                f"Use one of {', '.join(BUNDLED)}, or a mapping with path, unit, period and outcomes for your own file.",
            )
        return v
    if not isinstance(v, dict):
        raise field_error(
            source, name, f"is {v!r}", f"Name a bundled dataset ({', '.join(BUNDLED)}) or give a mapping."
        )
    allowed = {f.name for f in fields(FileSource)}
    unknown = sorted(set(v) - allowed)
    if unknown:
        raise field_error(
            source, f"{name}.{unknown[0]}", "is not a known key", f"Allowed keys: {', '.join(sorted(allowed))}."
        )
    sub = f"{source} {name}"
    for key in ("path", "unit", "period"):
        text_field(v, sub, key)
    layout = text_field(v, sub, "layout", allowed=LAYOUTS, default="wide")
    freq = text_field(v, sub, "frequency", allowed=FREQUENCIES, default="monthly")
    outcomes = v.get("outcomes", [])
    if not isinstance(outcomes, list) or not all(isinstance(o, str) for o in outcomes):
        raise field_error(source, f"{name}.outcomes", f"is {outcomes!r}", "List the outcome column names in quotes.")
    if len(outcomes) > bounds.MAX_OUTCOMES:
        raise field_error(source, f"{name}.outcomes", "is too long", f"List at most {bounds.MAX_OUTCOMES} outcomes.")
    for o in outcomes:
        bounds.check_name(o, source, f"{name}.outcomes")
    if layout == "wide" and not outcomes:
        raise field_error(
            source, f"{name}.outcomes", "is missing", "A wide file needs the list of its outcome columns."
        )
    denominator = v.get("denominator")
    if denominator is not None and not isinstance(denominator, str):
        raise field_error(source, f"{name}.denominator", f"is {denominator!r}", "Give the column name in quotes.")
    if denominator is not None:
        text_field(v, sub, "denominator")
    measure = v.get("measure", "count" if denominator is None else None)
    if measure is not None:
        measure = text_field(v, sub, "measure", allowed=MEASURES, default=measure)
    if denominator is not None and measure not in ("rate", "proportion"):
        raise field_error(
            source,
            f"{name}.measure",
            "is missing: a denominator makes the outcome a rate or a proportion",
            'Add measure: "rate" (events per head or per 1,000 people: effects in percent, with per: 1000) or '
            'measure: "proportion" (a share of the denominator, such as four-hour performance: effects in '
            "percentage points).",
        )
    if denominator is None and measure != "count":
        raise field_error(
            source, f"{name}.measure", f"is {measure!r} without a denominator", "Name the denominator column too."
        )
    per = v.get("per", 1)
    if (
        isinstance(per, bool)
        or not isinstance(per, int)
        or not 1 <= per <= 1_000_000
        or (per != 1 and measure != "rate")
    ):
        raise field_error(
            source, f"{name}.per", f"is {per!r}", "For a rate, give a whole number from 1 to 1000000 (e.g. 1000)."
        )
    return FileSource(
        path=v["path"],
        unit=v["unit"],
        period=v["period"],
        frequency=freq,
        layout=layout,
        outcomes=tuple(outcomes),
        outcome_column=text_field(v, sub, "outcome_column", default="outcome"),
        value_column=text_field(v, sub, "value_column", default="value"),
        denominator=denominator,
        unit_label=text_field(v, sub, "unit_label", default="area"),
        measure=measure,  # type: ignore[arg-type]
        per=per,
        attribution=text_field(v, sub, "attribution", default=""),
    )


def secondary_analyses_field(m: dict[str, Any], source: str) -> tuple[AnalysisSpec, ...]:
    """The secondary analyses: at most 10 mappings of an outcome with its own data source and treated units."""
    v = m.get("secondary_analyses", [])
    if not isinstance(v, list) or len(v) > 10:
        raise field_error(source, "secondary_analyses", "must be a list of at most 10 mappings", _ANALYSIS_HINT)
    out = []
    for i, entry in enumerate(v):
        name = f"secondary_analyses[{i}]"
        if not isinstance(entry, dict) or set(entry) - {"outcome", "data_source", "treated_units"}:
            raise field_error(
                source, name, "must be a mapping of outcome, data_source and treated_units", _ANALYSIS_HINT
            )
        sub = f"{source} {name}"
        out.append(
            AnalysisSpec(
                outcome=text_field(entry, sub, "outcome"),
                data_source=data_source_field(entry, sub),
                treated_units=codes_field(entry, sub, "treated_units", required=True),
            )
        )
    return tuple(out)


_ANALYSIS_HINT = (
    'Write e.g. [{outcome: "ae_attendances", data_source: "ae_monthly_2010_2021", treated_units: ["RTF"]}].'
)
