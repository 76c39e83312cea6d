"""A simulated site on the evaluator's own data: its protocol and its data, known effect and all.

One treated unit (``T000``) among simulated NHS-like units (:func:`evallib.methods.simulate.simulate_nhs_panel`),
its start in April 2013 and its follow-up to March 2016, evaluated through the own-data path: the set-up that the
design, answer and wording tests and the whole-site scale benchmark (``benchmarks/scale_site.py``) share.
"""

from __future__ import annotations

import pandas as pd

from evallib.methods.simulate import long_panel, simulate_nhs_panel
from evallib.protocol.params import SiteProtocol
from evallib.sources.panel import Panel, validate_panel

#: The simulated site's one outcome.
OUTCOME = "admissions"


def simulated_site(
    n_units: int,
    periods: int,
    start_period: int,
    *,
    effect: float = 0.0,
    treated_volatility: float | None = None,
    seed: int,
    first_month: str = "2011-04",
    pre_period_start: str = "2011-04",
    primary_estimator: str = "synthetic_did",
) -> tuple[SiteProtocol, pd.DataFrame]:
    """A simulated one-unit site and its long data (``unit, period, outcome, value``).

    Parameters
    ----------
    n_units, periods, start_period : int
        Simulated units (the treated one among them), months from ``first_month``, and the first month with the
        effect (:func:`~evallib.methods.simulate.simulate_nhs_panel`).
    effect : float
        The effect on the treated unit's log expected counts from ``start_period`` on.
    treated_volatility : float, optional
        The treated unit's volatility against the median unit's (default: drawn like the rest).
    seed : int
        The simulation's seed.
    first_month, pre_period_start : str
        The data's first month and the protocol's pre-period start (the start is April 2013 and the follow-up ends
        in March 2016 whatever they are).
    primary_estimator : str
        The protocol's primary estimator.

    Returns
    -------
    tuple of SiteProtocol and DataFrame
        The protocol (site ``SIM``, its data ``sim.csv``) and the data it reads.
    """
    frame = simulate_nhs_panel(
        n_units,
        periods,
        start_period=start_period,
        effect=effect,
        treated_volatility=treated_volatility,
        seed=seed,
        first_month=first_month,
    )
    protocol = SiteProtocol.from_mapping(
        {
            "site_id": "SIM",
            "site_name": "Simulated site",
            "site_type": "other",
            "care_model": "other",
            "membership_confidence": "high",
            "treated_units": ["T000"],
            "intervention_start": "2013-04",
            "primary_outcome": OUTCOME,
            "expected_direction": "decrease",
            "pre_period_start": pre_period_start,
            "pre_period_end": "2013-03",
            "post_period_end": "2016-03",
            "data_source": {"path": "sim.csv", "unit": "unit", "period": "period", "outcomes": [OUTCOME]},
            "primary_estimator": primary_estimator,
        }
    )
    return protocol, long_panel(frame, OUTCOME)


def simulated_panel(long: pd.DataFrame) -> Panel:
    """The simulated site's data as the validated monthly panel the analysis reads."""
    return validate_panel(long, "monthly", source="sim")
