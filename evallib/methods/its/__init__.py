"""Interrupted time series family: the segmented regression model and its result, fitted by OLS/Newey-West,
GLS with REML AR(1) errors, ARIMA errors or Poisson, and the controlled ITS with every comparison unit as a placebo.

Imports the base and inference only, never another family.
"""
