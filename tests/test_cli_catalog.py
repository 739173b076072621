"""The command line from images to a catalog: ``detect --mode auto`` (the default) picks the
fast mode for a dense-ready network and the exact one otherwise, shows windows done / total
with an ETA, and with ``--catalog-dir`` writes the catalog right after the maps;
``catalog`` writes the peaks, candidates and regions that the rule find_peaks' functions
give on the same maps (and a gallery); ``--version``; bad maps give exit status 1 with the
file named. The tiny model and mosaic are those of tests/test_detect.py."""

from __future__ import annotations

import copy
import logging
from importlib.metadata import version

import numpy as np
import pandas as pd
import pytest
from test_detect import (
    BANDS,
    DENSE,
    one_thread,  # noqa: F401 (autouse: one torch thread in this module too)
    save_model,
    save_mosaic,
)

from starclusters.cli import main
from starclusters.detect.candidates_stage import CATALOG_FILES, make_catalog
from starclusters.detect.maps import read_maps
from starclusters.detect.progress import WindowProgress, format_duration
from starclusters.detect.settings import DetectSettings, is_dense_ready, resolve_mode
from starclusters.errors import ConfigError
from starclusters.io import read_table

#: Thresholds low enough that the random tiny network has candidates (its class is ~0.5).
LOW = {"class_threshold": 0.3, "visibility_threshold": 0.0}
LOW_ARGS = ["--class-threshold", "0.3", "--visibility-threshold", "0"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A mosaic, a dense-ready and a per-window model, and ``detect --catalog-dir`` with
    each (default mode: auto)."""
    folder = tmp_path_factory.mktemp("cli")
    bands, mask, _, _ = save_mosaic(folder)
    models = {
        "dense": save_model(folder / "dense.pt", seed=4, **DENSE),
        "window": save_model(folder / "window.pt"),
    }
    logs = {}
    for name, model in models.items():
        argv = ["detect", "--model", str(model), "--images", *map(str, bands)]
        argv += ["--mask", str(mask), "--output", str(folder / name / "maps.fits")]
        argv += ["--tile-px", "32", "--catalog-dir", str(folder / name / "catalog"), *LOW_ARGS]
        argv += ["--log-file", str(folder / f"{name}.log")]
        assert main(argv) == 0
        logs[name] = (folder / f"{name}.log").read_text()
    return {"folder": folder, "bands": bands, "mask": mask, "models": models, "logs": logs}


# ------------------------------------------------------------------------------ auto mode


def test_auto_mode_picks_fast_for_a_dense_ready_model_and_exact_otherwise(run):
    assert DetectSettings().mode == "auto"
    assert (
        is_dense_ready(DENSE)
        and not is_dense_ready({})
        and not is_dense_ready({"padding": "valid"})
    )
    auto = DetectSettings(tile_px=32)
    assert resolve_mode(auto, DENSE).mode == "fast"
    assert resolve_mode(auto, {"padding": "same", "input_norm": "fixed"}).mode == "exact"
    assert resolve_mode(auto, DENSE).tile_px == 32  # only the mode changes
    exact = DetectSettings(mode="exact")
    assert resolve_mode(exact, DENSE) is exact  # a forced mode stays
    # the command line: the maps record the mode, the log says which and why
    for name, mode in (("dense", "fast"), ("window", "exact")):
        assert read_maps(run["folder"] / name / "maps.fits")[2]["DETMODE"] == mode
        assert f"detect.mode auto: {mode} mode, as " in run["logs"][name]
    assert "model.padding: same, model.input_norm: window" in run["logs"]["window"]
    # a forced mode still runs: fast on the dense-ready network gives the auto maps
    out = run["folder"] / "forced.fits"
    argv = ["detect", "--model", str(run["models"]["dense"]), "--images"]
    argv += [*map(str, run["bands"]), "--mask", str(run["mask"]), "--output", str(out)]
    assert main([*argv, "--tile-px", "32", "--mode", "fast"]) == 0
    auto_maps = read_maps(run["folder"] / "dense" / "maps.fits")[0]
    np.testing.assert_array_equal(read_maps(out)[0]["CLASS"], auto_maps["CLASS"])


def test_the_workflow_config_accepts_auto(default_config):
    from starclusters.config import check_config, validate_config

    config = copy.deepcopy(default_config)
    config["detect"]["mode"] = "auto"
    validate_config(config)
    check_config(config)
    # the default model is dense-ready: auto gives the default's mode, fast
    settings = DetectSettings.from_config(config["detect"])
    assert resolve_mode(settings, config["model"]).mode == default_config["detect"]["mode"]


# ------------------------------------------------------------------------------- progress


def test_progress_shows_windows_done_of_all_tiles_and_an_eta(run, caplog):
    # the detect run: one total over the 6 tiles, and the closing line
    assert "6 tile(s) of 32 px" in run["logs"]["dense"]
    assert "detection: 1,646 / 1,646 windows (100.0 %)" in run["logs"]["dense"]
    now = [0.0]
    with caplog.at_level(logging.INFO, "starclusters.detect.progress"):
        with WindowProgress(1000, "detection", log_every_s=30, clock=lambda: now[0]) as bar:
            now[0] = 10.0
            bar.update(100)  # before 30 s: no line
            now[0] = 40.0
            bar.update(300)  # 400 in 40 s: 10 windows/s, 600 left: 60 s
    assert caplog.messages == [
        "detection: 400 / 1,000 windows (40.0 %), 10 windows/s, ETA 1 min 00 s"
    ]
    assert format_duration(3725) == "1 h 02 min" and format_duration(float("inf")) == "?"


# -------------------------------------------------------------------------------- catalog


def test_catalog_equals_make_catalog_on_the_same_maps(run, tmp_path):
    maps, model, bands = run["folder"] / "dense" / "maps.fits", run["models"]["dense"], run["bands"]
    argv = ["catalog", str(maps), "--output-dir", str(tmp_path), "--model", str(model)]
    argv += ["--images", *map(str, bands), "--mask", str(run["mask"]), *LOW_ARGS]
    assert main([*argv, "--gallery", str(tmp_path / "g.png")]) == 0
    band_paths = {band: str(path) for band, path in zip(BANDS, bands, strict=True)}
    peaks, candidates, _ = make_catalog(
        maps,
        LOW,
        {"source": "none"},
        None,
        model_path=model,
        band_paths=band_paths,
        mask_path=run["mask"],
    )
    assert len(candidates) > 0
    assert (peaks["x"] != peaks["peak_x"]).any()  # recentred on the images (and the mask)
    written = {key: tmp_path / name for key, name in CATALOG_FILES.items()}
    pd.testing.assert_frame_equal(read_table(written["peaks"]), peaks)
    pd.testing.assert_frame_equal(read_table(written["candidates"]), candidates)
    # detect --catalog-dir wrote the same
    for key in ("peaks", "candidates"):
        same = read_table(run["folder"] / "dense" / "catalog" / CATALOG_FILES[key])
        pd.testing.assert_frame_equal(same, read_table(written[key]))
    from regions import Regions

    assert len(Regions.read(str(written["regions"]), format="ds9")) == len(candidates)
    meta = read_table(written["candidates"]).attrs["meta"]
    assert meta["distance_mpc"] is None and meta["geometry"]["source"] == "none"
    assert candidates["rh_pc"].isna().all() and candidates["galactocentric_kpc"].isna().all()
    assert (tmp_path / "g.png").stat().st_size > 10_000


def test_catalog_with_distance_and_geometry(run, tmp_path, capsys):
    maps = str(run["folder"] / "window" / "maps.fits")
    geometry = ["--geometry", "204.25", "-29.87", "30", "45"]
    assert main(["catalog", maps, "--output-dir", str(tmp_path), *LOW_ARGS, *geometry]) == 1
    assert "--distance-mpc" in capsys.readouterr().err
    argv = ["catalog", maps, "--output-dir", str(tmp_path), *LOW_ARGS, *geometry]
    assert main([*argv, "--distance-mpc", "4.5"]) == 0
    candidates = read_table(tmp_path / "candidates.parquet")
    assert len(candidates) and np.isfinite(candidates["galactocentric_kpc"]).all()
    assert np.isfinite(candidates["rh_pc"]).all()


def test_catalog_with_a_model_but_no_images_keeps_the_maps_values(run, tmp_path, caplog):
    """The population prior needs the images: without them the candidates are the maps'
    (the same as with the prior off), and the log says so."""
    from starclusters.detect.candidates_stage import catalog_of_maps

    maps, model = run["folder"] / "dense" / "maps.fits", run["models"]["dense"]
    with caplog.at_level(logging.INFO, "starclusters.detect.candidates_stage"):
        paths = catalog_of_maps(maps, tmp_path / "a", detect=LOW, model_path=model)
    assert any("no images given" in m for m in caplog.messages)
    _, plain, _ = make_catalog(maps, {**LOW, "population_prior": False}, {"source": "none"}, None)
    pd.testing.assert_frame_equal(read_table(paths["candidates"]), plain)
    with pytest.raises(ConfigError, match="^detect.weight_window_px"):
        catalog_of_maps(
            maps, tmp_path / "b", detect={**LOW, "weight_window_px": 4}, model_path=model
        )


def test_catalog_recentres_on_images_without_a_model(run, tmp_path, capsys):
    """--images alone move the peaks to their light centroids (the bands' order does not
    matter); --recentre-radius-px 0 keeps the peak pixels; --mask without images stops."""
    maps, bands = run["folder"] / "dense" / "maps.fits", run["bands"]
    argv = ["catalog", str(maps), *LOW_ARGS, "--mask", str(run["mask"])]
    assert main([*argv, "--output-dir", str(tmp_path / "a"), "--images", *map(str, bands)]) == 0
    recentred = read_table(tmp_path / "a" / "peaks.parquet")
    reordered = ["--images", *map(str, bands[::-1])]
    assert main([*argv, "--output-dir", str(tmp_path / "b"), *reordered]) == 0
    pd.testing.assert_frame_equal(
        read_table(tmp_path / "b" / "peaks.parquet")[["x", "y"]], recentred[["x", "y"]]
    )
    off = ["--output-dir", str(tmp_path / "c"), "--images", *map(str, bands)]
    assert main([*argv, *off, "--recentre-radius-px", "0"]) == 0
    pixels = read_table(tmp_path / "c" / "peaks.parquet")
    assert (pixels["x"] == pixels["peak_x"]).all()
    assert (recentred["peak_x"] == pixels["peak_x"]).all()
    assert (recentred["x"] != pixels["x"]).any()
    assert main([*argv, "--output-dir", str(tmp_path / "d")]) == 1
    assert "--mask: the mask of the images; give --images too" in capsys.readouterr().err


def write_test_metrics(path, class_threshold, visibility_threshold):
    """A held-out test's metrics table with only its derived cut (the rows evaluate writes)."""
    from starclusters.io import write_table

    rows = [
        ("thresholds", "derived", "class_threshold", class_threshold),
        ("thresholds", "derived", "visibility_threshold", visibility_threshold),
        ("thresholds", "thesis", "class_threshold", 0.95),
    ]
    table = pd.DataFrame(rows, columns=["quantity", "subset", "metric", "value"])
    write_table(path, table.assign(unit=""))
    return path


def test_derived_thresholds_cut_where_the_held_out_test_says(run, tmp_path, capsys):
    """detect.derived_thresholds (--derived-thresholds TEST_METRICS): the candidates are the
    peaks above the test's derived cut, which the metadata records; without the test's file,
    or with a fixed threshold beside it, the run stops naming the key or option."""
    from starclusters.detect.candidates_stage import catalog_of_maps, thresholds_of
    from starclusters.errors import InputFileError
    from starclusters.model.evaluate import read_derived_thresholds

    maps = run["folder"] / "dense" / "maps.fits"
    metrics = write_test_metrics(tmp_path / "test_metrics.parquet", 0.3, 0.0)
    assert read_derived_thresholds(metrics) == (0.3, 0.0)
    argv = ["catalog", str(maps), "--output-dir", str(tmp_path / "d")]
    assert main([*argv, "--derived-thresholds", str(metrics)]) == 0
    derived = read_table(tmp_path / "d" / "candidates.parquet")
    _, fixed, _ = make_catalog(maps, LOW, {"source": "none"}, None)
    pd.testing.assert_frame_equal(derived, fixed, check_like=True)  # the same cut: (0.3, 0)
    assert thresholds_of(derived, "d") == (0.3, 0.0)
    assert derived.attrs["meta"]["settings"]["derived_thresholds"] is True
    assert derived.attrs["meta"]["thresholds_from"] == str(metrics)
    # another derived cut, other candidates: exactly the peaks above it
    stricter = write_test_metrics(tmp_path / "strict.parquet", 0.5, 0.5)
    peaks, candidates, meta = make_catalog(
        maps, {"derived_thresholds": True}, {"source": "none"}, None, test_metrics_path=stricter
    )
    above = (peaks["class"] > 0.5) & (peaks["visibility"] > 0.5)
    assert len(candidates) == above.sum() < len(fixed)
    assert meta["settings"]["class_threshold"] == 0.5
    # what is refused
    with pytest.raises(ConfigError, match="^detect.derived_thresholds"):
        catalog_of_maps(maps, tmp_path / "e", detect={"derived_thresholds": True})
    assert not (tmp_path / "e").exists()
    assert main([*argv, "--derived-thresholds", str(metrics), "--class-threshold", "0.5"]) == 1
    assert "--derived-thresholds replaces --class-threshold" in capsys.readouterr().err
    bare = tmp_path / "bare.parquet"
    pd.DataFrame(
        {"quantity": ["roc"], "subset": ["all"], "metric": ["auc"], "value": [1.0]}
    ).to_parquet(bare)
    with pytest.raises(InputFileError, match="no derived class_threshold and visibility_thr"):
        read_derived_thresholds(bare)
    pd.DataFrame({"x": [1]}).to_parquet(bare)  # not a metrics table at all
    with pytest.raises(InputFileError, match="no derived class_threshold"):
        read_derived_thresholds(bare)


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"starclusters {version('starclusters')}"


def test_bad_maps_exit_1_naming_the_file(run, tmp_path, capsys):
    missing = tmp_path / "nowhere.fits"
    assert main(["catalog", str(missing), "--output-dir", str(tmp_path / "out")]) == 1
    assert f"{missing}: no such file" in capsys.readouterr().err
    image = run["bands"][0]  # a FITS image, not maps: no CLASS ... extensions
    assert main(["catalog", str(image), "--output-dir", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert f"{image}: no CLASS, VISIBILITY" in err and "not a maps file" in err
    assert not (tmp_path / "out").exists()
