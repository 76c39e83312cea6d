"""Writing a site's ``results.json``: :meth:`SiteEvaluation.to_json_dict` and the run's provenance.

Exploration never touches what is published: by default results go to the project's
``scratch/<site_id>/`` folder, and writing into the published ``outputs/`` folder is
refused (only ``evallib run`` writes there, through its staging folder). Nothing is written
through a link: a planted ``scratch`` or ``scratch/<site_id>`` link, or a link at the file's
temporary name, is refused or never followed (:mod:`evallib.protocol.writing`).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from evallib.errors import ParamsError
from evallib.evaluation.record.provenance import provenance
from evallib.evaluation.site.evaluate import SiteEvaluation
from evallib.protocol import writing
from evallib.protocol.paths import project_root

#: Where notebooks and the plain Papermill command write unless told otherwise.
SCRATCH = "scratch"


def default_output_dir(site_id: str) -> Path:
    """Where a site's outputs go by default: the project's scratch folder, one subfolder per site."""
    return project_root() / SCRATCH / site_id


def _check_not_published(out: Path) -> None:
    published = (project_root() / "outputs").resolve()
    real = out.resolve()
    if real.is_relative_to(published) and not real.is_relative_to(published / ".staging"):
        raise ParamsError(
            "output_dir points into outputs/, which holds the published results: only `evallib run` writes there. "
            f'Leave output_dir as "" (results go to {SCRATCH}/<site_id>/) or choose another folder.'
        )


def results_json(evaluation: SiteEvaluation) -> dict[str, Any]:
    """The content of ``results.json``: the site's analysis, then the provenance of the run (last)."""
    return {**evaluation.to_json_dict(), "provenance": provenance(evaluation.protocol)}


def write_results(evaluation: SiteEvaluation, output_dir: str | os.PathLike[str] = "") -> Path:
    """Write ``results.json`` into ``output_dir`` (default ``scratch/<site_id>/`` in the project).

    Written to a temporary file first and renamed, so a reader never sees half a file.

    Raises
    ------
    ParamsError
        When ``output_dir`` is inside the project's published ``outputs/`` folder.
    """
    out = Path(output_dir) if output_dir else default_output_dir(evaluation.protocol.site_id)
    _check_not_published(out)
    if output_dir:  # the caller's folder: made if missing, and it must be a real folder, not a link
        if not writing.check_dir(out):
            with writing.faults(out.parent):
                out.mkdir(parents=True, exist_ok=True)
        writing.check_dir(out)
    else:  # scratch/<site_id>/: every folder below the project root a real one
        writing.make_dir(out, project_root())
    path = out / "results.json"
    writing.write_atomic(path, json.dumps(results_json(evaluation), indent=2, allow_nan=False) + "\n")
    return path
