# California Proposition 99 (Abadie, Diamond & Hainmueller 2010 data): the synthetic difference-in-differences
# estimate of Arkhangelsky, Athey, Hirshberg, Imbens & Wager (2021, AER 111:4088-4118, Table 1) with R synthdid,
# and the unit and time weights its summary() lists.
#
# Run from the repository root:
#   Rscript tests/reference/prop99/synthdid_prop99.R > tests/reference/prop99/synthdid_prop99.out
# Needs: R >= 4.1, synthdid 0.0.9 (github synth-inference/synthdid). It prints "name = value" lines at the precision
# the tests use; the stored synthdid_prop99.out holds the published numbers (see its header), and
# synthdid_py_prop99.py recomputes them with synthdid-py.

suppressPackageStartupMessages(library(synthdid))

prop99 <- read.csv("tests/fixtures/california_prop99.csv")  # State, Year, PacksPerCapita, treated
say <- function(name, value, digits) cat(sprintf("%s = %.*f\n", name, digits, as.numeric(value)))
cat(sprintf("# R %s, synthdid %s\n", getRversion(), packageVersion("synthdid")))

# Columns in the order panel.matrices expects: unit, time, outcome, treatment.
setup <- panel.matrices(prop99[, c("State", "Year", "PacksPerCapita", "treated")])
# The package defaults: eta.omega = (N1 T1)^(1/4), eta.lambda = 1e-6, intercepts, sparsify, Frank-Wolfe.
tau_hat <- synthdid_estimate(setup$Y, setup$N0, setup$T0)
say("estimate", c(tau_hat), 5)

# The tables summary(tau_hat) prints as $controls and $periods (the units and pre-periods carrying 90% of the weight),
# without summary's bootstrap standard error (NA with one treated unit).
omega <- synthdid_controls(tau_hat, weight.type = "omega")
omega <- setNames(omega[, 1], rownames(omega))
for (state in names(sort(omega, decreasing = TRUE))[1:5]) say(paste0("omega.", state), omega[[state]], 3)
lambda <- synthdid_controls(tau_hat, weight.type = "lambda")
lambda <- setNames(lambda[, 1], rownames(lambda))
for (year in sort(names(lambda))) say(paste0("lambda.", year), lambda[[year]], 3)
