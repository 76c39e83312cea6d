"""The design step's choice of comparison pool, written into protocols before results are seen.

``evallib design --all --write-choices`` runs the design step for every evaluable site from data before its start
only and writes ``params/design_pools.csv`` (one row per site: the chosen pool, its units, both MDEs, the last month
of data read); ``evallib make-params --update`` then writes each choice into the site's params file as
``design_pool``, as the calibration study's choice of estimator is written. ``evallib design SITE --write`` writes
one site's choice straight into its params file (an evaluator's own site), refusing once the site has results.
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import pandas as pd

from evallib.errors import DataError, NotEvaluable, ParamsError
from evallib.evaluation.studies.design import DESIGN_ESTIMATORS, SiteDesign, design_site
from evallib.evaluation.studies.rollout_design import staggered_design
from evallib.protocol.generator import DESIGN_POOLS_FILE, design_pool_comment
from evallib.protocol.params import SiteProtocol, find_params, load_params
from evallib.protocol.safe_yaml import parse_params_text
from evallib.protocol.writing import read_file, write_atomic
from evallib.sources.panel import Panel

#: Columns of ``params/design_pools.csv`` (see :meth:`evallib.evaluation.studies.design.SiteDesign.choice`).
CHOICE_COLUMNS = [
    "site_id",
    "estimator",
    "follow_up",
    "data_end",
    "pool",
    "n_comparators",
    "mde_protocol",
    "mde_chosen",
    "alternatives",
    "units",
]


def design_for_choice(protocol: SiteProtocol, panel: Panel | None = None) -> SiteDesign:
    """The design step as the pool choice needs it: every candidate pool, the protocol's follow-up only.

    A ``design_pool`` already in the protocol is set aside, so the candidates are the rule's pools (the choice
    does not feed on itself); the estimators are those the site's answer can come from.
    A staggered site is sized with its own answer's estimator, Callaway-Sant'Anna's placebo test with every
    cohort's start moved back into the history (:func:`~evallib.evaluation.studies.rollout_design.staggered_design`).
    """
    protocol = replace(protocol, design_pool=())
    if protocol.staggered:
        return staggered_design(protocol, panel=panel)
    wanted = tuple(e for e in DESIGN_ESTIMATORS if e in (protocol.primary_estimator, "did_studentized"))
    estimators = wanted if protocol.primary_estimator in DESIGN_ESTIMATORS else DESIGN_ESTIMATORS
    return design_site(protocol, panel=panel, estimators=estimators, follow_ups=())


def _one(path: Path) -> tuple[str, dict[str, object] | None, str]:
    protocol = load_params(path)
    try:
        return protocol.site_id, design_for_choice(protocol).choice(), ""
    except (NotEvaluable, DataError) as exc:
        return protocol.site_id, None, str(exc)


def write_choices(root: Path, params_dir: Path, jobs: int | None = None) -> tuple[pd.DataFrame, list[str]]:
    """Choose every evaluable site's pool and write ``<params_dir>/design_pools.csv``; returns it and the skips."""
    folder = root / params_dir
    if not folder.is_dir():
        raise ParamsError(f"no params folder {params_dir}; run `evallib make-params` or pass --params-dir")
    paths = []
    for path in find_params(folder):
        protocol = load_params(path)
        if not protocol.not_evaluable_reason:
            paths.append(path)
    jobs = max(1, jobs or os.cpu_count() or 1)
    if jobs == 1:
        done = [_one(p) for p in paths]
    else:
        with ProcessPoolExecutor(jobs) as pool:
            done = list(pool.map(_one, paths))
    rows = [row for _, row, _ in done if row is not None]
    skipped = [f"{site}: {why}" for site, row, why in done if row is None]
    table = pd.DataFrame(rows, columns=CHOICE_COLUMNS).sort_values("site_id", ignore_index=True)
    target = folder / DESIGN_POOLS_FILE
    write_atomic(target, table.to_csv(index=False, float_format="%.4f"))  # never through a planted link
    return table, skipped


def results_seen(root: Path, site_id: str) -> Path | None:
    """The site's results file when one exists (published in ``outputs/`` or explored in ``scratch/``)."""
    for folder in ("outputs", "scratch"):
        path = root / folder / site_id / "results.json"
        if path.is_file():
            return path
    return None


def refuse_if_results(root: Path, site_id: str) -> None:
    """ParamsError when ``site_id`` has results: a pool chosen after results are seen is not a design-time choice."""
    seen = results_seen(root, site_id)
    if seen is not None:
        shown = seen.relative_to(root) if seen.is_relative_to(root) else seen.name
        raise ParamsError(
            f"site {site_id} already has results ({shown}): a comparison pool chosen after results are seen "
            "is not a design-time choice, so design_pool was not written. Pass --force to write it anyway, and "
            "record why in the params file's notes"
        )


def with_design_pool(text: str, units: list[str], comment: str) -> str:
    """A params file's text with its ``design_pool`` line (and the comment above it) set; the rest untouched.

    An existing top-level ``design_pool`` (a one-line list, or a block list under it) is replaced in place;
    otherwise the field is added at the end.
    """
    lines = text.splitlines()
    out: list[str] = []
    at = None
    skipping = False
    for line in lines:
        if skipping and (line.startswith((" ", "\t", "-")) and line.strip()):
            continue
        skipping = False
        if line.startswith("# design_pool:"):
            continue
        if line.startswith("design_pool:"):
            at, skipping = len(out), True
            continue
        out.append(line)
    new = [f"# design_pool: {comment}", f"design_pool: {json.dumps(units)}"]
    out = out[:at] + new + out[at:] if at is not None else [*out, *new]
    return "\n".join(out) + "\n"


def write_site_choice(root: Path, path: Path, result: SiteDesign, *, force: bool = False) -> str:
    """Write ``result``'s chosen pool into the params file at ``path``; returns what was written, in words.

    Raises
    ------
    ParamsError
        When the site already has results (a pool chosen after them is not a design-time choice), unless ``force``.
    """
    seen = results_seen(root, result.site_id)
    if not force:
        refuse_if_results(root, result.site_id)
    choice = {k: str(v) for k, v in result.choice().items()}
    units = choice["units"].split()
    comment = design_pool_comment(choice)
    if seen is not None:
        comment += "; written after results existed (--force)"
    text = with_design_pool(read_file(path).decode("utf-8"), units, comment)  # a linked params file is refused
    SiteProtocol.from_mapping(parse_params_text(text.encode(), str(path)), str(path))  # never write an invalid file
    write_atomic(path, text)  # a fresh temporary name, never a planted link; refuses a linked params file
    if not units:
        return f"Wrote design_pool: [] into {path.name} ({comment.split(': ', 1)[1]})"
    return f"Wrote design_pool into {path.name}: the {choice['pool'].replace('_', ' ')} pool, {len(units)} units ({comment.split(': ', 1)[1]})"


def load_site(root: Path, site: str, params_dir: Path) -> tuple[Path, SiteProtocol]:
    """The params file and protocol of ``site`` (ParamsError when there is none, or it is not evaluable)."""
    folder = root / params_dir
    if not folder.is_dir():
        raise ParamsError(f"no params folder {params_dir}; run `evallib make-params` or pass --params-dir")
    (path,) = find_params(folder, [site])
    protocol = load_params(path)
    if protocol.not_evaluable_reason:
        raise ParamsError(f"site {protocol.site_id} is not evaluable ({protocol.not_evaluable_reason}); no design step")
    return path, protocol
