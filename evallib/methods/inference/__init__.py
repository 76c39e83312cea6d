"""Inference shared by the estimator families: placebo-in-space permutation tests and their exact inversion,
test inversion by search, the restricted wild cluster bootstrap, pre-period noise (the studentized test and the
volatility ranking) and the minimum detectable effect of a placebo test.

Imports only :mod:`evallib.methods.base`; no estimator family.
"""
