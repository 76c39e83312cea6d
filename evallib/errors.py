"""Domain exceptions raised at evallib's boundaries.

Every message names what is wrong (the site, file, field or column), shows the
offending rows or values where there are any, and says how to fix it.
"""

from __future__ import annotations


class EvalLibError(Exception):
    """Base class for every error evallib raises on purpose."""


class DataError(EvalLibError, ValueError):
    """Input data cannot be used: missing columns, duplicates, bad counts, gaps."""


class ParamsError(EvalLibError, ValueError):
    """A params file (a site's analysis protocol) is invalid."""


class NotEvaluable(EvalLibError):
    """A valid protocol that the data cannot support (no trust in the data, no
    post-period, follow-up overlapping COVID-19). Reports show the reason; it is
    an outcome of the evaluation, not a crash.
    """


class ExecutionError(EvalLibError, RuntimeError):
    """A site notebook failed to execute (cell error or dead kernel)."""
