"""evallib: difference-in-differences and interrupted time series for NHS new care model evaluations."""

from __future__ import annotations

__version__ = "0.1.0"

from evallib.errors import DataError, EvalLibError, NotEvaluable, ParamsError  # noqa: E402
from evallib.params import SiteProtocol, load_params  # noqa: E402

__all__ = ["DataError", "EvalLibError", "NotEvaluable", "ParamsError", "SiteProtocol", "load_params", "__version__"]
