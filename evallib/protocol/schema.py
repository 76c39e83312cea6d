"""A JSON Schema (draft 2020-12) for params files, so that editors check a protocol as it is typed.

Built from the definitions validation itself uses, never written by hand: the field names and which
are required (:class:`~evallib.protocol.params.SiteProtocol`), the allowed values
(``SITE_TYPES``, ``CARE_MODELS``, ...), the bundled datasets, the fields of an evaluator's own
:class:`~evallib.sources.files.FileSource`, the whole-number ranges (``INT_FIELDS``) and every
limit in :mod:`evallib.protocol.bounds`. ``evallib schema`` writes it to ``params/params.schema.json``
(``evallib make-params`` too, beside the files whose first line points at it); a test checks the
committed copy is up to date and that the schema and the validator reject the same bad files.

The schema checks each field on its own; what needs several fields or the data (the windows in order,
a code both included and excluded, codes present in the data) is left to ``evallib validate``.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Any

from evallib.protocol import bounds
from evallib.protocol.fields import CODE_PATTERN, MEASURES
from evallib.protocol.params import (
    CARE_MODELS,
    CONFIDENCE,
    DIRECTIONS,
    INT_FIELDS,
    MAX_SITE_NAME,
    NOTEBOOK_ONLY_FIELDS,
    PARAMETER_NAMES,
    POOL_RULES,
    PRIMARY_ESTIMATORS,
    REQUIRED_FIELDS,
    SITE_ID_PATTERN,
    SITE_TYPES,
)
from evallib.sources.bundled import BUNDLED
from evallib.sources.files import FileSource
from evallib.sources.panel import FREQUENCIES

SCHEMA_NAME = "params.schema.json"
#: The first line of every generated params file: editors running yaml-language-server (VS Code's YAML
#: extension, JupyterLab's LSP, Neovim, Emacs) validate the file against the schema beside its folder.
MODELINE = f"# yaml-language-server: $schema=../{SCHEMA_NAME}"
DRAFT = "https://json-schema.org/draft/2020-12/schema"

#: One line of help per field, shown by editors on hover (params/README.md has the full table).
HELP: dict[str, str] = {
    "site_id": "Letters, digits, '-' or '_' (at most 40); names the output folder; must match the file name.",
    "site_name": "The site's name: one line, no control characters or '$'.",
    "site_type": "What kind of site.",
    "care_model": "The site's care model.",
    "membership_confidence": "How sure the registry is of the member units.",
    "treated_units": "ODS codes of the site's units in the data (CCGs or trusts); quote every code.",
    "intervention_start": 'First month of the intervention, "YYYY-MM" in quotes; or, when treated units started at '
    'different dates, a mapping of each treated unit to its first month ({A01: "2019-04", A02: "2020-01"}). Weekly '
    'data: the Monday of the first ISO week, "YYYY-MM-DD".',
    "primary_outcome": "An outcome of the data source: the protocol's one answer.",
    "expected_direction": "The direction the protocol hopes for.",
    "pre_period_start": 'First month of the pre-period, "YYYY-MM" (weekly data: a Monday, "YYYY-MM-DD"); the '
    "pre-period ends before the start.",
    "pre_period_end": 'Last month of the pre-period, "YYYY-MM" (weekly data: a Monday), before intervention_start.',
    "post_period_end": 'Last month of follow-up, "YYYY-MM" (weekly data: a Monday); reaching March 2020 or later is '
    '"not evaluable".',
    "data_source": "A bundled dataset, or a mapping describing your own CSV or parquet file.",
    "announced": "The announcement date as published.",
    "secondary_outcomes": "Further outcomes of the same data source.",
    "post_period_start": '"" (the default) means intervention_start; later to leave out a phase-in.',
    "comparison_pool": "Which areas may be comparators.",
    "comparison_include": "Explicit comparator codes; when given, they replace the rule.",
    "comparison_exclude": "Comparator codes to leave out.",
    "design_pool": "Comparators chosen at design time, before results (evallib design): the primary data source's "
    "analyses compare with these only, among those the rules admit; [] keeps the rules' whole pool.",
    "type1_comparators_only": "Compare only with trusts that have a major (type-1) A&E.",
    "min_pre_periods": "Fewest pre-period periods needed (months, quarters, years or weeks: the data's frequency).",
    "min_post_periods": "Fewest follow-up periods needed.",
    "n_placebo_draws": "Random placebo assignments when several units are treated.",
    "seed": "Random seed: results are reproducible.",
    "notes": "Free text: record the reason for any change to the protocol here.",
    "secondary_analyses": "Further analyses on another data source, each with its own treated units.",
    "not_evaluable_reason": "When set, the site is reported 'not evaluable' with this reason.",
    "primary_estimator": "The estimator the findings lead with (the calibration study's choice).",
    "output_dir": "Notebook only: where an exploration writes (never outputs/).",
}


def _years(lo: int, hi: int) -> str:
    """A regular expression for the years ``lo``..``hi`` (by decade, so the pattern stays short)."""
    parts = []
    for decade in range(lo // 10, hi // 10 + 1):
        first, last = max(lo, decade * 10) % 10, min(hi, decade * 10 + 9) % 10
        if (first, last) == (0, 9):
            parts.append(f"{decade}\\d")
        else:
            parts.append(f"{decade}{first}" if first == last else f"{decade}[{first}-{last}]")
    return "(?:" + "|".join(parts) + ")"


def _any_case(word: str) -> str:
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in word)


MONTH = f"^{_years(*bounds.MONTH_YEARS)}-(?:0[1-9]|1[0-2])$"
#: A weekly site's window date: the Monday of an ISO week, "YYYY-MM-DD" (that it is a Monday is checked by
#: ``evallib validate``).
DAY = f"^{_years(*bounds.MONTH_YEARS)}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\\d|3[01])$"
_WINDOW_FIELDS = ("intervention_start", "pre_period_start", "pre_period_end", "post_period_end", "post_period_start")
#: What :func:`evallib.protocol.bounds.name_problem` refuses: C0 and C1 controls, DEL, bidirectional controls, line
#: and paragraph separators (:func:`evallib.sources.text.text_problem`) and '$' (a test keeps them equal).
ONE_LINE = "^[^\\u0000-\\u001f\\u007f-\\u009f\\u061c\\u200e\\u200f\\u202a-\\u202e\\u2066-\\u2069\\u2028\\u2029$]*$"


def _text(max_len: int = bounds.MAX_TEXT, **extra: Any) -> dict[str, Any]:
    return {"type": "string", "maxLength": max_len, **extra}


def _name(max_len: int = bounds.MAX_NAME) -> dict[str, Any]:
    return _text(max_len, pattern=ONE_LINE)


def _codes() -> dict[str, Any]:
    code = {"type": "string", "pattern": CODE_PATTERN.pattern}
    return {"oneOf": [code, {"type": "array", "items": code, "maxItems": bounds.MAX_CODES, "uniqueItems": True}]}


def _own_file() -> dict[str, Any]:
    """An evaluator's own file: the fields of FileSource, with the rules between them that validation applies."""
    props: dict[str, Any] = {f.name: _text() for f in fields(FileSource)}
    props.update(
        layout={"enum": ["long", "wide"], "default": "wide"},
        frequency={"enum": list(FREQUENCIES), "default": "monthly"},
        outcomes={"type": "array", "items": _name(), "maxItems": bounds.MAX_OUTCOMES},
        denominator={"type": ["string", "null"]},
        measure={"enum": list(MEASURES)},
        per={"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1},
    )
    with_denominator = {"properties": {"denominator": {"type": "string"}}, "required": ["denominator"]}
    return {
        "type": "object",
        "description": "Your own CSV or parquet file (params/README.md: 'Your own data').",
        "properties": props,
        "required": ["path", "unit", "period"],
        "additionalProperties": False,
        "allOf": [
            {  # a wide file lists its outcome columns
                "if": {"properties": {"layout": {"const": "wide"}}},
                "then": {"required": ["outcomes"], "properties": {"outcomes": {"minItems": 1}}},
            },
            {  # a denominator makes the outcome a rate or a proportion, and says which
                "if": with_denominator,
                "then": {"required": ["measure"], "properties": {"measure": {"enum": ["rate", "proportion"]}}},
                "else": {"properties": {"measure": {"const": "count"}}},
            },
            {  # only a rate is per so many people
                "if": {"required": ["per"], "properties": {"per": {"not": {"const": 1}}}},
                "then": {"required": ["measure"], "properties": {"measure": {"const": "rate"}}},
            },
        ],
    }


def params_schema() -> dict[str, Any]:
    """The JSON Schema of a params file, from the definitions validation uses."""
    reserved = "|".join(_any_case(w) for w in sorted(bounds.RESERVED_SITE_IDS))
    props: dict[str, Any] = {
        "site_id": {"type": "string", "pattern": SITE_ID_PATTERN.pattern, "not": {"pattern": f"^(?:{reserved})$"}},
        "site_name": _text(MAX_SITE_NAME, minLength=1, allOf=[{"pattern": ONE_LINE}, {"pattern": "\\S"}]),
        "site_type": {"enum": list(SITE_TYPES)},
        "care_model": {"enum": list(CARE_MODELS)},
        "membership_confidence": {"enum": list(CONFIDENCE)},
        "treated_units": _codes(),
        "primary_outcome": _name(),
        "expected_direction": {"enum": list(DIRECTIONS)},
        "data_source": {"oneOf": [{"enum": list(BUNDLED)}, {"$ref": "#/$defs/own_file"}]},
        "announced": _text(),
        "secondary_outcomes": {"type": "array", "items": _name(), "maxItems": bounds.MAX_OUTCOMES},
        "post_period_start": {"anyOf": [{"const": ""}, {"type": "string", "pattern": f"{MONTH}|{DAY}"}], "default": ""},
        "comparison_pool": {"enum": list(POOL_RULES), "default": "all_eligible"},
        "comparison_include": _codes(),
        "comparison_exclude": _codes(),
        "design_pool": _codes(),
        "type1_comparators_only": {"type": "boolean", "default": True},
        "notes": _text(bounds.MAX_NOTES),
        "not_evaluable_reason": _text(bounds.MAX_NOTES),
        "primary_estimator": {"enum": list(PRIMARY_ESTIMATORS), "default": "did"},
        "secondary_analyses": {
            "type": "array",
            "maxItems": 10,
            "items": {
                "type": "object",
                "properties": {
                    "outcome": _text(),
                    "data_source": {"oneOf": [{"enum": list(BUNDLED)}, {"$ref": "#/$defs/own_file"}]},
                    "treated_units": _codes(),
                },
                "required": ["outcome", "data_source", "treated_units"],
                "additionalProperties": False,
            },
        },
    }
    for name in ("intervention_start", "pre_period_start", "pre_period_end", "post_period_end"):
        props[name] = {"type": "string", "pattern": f"{MONTH}|{DAY}"}
    props["intervention_start"] = {  # one start, or each treated unit's own (protocol/staggered.py)
        "oneOf": [
            props["intervention_start"],
            {
                "type": "object",
                "minProperties": 1,
                "maxProperties": bounds.MAX_CODES,
                "propertyNames": {"pattern": CODE_PATTERN.pattern},
                "additionalProperties": {"type": "string", "pattern": f"{MONTH}|{DAY}"},
            },
        ]
    }
    for name, (default, lo, hi) in INT_FIELDS.items():
        props[name] = {"type": "integer", "minimum": lo, "maximum": hi, "default": default}
    for name in NOTEBOOK_ONLY_FIELDS:
        props[name] = {}
    ordered = {n: {"description": HELP[n], **props[n]} for n in (*PARAMETER_NAMES, *NOTEBOOK_ONLY_FIELDS)}
    return {
        "$schema": DRAFT,
        "title": "evallib site params file (an analysis protocol)",
        "description": "Generated by `evallib schema` from evallib's params validation; `evallib validate` also "
        "checks what needs several fields or the data (windows in order, codes present in the data).",
        "type": "object",
        "properties": ordered,
        "required": list(REQUIRED_FIELDS),
        "additionalProperties": False,
        # Window dates are months, or Mondays "YYYY-MM-DD" when the own file is weekly (each unit's own start too).
        "if": {
            "required": ["data_source"],
            "properties": {
                "data_source": {
                    "type": "object",
                    "required": ["frequency"],
                    "properties": {"frequency": {"const": "weekly"}},
                }
            },
        },
        "then": {
            "properties": {
                n: {"anyOf": [{"const": ""}, {"type": "string", "pattern": DAY}]}
                if n == "post_period_start"
                else {"anyOf": [{"type": "string", "pattern": DAY}, _starts(DAY)]}
                if n == "intervention_start"
                else {"type": "string", "pattern": DAY}
                for n in _WINDOW_FIELDS
            }
        },
        "else": {
            "properties": {
                n: {"not": {"type": "string", "pattern": DAY}}
                | ({"additionalProperties": {"not": {"pattern": DAY}}} if n == "intervention_start" else {})
                for n in _WINDOW_FIELDS
            }
        },
        "$defs": {"own_file": _own_file()},
    }


def _starts(pattern: str) -> dict[str, Any]:
    """Each treated unit's own start, every date matching ``pattern`` (a weekly site's Mondays)."""
    return {"type": "object", "additionalProperties": {"type": "string", "pattern": pattern}}


def schema_text() -> str:
    """The schema as written to ``params/params.schema.json`` (stable: fields in the params files' order)."""
    return json.dumps(params_schema(), indent=2, ensure_ascii=True) + "\n"


def write_schema(params_dir: Path) -> Path:
    """Write ``params_dir/params.schema.json`` (to a temporary name, then renamed); return its path."""
    params_dir.mkdir(parents=True, exist_ok=True)
    path = params_dir / SCHEMA_NAME
    if path.is_file() and path.read_text(encoding="utf-8") == schema_text():
        return path
    tmp = path.with_name(f".{SCHEMA_NAME}.tmp")
    tmp.write_text(schema_text(), encoding="utf-8")
    tmp.replace(path)
    return path
