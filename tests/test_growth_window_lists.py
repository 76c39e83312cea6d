"""NHS England's growth comparisons take their windows as any pair, a list included (as read from JSON or YAML).

The bundled data's set-ups are cached by window (``growth._bundled``); a window given as a list must still be
accepted, as it was before the cache, and give the same figures as the same window given as a tuple.
"""

from __future__ import annotations

from evallib.evaluation.studies import growth


def test_windows_given_as_lists_give_the_same_growth_as_tuples() -> None:
    as_tuples = growth.programme_growth(("2014-04", "2015-03"), ("2016-10", "2017-09"))
    as_lists = growth.programme_growth(["2014-04", "2015-03"], ["2016-10", "2017-09"])  # type: ignore[arg-type]
    assert as_lists.equals(as_tuples)
    sites = growth.site_growth(["2014-04", "2015-03"], ["2016-10", "2017-09"])  # type: ignore[arg-type]
    assert sites.equals(growth.site_growth(("2014-04", "2015-03"), ("2016-10", "2017-09")))
