"""Population fits with the detection probability in the likelihood
(starclusters.analysis.population_fit).

Simulated catalogs with a completeness that depends on mass, age and a per-cluster
A_V-like nuisance: over many seeds the fits recover β, log M* and γ within their errors,
with and without scatter of the derived values; ignoring the completeness is badly
biased (the tests can fail); the density is normalised on its selected region; the
sample cut, expected counts, derived completeness limits and input checks.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from starclusters.analysis import population_fit as pf

TRUTH = {"slope": -2.0, "log_mstar_msun": 5.0, "age_index": -0.9}
MASS_RANGE = (3.0, 5.5)  # log10 M☉ of the intrinsic population
AGE_RANGE = (6.6, 10.1)  # log10 yr
# grids that hold the derived values: the population's box, and wider with scatter
GRID = (np.linspace(3.0, 5.5, 51), np.linspace(6.6, 10.1, 36))
KERNEL = (0.15, 0.3)  # σ of derived log mass, log age (dex)
KERNEL_GRID = (np.linspace(2.55, 5.95, 69), np.linspace(5.9, 10.85, 34))
N_DRAWN = 10_000  # drawn per catalog: ~800 detected


def completeness(log_mass_msun, log_age_yr, a_v):
    """Logistic in log M (0.1 dex wide, at most 0.95) with its 50 % point at
    3.2 + 0.4 (log t − 6.6) + 0.4 A_V: rising 0.4 dex per dex of age, and per cluster."""
    m50 = 3.2 + 0.4 * (log_age_yr - 6.6) + 0.4 * a_v
    return 0.95 / (1.0 + np.exp(-(log_mass_msun - m50) / 0.1))


def catalog(seed, grid=GRID, sigma=(0.0, 0.0), log_mstar_msun=TRUTH["log_mstar_msun"]):
    """Derived log masses, log ages (N,) of the detected clusters and their completeness
    on the grid (N, n_mass, n_age), each with its own A_V."""
    rng = np.random.default_rng(seed)
    a_v = rng.uniform(0.0, 1.0, N_DRAWN)
    cat = pf.simulate_catalog(
        N_DRAWN,
        TRUTH["slope"],
        log_mstar_msun,
        TRUTH["age_index"],
        lambda m, t: completeness(m, t, a_v),
        rng,
        MASS_RANGE,
        AGE_RANGE,
        *sigma,
    )
    det = cat["detected"].to_numpy()
    x, y = grid
    c = completeness(x[None, :, None], y[None, None, :], a_v[det][:, None, None])
    return cat["log_mass_msun"].to_numpy()[det], cat["log_age_yr"].to_numpy()[det], c


def fit(sample, grid=GRID, sigma=(0.0, 0.0), **kw):
    m, t, c = sample
    return pf.fit_population(
        m,
        t,
        c,
        *grid,
        sigma_log_mass=sigma[0],
        sigma_log_age=sigma[1],
        mass_range=MASS_RANGE,
        age_range=AGE_RANGE,
        **kw,
    )


def pulls(fits, name, truth):
    """(truth − estimate) / error on the truth's side, for the fits that bound it."""
    base = name.replace("_msun", "")
    out = []
    for f in fits:
        est = getattr(f, name)
        err = getattr(f, base + ("_err_hi" if truth > est else "_err_lo"))
        if math.isfinite(getattr(f, base + "_err_lo")) and math.isfinite(
            getattr(f, base + "_err_hi")
        ):
            out.append((truth - est) / err)
    return np.array(out)


def assert_recovers(fits, names, min_within_2sigma=0.85, bias_allowed=0.0):
    """Each parameter within 2σ of the truth in most fits, and its mean bias small: the
    mean pull within bias_allowed + 3/√n of 0 (its spread without bias is ≤ 1/√n)."""
    for name in names:
        p = pulls(fits, name, TRUTH[name])
        assert p.size >= 0.8 * len(fits), f"{name} unbounded in too many fits"
        within = float(np.mean(np.abs(p) < 2.0))
        assert within >= min_within_2sigma, f"{name}: only {within:.0%} within 2σ"
        limit = bias_allowed + 3.0 / math.sqrt(p.size)
        assert abs(p.mean()) < limit, f"{name}: mean pull {p.mean():.2f}"


@pytest.fixture(scope="module")
def samples():
    return [catalog(100 + seed) for seed in range(40)]


@pytest.fixture(scope="module")
def schechter_fits(samples):
    return [fit(s) for s in samples]


# --- recovery and coverage


def test_schechter_fits_recover_slope_mstar_and_age_index(schechter_fits):
    assert all(f.converged for f in schechter_fits)
    assert 700 < np.mean([f.n_clusters for f in schechter_fits]) < 900
    assert_recovers(schechter_fits, ["slope", "log_mstar_msun", "age_index"])
    slope_err = np.median([f.slope_err_lo for f in schechter_fits])
    assert 0.03 < slope_err < 0.15  # ~800 clusters over 2.5 dex


def test_fits_with_scatter_in_the_derived_values_still_recover():
    fits = [
        fit(catalog(200 + seed, KERNEL_GRID, KERNEL), KERNEL_GRID, KERNEL) for seed in range(40)
    ]
    assert all(f.converged for f in fits)
    # with the scatter log M* is less well bounded, and its maximum-likelihood estimate
    # has a small-sample bias: mean pull 0.27 ± 0.10 over 100 seeds of ~800 clusters,
    # a quarter of that in (est − truth) with 4× the clusters
    assert_recovers(fits, ["slope", "log_mstar_msun", "age_index"], bias_allowed=0.3)


def test_ignoring_the_completeness_gives_a_biased_slope(samples):
    m, t, c = samples[0]
    right = fit(samples[0], uncertainty="hessian")
    wrong = fit((m, t, np.ones_like(c)), uncertainty="hessian")
    assert abs(right.slope - TRUTH["slope"]) < 3 * right.slope_err_lo
    assert wrong.slope - TRUTH["slope"] > 10 * wrong.slope_err_lo  # far too shallow


def test_power_law_fits_recover_a_pure_power_law():
    samples = [catalog(300 + seed, log_mstar_msun=math.inf) for seed in range(20)]
    fits = [fit(s, model="power_law") for s in samples]
    assert all(math.isinf(f.log_mstar_msun) and f.log_mstar_err_hi == 0 for f in fits)
    assert_recovers(fits, ["slope", "age_index"])
    # no cutoff in the data: a Schechter fit finds none either (open or far above the top)
    for uncertainty in ("profile", "hessian"):
        free = fit(samples[0], uncertainty=uncertainty)
        assert math.isinf(free.log_mstar_err_hi) or free.log_mstar_msun > MASS_RANGE[1]
        assert free.log_mstar_err_hi > 0 and not free.log_mstar_err_lo <= 0  # NaN allowed
        assert abs(free.slope - TRUTH["slope"]) < 3 * free.slope_err_lo


def test_a_fixed_slope_fits_mstar_and_age_index(samples):
    fits = [fit(s, fix_slope=TRUTH["slope"]) for s in samples[:12]]
    assert all(f.slope == TRUTH["slope"] and f.slope_err_lo == 0 for f in fits)
    assert_recovers(fits, ["log_mstar_msun", "age_index"], min_within_2sigma=0.83)


def test_a_harder_sample_cut_is_handled_consistently(samples, schechter_fits, caplog):
    fits = [fit(s, c_min=0.3, uncertainty="hessian") for s in samples[:16]]
    assert_recovers(fits, ["slope", "log_mstar_msun", "age_index"], min_within_2sigma=0.8)
    for s, loose, hard in zip(samples, schechter_fits, fits, strict=False):
        assert hard.n_clusters < loose.n_clusters
        assert hard.n_clusters + hard.n_dropped == len(s[0])
        keep = pf.sample_mask(*s, *GRID, c_min=0.3)
        assert hard.n_clusters == keep.sum()
        assert np.all(pf.completeness_at(s[2], *GRID, s[0], s[1])[keep] >= 0.3)
    with caplog.at_level(logging.INFO, logger=pf.__name__):
        fit(samples[0], c_min=0.3, uncertainty="hessian")
    assert f"dropped {fits[0].n_dropped} of" in caplog.text


# --- the model


@pytest.mark.parametrize("sigma", [(0.0, 0.0), (0.15, 0.3)])
def test_each_density_integrates_to_one_over_its_selected_region(sigma):
    """p_i summed on a fine grid of derived values over {C_i ≥ c_min} is 1."""
    x, y = np.linspace(2.6, 5.9, 23), np.linspace(6.0, 10.7, 16)
    c_i = completeness(x[:, None], y[None, :], 0.3)
    # cell edges on the population range's ends, where the density jumps without scatter
    fine_m = np.linspace(x[0], x[-1], 166)
    fine_t = np.linspace(y[0], y[-1], 95)
    mc, tc = 0.5 * (fine_m[1:] + fine_m[:-1]), 0.5 * (fine_t[1:] + fine_t[:-1])
    mm, tt = (a.ravel() for a in np.meshgrid(mc, tc, indexing="ij"))
    c = np.broadcast_to(c_i, (mm.size, *c_i.shape))
    mass_range, age_range = (3.0, 5.5), (6.6, 10.1)
    inside = pf.sample_mask(
        mm,
        tt,
        c,
        x,
        y,
        sigma_log_mass=sigma[0],
        sigma_log_age=sigma[1],
        mass_range=mass_range,
        age_range=age_range,
    )
    like = pf._Likelihood(
        mm[inside], tt[inside], c[inside], x, y, 0.1, *sigma, mass_range, age_range
    )
    density = like.density((-2.0, 5.0, -0.9))
    cell = np.diff(fine_m)[0] * np.diff(fine_t)[0]
    assert density.sum() * cell == pytest.approx(1.0, abs=0.003)


def test_kernel_weights_are_the_gaussian_integrals_of_the_hats():
    grid = np.array([3.0, 3.1, 3.3, 3.4, 3.8])
    centres = np.array([2.9, 3.15, 3.55, 3.9])
    w = pf._hat_gauss(grid, centres, 0.12, 3.05, 3.7)
    for p, c in enumerate(centres):
        for j in range(grid.size):

            def integrand(x, j=j, c=c):
                hat = np.interp(x, grid, np.eye(grid.size)[j])
                return hat * scipy.stats.norm.pdf(c - x, scale=0.12)

            ref = scipy.integrate.quad(integrand, 3.05, 3.7, points=grid, limit=200)[0]
            assert w[p, j] == pytest.approx(ref, abs=1e-10)
    # no scatter: the interpolation weights, zero outside the range
    w0 = pf._hat_gauss(grid, centres, 0.0, 3.05, 3.7)
    assert w0[1] == pytest.approx([0, 0.75, 0.25, 0, 0]) and not w0[[0, 3]].any()


def test_expected_counts_match_the_observed_histograms(samples, schechter_fits):
    m, t, c = samples[1]
    f = schechter_fits[1]
    mass_edges, age_edges = np.linspace(3.0, 5.5, 11), np.linspace(6.6, 10.1, 8)
    by_mass, by_age = pf.expected_counts(f, m, t, c, *GRID, mass_edges, age_edges)
    assert by_mass.sum() == pytest.approx(f.n_clusters, rel=1e-6)
    assert by_age.sum() == pytest.approx(f.n_clusters, rel=1e-6)
    keep = pf.sample_mask(m, t, c, *GRID)
    for observed, model in [
        (np.histogram(m[keep], mass_edges)[0], by_mass),
        (np.histogram(t[keep], age_edges)[0], by_age),
    ]:
        chi2 = np.sum((observed - model) ** 2 / model)
        assert chi2 < scipy.stats.chi2.ppf(0.999, len(model) - 1)
    with pytest.raises(ValueError, match="arrays given to fit_population"):
        pf.expected_counts(f, m[1:], t[1:], c[1:], *GRID, mass_edges)


def test_completeness_limit_is_derived_from_the_function(samples):
    x, y = GRID
    # one map: the logistic's p = 0.5 point, 0.95 / (1 + e^−z) = 0.5 at z = ln(0.5 / 0.45)
    single = completeness(x[:, None], y[None, :], 0.5)
    exact = 3.2 + 0.4 * (y - 6.6) + 0.2 + 0.1 * math.log(0.5 / 0.45)
    assert pf.completeness_limit_log_mass(single, x, 0.5) == pytest.approx(exact, abs=0.01)
    assert np.isnan(pf.completeness_limit_log_mass(single, x, 0.99)).all()  # never reached
    assert pf.completeness_limit_log_mass(np.ones_like(single), x, 0.5) == pytest.approx(x[0])
    # per cluster: the median over clusters, rising with age
    c = samples[0][2]
    limit = pf.completeness_limit_log_mass(c, x, 0.5)
    assert limit == pytest.approx(pf.completeness_limit_log_mass(np.median(c, 0), x, 0.5))
    assert np.all(np.diff(limit) > 0)


def test_simulated_catalogs_follow_the_population(rng):
    cat = pf.simulate_catalog(
        4000, -2.0, math.inf, -0.9, lambda m, t: np.full(m.shape, 0.5), rng, (3.0, 5.0), (7.0, 9.0)
    )
    assert 0.45 < cat["detected"].mean() < 0.55
    # dN/dlog M ∝ M^−1, dN/dlog t ∝ t^0.1 on the ranges: the inverse CDFs
    for column, p, lo, hi in [
        ("log_mass_true_msun", -1.0, 3.0, 5.0),
        ("log_age_true_yr", 0.1, 7.0, 9.0),
    ]:
        k = p * math.log(10.0)

        def cdf(v, k=k, lo=lo, hi=hi):
            return np.expm1(k * (np.asarray(v) - lo)) / math.expm1(k * (hi - lo))

        assert scipy.stats.kstest(cat[column], cdf).pvalue > 1e-3
    assert np.array_equal(cat["log_mass_msun"], cat["log_mass_true_msun"])  # no scatter


# --- input checks


def good_inputs():
    m, t = np.array([3.5, 4.0, 4.5, 5.0]), np.array([7.0, 8.0, 9.0, 7.5])
    c = completeness(GRID[0][None, :, None], GRID[1][None, None, :], np.zeros((4, 1, 1)))
    return {"log_mass_msun": m, "log_age_yr": t, "completeness": c}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"completeness": np.ones((4, 50, 36))}, "completeness has shape"),
        ({"completeness": np.ones((3, 51, 36))}, "completeness has shape"),
        ({"log_age_yr": np.array([7.0, 8.0, 9.0])}, "log_age_yr has shape"),
        ({"log_mass_msun": np.zeros((4, 1))}, "log_mass_msun must be 1-D"),
        ({"completeness": np.full((4, 51, 36), 1.2)}, r"completeness must be a probability"),
        ({"completeness": np.full((4, 51, 36), -0.1)}, r"completeness must be a probability"),
        ({"completeness": np.full((4, 51, 36), np.nan)}, r"completeness must be a probability"),
        ({"log_mass_grid": GRID[0][::-1]}, "log_mass_grid must be"),
        ({"log_age_grid": GRID[1][:1]}, "log_age_grid must be"),
        ({"mass_range": (2.0, 5.0)}, "mass_range"),
        ({"age_range": (9.0, 8.0)}, "age_range"),
        ({"model": "lognormal"}, "model must be"),
        ({"c_min": 0.0}, "c_min"),
        ({"sigma_log_mass": -0.1}, "sigma_log_mass"),
        ({"uncertainty": "bootstrap"}, "uncertainty"),
        ({"fix_slope": 3.0}, "fix_slope"),
        ({"c_min": 0.99}, "too few to fit"),
    ],
)
def test_bad_inputs_are_refused_naming_the_argument(change, message):
    kwargs = {**good_inputs(), "log_mass_grid": GRID[0], "log_age_grid": GRID[1], **change}
    with pytest.raises(ValueError, match=message):
        pf.fit_population(**kwargs)


def test_an_empty_sample_is_refused():
    with pytest.raises(ValueError, match="log_mass_msun is empty"):
        pf.fit_population([], [], np.zeros((0, 51, 36)), *GRID)
