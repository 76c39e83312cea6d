"""The design step: what an evaluation could detect, read from the data before its planned start only.

For the protocol's candidate estimators (the plain and studentized placebo DiD, and synthetic DiD), candidate
comparison pools (the protocol's whole pool, the units nearest the site before the start, the site's NHS region)
and follow-up lengths (12, 24, 36 months and the protocol's own; weekly data: 52, 104, 156 weeks), the step gives the minimum detectable effect at
80% power and 5% size, the expected width of the 95% interval, a power curve against effect size, and whether,
and after how long, the effect the evaluator hopes for can be detected. It uses the inference the report uses:
placebo in space, at every fake start date in the history before the start (the last ``L`` months of each
window act as the follow-up), so that drift between units over the follow-up is in the numbers.

Nothing from the planned start on is read: the data are taken through the protocol's windows moved to end at
``pre_period_end`` (:func:`design_history`), so the follow-up's values cannot change any number here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from evallib.errors import DataError
from evallib.evaluation.studies.placebo_cells import Cell, fake_windows, placebo_cell, scaled
from evallib.evaluation.studies.pre_start import History, answer_estimator, design_history, nearest_sets
from evallib.methods.inference.fake_starts import FakeStartTests, critical_values, spread_at, spread_model
from evallib.protocol.generator import POOL_MARGIN
from evallib.protocol.params import SiteProtocol
from evallib.protocol.windows import period_label
from evallib.sources.panel import Panel

ALPHA = 0.05
POWER = 0.8
#: Follow-up lengths (months) the design step tries besides the protocol's own.
FOLLOW_UPS: tuple[int, ...] = (12, 24, 36)
#: The same for weekly data, in weeks (one, two and three years of ISO weeks): weekly sites count follow-up in weeks.
WEEKLY_FOLLOW_UPS: tuple[int, ...] = (52, 104, 156)
#: Estimators the design step sizes: the report's placebo tests (its primary estimator among them).
DESIGN_ESTIMATORS: tuple[str, ...] = ("did", "did_studentized", "synthetic_did")
#: Candidate comparison pools, in the order they are shown.
POOLS: tuple[str, ...] = ("protocol", "nearest", "same_region")
#: The effect (percent, in the protocol's expected direction) the design step asks about when none is given.
DEFAULT_HOPED_FOR = 5.0
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


def area_effect(percent: float, share: float, direction: str, scale: str = "log") -> float:
    """The area-level effect (signed, on the analysis scale) of a ``percent`` change on a sub-population.

    A multiplicative effect of ``percent`` on a group that makes up ``share`` of the area's outcome changes the
    area's total by ``percent x share`` (the rest is unchanged); on the log scale that is
    ``log(1 -/+ percent x share / 100)``. For a percentage (points) the change is taken as ``points x share``.
    """
    if not 0 < share <= 1:
        raise DataError(f"design: the sub-population's share must be above 0 and at most 1 (got {share})")
    if not 0 < percent < 100:
        raise DataError(f"design: the hoped-for effect must be a percentage above 0 and below 100 (got {percent})")
    sign = -1.0 if direction == "decrease" else 1.0
    if scale != "log":
        return sign * percent * share
    return math.log1p(sign * percent * share / 100)


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


def design_site(
    protocol: SiteProtocol,
    *,
    panel: Panel | None = None,
    estimators: tuple[str, ...] = DESIGN_ESTIMATORS,
    follow_ups: tuple[int, ...] = FOLLOW_UPS,
    hoped_for_percent: float = DEFAULT_HOPED_FOR,
    share: float = 1.0,
    pools: tuple[str, ...] = POOLS,
    effects: np.ndarray | None = None,
) -> SiteDesign:
    """The design step for one site (data before ``pre_period_end`` + 1 only; see the module's notes).

    Parameters
    ----------
    protocol : SiteProtocol
        The site's protocol (its windows, pool rule, outcome, expected direction and placebo draws).
    panel : Panel, optional
        The data (default: the protocol's ``data_source``).
    estimators, follow_ups, pools : tuples
        What to size (follow-ups in months, or in weeks for weekly data, where the default is
        :data:`WEEKLY_FOLLOW_UPS`; the protocol's own follow-up is always added).
    hoped_for_percent, share : float
        The effect hoped for, in percent in the expected direction, on a group making up ``share`` of the
        area's outcome (1: the whole area).
    effects : array, optional
        Effect magnitudes for the power curves (default: 0 to 3 times the largest MDE, 41 points).
    """
    unknown = sorted(set(estimators) - set(DESIGN_ESTIMATORS))
    if unknown:
        word = "estimator" if len(unknown) == 1 else "estimators"
        raise DataError(f"design: unknown {word} {', '.join(unknown)}; use {', '.join(DESIGN_ESTIMATORS)}")
    w = protocol.windows
    weekly = getattr(protocol.data_source, "frequency", "monthly") == "weekly"
    if weekly:  # windows in weeks: the follow-ups tried, the protocol's own, each fake window's follow-up
        follow_ups = WEEKLY_FOLLOW_UPS if follow_ups == FOLLOW_UPS else follow_ups
        own = (w.post_end - w.post_start).days // 7 + 1
        longest = math.ceil(max((*follow_ups, own)) * 12 / 52)  # the history reaches back in months
    else:
        own = _follow_up_months(protocol)
        longest = max((*follow_ups, own))
    hist = design_history(protocol, panel, longest=longest)
    lengths = sorted({*follow_ups, own})
    step = 1 if weekly else 12 // hist.periods_per_year
    hoped = area_effect(hoped_for_percent, share, protocol.expected_direction, hist.scale)
    sign = -1.0 if protocol.expected_direction == "decrease" else 1.0
    direction = protocol.expected_direction
    answer = answer_estimator(protocol, hist)
    rows, cells = [], {}
    fitted: dict[tuple[str, str, tuple[int, int]], Cell] = {}
    k = len(hist.treated)
    every = [*hist.treated, *hist.pools["protocol"]]
    Y_all = hist.values[every].to_numpy(dtype=float).T
    # How units drift apart is the whole pool's (a pool chosen on the history would look steadier than it stays).
    model = spread_model(Y_all) if Y_all.shape[1] < hist.pre_periods + max(lengths) // step else None
    for pool in [p for p in pools if p in hist.pools]:
        units = [*hist.treated, *hist.pools[pool]]
        Y = Y_all if pool == "nearest" else hist.values[units].to_numpy(dtype=float).T
        is_treated = np.arange(len(units)) < k
        for months in lengths:
            post = max(1, months // step)
            windows = fake_windows(Y.shape[1], hist.pre_periods, post)
            factor = 1.0
            if model is not None and windows != (hist.pre_periods, post):
                factor = math.sqrt(spread_at(model, hist.pre_periods, post) / spread_at(model, *windows))
            n_starts = Y.shape[1] - sum(windows) + 1
            sets = None
            if pool == "nearest" and not all((name, pool, windows) in fitted for name in estimators):
                sets = nearest_sets(Y, k, windows[0], n_starts, len(units) - k)
            for name in estimators:
                # Follow-ups whose fake windows are the same (a short history) share one fit, scaled by their factor.
                if (name, pool, windows) not in fitted:
                    fitted[(name, pool, windows)] = placebo_cell(
                        name,
                        Y,
                        is_treated,
                        windows,
                        1.0,
                        protocol.n_placebo_draws,
                        protocol.seed,
                        sets,
                        hist.pre_periods,
                    )
                cell = scaled(fitted[(name, pool, windows)], factor)
                cells[(name, pool, months)] = tests = FakeStartTests(cell.placebos, cell.coefficient, ALPHA)
                rows.append(_row(name, pool, months, len(units) - k, cell, tests, hist, hoped, direction))
    table = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    if effects is None:
        top = table["mde"].replace(np.inf, np.nan).max()
        effects = np.linspace(0, 3 * (top if np.isfinite(top) and top > 0 else abs(hoped)), 41)
    curves = [
        pd.DataFrame(
            {
                "estimator": name,
                "pool": pool,
                "follow_up": months,
                "effect": sign * effects,
                "power": tests.power(sign * effects),
            }
        )
        for (name, pool, months), tests in cells.items()
    ]
    return SiteDesign(
        site_id=protocol.site_id,
        outcome=hist.outcome,
        scale=hist.scale,
        expected_direction=protocol.expected_direction,
        primary_estimator=answer if answer in estimators else estimators[0],
        planned_start=w.post_start,
        history=(hist.values.index.min(), hist.values.index.max()),
        protocol_follow_up=own,
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
        notes=hist.notes
        + (
            ("the site is noisier before the start than 90% of its placebos: its answer will be the studentized DiD",)
            if answer == "did_studentized" != protocol.primary_estimator
            else ()
        ),
    )


def _follow_up_months(protocol: SiteProtocol) -> int:
    w = protocol.windows
    return (w.post_end.year - w.post_start.year) * 12 + w.post_end.month - w.post_start.month + 1


def _row(
    name: str,
    pool: str,
    months: int,
    n_comp: int,
    cell: Cell,
    tests: FakeStartTests,
    hist: History,
    hoped: float,
    direction: str,
) -> dict[str, object]:
    e, c = cell.placebos, cell.coefficient
    mde = tests.detectable(POWER, "either")
    q = critical_values(e, ALPHA)
    width = float(np.mean(2 * q / np.abs(np.broadcast_to(np.asarray(c, float), q.shape))))
    own = np.abs(e[cell.real])
    p = (np.abs(e) >= own - 1e-12).mean(axis=0)
    rejection = float(np.mean(p < ALPHA))  # the report's rule: p below 5%
    holds = rejection <= ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / cell.n_starts)
    power = float(tests.power(np.array([hoped]))[0])
    return {
        "estimator": name,
        "pool": pool,
        "follow_up": months,
        "n_comparators": n_comp,
        "fake_pre": cell.windows[0],
        "fake_post": cell.windows[1],
        "fake_starts": cell.n_starts,
        "spread_factor": cell.factor,
        "mde": mde,
        "mde_expected_direction": tests.detectable(POWER, direction),  # type: ignore[arg-type]
        "mde_percent": as_percent(mde, hist.scale, direction),
        "ci_width": width,
        "fake_start_rejection": rejection,
        "holds_size": bool(holds),
        "power_hoped_for": power,
        "detects_hoped_for": bool(power >= POWER),
    }
