"""Artificial-cluster test (thesis §4.2.3): grid, injection, matching, recall, arm geometry."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from starclusters.artificial.grid import (
    MASK_NO_SEARCH,
    grid_table,
    search_mask,
    search_radius_px,
    usable_centres,
)
from starclusters.artificial.inject import artificial_seed, compose_rng, inject_mocks
from starclusters.artificial.matching import match_artificial
from starclusters.artificial.recall import (
    metrics_table,
    parameter_errors,
    recall_table,
    reference_recall,
)
from starclusters.detect.arms import ArmGeometry
from starclusters.detect.catalog import DiskGeometry
from starclusters.mocks.bank import mock_seed
from starclusters.mocks.compose import compose
from starclusters.stats import binomial_recall

# ----------------------------------------------------------------------------- grid


def test_grid_keeps_the_sites_whose_window_detection_would_evaluate():
    mask = np.zeros((256, 200), np.uint8)
    mask[:, 180:] = 1  # blank strip on the right
    mask[96, 32] = 2  # a saturated pixel right on a site
    sites = grid_table(mask, window_px=64, spacing_px=64, n_shards=3)
    # sites at 32, 96, 160 (columns; 224 > 200) and 32, 96, 160, 224 (rows)
    assert set(sites["x_px"]) == {32, 96}  # x = 160: its window reaches the blank strip
    assert (96, 32) not in set(zip(sites["y_px"], sites["x_px"], strict=True))
    assert len(sites) == 4 * 2 - 1
    assert list(sites["mock_id"]) == list(range(len(sites)))
    assert list(sites["shard"]) == [0, 0, 0, 1, 1, 2, 2]  # contiguous blocks, mock_id order
    assert usable_centres(mask, 64)[sites["y_px"], sites["x_px"]].all()


def test_search_mask_leaves_the_discs_around_the_mocks():
    mask = np.zeros((100, 100), np.uint8)
    out = search_mask(mask, np.array([50]), np.array([40]), 10)
    assert out[50, 40] == 0 and out[50, 50] == 0 and out[60, 40] == 0
    assert out[50, 51] == MASK_NO_SEARCH and out[58, 48] == MASK_NO_SEARCH  # 11.3 px away
    assert (search_mask(mask, np.array([50]), np.array([40]), None) == 0).all()
    # largest radius + its 8 neighbours + the smoothing kernel (4 sigma) + the step
    assert search_radius_px([3.0, 6.0], 3.0, 2) == 6 + 1 + 12 + 2


def test_artificial_seeds_are_not_the_banks():
    seed = artificial_seed(83, 0)
    bank = {mock_seed(83, shard, draw) for shard in range(4) for draw in range(300)}
    ours = {mock_seed(seed, shard, draw) for shard in range(4) for draw in range(300)}
    assert not bank & ours
    assert artificial_seed(83, 1) != seed and artificial_seed(83, 0) == seed


# ----------------------------------------------------------------------------- injection


def _background(shape, rng):
    return (rng.normal(0.05, 0.01, shape) + rng.exponential(0.02, shape)).astype(np.float32)


def test_injection_adds_exactly_compose_output_at_the_sites():
    rng = np.random.default_rng(3)
    images = _background((3, 160, 200), rng)
    original = images.copy()
    stamps = rng.exponential(0.5, (2, 3, 32, 32)).astype(np.float32)
    rows, cols = np.array([40, 100]), np.array([50, 140])
    exptime = np.array([1200.0, 1000.0, 900.0])
    rh_obs = np.array([[1.5, 1.6, 1.8], [2.5, 2.6, 2.8]])
    vis, per_band = inject_mocks(images, stamps, rows, cols, exptime, rh_obs, compose_rng(83, 0))
    reference = compose_rng(83, 0)
    touched = np.zeros(images.shape[1:], bool)
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        window = (slice(None), slice(r - 16, r + 16), slice(c - 16, c + 16))
        expected, v, pb = compose(stamps[k], original[window], exptime, reference, rh_obs[k])
        np.testing.assert_array_equal(images[window], expected)
        assert vis[k] == v and np.array_equal(per_band[k], pb)
        touched[window[1:]] = True
    np.testing.assert_array_equal(images[:, ~touched], original[:, ~touched])
    # the cluster is there: the window gained the stamp's light, within the photon noise
    gained = (images - original)[:, 24:56, 34:66].sum(axis=(1, 2))
    np.testing.assert_allclose(gained, stamps[0].sum(axis=(1, 2)), rtol=0.05)


def test_injection_refuses_a_window_off_the_mosaic():
    rng = np.random.default_rng(1)
    images = _background((3, 64, 64), rng)
    with pytest.raises(ValueError, match="leaves the mosaic"):
        inject_mocks(images, np.ones((1, 3, 32, 32)), [10], [32], [1.0] * 3, [[1.0] * 3], rng)


def _write_psf(path, band, scale, oversampling=3):
    from starclusters.mocks.psf import write_psf

    half = 3 * 7 * oversampling // 2
    y, x = np.mgrid[-half : half + 1, -half : half + 1] / oversampling
    psf = np.exp(-0.5 * (x**2 + y**2) / 1.2**2)
    write_psf(
        path,
        psf / psf.sum(),
        band=band,
        native_scale_arcsec=scale,
        oversampling=oversampling,
        source="test Gaussian",
    )


def test_injected_mosaics_keep_the_header_and_wcs_and_truth_lands_on_the_mocks(tmp_path):
    from astropy.io import fits
    from astropy.wcs import WCS

    from starclusters.artificial.stage import inject_artificial, make_grid
    from starclusters.io import write_cube, write_table
    from starclusters.mocks.compose import observed_rh_px
    from starclusters.mocks.psf import half_light_radius_px, read_psfs
    from starclusters.mosaic.prepare import tan_wcs

    bands, scale, size = ["F336W", "F814W"], 0.04, 32
    rng = np.random.default_rng(11)
    shape = (128, 160)
    wcs = tan_wcs(shape, scale, (204.25, -29.86))
    band_paths, psf_paths, exptime = [], [], {"F336W": 1100.0, "F814W": 800.0}
    images = {}
    for band in bands:
        image = _background(shape, rng)
        images[band] = image
        hdr = wcs.to_header()
        hdr["EXPTIME"], hdr["BAND"], hdr["BUNIT"] = exptime[band], band, "ELECTRONS/S"
        path = tmp_path / f"{band}.fits"
        fits.PrimaryHDU(image, hdr).writeto(path)
        band_paths.append(path)
        psf_paths.append(tmp_path / f"psf_{band}.fits")
        _write_psf(psf_paths[-1], band, scale)
    fits.PrimaryHDU(np.zeros(shape, np.uint8), wcs.to_header()).writeto(tmp_path / "mask.fits")
    sites, meta = make_grid(tmp_path / "mask.fits", size, 48, 2)
    write_table(tmp_path / "grid.parquet", sites, meta)
    assert list(zip(sites["y_px"], sites["x_px"], strict=True)) == [
        (24, 24), (24, 72), (24, 120), (72, 24), (72, 72), (72, 120), (120, 24), (120, 72),
        (120, 120),
    ][: len(sites)]  # fmt: skip
    sky = wcs.pixel_to_world(sites["x_px"].to_numpy(float), sites["y_px"].to_numpy(float))
    np.testing.assert_allclose(sites["ra_deg"], sky.ra.deg, atol=1e-10)
    shard_paths, stamps_all = [], []
    for shard in range(2):
        ids = sites.loc[sites["shard"] == shard, "mock_id"].to_numpy()
        stamps = rng.exponential(0.3, (len(ids), 2, size, size)).astype(np.float32)
        table = pd.DataFrame(
            {
                "mock_id": ids,
                "log_age_yr": 7.0,
                "log_mass_msun": 4.0,
                "av_mag": 0.5,
                "log_rh_arcsec": np.log10(0.1),
                "shard": shard,
            }
        )
        write_cube(tmp_path / f"s{shard}.fits", stamps)
        write_table(tmp_path / f"s{shard}.parquet", table)
        shard_paths.append(tmp_path / f"s{shard}.fits")
        stamps_all.append(stamps)
    out_paths = [tmp_path / f"out_{band}.fits" for band in bands]
    injected, meta = inject_artificial(
        band_paths, bands, tmp_path / "grid.parquet", shard_paths, psf_paths, scale, 3, 83, 0,
        out_paths,
    )  # fmt: skip
    # the header (WCS, EXPTIME, BAND, units) is the mosaic's, with the injection's cards
    for band, path in zip(bands, out_paths, strict=True):
        out_header = fits.getheader(path)
        original = fits.getheader(tmp_path / f"{band}.fits")
        for key in ("CRVAL1", "CRVAL2", "CRPIX1", "CRPIX2", "EXPTIME", "BAND", "BUNIT"):
            assert out_header[key] == original[key]
        assert out_header["ARTNMOCK"] == len(sites)
        assert WCS(out_header).to_header_string() == wcs.to_header_string()
    # and the pixels are compose()'s, in mock_id order, at the truth's x_px, y_px
    epsfs, _ = read_psfs(psf_paths, bands, scale, 3)
    psf_rh = [half_light_radius_px(e, 3) for e in epsfs]
    reference = compose_rng(83, 0)
    stamps = np.concatenate(stamps_all)
    data = {band: fits.getdata(p) for band, p in zip(bands, out_paths, strict=True)}
    for k, row in injected.iterrows():
        r, c = int(row["y_px"]), int(row["x_px"])
        window = (slice(r - 16, r + 16), slice(c - 16, c + 16))
        background = np.stack([images[b][window] for b in bands])
        rh_obs = observed_rh_px(0.1 / scale, psf_rh)
        expected, vis, _ = compose(stamps[k], background, list(exptime.values()), reference, rh_obs)
        got = np.stack([data[b][window] for b in bands])
        np.testing.assert_array_equal(got, expected)
        assert row["visibility"] == pytest.approx(vis)
    assert meta["spacing_px"] == 48 and meta["mosaic_shape"] == list(shape)


# ----------------------------------------------------------------------------- matching


def _catalog(xy, **columns):
    xy = np.asarray(xy, float).reshape(-1, 2)
    table = pd.DataFrame({"peak_id": np.arange(len(xy)), "x": xy[:, 0], "y": xy[:, 1]})
    for name in ("class", "visibility", "log_age_yr", "log_mass_msun", "av_mag", "log_rh_arcsec"):
        table[name] = columns.get(name, np.full(len(xy), 0.5))
    table["class_smoothed"] = table["class"]
    return table


def _truth(xy):
    xy = np.asarray(xy, float)
    return pd.DataFrame(
        {
            "x_px": xy[:, 0],
            "y_px": xy[:, 1],
            "log_age_yr": 7.0,
            "log_mass_msun": 4.0,
            "av_mag": 1.0,
            "rh_arcsec": 0.1,
            "visibility": 10.0,
        }
    )


def test_matching_within_3_and_6_px_on_planted_positions():
    truth = _truth([(100, 100), (200, 100), (300, 100), (400, 100)])
    # candidates 2 px, 4.5 px and 7 px from the first three mocks; none near the fourth
    cand = _catalog(
        [(102, 100), (200, 104.5), (307, 100)],
        log_age_yr=[7.1, 7.2, 7.3],
        visibility=[3.0, 4.0, 5.0],
        **{"class": [0.99, 0.98, 0.97]},
    )
    # peaks: the candidates, and a faint peak 1 px from the fourth mock
    peaks = _catalog(
        [(102, 100), (200, 104.5), (307, 100), (401, 100)],
        visibility=[3.0, 4.0, 5.0, 0.7],
        **{"class": [0.99, 0.98, 0.97, 0.2]},
    )
    out = match_artificial(truth, cand, peaks, (3.0, 6.0))
    assert list(out["recovered_3px"]) == [True, False, False, False]
    assert list(out["recovered_6px"]) == [True, True, False, False]
    assert list(out["candidate_id_3px"]) == [0, -1, -1, -1]
    assert list(out["candidate_id_6px"]) == [0, 1, -1, -1]
    np.testing.assert_allclose(out["candidate_distance_6px"][:2], [2.0, 4.5])
    # derived values from the 3 px match, else from the 6 px one
    np.testing.assert_allclose(out["derived_log_age_yr"][:2], [7.1, 7.2])
    assert (
        list(out["derived_radius_px"][:2]) == [3.0, 6.0]
        and out["derived_radius_px"][2:].isna().all()
    )
    # the nearest peak within the largest radius, whatever its class and visibility
    assert list(out["peak_id"]) == [0, 1, -1, 3]
    np.testing.assert_allclose(out["peak_visibility"].to_numpy()[[0, 1, 3]], [3.0, 4.0, 0.7])
    assert out["peak_class"][3] == pytest.approx(0.2)


def test_matching_is_one_to_one():
    truth = _truth([(100, 100), (104, 100)])
    cand = _catalog([(102.5, 100)])  # 2.5 px from the first, 1.5 px from the second
    out = match_artificial(truth, cand, cand, (3.0, 6.0))
    assert list(out["recovered_3px"]) == [False, True]
    assert list(out["recovered_6px"]) == [False, True]


# ----------------------------------------------------------------------------- recall


def _matches(n_each=4):
    """A hand-made match table: 2 age bins × 2 mass bins, on/off arms, known recoveries."""
    rows = []
    for age, mass, on_arm, recovered in [
        (7.0, 3.6, True, [1, 1, 0, 0]),  # 2 of 4
        (7.0, 4.6, True, [1, 1, 1, 1]),  # 4 of 4
        (9.0, 3.6, False, [0, 0, 0, 1]),  # 1 of 4
        (9.0, 4.6, False, [1, 1, 1, 0]),  # 3 of 4
    ]:
        for k, hit in enumerate(recovered[:n_each]):
            rows.append(
                {
                    "x_px": 10.0 + 20 * k,
                    "y_px": 10.0 if on_arm else 90.0,
                    "log_age_yr": age,
                    "log_mass_msun": mass,
                    "av_mag": 3.0,  # on the top edge: counts in the last bin
                    "log_rh_arcsec": -1.0,
                    "log_visibility": 1.0,
                    "visibility": 10.0,
                    "mag_F336W": 23.0,
                    "mag_F814W": 22.0,
                    "on_arm": on_arm,
                    "recovered_3px": bool(hit),
                    "recovered_6px": True,
                    "derived_radius_px": 3.0 if hit else 6.0,
                    "derived_log_age_yr": age + (0.1 if hit else 5.0),
                    "derived_log_mass_msun": mass - 0.2 * k,
                    "derived_av_mag": 3.0,
                    "derived_log_rh_arcsec": -1.0,
                    "derived_log_visibility": 1.0,
                }
            )
    table = pd.DataFrame(rows)
    table.attrs["meta"] = {"arms": {"source": "test"}}
    return table


def test_recall_in_bins_on_a_hand_made_case():
    matches = _matches()
    bins = {
        "log_age_yr": np.array([6.5, 8.0, 10.0]),
        "log_mass_msun": np.array([3.5, 4.0, 5.0]),
        "av_mag": np.array([0.0, 1.5, 3.0]),
    }
    table = recall_table(matches, bins, [3.0, 6.0], (np.array([0, 50, 100.0]),) * 2, 4.5)

    def cell(kind, region, radius, x_lo, y_lo):
        row = table[
            (table["kind"] == kind)
            & (table["region"] == region)
            & (table["radius_px"] == radius)
            & np.isclose(table["x_lo"], x_lo)
            & np.isclose(table["y_lo"], y_lo)
        ]
        assert len(row) == 1
        return row.iloc[0]

    young_light = cell("age_mass", "all", 3.0, 6.5, 3.5)
    assert (young_light["n_injected"], young_light["n_recovered"]) == (4, 2)
    assert young_light["recall"] == 0.5
    assert young_light["recall_err"] == pytest.approx(math.sqrt(0.25 / 4))
    assert cell("age_mass", "all", 3.0, 8.0, 4.0)["recall"] == 0.75
    assert cell("age_mass", "all", 6.0, 8.0, 4.0)["recall"] == 1.0
    # split by arm: the young mocks are all on it, the old ones off it
    assert cell("age_mass", "on_arm", 3.0, 6.5, 4.0)["recall"] == 1.0
    assert cell("age_mass", "off_arm", 3.0, 6.5, 4.0)["n_injected"] == 0
    assert np.isnan(cell("age_mass", "off_arm", 3.0, 6.5, 4.0)["recall"])
    # A_V = 3 sits on the top edge and counts in the last bin
    assert cell("age_av", "all", 3.0, 6.5, 1.5)["n_injected"] == 8
    total = table[(table["kind"] == "total") & (table["region"] == "all")]
    assert list(total["n_recovered"]) == [10, 16] and list(total["n_injected"]) == [16, 16]
    # spatial: only mocks below log M 4.5; on-arm row y = 10, off-arm y = 90
    spatial = cell("spatial", "all", 3.0, 0.0, 0.0)
    assert (spatial["n_injected"], spatial["n_recovered"]) == (2, 2)  # x = 10, 30 of the young
    spatial = cell("spatial", "all", 3.0, 50.0, 0.0)
    assert (spatial["n_injected"], spatial["n_recovered"]) == (2, 0)  # x = 50, 70


def test_reference_node_recall_and_binomial_uncertainty():
    matches = _matches()
    reference = {"log_age_yr": 7.0, "log_mass_msun": 3.75, "half_width_dex": 0.25}
    node = reference_recall(matches, reference, [3.0])
    row = node[node["region"] == "all"].iloc[0]
    assert (row["n_injected"], row["n_recovered"], row["recall"]) == (4, 2, 0.5)
    assert row["recall_lo"] < 0.5 < row["recall_hi"]
    # the Wilson interval is not empty when every mock (or none) was found
    stats = binomial_recall(5, 5)
    assert stats["recall"] == 1.0 and stats["recall_err"] == 0.0 and stats["recall_lo"] < 1.0
    assert np.isnan(binomial_recall(0, 0)["recall"])
    metrics = metrics_table(matches, reference, [3.0, 6.0])
    picked = metrics[(metrics["metric"] == "reference_recall") & (metrics["region"] == "all")]
    assert list(picked["value"]) == [0.5, 1.0]
    # mocks drawn at the node count at the node, but not in the overall recall, the total
    # row and the parameter errors (means over the grid draw)
    marked = matches.assign(reference_draw=np.arange(len(matches)) < 4)
    tagged = metrics_table(marked, reference, [3.0])
    value = tagged.set_index(["metric", "region"])["value"]
    n = tagged.set_index(["metric", "region"])["n"]
    assert n["recall", "all"] == len(matches) - 4
    expected = marked.loc[~marked["reference_draw"], "recovered_3px"].mean()
    assert value["recall", "all"] == pytest.approx(expected)
    assert value["reference_recall", "all"] == 0.5  # every mock in the box
    assert n["bias_log_age_yr", "all"] == parameter_errors(marked[4:], 3.0)["n"].iloc[0]
    bins = {"log_age_yr": [6.5, 10.0], "log_mass_msun": [3.5, 5.0], "av_mag": [0.0, 3.0]}
    edges = (np.array([0, 100.0]),) * 2
    table = recall_table(marked, {k: np.array(v) for k, v in bins.items()}, [3.0], edges, 4.5)
    rows = table[table["region"] == "all"].set_index("kind")
    assert rows.loc["total", "n_injected"] == len(matches) - 4
    assert rows.loc["age_mass", "n_injected"] == len(matches)


def test_reference_node_recall_of_visible_and_bank_cut_mocks():
    """The node's recall also for the clearly visible mocks (visibility > 5) and for those
    the bank's magnitude cut keeps (the thesis' test mocks), each of its own mocks only."""
    matches = _matches()  # at the node (7.0, 3.6): recovered 1, 1, 0, 0
    node = (matches["log_age_yr"] == 7.0) & (matches["log_mass_msun"] == 3.6)
    index = np.flatnonzero(node)
    matches.loc[index[2], "visibility"] = 2.0  # a missed one is faint
    matches.loc[index[3], "mag_F814W"] = 23.5  # the other fails the F814W < 23 cut
    reference = {"log_age_yr": 7.0, "log_mass_msun": 3.75, "half_width_dex": 0.25}
    cut = {"magnitude_limits": {"F336W": 24.0, "F814W": 23.0}, "magnitude_cut": "all"}
    metrics = metrics_table(matches, reference, [3.0], bank_cut=cut)
    rows = metrics[metrics["region"] == "all"].set_index("metric")
    assert rows.loc["reference_recall", "value"] == 0.5
    assert (
        rows.loc["reference_recall_visible", "n"],
        rows.loc["reference_recall_visible", "value"],
    ) == (3, pytest.approx(2 / 3))
    assert (
        rows.loc["reference_recall_bank_cut", "n"],
        rows.loc["reference_recall_bank_cut", "value"],
    ) == (3, pytest.approx(2 / 3))
    # "any": brighter than one limit is enough, so every node mock passes
    cut_any = cut | {"magnitude_cut": "any"}
    rows_any = metrics_table(matches, reference, [3.0], bank_cut=cut_any).set_index(
        ["metric", "region"]
    )
    assert rows_any.loc[("reference_recall_bank_cut", "all"), "n"] == 4
    # without the bank's cut there is no such row
    assert "reference_recall_bank_cut" not in set(
        metrics_table(matches, reference, [3.0])["metric"]
    )


def test_parameter_errors_of_recovered_mocks():
    errors = parameter_errors(_matches(), 3.0).set_index("parameter")
    assert errors.loc["log_age_yr", "n"] == 10
    assert errors.loc["log_age_yr", "median_bias"] == pytest.approx(0.1)
    assert errors.loc["log_age_yr", "scatter"] == pytest.approx(0.0, abs=1e-12)
    # mass errors of the recovered: k = 0, 1 (2x), 0..2 (3x), 0..3 minus k=3 ... -0.2 k
    assert errors.loc["log_mass_msun", "median_bias"] < 0
    assert errors.loc["av_mag", "unit"] == "mag"


# ----------------------------------------------------------------------------- arms


def _face_on(kpc_per_arcsec=1.0):
    return DiskGeometry(150.0, 0.0, 0.0, 0.0, kpc_per_arcsec)


def _sky(disk, x_kpc, y_kpc):
    """RA/Dec of disk-plane points of a face-on disk with PA 0 (x north, y west)."""
    x, y = np.asarray(x_kpc, float), np.asarray(y_kpc, float)
    eta, xi = x / disk.kpc_per_arcsec, -y / disk.kpc_per_arcsec  # arcsec north, east
    dec = disk.centre_dec_deg + eta / 3600.0
    ra = disk.centre_ra_deg + xi / 3600.0 / np.cos(np.radians(disk.centre_dec_deg))
    return ra, dec


def test_arm_distance_is_positive_on_the_leading_side():
    disk = _face_on()
    # a lane due north of the centre, from 1 to 3 kpc; clockwise rotation on a north-up,
    # east-left image moves the north side of the disk west (to the right): west leads
    lane = np.array([[1.0, 0.0], [3.0, 0.0]])
    points_ra, points_dec = _sky(disk, [2.0, 2.0], [0.1, -0.1])  # 0.1 kpc west, east
    assert points_ra[0] < points_ra[1]  # west is at the smaller RA
    clockwise = ArmGeometry(disk, (lane,), rotation_sign=1)
    distance = clockwise.signed_distance_kpc(points_ra, points_dec)
    np.testing.assert_allclose(distance, [0.1, -0.1], atol=1e-6)
    counter = ArmGeometry(disk, (lane,), rotation_sign=-1)
    np.testing.assert_allclose(
        counter.signed_distance_kpc(points_ra, points_dec), [-0.1, 0.1], atol=1e-6
    )
    # the direction the lane is traced in does not matter
    reverse = ArmGeometry(disk, (lane[::-1],), rotation_sign=1)
    np.testing.assert_allclose(
        reverse.signed_distance_kpc(points_ra, points_dec), [0.1, -0.1], atol=1e-6
    )
    # the config names the sense on the sky
    section = {"source": "files", "rotation": "clockwise"}
    table = pd.DataFrame({"arm": 0, "ra_deg": _sky(disk, lane[:, 0], lane[:, 1])[0],
                          "dec_deg": _sky(disk, lane[:, 0], lane[:, 1])[1]})  # fmt: skip
    from_config = ArmGeometry.from_config(section, table, disk=disk)
    np.testing.assert_allclose(
        from_config.signed_distance_kpc(points_ra, points_dec), [0.1, -0.1], atol=1e-6
    )


def test_on_arm_band_flips_beyond_corotation_and_polygons_replace_it():
    disk = _face_on()
    lane = np.array([[1.0, 0.0], [3.0, 0.0]])
    ra, dec = _sky(disk, [2.0, 2.0, 2.0, 4.0], [0.3, -0.05, -0.3, 0.0])
    inside = ArmGeometry(disk, (lane,), trailing_kpc=0.1, leading_kpc=0.4)
    # leading 0.3 and trailing 0.05 are in the band, trailing 0.3 is not; beyond the lane's end not
    assert list(inside.on_arm(ra, dec)) == [True, True, False, False]
    beyond = ArmGeometry(
        disk, (lane,), corotation_radius_kpc=1.5, trailing_kpc=0.1, leading_kpc=0.4
    )
    # beyond corotation downstream is the trailing side
    assert list(beyond.on_arm(ra, dec)) == [False, True, True, False]
    square = np.array([[1.9, -1.0], [2.1, -1.0], [2.1, 1.0], [1.9, 1.0]])
    polygons = ArmGeometry(disk, (lane,), regions=(square,))
    assert list(polygons.on_arm(ra, dec)) == [True, True, True, False]


def test_arms_follow_the_synthetic_galaxys_own_convention():
    from starclusters.synthetic.galaxy import arms_table
    from starclusters.synthetic.geometry import GalaxyGeometry, SkyFrame
    from starclusters.synthetic.spec import SyntheticGalaxySpec

    spec = SyntheticGalaxySpec.from_config({"shape_px": [512, 512], "geometry_scale": 0.1})
    geometry = GalaxyGeometry.from_spec(spec, 4.5)
    frame = SkyFrame.from_spec(spec, np.random.default_rng(1))
    arms = ArmGeometry.from_config(
        {"source": "synthetic"}, arms_table(geometry, frame), geometry.metadata()
    )
    rng = np.random.default_rng(2)
    x, y = rng.uniform(-6, 6, 4000), rng.uniform(-6, 6, 4000)
    ra, dec = frame.sky_to_world(*geometry.disk_to_sky(x, y))
    truth = geometry.arm_coordinates(x, y)["distance_kpc"]
    radius = np.hypot(x, y)
    near = (radius > 1.8) & (radius < 5.5) & (np.abs(truth) < 0.1 * radius) & (np.abs(truth) > 0.01)
    ours = arms.signed_distance_kpc(ra, dec)
    assert near.sum() > 200
    assert (np.sign(ours[near]) == np.sign(truth[near])).all()
    np.testing.assert_allclose(ours[near], truth[near], rtol=0.05, atol=0.005)
    assert (arms.on_arm(ra, dec) == geometry.on_arm(x, y)).mean() > 0.97


# ----------------------------------------------------------------------------- layers


def test_layers_are_shifted_grids_that_never_crowd_a_mock():
    """Layer 0 is the thesis' grid; every other layer is the same grid shifted by its own
    offset; within a layer the sites are spacing_px apart, so 64-px stamps never overlap."""
    from starclusters.artificial.grid import layer_offset_px

    mask = np.zeros((512, 448), np.uint8)
    spacing = window = 64
    assert layer_offset_px(83, 0, 0, spacing) == (0, 0)
    offsets = {layer_offset_px(83, 0, layer, spacing) for layer in range(1, 9)}
    assert len(offsets) > 4  # their own shifts
    assert all(-32 <= dy < 32 and -32 <= dx < 32 for dy, dx in offsets)
    assert layer_offset_px(83, 0, 3, spacing) == layer_offset_px(83, 0, 3, spacing)
    assert layer_offset_px(83, 1, 3, spacing) != layer_offset_px(83, 0, 3, spacing)
    thesis = grid_table(mask, window, spacing, 1)
    assert set(thesis["x_px"]) == set(range(32, 448, 64))
    for offset in offsets:
        sites = grid_table(mask, window, spacing, 2, offset)
        assert len(sites) >= 6 * 7 - 2 * 7 - 6  # a row/column may fall off the edge
        y, x = sites["y_px"].to_numpy(), sites["x_px"].to_numpy()
        assert ((y - y[0]) % spacing == 0).all() and ((x - x[0]) % spacing == 0).all()
        assert (y[0] - offset[0] - 32) % spacing == 0 and (x[0] - offset[1] - 32) % spacing == 0
        # stamps of size window around each site: no pixel covered twice
        cover = np.zeros(mask.shape, int)
        for r, c in zip(y, x, strict=True):
            cover[r - window // 2 : r + window // 2, c - window // 2 : c + window // 2] += 1
        assert cover.max() == 1
        assert usable_centres(mask, window)[y, x].all()


def test_layers_draw_their_own_mocks_and_noise():
    seeds = {artificial_seed(83, 0, layer) for layer in range(6)}
    assert len(seeds) == 6 and artificial_seed(83, 0, 0) == artificial_seed(83, 0)
    draws = {float(compose_rng(83, 0, layer).uniform()) for layer in range(6)}
    assert len(draws) == 6


def test_the_draw_is_densest_at_the_magnitude_limits(small_population):
    """Keeping by the expected magnitude: 1 at the edge, far_keep far from it."""
    from starclusters.artificial.draw import edge_keep, edge_margin_mag

    limits = {"F336W": 24.0, "F438W": 23.5, "F814W": 23.0}
    assert edge_margin_mag({"F336W": 25.0, "F438W": 23.0, "F814W": 22.0}, limits, "all") == 1.0
    assert edge_margin_mag({"F336W": 25.0, "F438W": 23.0, "F814W": 22.0}, limits, "any") == -1.0
    keep = edge_keep(limits, "all", 1.0, 0.25)(small_population)
    p = {
        log_mass: keep({"log_age_yr": 8.0, "log_mass_msun": log_mass, "av_mag": 0.5})
        for log_mass in np.arange(2.0, 6.01, 0.25)
    }
    assert min(p.values()) == pytest.approx(0.25, abs=0.02)  # far from the edge
    assert max(p.values()) > 0.9  # at it
    best = max(p, key=p.get)
    margin = edge_margin_mag(
        small_population.expected_magnitudes(8.0, 10.0**best, 0.5), limits, "all"
    )
    assert abs(margin) < 0.7
    with pytest.raises(ValueError, match="far_keep"):
        edge_keep(limits, "all", 1.0, 0.0)
    assert edge_keep(limits, "all", 1.0, 1.0)(small_population)({}) == 1.0


# ----------------------------------------------------------------------------- reference node

REFERENCE = {"log_age_yr": 7.0, "log_mass_msun": 4.0, "half_width_dex": 0.25}


def test_reference_sites_are_a_seeded_fraction_of_each_shard():
    from starclusters.artificial.draw import reference_sites
    from starclusters.errors import ConfigError

    picked = reference_sites(123, 0, 4000, 0.12)
    assert picked.dtype == bool and abs(picked.mean() - 0.12) < 0.015
    np.testing.assert_array_equal(picked, reference_sites(123, 0, 4000, 0.12))
    assert not np.array_equal(picked, reference_sites(123, 1, 4000, 0.12))
    assert not np.array_equal(picked, reference_sites(124, 0, 4000, 0.12))
    assert not reference_sites(123, 0, 50, 0.0).any()
    with pytest.raises(ConfigError, match="reference_fraction"):
        reference_sites(123, 0, 5, 1.0)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("magnitude_cut", "all"),
        ("edge_width_mag", 0),
        ("far_keep", 0),
        ("far_keep", 1.5),
        ("reference_fraction", 1.0),
        ("reference_fraction", "0.1"),
        ("bogus", 1),
    ],
)
def test_draw_settings_name_the_bad_key(key, value):
    from starclusters.artificial.settings import DrawSettings
    from starclusters.errors import ConfigError

    assert DrawSettings.from_config(None) == DrawSettings()
    assert DrawSettings.from_config({"far_keep": 1}).far_keep == 1
    with pytest.raises(ConfigError, match=f"^artificial.draw.{key}"):
        DrawSettings.from_config({key: value})


def test_reference_box_is_the_node_within_the_banks_grid():
    from starclusters.artificial.settings import reference_box
    from starclusters.errors import ConfigError

    ages = np.round(np.arange(6.6, 10.1001, 0.05), 6)
    bank = {"log_mass_msun": {"min": 3.5, "max": 5.5}, "eff_gamma": {"min": 2.0}}
    node_ages, mocks = reference_box(REFERENCE, ages, bank)
    np.testing.assert_allclose(node_ages, np.arange(6.75, 7.2501, 0.05))
    assert mocks == {"log_mass_msun": {"min": 3.75, "max": 4.25}, "eff_gamma": {"min": 2.0}}
    assert bank["log_mass_msun"] == {"min": 3.5, "max": 5.5}  # not changed in place
    _, clipped = reference_box({**REFERENCE, "log_mass_msun": 3.6}, ages, bank)
    assert clipped["log_mass_msun"] == {"min": 3.5, "max": 3.85}
    for node in ({**REFERENCE, "log_age_yr": 11.0}, {**REFERENCE, "log_mass_msun": 6.0}):
        with pytest.raises(ConfigError, match="artificial.reference"):
            reference_box(node, ages, bank)


def test_the_reference_draw_fills_the_node_and_changes_no_other_mock(
    small_population, default_config
):
    """A fraction of the sites get mocks inside the node's box (no thinning); the others
    are the grid draw's first mocks, as without the fraction, in site order."""
    from conftest import gaussian_renderer

    from starclusters.artificial.draw import render_artificial_mocks

    renderer = gaussian_renderer()
    mocks = {**default_config["mocks"], "log_mass_msun": {"min": 3.5, "max": 5.5}}
    common = dict(
        population=small_population,
        renderer=renderer,
        mocks=mocks,
        av_grid_mag=np.array([0.0, 1.0]),
        limits_mag={},
        require="none",
        keep=None,
    )
    n = 40
    plain_stamps, plain = render_artificial_mocks(2, 99, n, **common)
    assert "reference_draw" not in plain
    stamps, table = render_artificial_mocks(
        2, 99, n, **common, reference_fraction=0.3, reference=REFERENCE
    )
    at_node = table["reference_draw"].to_numpy(bool)
    assert 4 <= at_node.sum() <= 24 and len(table) == len(stamps) == n
    node = table[at_node]
    assert (np.abs(node["log_age_yr"] - 7.0) <= 0.25 + 1e-9).all()
    assert node["log_mass_msun"].between(3.75, 4.25).all()
    # the other sites hold the grid draw's mocks in order: the first ones fraction 0 gives
    k = int((~at_node).sum())
    columns = ["log_age_yr", "log_mass_msun", "av_mag", "seed"]
    np.testing.assert_array_equal(
        table.loc[~at_node, columns].to_numpy(), plain[columns].to_numpy()[:k]
    )
    np.testing.assert_array_equal(stamps[~at_node], plain_stamps[:k])
    assert stamps[at_node].sum(axis=(1, 2, 3)).min() > 0
    from starclusters.errors import ConfigError

    with pytest.raises(ConfigError, match="artificial.reference"):
        render_artificial_mocks(2, 99, n, **common, reference_fraction=0.3)
