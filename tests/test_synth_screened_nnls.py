"""The synthetic control's weights past 512 donors: NNLS on a screened working set, checked optimal on every donor,
gives NNLS's answer on all of them (up to rounding); up to 512 donors it is NNLS on all of them, as before.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import nnls

import evallib.methods.synth.simplex as simplex
from evallib.methods.synth.control import simplex_least_squares


def _full(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    lam = 1e4 * max(1.0, float(np.abs(A).max()))
    w = nnls(np.vstack([A, np.full((1, A.shape[1]), lam)]), np.append(b, lam), maxiter=50 * A.shape[1])[0]
    return w / w.sum()


def _problem(seed: int, n: int, rows: int, outside: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    common = rng.normal(0, 0.1, rows).cumsum()
    A = common[:, None] + rng.normal(0, 0.05, (rows, n)).cumsum(axis=0)
    b = A[:, rng.choice(n, 5, replace=False)].mean(axis=1) + rng.normal(0, 0.05, rows)
    return A, b + (0.5 if outside else 0.0)  # a target far above every donor: a corner solution


@pytest.mark.unit
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("outside", [False, True])
def test_screened_weights_equal_nnls_on_every_donor(seed: int, outside: bool) -> None:
    A, b = _problem(seed, 3000, 36, outside)
    w = simplex_least_squares(A, b)
    assert w.min() >= 0 and w.sum() == pytest.approx(1.0, abs=1e-12)
    np.testing.assert_allclose(w, _full(A, b), atol=1e-9)


@pytest.mark.unit
def test_the_working_set_grows_until_no_donor_violates_the_optimality_conditions(monkeypatch) -> None:
    # A start set of two columns cannot hold the answer's support: the check must add the donors it needs.
    A, b = _problem(11, 1500, 24, False)
    calls = []
    real_nnls = nnls

    def counting(*args, **kwargs):
        calls.append(args[0].shape[1])
        return real_nnls(*args, **kwargs)

    monkeypatch.setattr("scipy.optimize.nnls", counting)
    monkeypatch.setattr(simplex, "SCREEN_COLUMNS", 1)
    w = simplex.screened_simplex_nnls(A, b, 1e4, maxiter=50 * A.shape[1], start_size=2)
    assert calls[0] == 2 and len(calls) >= 2 and max(calls) < A.shape[1]  # grown, never NNLS on every donor
    np.testing.assert_allclose(w / w.sum(), _full(A, b), atol=1e-9)


@pytest.mark.unit
def test_up_to_512_donors_the_weights_are_nnls_on_all_of_them_bit_for_bit() -> None:
    A, b = _problem(3, 512, 36, False)
    assert np.array_equal(simplex_least_squares(A, b), _full(A, b))
