"""Writing a site's ``results.json`` (its content is :meth:`SiteEvaluation.to_json_dict`)."""

from __future__ import annotations

import json
import os
from pathlib import Path

from evallib.evaluation.site import SiteEvaluation
from evallib.protocol.paths import project_root


def write_results(evaluation: SiteEvaluation, output_dir: str | os.PathLike[str] = "") -> Path:
    """Write ``results.json`` into ``output_dir`` (default ``outputs/<site_id>/``).

    Written to a temporary file first and renamed, so a reader never sees half a file.
    """
    out = Path(output_dir) if output_dir else project_root() / "outputs" / evaluation.protocol.site_id
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.json"
    tmp = out / ".results.json.tmp"
    tmp.write_text(json.dumps(evaluation.to_json_dict(), indent=2, allow_nan=False) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path
