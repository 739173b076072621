"""Cluster mass functions fitted by maximum likelihood (thesis §4.3.2, Fig. 4.6a).

The model is dN/dM ∝ M^β exp(−M/M*) on [M_lo, M_hi], M in M☉: M_lo the completeness
limit (below it the catalog is visibility-limited, thesis Fig. 4.5a), M_hi the top of
the network's mass range (it cannot derive larger masses). Three fits share one
likelihood, each a constrained version of the same model:

* :func:`fit_schechter_mstar` — β fixed (the thesis' −2), M* free: the thesis' curves;
* :func:`fit_power_law` — M* = ∞, β free: the slope alone;
* :func:`fit_schechter` — β and M* both free.

The normalised density is p(M) = M^β exp(−M/M*) / Z with Z = ∫ over [M_lo, M_hi]
(:func:`normalisation`, by quadrature in ln M). Uncertainties are profile-likelihood
intervals, −ln L within 0.5 of its minimum (68 % for one parameter): asymmetric, and
open-ended where the data do not bound a parameter (a Schechter mass far above the
largest cluster is indistinguishable from ∞, so its upper end is then ``inf``).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import scipy.integrate
import scipy.optimize

#: The thesis' Schechter slope (Fig. 4.6a: dN/dM = A M^−2 exp(−M/M*)).
THESIS_SLOPE = -2.0
#: Search ranges of the fits: slope β, and log10(M*/M☉) above the fitted range's top.
SLOPE_RANGE = (-5.0, 1.0)
LOG_MSTAR_MAX = 9.0
#: Rise of −ln L that bounds a one-parameter 68 % interval.
DELTA_NLL_1SIGMA = 0.5


def normalisation(slope: float, mstar_msun: float, mass_lo_msun: float, mass_hi_msun: float):
    """Z = ∫ M^β exp(−M/M*) dM over [M_lo, M_hi] (M☉^(β+1)); M* = inf is the power law."""
    lo, hi = math.log(mass_lo_msun), math.log(mass_hi_msun)
    if math.isinf(mstar_msun):
        p = slope + 1.0
        return hi - lo if abs(p) < 1e-12 else (math.exp(p * hi) - math.exp(p * lo)) / p

    # dM = M d ln M: integrate M^(β+1) exp(−M/M*) in x = ln M, smooth on the whole range
    def integrand(x):
        return math.exp((slope + 1.0) * x - math.exp(x) / mstar_msun)

    return scipy.integrate.quad(integrand, lo, hi, epsabs=0.0, epsrel=1e-10, limit=200)[0]


def negative_log_likelihood(
    mass_msun: np.ndarray, slope: float, mstar_msun: float, mass_lo_msun: float, mass_hi_msun: float
) -> float:
    """−ln L of masses (n,) M☉ (all within [M_lo, M_hi]) under dN/dM ∝ M^β exp(−M/M*)."""
    m = np.asarray(mass_msun, float)
    z = normalisation(slope, mstar_msun, mass_lo_msun, mass_hi_msun)
    if not z > 0:
        return math.inf
    cutoff = 0.0 if math.isinf(mstar_msun) else float(m.sum()) / mstar_msun
    return -(slope * float(np.log(m).sum()) - cutoff) + m.size * math.log(z)


@dataclass(frozen=True)
class MassFunctionFit:
    """One maximum-likelihood fit of dN/dM ∝ M^β exp(−M/M*).

    slope β and log_mstar_msun = log10(M*/M☉) (inf for the pure power law) with their
    68 % profile-likelihood bounds (``*_lo``, ``*_hi``; equal to the value where the
    parameter was fixed, ±inf where the data do not bound it); n clusters in
    [10^log_mass_lo, 10^log_mass_hi] M☉; nll the minimum of −ln L.
    """

    model: str
    n: int
    log_mass_lo_msun: float
    log_mass_hi_msun: float
    slope: float
    slope_lo: float
    slope_hi: float
    log_mstar_msun: float
    log_mstar_lo_msun: float
    log_mstar_hi_msun: float
    nll: float

    @property
    def slope_err(self) -> float:
        """Half width of the slope's 68 % interval (nan if unbounded or fixed)."""
        width = 0.5 * (self.slope_hi - self.slope_lo)
        return width if np.isfinite(width) and width > 0 else math.nan

    @property
    def log_mstar_err(self) -> float:
        """Half width of log10 M*'s 68 % interval (nan if unbounded or fixed)."""
        width = 0.5 * (self.log_mstar_hi_msun - self.log_mstar_lo_msun)
        return width if np.isfinite(width) and width > 0 else math.nan

    def expected_counts(self, log_mass_edges_msun: np.ndarray) -> np.ndarray:
        """Expected clusters per bin (len(edges) − 1,) for n clusters in the fitted range,
        zero outside it: n × ∫_bin p(M) dM."""
        edges = np.clip(np.asarray(log_mass_edges_msun, float), self.log_mass_lo_msun, None)
        edges = np.clip(edges, None, self.log_mass_hi_msun)
        if self.n == 0 or not np.isfinite(self.slope) or np.isnan(self.log_mstar_msun):
            return np.zeros(len(edges) - 1)
        mstar = 10.0**self.log_mstar_msun
        lo, hi = 10.0**self.log_mass_lo_msun, 10.0**self.log_mass_hi_msun
        total = normalisation(self.slope, mstar, lo, hi)
        out = [
            normalisation(self.slope, mstar, 10.0**a, 10.0**b) / total if b > a else 0.0
            for a, b in zip(edges[:-1], edges[1:], strict=True)
        ]
        return self.n * np.asarray(out)

    def to_dict(self) -> dict:
        return {**asdict(self), "slope_err": self.slope_err, "log_mstar_err": self.log_mstar_err}


def _in_range(log_mass_msun, log_mass_lo_msun: float, log_mass_hi_msun: float) -> np.ndarray:
    """Masses M☉ of the finite log masses within [lo, hi]."""
    if not log_mass_lo_msun < log_mass_hi_msun:
        raise ValueError(
            f"the fitted mass range needs lo < hi, got {log_mass_lo_msun}, {log_mass_hi_msun}"
        )
    x = np.asarray(log_mass_msun, float)
    x = x[np.isfinite(x) & (x >= log_mass_lo_msun) & (x <= log_mass_hi_msun)]
    return 10.0**x


def _empty(model: str, n: int, lo: float, hi: float, slope: float, log_mstar: float):
    """A fit with too few clusters: the fixed values kept, the free ones NaN."""
    nan = math.nan
    return MassFunctionFit(model, n, lo, hi, slope, slope, slope, log_mstar, nan, nan, nan)


def unfitted(
    model: str, log_mass_lo_msun: float, log_mass_hi_msun: float, slope: float = THESIS_SLOPE
) -> MassFunctionFit:
    """The fit of ``model`` ("schechter", "schechter_fixed_slope" at ``slope``, "power_law")
    to no clusters — for a sample without a usable mass range (e.g. a completeness limit
    that is never reached, lo NaN): n 0, the fixed values kept, the free ones NaN."""
    fixed = {
        "schechter": (math.nan, math.nan),
        "schechter_fixed_slope": (slope, math.nan),
        "power_law": (math.nan, math.inf),
    }
    if model not in fixed:
        raise ValueError(f"model must be one of {sorted(fixed)}, got {model!r}")
    return _empty(model, 0, log_mass_lo_msun, log_mass_hi_msun, *fixed[model])


def _interval(profile, best_x: float, best_nll: float, lo: float, hi: float):
    """Where profile(x) rises DELTA_NLL_1SIGMA above best_nll on each side of best_x, searched
    within [lo, hi]; ±inf on a side where it does not rise that far."""
    target = best_nll + DELTA_NLL_1SIGMA

    def side(edge):
        if edge == best_x or profile(edge) < target:
            return -math.inf if edge < best_x else math.inf
        return scipy.optimize.brentq(lambda x: profile(x) - target, *sorted((best_x, edge)))

    return side(lo), side(hi)


def _minimise(profile, lo: float, hi: float) -> tuple[float, float]:
    """(x, profile(x)) at the minimum of a 1-D profile on [lo, hi] (bounded Brent)."""
    res = scipy.optimize.minimize_scalar(profile, bounds=(lo, hi), method="bounded")
    x = float(res.x)
    # a minimum on the boundary (M* → ∞): Brent's bounded search stops just short of it
    for edge in (lo, hi):
        if profile(edge) <= res.fun:
            x = edge
    return x, float(profile(x))


def fit_schechter_mstar(
    log_mass_msun,
    log_mass_lo_msun: float,
    log_mass_hi_msun: float,
    slope: float = THESIS_SLOPE,
) -> MassFunctionFit:
    """M* of dN/dM ∝ M^slope exp(−M/M*) with the slope fixed, for the clusters with
    log10(M/M☉) in [lo, hi] (the others, and NaNs, are left out).

    Searched over log10 M* from lo − 1 to :data:`LOG_MSTAR_MAX`; log_mstar_hi_msun is inf
    when the likelihood stays within 0.5 of its minimum up to there (no cutoff seen).
    """
    m = _in_range(log_mass_msun, log_mass_lo_msun, log_mass_hi_msun)
    lo, hi = 10.0**log_mass_lo_msun, 10.0**log_mass_hi_msun
    if m.size < 2:
        return _empty(
            "schechter_fixed_slope", m.size, log_mass_lo_msun, log_mass_hi_msun, slope, math.nan
        )

    def profile(log_mstar):
        return negative_log_likelihood(m, slope, 10.0**log_mstar, lo, hi)

    bounds = (log_mass_lo_msun - 1.0, LOG_MSTAR_MAX)
    best, nll = _minimise(profile, *bounds)
    low, high = _interval(profile, best, nll, *bounds)
    return MassFunctionFit(
        "schechter_fixed_slope",
        int(m.size),
        log_mass_lo_msun,
        log_mass_hi_msun,
        slope,
        slope,
        slope,
        best,
        low,
        high,
        nll,
    )


def fit_power_law(log_mass_msun, log_mass_lo_msun: float, log_mass_hi_msun: float):
    """Slope β of dN/dM ∝ M^β (no cutoff) for the clusters with log10(M/M☉) in [lo, hi]."""
    m = _in_range(log_mass_msun, log_mass_lo_msun, log_mass_hi_msun)
    lo, hi = 10.0**log_mass_lo_msun, 10.0**log_mass_hi_msun
    if m.size < 2:
        return _empty("power_law", m.size, log_mass_lo_msun, log_mass_hi_msun, math.nan, math.inf)

    def profile(beta):
        return negative_log_likelihood(m, beta, math.inf, lo, hi)

    best, nll = _minimise(profile, *SLOPE_RANGE)
    low, high = _interval(profile, best, nll, *SLOPE_RANGE)
    return MassFunctionFit(
        "power_law",
        int(m.size),
        log_mass_lo_msun,
        log_mass_hi_msun,
        best,
        low,
        high,
        math.inf,
        math.inf,
        math.inf,
        nll,
    )


def fit_schechter(log_mass_msun, log_mass_lo_msun: float, log_mass_hi_msun: float):
    """Slope β and M* of dN/dM ∝ M^β exp(−M/M*), both free, for log10(M/M☉) in [lo, hi].

    The slope's interval is that of its profile likelihood (−ln L minimised over M* at
    each β); M*'s is that of M* alone at the best slope (a conditional interval: narrower
    than the profile's where the two are correlated).
    """
    m = _in_range(log_mass_msun, log_mass_lo_msun, log_mass_hi_msun)
    if m.size < 3:
        return _empty("schechter", m.size, log_mass_lo_msun, log_mass_hi_msun, math.nan, math.nan)

    def profile(beta):
        return fit_schechter_mstar(np.log10(m), log_mass_lo_msun, log_mass_hi_msun, beta).nll

    best, nll = _minimise(profile, *SLOPE_RANGE)
    low, high = _interval(profile, best, nll, *SLOPE_RANGE)
    at_best = fit_schechter_mstar(np.log10(m), log_mass_lo_msun, log_mass_hi_msun, best)
    return MassFunctionFit(
        "schechter",
        int(m.size),
        log_mass_lo_msun,
        log_mass_hi_msun,
        best,
        low,
        high,
        at_best.log_mstar_msun,
        at_best.log_mstar_lo_msun,
        at_best.log_mstar_hi_msun,
        nll,
    )


def equivalent_power_law_slope(
    slope: float, mstar_msun: float, log_mass_lo_msun: float, log_mass_hi_msun: float
) -> float:
    """The slope a power-law fit converges to for clusters drawn from dN/dM ∝ M^slope
    exp(−M/M*) on [lo, hi]: the truncated power law with the same mean ln M (the
    maximum-likelihood condition), i.e. what :func:`fit_power_law` should find on a large
    sample of an injected Schechter function."""
    lo, hi = 10.0**log_mass_lo_msun, 10.0**log_mass_hi_msun

    def mean_log(beta, mstar):
        def weight(x):
            cut = 0.0 if math.isinf(mstar) else math.exp(x) / mstar
            return math.exp((beta + 1.0) * x - cut)

        a, b = math.log(lo), math.log(hi)
        num = scipy.integrate.quad(lambda x: x * weight(x), a, b, epsrel=1e-10)[0]
        return num / scipy.integrate.quad(weight, a, b, epsrel=1e-10)[0]

    target = mean_log(slope, mstar_msun)
    return float(
        scipy.optimize.brentq(lambda beta: mean_log(beta, math.inf) - target, *SLOPE_RANGE)
    )
