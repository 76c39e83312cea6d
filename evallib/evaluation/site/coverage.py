"""What one outcome's analysis stands on: the windows, the site's units in the data, and the comparison pool.

:func:`analysis_frame` applies the protocol's pool rule (other treated sites out,
include/exclude lists, type-1 A&E, complete data) and raises
:class:`~evallib.errors.NotEvaluable` with the reason in words when the data
cannot support the protocol.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import pandas as pd

from evallib.errors import DataError, NotEvaluable, ParamsError
from evallib.evaluation.site.breaks import SiteBreak, screen_site
from evallib.protocol.params import AnalysisSpec, SiteProtocol, design_pool_problem
from evallib.protocol.paths import project_root
from evallib.protocol.windows import Windows, period_label
from evallib.sources.areas import pool_codes
from evallib.sources.bundled import BUNDLED, load_bundled
from evallib.sources.files import FileSource, load_file
from evallib.sources.panel import Panel
from evallib.sources.registry import load_registry, type1_trusts
from evallib.vocabulary import outcome_label, period_word, plural, unit_plural

#: Follow-up shorter than this many months (two years, in any frequency) is flagged as short in the report.
SHORT_FOLLOW_UP = 24
#: Periods a year of each frequency (the word for one period: :func:`evallib.vocabulary.period_word`).
#: Weekly data: 52 ISO weeks stand for a year (horizons, baselines); seasonality uses the year's true 52.18 weeks.
PERIODS_PER_YEAR = {"monthly": 12, "quarterly": 4, "yearly": 1, "weekly": 52}
_OFFSETS = {"monthly": "MS", "quarterly": "QS", "yearly": "YS", "weekly": "W-MON"}
#: With fewer comparison units than this, a 95% placebo interval cannot be finite.
MIN_COMPARATORS_FOR_CI = 19
#: Fewest comparison units any analysis can run with: a placebo distribution of one comparator is no test, and
#: the controlled ITS needs more comparators than treated units.
MIN_COMPARATORS = 2


def unit_kind(data_source: str | FileSource) -> str:
    """What a unit of this data source is, in words: "trust", "CCG", or the evaluator's own label ("area")."""
    if isinstance(data_source, FileSource):
        return data_source.unit_label
    return BUNDLED[data_source].unit_kind if data_source in BUNDLED else "area"


@dataclass(frozen=True)
class Coverage:
    """What data the analysis of one outcome stands on."""

    outcome: str
    source: str
    periods: tuple[pd.Timestamp, ...] = field(repr=False)
    n_pre: int
    n_post: int
    missing_periods: tuple[pd.Timestamp, ...]
    treated_used: tuple[str, ...]
    treated_not_in_data: tuple[str, ...]
    treated_incomplete: tuple[str, ...]
    comparators: tuple[str, ...] = field(repr=False)
    excluded: dict[str, int] = field(default_factory=dict)
    baseline_total: float = float("nan")
    unit_kind: str = "trust"
    stitches: tuple[str, ...] = ()
    imputed: tuple[str, ...] = ()
    rolled_up: tuple[str, ...] = ()
    screened: dict[str, str] = field(default_factory=dict)
    site_breaks: tuple[str, ...] = ()
    frequency: str = "monthly"
    breaks: tuple[SiteBreak, ...] = ()
    windows: Windows | None = None

    def applied_to(self, protocol: SiteProtocol) -> SiteProtocol:
        """``protocol`` with the windows this outcome was analysed over (cut at a level shift in the site's series)."""
        w = self.windows
        if w is None or w == protocol.windows:
            return protocol
        f = self.frequency
        return replace(
            protocol, pre_period_start=period_label(w.pre_start, f), post_period_end=period_label(w.post_end, f)
        )

    @property
    def window_cut(self) -> bool:
        """Whether the window was cut at a level shift in the site's own series."""
        return any(b.action == "cut" for b in self.breaks)

    @property
    def periods_per_year(self) -> int:
        """Periods in a year at the data's frequency (12 for monthly data, the default)."""
        return PERIODS_PER_YEAR.get(self.frequency, 12)

    @property
    def period_word(self) -> str:
        """One period in words: "month", "quarter" or "year"."""
        return period_word(self.frequency)

    def in_periods(self, n: int) -> str:
        """``n`` periods in words: "1 month", "8 quarters"."""
        return plural(n, self.period_word)

    @property
    def short_follow_up(self) -> bool:
        """Follow-up shorter than two years."""
        return self.n_post < SHORT_FOLLOW_UP * self.periods_per_year / 12

    @property
    def n_comparators(self) -> int:
        """How many comparison units the analysis uses."""
        return len(self.comparators)

    @property
    def units(self) -> str:
        """The kind of unit in words, plural ("CCGs", "trusts", "areas")."""
        return unit_plural(self.unit_kind)


def load_source(data_source: str | FileSource) -> Panel:
    """The data a protocol names: a bundled dataset, or the evaluator's own file (relative to the project)."""
    if isinstance(data_source, str):
        return load_bundled(data_source)
    return load_file(data_source, base_dir=project_root())


def load_panel(protocol: SiteProtocol) -> Panel:
    """The data named by the protocol's ``data_source`` (its primary outcome's source)."""
    return load_source(protocol.data_source)


def excluded_by_rule(protocol: SiteProtocol, kind: str = "trust") -> set[str]:
    """Units the comparison-pool rule removes (other treated sites): their trust or CCG codes, by ``kind``."""
    rule = protocol.comparison_pool
    if rule == "all_eligible":
        return set()
    end = protocol.windows.post_end
    out: set[str] = set()
    for site in load_registry():
        codes = site.ccg_codes if kind == "CCG" else site.acute_trust_codes
        if rule == "exclude_other_vanguards" and site.site_type == "vanguard":
            out.update(codes)
        elif rule == "exclude_ics_designated_before_end" and site.site_type == "ICS" and site.start_month <= end:
            out.update(codes)
    return out


def analysis_frame(
    protocol: SiteProtocol, panel: Panel, spec: AnalysisSpec | str
) -> tuple[pd.DataFrame, pd.DataFrame | None, Coverage]:
    """Values (period x unit) for the treated units and comparators; raises NotEvaluable.

    ``spec`` names the outcome, its data source and which of its units are the site (an
    outcome name alone means the protocol's own ``data_source`` and ``treated_units``).
    """
    if isinstance(spec, str):
        spec = AnalysisSpec(spec, protocol.data_source, protocol.treated_units, spec == protocol.primary_outcome)
    outcome = spec.outcome
    kind = unit_kind(spec.data_source)
    units = unit_plural(kind)
    label = outcome_label(outcome)
    if outcome not in panel.outcomes:
        raise DataError(
            f"site {protocol.site_id}: outcome {outcome!r} is not in data source {panel.source!r} "
            f"(it has {', '.join(panel.outcomes)}); fix primary_outcome/secondary_outcomes in the params file"
        )
    # A level shift in the site's own series is stitched, cut around or makes the outcome not evaluable.
    protocol, areas, breaks = screen_site(
        protocol, panel, outcome, tuple(spec.treated_units), label, period_word(panel.frequency)
    )
    w = protocol.windows
    values = areas.panel.wide(outcome)
    denom = areas.panel.wide(outcome, "denominator") if areas.panel.has_denominator(outcome) else None
    data_start, data_end = panel.periods(outcome).min(), panel.periods(outcome).max()
    in_window = values.index[w.within(values.index)]
    step = max(1, 12 // PERIODS_PER_YEAR.get(panel.frequency, 12))  # weekly starts are Mondays (params check)
    if panel.frequency == "weekly" and (w.post_start.day_of_week or w.pre_start.day_of_week):
        raise DataError(
            f"site {protocol.site_id}: {panel.source} is weekly data, so the windows must start on Mondays "
            '(ISO weeks); write intervention_start and the period fields as the Monday\'s date, e.g. "2019-01-07"'
        )
    if (w.post_start.month - 1) % step:
        first = ", ".join(f"{m:02d}" for m in range(1, 13, step))
        raise DataError(
            f"site {protocol.site_id}: {panel.source} is {panel.frequency} data, so the start "
            f"({w.post_start:%Y-%m}) must be the first month of a period; use a month ending -{first.replace(', ', ', -')} "
            "for intervention_start (and post_period_start)"
        )
    n_pre = int((in_window <= w.pre_end).sum())
    n_post = int((in_window >= w.post_start).sum())
    if n_post == 0:
        raise NotEvaluable(
            f"no post-period in the data: {label} data run {data_start:%b %Y} to {data_end:%b %Y}, "
            f"and follow-up would be {w.follow_up_text()}"
        )
    word = period_word(panel.frequency)
    if n_pre < protocol.min_pre_periods:
        raise NotEvaluable(
            f"only {plural(n_pre, 'pre-period ' + word)} of {label} in the data (from {data_start:%b %Y}); "
            f"the protocol needs at least {protocol.min_pre_periods}"
        )
    if n_post < protocol.min_post_periods:
        raise NotEvaluable(
            f"only {plural(n_post, word)} of follow-up of {label} in the data (to {data_end:%b %Y}); "
            f"the protocol needs at least {protocol.min_post_periods}"
        )
    expected = pd.date_range(*w.span, freq=_OFFSETS.get(panel.frequency, "MS"))
    missing = tuple(
        p
        for p in expected
        if p not in set(in_window) and data_start <= p <= data_end and not (w.pre_end < p < w.post_start)
    )
    win = values.loc[in_window]
    complete = win.notna().all() & (win > 0).all() if not outcome == "four_hour_performance" else win.notna().all()
    if denom is not None:  # a blank or zero denominator leaves a rate or share undefined in that period
        d = denom.loc[in_window].reindex(columns=win.columns)
        complete &= d.notna().all() & (d > 0).all()
    treated = list(areas.treated) or list(spec.treated_units)
    not_in_data = tuple(u for u in treated if u not in win.columns or win[u].isna().all())
    incomplete = tuple(u for u in treated if u not in not_in_data and not complete.get(u, False))
    used = tuple(u for u in treated if u not in not_in_data and u not in incomplete)
    if not used:
        if len(not_in_data) == len(treated):
            raise NotEvaluable(
                f"none of the site's {units} ({', '.join(treated)}) appear in the {label} data "
                f"between {w.pre_start:%b %Y} and {w.post_end:%b %Y}"
            )
        why = " ".join(areas.stitches)
        raise NotEvaluable(
            f"the site's {units} ({', '.join(treated)}) have incomplete {label} series in the analysis window "
            f"(gaps, zeros, blank denominators or a code that changed after a merger), so no before-and-after comparison is possible"
            + (f". {why}" if why else "")
        )
    excluded: dict[str, int] = {}
    candidates = [u for u in win.columns if u not in treated]
    if protocol.comparison_include:
        include = areas.areas_for(protocol.comparison_include)
        pool = [u for u in candidates if u in include]
        excluded["not in the protocol's include list"] = len(candidates) - len(pool)
    else:
        rule = areas.areas_for(excluded_by_rule(protocol, kind))
        pool = [u for u in candidates if u not in rule]
        excluded[f"other treated sites ({protocol.comparison_pool})"] = len(candidates) - len(pool)
        if protocol.type1_comparators_only and kind == "trust" and panel.source in BUNDLED:
            t1 = type1_trusts()  # ODS flags describe NHS trusts only
            before = len(pool)
            pool = [u for u in pool if any(c in t1 for c in areas.codes(u))]
            excluded["no type-1 (major) A&E department"] = before - len(pool)
    if protocol.comparison_exclude:
        before = len(pool)
        leave_out = areas.areas_for(protocol.comparison_exclude)
        pool = [u for u in pool if u not in leave_out]
        excluded["excluded by the protocol"] = before - len(pool)
    if protocol.design_pool and spec.data_source == protocol.data_source:
        # Chosen at design time among the units the rules admit; other data sources' units keep their own pools.
        # A code that is none of the data's would be dropped without a word: refused, as the batch's pre-run check
        # refuses it, here too for a notebook run on its own.
        problem = design_pool_problem(protocol, pool_codes(set(panel.units), spec.data_source))
        if problem:
            raise ParamsError(problem)
        before = len(pool)
        chosen = areas.areas_for(protocol.design_pool)
        pool = [u for u in pool if u in chosen]
        excluded["not in the pool chosen at design time (design_pool)"] = before - len(pool)
    before = len(pool)
    pool = [u for u in pool if complete.get(u, False)]
    excluded["incomplete data in the window"] = before - len(pool)
    before = len(pool)
    screened = {u: areas.screened[u] for u in pool if u in areas.screened}
    pool = [u for u in pool if u not in screened]
    excluded["data-quality screen (suspect months or a one-month level shift)"] = before - len(pool)
    pre = win.loc[win.index <= w.pre_end]
    before = len(pool)
    pool = [u for u in pool if pre[u].nunique() > 1]  # a constant series has no noise to scale a placebo by
    excluded["no variation before the start (a constant series)"] = before - len(pool)
    if not pool:
        raise NotEvaluable(f"the comparison pool for {label} is empty after applying the protocol's rules")
    if len(pool) < max(MIN_COMPARATORS, len(used) + 1):
        raise NotEvaluable(
            f"only {len(pool)} comparison {units if len(pool) != 1 else unit_kind(spec.data_source)} for {label} "
            f"after applying the protocol's rules; the placebo tests need at least {max(MIN_COMPARATORS, len(used) + 1)}"
        )
    if pre[list(used)].sum(axis=1).nunique() <= 1:
        raise NotEvaluable(
            f"the site's {label} series is the same in every pre-period {word}, so there is no trend or noise to "
            "compare against (check the data)"
        )
    baseline = win.loc[win.index <= w.pre_end, list(used)].iloc[-PERIODS_PER_YEAR.get(panel.frequency, 12) :]
    cov = Coverage(
        outcome=outcome,
        source=panel.source,
        periods=tuple(in_window),
        n_pre=n_pre,
        n_post=n_post,
        missing_periods=missing,
        treated_used=used,
        treated_not_in_data=not_in_data,
        treated_incomplete=incomplete,
        comparators=tuple(sorted(pool)),
        excluded={k: v for k, v in excluded.items() if v},
        baseline_total=float(baseline.to_numpy().sum()) if outcome != "four_hour_performance" else float("nan"),
        unit_kind=kind,
        stitches=areas.stitches,
        imputed=areas.imputed,
        rolled_up=tuple(r for r in areas.rolled_up if r.split(" = ")[0] in set(pool)),
        screened=screened,
        site_breaks=tuple(b.words for b in breaks),
        frequency=panel.frequency,
        breaks=breaks,
        windows=w,
    )
    cols = list(used) + sorted(pool)
    return win[cols], (denom.loc[in_window, cols] if denom is not None else None), cov
