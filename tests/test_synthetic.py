"""The synthetic galaxy: WCSs, truth positions, cluster flux, extinction and age offsets
across the arms, saturated stars, noise level, reproducibility.

Images are 256² px with a Gaussian ePSF (sigma 1 native px, oversampling 3) so that
every build takes a second or two.
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from astropy.io import fits
from astropy.wcs import WCS

from starclusters.errors import ConfigError
from starclusters.io import read_table
from starclusters.photometry import counts_per_second
from starclusters.synthetic.catalogs import draw_clusters
from starclusters.synthetic.galaxy import (
    SyntheticGalaxySpec,
    build_synthetic_galaxy,
    psf_peak_fraction,
    write_band,
)
from starclusters.synthetic.geometry import GalaxyGeometry, SkyFrame

BANDS = ("F336W", "F438W", "F814W")
OVERSAMPLING = 3


def gaussian_epsfs() -> np.ndarray:
    """Gaussian ePSF, sigma = 1 native px, 31 native px across (fast, no far wings)."""
    x = np.arange(-46, 47)
    epsf = np.exp(-0.5 * (x[:, None] ** 2 + x[None, :] ** 2) / (1.0 * OVERSAMPLING) ** 2)
    return np.stack([epsf / epsf.sum()] * len(BANDS))


@pytest.fixture(scope="module")
def epsfs():
    return gaussian_epsfs()


def small_spec(**changes) -> SyntheticGalaxySpec:
    """A 256² mosaic (10″) showing the model galaxy out to ~4.5 kpc, with every component."""
    values = dict(
        shape_px=(256, 256),
        tile_px=128,
        geometry_scale=0.025,
        n_clusters=12,
        n_associations=2,
        n_background_galaxies=2,
        n_foreground_stars=2,
        cluster_log_mass_msun=(3.5, 4.5),
        resolve_limit_mag=26.5,
    )
    values.update(changes)
    return SyntheticGalaxySpec(**values)


def empty_spec(**changes) -> SyntheticGalaxySpec:
    """No light at all (each test adds what it checks)."""
    values = dict(
        bulge_sigma_e_msun_pc2=0.0,
        disk_sigma0_msun_pc2=0.0,
        sfr_msun_yr_kpc2=0.0,
        n_clusters=0,
        n_associations=0,
        n_background_galaxies=0,
        n_foreground_stars=0,
    )
    values.update(changes)
    return small_spec(**values)


def build(tmp_path, spec, population, epsfs, seed=7, **kwargs):
    paths = {b: tmp_path / f"{b}.fits" for b in spec.bands}
    galaxy = build_synthetic_galaxy(
        spec,
        population,
        epsfs,
        OVERSAMPLING,
        paths,
        tmp_path / "truth.parquet",
        tmp_path / "arms.parquet",
        np.random.default_rng(seed),
        core_radius_px=4,
        contaminants_path=tmp_path / "contaminants.parquet",
        **kwargs,
    )
    images = {b: fits.getdata(p).astype(np.float64) for b, p in paths.items()}
    headers = {b: fits.getheader(p) for b, p in paths.items()}
    return galaxy, images, headers


@pytest.fixture(scope="module")
def full(tmp_path_factory, small_population, epsfs):
    """One small galaxy with every component and noise."""
    tmp = tmp_path_factory.mktemp("full")
    return tmp, *build(tmp, small_spec(), small_population, epsfs)


def test_every_band_has_its_own_celestial_wcs(full):
    tmp, galaxy, images, headers = full
    wcs = {b: WCS(h) for b, h in headers.items()}
    for band, w in wcs.items():
        assert w.has_celestial and w.wcs.ctype[0] == "RA---TAN"
        assert headers[band]["BUNIT"] == "counts/s" and headers[band]["EXPTIME"] > 0
        assert images[band].shape == (256, 256)
    # the same sky point falls on different pixels in different bands (a few px at most)
    ra, dec = wcs["F814W"].wcs_pix2world([10.0, 250.0], [10.0, 250.0], 0)
    positions = {b: np.array(w.wcs_world2pix(ra, dec, 0)) for b, w in wcs.items()}
    for band in ("F336W", "F438W"):
        shift = np.hypot(*(positions[band] - positions["F814W"]))
        assert np.all(shift > 0.05) and np.all(shift < 8.0)
    assert not np.allclose(wcs["F336W"].wcs.pc, wcs["F438W"].wcs.pc)


def test_truth_positions_round_trip_on_the_reference_wcs(full):
    tmp, galaxy, images, headers = full
    truth = read_table(tmp / "truth.parquet")
    assert len(truth) == 12
    required = {
        "x_px",
        "y_px",
        "ra_deg",
        "dec_deg",
        "log_age_yr",
        "log_mass_msun",
        "av_mag",
        "rh_arcsec",
        "eff_a_arcsec",
        "eff_gamma",
        "on_arm",
        "galactocentric_radius_kpc",
    } | {f"mag_{b}" for b in BANDS}
    assert required <= set(truth.columns)
    reference = WCS(headers[truth.attrs["meta"]["reference_band"]])
    x, y = reference.wcs_world2pix(truth["ra_deg"], truth["dec_deg"], 0)
    np.testing.assert_allclose(x, truth["x_px"], atol=0.01)
    np.testing.assert_allclose(y, truth["y_px"], atol=0.01)
    assert truth["x_px"].between(0, 255).all() and truth["y_px"].between(0, 255).all()
    for column in ("log_age_yr", "log_mass_msun", "av_mag", "rh_arcsec", "eff_a_arcsec"):
        assert truth[column].notna().all()
    arms = read_table(tmp / "arms.parquet")
    assert {"x_px", "y_px", "ra_deg", "dec_deg", "arm"} <= set(arms.columns)
    meta = arms.attrs["meta"]["geometry"]
    assert meta["inclination_deg"] == 24.0 and meta["corotation_radius_kpc"] > 0


def test_isolated_cluster_flux_matches_the_truth_magnitudes(tmp_path, small_population, epsfs):
    """Noise-free, empty galaxy, one compact cluster at the centre.

    The only light lost is the share beyond each ePSF array (flux_fraction, here set
    to 0.99 as the GalSim model's 6″ array holds 99.0–99.6 %) and light falling
    outside the image (none: stars lie within 2.5″ of the centre, 5.1″ from the edges).
    """
    cluster = pd.DataFrame(
        {
            "x_px": [127.3],
            "y_px": [128.6],
            "log_age_yr": [7.0],
            "log_mass_msun": [4.5],
            "av_mag": [0.5],
            "eff_a_arcsec": [0.02],  # compact: the light centroid is the centre to ~0.05 px
            "eff_gamma": [6.0],
        }
    )
    fraction = np.array([0.99, 0.99, 0.99])
    galaxy, images, headers = build(
        tmp_path,
        empty_spec(noise=False, foreground_av_mag=0.0),
        small_population,
        epsfs,
        clusters=cluster,
        flux_fraction=fraction,
    )
    truth = galaxy.truth
    assert len(truth) == 1
    for j, band in enumerate(BANDS):
        expected = counts_per_second(truth[f"mag_{band}"].iloc[0], headers[band]["ZPVEGA"])
        assert images[band].sum() == pytest.approx(fraction[j] * expected, rel=0.01)
        # the light is centred on the truth position, mapped onto this band's own grid
        x, y = WCS(headers[band]).wcs_world2pix(truth["ra_deg"], truth["dec_deg"], 0)
        rows, cols = np.indices(images[band].shape)
        weights = images[band] / images[band].sum()
        assert (weights * cols).sum() == pytest.approx(x[0], abs=0.1)
        assert (weights * rows).sum() == pytest.approx(y[0], abs=0.1)


@pytest.fixture(scope="module")
def many_clusters(small_population):
    """3000 clusters (catalogue only, no images) of ages 4–40 Myr and older."""
    spec = SyntheticGalaxySpec(
        n_clusters=3000, cluster_log_age_yr=(6.6, 9.0), age_distribution_index=-1.0
    )
    rng = np.random.default_rng(3)
    geometry = GalaxyGeometry.from_spec(spec, small_population.distance_mpc)
    frame = SkyFrame.from_spec(spec, rng)
    table = draw_clusters(spec, geometry, frame, small_population, 11, rng)
    return spec, geometry, table


def test_arm_clusters_are_more_extincted(many_clusters):
    spec, geometry, table = many_clusters
    on, off = table[table["on_arm"]], table[~table["on_arm"]]
    assert len(on) > 100 and len(off) > 100
    assert on["av_mag"].mean() > off["av_mag"].mean() + 0.3
    # older clusters, independent of where they were born, too (thesis Fig. 4.7b)
    old = table["log_age_yr"] >= 8.0
    assert (
        table[old & table["on_arm"]]["av_mag"].mean()
        > table[old & ~table["on_arm"]]["av_mag"].mean()
    )
    assert (table["av_mag"] >= spec.foreground_av_mag - 1e-9).all()


def test_young_clusters_lead_the_arms_inside_corotation(many_clusters):
    spec, geometry, table = many_clusters
    corotation = geometry.corotation_radius_kpc
    born = table[table["born_on_arm"]]
    inside = born[born["galactocentric_radius_kpc"] < 0.9 * corotation]
    youngest = inside[inside["log_age_yr"] < 7.0]["arm_distance_kpc"]
    older = inside[(inside["log_age_yr"] >= 7.0) & (inside["log_age_yr"] < 7.7)]["arm_distance_kpc"]
    assert len(youngest) > 50 and len(older) > 50
    assert youngest.median() > 0  # downstream of the dust lane
    assert older.median() > youngest.median()  # farther the older they are
    # beyond corotation the pattern overtakes them: they trail
    outside = born[born["galactocentric_radius_kpc"] > 1.15 * corotation]
    assert outside[outside["log_age_yr"] < 7.7]["arm_distance_kpc"].median() < 0
    # old clusters are spread evenly in azimuth: as many on either side of the lanes
    old = table[table["log_age_yr"] >= 8.5]
    assert abs((old["arm_distance_kpc"] > 0).mean() - 0.5) < 0.08


def test_saturated_foreground_stars_exceed_the_saturation_level(full, small_population, epsfs):
    tmp, galaxy, images, headers = full
    stars = galaxy.contaminants[galaxy.contaminants["kind"] == "foreground_star"]
    assert len(stars) == 2
    reference = galaxy.spec.reference_band
    level = headers[reference]["SATURATE"]
    for _, star in stars.iterrows():
        x, y = WCS(headers[reference]).wcs_world2pix([star["ra_deg"]], [star["dec_deg"]], 0)
        i, j = int(round(y[0])), int(round(x[0]))
        peak = images[reference][i - 2 : i + 3, j - 2 : j + 3].max()
        assert peak > level * star["peak_over_saturation"] * 0.9
        assert peak > level
    assert psf_peak_fraction(epsfs[0], OVERSAMPLING) < epsfs[0].max() * OVERSAMPLING**2


def test_noise_matches_sky_and_exposure(tmp_path, small_population, epsfs):
    spec = empty_spec()
    galaxy, images, headers = build(tmp_path, spec, small_population, epsfs)
    for band in BANDS:
        t, sky = spec.exptime_s[band], spec.sky_e_s[band]
        expected = sky / t + spec.n_exposures * spec.read_noise_e**2 / t**2
        assert images[band].var() == pytest.approx(expected, rel=0.03)
        assert abs(images[band].mean()) < 5 * np.sqrt(expected / images[band].size)
        assert headers[band]["SKYLEVEL"] == sky and headers[band]["SKYSUB"]


def test_same_seed_same_files_other_seed_other_files(full, tmp_path, small_population, epsfs):
    tmp, galaxy, images, headers = full
    again, images_again, _ = build(tmp_path / "a", small_spec(), small_population, epsfs)
    for band in BANDS:
        assert np.array_equal(images[band], images_again[band])
    assert again.truth.equals(galaxy.truth)
    other, images_other, _ = build(tmp_path / "b", small_spec(), small_population, epsfs, seed=8)
    assert not np.array_equal(images["F814W"], images_other["F814W"])


def test_tiles_join_without_seams(tmp_path, small_population, epsfs):
    """The same noise-free galaxy in one tile and in 4 × 4 tiles is the same image."""
    spec = small_spec(noise=False, n_clusters=4)
    _, one, _ = build(
        tmp_path / "one", dataclasses.replace(spec, tile_px=256), small_population, epsfs
    )
    _, many, _ = build(
        tmp_path / "many", dataclasses.replace(spec, tile_px=64), small_population, epsfs
    )
    for band in BANDS:
        scale = np.abs(one[band]).max()
        np.testing.assert_allclose(many[band], one[band], atol=2e-4 * scale)


def test_bad_spec_says_which_key(small_population):
    with pytest.raises(ConfigError, match="reference_band"):
        small_spec(reference_band="F555W").check(small_population.bands)
    with pytest.raises(ConfigError, match="mosaic.synthetic.n_clusterz"):
        SyntheticGalaxySpec.from_config({"n_clusterz": 3})


def test_write_band_round_trips(tmp_path, full):
    tmp, galaxy, images, headers = full
    wcs = galaxy.frame.wcs["F438W"]
    image = np.arange(12.0, dtype=np.float32).reshape(3, 4)
    write_band(tmp_path / "b.fits", image, wcs, "F438W", 900.0, photflam=1e-19)
    with fits.open(tmp_path / "b.fits") as hdul:
        hdul.verify("exception")
        assert np.array_equal(hdul[0].data, image)
        header = hdul[0].header
    assert header["EXPTIME"] == 900.0 and header["BUNIT"] == "counts/s"
    assert header["PHOTFLAM"] == 1e-19 and header["FILTER"] == "F438W"
    assert np.allclose(WCS(header).wcs.pc, wcs.wcs.pc) and WCS(header).has_celestial
    assert not list(tmp_path.glob(".*.tmp"))  # written atomically
