"""The design step's placebo cells at practice scale: memory linear in the units (issue 22: no n x n anywhere)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from evallib.evaluation.studies.placebo_cells import placebo_cell
from evallib.methods.inference.fake_starts import studentized_placebos
from evallib.methods.inference.permutation import permutation_estimates, placebo_sets, treatment_assignments


@pytest.mark.parametrize("name", ["did", "did_studentized"])
def test_a_design_cell_with_7000_units_holds_no_units_by_units_matrix(name: str) -> None:
    """7,000 units x 48 months: an n x n float matrix alone would be 392 MB; the cell stays far below it."""
    rng = np.random.default_rng(3)
    n, T = 7_000, 48
    Y = rng.normal(size=(n, T)).cumsum(axis=1) * 0.01 + 5
    is_treated = np.arange(n) == 0
    tracemalloc.start()
    try:
        cell = placebo_cell(name, Y, is_treated, (24, 12), 1.0, 199, 1, scale_pre=24)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert cell.placebos.shape == (n, cell.n_starts) and cell.real == 0
    assert peak < 120 * 2**20, peak  # the placebos themselves are n x starts floats (~0.7 MB a start)


@pytest.mark.parametrize("k", [1, 3])
def test_studentized_placebos_from_index_sets_equal_the_matrix_product(k: int) -> None:
    rng = np.random.default_rng(k)
    changes, scales = rng.normal(size=(60, 5)), rng.lognormal(size=(60, 5))
    is_t = np.arange(60) < k
    z = (changes - changes.mean(axis=0)) / scales
    by_matrix = permutation_estimates(z, treatment_assignments(is_t, 99, 4))
    np.testing.assert_allclose(studentized_placebos(changes, scales, placebo_sets(is_t, 99, 4)), by_matrix, rtol=1e-12)
