"""One random-subset sampler: the rate ratio, synthetic control and synthetic DiD draw their single-unit placebo
assignments with permutation.random_single_sets, and synthetic DiD's assignments are the ones its own sampler drew
before (so seeded results are unchanged) (review of issue 22)."""

from __future__ import annotations

import numpy as np
import pytest

from evallib.methods.inference.permutation import random_single_sets
from evallib.methods.synth.synthetic_did import placebo_assignments

pytestmark = pytest.mark.unit


def _former_sdid_sampler(real: np.ndarray, n_draws: int, seed: int) -> np.ndarray:
    """Synthetic DiD's own sampler as it was (before one sampler was shared), for the identity check."""
    rng = np.random.default_rng(seed)
    picked = rng.choice(np.flatnonzero(~real), size=n_draws, replace=False)
    rows = np.sort(np.append(picked, np.flatnonzero(real)))
    assign = np.zeros((len(rows), len(real)), bool)
    assign[np.arange(len(rows)), rows] = True
    return assign


@pytest.mark.parametrize(("n", "treated", "seed"), [(560, 0, 2015), (700, 333, 4), (501, 500, 1)])
def test_synthetic_dids_sampled_assignments_are_unchanged(n: int, treated: int, seed: int) -> None:
    real = np.zeros(n, bool)
    real[treated] = True
    assert np.array_equal(placebo_assignments(real, 199, seed), _former_sdid_sampler(real, 199, seed))


def test_synthetic_did_draws_the_units_the_shared_sampler_draws() -> None:
    real = np.zeros(600, bool)
    real[17] = True
    rows = np.flatnonzero(placebo_assignments(real, 199, 2015).any(axis=0))
    assert np.array_equal(rows, np.sort(random_single_sets(real, 199, 2015)[:, 0]))


def test_the_shared_sampler_never_repeats_the_real_unit_or_a_draw() -> None:
    real = np.zeros(600, bool)
    real[5] = True
    sets = random_single_sets(real, 199, 3)[:, 0]
    assert sets[0] == 5 and 5 not in sets[1:] and len(set(sets)) == 200


def test_synthetic_control_draws_the_units_its_own_sampler_drew() -> None:
    """Its former draw (``choice`` over the donors, sorted) and the shared sampler's pick the same placebo units."""
    from evallib.methods.simulate import simulate_panel
    from evallib.methods.synth.control import SyntheticControl

    d = simulate_panel(41, 36, treated=1, start_period=24, effect=0.05, seed=2)
    site = str(d["unit"].iloc[0])
    start = d.loc[d["post"] == 1, "period"].min()
    capped = SyntheticControl(treated=site, start=start, transform="log", n_draws=15, max_exhaustive=30).fit(d)
    assert capped.placebos is not None
    donors = sorted(u for u in d["unit"].unique() if u != site)
    former = [donors[i] for i in np.sort(np.random.default_rng(2015).choice(len(donors), 15, replace=False))]
    assert capped.placebos["unit"].tolist() == former
