# Sicily smoking ban and acute coronary events, 2002-2006 (Lopez Bernal, Cummins & Gasparrini 2017, "Interrupted
# time series regression for the evaluation of public health interventions: a tutorial", Int J Epidemiol 46:348-355):
# the tutorial's Poisson, quasi-Poisson, seasonally adjusted and slope-change models, with a Ljung-Box check.
#
# Run from the repository root:
#   Rscript tests/reference/sicily/bernal2017_sicily.R > tests/reference/sicily/bernal2017_sicily.out
# Needs: R >= 4.1, tsModel (harmonic) and Epi (ci.exp), both CRAN. It prints "name = value" lines at the precision
# the tests use; the stored bernal2017_sicily.out holds the published numbers (see its header), and
# statsmodels_sicily.py recomputes them with statsmodels.

suppressPackageStartupMessages({
  library(tsModel)
  library(Epi)
})

sicily <- read.csv("tests/fixtures/sicily.csv")  # aces = monthly count, smokban = 1 from month 37 (January 2005)
say <- function(name, value, digits) cat(sprintf("%s = %.*f\n", name, digits, as.numeric(value)))
ratio <- function(name, fit, term, digits = 4) {
  ci <- ci.exp(fit)[term, ]  # exp of the estimate and its Wald 95% interval (normal quantile)
  say(paste0(name, ".rate_ratio"), ci[[1]], digits)
  say(paste0(name, ".ci_low"), ci[[2]], digits)
  say(paste0(name, ".ci_high"), ci[[3]], digits)
}
cat(sprintf("# R %s, tsModel %s, Epi %s\n", getRversion(), packageVersion("tsModel"), packageVersion("Epi")))

# Step change on a linear trend, the age-standardised population as the exposure.
poisson <- glm(aces ~ smokban + time + offset(log(stdpop)), family = poisson, data = sicily)
ratio("poisson", poisson, "smokban")

# The same with overdispersion: quasi-Poisson (Pearson dispersion).
quasi <- glm(aces ~ smokban + time + offset(log(stdpop)), family = quasipoisson, data = sicily)
ratio("quasipoisson", quasi, "smokban")
say("quasipoisson.dispersion", summary(quasi)$dispersion, 3)

# Seasonality: two sine-cosine pairs of period 12 months.
harmonic_fit <- glm(
  aces ~ smokban + time + harmonic(month, 2, 12) + offset(log(stdpop)),
  family = quasipoisson, data = sicily
)
ratio("harmonic", harmonic_fit, "smokban")
say("harmonic.dispersion", summary(harmonic_fit)$dispersion, 3)
say("harmonic.trend_per_year", exp(12 * coef(harmonic_fit)[["time"]]), 4)  # underlying trend, rate ratio per year
lb <- Box.test(residuals(harmonic_fit, type = "deviance"), lag = 12, type = "Ljung-Box")
say("harmonic.ljung_box_lags", 12, 0)
say("harmonic.ljung_box_p", lb$p.value, 4)

# A change in slope as well, time since the ban counted from 1 in its first month.
sicily$since <- (sicily$time - 36) * sicily$smokban
slope_fit <- glm(
  aces ~ smokban + time + since + harmonic(month, 2, 12) + offset(log(stdpop)),
  family = quasipoisson, data = sicily
)
ratio("slope_change.step", slope_fit, "smokban")
ratio("slope_change.slope", slope_fit, "since", digits = 5)
