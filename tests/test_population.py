"""Clusters in detector units: calibration, distance, integrated magnitudes, cuts."""

import numpy as np
import pandas as pd
import pytest

from starclusters.errors import ConfigError
from starclusters.photometry import (
    StellarPopulation,
    counts_per_second,
    distance_modulus,
    kroupa_imf,
    magnitude_from_counts,
    passes_magnitude_cuts,
)

ZEROPOINTS = {"F336W": 23.527, "F438W": 25.003, "F814W": 24.698}  # WFC3/UVIS 2020


@pytest.mark.parametrize("band", sorted(ZEROPOINTS))
def test_zero_mag_vega_star(band):
    zp = ZEROPOINTS[band]
    assert counts_per_second(0.0, zp) == pytest.approx(10 ** (0.4 * zp))
    assert counts_per_second(zp, zp) == pytest.approx(1.0)
    assert magnitude_from_counts(counts_per_second(21.3, zp), zp) == pytest.approx(21.3)


def test_distance_modulus():
    assert distance_modulus(4.5) == pytest.approx(28.266, abs=1e-3)  # M83
    assert distance_modulus(0.785) == pytest.approx(24.474, abs=1e-3)  # M31
    with pytest.raises(ConfigError, match="distance_mpc"):
        distance_modulus(0.0)


def test_magnitude_cuts():
    limits = {"F336W": 24.0, "F438W": 23.5, "F814W": 23.0}
    assert passes_magnitude_cuts({"F336W": 22.0, "F438W": 22.0, "F814W": 22.0}, limits)
    assert not passes_magnitude_cuts({"F336W": 22.0, "F438W": 22.0, "F814W": 23.1}, limits)
    assert not passes_magnitude_cuts({"F336W": 24.0, "F438W": 22.0, "F814W": 22.0}, limits)
    # "any": one band is enough (an old cluster faint in F336W but bright in F814W)
    old = {"F336W": 25.5, "F438W": 24.0, "F814W": 22.5}
    assert not passes_magnitude_cuts(old, limits)
    assert passes_magnitude_cuts(old, limits, "any")
    assert not passes_magnitude_cuts({"F336W": 24.0, "F438W": 23.5, "F814W": 23.0}, limits, "any")
    # arrays: one answer per cluster; NaN fails its band
    mags = {
        "F336W": np.array([22.0, 25.5, np.nan]),
        "F438W": np.array([22.0, 24.0, 22.0]),
        "F814W": np.array([22.0, 22.5, 22.0]),
    }
    assert passes_magnitude_cuts(mags, limits).tolist() == [True, False, False]
    assert passes_magnitude_cuts(mags, limits, "any").tolist() == [True, True, True]
    with pytest.raises(ValueError, match="require"):
        passes_magnitude_cuts(old, limits, "most")


def toy_population(distance_mpc=1e-5):
    """One isochrone with two stars of fixed magnitudes; 10 pc so that m = M."""
    iso = pd.DataFrame(
        {
            "log_age_yr": [7.0, 7.0],
            "mini_msun": [1.0, 2.0],
            "log_teff_k": [3.8, 4.0],
            "abs_mag_F336W": [5.0, 3.0],
            "abs_mag_F814W": [4.0, 2.0],
        }
    )
    ext = pd.DataFrame(
        [
            (b, av, t, av * k)
            for b, k in (("F336W", 1.6), ("F814W", 0.6))
            for av in (0.0, 1.0)
            for t in (3.5, 4.5)
        ],
        columns=["band", "av_mag", "log_teff_k", "a_band_mag"],
    )
    return StellarPopulation(
        iso, ext, ["F336W", "F814W"], distance_mpc, {"F336W": 20.0, "F814W": 20.0}, kroupa_imf()
    )


def test_star_counts_interpolate_and_darken_remnants():
    pop = toy_population()
    counts = pop.star_counts(7.0, np.array([1.0, 1.5, 2.0, 3.0, 0.05]), av_mag=0.0)
    assert counts[0, 0] == pytest.approx(10 ** (0.4 * (20.0 - 5.0)))
    assert counts[1, 0] == pytest.approx(10 ** (0.4 * (20.0 - 4.0)))  # mid-way in magnitude
    assert counts[3].sum() == 0.0  # above the isochrone: a remnant
    assert counts[4].sum() == 0.0  # below the isochrone's lowest mass
    dimmed = pop.star_counts(7.0, np.array([1.0]), av_mag=1.0)
    assert dimmed[0, 0] / counts[0, 0] == pytest.approx(10 ** (-0.4 * 1.6))
    assert dimmed[0, 1] / counts[0, 1] == pytest.approx(10 ** (-0.4 * 0.6))


def test_missing_zero_point_names_the_key():
    pop = toy_population()
    with pytest.raises(ConfigError, match=r"photometry.vega_zeropoint_mag.F814W"):
        StellarPopulation(
            pop.isochrones, pop.extinction, ["F336W", "F814W"], 1.0, {"F336W": 20.0}, pop.imf
        )


def test_age_off_the_grid():
    with pytest.raises(ValueError, match="not on the isochrone grid"):
        toy_population().isochrone(7.05)


def test_integrated_magnitudes_of_a_real_cluster(small_population, rng):
    """A 10^5 Msun, 10 Myr cluster at 4.5 Mpc is about 18 mag; the total is the sum of its stars."""
    stars = small_population.cluster_stars(7.0, 1e5, 0.0, rng)
    assert stars.mini_msun.sum() == pytest.approx(1e5, rel=1e-3)
    mags = small_population.integrated_magnitudes(stars)
    assert 16.0 < mags["F814W"] < 20.0
    # extinction dims blue more than red
    reddened = small_population.integrated_magnitudes(
        type(stars)(
            stars.mini_msun, small_population.star_counts(7.0, stars.mini_msun, 1.0), stars.bands
        )
    )
    assert reddened["F336W"] - mags["F336W"] > reddened["F814W"] - mags["F814W"] > 0.4


def test_faint_stars_in_aggregate_keep_the_light_and_the_count(small_population, rng):
    """Aggregating faint main-sequence stars changes neither the expected light nor the star count."""
    pop = small_population
    full, aggregated, n_full, n_agg = [], [], [], []
    for _ in range(40):
        a = pop.cluster_stars(9.0, 2e4, 0.5, rng)
        b = pop.cluster_stars(9.0, 2e4, 0.5, rng, faint_limit_mag=29.0, faint_packets=500)
        full.append(a.counts_s.sum(axis=0))
        aggregated.append(b.counts_s.sum(axis=0))
        n_full.append(a.n_stars)
        n_agg.append(b.n_stars)
    full, aggregated = np.array(full), np.array(aggregated)
    error = np.sqrt(full.var(axis=0) / len(full) + aggregated.var(axis=0) / len(aggregated))
    assert np.all(np.abs(full.mean(axis=0) - aggregated.mean(axis=0)) < 4 * error)
    assert np.mean(n_agg) == pytest.approx(np.mean(n_full), rel=0.01)
    assert np.isfinite(b.mini_msun).sum() < 0.2 * b.n_stars  # most stars were aggregated
    assert np.isnan(b.mini_msun).sum() == 500


def test_faint_mass_limit(small_population):
    pop = small_population
    for age in (6.6, 8.2, 9.8):
        split = pop.faint_mass_limit_msun(age, 29.0)
        iso = pop.isochrone(age)
        below = iso[iso["mini_msun"] < split]
        assert (below["phase_label"] <= 1).all()
        brightest = below[["abs_mag_F336W", "abs_mag_F438W", "abs_mag_F814W"]].min(axis=1)
        assert (brightest + pop.distance_modulus_mag >= 29.0).all()
    # brighter limit -> higher split mass
    assert pop.faint_mass_limit_msun(8.2, 27.0) >= pop.faint_mass_limit_msun(8.2, 29.0)


def test_av_beyond_the_extinction_table_names_the_key(small_population, rng):
    """The fixture's table covers A_V = 0–2 mag: beyond it the message says what to change."""
    pop = small_population
    mini = np.array([1.0, 3.0])
    with pytest.raises(ConfigError, match=r"photometry\.extinction\.av_mag.*max: 3"):
        pop.star_counts(8.0, mini, 2.5)
    # checked before any star is drawn, with or without aggregated faint stars
    for faint in (None, 29.0):
        with pytest.raises(ConfigError, match=r"A_V = 2\.5 mag is outside the extinction table"):
            pop.cluster_stars(8.0, 1e6, 2.5, rng, faint_limit_mag=faint)
    with pytest.raises(ValueError, match="finite and >= 0"):
        pop.star_counts(8.0, mini, -0.1)
    # the table's own edge is inside
    assert np.all(pop.star_counts(8.0, mini, 2.0) < pop.star_counts(8.0, mini, 0.0))


def test_off_grid_age_says_how_to_get_it(small_population):
    with pytest.raises(ValueError, match=r"not on the isochrone grid.*log_ages_yr="):
        small_population.isochrone(7.03)


@pytest.fixture(scope="module")
def catalog_age_tables(default_config):
    """Isochrones at ages off the config grid (as a catalog has them), and at one grid age."""
    import copy

    from starclusters.photometry import build_extinction_table, build_isochrone_table

    phot = copy.deepcopy(default_config["photometry"])
    phot["extinction"]["av_mag"] = {"min": 0.0, "max": 1.0, "step": 1.0}
    bands = default_config["bands"]
    off, _ = build_isochrone_table(phot, bands, log_ages_yr=[8.517, 7.033, 7.03304])
    on, _ = build_isochrone_table(phot, bands, log_ages_yr=np.array([7.0, 7.1]))
    ext, _ = build_extinction_table(phot, bands)
    return phot, bands, off, on, ext


def test_isochrone_table_at_arbitrary_ages(catalog_age_tables, small_population, rng):
    from starclusters.photometry import population_from_config

    phot, bands, off, on, ext = catalog_age_tables
    # rounded to 1e-4 dex (the age key), sorted, deduplicated
    assert sorted(off["log_age_yr"].unique()) == [7.033, 8.517]
    # an explicit age on the config grid gives the config path's isochrone exactly
    grid_iso = small_population.isochrone(7.0).reset_index(drop=True)
    explicit = on[on["log_age_yr"] == 7.0].reset_index(drop=True)
    pd.testing.assert_frame_equal(explicit[grid_iso.columns], grid_iso)
    # 7.033 lies between the isochrones at 7.0 and 7.1: its turn-off mass too
    turnoff = {
        age: iso.loc[iso["phase_label"] >= 2, "mini_msun"].min()
        for age, iso in pd.concat([on, off]).groupby("log_age_yr")
    }
    assert turnoff[7.1] < turnoff[7.033] < turnoff[7.0]
    # a population on those ages draws clusters at them
    pop = population_from_config(off, ext, phot, bands)
    stars = pop.cluster_stars(8.517, 1e5, 0.5, rng, faint_limit_mag=29.0)
    assert 15.0 < pop.integrated_magnitudes(stars)["F814W"] < 21.0


def test_isochrone_ages_outside_the_grid(default_config):
    from starclusters.photometry import build_isochrone_table

    phot, bands = default_config["photometry"], default_config["bands"]
    with pytest.raises(ValueError, match=r"log_ages_yr: log t = 10\.6 outside"):
        build_isochrone_table(phot, bands, log_ages_yr=[8.0, 10.6])
    with pytest.raises(ValueError, match="finite"):
        build_isochrone_table(phot, bands, log_ages_yr=[np.nan])


def test_expected_magnitudes_are_the_mean_flux_of_the_draws(small_population, rng):
    """The expected magnitude is the mean over stochastic draws of the flux, not of the
    magnitude (bright rare stars lift the mean above most draws)."""
    pop = small_population
    # young (red supergiants), intermediate and old (giants): the isochrone ends below the
    # IMF's top, the stars above it are dark
    for log_age in (7.0, 8.0, 9.0):
        totals = np.array(
            [
                pop.cluster_stars(log_age, 2e4, 0.5, rng, faint_limit_mag=29.0).counts_s.sum(0)
                for _ in range(80)
            ]
        )
        expected = pop.expected_magnitudes(log_age, 2e4, 0.5)
        for j, band in enumerate(pop.bands):
            mean = totals[:, j].mean()
            error = totals[:, j].std() / np.sqrt(len(totals))
            flux = 10 ** (-0.4 * (expected[band] - pop.zeropoints_mag[band]))
            assert abs(flux - mean) < 4 * error, (log_age, band)
    expected = pop.expected_magnitudes(8.0, 2e4, 0.5)
    # ten times the mass: 2.5 mag brighter, exactly
    brighter = pop.expected_magnitudes(8.0, 2e5, 0.5)
    assert all(expected[b] - brighter[b] == pytest.approx(2.5) for b in pop.bands)


def test_no_magnitude_cut_passes_everything():
    limits = {"F336W": 24.0, "F814W": 23.0}
    assert passes_magnitude_cuts({"F336W": 30.0, "F814W": np.nan}, limits, "none")
    out = passes_magnitude_cuts(
        {"F336W": np.array([30.0, 20.0]), "F814W": np.ones(2)}, limits, "none"
    )
    assert out.dtype == bool and out.all() and out.shape == (2,)


@pytest.mark.parametrize(
    ("change", "key"),
    [
        ({"magnitude_cut": "some"}, "magnitude_cut"),
        ({"distance_mpc": 0}, "distance_mpc"),
        ({"imf": {"mass_min_msun": 200.0}}, "imf"),
        ({"isochrones": {"source": "cmd"}}, "isochrones.cmd_files"),
        ({"extinction": {"av_mag": {"min": 0.0, "max": 3.0, "step": 0.7}}}, "extinction.av_mag"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_photometry_settings_fill_subsections_and_name_the_bad_key(config, change, key):
    """The ``photometry`` section has one home: PhotometrySettings' defaults (a subsection
    given in part keeps the other keys' defaults) and checks."""
    from starclusters.config import check_config
    from starclusters.photometry.settings import PhotometrySettings

    section = config["photometry"]
    required = {k: v for k, v in section.items() if k not in ("imf", "magnitude_cut")}
    required["isochrones"] = {k: section["isochrones"][k] for k in ("metallicity_z", "log_age_yr")}
    settings = PhotometrySettings.from_config(required)
    assert settings.magnitude_cut == "all" and settings.imf["mass_max_msun"] == 100.0
    assert settings.isochrones["z_tolerance_dex"] == 0.05
    with pytest.raises(ConfigError, match="^photometry.distance_mpc: missing"):
        PhotometrySettings.from_config({k: v for k, v in required.items() if k != "distance_mpc"})
    merged = {
        k: {**section[k], **v} if isinstance(v, dict) and k in section else v
        for k, v in change.items()
    }
    config["photometry"] = {**section, **merged}
    with pytest.raises(ConfigError, match=f"^photometry.{key}"):
        check_config(config)
