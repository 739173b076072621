"""Drizzled observations (issue 16): flux conservation, the noise correlation drizzling
makes, cosmic-ray rejection, and a drizzled synthetic galaxy the mosaic stage reads."""

import numpy as np
import pytest
from astropy.io import fits
from astropy.wcs import WCS
from test_synthetic import BANDS, build, empty_spec, gaussian_epsfs, small_spec

from starclusters.errors import ConfigError
from starclusters.mosaic.prepare import read_band
from starclusters.synthetic.observe import (
    Exposure,
    cosmic_ray_electrons,
    dither_offsets_px,
    drizzle_exposures,
    expose,
    exposure_wcs,
    noise_correlation_ratio,
)

N_PX = 96


@pytest.fixture(scope="module")
def epsfs():
    return gaussian_epsfs()


def grid_wcs(n: int = N_PX) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [204.25, -29.87]
    wcs.wcs.crpix = [(n + 1) / 2, (n + 1) / 2]
    wcs.wcs.cdelt = [-0.04 / 3600, 0.04 / 3600]
    wcs.wcs.set()
    return wcs


def exposure(image, offset, exptime_s=100.0) -> Exposure:
    image = np.asarray(image, np.float32)
    good = np.ones(image.shape, bool)
    return Exposure(image, exposure_wcs(grid_wcs(), offset), exptime_s, good, ~good)


def test_dither_offsets_sample_the_pixel_phases():
    offsets = dither_offsets_px(3)
    assert np.allclose(offsets[:, 0] % 1, [0, 1 / 3, 2 / 3])
    assert np.all(np.diff(offsets[:, 0]) > 2)
    assert np.allclose(dither_offsets_px(2, 0.5)[1], [0.5, 0.5])


def test_drizzling_a_flat_field_conserves_flux():
    """A flat 7 counts/s field in three dithered exposures comes out flat at 7 where
    covered, and the total rate over the covered area is kept."""
    out = grid_wcs()
    flat = np.full((N_PX, N_PX), 7.0)
    exposures = [exposure(flat, o) for o in dither_offsets_px(3)]
    sci, wht, _ = drizzle_exposures(
        exposures, out, (N_PX, N_PX), sky_e_s=0.0, read_noise_e=0.0, reject_cosmic_rays=False
    )
    full = wht >= wht.max() * 0.999
    assert full.mean() > 0.8
    np.testing.assert_allclose(sci[full], 7.0, rtol=1e-5)
    # the dithers (all towards +x, +y) leave the far corner to the first exposure alone
    assert wht[-1, -1] == pytest.approx(wht.max() / 3, rel=1e-3)


def test_drizzling_a_star_keeps_its_flux_and_centre():
    out = grid_wcs()
    yy, xx = np.mgrid[:N_PX, :N_PX]

    def star(offset):
        x, y = 47.3 + offset[0], 45.8 + offset[1]
        return (
            500.0 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * 1.2**2)) / (2 * np.pi * 1.2**2)
        )

    exposures = [exposure(star(o), o) for o in dither_offsets_px(3)]
    sci, _, _ = drizzle_exposures(
        exposures, out, (N_PX, N_PX), sky_e_s=0.0, read_noise_e=0.0, reject_cosmic_rays=False
    )
    assert sci.sum() == pytest.approx(500.0, rel=1e-4)
    assert (sci * xx).sum() / sci.sum() == pytest.approx(47.3, abs=0.01)
    assert (sci * yy).sum() / sci.sum() == pytest.approx(45.8, abs=0.01)


@pytest.mark.parametrize("pixfrac", [1.0, 0.5])
def test_drizzled_noise_is_correlated_as_casertano_says(pixfrac):
    """White noise drizzled at sub-pixel phases spread over the pixel: the per-pixel
    variance falls by 1/R² (Casertano et al. 2000), while sums over large blocks keep the
    input variance."""
    rng = np.random.default_rng(3)
    out = grid_wcs()
    inner = slice(8, N_PX - 8)
    pixel_var, block_var = [], []
    phases = (np.arange(6) + 0.5) / 6
    for offset in [(px, py) for px in phases for py in phases]:
        noise = rng.normal(0.0, 1.0, (N_PX, N_PX))
        sci, _, _ = drizzle_exposures(
            [exposure(noise, offset)],
            out,
            (N_PX, N_PX),
            sky_e_s=0.0,
            read_noise_e=0.0,
            pixfrac=pixfrac,
            reject_cosmic_rays=False,
        )
        core = sci[inner, inner].astype(float)
        pixel_var.append(core.var())
        blocks = core.reshape(10, 8, 10, 8).sum(axis=(1, 3))
        block_var.append(blocks.var() / 64)
    ratio = noise_correlation_ratio(pixfrac)
    assert np.mean(pixel_var) == pytest.approx(1.0 / ratio**2, rel=0.06)
    assert np.mean(block_var) == pytest.approx(1.0, rel=0.12)
    assert ratio == pytest.approx(1.5 if pixfrac == 1.0 else 1.2)


def test_cosmic_ray_rate_and_charge():
    rng = np.random.default_rng(1)
    rays = cosmic_ray_electrons((512, 512), 1000.0, rng, fraction_per_ks=0.02)
    assert (rays > 0).mean() == pytest.approx(0.02, rel=0.2)
    assert rays.sum() / ((rays > 0).sum() / 4.5) > 500.0  # >= 500 e- per event
    assert not cosmic_ray_electrons((64, 64), 1000.0, rng, fraction_per_ks=0.0).any()


def test_cosmic_rays_are_rejected_in_the_combination():
    """Three exposures of stars with cosmic rays at the handbook rate: away from the stars
    the median/blot test removes nearly every cosmic ray (on steep star profiles its
    derivative term lets some pass, as AstroDrizzle's does); without it, none is removed."""
    rng = np.random.default_rng(11)
    out = grid_wcs()
    yy, xx = np.mgrid[:N_PX, :N_PX]
    stars = rng.uniform(10, N_PX - 10, (8, 2))

    def scene(offset):
        image = np.zeros((N_PX, N_PX))
        for x, y in stars:
            r2 = (xx - x - offset[0]) ** 2 + (yy - y - offset[1]) ** 2
            image += 50.0 * np.exp(-r2 / (2 * 1.0**2)) / (2 * np.pi)
        return image

    sky, read_noise, exptime = 0.05, 3.1, 1200.0
    offsets = dither_offsets_px(3)
    exposures = [
        expose(scene(o), exposure_wcs(out, o), exptime / 3, sky, read_noise, rng) for o in offsets
    ]
    truth, _, _ = drizzle_exposures(
        [exposure(scene(o), o, exptime / 3) for o in offsets],
        out,
        (N_PX, N_PX),
        sky_e_s=0.0,
        read_noise_e=0.0,
        reject_cosmic_rays=False,
    )
    kept, wht, flagged = drizzle_exposures(
        exposures, out, (N_PX, N_PX), sky_e_s=sky, read_noise_e=read_noise
    )
    raw, _, _ = drizzle_exposures(
        exposures,
        out,
        (N_PX, N_PX),
        sky_e_s=sky,
        read_noise_e=read_noise,
        reject_cosmic_rays=False,
    )
    covered = wht > 0.5 * wht.max()
    sigma = np.std((kept - truth)[covered & (truth < 0.05)])
    faint = covered & (truth < 3 * sigma)
    outliers_raw = (np.abs(raw - truth) > 6 * sigma)[faint].sum()
    outliers = (np.abs(kept - truth) > 6 * sigma)[faint].sum()
    assert outliers_raw > 100
    assert outliers <= 0.05 * outliers_raw
    everywhere = (np.abs(kept - truth) > 6 * sigma)[covered].sum()
    assert everywhere <= 0.2 * (np.abs(raw - truth) > 6 * sigma)[covered].sum()
    hit = np.concatenate([e.cosmic.ravel() for e in exposures])
    caught = np.concatenate([f.ravel() for f in flagged])
    assert (caught & hit).sum() / hit.sum() > 0.7  # the faint ends of tracks may pass
    assert (caught & ~hit).sum() < 0.01 * (~hit).sum()


def test_a_drizzled_galaxy_is_archive_like_and_reads_back(tmp_path, small_population, epsfs):
    """SCI and WHT extensions with the archive's cards; the mosaic reader takes the WHT and
    its zeros become blank pixels; the noise per pixel is the drizzled (correlated) one."""
    spec = empty_spec(observation="drizzled", chip_gap_rows=6, cosmic_ray_fraction_per_ks=0.0)
    paths = {b: tmp_path / f"{b}.fits" for b in spec.bands}
    build(tmp_path, spec, small_population, epsfs)
    band = "F814W"
    with fits.open(paths[band]) as hdul:
        hdul.verify("exception")
        assert [h.name for h in hdul] == ["PRIMARY", "SCI", "WHT"]
        assert hdul["SCI"].header["BUNIT"] == "ELECTRONS/S"
        assert hdul[0].header["PHOTFLAM"] == spec.photflam[band]
        assert hdul["SCI"].header["DRIZKERN"] == "square"
        sci, wht = hdul["SCI"].data.astype(float), hdul["WHT"].data
    assert (wht == 0).any() and (wht > 0).mean() > 0.8
    item = read_band(paths[band], band)
    assert np.isnan(item.image[wht == 0]).all() and np.isfinite(item.image[wht > 0]).all()
    full = wht >= 0.99 * wht.max()
    t, sky = spec.exptime_s[band], spec.sky_e_s[band]
    white = sky / t + spec.n_exposures * spec.read_noise_e**2 / t**2
    # three exposures at phases 0, 1/3, 2/3 per axis: sum of squared drizzle weights
    phases = dither_offsets_px(spec.n_exposures)[:, 0] % 1
    squared = np.mean([((1 - p) ** 2 + p**2) ** 2 for p in phases])
    assert sci[full].var() == pytest.approx(white * squared, rel=0.1)


def test_drizzled_and_direct_galaxies_hold_the_same_sky(tmp_path, small_population, epsfs):
    """The same seed observed both ways: same truth, the same light within the noise."""
    direct_spec = small_spec(n_clusters=6, noise=False)
    drizzled_spec = small_spec(
        n_clusters=6, observation="drizzled", read_noise_e=0.0, cosmic_ray_fraction_per_ks=0.0
    )
    direct, images, _ = build(tmp_path / "a", direct_spec, small_population, epsfs)
    drizzled, _, _ = build(tmp_path / "b", drizzled_spec, small_population, epsfs)
    assert drizzled.truth.equals(direct.truth)
    sci = fits.getdata(tmp_path / "b" / "F814W.fits", "SCI").astype(float)
    wht = fits.getdata(tmp_path / "b" / "F814W.fits", "WHT")
    full = wht >= 0.99 * wht.max()
    # totals over the covered area agree to the Poisson noise of the light
    ratio = sci[full].sum() / images["F814W"][full].sum()
    assert ratio == pytest.approx(1.0, abs=0.01)


def test_bad_observation_settings_say_which_key(small_population):
    with pytest.raises(ConfigError, match="mosaic.synthetic.observation"):
        small_spec(observation="hubble").check(small_population.bands)
    with pytest.raises(ConfigError, match="mosaic.synthetic.n_exposures"):
        small_spec(observation="drizzled", n_exposures=1).check(small_population.bands)
    with pytest.raises(ConfigError, match="mosaic.synthetic.pixfrac"):
        small_spec(observation="drizzled", pixfrac=0.0).check(small_population.bands)
    with pytest.raises(ConfigError, match="mosaic.synthetic.drizzle_kernel"):
        small_spec(observation="drizzled", drizzle_kernel="lanczos3").check(small_population.bands)
    assert BANDS == small_spec().bands
