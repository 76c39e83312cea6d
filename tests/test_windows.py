"""The protocol's windows are one typed, frozen value read by name, never a dictionary of string keys."""

from __future__ import annotations

import dataclasses
import re

import pandas as pd
import pytest

from evallib.protocol.params import load_params
from evallib.protocol.windows import Windows

from .conftest import ROOT

pytestmark = pytest.mark.unit

T = pd.Timestamp
W = Windows(T("2013-04-01"), T("2016-03-01"), T("2016-06-01"), T("2019-03-01"))


def test_windows_are_frozen_and_named() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        W.pre_end = T("2016-04-01")  # type: ignore[misc]
    assert W.span == (T("2013-04-01"), T("2019-03-01"))
    assert W.pre_months == 36
    assert W.pre_text() == "Apr 2013 to Mar 2016" and W.follow_up_text() == "Jun 2016 to Mar 2019"


def test_within_leaves_out_the_gap_between_the_pre_period_and_the_follow_up() -> None:
    months = pd.date_range("2013-01-01", "2019-06-01", freq="MS")
    inside = months[W.within(months)]
    assert inside[0] == W.pre_start and inside[-1] == W.post_end
    assert not any(W.pre_end < m < W.post_start for m in inside)
    assert len(inside) == 36 + 34


def test_follow_up_overlap_is_half_open() -> None:
    assert W.follow_up_overlaps(T("2019-03-01"), T("2021-01-01"))
    assert not W.follow_up_overlaps(T("2019-04-01"), T("2021-01-01"))
    assert not W.follow_up_overlaps(T("2010-01-01"), T("2016-06-01"))


def test_windows_group_and_sort_as_their_dates() -> None:
    later = dataclasses.replace(W, post_end=T("2019-06-01"))
    assert sorted([later, W]) == [W, later] and len({W, dataclasses.replace(W)}) == 1


def test_a_protocol_gives_its_windows_and_the_follow_up_starts_at_the_intervention_by_default() -> None:
    p = load_params(ROOT / "params" / "vanguards" / "V01.yaml")
    w = p.windows
    assert isinstance(w, Windows)
    assert w.post_start == T(p.post_period_start or p.intervention_start) and w.pre_start == T(p.pre_period_start)


def test_no_module_reads_windows_by_string_key() -> None:
    keys = re.compile(r"""\[\s*["'](pre_start|pre_end|post_start|post_end)["']\s*\]""")
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in sorted((ROOT / "evallib").rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if keys.search(line)
    ]
    assert offenders == []
