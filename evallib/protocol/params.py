"""Site params files: each site's analysis protocol, validated before any kernel starts.

A params file is YAML whose top-level keys are exactly the site notebook's
parameters, so the same file works with the plain Papermill CLI
(``papermill notebooks/site_evaluation.ipynb out.ipynb -f params/vanguards/V01.yaml``)
and with ``evallib run``. It is written before results are seen: the outcome,
its expected direction, the windows and the comparison-pool rule are fixed there.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import MISSING, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any, Literal

import pandas as pd

from evallib.errors import ParamsError
from evallib.protocol import bounds
from evallib.protocol.safe_yaml import clip, read_params_file
from evallib.sources.bundled import BUNDLED
from evallib.sources.files import FileSource
from evallib.sources.panel import FREQUENCIES

SITE_TYPES = ("vanguard", "ICS", "other")
CARE_MODELS = ("PACS", "MCP", "EHCH", "UEC", "ACC", "ICS", "other")
CONFIDENCE = ("high", "medium", "low")
DIRECTIONS = ("decrease", "increase")
POOL_RULES = ("exclude_other_vanguards", "exclude_ics_designated_before_end", "all_eligible")
COVID_START = pd.Timestamp("2020-03-01")
_SITE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
_MONTH = re.compile(r"^\d{4}-\d{2}$")
_CODE = re.compile(r"^[A-Za-z0-9]{2,10}$")


_NOT_PARAMETERS = ("source_file", "departures")


@dataclass(frozen=True)
class SiteProtocol:
    """A validated site protocol (one params file).

    Field names are the notebook's parameter names; see ``params/README.md`` for
    what each means. Build one with :func:`load_params` or :meth:`from_mapping`.
    """

    site_id: str
    site_name: str
    site_type: Literal["vanguard", "ICS", "other"]
    care_model: str
    membership_confidence: Literal["high", "medium", "low"]
    treated_units: tuple[str, ...]
    intervention_start: str
    primary_outcome: str
    expected_direction: Literal["decrease", "increase"]
    pre_period_start: str
    pre_period_end: str
    post_period_end: str
    data_source: str | FileSource
    announced: str = ""
    secondary_outcomes: tuple[str, ...] = ()
    post_period_start: str = ""
    comparison_pool: str = "all_eligible"
    comparison_include: tuple[str, ...] = ()
    comparison_exclude: tuple[str, ...] = ()
    type1_comparators_only: bool = True
    min_pre_periods: int = 12
    min_post_periods: int = 6
    n_placebo_draws: int = 999
    seed: int = 2015
    notes: str = ""
    source_file: str = field(default="", compare=False)
    #: Fields set differently from the site's params file (exploration in a notebook): "field: file -> used".
    departures: tuple[str, ...] = field(default=(), compare=False)

    # ---- derived, for the analysis ------------------------------------------------
    @property
    def start(self) -> pd.Timestamp:
        return pd.Timestamp(self.intervention_start)

    @property
    def windows(self) -> dict[str, pd.Timestamp]:
        return {
            "pre_start": pd.Timestamp(self.pre_period_start),
            "pre_end": pd.Timestamp(self.pre_period_end),
            "post_start": pd.Timestamp(self.post_period_start or self.intervention_start),
            "post_end": pd.Timestamp(self.post_period_end),
        }

    @property
    def outcomes(self) -> tuple[str, ...]:
        return (self.primary_outcome, *[o for o in self.secondary_outcomes if o != self.primary_outcome])

    def to_mapping(self) -> dict[str, Any]:
        """Plain values as in a params file (lists, dicts, strings)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            if f.name in _NOT_PARAMETERS:
                continue
            v = getattr(self, f.name)
            if isinstance(v, FileSource):
                v = {k: (list(x) if isinstance(x, tuple) else x) for k, x in asdict(v).items() if x not in (None, ())}
            elif isinstance(v, tuple):
                v = list(v)
            out[f.name] = v
        return out

    def digest(self) -> str:
        """SHA-256 of the protocol's content (for provenance and reruns)."""
        return hashlib.sha256(json.dumps(self.to_mapping(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any], source: str = "<parameters>") -> SiteProtocol:
        """Validate plain values (as read from YAML or injected by Papermill)."""
        return _validate(mapping, source)


PARAMETER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SiteProtocol) if f.name not in _NOT_PARAMETERS)
_REQUIRED = tuple(f.name for f in fields(SiteProtocol) if f.default is MISSING and f.default_factory is MISSING)
_NOTEBOOK_ONLY = ("output_dir",)


def _err(source: str, fld: str, problem: str, fix: str) -> ParamsError:
    # ``problem`` quotes values from the file: never more than a line of them.
    return ParamsError(f"{source}: field '{clip(fld, 60)}' {clip(problem, 200)}. {fix}")


def _string(
    m: dict[str, Any],
    source: str,
    name: str,
    *,
    allowed: tuple[str, ...] | None = None,
    default: str | None = None,
    max_len: int = bounds.MAX_TEXT,
) -> str:
    v = m.get(name, default)
    if v is None:
        raise _err(source, name, "is missing", "Add it to the params file.")
    if not isinstance(v, str):
        hint = " YAML reads unquoted dates as dates and codes such as 00123 as (octal) numbers: quote the value."
        raise _err(source, name, f"must be text, got {type(v).__name__} {v!r}", "Put it in quotes." + hint)
    if allowed is not None and v not in allowed:
        raise _err(source, name, f"is {v!r}", f"Allowed values: {', '.join(allowed)}.")
    if len(v) > max_len:
        raise _err(source, name, f"is {len(v):,} characters long", f"Keep it to {max_len:,} characters.")
    return v


def _month(m: dict[str, Any], source: str, name: str, default: str | None = None) -> str:
    v = _string(m, source, name, default=default)
    if v == "" and default == "":
        return v
    if not _MONTH.match(v):
        raise _err(source, name, f"is {v!r}", 'Write a month as "YYYY-MM" in quotes, e.g. "2015-04".')
    try:
        pd.Timestamp(v)
    except ValueError:
        raise _err(source, name, f"is {v!r}, not a real month", 'Write a month as "YYYY-MM".') from None
    if not bounds.MONTH_YEARS[0] <= int(v[:4]) <= bounds.MONTH_YEARS[1]:
        raise _err(source, name, f"is {v!r}", "Use a year from {} to {}.".format(*bounds.MONTH_YEARS))
    return v


def _codes(m: dict[str, Any], source: str, name: str, *, required: bool) -> tuple[str, ...]:
    # An empty treated_units list is allowed: the site is then reported as not evaluable.
    v = m.get(name, [] if not required else None)
    if v is None:
        raise _err(source, name, "is missing", 'List the organisation codes, e.g. ["RBL"].')
    if isinstance(v, str):
        v = [v]
    if not isinstance(v, list):
        raise _err(source, name, f"must be a list of codes, got {v!r}", 'Write e.g. ["RBL", "RXA"].')
    if len(v) > bounds.MAX_CODES:
        raise _err(source, name, f"lists {len(v):,} codes", f"List at most {bounds.MAX_CODES:,}.")
    for i, c in enumerate(v):
        if not isinstance(c, str):
            raise _err(
                source,
                f"{name}[{i}]",
                f"is the number {c!r}, not a code",
                "Quote every code: YAML reads 00123 as octal 83 and 007 as 7.",
            )
        if not _CODE.match(c):
            raise _err(
                source, f"{name}[{i}]", f"is {c!r}", "Organisation codes are 2-10 letters and digits (ODS codes)."
            )
    codes, repeated = bounds.upper_codes(v)
    if repeated:
        raise _err(
            source, name, f"lists {', '.join(repeated)} more than once", "List each code once (case is ignored)."
        )
    return codes


def _int(m: dict[str, Any], source: str, name: str, default: int, lo: int, hi: int) -> int:
    v = m.get(name, default)
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _err(source, name, f"is {v!r}", f"Use a whole number from {lo} to {hi}.")
    return v


def _data_source(m: dict[str, Any], source: str) -> str | FileSource:
    v = m.get("data_source")
    if isinstance(v, str):
        if v not in BUNDLED:
            raise _err(
                source,
                "data_source",
                f"names {v!r}, which is not a bundled dataset",
                f"Use one of {', '.join(BUNDLED)}, or a mapping with path, unit, period and outcomes for your own file.",
            )
        return v
    if not isinstance(v, dict):
        raise _err(
            source, "data_source", f"is {v!r}", f"Name a bundled dataset ({', '.join(BUNDLED)}) or give a mapping."
        )
    allowed = {f.name for f in fields(FileSource)}
    unknown = sorted(set(v) - allowed)
    if unknown:
        raise _err(
            source, f"data_source.{unknown[0]}", "is not a known key", f"Allowed keys: {', '.join(sorted(allowed))}."
        )
    sub = f"{source} data_source"
    for key in ("path", "unit", "period"):
        _string(v, sub, key)
    layout = _string(v, sub, "layout", allowed=("long", "wide"), default="wide")
    freq = _string(v, sub, "frequency", allowed=FREQUENCIES, default="monthly")
    outcomes = v.get("outcomes", [])
    if not isinstance(outcomes, list) or not all(isinstance(o, str) for o in outcomes):
        raise _err(source, "data_source.outcomes", f"is {outcomes!r}", "List the outcome column names in quotes.")
    if len(outcomes) > bounds.MAX_OUTCOMES:
        raise _err(source, "data_source.outcomes", "is too long", f"List at most {bounds.MAX_OUTCOMES} outcomes.")
    for o in outcomes:
        bounds.check_name(o, source, "data_source.outcomes")
    if layout == "wide" and not outcomes:
        raise _err(source, "data_source.outcomes", "is missing", "A wide file needs the list of its outcome columns.")
    denominator = v.get("denominator")
    if denominator is not None and not isinstance(denominator, str):
        raise _err(source, "data_source.denominator", f"is {denominator!r}", "Give the column name in quotes.")
    return FileSource(
        path=v["path"],
        unit=v["unit"],
        period=v["period"],
        frequency=freq,  # type: ignore[arg-type]
        layout=layout,  # type: ignore[arg-type]
        outcomes=tuple(outcomes),
        outcome_column=_string(v, sub, "outcome_column", default="outcome"),
        value_column=_string(v, sub, "value_column", default="value"),
        denominator=denominator,
    )


def _validate(m: Any, source: str) -> SiteProtocol:
    if not isinstance(m, dict):
        raise ParamsError(f"{source}: a params file must be a YAML mapping of field: value, got {type(m).__name__}")
    unknown = sorted(set(m) - set(PARAMETER_NAMES) - set(_NOTEBOOK_ONLY))
    if unknown:
        raise _err(
            source,
            unknown[0],
            "is not a known field (misspelt?)",
            f"Allowed fields: {', '.join(PARAMETER_NAMES)}.",
        )
    missing = [n for n in _REQUIRED if n not in m]
    if missing:
        raise _err(source, missing[0], "is missing", f"Required fields: {', '.join(_REQUIRED)}.")
    site_id = _string(m, source, "site_id")
    if not _SITE_ID.match(site_id):
        raise _err(
            source, "site_id", f"is {site_id!r}", "Use letters, digits, '-' or '_' (it names the output folder)."
        )
    if bounds.is_reserved(site_id):
        raise _err(
            source, "site_id", f"is {site_id!r}, a name the published site keeps for itself", "Choose another id."
        )
    source = f"{source} (site {site_id})"
    name = _string(m, source, "site_name")
    if not name.strip() or "\n" in name or len(name) > 200:
        raise _err(source, "site_name", "must be one line of 1-200 characters", "Shorten or fill in the name.")
    if bounds.name_problem(name):
        raise _err(source, "site_name", bounds.name_problem(name) or "", "Remove it.")
    secondary = m.get("secondary_outcomes", [])
    if not isinstance(secondary, list) or not all(isinstance(s, str) for s in secondary):
        raise _err(source, "secondary_outcomes", f"is {secondary!r}", "List outcome names in quotes, or [].")
    if len(secondary) > bounds.MAX_OUTCOMES:
        raise _err(source, "secondary_outcomes", "is too long", f"List at most {bounds.MAX_OUTCOMES} outcomes.")
    for outcome in secondary:
        bounds.check_name(outcome, source, "secondary_outcomes")
    flag = m.get("type1_comparators_only", True)
    if not isinstance(flag, bool):
        raise _err(source, "type1_comparators_only", f"is {flag!r}", "Use true or false.")
    protocol = SiteProtocol(
        site_id=site_id,
        site_name=name,
        site_type=_string(m, source, "site_type", allowed=SITE_TYPES),  # type: ignore[arg-type]
        care_model=_string(m, source, "care_model", allowed=CARE_MODELS),
        membership_confidence=_string(m, source, "membership_confidence", allowed=CONFIDENCE),  # type: ignore[arg-type]
        treated_units=_codes(m, source, "treated_units", required=True),
        intervention_start=_month(m, source, "intervention_start"),
        primary_outcome=bounds.check_name(_string(m, source, "primary_outcome"), source, "primary_outcome"),
        expected_direction=_string(m, source, "expected_direction", allowed=DIRECTIONS),  # type: ignore[arg-type]
        pre_period_start=_month(m, source, "pre_period_start"),
        pre_period_end=_month(m, source, "pre_period_end"),
        post_period_end=_month(m, source, "post_period_end"),
        data_source=_data_source(m, source),
        announced=_string(m, source, "announced", default=""),
        secondary_outcomes=tuple(secondary),
        post_period_start=_month(m, source, "post_period_start", default=""),
        comparison_pool=_string(m, source, "comparison_pool", allowed=POOL_RULES, default="all_eligible"),
        comparison_include=_codes(m, source, "comparison_include", required=False),
        comparison_exclude=_codes(m, source, "comparison_exclude", required=False),
        type1_comparators_only=flag,
        min_pre_periods=_int(m, source, "min_pre_periods", 12, 3, 600),
        min_post_periods=_int(m, source, "min_post_periods", 6, 1, 600),
        n_placebo_draws=_int(m, source, "n_placebo_draws", 999, 19, bounds.MAX_PLACEBO_DRAWS),
        seed=_int(m, source, "seed", 2015, 0, 2**32 - 1),
        notes=_string(m, source, "notes", default="", max_len=bounds.MAX_NOTES),
        source_file=source,
    )
    clash = bounds.overlap(
        {k: getattr(protocol, k) for k in ("treated_units", "comparison_include", "comparison_exclude")}
    )
    if clash:
        raise _err(source, *clash)
    w = protocol.windows
    if not w["pre_start"] < w["pre_end"] < protocol.start:
        raise _err(
            source,
            "pre_period_end",
            f"gives a pre-period {protocol.pre_period_start} to {protocol.pre_period_end} that does not end "
            f"before intervention_start {protocol.intervention_start}",
            "The pre-period must start before it ends and end before the intervention starts.",
        )
    pre_months = (w["pre_end"].year - w["pre_start"].year) * 12 + w["pre_end"].month - w["pre_start"].month + 1
    if pre_months < protocol.min_pre_periods:
        raise _err(
            source,
            "pre_period_start",
            f"gives a pre-period of {pre_months} months, fewer than min_pre_periods ({protocol.min_pre_periods})",
            "Start the pre-period earlier or lower min_pre_periods (and say why in notes).",
        )
    if not protocol.start <= w["post_start"] <= w["post_end"]:
        raise _err(
            source,
            "post_period_end",
            f"gives a post-period {w['post_start']:%Y-%m} to {protocol.post_period_end}",
            "The post-period must start at or after intervention_start and end after it starts.",
        )
    return protocol


def read_yaml(path: Path) -> Any:
    """Read YAML as Papermill does (safe loader) within bounds (:mod:`.safe_yaml`), errors as ParamsError."""
    return read_params_file(path)


def load_params(path: str | Path) -> SiteProtocol:
    """Load and validate one params file.

    Raises
    ------
    ParamsError
        Naming the file, the field and the allowed values.
    """
    path = Path(path)
    return _validate(read_yaml(path), str(path))


def find_params(root: Path, site_ids: list[str] | None = None) -> list[Path]:
    """Params files under ``root`` (``params/**.yaml``), optionally only the named sites."""
    files = sorted(p for p in root.rglob("*.yaml") if p.is_file())
    if not site_ids:
        return files
    by_id = bounds.ids_of(files, root)
    unknown = [s for s in site_ids if s.lower() not in by_id]
    if unknown:
        raise ParamsError(
            f"no params file for site(s) {', '.join(unknown)} under {root.name}/; "
            "run `evallib make-params` or check the id (e.g. V01, I11)"
        )
    return [by_id[s.lower()] for s in site_ids]
