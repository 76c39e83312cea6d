"""The rate ratio's interval search starts from the ends its test at tau = 0 predicts: the same interval to the
search's documented tolerance (0.001 placebo SDs, each end on the accepted side) in fewer null values, and a
constant number of them (8) as the pool grows, so its cost grows only through each refit (issue 22, review)."""

from __future__ import annotations

import numpy as np
import pytest

from evallib.methods.did import rate_ratio
from evallib.methods.did.rate_ratio import PoissonDiD
from evallib.methods.inference.inversion import invert_by_search
from evallib.methods.simulate import simulate_nhs_panel


def _margin_test(taus: np.ndarray, curve: float = 0.0005) -> tuple[np.ndarray, np.ndarray]:
    """A test that accepts where a (slightly) curved margin is at most 0: the ends are near -1.2 and 1.9."""
    margin = np.abs(taus - 0.35) + curve * (taus - 0.35) ** 2 - 1.56
    return np.where(margin <= 0, 0.5, 0.01), margin


def _counted(p_of):  # type: ignore[no-untyped-def]
    tried: list[float] = []

    def wrapped(taus: np.ndarray):  # type: ignore[no-untyped-def]
        tried.extend(taus.tolist())
        return p_of(taus)

    return wrapped, tried


@pytest.mark.unit
@pytest.mark.parametrize("curve", [0.0005, 0.05])
def test_guessed_ends_give_the_same_interval_in_fewer_null_values(curve: float) -> None:
    def test(taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return _margin_test(taus, curve)

    plain, tried_plain = _counted(test)
    lo, hi = invert_by_search(plain, 0.35, 0.8, 0.05)
    guessed, tried_guessed = _counted(test)
    glo, ghi = invert_by_search(guessed, 0.35, 0.8, 0.05, guesses=(0.35 - 1.5, 0.35 + 1.5))
    tol = 1e-3 * 0.8
    assert abs(glo - lo) <= tol and abs(ghi - hi) <= tol
    assert test(np.array([glo, ghi]))[1].max() <= 0  # on the accepted side
    assert test(np.array([glo - tol, ghi + tol]))[1].min() > 0  # within tol of where it starts to reject
    if curve < 0.001:  # nearly linear: the centre, two guesses, and two points either side of each predicted end
        assert len(tried_guessed) == 7 < len(tried_plain)
    # More curved, the secant misses by more than tol / 3 and the search narrows on from every point tried.


@pytest.mark.unit
def test_a_guess_beyond_the_search_reach_leaves_that_end_infinite_as_without_guesses() -> None:
    def p_of(taus: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        margin = np.abs(taus) - 100.0
        return np.where(margin <= 0, 0.5, 0.01), margin

    assert invert_by_search(p_of, 0.0, 1.0, 0.05, max_doublings=3) == (-np.inf, np.inf)
    assert invert_by_search(p_of, 0.0, 1.0, 0.05, max_doublings=3, guesses=(-100.0, 100.0)) == (-np.inf, np.inf)


@pytest.mark.unit
@pytest.mark.parametrize("n_treated", [1, 3])
def test_the_rate_ratio_interval_is_unchanged_to_the_tolerance_in_fewer_null_values(
    monkeypatch: pytest.MonkeyPatch, n_treated: int
) -> None:
    d = simulate_nhs_panel(300, 36, n_treated=n_treated, start_period=24, effect=-0.1, seed=3)
    model = PoissonDiD(n_draws=99)
    new = model.fit(d)

    def without_guesses(*args, guesses=None, **kwargs):  # type: ignore[no-untyped-def]
        return invert_by_search(*args, **kwargs)

    monkeypatch.setattr(rate_ratio, "invert_by_search", without_guesses)
    old = model.fit(d)
    tol = 1e-3 * new.headline.std_error  # the search's tolerance: 0.001 placebo SDs on the log scale
    for end in ("ci_low", "ci_high"):
        assert abs(np.log(getattr(new.headline, end)) - np.log(getattr(old.headline, end))) <= tol, end
    assert new.p_value == old.p_value and new.estimate == old.estimate
    assert new.null_values_tested < old.null_values_tested


@pytest.mark.unit
def test_the_rate_ratio_tries_as_many_null_values_at_every_pool_size() -> None:
    tested = [
        PoissonDiD(n_draws=99).fit(simulate_nhs_panel(n, 36, start_period=24, effect=-0.1, seed=3)).null_values_tested
        for n in (100, 300, 600)
    ]
    assert tested == [8, 8, 8]  # tau = 0, the estimate, two guessed ends, two points either side of each end
