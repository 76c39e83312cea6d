# mpdta (Callaway & Sant'Anna 2021): group-time ATTs and their four aggregations with R did.
#
# Run from the repository root:
#   Rscript tests/reference/mpdta/did_mpdta.R > tests/reference/mpdta/did_mpdta.out
# Needs: R >= 4.1, did (CRAN). It prints "name = value" lines at the precision the tests use; the stored
# did_mpdta.out holds the published numbers (see its header), and csdid_mpdta.py recomputes them with csdid.

suppressPackageStartupMessages(library(did))

mpdta <- read.csv("tests/fixtures/mpdta.csv", check.names = FALSE)  # keeps the column name first.treat
say <- function(name, value, digits) cat(sprintf("%s = %.*f\n", name, digits, as.numeric(value)))
cat(sprintf("# R %s, did %s\n", getRversion(), packageVersion("did")))

for (control in c("nevertreated", "notyettreated")) {
  name <- c(nevertreated = "never_treated", notyettreated = "not_yet_treated")[[control]]
  # Doubly robust, no covariates, varying base period (the defaults), analytic standard errors (no bootstrap).
  gt <- att_gt(
    yname = "lemp", tname = "year", idname = "countyreal", gname = "first.treat", xformla = ~1,
    data = mpdta, control_group = control, est_method = "dr", base_period = "varying",
    bstrap = FALSE, cband = FALSE
  )
  for (kind in c("simple", "group", "dynamic", "calendar")) {
    agg <- aggte(gt, type = kind, bstrap = FALSE, cband = FALSE)
    say(sprintf("%s.%s.estimate", name, kind), agg$overall.att, 6)
    say(sprintf("%s.%s.std_error", name, kind), agg$overall.se, 6)
    # The components the did README prints (there with est_method = "reg", the same numbers without covariates).
    if (control == "nevertreated" && kind %in% c("group", "dynamic")) {
      for (i in seq_along(agg$egt)) say(sprintf("%s.%s.%d.estimate", name, kind, agg$egt[i]), agg$att.egt[i], 4)
    }
  }
  if (control == "nevertreated") {
    first <- which(gt$group == 2004 & gt$t == 2004)
    say("never_treated.att_gt.2004.2004", gt$att[first], 4)
  }
}
