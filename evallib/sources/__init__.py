"""Sources: loading and validating outcome data into one canonical panel, the bundled NHS England data
and the site registry. Depends on nothing else in evallib but its errors."""
