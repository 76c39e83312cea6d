"""Recompute the California Proposition 99 synthetic-DiD reference values with synthdid-py (a port of R synthdid).

The same call as ``synthdid_prop99.R``: ``panel.matrices`` then ``synthdid_estimate(Y, N0, T0)`` with the package's
defaults, and the unit (omega) and time (lambda) weights that ``summary()`` lists. Run by hand from the repository
root, in an environment with the ``bench`` extra (``pip install -e '.[bench]'``)::

    python tests/reference/prop99/synthdid_py_prop99.py > tests/reference/prop99/synthdid_py_prop99.out

It prints ``name = value`` lines named as in ``synthdid_prop99.out`` (the R output), at full precision.
"""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandas as pd
from synthdid import panel_matrices, synthdid_estimate

DATA = Path(__file__).resolve().parents[2] / "fixtures" / "california_prop99.csv"


def main() -> None:
    panel = panel_matrices(pd.read_csv(DATA), "State", "Year", "PacksPerCapita", "treated")
    tau = synthdid_estimate(panel.Y, panel.N0, panel.T0)
    print(
        f"# synthdid-py {version('synthdid-py')}, numpy {version('numpy')}; data tests/fixtures/california_prop99.csv"
    )
    print(f"estimate = {float(tau):.10f}")
    controls = np.asarray(panel.units)[: panel.N0]
    omega = pd.Series(np.asarray(tau.weights["omega"], dtype=float), index=controls).sort_values(ascending=False)
    for state, w in omega.head(5).items():
        print(f"omega.{state} = {w:.10f}")
    years = np.asarray(panel.time)[: panel.T0]
    lam = pd.Series(np.asarray(tau.weights["lambda"], dtype=float), index=years)
    for year, w in lam[lam > 1e-9].items():
        print(f"lambda.{year} = {w:.10f}")


if __name__ == "__main__":
    main()
