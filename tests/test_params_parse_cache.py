"""Params files parsed once per process (``protocol/safe_yaml.py``): the same bytes give an equal value each time,
never one shared with an earlier caller, and a refused file is refused every time it is read.
"""

from __future__ import annotations

import pytest

from evallib.errors import ParamsError
from evallib.protocol.safe_yaml import parse_params_text

pytestmark = pytest.mark.unit

TEXT = b"site_id: V04\nsite_name: A site\ncomparison:\n  exclude: [E38000001]\n"


def test_the_same_bytes_give_equal_values_that_share_nothing() -> None:
    first = parse_params_text(TEXT, "a.yaml")
    first["comparison"]["exclude"].append("changed by a caller")
    first["site_id"] = "V99"
    second = parse_params_text(TEXT, "b.yaml")
    assert second == {"site_id": "V04", "site_name": "A site", "comparison": {"exclude": ["E38000001"]}}
    assert second["comparison"] is not first["comparison"]


def test_a_refused_file_is_refused_each_time_with_its_own_name() -> None:
    bad = b"a: &x 1\nb: *x\n"
    for name in ("one.yaml", "two.yaml"):
        with pytest.raises(ParamsError, match=f"^{name}: the params file uses a YAML anchor"):
            parse_params_text(bad, name)
