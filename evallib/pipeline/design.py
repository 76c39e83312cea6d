"""``evallib design SITE``: the design step for one site, its page and table written to ``scratch/<site>/``;
with ``--write``, its chosen comparison pool written into the site's params file (:mod:`.preregister`).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from evallib.evaluation.studies.design import design_site
from evallib.evaluation.studies.rollout_design import staggered_design
from evallib.pipeline.preregister import load_site, refuse_if_results, write_site_choice
from evallib.reporting.design_page import write_design


def run_design(
    root: Path,
    site: str,
    params_dir: Path,
    hoped_for: float,
    share: float,
    out: Path | None = None,
    *,
    write: bool = False,
    force: bool = False,
) -> str:
    """Run the design step for ``site`` and write its page; returns what to print (the verdict, the files).

    ``write``: also write the chosen pool into the site's params file (refused once the site has results, unless
    ``force``). A ``design_pool`` already in the file is set aside, so the candidates are the rule's pools.
    """
    path, protocol = load_site(root, site, params_dir)
    if write and not force:
        refuse_if_results(root, protocol.site_id)  # before the design step's work, not after
    protocol = replace(protocol, design_pool=())
    if protocol.staggered:  # sized with the staggered answer's own estimator and placebo test
        result = staggered_design(protocol, hoped_for_percent=hoped_for, share=share)
    else:
        result = design_site(protocol, hoped_for_percent=hoped_for, share=share)
    target = out if out is not None else Path("scratch") / protocol.site_id
    base = root if not target.is_absolute() else Path(target.anchor)
    files = write_design(result, root / target if not target.is_absolute() else target, base)
    shown = ", ".join(str(f.relative_to(root)) if f.is_relative_to(root) else f.name for f in files)
    line = result.protocol_line()
    chosen = tuple(result.pool_units[result.recommended_pool]) if line else ()
    if write:
        fix = write_site_choice(root, path, result, force=force)
    elif line and tuple(sorted(protocol.design_pool)) == tuple(sorted(u.upper() for u in chosen)):
        fix = f"It is already the design_pool of {path.name}"
    elif line:
        fix = f"To fix it before results are seen, run with --write, or add to {path.name}: {line}"
    else:
        fix = "It is the protocol's own pool: nothing to change"
    return f"{result.verdict()}\nRecommended comparison pool: {result.recommended_pool}. {fix}\nWrote {shown}"
