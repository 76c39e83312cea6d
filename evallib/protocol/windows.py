"""A protocol's analysis windows: the pre-period and the follow-up, as one typed, frozen value.

:attr:`SiteProtocol.windows <evallib.protocol.params.SiteProtocol.windows>` builds it from the params file's
month fields; every analysis reads its four dates by name (``w.pre_end``), never by string key.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd


@dataclass(frozen=True, order=True)
class Windows:
    """The pre-period ``pre_start``..``pre_end`` and the follow-up ``post_start``..``post_end`` (first days of
    months, or the Mondays of ISO weeks for weekly data; both ends included).

    Ordered and hashable as the tuple of its four dates, so designs that share their windows group together.
    """

    pre_start: pd.Timestamp
    pre_end: pd.Timestamp
    post_start: pd.Timestamp
    post_end: pd.Timestamp

    @property
    def span(self) -> tuple[pd.Timestamp, pd.Timestamp]:
        """The first and last month the analysis reads: the start of the pre-period, the end of the follow-up."""
        return self.pre_start, self.post_end

    @property
    def pre_months(self) -> int:
        """Calendar months in the pre-period, both ends counted."""
        return (self.pre_end.year - self.pre_start.year) * 12 + self.pre_end.month - self.pre_start.month + 1

    def pre_periods(self, frequency: str = "monthly") -> int:
        """Periods in the pre-period at the data's frequency, both ends counted (weeks for weekly data)."""
        if frequency == "weekly":
            return (self.pre_end - self.pre_start).days // 7 + 1
        return self.pre_months // {"quarterly": 3, "yearly": 12}.get(frequency, 1)

    def _text(self, ts: pd.Timestamp) -> str:
        """Months read "Apr 2016"; weekly windows (dates that are not all firsts of months) read "7 Jan 2019"."""
        days = (self.pre_start.day, self.pre_end.day, self.post_start.day, self.post_end.day)
        return f"{ts:%b %Y}" if days == (1, 1, 1, 1) else f"{ts.day} {ts:%b %Y}"

    def within(self, periods: pd.Index) -> np.ndarray:
        """Which of ``periods`` fall in the pre-period or the follow-up (the gap between them is left out)."""
        pre = (periods >= self.pre_start) & (periods <= self.pre_end)
        post = (periods >= self.post_start) & (periods <= self.post_end)
        return np.asarray(pre | post)

    def follow_up_overlaps(self, start: pd.Timestamp, end: pd.Timestamp) -> bool:
        """Whether the follow-up shares a month with ``start`` up to (not including) ``end``."""
        return bool(self.post_end >= start and self.post_start < end)

    def pre_text(self) -> str:
        """The pre-period in words: ``Apr 2013 to Mar 2016`` (weekly: ``7 Jan 2019 to 30 Dec 2019``)."""
        return f"{self._text(self.pre_start)} to {self._text(self.pre_end)}"

    def follow_up_text(self) -> str:
        """The follow-up in words: ``Apr 2016 to Mar 2019``."""
        return f"{self._text(self.post_start)} to {self._text(self.post_end)}"


def period_label(ts: pd.Timestamp, frequency: str = "monthly") -> str:
    """A window date as a params file writes it: "2016-04", or for weekly data the Monday "2019-01-07"."""
    return f"{ts:%Y-%m-%d}" if frequency == "weekly" else f"{ts:%Y-%m}"


def period_text(ts: pd.Timestamp, frequency: str = "monthly") -> str:
    """A period in words: "Apr 2016", or for weekly data its Monday, "7 Jan 2019"."""
    return f"{ts.day} {ts:%b %Y}" if frequency == "weekly" else f"{ts:%b %Y}"


def in_period(ts: pd.Timestamp, frequency: str = "monthly") -> str:
    """When something happened, in words: ``in Apr 2017``, or for weekly data ``in the week of 3 Apr 2017``."""
    return f"in the week of {period_text(ts, frequency)}" if frequency == "weekly" else f"in {ts:%b %Y}"
