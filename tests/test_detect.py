"""Detection: tiles and halos, exactness against predict(), NaN policy, steps, merging, WCS,
the fast mode against the exact one, refusal of mismatched models, the command line and the
memory estimate."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from astropy.io import fits
from astropy.wcs import WCS

from starclusters.cli import main
from starclusters.detect.maps import MAPS, merge_tiles, read_maps
from starclusters.detect.settings import DetectSettings
from starclusters.detect.stage import detect_images, detect_tile, merge_maps, write_plan
from starclusters.detect.tiles import (
    FAST_ACTIVATION_BYTES,
    check_plan,
    halo_px,
    nearest_centre,
    plan_tiles,
    tile_memory_mb,
    tiles_of,
    window_start,
)
from starclusters.errors import ConfigError, InputFileError
from starclusters.io import read_table
from starclusters.model.checkpoint import FORMAT_VERSION, MODEL_FORMAT, _asdict
from starclusters.model.codec import ParameterGrids
from starclusters.model.inference import predict
from starclusters.model.network import ClusterNetwork, NetworkSpec
from starclusters.model.spec import n_head_outputs, network_weights, spec_defaults
from starclusters.mosaic.prepare import write_image, write_mask

BANDS = ["F336W", "F438W", "F814W"]
WINDOW = 32
SHAPE = (64, 83)  # not a multiple of the 32-px tiles below
SCALE = 0.04
GRIDS = {
    "log_age_yr": {"min": 6.6, "max": 10.1, "bins": 4},
    "av_mag": {"min": 0.0, "max": 3.0, "bins": 3},
    "log_mass_msun": {"min": 3.5, "max": 5.5, "bins": 3},
    "log_rh_arcsec": {"min": -1.4, "max": -0.4, "bins": 3},
    "visibility": {"min": 0.1, "max": 1000.0, "bins": 4},
}
SPEC = {"stage_blocks": (1, 1), "stage_channels": (8, 16), "stem_channels": 4, "fc_width": 8}
ESTIMATE = {name: key for name, (key, _, _) in MAPS.items()}


def mosaic_wcs(shape=SHAPE) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [204.25, -29.87]
    wcs.wcs.crpix = [shape[1] / 2, shape[0] / 2]
    wcs.wcs.cdelt = [-SCALE / 3600, SCALE / 3600]
    return wcs


#: NetworkSpec keys of a dense-ready network (detect.mode fast)
DENSE = {"padding": "valid", "input_norm": "fixed"}


def save_model(path, seed=0, head="softmax", window=WINDOW, bands=BANDS, **spec_keys):
    """A randomly initialised tiny ClusterNetwork, saved as training exports it."""
    grids = ParameterGrids.from_config(GRIDS)
    age, av, mass = grids.shape_3d
    spec = NetworkSpec(
        in_bands=len(bands),
        window_px=window,
        n_age=age,
        n_av=av,
        n_mass=mass,
        n_rh=3,
        n_visibility=4,
        head=head,
        **SPEC,
        **spec_keys,
    )
    torch.manual_seed(seed)
    model = ClusterNetwork(spec)
    if spec.input_norm == "fixed":
        model.set_input_scale([0.1, 0.2, 0.15][: len(bands)])
    with torch.no_grad():  # non-trivial BatchNorm statistics
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
    meta = {
        "spec": _asdict(spec),
        "grids": grids.to_dict(),
        "bands": list(bands),
        "window_px": window,
        "pixel_scale_arcsec": SCALE,
    }
    state = {"format": MODEL_FORMAT, "version": FORMAT_VERSION, "meta": meta}
    torch.save({**state, "model": model.state_dict(), "history": []}, path)
    return path


def save_mosaic(folder, shape=SHAPE, seed=1):
    """Bands (counts/s, BAND cards, WCS) and a mask with blank, saturated and catalogue bits."""
    rng = np.random.default_rng(seed)
    images = rng.gamma(2.0, 0.05, (3, *shape)).astype(np.float32)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    images += (3.0 * np.exp(-((yy - 30) ** 2 + (xx - 40) ** 2) / 8.0)).astype(np.float32)
    mask = np.zeros(shape, np.uint8)
    mask[:6, -10:] = 1  # off the footprint: blank, NaN in one band
    images[1, :6, -10:] = np.nan
    mask[40:43, 20:23] |= 2  # saturated
    mask[25, 50] |= 4  # catalogue contaminant
    wcs = mosaic_wcs(shape)
    paths = []
    for band, image in zip(BANDS, images, strict=True):
        paths.append(folder / f"{band}.fits")
        write_image(paths[-1], image, wcs, {"BAND": band})
    write_mask(folder / "mask.fits", mask, wcs)
    return paths, folder / "mask.fits", images, mask


def config(**detect):
    return {
        "bands": BANDS,
        "window_px": WINDOW,
        "pixel_scale_arcsec": SCALE,
        "model": {"grids": GRIDS},
        "detect": {"mode": "exact", "step_px": 1, "tile_px": 32, "batch_size": 64, **detect},
    }


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """One torch thread: the tiny network gains nothing from more, and on a busy machine
    spinning OpenMP threads make it many times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("detect")
    bands, mask, images, mask_array = save_mosaic(folder)
    model = save_model(folder / "model.pt")
    reference = folder / "one_tile.fits"  # one tile, step 1: the reference maps
    settings = DetectSettings(tile_px=512, batch_size=50)
    detect_images(model, bands, reference, mask_path=mask, settings=settings)
    maps, wcs, header = read_maps(reference)
    return {
        "folder": folder,
        "bands": bands,
        "mask": mask,
        "images": images,
        "mask_array": mask_array,
        "model": model,
        "maps": maps,
        "wcs": wcs,
        "header": header,
    }


# ------------------------------------------------------------------------------------ tiles


@pytest.mark.parametrize(("shape", "tile_px"), [((64, 83), 32), ((64, 64), 32), ((5, 7), 512)])
def test_tiles_cover_every_pixel_once(shape, tile_px):
    plan = plan_tiles(shape, tile_px)
    check_plan(plan, shape)
    assert list(plan["t"]) == list(range(len(plan)))
    assert len(plan) == -(-shape[0] // tile_px) * -(-shape[1] // tile_px)
    count = np.zeros(shape, int)
    for tile in tiles_of(plan):
        count[tile.core] += 1
        assert tile.ny <= tile_px and tile.nx <= tile_px
    assert (count == 1).all()
    with pytest.raises(ValueError, match="exactly once"):
        check_plan(plan.iloc[:-1], shape)


def test_halos_hold_every_window_the_core_needs():
    shape, step = (64, 83), 3
    halo = halo_px(WINDOW, step)
    assert halo_px(64) == 33
    for tile in tiles_of(plan_tiles(shape, 32)):
        ry0, ry1, rx0, rx1 = tile.region(shape, halo)
        assert (ry0, rx0) == (max(tile.y0 - halo, 0), max(tile.x0 - halo, 0))
        assert (ry1, rx1) == (min(tile.y0 + tile.ny + halo, 64), min(tile.x0 + tile.nx + halo, 83))
        for lo, n, r0, r1, size in (
            (tile.y0, tile.ny, ry0, ry1, 64),
            (tile.x0, tile.nx, rx0, rx1, 83),
        ):
            centres = nearest_centre(np.arange(lo, lo + n), step)
            first, last = window_start(centres, WINDOW), window_start(centres, WINDOW) + WINDOW
            # inside what was read, unless the window leaves the mosaic (then it is incomplete)
            assert ((first >= r0) | (first < 0)).all() and ((last <= r1) | (last > size)).all()


def test_nearest_centre():
    assert list(nearest_centre(np.arange(5), 1)) == [0, 1, 2, 3, 4]
    assert list(nearest_centre(np.arange(5), 2)) == [0, 2, 2, 4, 4]
    assert list(nearest_centre(np.arange(7), 3)) == [0, 0, 3, 3, 3, 6, 6]
    assert window_start(40, 64) == 8 and window_start(40, 65) == 8


# ------------------------------------------------------------------------------- exactness


def test_map_equals_predict_on_the_window_cut_by_hand(data):
    from starclusters.model.checkpoint import load_model

    model, grids, _ = load_model(data["model"])
    maps, images = data["maps"], data["images"]
    finite = np.argwhere(np.isfinite(maps["CLASS"]))
    picks = finite[np.random.default_rng(3).choice(len(finite), 12, replace=False)]
    picks = np.vstack([picks, [[16, 16], [48, 66], [30, 40]]])  # first/last complete, the source
    lo = WINDOW // 2
    windows = np.stack([images[:, y - lo : y + lo, x - lo : x + lo] for y, x in picks])
    expected = predict(model, windows, grids)
    for name, key in ESTIMATE.items():
        np.testing.assert_allclose(
            maps[name][picks[:, 0], picks[:, 1]], expected[key], rtol=1e-5, atol=1e-6
        )


def test_masked_edge_and_blank_touching_pixels_are_nan(data):
    maps, mask = data["maps"], data["mask_array"]
    lo = WINDOW // 2
    valid = np.zeros(SHAPE, bool)  # the window [y - 16, y + 16) lies inside the mosaic
    valid[lo : SHAPE[0] - lo + 1, lo : SHAPE[1] - lo + 1] = True
    blank = (mask & 1) > 0
    for y, x in np.argwhere(valid):
        if blank[y - lo : y + lo, x - lo : x + lo].any():
            valid[y, x] = False
    valid &= mask == 0
    for name in MAPS:
        assert (np.isfinite(maps[name]) == valid).all(), name
    assert np.isnan(maps["CLASS"][41, 21]) and np.isnan(maps["CLASS"][25, 50])  # bits 2 and 4
    assert ((maps["CLASS"][valid] >= 0) & (maps["CLASS"][valid] <= 1)).all()


def test_step_fills_from_the_nearest_evaluated_centre(data, tmp_path):
    out = tmp_path / "step3.fits"
    settings = DetectSettings(step_px=3, tile_px=32, batch_size=64)
    detect_images(data["model"], data["bands"], out, mask_path=data["mask"], settings=settings)
    maps, _, header = read_maps(out)
    assert header["DETSTEP"] == 3
    # the step-1 maps sampled at the nearest centre; NaN where they are NaN at either pixel
    reference = data["maps"]
    finite = np.isfinite(reference["CLASS"])
    ys, xs = np.nonzero(finite)
    cy, cx = nearest_centre(ys, 3), nearest_centre(xs, 3)
    assert (cy % 3 == 0).all() and ((ys != cy) | (xs != cx)).any()
    inside = (cy < SHAPE[0]) & (cx < SHAPE[1])
    for name in MAPS:
        expected = np.full(ys.shape, np.nan, np.float32)
        expected[inside] = reference[name][cy[inside], cx[inside]]
        assert np.isfinite(expected).mean() > 0.8
        np.testing.assert_allclose(maps[name][ys, xs], expected, rtol=1e-5, atol=1e-6)
        assert np.isnan(maps[name][~finite]).all()


# ---------------------------------------------------------------------------- tiles, merge


def test_workflow_tiles_merge_to_the_one_tile_maps_with_the_wcs(data, tmp_path):
    plan_path = tmp_path / "tiles.parquet"
    assert write_plan(data["mask"], 32, plan_path) == 6
    plan = read_table(plan_path)
    assert plan.attrs["meta"]["mosaic_shape"] == list(SHAPE)
    tiles = [tmp_path / f"tiles/{t}.fits" for t in plan["t"]]
    for t, path in enumerate(tiles):
        detect_tile(data["bands"], data["mask"], data["model"], plan_path, t, path, config())
    with fits.open(tiles[5]) as hdul:  # the last tile: 32 × 19 px at (32, 64)
        assert hdul["CLASS"].data.shape == (32, 19) and hdul[0].header["TILEX0"] == 64
        assert WCS(hdul["AV"].header).wcs.crpix[0] == pytest.approx(SHAPE[1] / 2 - 64)
    out = tmp_path / "maps.fits"
    merge_maps(tiles, plan_path, data["mask"], out, tile_px=32)
    maps, wcs, header = read_maps(out)
    for name in MAPS:
        assert maps[name].dtype == np.float32 and maps[name].shape == SHAPE
        np.testing.assert_array_equal(np.isnan(maps[name]), np.isnan(data["maps"][name]))
        np.testing.assert_allclose(maps[name], data["maps"][name], rtol=1e-5, atol=1e-6)
    mosaic = WCS(fits.getheader(data["mask"])).celestial
    assert wcs.to_header_string() == mosaic.to_header_string()
    assert (header["DETMODE"], header["DETSTEP"], header["NTILES"]) == ("exact", 1, 6)
    assert header["MODEL"] == "model.pt" and len(header["MODELSHA"]) == 64
    with fits.open(out) as hdul:
        assert [h.name for h in hdul[1:]] == list(MAPS)
        assert hdul["LOG_AGE"].header["BUNIT"] == "log(yr)" and hdul["AV"].header["BUNIT"] == "mag"
    assert not list(tmp_path.glob(".*.tmp"))


def test_merge_refuses_missing_and_foreign_tiles(data, tmp_path):
    assert write_plan(data["mask"], 64, tmp_path / "plan.parquet") == 2
    plan = read_table(tmp_path / "plan.parquet")
    tiles = [tmp_path / "0.fits", tmp_path / "1.fits"]
    for t, path in enumerate(tiles):
        args = (data["mask"], data["model"], tmp_path / "plan.parquet", t, path)
        detect_tile(data["bands"], *args, config(tile_px=64))
    out = tmp_path / "out.fits"
    with pytest.raises(InputFileError, match="missing tile 1"):
        merge_tiles([tiles[0], tmp_path / "nowhere.fits"], plan, None, out)
    with pytest.raises(InputFileError, match="1 tile files for a plan of 2"):
        merge_tiles(tiles[:1], plan, None, out)
    with pytest.raises(InputFileError, match="holds tile 1, expected 0"):
        merge_tiles(tiles[::-1], plan, None, out)
    with pytest.raises(InputFileError, match="made for a 64 × 83 mosaic, the tile plan covers"):
        merge_tiles(tiles, plan_tiles((64, 90), 64), None, out)
    with fits.open(tiles[1], mode="update") as hdul:
        hdul[0].header["DETSTEP"] = 2
    with pytest.raises(InputFileError, match="1.fits: DETSTEP = 2, other tiles .* have 1"):
        merge_tiles(tiles, plan, None, out)
    assert not out.exists() and not list(tmp_path.glob(".*.tmp"))


# ------------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(bands=["F336W", "F814W", "F438W"]), r"bands: the model was trained"),
        (lambda c: c.update(window_px=64), r"window_px"),
        (lambda c: c.update(pixel_scale_arcsec=0.05), r"pixel_scale_arcsec"),
        (lambda c: c["model"]["grids"]["av_mag"].update(bins=4), r"model\.grids\.av_mag"),
        (lambda c: c["detect"].update(mode="fast"), r"detect\.mode: fast needs a dense-ready"),
        (lambda c: c["detect"].update(step_px=0), r"detect\.step_px"),
    ],
)
def test_mismatched_model_or_config_is_refused_before_any_work(data, tmp_path, change, message):
    import copy

    bad = copy.deepcopy(config())
    change(bad)
    write_plan(data["mask"], 32, tmp_path / "plan.parquet")
    out = tmp_path / "t.fits"
    with pytest.raises(ConfigError, match=message):
        detect_tile(
            data["bands"], data["mask"], data["model"], tmp_path / "plan.parquet", 0, out, bad
        )
    assert not out.exists()


def test_regression_network_and_wrong_pixel_scale_are_refused(data, tmp_path):
    regression = save_model(tmp_path / "regression.pt", head="regression")
    with pytest.raises(ConfigError, match="model.head: .*regression"):
        detect_images(regression, data["bands"], tmp_path / "maps.fits", mask_path=data["mask"])
    bands = []
    for band, image in zip(BANDS, data["images"], strict=True):
        wcs = mosaic_wcs()
        wcs.wcs.cdelt = [-0.05 / 3600, 0.05 / 3600]
        bands.append(tmp_path / f"{band}.fits")
        write_image(bands[-1], image, wcs, {"BAND": band})
    with pytest.raises(ConfigError, match="pixel_scale_arcsec: .*0.05″ pixels"):
        detect_images(data["model"], bands, tmp_path / "maps.fits")
    with pytest.raises(
        InputFileError, match="F814W.fits: BAND = 'F814W' but band 0 should be F336W"
    ):
        detect_images(data["model"], data["bands"][::-1], tmp_path / "maps.fits", bands=BANDS)
    assert not (tmp_path / "maps.fits").exists()


def test_fast_mode_refuses_a_network_that_is_not_dense_ready(data, default_config, tmp_path):
    import copy

    from starclusters.config import check_config

    changed = copy.deepcopy(default_config)
    changed["detect"]["mode"] = "fast"
    changed["model"].update(padding="same", input_norm="fixed")
    with pytest.raises(ConfigError, match=r"detect\.mode: fast .*model\.padding: same"):
        check_config(changed)
    changed["model"].update(padding="valid", input_norm="fixed")
    check_config(changed)
    fast = DetectSettings(mode="fast", tile_px=32)
    with pytest.raises(ConfigError, match=r"detect\.mode: fast .*model\.input_norm: window"):
        detect_images(data["model"], data["bands"], tmp_path / "m.fits", settings=fast)
    assert not (tmp_path / "m.fits").exists()


# ------------------------------------------------------------------------------ fast mode


@pytest.fixture(scope="module")
def dense(tmp_path_factory):
    """A dense-ready model and its exact-mode maps at steps 1 and 3 (tiles of 32 px)."""
    folder = tmp_path_factory.mktemp("dense")
    bands, mask, _, _ = save_mosaic(folder)
    model = save_model(folder / "dense.pt", seed=4, **DENSE)
    maps = {}
    for mode in ("exact", "fast"):
        for step in (1, 3):
            out = folder / f"{mode}_{step}.fits"
            settings = DetectSettings(mode=mode, step_px=step, tile_px=32, batch_size=40)
            detect_images(model, bands, out, mask_path=mask, settings=settings)
            maps[mode, step] = read_maps(out)[0]
    return {"model": model, "maps": maps}


@pytest.mark.parametrize("step", [1, 3])
def test_fast_mode_equals_exact_mode(dense, step):
    exact, fast = dense["maps"]["exact", step], dense["maps"]["fast", step]
    for name in MAPS:
        assert (np.isfinite(exact[name]) == np.isfinite(fast[name])).all(), name
        np.testing.assert_allclose(fast[name], exact[name], rtol=1e-4, atol=1e-5, err_msg=name)
    assert np.isfinite(fast["CLASS"]).mean() > 0.25  # the complete windows: about 30 %
    spread = np.nanstd(exact["CLASS"])
    assert spread > 1e-3  # a random network whose maps vary: the comparison means something


def test_fast_mode_on_the_command_line(dense, data, tmp_path):
    out = tmp_path / "fast.fits"
    argv = ["detect", "--model", str(dense["model"]), "--images", *map(str, data["bands"])]
    argv += ["--mask", str(data["mask"]), "--output", str(out), "--mode", "fast"]
    argv += ["--tile-px", "32", "--step-px", "3"]
    assert main(argv) == 0
    maps, _, header = read_maps(out)
    assert header["DETMODE"] == "fast"
    np.testing.assert_allclose(maps["CLASS"], dense["maps"]["exact", 3]["CLASS"], atol=1e-5)


# ------------------------------------------------------------------------------------- CLI


def test_command_line_writes_the_maps(data, tmp_path):
    out = tmp_path / "cli" / "maps.fits"
    args = ["detect", "--model", str(data["model"]), "--images", *map(str, data["bands"])]
    args += ["--mask", str(data["mask"]), "--output", str(out), "--tile-px", "40"]
    assert main([*args, "--batch-size", "100", "--log-file", str(tmp_path / "detect.log")]) == 0
    maps, _, header = read_maps(out)
    np.testing.assert_allclose(maps["LOG_MASS"], data["maps"]["LOG_MASS"], rtol=1e-5, atol=1e-6)
    assert header["TILEPX"] == 40 and "windows/s" in (tmp_path / "detect.log").read_text()
    assert not [p for p in out.parent.iterdir() if p.name != "maps.fits"]  # scratch tiles gone
    assert main([*args, "--mode", "fast"]) == 1


# ---------------------------------------------------------------------------------- memory


def test_memory_estimate_counts_the_real_network():
    def floats(model):
        return sum(v.numel() for k, v in model.state_dict().items() if "num_batches" not in k)

    for spec in (NetworkSpec(), NetworkSpec.thesis(), NetworkSpec(**SPEC, window_px=WINDOW)):
        outputs = spec.n_age * spec.n_av * spec.n_mass + spec.n_rh + 2 + spec.n_visibility
        counted = network_weights(
            spec.in_bands,
            outputs,
            stage_blocks=spec.stage_blocks,
            stage_channels=spec.stage_channels,
            stage_widths=spec.stage_widths,
            stem_channels=spec.stem_channels,
            fc_width=spec.fc_width,
        )
        assert counted == floats(ClusterNetwork(spec))
    default = NetworkSpec()  # its head sizes are the default grids' bins (one definition)
    assert spec_defaults() == default.__dict__
    heads = default.n_age * default.n_av * default.n_mass + default.n_rh + 2 + default.n_visibility
    assert n_head_outputs() == heads == 20 * 10 * 14 + 14 + 2 + 20
    assert n_head_outputs(GRIDS) == 4 * 3 * 3 + 3 + 2 + 4


def test_memory_of_a_tile_job_from_config(default_config):
    exact_config = {**default_config, "detect": {**default_config["detect"], "mode": "exact"}}
    mb = tile_memory_mb(exact_config)
    assert 800 < mb < 2000  # the tiny default network: mostly the Python + torch runtime
    thesis = {**exact_config, "model": {}, "detect": {**exact_config["detect"], "batch_size": 256}}
    assert tile_memory_mb(thesis) > mb + 500  # the thesis network's activations
    # fast mode: the dense activations of a strip, bounded by FAST_ACTIVATION_BYTES
    fast = tile_memory_mb(
        {**default_config, "detect": {**default_config["detect"], "mode": "fast"}}
    )
    assert mb + 500 < fast < mb + 1.25 * (FAST_ACTIVATION_BYTES + 400 * 2**20) / 2**20
    # auto is sized as the mode the job runs: fast for the dense-ready default network (an
    # exact-sized request would be ~1.2 GB short of the fast mode's strips), exact for the
    # thesis network
    auto = {**default_config["detect"], "mode": "auto"}
    assert tile_memory_mb({**default_config, "detect": auto}) == fast
    assert tile_memory_mb({**thesis, "detect": {**auto, "batch_size": 256}}) == tile_memory_mb(
        thesis
    )
