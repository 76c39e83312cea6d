# Random-effects meta-analysis of four small designs (k = 5, 5, 10, 20) with R metafor: rma.uni with REML or
# DerSimonian-Laird tau^2 and the normal (z) or Hartung-Knapp (knha) test.
#
# Run from the repository root:
#   Rscript tests/reference/metafor/metafor_rma.R > tests/reference/metafor/metafor_rma.json
# Needs: R >= 4.1, metafor (4.6.0 made the stored output), jsonlite (CRAN). It prints JSON in the shape of the stored
# metafor_rma.json: one case per design, method and test, with the fields that tests/test_pooling.py compares.

suppressPackageStartupMessages({
  library(metafor)
  library(jsonlite)
})

small <- read.csv("tests/fixtures/metafor_small_sample.csv")  # case, y (effect), v (sampling variance)
cases <- list()
for (test in c("z", "knha")) {
  for (method in c("DL", "REML")) {
    for (design in unique(small$case)) {
      d <- small[small$case == design, ]
      fit <- rma.uni(yi = y, vi = v, data = d, method = method, test = test)
      cases[[length(cases) + 1]] <- list(
        design = design, method = method, test = test,
        tau2 = fit$tau2, beta = unname(fit$beta[1, 1]), se = fit$se, ci_lb = fit$ci.lb, ci_ub = fit$ci.ub,
        pval = fit$pval, I2 = fit$I2, QE = fit$QE,
        dof = if (test == "knha") fit$k - fit$p else NULL  # the t distribution's degrees of freedom
      )
    }
  }
}
out <- list(
  source = sprintf("R %s, metafor %s: rma.uni(yi = y, vi = v, data = <design>, method = <method>, test = <test>)",
                   getRversion(), packageVersion("metafor")),
  cases = cases
)
cat(toJSON(out, auto_unbox = TRUE, digits = NA, null = "null", pretty = TRUE), "\n")
