"""Imported by the fork server of a ``dask worker`` started with :mod:`evallib.pipeline.nanny`: warms it.

Importing this module imports what the sites' processes import and compiles what their pages compile
(:func:`evallib.pipeline.executor.warm_up` with no data windows), evaluates and draws one site on the bundled
data once, discarded (:data:`WARM_SITE`: the warm-up site each worker would otherwise run), and records the evallib code and bundled data
that warm state was made from (:func:`evallib.pipeline.warm.installed_state`), so a worker forked from it
fails its sites with the fix if they changed since (:func:`evallib.pipeline.dask_warm.run_site`), as a worker
that warmed itself does. It never raises: a fork server that fails to import it still starts workers, which
then warm themselves at their first task.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

#: The site the fork server warms with: a vanguard evaluated on the bundled data with every headline estimator.
WARM_SITE = "V04"


def _warm() -> None:
    from evallib.pipeline import dask_warm
    from evallib.pipeline.executor import warm_up
    from evallib.pipeline.warm import installed_state

    installed = installed_state()  # before the imports: a change during them is then caught at the first task
    warm_up(())
    if _warm_with_site():
        dask_warm._WARMED.add("site")  # noqa: SLF001 - the workers forked from here need no warm-up site
    dask_warm._INSTALLED[:1] = [installed]  # noqa: SLF001 - the worker's own record of its warm state
    dask_warm.FORKED.append(os.getpid())


def _warm_with_site() -> bool:
    """Evaluate and draw :data:`WARM_SITE` (its default protocol, on bundled data) once, discarded, as a Dask
    worker warms with its first site (:func:`evallib.pipeline.warm.warm_with_site`); whether it finished.
    """
    from evallib.pipeline.warm import warm_with_site
    from evallib.protocol.generator import chosen_estimators, chosen_pools, protocol_for
    from evallib.protocol.params import SiteProtocol
    from evallib.sources.registry import load_registry

    [site] = [s for s in load_registry() if s.site_id == WARM_SITE]
    protocol = SiteProtocol.from_mapping(protocol_for(site, chosen_estimators(None), chosen_pools(None)))
    with tempfile.TemporaryDirectory() as project:  # bundled data only: the project holds nothing it reads
        return warm_with_site(protocol, Path(project))


try:
    _warm()
except Exception as exc:  # noqa: BLE001 - the workers warm themselves at their first task instead
    print(f"evallib: the Dask fork server did not warm up ({type(exc).__name__}); each worker will", file=sys.stderr)
