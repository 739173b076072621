"""Peaks of the class map, the candidate catalog, regions, gallery and truth matching (§4.2.2)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest
import scipy.ndimage as ndi
from conftest import TINY_NETWORK

from starclusters.detect.catalog import (
    CATALOG_COLUMNS,
    DiskGeometry,
    build_catalog,
    geometry_from_config,
    half_mass_density,
    rank_candidates,
    rh_pc,
    select_candidates,
    write_regions,
)
from starclusters.detect.matching import match_positions, match_summary, match_truth
from starclusters.detect.peaks import find_peaks, local_maxima, smooth_nan, weighted_parameters
from starclusters.errors import ConfigError, InputFileError

SHAPE = (120, 160)
#: Planted clusters: (x, y, log age, log mass, A_V, log r_h, visibility).
PLANTED = [
    (40, 30, 7.0, 4.0, 0.5, -1.2, 20.0),
    (110, 45, 8.5, 4.8, 1.5, -0.8, 5.0),
    (70, 90, 9.5, 3.7, 0.2, -1.0, 1.5),
]


def wcs_for(shape=SHAPE, scale_arcsec=0.04, centre=(204.2538, -29.8658)):
    from starclusters.mosaic.prepare import tan_wcs

    return tan_wcs(shape, scale_arcsec, centre)


def planted_maps(shape=SHAPE, sigma_px=2.0, amplitude=0.99):
    """Class: Gaussian bumps at PLANTED; each parameter map holds the nearest bump's value."""
    y, x = np.mgrid[: shape[0], : shape[1]]
    cls = np.zeros(shape)
    dist = np.full((len(PLANTED), *shape), np.inf)
    for k, (px, py, *_) in enumerate(PLANTED):
        d2 = (x - px) ** 2 + (y - py) ** 2
        cls += amplitude * np.exp(-0.5 * d2 / sigma_px**2)
        dist[k] = d2
    nearest = np.argmin(dist, axis=0)
    maps = {"class": cls.astype(np.float32)}
    for j, name in enumerate(
        ["log_age_yr", "log_mass_msun", "av_mag", "log_rh_arcsec", "visibility"], start=2
    ):
        values = np.array([p[j] for p in PLANTED])
        maps[name] = values[nearest].astype(np.float32)
    return maps


# ------------------------------------------------------------------------------- smoothing


def test_smooth_nan_ignores_holes_and_edges():
    image = np.full((50, 60), 0.7)
    image[20:25, 30:40] = np.nan
    out = smooth_nan(image, 3.0)
    assert np.allclose(out, 0.7)  # holes and edges renormalised, not darkened


def test_smooth_nan_matches_a_plain_gaussian_on_valid_data_and_is_nan_far_from_data():
    rng = np.random.default_rng(1)
    image = rng.random((80, 80))
    out = smooth_nan(image, 2.0)
    plain = ndi.gaussian_filter(image, 2.0, mode="constant")
    assert np.allclose(out[15:-15, 15:-15], plain[15:-15, 15:-15])
    image[:, 40:] = np.nan
    out = smooth_nan(image, 2.0)
    assert np.isfinite(out[:, 40:44]).all()  # filled from valid neighbours
    assert np.isnan(out[:, 60:]).all()  # nothing valid within reach
    assert np.allclose(smooth_nan(image, 0.0)[:, :40], image[:, :40])


# --------------------------------------------------------------------------------- maxima


def test_local_maxima_strict_and_plateaus():
    assert [tuple(a) for a in local_maxima(np.array([[1.0, 2.0, 2.0, 3.0]]))] == [(0,), (3,)]
    image = np.zeros((9, 9))
    image[3:6, 2:7] = 1.0  # a flat 3 x 5 top: one maximum, at its centre
    rows, cols = local_maxima(image)
    assert list(zip(rows, cols, strict=True)) == [(4, 4)]
    image[3, 2] = 2.0  # the plateau now borders a higher pixel: only that pixel
    rows, cols = local_maxima(image)
    assert list(zip(rows, cols, strict=True)) == [(3, 2)]


def test_local_maxima_skips_invalid_pixels():
    image = np.zeros((7, 7))
    image[3, 3], image[3, 4] = 5.0, 4.0
    valid = np.ones_like(image, bool)
    valid[3, 3] = False  # the top is masked: its neighbour becomes the peak
    rows, cols = local_maxima(image, valid)
    assert (3, 4) in set(zip(rows, cols, strict=True))
    assert (3, 3) not in set(zip(rows, cols, strict=True))


def test_find_peaks_one_per_bump_at_the_planted_positions():
    maps = planted_maps()
    peaks = find_peaks(maps)
    strong = peaks[peaks["class_smoothed"] > 0.05]
    assert sorted(zip(strong["x"], strong["y"], strict=True)) == sorted(
        (p[0], p[1]) for p in PLANTED
    )
    assert list(peaks["peak_id"]) == list(range(len(peaks)))
    assert (strong["class"] > 0.98).all() and (strong["class_weighted"] < strong["class"]).all()


def test_find_peaks_flat_top_gives_one_peak_and_nan_pixels_are_never_peaks():
    cls = np.zeros((40, 40), np.float32)
    cls[10:15, 20:23] = 1.0  # saturated class: a 5 x 3 plateau
    cls[30, 5] = np.nan
    peaks = find_peaks({"CLASS": cls}, smooth_sigma_px=0.0)
    top = peaks[peaks["class_smoothed"] == 1.0]
    assert list(zip(top["x"], top["y"], strict=True)) == [(21, 12)]
    assert not ((peaks["x"] == 5) & (peaks["y"] == 30)).any()


def test_weighted_parameters_recover_planted_values_and_skip_nans():
    maps = planted_maps()
    maps["log_age_yr"][29, 40] = np.nan  # a hole inside the first window
    peaks = find_peaks(maps)
    strong = peaks[peaks["class_smoothed"] > 0.05].set_index("x")
    for px, _, age, mass, av, rh, vis in PLANTED:
        row = strong.loc[px]
        assert row["log_age_yr"] == pytest.approx(age, abs=1e-5)
        assert row["log_mass_msun"] == pytest.approx(mass, abs=1e-5)
        assert row["av_mag"] == pytest.approx(av, abs=1e-5)
        assert row["log_rh_arcsec"] == pytest.approx(rh, abs=1e-5)
        assert row["visibility"] == pytest.approx(vis, rel=1e-5)


def test_weighted_mean_by_hand_and_visibility_in_log():
    cls = np.zeros((5, 5))
    cls[2, 2], cls[2, 3] = 1.0, 0.5
    vis = np.ones((5, 5))
    vis[2, 2], vis[2, 3] = 1.0, 100.0
    age = np.zeros((5, 5))
    age[2, 2], age[2, 3] = 7.0, 9.0
    out = weighted_parameters(
        {"class": cls, "visibility": vis, "log_age_yr": age}, [2], [2], 5, 1.5
    )
    w0, w1 = 1.0, 0.5 * np.exp(-0.5 / 1.5**2)
    assert out["log_age_yr"][0] == pytest.approx((7 * w0 + 9 * w1) / (w0 + w1))
    assert out["visibility"][0] == pytest.approx(10 ** ((0 * w0 + 2 * w1) / (w0 + w1)))
    assert out["class"][0] == pytest.approx((1 * w0 + 0.5 * w1) / (w0 + w1))
    # at the corner the window leaves the map: only pixels inside count, (2, 3) is outside
    out = weighted_parameters({"class": cls, "log_age_yr": age}, [0], [0], 5, 1.5)
    assert out["log_age_yr"][0] == pytest.approx(7.0)
    out = weighted_parameters({"class": 0 * cls, "log_age_yr": age}, [2], [2], 5, 1.5)
    assert np.isnan(out["log_age_yr"][0])  # no weight anywhere


# -------------------------------------------------------------------------------- catalog


def test_thresholds_select_and_rank():
    table = pd.DataFrame(
        {
            "peak_id": [0, 1, 2, 3, 4],
            "class": [0.99, 0.96, 0.95, 0.99, np.nan],
            "visibility": [3.0, 10.0, 50.0, 2.5, 9.0],
        }
    )
    chosen = select_candidates(table, 0.95, 2.5)
    assert list(chosen["peak_id"]) == [0, 1]  # strict inequalities, NaN fails
    assert list(rank_candidates(table.dropna())["peak_id"]) == [0, 3, 1, 2]
    assert list(select_candidates(table, 0.9, 5.0)["peak_id"]) == [1, 2]


def test_catalog_positions_round_trip_through_the_wcs():
    wcs = wcs_for()
    peaks = find_peaks(planted_maps())
    geometry = DiskGeometry(204.2538, -29.8658, 24.0, 45.0, 0.0218)
    catalog = build_catalog(peaks, wcs, 4.5, geometry)
    x, y = wcs.world_to_pixel_values(catalog["ra_deg"], catalog["dec_deg"])
    assert np.allclose(x, catalog["x"], atol=1e-6) and np.allclose(y, catalog["y"], atol=1e-6)
    for column in (
        "rh_pc",
        "density_msun_pc3",
        "log_density_msun_pc3",
        "galactocentric_kpc",
        "projected_kpc",
    ):
        assert column in catalog


def test_rh_and_density_by_hand():
    # 0.1″ at 4.5 Mpc: 0.1 / 206264.806 * 4.5e6 pc
    assert rh_pc(np.log10(0.1), 4.5) == pytest.approx(2.18166, rel=1e-5)
    assert half_mass_density(4.0, 2.0) == pytest.approx(3e4 / (8 * np.pi * 8.0))
    assert half_mass_density(np.log10(8 * np.pi / 3), 1.0) == pytest.approx(1.0)


@pytest.mark.parametrize("pa", [0.0, 30.0, 225.0])
def test_galactocentric_distance_deprojects_the_minor_axis(pa):
    inclination = 60.0  # cos i = 1/2
    geometry = DiskGeometry(10.0, 41.0, inclination, pa, kpc_per_arcsec=1.0)
    d = 20.0  # arcsec on the sky = kpc here
    p = np.radians(pa)
    major = (d * np.sin(p), d * np.cos(p))  # (ξ east, η north) along the major axis
    minor = (d * np.cos(p), -d * np.sin(p))
    offsets = np.array([major, minor, (-major[0], -major[1])])
    from astropy.wcs import WCS

    tan = WCS(naxis=2)
    tan.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    tan.wcs.crval = [10.0, 41.0]
    tan.wcs.crpix = [1.0, 1.0]
    tan.wcs.cdelt = [1 / 3600, 1 / 3600]
    tan.wcs.set()
    ra, dec = tan.wcs_pix2world(offsets[:, 0], offsets[:, 1], 0)
    r = geometry.galactocentric_kpc(ra, dec)
    assert r == pytest.approx([d, d / np.cos(np.radians(inclination)), d], rel=1e-9)
    assert geometry.projected_kpc(ra, dec) == pytest.approx([d, d, d], rel=1e-9)


def test_galactocentric_distance_agrees_with_the_synthetic_galaxy():
    from starclusters.synthetic.geometry import GalaxyGeometry, model_wcs
    from starclusters.synthetic.spec import SyntheticGalaxySpec

    spec = SyntheticGalaxySpec()
    truth_geometry = GalaxyGeometry.from_spec(spec, 4.5)
    geometry = geometry_from_config({"source": "synthetic"}, 4.5, truth_geometry.metadata())
    rng = np.random.default_rng(3)
    xi, eta = rng.uniform(-20, 20, (2, 50))
    ra, dec = model_wcs(spec).wcs_pix2world(xi, eta, 0)
    expected = np.hypot(*truth_geometry.sky_to_disk(xi, eta))
    assert geometry.galactocentric_kpc(ra, dec) == pytest.approx(expected, rel=1e-9)


def test_geometry_config_errors_name_the_key():
    section = {"source": "config", "centre_ra_deg": 1, "centre_dec_deg": 2}
    with pytest.raises(ConfigError, match="galaxy_geometry.inclination_deg"):
        geometry_from_config({**section, "inclination_deg": 95, "position_angle_deg": 0}, 4.5)
    with pytest.raises(ConfigError, match="galaxy_geometry.position_angle_deg"):
        geometry_from_config({**section, "inclination_deg": 5}, 4.5)
    with pytest.raises(ConfigError, match="galaxy_geometry.source"):
        geometry_from_config({"source": "synthetic"}, 4.5, None)
    assert geometry_from_config({"source": "none"}, 4.5) is None
    assert geometry_from_config(None, 4.5) is None


def test_check_config_names_the_catalog_keys(config):
    from starclusters.config import check_config

    check_config(config)  # the default: geometry of the synthetic galaxy
    config["detect"]["weight_window_px"] = 4
    with pytest.raises(ConfigError, match="detect.weight_window_px"):
        check_config(config)
    config["detect"]["weight_window_px"] = 5
    config["mosaic"].update(
        source="files", files={b: f"{b}.fits" for b in ("F336W", "F438W", "F814W")}
    )
    with pytest.raises(ConfigError, match="galaxy_geometry.source"):
        check_config(config)
    config["galaxy_geometry"] = {"source": "config", "centre_ra_deg": 1.0}
    with pytest.raises(ConfigError, match="galaxy_geometry.centre_dec_deg"):
        check_config(config)


def test_region_file_parses_back(tmp_path):
    from regions import Regions

    catalog = build_catalog(
        find_peaks(planted_maps()).query("class_smoothed > 0.05"),
        wcs_for(),
        4.5,
        DiskGeometry(204.2538, -29.8658, 24.0, 45.0, 0.0218),
    )
    write_regions(tmp_path / "c.reg", catalog)
    regions = Regions.read(str(tmp_path / "c.reg"), format="ds9")
    assert len(regions) == len(catalog) == 3
    for region, row in zip(regions, catalog.itertuples(), strict=True):
        assert region.center.icrs.ra.deg == pytest.approx(row.ra_deg, abs=1e-7)
        assert region.center.icrs.dec.deg == pytest.approx(row.dec_deg, abs=1e-7)
        radius = max(10**row.log_rh_arcsec, 0.1)
        assert region.radius.to_value("arcsec") == pytest.approx(radius, rel=1e-5)
        assert region.meta["text"].startswith(f"{row.peak_id}: t=")
    write_regions(tmp_path / "none.reg", catalog.iloc[:0])
    assert len(Regions.read(str(tmp_path / "none.reg"), format="ds9")) == 0


# ------------------------------------------------------------------------------- matching


def test_match_positions_one_to_one_nearest_first():
    a = np.array([[0.0, 0.0], [1.0, 0.0], [50.0, 50.0], [np.nan, 0.0]])
    b = np.array([[0.9, 0.0], [0.0, 2.0]])
    index, distance = match_positions(a, b, 3.0)
    assert list(index) == [1, 0, -1, -1]
    assert distance[:2] == pytest.approx([2.0, 0.1])
    assert np.isnan(distance[2:]).all()
    # greedy, closest pair first: a[1]-b[0] (0.5) blocks a[0]-b[0] (1.5); a[0]-b[1] is too far
    index, _ = match_positions([[0, 0], [2, 0]], [[1.5, 0], [3.6, 0]], 2.0)
    assert list(index) == [-1, 0]


def test_match_positions_radius_is_inclusive_and_empty_inputs_work():
    index, distance = match_positions([[0, 0], [10, 0]], [[3, 0], [13.01, 0]], 3.0)
    assert list(index) == [0, -1] and distance[0] == 3.0
    assert list(match_positions(np.zeros((0, 2)), [[0, 0]], 3.0)[0]) == []
    assert list(match_positions([[0, 0]], np.zeros((0, 2)), 3.0)[0]) == [-1]
    assert list(match_positions([[0, 0]], [[0, 0]], 0.0)[0]) == [0]


def truth_table():
    """The planted clusters as a synthetic-galaxy truth table, plus one undetectable cluster."""
    rows = [
        {
            "x_px": px + 0.6,
            "y_px": py - 0.4,
            "log_age_yr": age,
            "log_mass_msun": mass,
            "av_mag": av,
            "rh_arcsec": 10**rh,
            "visibility": vis,
            "galactocentric_radius_kpc": 1.0,
        }
        for px, py, age, mass, av, rh, vis in PLANTED
    ]
    rows.append({**rows[0], "x_px": 150.0, "y_px": 110.0, "visibility": 0.5})
    return pd.DataFrame(rows)


def test_match_truth_and_summary():
    peaks = build_catalog(
        find_peaks(planted_maps()),
        wcs_for(),
        4.5,
        DiskGeometry(204.2538, -29.8658, 24.0, 45.0, 0.0218),
    )
    candidates = select_candidates(peaks, 0.95, 2.5)  # the third bump has visibility 1.5
    assert len(candidates) == 2
    matched = match_truth(truth_table(), candidates, peaks, 3.0)
    assert list(matched["detected"]) == [True, True, False, False]
    assert matched.loc[2, "peak_id"] >= 0 and matched.loc[3, "peak_id"] == -1
    assert matched.loc[2, "derived_log_age_yr"] == pytest.approx(9.5, abs=1e-5)
    assert matched.loc[0, "derived_log_visibility"] == pytest.approx(np.log10(20.0), abs=1e-5)
    summary = match_summary(matched, len(candidates))
    assert summary["recall"] == 0.5 and summary["precision"] == 1.0
    assert summary["errors"]["log_age_yr"]["bound95_abs"] == pytest.approx(0.0, abs=1e-5)
    # no candidates at all: nothing detected, the peaks still matched
    matched = match_truth(truth_table(), candidates.iloc[:0], peaks, 3.0)
    assert not matched["detected"].any() and (matched["candidate_id"] == -1).all()
    assert (matched["peak_id"][:3] >= 0).all()
    summary = match_summary(matched, 0)
    assert summary["recall"] == 0.0 and np.isnan(summary["precision"])


# ----------------------------------------------------------------------------- the stage


def write_maps(path, maps, wcs):
    from astropy.io import fits

    from starclusters.detect.peaks import MAP_COLUMNS

    hdus = [fits.PrimaryHDU()]
    for ext, column in MAP_COLUMNS.items():
        hdus.append(fits.ImageHDU(maps[column].astype(np.float32), wcs.to_header(), name=ext))
    fits.HDUList(hdus).writeto(path)


def tiny_model_file(path, window_px=32):
    import torch

    from starclusters.model.checkpoint import FORMAT_VERSION, MODEL_FORMAT
    from starclusters.model.codec import ParameterGrids
    from starclusters.model.network import ClusterNetwork, NetworkSpec

    spec = NetworkSpec(**TINY_NETWORK, window_px=window_px)
    torch.manual_seed(0)
    model = ClusterNetwork(spec)
    meta = {
        "spec": dataclasses.asdict(spec),
        "grids": ParameterGrids().to_dict(),
        "bands": ["F336W", "F438W", "F814W"],
        "window_px": window_px,
        "pixel_scale_arcsec": 0.04,
    }
    state = {
        "format": MODEL_FORMAT,
        "version": FORMAT_VERSION,
        "meta": meta,
        "model": model.state_dict(),
        "history": [],
    }
    torch.save(state, path)


@pytest.fixture
def stage_files(tmp_path):
    from astropy.io import fits

    wcs = wcs_for()
    maps = planted_maps()
    maps["class"][:3] = np.nan  # an unevaluated margin
    write_maps(tmp_path / "maps.fits", maps, wcs)
    rng = np.random.default_rng(2)
    bands = {}
    for k, band in enumerate(("F336W", "F438W", "F814W")):
        image = rng.normal(0.01, 0.002, SHAPE).astype(np.float32)
        image += (0.5 + k) * np.asarray(maps["class"] > 0.3, np.float32)
        bands[band] = str(tmp_path / f"{band}.fits")
        fits.PrimaryHDU(image, wcs.to_header()).writeto(bands[band])
    tiny_model_file(tmp_path / "model.pt")
    from starclusters.io import write_table

    write_table(tmp_path / "truth.parquet", truth_table())
    return tmp_path, bands


def test_stage_writes_catalog_gallery_and_truth_match(stage_files):
    from starclusters.detect.candidates_stage import (
        make_catalog,
        make_gallery,
        make_truth_match,
        write_catalog,
    )
    from starclusters.io import read_table

    tmp_path, bands = stage_files
    geometry = {
        "source": "config",
        "centre_ra_deg": 204.2538,
        "centre_dec_deg": -29.8658,
        "inclination_deg": 24.0,
        "position_angle_deg": 225.0,
    }
    detect = {"class_threshold": 0.95, "visibility_threshold": 2.5, "gallery_size": 3}
    peaks, candidates, meta = make_catalog(tmp_path / "maps.fits", detect, geometry, 4.5)
    write_catalog(
        peaks,
        candidates,
        meta,
        tmp_path / "peaks.parquet",
        tmp_path / "candidates.parquet",
        tmp_path / "candidates.reg",
    )
    table = read_table(tmp_path / "candidates.parquet")
    assert set(CATALOG_COLUMNS) <= set(table.columns)
    assert len(table) == 2 and list(table["x"]) == [40, 110]
    assert table.attrs["meta"]["settings"]["smooth_sigma_px"] == 3.0
    assert table.attrs["meta"]["geometry"]["position_angle_deg"] == 225.0
    assert len(read_table(tmp_path / "peaks.parquet")) >= 3
    assert (tmp_path / "candidates.reg").stat().st_size > 0

    zeropoints = {"F336W": 23.5, "F438W": 25.0, "F814W": 24.7}
    shown = make_gallery(
        tmp_path / "candidates.parquet",
        tmp_path / "model.pt",
        bands,
        detect,
        0.04,
        zeropoints,
        tmp_path / "gallery.png",
        truth_path=tmp_path / "truth.parquet",
    )
    assert len(shown) == 2 and np.isfinite(shown["window_p_cluster"]).all()
    assert (tmp_path / "gallery.png").stat().st_size > 20_000

    summary = make_truth_match(
        tmp_path / "truth.parquet",
        tmp_path / "candidates.parquet",
        tmp_path / "peaks.parquet",
        detect,
        tmp_path / "truth_match.parquet",
        tmp_path / "truth_match.png",
    )
    assert summary["recall"] == 0.5 and summary["precision"] == 1.0
    matched = read_table(tmp_path / "truth_match.parquet")
    assert {"detected", "candidate_id", "candidate_distance_px", "derived_log_age_yr"} <= set(
        matched.columns
    )
    assert matched.attrs["meta"]["summary"]["n_truth"] == 4
    assert (tmp_path / "truth_match.png").stat().st_size > 20_000
    assert not list(tmp_path.glob(".*.tmp"))


def test_gallery_without_candidates(stage_files):
    from starclusters.detect.candidates_stage import make_catalog, make_gallery, write_catalog

    tmp_path, bands = stage_files
    detect = {"class_threshold": 0.999}
    peaks, candidates, meta = make_catalog(tmp_path / "maps.fits", detect, {}, 4.5)
    assert len(candidates) == 0 and peaks["galactocentric_kpc"].isna().all()
    write_catalog(
        peaks, candidates, meta, tmp_path / "p.parquet", tmp_path / "c.parquet", tmp_path / "c.reg"
    )
    zeropoints = {"F336W": 23.5, "F438W": 25.0, "F814W": 24.7}
    make_gallery(
        tmp_path / "c.parquet",
        tmp_path / "model.pt",
        bands,
        detect,
        0.04,
        zeropoints,
        tmp_path / "g.png",
    )
    assert (tmp_path / "g.png").exists()


def test_catalog_takes_the_synthetic_galaxys_geometry(stage_files):
    from starclusters.detect.candidates_stage import make_catalog
    from starclusters.io import write_table
    from starclusters.synthetic.geometry import GalaxyGeometry
    from starclusters.synthetic.spec import SyntheticGalaxySpec

    tmp_path, _ = stage_files
    meta = GalaxyGeometry.from_spec(SyntheticGalaxySpec(), 4.5).metadata()
    write_table(tmp_path / "arms.parquet", pd.DataFrame({"arm": [0]}), {"geometry": meta})
    peaks, _, info = make_catalog(
        tmp_path / "maps.fits", {}, {"source": "synthetic"}, 4.5, tmp_path / "arms.parquet"
    )
    assert info["geometry"]["kpc_per_arcsec"] == meta["kpc_per_arcsec"]
    expected = geometry_from_config({"source": "synthetic"}, 4.5, meta).galactocentric_kpc(
        peaks["ra_deg"], peaks["dec_deg"]
    )
    assert np.allclose(peaks["galactocentric_kpc"], expected)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("weight_window_px", 4),
        ("weight_window_px", 0),
        ("gallery_size", 2.5),
        ("smooth_sigma_px", -1.0),
        ("weight_sigma_px", 0.0),
        ("class_threshold", 1.2),
        ("visibility_threshold", "2.5"),
        ("population_prior", 1),
        ("population_prior_shrink", -0.1),
        ("match_radius_px", 0),
        ("recentre_radius_px", -1.0),
        ("recentre_sky_annulus_px", [7.0]),
        ("recentre_sky_annulus_px", [9.0, 8.0]),
        ("recentre_sky_annulus_px", "7 12"),
        ("recentre_sky_annulus_px", [2.0, 12.0]),  # the sky inside the centroid's circle
        ("bogus", 1),
    ],
)
def test_catalog_settings_name_the_bad_key(key, value):
    """The catalog keys of ``detect`` have one home: defaults and checks in CatalogSettings,
    which reads only its own keys of the section and refuses a key neither class knows."""
    from starclusters.detect.settings import CatalogSettings, DetectSettings

    assert CatalogSettings.from_config(None) == CatalogSettings()
    section = {"mode": "fast", "class_threshold": 0.9}
    assert CatalogSettings.from_config(section).class_threshold == 0.9
    assert DetectSettings.from_config(section).mode == "fast"
    assert CatalogSettings.from_config(section, class_threshold=None).class_threshold == 0.9
    with pytest.raises(ConfigError, match=f"^detect.{key}"):
        CatalogSettings.from_config({key: value})


# ------------------------------------------------------------------------ recentring


def gaussian_source(shape, x, y, sigma_px, amplitude):
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    return amplitude * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma_px**2))


def test_light_centroids_find_the_source_not_the_peak_pixel():
    """A source at a sub-pixel position, on a sky that differs per band, seen from peaks up
    to 2 px off: one centroid step lands within 0.15 px of it; a masked source, a peak on
    empty sky and a band without sky leave what they should; the circle bounds the move."""
    from starclusters.detect.recentre import light_centroids

    rng = np.random.default_rng(5)
    shape = (60, 80)
    truth = (30.3, 25.6)
    skies, noise = (1.0, 20.0, 300.0), (0.05, 1.0, 15.0)  # bands in other units
    images = [
        rng.normal(sky, sd, shape) + gaussian_source(shape, *truth, 1.2, 40 * sd)
        for sky, sd in zip(skies, noise, strict=True)
    ]
    peaks_x, peaks_y = np.array([30, 29, 32, 60]), np.array([26, 24, 25, 40])
    x, y, moved = light_centroids(images, peaks_x, peaks_y, 3.0, (7.0, 12.0))
    before = np.hypot(peaks_x[:3] - truth[0], peaks_y[:3] - truth[1])
    after = np.hypot(x[:3] - truth[0], y[:3] - truth[1])
    assert after[0] < 0.15 < 0.4 < before[0]  # from the source's own pixel: on it
    # from 2 px off the circle cuts the source's far side: one step halves the error at least
    assert (after[1:] < before[1:] / 2).all() and before[1:].min() > 1.7
    assert moved[:3].all()
    # a peak on empty sky: it moves by noise only, never beyond the circle
    assert 0 < np.hypot(x[3] - 60, y[3] - 40) <= 3.0
    # the source masked: only the circle's unmasked pixels count
    bad = np.zeros(shape, bool)
    bad[22:30, 27:31] = True  # its left half
    xm, ym, _ = light_centroids(images, peaks_x[:1], peaks_y[:1], 3.0, (7.0, 12.0), bad)
    assert xm[0] > truth[0] + 0.5
    bad[22:30, 27:35] = True  # all of the circle: nothing to centre on, the peak stays
    xm, ym, mm = light_centroids(images, peaks_x[:1], peaks_y[:1], 3.0, (7.0, 12.0), bad)
    assert (xm[0], ym[0], mm[0]) == (30.0, 26.0, False)
    # a band whose annulus is off the image adds nothing: the others still centre it
    blank = [np.where(np.arange(shape[1]) < 20, np.nan, images[0]), *images[1:]]
    xb, yb, _ = light_centroids(blank, peaks_x[:1], peaks_y[:1], 3.0, (7.0, 12.0))
    assert np.hypot(xb[0] - truth[0], yb[0] - truth[1]) < 0.15
    # nothing positive (a hole below the sky): the peak pixel stays, not moved
    hole = [
        image - 2 * gaussian_source(shape, *truth, 1.2, 40 * sd)
        for image, sd in zip(images, noise, strict=True)
    ]
    xh, yh, mh = light_centroids(hole, [30], [26], 1.0, (7.0, 12.0))
    assert (xh[0], yh[0], mh[0]) == (30.0, 26.0, False)
    # no peaks; a bad radius
    assert [a.size for a in light_centroids(images, [], [], 3.0, (7.0, 12.0))] == [0, 0, 0]
    with pytest.raises(ValueError, match="radius_px"):
        light_centroids(images, [30], [26], 0.0, (7.0, 12.0))


def test_make_catalog_recentres_on_the_images_and_keeps_the_peak_pixel(stage_files):
    """detect.recentre_radius_px: with images every peak's x, y is its light centroid (float)
    and peak_x, peak_y its class-map pixel, where the maps were read; without images, or
    with radius 0, x, y are the peak pixels and the maps' values are the same either way."""
    from starclusters.detect.candidates_stage import make_catalog, peak_pixels
    from starclusters.detect.recentre import light_centroids

    tmp_path, bands = stage_files
    detect = {"class_threshold": 0.5, "visibility_threshold": 1.0, "population_prior": False}
    plain, plain_candidates, plain_meta = make_catalog(tmp_path / "maps.fits", detect, {}, 4.5)
    assert (plain["x"] == plain["peak_x"]).all() and (plain["y"] == plain["peak_y"]).all()
    assert "no images" in plain_meta["positions"]["method"]
    peaks, candidates, meta = make_catalog(
        tmp_path / "maps.fits", detect, {}, 4.5, band_paths=bands
    )
    assert meta["positions"]["radius_px"] == 3.0 and meta["positions"]["n_moved"] > 0
    pd.testing.assert_frame_equal(peaks[["peak_x", "peak_y"]], plain[["peak_x", "peak_y"]])
    pd.testing.assert_series_equal(peaks["visibility"], plain["visibility"])
    assert len(candidates) == len(plain_candidates)  # the cut is on the maps' values
    from astropy.io import fits

    images = [fits.getdata(path) for path in bands.values()]
    x, y, _ = light_centroids(images, plain["x"], plain["y"], 3.0, (7.0, 12.0))
    np.testing.assert_allclose(peaks["x"], x)
    np.testing.assert_allclose(peaks["y"], y)
    assert (np.hypot(peaks["x"] - peaks["peak_x"], peaks["y"] - peaks["peak_y"]) <= 3.0).all()
    rows, cols = peak_pixels(candidates)
    np.testing.assert_array_equal(cols, candidates["peak_x"])
    # radius 0: the thesis' peak pixels even with images
    off, _, off_meta = make_catalog(
        tmp_path / "maps.fits", {**detect, "recentre_radius_px": 0}, {}, 4.5, band_paths=bands
    )
    pd.testing.assert_frame_equal(off, plain)
    assert "recentre_radius_px: 0" in off_meta["positions"]["method"]
    # a mask of another grid is refused, naming it
    fits.PrimaryHDU(np.zeros((5, 5), np.uint8)).writeto(tmp_path / "small_mask.fits")
    with pytest.raises(InputFileError, match="small_mask.fits: shape"):
        make_catalog(
            tmp_path / "maps.fits",
            detect,
            {},
            4.5,
            band_paths=bands,
            mask_path=tmp_path / "small_mask.fits",
        )
