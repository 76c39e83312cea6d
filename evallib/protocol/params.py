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
from evallib.protocol.fields import (
    AnalysisSpec,
    codes_field,
    data_source_field,
    field_error,
    int_field,
    period_field,
    secondary_analyses_field,
    text_field,
)
from evallib.protocol.safe_yaml import read_params_file
from evallib.protocol.staggered import check_staggered, unit_starts_field
from evallib.protocol.windows import Windows
from evallib.sources.files import FileSource
from evallib.vocabulary import agree, period_word, plural

SITE_TYPES: tuple[Literal["vanguard", "ICS", "other"], ...] = ("vanguard", "ICS", "other")
CARE_MODELS = ("PACS", "MCP", "EHCH", "UEC", "ACC", "ICS", "other")
CONFIDENCE: tuple[Literal["high", "medium", "low"], ...] = ("high", "medium", "low")
DIRECTIONS: tuple[Literal["decrease", "increase"], ...] = ("decrease", "increase")
POOL_RULES = ("exclude_other_vanguards", "exclude_ics_designated_before_end", "all_eligible")
#: The headline estimators a protocol may lead with (evallib.evaluation.site.estimators fits them).
PRIMARY_ESTIMATORS = (
    "did",
    "did_studentized",
    "rate_ratio",
    "controlled_its",
    "synthetic_control",
    "synthetic_did",
)
#: Whole-number fields: (default, lowest, highest). Validation and the JSON Schema (``protocol/schema.py``) read these.
INT_FIELDS: dict[str, tuple[int, int, int]] = {
    "min_pre_periods": (12, 3, 600),
    "min_post_periods": (6, 1, 600),
    "n_placebo_draws": (999, 19, bounds.MAX_PLACEBO_DRAWS),
    "seed": (2015, 0, 2**32 - 1),
}
#: The longest site name (one line).
MAX_SITE_NAME = 200
COVID_START = pd.Timestamp("2020-03-01")
SITE_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")


_NOT_PARAMETERS = ("source_file", "departures", "unit_starts")


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
    #: The comparison units chosen at design time, before results (``evallib design``): the primary data source's
    #: analyses compare with these only, among the units the rules above admit. Empty: the rules' whole pool.
    design_pool: tuple[str, ...] = ()
    type1_comparators_only: bool = True
    min_pre_periods: int = 12
    min_post_periods: int = 6
    n_placebo_draws: int = 999
    seed: int = 2015
    notes: str = ""
    secondary_analyses: tuple[AnalysisSpec, ...] = ()
    not_evaluable_reason: str = ""
    primary_estimator: str = "did"
    #: Each treated unit's own start ("code", "YYYY-MM") when they started at different dates (the params file's
    #: ``intervention_start`` mapping); ``intervention_start`` is then the first of them. Empty for one start.
    unit_starts: tuple[tuple[str, str], ...] = ()
    source_file: str = field(default="", compare=False)
    #: Fields set differently from the site's params file (exploration in a notebook): "field: file -> used".
    departures: tuple[str, ...] = field(default=(), compare=False)

    # ---- derived, for the analysis ------------------------------------------------
    @property
    def start(self) -> pd.Timestamp:
        """The intervention start as a timestamp."""
        return pd.Timestamp(self.intervention_start)

    @property
    def staggered(self) -> bool:
        """Whether the treated units started at different dates (``unit_starts``)."""
        return bool(self.unit_starts)

    @property
    def windows(self) -> Windows:
        """The pre-period and the follow-up (which starts at ``post_period_start``, else ``intervention_start``)."""
        return Windows(
            pre_start=pd.Timestamp(self.pre_period_start),
            pre_end=pd.Timestamp(self.pre_period_end),
            post_start=pd.Timestamp(self.post_period_start or self.intervention_start),
            post_end=pd.Timestamp(self.post_period_end),
        )

    @property
    def outcomes(self) -> tuple[str, ...]:
        """Outcomes of the protocol's own ``data_source`` (primary first)."""
        return (self.primary_outcome, *[o for o in self.secondary_outcomes if o != self.primary_outcome])

    @property
    def analyses(self) -> tuple[AnalysisSpec, ...]:
        """Every outcome to analyse, primary first: the data source's outcomes, then the secondary analyses."""
        own = tuple(AnalysisSpec(o, self.data_source, self.treated_units, i == 0) for i, o in enumerate(self.outcomes))
        return own + self.secondary_analyses

    def to_mapping(self) -> dict[str, Any]:
        """Plain values as in a params file (lists, dicts, strings); staggered starts as the file's mapping."""
        out = {f.name: _plain(getattr(self, f.name)) for f in fields(self) if f.name not in _NOT_PARAMETERS}
        if self.unit_starts:
            out["intervention_start"] = dict(self.unit_starts)
        return out

    def digest(self) -> str:
        """SHA-256 of the protocol's content (for provenance and reruns)."""
        return hashlib.sha256(json.dumps(self.to_mapping(), sort_keys=True).encode()).hexdigest()

    @classmethod
    def from_mapping(cls, mapping: dict[str, Any], source: str = "<parameters>") -> SiteProtocol:
        """Validate plain values (as read from YAML or injected by Papermill)."""
        return _validate(mapping, source)


def _plain(v: Any) -> Any:
    if isinstance(v, FileSource):
        return {k: (list(x) if isinstance(x, tuple) else x) for k, x in asdict(v).items() if x not in (None, ())}
    if isinstance(v, AnalysisSpec):
        return {"outcome": v.outcome, "data_source": _plain(v.data_source), "treated_units": list(v.treated_units)}
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


PARAMETER_NAMES: tuple[str, ...] = tuple(f.name for f in fields(SiteProtocol) if f.name not in _NOT_PARAMETERS)
REQUIRED_FIELDS = tuple(f.name for f in fields(SiteProtocol) if f.default is MISSING and f.default_factory is MISSING)
NOTEBOOK_ONLY_FIELDS = ("output_dir",)


def _validate(m: Any, source: str) -> SiteProtocol:
    if not isinstance(m, dict):
        raise ParamsError(f"{source}: a params file must be a YAML mapping of field: value, got {type(m).__name__}")
    unknown = sorted(set(m) - set(PARAMETER_NAMES) - set(NOTEBOOK_ONLY_FIELDS))
    if unknown:
        raise field_error(
            source,
            unknown[0],
            "is not a known field (misspelt?)",
            f"Allowed fields: {', '.join(PARAMETER_NAMES)}.",
        )
    missing = [n for n in REQUIRED_FIELDS if n not in m]
    if missing:
        raise field_error(source, missing[0], "is missing", f"Required fields: {', '.join(REQUIRED_FIELDS)}.")
    site_id = text_field(m, source, "site_id")
    if not SITE_ID_PATTERN.match(site_id):
        raise field_error(
            source, "site_id", f"is {site_id!r}", "Use letters, digits, '-' or '_' (it names the output folder)."
        )
    if bounds.is_reserved(site_id):
        raise field_error(
            source, "site_id", f"is {site_id!r}, a name the published site keeps for itself", "Choose another id."
        )
    source = f"{source} (site {site_id})"
    name = text_field(m, source, "site_name")
    if not name.strip() or "\n" in name or len(name) > MAX_SITE_NAME:
        raise field_error(
            source, "site_name", f"must be one line of 1-{MAX_SITE_NAME} characters", "Shorten or fill in the name."
        )
    if bounds.name_problem(name):
        raise field_error(source, "site_name", bounds.name_problem(name) or "", "Remove it.")
    secondary = m.get("secondary_outcomes", [])
    if not isinstance(secondary, list) or not all(isinstance(s, str) for s in secondary):
        raise field_error(source, "secondary_outcomes", f"is {secondary!r}", "List outcome names in quotes, or [].")
    if len(secondary) > bounds.MAX_OUTCOMES:
        raise field_error(source, "secondary_outcomes", "is too long", f"List at most {bounds.MAX_OUTCOMES} outcomes.")
    for outcome in secondary:
        bounds.check_name(outcome, source, "secondary_outcomes")
    treated = codes_field(m, source, "treated_units", required=True)
    data_source = data_source_field(m, source)
    freq = data_source.frequency if isinstance(data_source, FileSource) else "monthly"
    first_start, unit_starts = unit_starts_field(m, source, treated, frequency=freq)
    flag = m.get("type1_comparators_only", True)
    if not isinstance(flag, bool):
        raise field_error(source, "type1_comparators_only", f"is {flag!r}", "Use true or false.")
    protocol = SiteProtocol(
        site_id=site_id,
        site_name=name,
        site_type=text_field(m, source, "site_type", allowed=SITE_TYPES),
        care_model=text_field(m, source, "care_model", allowed=CARE_MODELS),
        membership_confidence=text_field(m, source, "membership_confidence", allowed=CONFIDENCE),
        treated_units=treated,
        intervention_start=first_start,
        primary_outcome=bounds.check_name(text_field(m, source, "primary_outcome"), source, "primary_outcome"),
        expected_direction=text_field(m, source, "expected_direction", allowed=DIRECTIONS),
        pre_period_start=period_field(m, source, "pre_period_start", freq),
        pre_period_end=period_field(m, source, "pre_period_end", freq),
        post_period_end=period_field(m, source, "post_period_end", freq),
        data_source=data_source,
        announced=text_field(m, source, "announced", default=""),
        secondary_outcomes=tuple(secondary),
        post_period_start=period_field(m, source, "post_period_start", freq, default=""),
        comparison_pool=text_field(m, source, "comparison_pool", allowed=POOL_RULES, default="all_eligible"),
        comparison_include=codes_field(m, source, "comparison_include", required=False),
        comparison_exclude=codes_field(m, source, "comparison_exclude", required=False),
        design_pool=codes_field(m, source, "design_pool", required=False),
        type1_comparators_only=flag,
        min_pre_periods=int_field(m, source, "min_pre_periods", *INT_FIELDS["min_pre_periods"]),
        min_post_periods=int_field(m, source, "min_post_periods", *INT_FIELDS["min_post_periods"]),
        n_placebo_draws=int_field(m, source, "n_placebo_draws", *INT_FIELDS["n_placebo_draws"]),
        seed=int_field(m, source, "seed", *INT_FIELDS["seed"]),
        notes=text_field(m, source, "notes", default="", max_len=bounds.MAX_NOTES, line_breaks=True),
        secondary_analyses=secondary_analyses_field(m, source),
        not_evaluable_reason=text_field(m, source, "not_evaluable_reason", default="", max_len=bounds.MAX_NOTES),
        primary_estimator=text_field(m, source, "primary_estimator", allowed=PRIMARY_ESTIMATORS, default="did"),
        unit_starts=unit_starts,
        source_file=source,
    )
    clash = bounds.overlap(
        {k: getattr(protocol, k) for k in ("treated_units", "comparison_include", "comparison_exclude")}
    ) or _design_pool_clash(protocol)
    if clash:
        raise field_error(source, *clash)
    names = [a.outcome for a in protocol.analyses]
    if len(set(names)) != len(names):
        twice = sorted({n for n in names if names.count(n) > 1})
        raise field_error(
            source, "secondary_analyses", f"repeats the outcome {', '.join(twice)}", "Analyse each outcome once."
        )
    w = protocol.windows
    if not w.pre_start < w.pre_end < protocol.start:
        raise field_error(
            source,
            "pre_period_end",
            f"gives a pre-period {protocol.pre_period_start} to {protocol.pre_period_end} that does not end "
            f"before intervention_start {protocol.intervention_start}",
            "The pre-period must start before it ends and end before the intervention starts.",
        )
    # Weekly windows count weeks here; other frequencies keep counting months (the data's own periods are
    # counted when the data are read).
    n_pre, pre_word = (w.pre_periods(freq), period_word(freq)) if freq == "weekly" else (w.pre_months, "month")
    if n_pre < protocol.min_pre_periods:
        raise field_error(
            source,
            "pre_period_start",
            f"gives a pre-period of {plural(n_pre, pre_word)}, fewer than min_pre_periods ({protocol.min_pre_periods})",
            "Start the pre-period earlier or lower min_pre_periods (and say why in notes).",
        )
    if not protocol.start <= w.post_start <= w.post_end:
        raise field_error(
            source,
            "post_period_end",
            f"gives a post-period {protocol.post_period_start or protocol.intervention_start} to {protocol.post_period_end}",
            "The post-period must start at or after intervention_start and end after it starts.",
        )
    check_staggered(m, source, unit_starts, protocol.post_period_end, freq)
    return protocol


def _design_pool_clash(protocol: SiteProtocol) -> tuple[str, str, str] | None:
    """(field, problem, fix) when the design-time pool names a treated unit or an excluded comparator."""
    for other, fix in (
        ("treated_units", "A site's own unit cannot be its comparator."),
        ("comparison_exclude", "Leave the excluded codes out of design_pool."),
    ):
        both = sorted(set(protocol.design_pool) & set(getattr(protocol, other)))
        if both:
            return "design_pool", f"repeats {', '.join(both)} from {other}", fix
    return None


#: Unknown ``design_pool`` codes a message names before it counts the rest.
SHOWN_CODES = 5


def design_pool_problem(protocol: SiteProtocol, known: set[str] | frozenset[str]) -> str:
    """Why ``design_pool`` cannot be used as written ('' when it can): codes that ``known`` (the data's units, and
    for a bundled source the codes successions link to them; compared ignoring case) lacks.

    The pool is chosen among the data's units at design time and can only narrow the comparison pool, so a code the
    data do not hold would be dropped without a word (a typing error, or a design run on other data). Checked with
    the data before any notebook runs (the pre-run check); the message names the site, the field, how many codes
    and the first :data:`SHOWN_CODES` of them (codes, not data), and the fix.
    """
    upper = {c.upper() for c in known}
    unknown = [c for c in protocol.design_pool if c.upper() not in upper]
    if not unknown:
        return ""
    shown = ", ".join(unknown[:SHOWN_CODES]) + (
        f" and {len(unknown) - SHOWN_CODES:,} more" if len(unknown) > SHOWN_CODES else ""
    )
    n = len(unknown)
    return (
        f"field 'design_pool' (site {protocol.site_id}) has {plural(n, 'code')} of {len(protocol.design_pool):,} "
        f"that {agree(n, 'is', 'are')} not a unit of the data ({shown}), so the analysis would drop "
        f"{agree(n, 'it', 'them')} without a word. Re-run `evallib design` for the site on this data (its pool is "
        "chosen among the data's units), correct the codes, or remove design_pool to use the protocol's whole pool."
    )


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
            f"no params file for {agree(len(unknown), 'site', 'sites')} {', '.join(unknown)} under {root.name}/; "
            "run `evallib make-params` or check the id (e.g. V01, I11)"
        )
    return [by_id[s.lower()] for s in site_ids]
