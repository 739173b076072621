"""The classical peer (starclusters.baseline): detection, aperture photometry, CI, aperture
correction, CI-cut calibration, SED fits, and the two workflow entry points."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from starclusters.baseline.settings import BaselineSettings
from starclusters.errors import ConfigError, InputFileError

BANDS = ("F336W", "F438W", "F814W")
SCALE = 0.04
OVERSAMPLING = 3
#: A Gaussian ePSF of σ 0.8 native px (FWHM 1.9 px ≈ the WFC3/UVIS ePSFs' 1.7–2.0 px).
PSF_SIGMA_PX = 0.8
ZEROPOINTS = {"F336W": 23.527, "F438W": 25.003, "F814W": 24.698}
#: Settings that keep the models small: 16 r_h nodes, one phase, 60 calibration sources.
FAST = {"apcorr_n_rh": 16, "apcorr_phases": 1, "calibration_n": 60}


def gaussian_epsf(sigma_px: float = PSF_SIGMA_PX, half_native: int = 15) -> np.ndarray:
    """(n, n) ePSF on the fine grid (OVERSAMPLING), summing to 1, n = 2·3·half + 1."""
    half = half_native * OVERSAMPLING
    y, x = np.mgrid[-half : half + 1, -half : half + 1] / OVERSAMPLING
    psf = np.exp(-0.5 * (x**2 + y**2) / sigma_px**2)
    return psf / psf.sum()


@pytest.fixture(scope="module")
def epsfs() -> np.ndarray:
    return np.stack([gaussian_epsf() for _ in BANDS])


def settings(**changes) -> BaselineSettings:
    return BaselineSettings(**{**FAST, **changes})


# --------------------------------------------------------------------------- settings


def test_unknown_key_and_bad_values_name_the_key():
    with pytest.raises(ConfigError, match=r"baseline\.aperture_radius"):
        BaselineSettings.from_config({"aperture_radius": 4})
    with pytest.raises(ConfigError, match=r"baseline\.aperture_radius_px"):
        BaselineSettings.from_config({"aperture_radius_px": -1})
    with pytest.raises(ConfigError, match=r"baseline\.sky_annulus_px"):
        BaselineSettings.from_config({"sky_annulus_px": [3, 9]})  # inside the aperture
    with pytest.raises(ConfigError, match=r"baseline\.ci_band"):
        BaselineSettings.from_config({"ci_band": "V"}).check_bands(BANDS)
    with pytest.raises(ConfigError, match=r"baseline\.deblend_nlevels"):
        BaselineSettings.from_config({"deblend_nlevels": 0})
    with pytest.raises(ConfigError, match=r"baseline\.deblend_contrast"):
        BaselineSettings.from_config({"deblend_contrast": 1.5})
    got = BaselineSettings.from_config({"sky_annulus_px": [7, 10], "detection_bands": ["F438W"]})
    assert got.sky_annulus_px == (7, 10) and got.detection_bands == ("F438W",)


# --------------------------------------------------------------------------- CI and photometry


def test_point_source_ci_is_well_below_an_extended_clusters(epsfs):
    from starclusters.aperture import concentration_index
    from starclusters.baseline.apcorr import make_renderer, measure_models
    from starclusters.baseline.classify import point_source_stamps

    s = settings()
    renderer = make_renderer(epsfs, np.ones(3), OVERSAMPLING, SCALE, s)
    ci, corr = measure_models(renderer, BANDS, [0.0, 0.2], s, SCALE)
    # an r_h = 0.2″ (5 px) EFF cluster is far less concentrated than a star (LEGUS' cuts lie
    # near 1.3–1.4 mag); with this PSF: 0.81 against 2.11 mag
    assert ci[1] - ci[0] > 1.0
    # its light spills far beyond the 4 px aperture; a star's hardly does
    assert corr[1, 1] > 0.5 and abs(corr[1, 0]) < 0.05  # (band, r_h)
    # the renderer's star and an ePSF sampled directly agree
    stamps, offsets = point_source_stamps(
        epsfs, np.ones(3), OVERSAMPLING, np.ones((1, 3)), 25, np.random.default_rng(0)
    )
    direct = concentration_index(
        stamps[0, 1], [12 + offsets[0, 0]], [12 + offsets[0, 1]], (1, 3), (7, 9)
    )[0]
    assert abs(direct - ci[0]) < 0.05


def test_aperture_photometry_recovers_fluxes_within_its_errors(epsfs):
    from starclusters.aperture import local_sky, magnitudes, photometry
    from starclusters.baseline.classify import point_source_stamps

    rng = np.random.default_rng(3)
    exptime, sky_level, flux = 1000.0, 0.05, 2.0  # s, counts/s/px, counts/s (S/N ≈ 40)
    n_side, spacing = 12, 30
    size = n_side * spacing
    truth = np.full((size, size), sky_level)
    stamps, offsets = point_source_stamps(
        epsfs[:1], np.ones(1), OVERSAMPLING, np.full((n_side**2, 1), flux), 25, rng
    )
    xs, ys = [], []
    for k, (stamp, (dx, dy)) in enumerate(zip(stamps[:, 0], offsets, strict=True)):
        y0, x0 = (k // n_side) * spacing + 2, (k % n_side) * spacing + 2
        truth[y0 : y0 + 25, x0 : x0 + 25] += stamp
        xs.append(x0 + 12 + dx)
        ys.append(y0 + 12 + dy)
    image = rng.poisson(truth * exptime) / exptime
    sky = local_sky(image, xs, ys, (7, 9))
    measured, error = photometry(image, xs, ys, 4.0, (7, 9), exptime, sky=sky)
    # the true flux inside 4 px (a Gaussian of σ 0.8 px keeps all but e^-12.5 of it)
    expected = flux * (1 - np.exp(-(4.0**2) / (2 * PSF_SIGMA_PX**2)))
    pull = (measured - expected) / error
    assert np.all(np.abs(pull) < 4.5)
    assert abs(np.mean(pull)) < 0.3  # unbiased
    assert 0.8 < np.std(pull) < 1.25  # errors neither too small nor too large
    # the error is what Poisson statistics say: source + sky in the aperture
    predicted = np.sqrt(expected / exptime + np.pi * 16 * sky_level / exptime)
    assert np.median(error) == pytest.approx(predicted, rel=0.15)
    mag, mag_err = magnitudes(measured, error, 25.0)
    assert np.all(np.abs(mag - (25.0 - 2.5 * np.log10(expected))) < 5 * mag_err)
    # masked pixels in the aperture or a negative flux give NaN, not a number
    bad = np.zeros_like(image, bool)
    bad[int(ys[0]), int(xs[0])] = True
    assert np.isnan(photometry(image, xs[:1], ys[:1], 4.0, (7, 9), exptime, bad)[0][0])
    assert np.isnan(magnitudes([-1.0], [0.1], 25.0)[0][0])


def test_aperture_correction_is_monotone_and_inverts_ci(epsfs):
    from starclusters.baseline.apcorr import build_aperture_correction

    model = build_aperture_correction(
        epsfs, np.full(3, 0.98), BANDS, OVERSAMPLING, SCALE, settings()
    )
    assert model.rh_arcsec[0] == 0 and np.all(np.diff(model.ci_mag) > 0)
    # a point source loses only what lies beyond the PSF array (2 %) and its 4 px wing
    assert model.correction_mag[:, 0] == pytest.approx(-2.5 * np.log10(0.98), abs=0.01)
    mid = 0.5 * (model.ci_mag[3] + model.ci_mag[4])
    assert model.rh_arcsec[3] < model.rh_from_ci([mid])[0] < model.rh_arcsec[4]
    assert model.rh_from_ci([model.point_source_ci_mag - 0.3])[0] == 0
    assert np.isnan(model.correction_from_ci([np.nan])).all()
    # a smaller γ puts more light in the wings: a larger correction at the same CI
    wide = build_aperture_correction(
        epsfs, np.full(3, 0.98), BANDS, OVERSAMPLING, SCALE, settings(eff_gamma=2.5)
    )
    assert wide.correction_from_ci([mid])[0, 1] > model.correction_from_ci([mid])[0, 1]


def test_ci_cut_separates_stars_from_mocks_and_is_reproducible(epsfs):
    from starclusters.baseline.apcorr import eff_points
    from starclusters.baseline.classify import calibrate_ci_cut
    from starclusters.mocks.render import StampRenderer

    rng = np.random.default_rng(5)
    images = 0.02 + rng.normal(0, 0.005, (3, 160, 160))
    good = np.ones((160, 160), bool)
    good[:40, :40] = False
    renderer = StampRenderer(epsfs, OVERSAMPLING, SCALE, 33, max_star_radius_arcsec=2.5)
    mocks = []
    for rh in np.linspace(0.08, 0.3, 30):
        xy, w = eff_points(rh, 4.0, 2.5)
        mocks.append(renderer.render(xy, np.repeat(w[:, None], 3, axis=1) * 30.0))
    mocks = np.stack(mocks)
    mags = np.stack([ZEROPOINTS[b] - 2.5 * np.log10(np.full(30, 30.0)) for b in BANDS], axis=1)
    args = (images, good, epsfs, np.ones(3), OVERSAMPLING, mocks, mags, BANDS, ZEROPOINTS)
    exptime = dict.fromkeys(BANDS, 1000.0)
    s = settings(calibration_n=40)
    cut, samples = calibrate_ci_cut(*args, exptime, s, np.random.default_rng(1))
    again, _ = calibrate_ci_cut(*args, exptime, s, np.random.default_rng(1))
    assert cut == again
    assert cut.n_stars == 40 and cut.n_mocks == 30
    assert samples["star_ci"].max() < cut.cut_mag < samples["mock_ci"].min()
    assert cut.star_fraction_above == 0 and cut.mock_fraction_above == 1
    strict = dataclasses.replace(s, ci_cut_rule="star_percentile", ci_star_percentile=50.0)
    median, _ = calibrate_ci_cut(*args, exptime, strict, np.random.default_rng(1))
    assert median.cut_mag == pytest.approx(np.median(samples["star_ci"]))


def test_calibration_windows_are_segmented_as_alone_and_unmatched_objects_dropped(epsfs):
    """The calibration's one canvas gives each window the sources that the detection's
    segment_sources finds on that window alone; an object with no source within
    MATCH_RADIUS_PX of where it was put is not detected."""
    from starclusters.aperture import concentration_index
    from starclusters.baseline.classify import (
        MATCH_RADIUS_PX,
        calibration_stamp_px,
        measure_stamps,
        point_source_stamps,
        window_sources,
    )
    from starclusters.baseline.detection import matched_filter_snr, segment_sources

    s = settings()
    side = calibration_stamp_px(s)
    rng = np.random.default_rng(11)
    n = 10
    stars, offsets = point_source_stamps(
        epsfs, np.ones(3), OVERSAMPLING, np.full((n, 3), 2.0), side, rng
    )
    # neighbours: a fainter one 5 px away (deblended from the star), a bright one in a corner
    yy, xx = np.mgrid[:side, :side]
    for k in range(n // 2):
        for (dx, dy), f in (((5.0, 1.0), 1.5), ((-9.0, -10.0), 5.0)):
            r2 = (xx - side // 2 - dx) ** 2 + (yy - side // 2 - dy) ** 2
            stars[k] += f * np.exp(-0.5 * r2 / PSF_SIGMA_PX**2) / (2 * np.pi * PSF_SIGMA_PX**2)
    stamps = 0.02 + stars + rng.normal(0.0, 0.01, stars.shape)
    det = (stamps - 0.02).sum(axis=1) / (0.01 * np.sqrt(3))
    window, found = window_sources(det, s)
    alone = np.ones((side, side), bool)
    for k in range(n):
        own = segment_sources(matched_filter_snr(det[k], alone, s.smooth_fwhm_px), alone, s)
        assert len(own) == (3 if k < n // 2 else 1)
        mine = found[window == k]
        assert len(mine) == len(own)
        np.testing.assert_allclose(
            mine[["x", "y"]].to_numpy(), own[["x", "y"]].to_numpy(), atol=1e-9
        )
        np.testing.assert_allclose(mine["detection_snr"], own["detection_snr"], rtol=1e-12)

    exptime = dict.fromkeys(BANDS, 1000.0)
    where = side // 2 + offsets
    ci, kept = measure_stamps(stamps, BANDS, ZEROPOINTS, exptime, s, where)
    assert kept.all()
    at_truth = concentration_index(
        stamps[:, 1].reshape(n * side, side),
        where[:, 0],
        where[:, 1] + side * np.arange(n),
        s.ci_radii_px,
        s.sky_annulus_px,
    )
    assert np.all(np.abs(ci - at_truth) < 0.03)  # centred on the star, not its neighbour
    # put "elsewhere", farther than MATCH_RADIUS_PX from any source: not detected
    ci_far, kept_far = measure_stamps(
        stamps, BANDS, ZEROPOINTS, exptime, s, where + MATCH_RADIUS_PX + 0.6
    )
    assert not kept_far.any() and np.isnan(ci_far).all()
    # pure noise: nothing detected
    noise = 0.02 + rng.normal(0.0, 0.01, stamps.shape)
    assert not measure_stamps(noise, BANDS, ZEROPOINTS, exptime, s)[1].any()


# --------------------------------------------------------------------------- detection


def test_detection_finds_the_sources_and_nothing_where_masked_or_nan(epsfs):
    from starclusters.baseline.classify import point_source_stamps
    from starclusters.baseline.detection import SOURCE_COLUMNS, detect_sources

    rng = np.random.default_rng(7)
    images = rng.normal(0.0, 0.01, (3, 200, 200))
    stamps, offsets = point_source_stamps(
        epsfs, np.ones(3), OVERSAMPLING, np.full((11, 3), 3.0), 21, rng
    )
    sites = [(40 + 40 * i, 40 + 40 * j) for i in range(3) for j in range(3)] + [(20, 20), (180, 20)]
    for (x, y), stamp in zip(sites, stamps, strict=True):
        images[:, y - 10 : y + 11, x - 10 : x + 11] += stamp
    mask = np.zeros((200, 200), np.uint8)
    mask[5:40, 5:40] = 2  # hides the source at (20, 20)
    images[0, 5:40, 165:195] = np.nan  # blanks the one at (180, 20) in one band
    found = detect_sources(images, mask, settings(), BANDS)
    assert list(found.columns) == list(SOURCE_COLUMNS)
    assert len(found) == 9
    true = np.array(sites[:9], float) + offsets[:9]
    d = np.hypot(*(found[["x", "y"]].to_numpy()[:, None] - true[None]).transpose(2, 0, 1))
    assert np.all(d.min(axis=1) < 0.3)  # windowed centroids to a fraction of a pixel
    assert np.all(found["detection_snr"] > 20)
    # one detection band alone, by name
    alone = detect_sources(images, mask, settings(detection_bands=("F814W",)), BANDS)
    assert len(alone) == 9


def gaussian_sources(shape, xy, flux, sigma_px: float = PSF_SIGMA_PX) -> np.ndarray:
    """(H, W) image of Gaussian point sources at ``xy`` (N, 2) px with total ``flux`` (N,)."""
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    image = np.zeros(shape)
    for (x, y), f in zip(xy, flux, strict=True):
        image += (
            f
            / (2 * np.pi * sigma_px**2)
            * np.exp(-0.5 * ((xx - x) ** 2 + (yy - y) ** 2) / sigma_px**2)
        )
    return image


def test_detection_deblends_a_close_pair_into_one_segment_and_keeps_a_single_whole():
    from starclusters.baseline.detection import detect_sources

    rng = np.random.default_rng(3)
    pair = np.array([[40.3, 50.6], [45.1, 50.2]])  # 4.8 px apart, one segment above 4σ
    single = np.array([[90.4, 60.7]])
    xy = np.concatenate([pair, single])
    sky = gaussian_sources((100, 120), xy, [3.0, 1.0, 3.0])
    images = sky[None] + rng.normal(0.0, 0.01, (3, 100, 120))

    found = detect_sources(images, None, settings(), BANDS)
    assert len(found) == 3
    d = np.hypot(*(found[["x", "y"]].to_numpy()[:, None] - xy[None]).transpose(2, 0, 1))
    assert np.all(d.min(axis=0) < 0.3)  # each true source has its own, well centred
    near = np.argmin(d, axis=0)
    ids = found["segment_id"].to_numpy()[near]
    assert ids[0] == ids[1] != ids[2]  # the deblended pair shares its thresholded segment
    areas = found["area_px"].to_numpy()[near]
    assert areas[0] == areas[1] > areas[2]
    # a contrast no branch reaches leaves the pair as one source
    whole = detect_sources(images, None, settings(deblend_contrast=0.9), BANDS)
    assert len(whole) == 2


def test_an_empty_image_gives_an_empty_table():
    from starclusters.baseline.detection import SOURCE_COLUMNS, detect_sources

    for images in (np.zeros((3, 64, 64)), np.full((3, 64, 64), np.nan)):
        found = detect_sources(images, None, settings(), BANDS)
        assert found.empty and list(found.columns) == list(SOURCE_COLUMNS)


# --------------------------------------------------------------------------- SED fits


@pytest.fixture(scope="module")
def small_grid(small_population):
    from starclusters.baseline.sedfit import ssp_grid

    pop = small_population
    return ssp_grid(pop.isochrones, pop.extinction, pop.imf, list(BANDS), pop.distance_mpc)


def test_ssp_grid_is_the_projects_ssp_and_reddens(small_grid, small_population):
    from starclusters.photometry.isochrones import ssp_magnitudes

    pop = small_population
    k = 4
    plain = ssp_magnitudes(pop.isochrone(small_grid.log_age_yr[k]), pop.imf, list(BANDS))
    dm = pop.distance_modulus_mag
    assert small_grid.mag[k, 0] == pytest.approx([plain[b] + dm for b in BANDS], abs=1e-9)
    extinction = small_grid.mag[k, 1] - small_grid.mag[k, 0]  # A_V = 1
    assert extinction[0] > extinction[1] > extinction[2] > 0.4  # CCM89: A_U > A_B > A_I


def test_grid_fit_recovers_noiseless_ssp_photometry(small_grid):
    from starclusters.baseline.sedfit import fit_columns, grid_fit

    cases = [(2, 0, 3.8), (6, 1, 4.5), (12, 2, 5.2)]  # (age node, A_V node, log M)
    mags = np.stack([small_grid.mag[t, a] - 2.5 * m for t, a, m in cases])
    fit = grid_fit(mags, np.full(mags.shape, 0.01), small_grid, 0.01)
    assert list(fit.columns) == fit_columns()
    age_step = np.diff(small_grid.log_age_yr).max()
    for row, (t, a, m) in zip(fit.itertuples(), cases, strict=True):
        assert abs(row.log_age_yr - small_grid.log_age_yr[t]) <= age_step
        assert row.log_age_yr_best == pytest.approx(small_grid.log_age_yr[t])
        assert row.av_mag_best == pytest.approx(small_grid.av_mag[a])
        assert row.log_mass_msun_best == pytest.approx(m, abs=1e-6)
        assert abs(row.log_mass_msun - m) < 0.1
        assert row.log_age_yr_p16 <= row.log_age_yr <= row.log_age_yr_p84
        assert row.chi2_min == pytest.approx(0, abs=1e-9)
    # a single band cannot fit mass and colour: NaN, not a guess
    one = grid_fit(mags[:1] * [np.nan, 1, np.nan], np.full((1, 3), 0.01), small_grid)
    assert one["log_age_yr"].isna().all() and one["n_bands_fit"].iloc[0] == 1
    # the mass prior binds: 1000× brighter (log M 6.8) gets the range's upper bound
    capped = grid_fit(mags[:1] - 7.5, np.full((1, 3), 0.01), small_grid, 0.01, (3.0, 6.0))
    assert capped["log_mass_msun_best"].iloc[0] == pytest.approx(6.0)


def test_library_fit_recovers_a_members_parameters():
    from starclusters.baseline.slug import ClusterLibrary, library_fit

    rng = np.random.default_rng(11)
    n = 50_000  # ≈ 330 members per mag³ of colour space
    params = pd.DataFrame(
        {
            "log_age_yr": rng.uniform(6.6, 10.0, n),
            "log_mass_msun": rng.uniform(3.5, 5.5, n),
            "av_mag": rng.uniform(0.0, 3.0, n),
            "log_rh_arcsec": rng.uniform(-1.4, -0.4, n),
        }
    )
    p = params[["log_age_yr", "log_mass_msun", "av_mag"]].to_numpy()
    # (B, 3): d mag / d(log t, log M, A_V), age and extinction redden differently here
    colours = np.array([[1.5, -2.5, 0.5], [0.0, -2.5, 1.5], [-1.5, -2.5, 0.5]])
    mags = 20.0 + p @ colours.T + rng.normal(0, 0.02, (n, 3))  # the "stochastic" scatter
    library = ClusterLibrary(BANDS, mags, params)
    members = [10, 200, 3000]
    fit = library_fit(mags[members], np.full((3, 3), 0.01), library, 0.15, 0.0)
    for row, k in zip(fit.itertuples(), members, strict=True):
        truth = params.iloc[k]
        assert row.library_n_eff > 3
        assert abs(row.log_age_yr - truth.log_age_yr) < 0.1
        assert abs(row.log_mass_msun - truth.log_mass_msun) < 0.05
        assert abs(row.av_mag - truth.av_mag) < 0.1
        assert row.log_age_yr_best == truth.log_age_yr  # itself is the nearest member
        assert row.log_age_yr_p16 <= row.log_age_yr <= row.log_age_yr_p84


# --------------------------------------------------------------------------- entry points


def write_inputs(tmp_path, epsfs, images, mask):
    """Mosaic bands, mask, PSFs and a toy bank of EFF mocks on disk: a dict of paths."""
    from starclusters.baseline.apcorr import eff_points
    from starclusters.io import write_cube, write_table
    from starclusters.mocks.psf import write_psf
    from starclusters.mocks.render import StampRenderer
    from starclusters.mosaic.prepare import tan_wcs, write_image, write_mask

    wcs = tan_wcs(images.shape[1:], SCALE, (204.25, -29.87))
    bands = {}
    for band, image in zip(BANDS, images, strict=True):
        bands[band] = tmp_path / f"{band}.fits"
        write_image(bands[band], image, wcs, {"EXPTIME": 1000.0})
        write_psf(
            tmp_path / f"psf_{band}.fits",
            epsfs[0],
            band=band,
            native_scale_arcsec=SCALE,
            oversampling=OVERSAMPLING,
            source="test Gaussian",
        )
    write_mask(tmp_path / "mask.fits", mask, wcs)
    renderer = StampRenderer(epsfs, OVERSAMPLING, SCALE, 33, max_star_radius_arcsec=2.5)
    rows, stamps = [], []
    for rh in np.linspace(0.08, 0.3, 40):
        xy, w = eff_points(rh, 4.0, 2.5)
        stamps.append(renderer.render(xy, np.repeat(w[:, None], 3, axis=1) * 5.0))
        rows.append(
            {
                "log_age_yr": 7.0,
                "log_mass_msun": 4.5,
                "av_mag": 0.5,
                "log_rh_arcsec": np.log10(rh),
                **{f"mag_{b}": ZEROPOINTS[b] - 2.5 * np.log10(5.0) for b in BANDS},
            }
        )
    write_cube(tmp_path / "shard_0.fits", np.stack(stamps))
    write_table(tmp_path / "shard_0.parquet", pd.DataFrame(rows))
    return {
        "band_paths": bands,
        "mask_path": tmp_path / "mask.fits",
        "psf_paths": {b: tmp_path / f"psf_{b}.fits" for b in BANDS},
        "bank_tables": [tmp_path / "shard_0.parquet"],
        "bank_stamps": [tmp_path / "shard_0.fits"],
    }


def test_make_photometry_classifies_stars_and_clusters_and_fit_catalog_has_the_cnn_columns(
    tmp_path, epsfs, small_population
):
    from starclusters.baseline.apcorr import eff_points
    from starclusters.baseline.catalog import fit_catalog, make_photometry
    from starclusters.baseline.classify import point_source_stamps
    from starclusters.detect.catalog import CATALOG_COLUMNS
    from starclusters.io import write_table
    from starclusters.mocks.render import StampRenderer

    rng = np.random.default_rng(2)
    images = 0.02 + rng.normal(0.0, 0.004, (3, 240, 240))
    stars, _ = point_source_stamps(epsfs, np.ones(3), OVERSAMPLING, np.full((4, 3), 4.0), 21, rng)
    renderer = StampRenderer(epsfs, OVERSAMPLING, SCALE, 21, max_star_radius_arcsec=2.5)
    star_sites, cluster_sites = (
        [(40, 40), (200, 40), (40, 200), (200, 200)],
        [(120, 60), (60, 120), (180, 120), (120, 180)],
    )
    for (x, y), stamp in zip(star_sites, stars, strict=True):
        images[:, y - 10 : y + 11, x - 10 : x + 11] += stamp
    for x, y in cluster_sites:
        xy, w = eff_points(0.15, 4.0, 2.5)
        images[:, y - 10 : y + 11, x - 10 : x + 11] += renderer.render(
            xy, np.repeat(w[:, None], 3, axis=1) * 8.0
        )
    mask = np.zeros((240, 240), np.uint8)
    paths = write_inputs(tmp_path, epsfs, images, mask)
    s = settings()
    table, meta = make_photometry(
        **paths, zeropoints_mag=ZEROPOINTS, exptime_s=None, settings=s, rng_seed=4
    )
    again, _ = make_photometry(
        **paths, zeropoints_mag=ZEROPOINTS, exptime_s=None, settings=s, rng_seed=4
    )
    pd.testing.assert_frame_equal(table, again)
    assert meta["n_sources"] == 8 and meta["exptime_s"]["F336W"] == 1000.0
    clusters = table[table["is_cluster"]]
    assert len(clusters) == 4
    found = {(round(x / 10), round(y / 10)) for x, y in clusters[["x", "y"]].to_numpy()}
    assert found == {(round(x / 10), round(y / 10)) for x, y in cluster_sites}
    # total magnitudes, aperture-corrected (by 0.8 mag), within 0.1 mag of the injected
    # 8 counts/s, and r_h from the CI (the model's γ is the clusters')
    expected = ZEROPOINTS["F438W"] - 2.5 * np.log10(8.0)
    assert np.all(clusters["apcorr_mag_F438W"] > 0.5)
    assert np.all(np.abs(clusters["mag_F438W"] - expected) < 0.1)
    assert np.all(np.abs(clusters["log_rh_arcsec"] - np.log10(0.15)) < 0.05)
    assert np.isfinite(table["ra_deg"]).all() and meta["ci_cut"]["n_mocks"] > 0

    iso, ext = tmp_path / "iso.parquet", tmp_path / "ext.parquet"
    write_table(iso, small_population.isochrones)
    write_table(ext, small_population.extinction)
    phot = {"imf": {"mass_min_msun": 0.08, "mass_max_msun": 100.0}}
    for method in ("grid", "library"):
        cat = fit_catalog(table, method, iso, ext, paths["bank_tables"], phot, BANDS, s, 4.5)
        assert list(cat.columns[: len(CATALOG_COLUMNS)]) == list(CATALOG_COLUMNS)
        assert len(cat) == 4 and cat["class"].isna().all()
        assert {"log_age_yr_p16", "log_mass_msun_p84", "chi2_min", "mag_F336W"} <= set(cat)
        assert np.isfinite(cat["log_mass_msun"]).all() and np.isfinite(cat["rh_pc"]).all()

    # an empty mosaic: an empty catalog with the right columns, not a crash
    empty = write_inputs(tmp_path, epsfs, np.zeros((3, 64, 64)), np.zeros((64, 64), np.uint8))
    table, meta = make_photometry(
        **empty, zeropoints_mag=ZEROPOINTS, exptime_s=None, settings=s, rng_seed=4
    )
    assert table.empty and "is_cluster" in table and meta["ci_cut"]["cut_mag"] is None
    cat = fit_catalog(table, "grid", iso, ext, empty["bank_tables"], phot, BANDS, s, 4.5)
    assert cat.empty and list(cat.columns[: len(CATALOG_COLUMNS)]) == list(CATALOG_COLUMNS)


def test_bad_inputs_name_the_file_or_key(tmp_path, epsfs):
    from starclusters.baseline.catalog import fit_catalog, make_photometry
    from starclusters.mosaic.prepare import tan_wcs, write_mask

    paths = write_inputs(tmp_path, epsfs, np.zeros((3, 64, 64)), np.zeros((64, 64), np.uint8))
    s = settings()
    run = dict(zeropoints_mag=ZEROPOINTS, exptime_s=None, settings=s, rng_seed=0)
    with pytest.raises(ConfigError, match=r"vega_zeropoint_mag\.F814W"):
        make_photometry(**{**paths, **run, "zeropoints_mag": {"F336W": 23.5, "F438W": 25.0}})
    with pytest.raises(ConfigError, match="no PSF file for band F438W"):
        psfs = {b: p for b, p in paths["psf_paths"].items() if b != "F438W"}
        make_photometry(**{**paths, **run, "psf_paths": psfs})
    write_mask(
        tmp_path / "small_mask.fits", np.zeros((32, 64), np.uint8), tan_wcs((32, 64), SCALE, (0, 0))
    )
    with pytest.raises(InputFileError, match="small_mask.fits"):
        make_photometry(**{**paths, **run, "mask_path": tmp_path / "small_mask.fits"})
    with pytest.raises(InputFileError, match="missing.fits"):
        make_photometry(**{**paths, **run, "mask_path": tmp_path / "missing.fits"})
    with pytest.raises(InputFileError, match="lacks"):
        fit_catalog(pd.DataFrame({"x": [1.0]}), "grid", "i", "e", [], {}, BANDS, s, 4.5)
    with pytest.raises(ConfigError, match="grid, library"):
        fit_catalog(pd.DataFrame(), "sed", "i", "e", [], {}, BANDS, s, 4.5)


def test_sky_of_a_largely_masked_mosaic_is_flat():
    """Background2D refuses when every box is > 10 % masked; the sky then is the clipped
    median and scatter of the usable pixels instead of a crash."""
    from starclusters.baseline.detection import sky_and_noise

    rng = np.random.default_rng(3)
    image = 0.5 + 0.1 * rng.standard_normal((128, 128))
    good = np.ones(image.shape, bool)
    good[::4, :] = False  # every box 25 % masked
    sky, noise = sky_and_noise(image, good, 64)
    assert sky.shape == image.shape and np.ptp(sky) == 0
    assert abs(sky[0, 0] - 0.5) < 0.01 and abs(noise[0, 0] - 0.1) < 0.01
