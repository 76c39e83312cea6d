"""The design step's result: :class:`SiteDesign`, its table's columns, and how both design steps build it.

The common-start design step (:mod:`evallib.evaluation.studies.design`) and the staggered one
(:mod:`evallib.evaluation.studies.rollout_design`) size their candidates differently, but read each candidate's MDE,
power and size off its fake-start tests, and assemble the table and power curves, the same way: here, once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evallib.evaluation.studies.pre_start import History
from evallib.methods.inference.fake_starts import FakeStartTests
from evallib.protocol.generator import POOL_MARGIN
from evallib.protocol.params import SiteProtocol
from evallib.protocol.windows import period_label

ALPHA = 0.05
POWER = 0.8
#: The design table's columns, one row per estimator, pool and follow-up.
TABLE_COLUMNS = [
    "estimator",
    "pool",
    "follow_up",
    "n_comparators",
    "fake_pre",
    "fake_post",
    "fake_starts",
    "spread_factor",
    "mde",
    "mde_expected_direction",
    "mde_percent",
    "ci_width",
    "fake_start_rejection",
    "holds_size",
    "power_hoped_for",
    "detects_hoped_for",
]


def as_percent(effect: float, scale: str, direction: str) -> float:
    """A magnitude on the log scale as a percentage change in ``direction`` (points stay points)."""
    if scale != "log" or not math.isfinite(effect):
        return effect
    return 100 * (1 - math.exp(-effect)) if direction == "decrease" else 100 * (math.exp(effect) - 1)


@dataclass(frozen=True)
class SiteDesign:
    """The design step's result for one site: one row per estimator, pool and follow-up, and the power curves.

    ``table`` has :data:`TABLE_COLUMNS` (``mde`` and ``ci_width`` on the analysis scale: differences in logs,
    or points; ``mde`` is the larger of the two directions' magnitudes, as the report's MDE is, and
    ``mde_expected_direction`` the magnitude for a change in the protocol's expected direction alone;
    ``mde_percent`` the MDE as a percentage change in the expected direction). ``curves`` has
    ``estimator, pool, follow_up, effect, power`` (effects signed, in the expected direction). ``follow_up`` counts
    months, or weeks for weekly data (``period_word``).
    """

    site_id: str
    outcome: str
    scale: str
    expected_direction: str
    primary_estimator: str
    planned_start: pd.Timestamp
    history: tuple[pd.Timestamp, pd.Timestamp]
    protocol_follow_up: int
    pre_periods: int
    hoped_for_percent: float
    share: float
    hoped_for_area: float
    pool_units: dict[str, tuple[str, ...]] = field(repr=False)
    table: pd.DataFrame = field(repr=False, compare=False)
    curves: pd.DataFrame = field(repr=False, compare=False)
    notes: tuple[str, ...] = ()
    #: What ``follow_up`` and ``pre_periods`` count: ``month``, or ``week`` for weekly data.
    period_word: str = "month"

    def tidy(self) -> pd.DataFrame:
        """One row per estimator, pool and follow-up (:data:`TABLE_COLUMNS`), with the site and outcome."""
        return self.table.assign(site_id=self.site_id, outcome=self.outcome, scale=self.scale)

    def needed_follow_up(self, estimator: str | None = None, pool: str = "protocol") -> int | None:
        """The shortest follow-up tried (months, or weeks for weekly data) at which the hoped-for effect is detected with 80% power."""
        t = self.table
        t = t[(t["estimator"] == (estimator or self.primary_estimator)) & (t["pool"] == pool) & t["detects_hoped_for"]]
        return int(t["follow_up"].min()) if len(t) else None

    def recommended(self) -> pd.Series:
        """The primary estimator's pool at the protocol's follow-up, chosen conservatively (:data:`POOL_MARGIN`).

        The protocol's own pool is kept unless another pool that holds its size at fake starts has an MDE at least
        :data:`POOL_MARGIN` smaller (or the protocol's pool cannot reach 80% power at all): a pool that is only a
        little more precise on the history is not worth a different comparison set, and a rule with a margin keeps
        the choice from flipping between pools on noise when the data are refreshed.
        """
        t = self.table
        t = t[(t["estimator"] == self.primary_estimator) & (t["follow_up"] == self.protocol_follow_up)]
        own = t[t["pool"] == "protocol"]
        ok = t[t["holds_size"] & np.isfinite(t["mde"])]
        if not len(ok):
            return own.iloc[0] if len(own) else t.iloc[0]
        best = ok.loc[ok["mde"].idxmin()]
        if not len(own) or best["pool"] == "protocol":
            return best
        base = float(own["mde"].iloc[0])
        clearly = not math.isfinite(base) or float(best["mde"]) <= (1 - POOL_MARGIN) * base
        return best if clearly else own.iloc[0]

    def choice(self) -> dict[str, object]:
        """The design-time choice of comparison pool as one row of ``params/design_pools.csv``.

        ``data_end`` is the last month of data read (the month before the planned start, or the data's end);
        ``units`` the chosen pool's comparison units (space-separated; empty when the protocol's own pool is kept,
        which the protocol's rule already fixes); ``mde_protocol`` and ``mde_chosen`` the primary test's MDE
        (percent, expected direction) with each pool at the protocol's follow-up.
        """
        rec = self.recommended()
        t = self.table
        t = t[(t["estimator"] == self.primary_estimator) & (t["follow_up"] == self.protocol_follow_up)]
        own = t[t["pool"] == "protocol"]
        pool = str(rec["pool"])
        return {
            "site_id": self.site_id,
            "estimator": self.primary_estimator,
            "follow_up": self.protocol_follow_up,
            "data_end": period_label(self.history[1], "weekly" if self.period_word == "week" else "monthly"),
            "pool": pool,
            "n_comparators": len(self.pool_units.get(pool, ())),
            "mde_protocol": float(own["mde_percent"].iloc[0]) if len(own) else float("nan"),
            "mde_chosen": float(rec["mde_percent"]),
            "alternatives": "; ".join(
                f"{r.pool} {r.mde_percent:.2f}%" + ("" if r.holds_size else " (size not held)")
                for r in t.itertuples()
                if r.pool != "protocol"
            ),
            "units": "" if pool == "protocol" else " ".join(self.pool_units[pool]),
        }

    @property
    def pool_sizes(self) -> dict[str, int]:
        """Comparison units in each candidate pool."""
        return {k: len(v) for k, v in self.pool_units.items()}

    def protocol_line(self, pool: str | None = None) -> str:
        """The params-file line that fixes a pool (default: the recommended one) before results are seen.

        The protocol's own pool needs no line; any other is written as ``design_pool`` (the analysis of the
        protocol's own data source then compares with these units only, all of which the protocol's rules already
        admitted; secondary analyses on other data keep their own pools). ``evallib design SITE --write`` writes it.
        """
        pool = pool or self.recommended_pool
        if pool == "protocol":
            return ""
        return "design_pool: [" + ", ".join(f'"{u}"' for u in self.pool_units[pool]) + "]"

    @property
    def recommended_pool(self) -> str:
        """The comparison pool the design step recommends for the protocol (see :meth:`recommended`)."""
        return str(self.recommended()["pool"])

    def verdict(self) -> str:
        """The answer in words: whether the hoped-for effect can be detected, with which pool, after how long."""
        unit = "%" if self.scale == "log" else " percentage points"
        area = abs(as_percent(abs(self.hoped_for_area), self.scale, self.expected_direction))
        what = f"a {self.hoped_for_percent:g}{unit} {self.expected_direction}"
        if self.share < 1:
            what += f" in a group making up {self.share:.0%} of the area's {self.outcome.replace('_', ' ')} (about {area:.2g}{unit} at area level)"
        rec = self.recommended()
        need = self.needed_follow_up(pool=str(rec["pool"]))
        pool = str(rec["pool"]).replace("_", " ")
        if math.isfinite(rec["mde_percent"]):
            can = f"detects a change of {rec['mde_percent']:.1f}{unit} or more with 80% power"
        else:
            can = "cannot reach 80% power for any effect (too few comparison units for a 5% placebo test)"
        word = self.period_word
        head = f"With the {pool} comparison pool and {self.protocol_follow_up} {word}s of follow-up, the primary test {can}."
        if need is None:
            longest = int(self.table["follow_up"].max())
            return f"{head} {what.capitalize()} is NOT detectable with any follow-up tried (up to {longest} {word}s)."
        return f"{head} {what.capitalize()} is detectable after {need} {word}s of follow-up."


def build_site_design(
    protocol: SiteProtocol,
    hist: History,
    *,
    primary_estimator: str,
    planned_start: pd.Timestamp,
    follow_up: int,
    hoped_for_percent: float,
    share: float,
    hoped: float,
    rows: list[dict[str, object]],
    tests: list[tuple[str, str, int, FakeStartTests]],
    notes: tuple[str, ...],
    weekly: bool,
    effects: np.ndarray | None = None,
) -> SiteDesign:
    """A site's design from its candidates' rows (:data:`TABLE_COLUMNS`) and their fake-start tests.

    Shared by the common-start and the staggered design step. ``tests`` holds ``(estimator, pool, follow_up,
    tests)`` for each candidate; its power curve is drawn at ``effects`` (magnitudes; default 41 from 0 to 3 times
    the largest finite MDE, or the hoped-for effect when none is), signed in the expected direction.
    """
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    if effects is None:
        top = table["mde"].replace(np.inf, np.nan).max()
        effects = np.linspace(0, 3 * (top if np.isfinite(top) and top > 0 else abs(hoped)), 41)
    sign = -1.0 if protocol.expected_direction == "decrease" else 1.0
    curves = [
        pd.DataFrame(
            {
                "estimator": name,
                "pool": pool,
                "follow_up": months,
                "effect": sign * effects,
                "power": cell.power(sign * effects),
            }
        )
        for name, pool, months, cell in tests
    ]
    return SiteDesign(
        site_id=protocol.site_id,
        outcome=hist.outcome,
        scale=hist.scale,
        expected_direction=protocol.expected_direction,
        primary_estimator=primary_estimator,
        planned_start=planned_start,
        history=(hist.values.index.min(), hist.values.index.max()),
        protocol_follow_up=follow_up,
        pre_periods=hist.pre_periods,
        hoped_for_percent=hoped_for_percent,
        share=share,
        hoped_for_area=hoped,
        pool_units=dict(hist.pools),
        table=table,
        curves=pd.concat(curves, ignore_index=True)
        if curves
        else pd.DataFrame(columns=["estimator", "pool", "follow_up", "effect", "power"]),
        period_word="week" if weekly else "month",
        notes=notes,
    )


def power_columns(
    tests: FakeStartTests, rejection: float, n_starts: int, scale: str, hoped: float, direction: str
) -> dict[str, object]:
    """The MDE and power columns of one candidate's row (of :data:`TABLE_COLUMNS`), from its fake-start tests.

    ``rejection`` is the share of the ``n_starts`` fake starts at which the site's own test rejected; the size
    holds when it is within three Monte Carlo standard errors of :data:`ALPHA`.
    """
    mde = tests.detectable(POWER, "either")
    holds = rejection <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / n_starts)
    power = float(tests.power(np.array([hoped]))[0])
    return {
        "fake_starts": n_starts,
        "mde": mde,
        "mde_expected_direction": tests.detectable(POWER, direction),  # type: ignore[arg-type]
        "mde_percent": as_percent(mde, scale, direction),
        "fake_start_rejection": rejection,
        "holds_size": bool(holds),
        "power_hoped_for": power,
        "detects_hoped_for": bool(power >= POWER),
    }
