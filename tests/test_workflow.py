"""The Snakemake workflow end to end on a tiny config: outputs, reruns, lint, profile, bad config."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from conftest import REPO, write_yaml

SNAKEMAKE = [sys.executable, "-m", "snakemake"]
MOCKS = {"mock_shard", "mock_figures", "train", "evaluate_model"}
#: The population analysis (report.smk), downstream of the candidates.
ANALYSIS = {
    "population_figures",
    "population_fit",
    "arm_profiles",
    "spatial_maps",
    "catalog_comparison",
    "analysis_metrics",
}
#: The rules downstream of the value maps.
CATALOG = {"find_peaks", "detection_gallery", "truth_match"} | ANALYSIS
#: The artificial-cluster test (artificial.smk): new mocks, injected per layer.
INJECTION = {"artificial_shard", "artificial_inject"}
#: ... then the search of the injected mosaic (its maps, one job per layer), its peaks, the
#: matches, recall and Fig. 4.2, and the analysis rules that read the matches (report.smk:
#: recovered mocks across the arms).
SEARCH = {"artificial_maps", "artificial_peaks"}
#: The population fits with the selection function, and the metrics that collect them.
FITS = {"population_fit", "analysis_metrics"}
#: The layers pooled, and what reads the pool: the recall, the selection function and the
#: population fits that use it (and the hard-cut fits, whose completeness limit it derives).
POOLED = {"artificial_pool", "artificial_recall", "artificial_class_visibility"}
POOLED |= {"artificial_selection", "population_fit", "arm_profiles", "analysis_metrics"}
POOLED |= {"population_figures"}
MATCHES = {"artificial_match"} | POOLED
#: The validation galaxies (validation.smk): built by the training galaxy's generator ...
VALIDATION_GALAXY = {"validation_galaxy", "validation_mosaic", "validation_truth"}
#: ... searched by the network, and by the classical peer (baseline.smk) like the training galaxy
VALIDATION_CNN = {"validation_maps", "validation_peaks"}
VALIDATION_BASELINE = {"validation_baseline_photometry", "validation_baseline_catalog"}
BASELINE = {"baseline_photometry", "baseline_catalog"}
#: Every catalog scored against its truth, and the scorecard of them all (scorecard.smk).
SCORE = {"score_catalog", "scorecard"}
#: The network's diagnosis on every scored galaxy, and the summary of them all (scorecard.smk).
DIAGNOSIS = {"diagnose_catalog", "diagnosis"}
#: A change to the stars or PSFs also changes the synthetic galaxy and what is cut from it.
GALAXY = {
    "synthetic_galaxy",
    "mosaic",
    "truth",
    "background_shard",
    "mock_figures",
    "train",
    "evaluate_model",
}


def tiny_config(default_config: dict) -> dict:
    """The default config with coarse grids so that the whole photometry stage takes seconds."""
    config = copy.deepcopy(default_config)
    config["galaxy"] = "tiny"
    config["photometry"]["isochrones"]["log_age_yr"] = {"min": 6.6, "max": 10.0, "step": 0.2}
    config["photometry"]["extinction"]["av_mag"] = {"min": 0.0, "max": 3.0, "step": 0.5}
    config["psf"].update(oversampling=3, size_arcsec=3.0, core_radius_px=4)
    config["mocks"].update(n_shards=2, per_shard=3, log_mass_msun={"min": 3.5, "max": 4.5})
    config["mosaic"]["synthetic"] = {
        "shape_px": [256, 256],
        "geometry_scale": 0.03,
        "n_clusters": 6,
        "n_associations": 2,
        "n_background_galaxies": 2,
        "n_foreground_stars": 1,
    }
    config["backgrounds"].update(
        n_shards=1,
        per_shard=12,
        block_px=64,
        split_fractions={"train": 0.5, "val": 0.25, "test": 0.25},
    )
    config["train"].update(
        epochs=1,
        steps_per_epoch=2,
        batch_size=8,
        val_size=8,
        eval_batch_size=8,
        # the tiny bank's 6 seeds hash to 0.30, 0.31, 0.567, 0.569, 0.618, 0.657: 3/1/2 mocks
        mock_split_fractions={"train": 0.568, "val": 0.05, "test": 0.382},
    )
    config["evaluate"].update(n_mocks=8, n_backgrounds=6, batch_size=8)
    # the smallest dense-ready network (the default's 1 M parameters would only slow CI)
    config["model"].update(
        stage_blocks=[1, 1, 1, 1], stage_channels=[16, 32, 64, 128], stem_channels=16, fc_width=64
    )
    # 4 tiles of 128 px; every 4th pixel: ~2,400 windows of the tiny network
    config["detect"].update(tile_px=128, step_px=4, batch_size=64)
    # the tiny network's class stays far below 0.95: take every peak as a candidate
    config["detect"].update(class_threshold=0.0, visibility_threshold=0.0, gallery_size=4)
    # mocks every 48 px: 25 sites on the 256² mosaic, those with complete windows kept; two
    # layers, so that the second one's shifted grid and the pooling are run
    config["artificial"].update(spacing_px=48, spatial_bin_px=128, n_layers=2)
    # the tiny network finds ~1 in 10 mocks: fit the population down to 5 % completeness
    config["analysis"]["population_fit"] = {"min_completeness": 0.05}
    # one small validation galaxy of the same generator (its own seed and part of the disk)
    config["validation"] = {
        "galaxies": {
            "other": {
                "seed": 7,
                "synthetic": {
                    "shape_px": [192, 192],
                    "n_clusters": 4,
                    "field_offset_arcsec": [1.0, -1.0],
                },
            }
        }
    }
    # the classical peer's CI calibration on fewer stars and mocks
    config["baseline"] = {"calibration_n": 100}
    return config


def snakemake(workdir: Path, config_path: Path, *args: str, check: bool = True):
    """Run Snakemake on the repository's Snakefile with ``workdir`` as working directory."""
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    result = subprocess.run(
        [
            *SNAKEMAKE,
            "-s",
            str(REPO / "Snakefile"),
            "-d",
            str(workdir),
            "--configfile",
            str(config_path),
            *args,
        ],
        capture_output=True,
        text=True,
        env=env,
        cwd=workdir,
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        )
    return result


def planned_jobs(workdir: Path, config_path: Path) -> dict[str, int]:
    """Rule -> number of jobs a dry run would execute (``all`` excluded)."""
    out = snakemake(workdir, config_path, "-n", "--cores", "1")
    text = out.stdout + out.stderr
    if "Nothing to be done" in text:
        return {}
    table = text.split("Job stats:")[1].split("total")[0]
    jobs = {m[1]: int(m[2]) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", table, flags=re.MULTILINE)}
    jobs.pop("all", None)
    return jobs


def with_detection(rules: set[str]) -> set[str]:
    """``rules`` plus the detection rules that rerun after them.

    A new mosaic reruns the checkpoint detect_plan; a dry run cannot list the tile jobs of
    a plan that is not made yet, only the merge (Snakemake re-evaluates the DAG once the
    checkpoint has run). A new model on the same mosaic reruns every tile and the merge.
    The artificial-cluster test follows: a new mosaic gives new sites and injected
    mosaics, a new model or injected mosaic new maps of the injected mosaic (one job per
    layer, artificial.maps_jobs: per_layer), new value maps new matches and Fig. 4.2.
    """
    if "mosaic" in rules:
        rules = rules | {"detect_plan", "merge_maps", "artificial_grid", "artificial_search_mask"}
        rules = rules | INJECTION
    elif "train" in rules:
        rules = rules | {"detect_tile", "merge_maps"}
    if rules & {"train", "artificial_inject", "artificial_search_mask"}:
        rules = rules | SEARCH
    if "merge_maps" in rules:  # new maps: new peaks, candidates, gallery, truth match
        rules = rules | CATALOG | {"artificial_class_visibility"}
    if rules & {"artificial_peaks", "artificial_inject"}:
        rules = rules | MATCHES
    if "artificial_pool" in rules:
        rules = rules | POOLED
    return with_scorecard(rules)


def with_scorecard(rules: set[str]) -> set[str]:
    """``rules`` plus the validation galaxies' searches, the classical peer and the scores that
    rerun after them. The validation galaxies themselves are in the expectations: they share
    the training galaxy's stars, PSFs and mask settings, not its own synthetic keys. The
    network's search of them follows a new galaxy or model; the peer follows a new mosaic,
    PSF or mock bank (its CI calibration and SED library), its fits also the isochrones; a
    new catalog, truth or benchmarked job is scored again. The network's diagnosis follows
    a new galaxy (truth, contaminants, mosaic, mask) or a new search of it, not the peer.
    """
    if rules & VALIDATION_GALAXY or "train" in rules:
        rules = rules | VALIDATION_CNN
    if rules & VALIDATION_CNN:  # a validation galaxy's new candidates: its population fit
        rules = rules | {"population_fit", "analysis_metrics"}
    if rules & VALIDATION_GALAXY or rules & {"mock_shard", "psf"}:
        rules = rules | VALIDATION_BASELINE
    if rules & {"mosaic", "mock_shard", "psf"}:
        rules = rules | BASELINE
    if rules & {"isochrones", "extinction"}:
        rules = rules | {"baseline_catalog", "validation_baseline_catalog"}
    scored = {"truth", "find_peaks"} | VALIDATION_GALAXY | VALIDATION_CNN
    if rules & (scored | VALIDATION_BASELINE | BASELINE):
        rules = rules | SCORE
    if rules & (scored | {"synthetic_galaxy", "mosaic"}):
        rules = rules | DIAGNOSIS
    if rules & scored:  # the network's new scores: its matches check the selection function
        rules = rules | {"population_fit", "analysis_metrics"}
    return rules


def planned_rules(workdir: Path, config_path: Path) -> set[str]:
    """Rules a dry run would execute (``all`` excluded)."""
    return set(planned_jobs(workdir, config_path))


@pytest.fixture(scope="module")
def built(tmp_path_factory, default_config):
    """A working directory where the tiny config has been run to completion."""
    workdir = tmp_path_factory.mktemp("workflow")
    config_path = write_yaml(workdir / "config.yaml", tiny_config(default_config))
    snakemake(workdir, config_path, "--cores", "2")
    return workdir, config_path


def test_run_produces_the_photometry_products(built):
    from starclusters.io import read_table

    workdir, _ = built
    out = workdir / "results" / "tiny" / "photometry"
    iso = read_table(out / "isochrones.parquet")
    assert {
        "log_age_yr",
        "mini_msun",
        "log_teff_k",
        "abs_mag_F336W",
        "abs_mag_F438W",
        "abs_mag_F814W",
    } <= set(iso.columns)
    assert iso["log_age_yr"].nunique() == 18
    assert iso.attrs["meta"]["band_method"]["F336W"].startswith("synthetic photometry")
    ext = read_table(out / "extinction.parquet")
    assert sorted(ext["band"].unique()) == ["F336W", "F438W", "F814W"]
    assert ext["av_mag"].nunique() == 7
    for png in ("isochrones.png", "cluster_colours.png"):
        assert (out / png).stat().st_size > 10_000
    assert (workdir / "results" / "tiny" / "logs" / "isochrones.log").exists()
    # nothing left half-written
    assert not list(out.glob(".*.tmp"))


def test_run_produces_the_mock_bank(built):
    from starclusters.io import read_cube, read_table
    from starclusters.mocks.psf import psf_enclosed_fraction

    workdir, _ = built
    out = workdir / "results" / "tiny"
    for shard in (0, 1):
        stamps, header = read_cube(out / "mocks" / f"shard_{shard}.fits")
        table = read_table(out / "mocks" / f"shard_{shard}.parquet")
        assert stamps.shape == (3, 3, 64, 64)
        assert header["BANDS"] == "F336W,F438W,F814W" and header["BUNIT"] == "counts/s"
        assert len(table) == 3 and (table["shard"] == shard).all()
        for column in (
            "log_age_yr",
            "log_mass_msun",
            "av_mag",
            "eff_a_arcsec",
            "eff_gamma",
            "log_rh_arcsec",
            "n_stars",
            "mag_F336W",
            "mag_F814W",
            "seed",
        ):
            assert column in table.columns
        assert (table["mag_F814W"] < 23.0).all()
        assert np.isfinite(stamps).all() and (stamps.sum(axis=(2, 3)) > 0).all()
    for band in ("F336W", "F438W", "F814W"):
        assert 0.9 < psf_enclosed_fraction(out / "psf" / f"{band}.fits") <= 1.0
    for png in ("mock_grid.png", "bank_colours.png"):
        assert (out / "mocks" / png).stat().st_size > 10_000


def test_run_produces_the_mosaic_and_backgrounds(built):
    from astropy.io import fits

    from starclusters.io import read_cube, read_table

    workdir, _ = built
    out = workdir / "results" / "tiny"
    shapes = set()
    for band in ("F336W", "F438W", "F814W"):
        with fits.open(out / "mosaic" / f"{band}.fits") as hdul:
            shapes.add(hdul[0].data.shape)
            assert hdul[0].header["CTYPE1"].startswith("RA")
    assert len(shapes) == 1
    assert fits.getdata(out / "mosaic" / "mask.fits").shape in shapes
    truth = read_table(out / "mosaic" / "truth.parquet")
    assert len(truth) == 6
    assert {"x_px", "y_px", "ra_deg", "dec_deg", "log_age_yr", "log_mass_msun", "av_mag"} <= set(
        truth.columns
    )
    assert {"rh_arcsec", "visibility", "visibility_F336W", "x_ref_px"} <= set(truth.columns)
    measured = truth["visibility"].notna()
    assert measured.any() and (truth.loc[measured, "visibility"] >= 0).all()
    cube, header = read_cube(out / "backgrounds" / "shard_0.fits")
    table = read_table(out / "backgrounds" / "shard_0.parquet")
    assert cube.shape == (12, 3, 64, 64) and len(table) == 12
    assert set(table["split"]) <= {"train", "val", "test"}
    assert np.isfinite(cube).all()


def test_saturated_foreground_stars_are_masked_and_truth_lands_on_the_grid(built):
    from astropy.io import fits
    from astropy.wcs import WCS

    from starclusters.io import read_table

    workdir, _ = built
    out = workdir / "results" / "tiny" / "mosaic"
    mask = fits.getdata(out / "mask.fits")
    wcs = WCS(fits.getheader(out / "F814W.fits")).celestial
    stars = read_table(out / "contaminants.parquet").query("kind == 'foreground_star'")
    x, y = wcs.world_to_pixel_values(stars["ra_deg"], stars["dec_deg"])
    inside = (x > 2) & (y > 2) & (x < mask.shape[1] - 3) & (y < mask.shape[0] - 3)
    assert inside.any()
    for xi, yi in zip(x[inside], y[inside], strict=True):
        assert mask[int(round(yi)), int(round(xi))] & 2  # SATURATED bit
    truth = read_table(out / "truth.parquet")
    x, y = wcs.world_to_pixel_values(truth["ra_deg"], truth["dec_deg"])
    assert ((x > -0.5) & (x < mask.shape[1]) & (y > -0.5) & (y < mask.shape[0])).mean() > 0.8


def test_download_rule_against_a_local_server(tmp_path, default_config):
    """mosaic.source files with a download URL: the rule fetches and checks the file."""
    import hashlib
    import http.server
    import threading
    from functools import partial

    from astropy.io import fits

    served = tmp_path / "served"
    served.mkdir()
    fits.PrimaryHDU(np.ones((8, 8), np.float32)).writeto(served / "f336w.fits")
    digest = hashlib.sha256((served / "f336w.fits").read_bytes()).hexdigest()
    handler = partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    try:
        config = tiny_config(default_config)
        url = f"http://127.0.0.1:{httpd.server_address[1]}/f336w.fits"
        config["mosaic"].update(
            source="files",
            files={"F438W": "elsewhere/f438w.fits", "F814W": "elsewhere/f814w.fits"},
            download={"F336W": {"url": url, "sha256": digest}},
        )
        config["galaxy_geometry"] = {"source": "none"}  # 'synthetic' needs the synthetic galaxy
        config["analysis"]["comparison"] = {"source": "none"}  # 'truth' likewise
        config_path = write_yaml(tmp_path / "config.yaml", config)
        snakemake(tmp_path, config_path, "--cores", "1", "results/tiny/mosaic/raw/F336W.fits")
        assert fits.getdata(tmp_path / "results/tiny/mosaic/raw/F336W.fits").sum() == 64
        config["mosaic"]["download"]["F336W"]["sha256"] = "0" * 64
        config_path = write_yaml(tmp_path / "bad.yaml", config)
        (tmp_path / "results/tiny/mosaic/raw/F336W.fits").unlink()
        result = snakemake(
            tmp_path, config_path, "--cores", "1", "results/tiny/mosaic/raw/F336W.fits", check=False
        )
        assert result.returncode != 0
        assert (
            "checksum"
            in result.stdout
            + result.stderr
            + (tmp_path / "results/tiny/logs/download_F336W.log").read_text()
        )
        assert not (tmp_path / "results/tiny/mosaic/raw/F336W.fits").exists()
    finally:
        httpd.shutdown()


def test_weight_maps_are_inputs_of_the_mosaic_rule(tmp_path, default_config):
    """mosaic.source files with archive entries: each weight map kept apart from its image
    (a `weight` path, the _wht file beside a _sci image) is an input of the mosaic rule, so
    that a new weight map reruns the mosaic; `weight: none` and WHT extensions add none."""
    from astropy.io import fits

    data = tmp_path / "data"
    data.mkdir()
    names = ["x_f336w_drz_sci.fits", "x_f336w_drz_wht.fits", "f438w.fits", "f438w_weight.fits"]
    for name in [*names, "y_f814w_drz_sci.fits", "y_f814w_drz_wht.fits"]:
        fits.PrimaryHDU(np.ones((8, 8), np.float32)).writeto(data / name)
    config = tiny_config(default_config)
    config["mosaic"].update(
        source="files",
        files={
            "F336W": "data/x_f336w_drz_sci.fits",
            "F438W": {"image": "data/f438w.fits", "weight": "data/f438w_weight.fits"},
            "F814W": {"image": "data/y_f814w_drz_sci.fits", "weight": "none"},
        },
    )
    config["galaxy_geometry"] = {"source": "none"}  # 'synthetic' needs the synthetic galaxy
    config["analysis"]["comparison"] = {"source": "none"}  # 'truth' likewise
    config_path = write_yaml(tmp_path / "config.yaml", config)
    out = snakemake(tmp_path, config_path, "-n", "--cores", "1", "results/tiny/mosaic/mask.fits")
    inputs = re.search(r"rule mosaic:\n\s+input: (.*)\n", out.stdout).group(1).split(", ")
    assert sorted(inputs) == sorted(f"data/{name}" for name in [*names, "y_f814w_drz_sci.fits"])


def test_a_galaxy_with_its_own_psf_gets_its_own_psf_files(tmp_path, default_config):
    """A validation galaxy observed with the halo (and wider) is drawn and measured with PSF
    files of its own; the other galaxy keeps the training PSFs. The robustness matrix's
    factor galaxies are built like validation galaxies (another metallicity: an isochrone
    table of their own) and scored, and the rule robustness takes every score."""
    config = tiny_config(default_config)
    config["validation"] = {
        "galaxies": {
            "haloed": {"seed": 9001, "synthetic": {"psf_halo": True, "psf_fwhm_scale": 1.1}},
            "plain": {"seed": 9002, "synthetic": {}},
        }
    }
    config["robustness"] = {
        "base": "plain",
        "factors": {"solar": {"metallicity_z": 0.02}, "far": {"distance_mpc": 5.0}},
    }
    config_path = write_yaml(tmp_path / "config.yaml", config)
    targets = [
        f"results/tiny/validation/{name}/mosaic/truth.parquet" for name in ("haloed", "plain")
    ]
    targets.append("results/tiny/robustness/robustness.parquet")
    out = snakemake(tmp_path, config_path, "-n", "-p", "--cores", "1", *targets).stdout
    assert out.count("rule observed_isochrones:") == 1
    assert "results/tiny/photometry/observed_z0.02/isochrones.parquet" in out
    robustness = re.search(r"rule robustness:\n\s+input: (.*)\n", out).group(1)
    for field in ("plain", "plain-solar", "plain-far"):
        assert f"results/tiny/scorecard/{field}/cnn_matched.parquet" in robustness
    own = "results/tiny/psf/observed_halo1_fwhm1.1"
    assert out.count("rule observed_psf:") == len(default_config["bands"])
    galaxies = re.findall(r"rule validation_galaxy:\n\s+input: (.*)\n", out)
    truths = re.findall(r"rule validation_truth:\n\s+input: (.*)\n", out)
    assert sum(own in line for line in galaxies) == 1
    assert sum(own in line for line in truths) == 1
    training = "results/tiny/psf/F336W.fits"
    assert (
        sum(training in line and own not in line for line in galaxies) == 3
    )  # plain and its factors


def test_run_trains_the_network(built):
    from starclusters.io import read_table
    from starclusters.model.checkpoint import load_model

    workdir, _ = built
    out = workdir / "results" / "tiny" / "model"
    model, grids, meta = load_model(out / "model.pt")
    assert meta["bands"] == ["F336W", "F438W", "F814W"] or tuple(meta["bands"]) == (
        "F336W",
        "F438W",
        "F814W",
    )
    history = read_table(out / "history.parquet")
    assert list(history["epoch"]) == [1] and np.isfinite(history["val_loss"]).all()
    assert (out / "training.png").stat().st_size > 10_000
    assert (out / "checkpoint.pt").exists()


def test_run_evaluates_the_network_on_held_out_mocks(built):
    from starclusters.io import read_table
    from starclusters.model.evaluate import metric

    workdir, _ = built
    out = workdir / "results" / "tiny" / "model"
    table = read_table(out / "test_predictions.parquet")
    assert table["is_cluster"].sum() == 8 and (~table["is_cluster"]).sum() == 6
    metrics = read_table(out / "test_metrics.parquet")
    for quantity in ("log_age_yr", "av_mag", "log_mass_msun", "log_rh_arcsec"):
        assert np.isfinite(metric(metrics, quantity, "bound95_abs"))
    assert 0 <= metric(metrics, "class", "roc_auc") <= 1
    assert 0 <= metric(metrics, "age_av_mass", "hpd95_coverage") <= 1
    for name in ("test_parameters.png", "test_class_visibility.png", "test_calibration.png"):
        assert (out / name).stat().st_size > 10_000


def test_run_makes_the_value_maps(built):
    from astropy.io import fits
    from astropy.wcs import WCS

    from starclusters.io import read_table

    workdir, _ = built
    out = workdir / "results" / "tiny"
    assert list(read_table(out / "detect" / "tiles.parquet")["t"]) == [0, 1, 2, 3]
    mask = fits.getheader(out / "mosaic" / "mask.fits")
    mosaic = WCS(mask).celestial
    with fits.open(out / "detect" / "maps.fits") as hdul:
        names = [h.name for h in hdul[1:]]
        assert names == ["CLASS", "VISIBILITY", "LOG_AGE", "LOG_MASS", "AV", "LOG_RH"]
        assert (hdul[0].header["DETMODE"], hdul[0].header["DETSTEP"]) == ("fast", 4)
        assert hdul[0].header["NTILES"] == 4 and hdul[0].header["MODEL"] == "model.pt"
        for hdu in hdul[1:]:
            assert hdu.data.shape == (mask["NAXIS2"], mask["NAXIS1"]) and hdu.data.dtype.kind == "f"
            assert WCS(hdu.header).to_header_string() == mosaic.to_header_string()
        cls = hdul["CLASS"].data
        assert np.isnan(cls[:32]).all() and np.isnan(cls[:, -31:]).all()  # incomplete windows
        assert np.isfinite(cls).mean() > 0.3
        assert ((cls[np.isfinite(cls)] >= 0) & (cls[np.isfinite(cls)] <= 1)).all()
        assert hdul["AV"].header["BUNIT"] == "mag"
    assert (out / "detect" / "maps.png").stat().st_size > 10_000
    assert "windows/s" in (out / "logs" / "detect_tile_0.log").read_text()
    assert not list((out / "detect").glob("**/.*.tmp"))


def test_run_makes_the_candidate_catalog(built):
    from regions import Regions

    from starclusters.detect.catalog import CATALOG_COLUMNS
    from starclusters.io import read_table

    workdir, _ = built
    out = workdir / "results" / "tiny" / "detect"
    peaks = read_table(out / "peaks.parquet")
    candidates = read_table(out / "candidates.parquet")
    assert set(CATALOG_COLUMNS) <= set(candidates.columns)
    assert 0 < len(candidates) <= len(peaks)
    assert np.isfinite(candidates["galactocentric_kpc"]).all()
    assert candidates.attrs["meta"]["geometry"]["source"] == "synthetic"
    assert len(Regions.read(str(out / "candidates.reg"), format="ds9")) == len(candidates)
    matched = read_table(out / "truth_match.parquet")
    assert len(matched) == 6 and {"detected", "candidate_id", "peak_id"} <= set(matched.columns)
    for png in ("gallery.png", "truth_match.png"):
        assert (out / png).stat().st_size > 10_000


def test_run_analyses_the_candidates(built):
    """The population analysis runs on the tiny catalog and its figures go into the report."""
    from starclusters.io import read_table

    workdir, config_path = built
    out = workdir / "results" / "tiny" / "analysis"
    for png in ("parameters", "histograms", "radial", "arm_distance", "maps", "comparison"):
        assert (out / f"{png}.png").stat().st_size > 10_000
    metrics = read_table(out / "metrics.parquet").set_index(["quantity", "sample"])
    n = len(read_table(workdir / "results" / "tiny" / "detect" / "candidates.parquet"))
    assert metrics.loc[("n_candidates", "all"), "measured"] == n
    assert metrics.loc[("mass_function_slope", "log t < 8.5"), "injected"] == -2.0
    assert {"measured", "error", "truth_sample", "injected"} <= set(metrics.columns)
    report = workdir / "report.zip"
    snakemake(workdir, config_path, "--report", str(report))
    assert report.stat().st_size > 100_000


def test_run_makes_the_artificial_cluster_test(built):
    """Fresh mocks on a grid per layer, injected into a copy of the mosaic each, searched for
    with the same detection, matched, pooled and counted."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from starclusters.io import read_table

    workdir, _ = built
    out = workdir / "results" / "tiny"
    art = out / "artificial"
    matches = read_table(art / "matches.parquet")
    assert set(matches["layer"]) == {0, 1}
    assert not matches.duplicated(["layer", "mock_id"]).any()
    assert {"x_px", "y_px", "ra_deg", "dec_deg", "log_age_yr", "log_mass_msun"} <= set(matches)
    assert {"av_mag", "rh_arcsec", "visibility", "on_arm", "log_background_counts_s"} <= set(
        matches
    )
    assert {"recovered_3px", "recovered_6px", "peak_class", "peak_visibility"} <= set(matches)
    assert (matches["recovered_6px"] >= matches["recovered_3px"]).all()
    # never a mock of the bank, nor the same mock twice
    bank = set(read_table(out / "mocks" / "shard_0.parquet")["seed"])
    bank |= set(read_table(out / "mocks" / "shard_1.parquet")["seed"])
    assert not bank & set(matches["seed"]) and matches["seed"].is_unique
    offsets = set()
    for layer, truth in matches.groupby("layer"):
        root = art / f"layer_{layer}"
        x0, y0 = int(truth["x_px"].min()) % 48, int(truth["y_px"].min()) % 48
        offsets.add((x0, y0))
        # one grid per layer, 48 px apart
        assert ((truth["x_px"] - x0) % 48 == 0).all() and ((truth["y_px"] - y0) % 48 == 0).all()
        for band in ("F336W", "F438W", "F814W"):
            header = fits.getheader(out / "mosaic" / f"{band}.fits")
            injected = fits.getheader(root / f"{band}.fits")
            assert WCS(injected).to_header_string() == WCS(header).to_header_string()
            assert injected["EXPTIME"] == header["EXPTIME"]
            assert injected["ARTNMOCK"] == len(truth)
            original = fits.getdata(out / "mosaic" / f"{band}.fits")
            brighter = fits.getdata(root / f"{band}.fits") - original
            # light added in the layer's own mocks' windows only
            windows = np.zeros(original.shape, bool)
            for x, y in zip(truth["x_px"].astype(int), truth["y_px"].astype(int), strict=True):
                windows[y - 32 : y + 32, x - 32 : x + 32] = True
            assert (np.nan_to_num(brighter[~windows]) == 0).all()
            assert np.nansum(brighter[windows]) > 0
    assert (24, 24) in offsets and len(offsets) == 2  # the thesis' grid, and a shifted one
    recall = read_table(art / "recall.parquet")
    assert {"total", "age_mass", "age_av", "mass_av", "spatial"} == set(recall["kind"])
    total = recall[(recall["kind"] == "total") & (recall["region"] == "all")]
    # the mocks drawn at the reference node lie in its box and count at the node only
    node = matches[matches["reference_draw"]]
    assert len(node) and (np.abs(node["log_age_yr"] - 7.0) <= 0.25 + 1e-9).all()
    assert node["log_mass_msun"].between(3.75, 4.25).all()
    assert list(total["n_injected"]) == [len(matches) - len(node)] * 2
    metrics = read_table(art / "metrics.parquet")
    assert {"recall", "reference_recall", "bias_log_age_yr"} <= set(metrics["metric"])
    for png in ("recall_map.png", "recall_parameters.png", "class_visibility.png"):
        assert (art / png).stat().st_size > 10_000
    # the detection's own maps of the injected mosaic, made only near the mocks
    made = fits.getheader(out / "detect" / "maps.fits")
    with fits.open(art / "layer_0" / "maps.fits") as hdul:
        for key in ("DETMODE", "DETSTEP", "MODELSHA"):
            assert hdul[0].header[key] == made[key]
        assert hdul["CLASS"].data.shape == original.shape
        searched = np.isfinite(hdul["CLASS"].data)
    whole = np.isfinite(fits.getdata(out / "detect" / "maps.fits", extname="CLASS"))
    assert 0 < searched.sum() < whole.sum()


def test_run_makes_the_selection_function_and_the_population_fits(built):
    """The pooled injections give a selection function on a grid (with its calibration and
    figures); every galaxy's population is fitted with it, checked against its own truth
    clusters, and the fits reach analysis/metrics.parquet."""
    from starclusters.artificial.selection import SELECTION_FEATURES, SelectionFunction
    from starclusters.io import read_table

    workdir, _ = built
    out = workdir / "results" / "tiny"
    art = out / "artificial"
    grid = read_table(art / "selection.parquet")
    assert set(SELECTION_FEATURES) | {"p_detected"} <= set(grid.columns)
    meta = grid.attrs["meta"]
    assert meta["n_injections"] == len(read_table(art / "matches.parquet"))
    selection = SelectionFunction.read(art / "selection.parquet")
    p = selection(np.array([7.0, 9.0]), np.array([4.0, 5.0]))
    assert p.shape == (2,) and ((p >= 0) & (p <= 1)).all()
    calibration = read_table(art / "selection_calibration.parquet")
    assert calibration["n"].sum() == meta["n_injections"]
    for png in ("selection_calibration.png", "selection_contours.png"):
        assert (art / png).stat().st_size > 10_000
    fits = out / "analysis" / "population_fit"
    for field in ("training", "other"):
        table = read_table(fits / f"{field}.parquet")
        assert list(table["label"]) == ["schechter", "schechter_fixed_slope", "power_law"]
        assert (table["injected_slope"].iloc[:2] == -2.0).all()
        check = table.attrs["meta"]["selection_check"]
        assert check[0]["bin"] == "all" and check[0]["n"] > 0
        assert (fits / f"{field}.png").stat().st_size > 10_000
    training = read_table(fits / "training.parquet").set_index("label")
    # the tiny sample is fitted (min_completeness 0.05 above the tiny network's base rate)
    assert training.loc["power_law", "n_clusters"] > 3
    assert np.isfinite(training.loc["power_law", "slope"])
    metrics = read_table(out / "analysis" / "metrics.parquet").set_index(["quantity", "sample"])
    for field in ("training", "other"):
        assert ("completeness_fit_power_law_slope", field) in metrics.index
        assert ("selection_predicted_recall", field) in metrics.index
    assert metrics.loc[("completeness_fit_slope", "training"), "injected"] == -2.0


def test_run_makes_the_scorecard(built):
    """The validation galaxy is built and searched, the classical peer runs on both galaxies,
    and every catalog is scored against its truth, side by side."""
    from starclusters.detect.catalog import CATALOG_COLUMNS
    from starclusters.io import read_table

    workdir, _ = built
    out = workdir / "results" / "tiny"
    other = out / "validation" / "other"
    truth = read_table(other / "mosaic" / "truth.parquet")
    assert len(truth) == 4 and np.isfinite(truth[["x_px", "y_px"]].to_numpy()).all()
    training = read_table(out / "mosaic" / "truth.parquet")
    assert not set(truth["seed"]) & set(training["seed"])  # clusters of its own
    assert (other / "detect" / "candidates.parquet").exists()
    for root in (out, other):
        photometry = read_table(root / "baseline" / "photometry.parquet")
        assert {"x", "y", "ci_mag", "mag_F336W", "mag_err_F814W", "is_cluster"} <= set(photometry)
        assert photometry.attrs["meta"]["ci_cut"]["cut_mag"] > 0
        for fit in ("grid", "library"):
            catalog = read_table(root / "baseline" / f"catalog_{fit}.parquet")
            assert list(catalog.columns[: len(CATALOG_COLUMNS)]) == list(CATALOG_COLUMNS)
            assert len(catalog) == int(photometry["is_cluster"].sum())
    table = read_table(out / "scorecard" / "scorecard.parquet")
    assert set(table["galaxy"]) == {"tiny", "other"}
    assert set(table["role"]) == {"training", "validation"}
    assert set(table["method"]) == {"cnn", "classical_grid", "classical_library"}
    recall = table[(table["table"] == "summary") & (table["metric"] == "recall")]
    assert len(recall) == 6 and ((recall["value"] >= 0) & (recall["value"] <= 1)).all()
    per_mpx = table[(table["table"] == "summary") & (table["metric"] == "wall_s_per_mpx")]
    assert (per_mpx["value"] > 0).all()
    summary = read_table(out / "scorecard" / "summary.parquet")
    assert {"mean", "std", "n_galaxies"} <= set(summary.columns)
    for png in ("recall_visibility", "parameters", "age_mass_recall", "summary"):
        assert (out / "scorecard" / f"{png}.png").stat().st_size > 10_000
    # the network's diagnosis: a reason per truth cluster, a kind per false candidate
    from starclusters.scorecard.diagnose import DETECTED, FALSE_KINDS, MISS_REASONS

    for field, n_truth in (("training", len(training)), ("other", 4)):
        diagnosis = read_table(out / "scorecard" / field / "cnn_diagnosis.parquet")
        assert len(diagnosis) == n_truth
        assert set(diagnosis["reason"]) <= {DETECTED, *MISS_REASONS} - {"other"}
        false = read_table(out / "scorecard" / field / "cnn_false.parquet")
        assert set(false["kind"]) <= set(FALSE_KINDS)
    counts = read_table(out / "scorecard" / "diagnosis.parquet")
    assert set(counts["galaxy"]) == {"tiny", "other"}
    assert (out / "scorecard" / "diagnosis.png").stat().st_size > 10_000


def test_nothing_to_do_after_a_run(built):
    assert planned_rules(*built) == set()


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["photometry"]["extinction"].update(r_v=3.3),
            {"extinction", "photometry_figures"} | MOCKS | GALAXY | VALIDATION_GALAXY,
        ),
        (
            lambda c: c["photometry"]["isochrones"].update(metallicity_z=0.02),
            {"isochrones", "photometry_figures"} | MOCKS | GALAXY | VALIDATION_GALAXY,
        ),
        (
            lambda c: c["photometry"].update(distance_mpc=5.0),
            {"photometry_figures"} | MOCKS | GALAXY | VALIDATION_GALAXY,
        ),
        (
            lambda c: c["photometry"]["filter_curves"].update(F814W="HST_ACS_WFC_F814W"),
            {"isochrones", "extinction", "photometry_figures", "psf"}
            | MOCKS
            | GALAXY
            | VALIDATION_GALAXY,
        ),
        # the mocks' magnitude cuts do not touch the galaxy (but the artificial mocks)
        (
            lambda c: c["photometry"]["magnitude_limits"].update(F814W=22.5),
            {"photometry_figures"} | MOCKS | INJECTION,
        ),
        (lambda c: c["mocks"].update(truncation_arcsec=2.0), MOCKS | GALAXY | VALIDATION_GALAXY),
        (lambda c: c["psf"].update(size_arcsec=3.2), {"psf"} | MOCKS | GALAXY | VALIDATION_GALAXY),
        # one more shard adds one job (and the figures, which read every shard)
        (lambda c: c["mocks"].update(n_shards=3), MOCKS),
        (lambda c: c["mosaic"]["synthetic"].update(n_clusters=5), GALAXY),
        (
            lambda c: c["mosaic"]["mask"].update(saturation_grow_arcsec=0.8),
            {"mosaic", "truth", "background_shard", "mock_figures", "train", "evaluate_model"}
            | {"validation_mosaic", "validation_truth"},
        ),
        (
            lambda c: c["backgrounds"].update(block_px=80),
            {"background_shard", "mock_figures", "train", "evaluate_model"},
        ),
        (lambda c: c["train"].update(lr_start=0.0025), {"train", "evaluate_model"}),
        (lambda c: c["model"].update(fc_width=32), {"train", "evaluate_model"}),
        (lambda c: c["evaluate"].update(n_mocks=9), {"evaluate_model"}),
        # star groups (hard negatives) are built, drawn and shown only when training uses them
        (lambda c: c.update(star_groups={"per_shard": 7}), set()),
        (
            lambda c: c["train"].update(star_group_fraction=0.25),
            {"star_group_shard", "star_group_figure", "train", "evaluate_model"},
        ),
        # a value for a band that is not used changes nothing
        (lambda c: c["photometry"]["vega_zeropoint_mag"].update(F555W=25.8), set()),
        # the step changes the tiles and the artificial test's search radius
        (
            lambda c: c["detect"].update(step_px=3),
            {"detect_tile", "merge_maps", "artificial_search_mask"} | VALIDATION_CNN,
        ),
        (
            lambda c: c["detect"].update(tile_px=64),
            {"detect_plan", "merge_maps"} | VALIDATION_CNN | SEARCH,
        ),
        # the catalog's keys rerun the catalog rules only, each only those that use it
        (
            lambda c: c["detect"].update(class_threshold=0.1),
            CATALOG | {"artificial_peaks", "artificial_class_visibility", "validation_peaks"},
        ),
        # the smoothing also sets the artificial test's search radius
        (
            lambda c: c["detect"].update(smooth_sigma_px=2.0),
            CATALOG | {"artificial_peaks", "artificial_search_mask", "validation_peaks"},
        ),
        # the validation galaxies' catalogs keep their own synthetic geometry
        (
            lambda c: c["galaxy_geometry"].update(source="none"),
            CATALOG | {"artificial_peaks", "artificial_pool", "baseline_catalog"},
        ),
        # the scorecard's and the peer's own keys
        # (the population fits check the selection function on the network's matches)
        (
            lambda c: c["scorecard"].update(match_radius_px=2.0),
            SCORE | DIAGNOSIS | {"population_fit", "analysis_metrics"},
        ),
        # the local background of the scores and of the selection function's injections
        (
            lambda c: c["scorecard"].update(background_annulus_px=[6.0, 14.0]),
            SCORE | {"artificial_pool"},
        ),
        # the diagnosis' own keys rerun the diagnosis only, not the scores
        (lambda c: c["scorecard"]["diagnosis"].update(blend_radius_px=6.0), DIAGNOSIS),
        (lambda c: c["baseline"].update(aperture_radius_px=3.5), BASELINE | VALIDATION_BASELINE),
        (
            lambda c: c["validation"]["galaxies"]["other"]["synthetic"].update(n_clusters=3),
            VALIDATION_GALAXY,
        ),
        (lambda c: c["detect"].update(gallery_size=3), {"detection_gallery"}),
        (lambda c: c["detect"].update(match_radius_px=6.0), {"detection_gallery", "truth_match"}),
        # each analysis key reruns the analysis rules that use it
        # (the metrics read the mass-function table that population_figures rewrites)
        (
            lambda c: c["analysis"]["radial"].update(window_kpc=0.8),
            {"population_figures", "analysis_metrics"},
        ),
        (
            lambda c: c["analysis"]["arm_distance"].update(window_kpc=0.2),
            {"arm_profiles", "analysis_metrics"},
        ),
        (
            lambda c: c["analysis"]["comparison"].update(match_radius_arcsec=0.2),
            {"catalog_comparison", "analysis_metrics"},
        ),
        (
            lambda c: c["analysis"]["mass_function"].update(completeness_log_mass_msun=3.8),
            {"population_figures", "analysis_metrics"},
        ),
        (
            lambda c: c["analysis"]["mass_function"].update(completeness_level=0.5),
            {"population_figures", "analysis_metrics"},
        ),
        (lambda c: c["analysis"].update(map_max_px=128), {"spatial_maps"}),
        (
            lambda c: c["analysis"]["population_fit"].update(min_completeness=0.2),
            {"population_fit", "analysis_metrics"},
        ),
        # the artificial-cluster test's keys rerun what they shape
        (
            lambda c: c["artificial"].update(spacing_px=40),
            {"artificial_grid", "artificial_search_mask"} | INJECTION,
        ),
        # the second layer's offset comes from the seed stream
        (
            lambda c: c["artificial"].update(seed_offset=1),
            {"artificial_grid", "artificial_search_mask"} | INJECTION,
        ),
        (lambda c: c["artificial"]["draw"].update(far_keep=0.5), INJECTION),
        # one more layer: its own grid, mocks, search and matches; the pool and what reads it
        (
            lambda c: c["artificial"].update(n_layers=3),
            {"artificial_grid", "artificial_search_mask"} | INJECTION | SEARCH | MATCHES,
        ),
        (lambda c: c["artificial"].update(search="whole_mosaic"), {"artificial_search_mask"}),
        # the injected mosaics' maps tile by tile: the same maps by other jobs
        (
            lambda c: c["artificial"].update(maps_jobs="per_tile"),
            {"artificial_tile"} | SEARCH | MATCHES,
        ),
        # a fraction of the mocks at the reference node: new mocks, the rest follows
        (lambda c: c["artificial"]["draw"].update(reference_fraction=0.5), INJECTION),
        # the same largest radius: the same search
        (lambda c: c["artificial"].update(match_radii_px=[2.0, 6.0]), MATCHES),
        # (the population fits read the recall's metrics for the scatter of their kernel)
        (lambda c: c["artificial"].update(spatial_bin_px=64), {"artificial_recall"} | FITS),
        # the reference node: where its recall is counted, and where its mocks are drawn
        (
            lambda c: c["artificial"]["reference"].update(log_mass_msun=4.2),
            {"artificial_recall"} | FITS | INJECTION,
        ),
        (
            lambda c: c.update(arms={"source": "none"}),
            {"artificial_pool", "arm_profiles", "spatial_maps", "analysis_metrics"},
        ),
    ],
)
def test_config_change_reruns_exactly_the_affected_stages(built, change, expected):
    workdir, config_path = built
    config = yaml.safe_load(config_path.read_text())
    change(config)
    changed = write_yaml(workdir / "changed.yaml", config)
    assert planned_rules(workdir, changed) == with_detection(expected)


def test_a_new_shard_runs_alone(built):
    workdir, config_path = built
    config = yaml.safe_load(config_path.read_text())
    config["mocks"]["n_shards"] += 1
    changed = write_yaml(workdir / "more_shards.yaml", config)
    assert planned_jobs(workdir, changed) == {
        "mock_shard": 1,
        "mock_figures": 1,
        "train": 1,
        "evaluate_model": 1,
        "detect_tile": 4,
        "merge_maps": 1,
        "find_peaks": 1,
        "detection_gallery": 1,
        "truth_match": 1,
        **dict.fromkeys(ANALYSIS, 1),
        "population_fit": 2,  # the training and the validation galaxy
        **dict.fromkeys(SEARCH | {"artificial_match"}, 2),
        **dict.fromkeys(POOLED - ANALYSIS, 1),
        # the new bank: the peer's CI calibration and SED library; the new network
        **dict.fromkeys(VALIDATION_CNN | {"baseline_photometry", "scorecard"}, 1),
        "validation_baseline_photometry": 1,
        "baseline_catalog": 2,
        "validation_baseline_catalog": 2,
        "score_catalog": 6,  # 2 galaxies x (network + 2 fits of the peer)
        "diagnose_catalog": 2,  # the network's diagnosis of the 2 galaxies
        "diagnosis": 1,
    }


def test_lint_is_clean():
    result = subprocess.run([*SNAKEMAKE, "--lint"], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0
    assert "Congratulations" in result.stdout + result.stderr, result.stdout + result.stderr


def test_slurm_profile_parses(tmp_path, default_config):
    config_path = write_yaml(tmp_path / "config.yaml", tiny_config(default_config))
    profile = REPO / "profiles" / "slurm"
    result = snakemake(tmp_path, config_path, "-n", "--profile", str(profile))
    assert "isochrones" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda c: c.update(bands=["F336W", "F999W", "F814W"]), r"bands\.1: 'F999W' is not one of"),
        (
            lambda c: c["photometry"].update(distance_mpc="far"),
            r"photometry\.distance_mpc: 'far' is not of type",
        ),
        (
            lambda c: c["photometry"]["extinction"].update(r_v=31),
            r"photometry\.extinction\.r_v: 31 is greater than the maximum",
        ),
        (lambda c: c["photometry"].update(distanc_mpc=4.5), r"distanc_mpc"),
        (
            lambda c: c.update(bands=["F336W", "F555W", "F814W"]),
            r"photometry\.vega_zeropoint_mag\.F555W",
        ),
        (
            lambda c: c["photometry"]["isochrones"].update(metallicity_z=0.09),
            r"photometry\.isochrones\.metallicity_z",
        ),
        (
            lambda c: c["photometry"]["isochrones"]["log_age_yr"].update(min=5.8),
            r"photometry\.isochrones\.log_age_yr",
        ),
        (lambda c: c["psf"].update(size_arcsec=2.0), r"psf\.size_arcsec"),
        (lambda c: c["psf"].update(oversampling=4), r"psf\.oversampling"),
        (lambda c: c["detect"].update(weight_window_px=4), r"detect\.weight_window_px"),
        (
            lambda c: c["scorecard"]["diagnosis"].update(annulus_px=[1.0, 9.0]),
            r"scorecard\.diagnosis\.annulus_px",
        ),
        (
            lambda c: c["galaxy_geometry"].update(source="config", centre_ra_deg=1.0),
            r"galaxy_geometry\.centre_dec_deg",
        ),
        (lambda c: c["mocks"].update(rh_arcsec={"min": 5.0, "max": 6.0}), r"mocks\.rh_arcsec"),
        (
            lambda c: c["photometry"]["isochrones"].update(source="cmd", cmd_files=["nowhere.dat"]),
            r"cmd_files: nowhere\.dat does not exist",
        ),
    ],
)
def test_bad_config_stops_with_the_key_named(tmp_path, default_config, change, message):
    config = tiny_config(default_config)
    change(config)
    config_path = write_yaml(tmp_path / "config.yaml", config)
    # isochrone problems surface when the job runs; schema problems before any job
    result = snakemake(tmp_path, config_path, "--cores", "1", check=False)
    assert result.returncode != 0
    logs = "".join(p.read_text() for p in tmp_path.glob("results/*/logs/*.log"))
    assert re.search(message, result.stdout + result.stderr + logs), result.stdout + result.stderr
    # a failed job leaves no output behind
    assert not list(tmp_path.glob("results/*/photometry/isochrones.parquet"))


def test_training_reruns_after_a_config_change(built, tmp_path):
    """The stale checkpoint of the old config is set aside, not an error (and not resumed)."""
    import shutil

    workdir, config_path = built
    copy = tmp_path / "copy"
    shutil.copytree(workdir, copy)
    config = yaml.safe_load(config_path.read_text())
    config["train"]["lr_start"] = 0.0025
    changed = write_yaml(copy / "changed.yaml", config)
    snakemake(copy, changed, "--cores", "2")
    log = (copy / "results" / "tiny" / "logs" / "train.log").read_text()
    assert "starting over" in log
