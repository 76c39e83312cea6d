"""Reporting: what a reader sees. Report sections and plots derived from evaluation results, disclosure
control of published counts, and the static site.
"""
