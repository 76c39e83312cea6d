"""Sources: loading and validating outcome data into one canonical panel, the bundled NHS England data
and the site registry; areas stable over an analysis window (codes stitched across mergers) and the rules
for months and units the data cannot be trusted for. Depends on nothing else in evallib but its errors.
"""
