"""Recompute the mpdta Callaway-Sant'Anna reference values with csdid (the Python port of R did).

The same calls as ``did_mpdta.R``: ``att_gt`` (doubly robust, no covariates, varying base period, analytic
standard errors: no bootstrap) with never-treated and then not-yet-treated controls, and ``aggte`` of each kind.
Run by hand from the repository root, with ``csdid`` installed (``pip install csdid``)::

    python tests/reference/mpdta/csdid_mpdta.py > tests/reference/mpdta/csdid_mpdta.out

It prints ``name = value`` lines named as in ``did_mpdta.out`` (the R output), at full precision.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from csdid.att_gt import ATTgt

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "mpdta.csv"
CONTROLS = {"never_treated": "nevertreated", "not_yet_treated": "notyettreated"}
KINDS = ("simple", "group", "dynamic", "calendar")


def main() -> None:
    warnings.simplefilter("ignore")
    data = pd.read_csv(DATA)
    print(f"# csdid {version('csdid')}, numpy {version('numpy')}; data tests/fixtures/mpdta.csv")
    for name, control in CONTROLS.items():
        with contextlib.redirect_stdout(io.StringIO()):  # csdid prints its summaries
            att = ATTgt(
                yname="lemp", tname="year", idname="countyreal", gname="first.treat", data=data, control_group=control
            ).fit(est_method="dr", base_period="varying", bstrap=False)
        if name == "never_treated":
            gt = pd.DataFrame({k: np.asarray(att.results[k]) for k in ("group", "year", "att")})
            first = gt[(gt["group"] == 2004) & (gt["year"] == 2004)]["att"].iloc[0]
            print(f"never_treated.att_gt.2004.2004 = {float(first):.10f}")
        for kind in KINDS:
            with contextlib.redirect_stdout(io.StringIO()):
                agg = att.aggte(typec=kind, bstrap=False).atte
            print(f"{name}.{kind}.estimate = {float(agg['overall_att']):.10f}")
            print(f"{name}.{kind}.std_error = {float(agg['overall_se']):.10f}")
            if name == "never_treated" and kind in ("group", "dynamic"):
                for e, v in zip(np.asarray(agg["egt"]), np.asarray(agg["att_egt"]), strict=True):
                    print(f"never_treated.{kind}.{int(e)}.estimate = {float(v):.10f}")


if __name__ == "__main__":
    main()
