"""``evallib design SITE``: the design step for one site, its page and table written to ``scratch/<site>/``."""

from __future__ import annotations

from pathlib import Path

from evallib.errors import ParamsError
from evallib.evaluation.studies.design import design_site
from evallib.protocol.params import find_params, load_params
from evallib.reporting.design_page import write_design


def run_design(root: Path, site: str, params_dir: Path, hoped_for: float, share: float, out: Path | None = None) -> str:
    """Run the design step for ``site`` and write its page; returns what to print (the verdict, the files)."""
    folder = root / params_dir
    if not folder.is_dir():
        raise ParamsError(f"no params folder {params_dir}; run `evallib make-params` or pass --params-dir")
    (path,) = find_params(folder, [site])
    protocol = load_params(path)
    if protocol.not_evaluable_reason:
        raise ParamsError(f"site {protocol.site_id} is not evaluable ({protocol.not_evaluable_reason}); no design step")
    if getattr(protocol.data_source, "frequency", "monthly") == "weekly":
        raise ParamsError(
            f"site {protocol.site_id}: the design step counts follow-up in months and does not take weekly data yet; "
            "run it on the data summed to months (frequency: monthly), or evaluate the weekly site with `evallib run`"
        )
    result = design_site(protocol, hoped_for_percent=hoped_for, share=share)
    target = out if out is not None else Path("scratch") / protocol.site_id
    base = root if not target.is_absolute() else Path(target.anchor)
    files = write_design(result, root / target if not target.is_absolute() else target, base)
    shown = ", ".join(str(f.relative_to(root)) if f.is_relative_to(root) else f.name for f in files)
    line = result.protocol_line()
    fix = (
        f"To fix it before results are seen, add to {path.name}: {line}"
        if line
        else "It is the protocol's own pool: nothing to change"
    )
    return f"{result.verdict()}\nRecommended comparison pool: {result.recommended_pool}. {fix}\nWrote {shown}"
