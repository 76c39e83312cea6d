# Organ donations (Kessler & Roth 2014), the example of Huntington-Klein, "The Effect" (2021), chapter 18:
# two-way fixed-effects DiD, its event study and the placebo-in-space p-value, with R fixest.
#
# Run from the repository root:
#   Rscript tests/reference/organ_donations/fixest_organ_donations.R > tests/reference/organ_donations/fixest_organ_donations.out
# Needs: R >= 4.1, fixest (CRAN). It prints "name = value" lines at the precision the tests use; the stored
# fixest_organ_donations.out holds the published numbers (see its header), and pyfixest_organ_donations.py
# recomputes them with pyfixest.

suppressPackageStartupMessages(library(fixest))

od <- read.csv("tests/fixtures/organ_donations.csv")
od$california <- as.integer(od$State == "California")
od$treated <- od$california * as.integer(od$Quarter_Num >= 4)  # California from 2011 Q3 (quarter 4)
say <- function(name, value, digits) cat(sprintf("%s = %.*f\n", name, digits, as.numeric(value)))
cat(sprintf("# R %s, fixest %s\n", getRversion(), packageVersion("fixest")))

# TWFE DiD, state and quarter fixed effects, standard errors clustered by state. fixest's default small-sample
# correction (CR1: G/(G-1) x (n-1)/(n-K), K not counting the state effects nested in the clusters).
twfe <- feols(Rate ~ treated | State + Quarter_Num, data = od, cluster = ~State)
ct <- coeftable(twfe)
say("twfe.estimate", ct["treated", "Estimate"], 6)
say("twfe.std_error", ct["treated", "Std. Error"], 6)
say("twfe.p_value", ct["treated", "Pr(>|t|)"], 4)  # t with G - 1 = 26 degrees of freedom

# Event study: one coefficient per quarter for California, quarter 3 (the last before treatment) the reference.
es <- feols(Rate ~ i(Quarter_Num, california, ref = 3) | State + Quarter_Num, data = od, cluster = ~State)
for (q in c(1, 2, 4, 5, 6)) {
  say(sprintf("event.q%d.estimate", q), coef(es)[[sprintf("Quarter_Num::%d:california", q)]], 5)
}

# Placebo in space: each state in turn as the treated one (California included), the same TWFE fit; the
# two-sided rank p-value is the share of states whose |estimate| is at least California's.
states <- sort(unique(od$State))
placebo <- vapply(states, function(s) {
  fake <- od
  fake$treated <- as.integer(fake$State == s) * as.integer(fake$Quarter_Num >= 4)
  unname(coef(feols(Rate ~ treated | State + Quarter_Num, data = fake))["treated"])
}, numeric(1))
as_extreme <- sum(abs(placebo) >= abs(placebo[["California"]]) - 1e-12)
say("placebo.n_states", length(states), 0)
say("placebo.n_as_extreme", as_extreme, 0)
say("placebo.p_value", as_extreme / length(states), 3)
