"""Evaluation: one site's analysis, split by job (coverage and comparison pools, the analysis of an
outcome, robustness and its verdict, ICS waves, provenance and the results file), and the programme view
across sites.
"""
