"""Shared helpers: config validation, output lists, the library on sys.path."""

import os
import sys
from pathlib import Path

# The library lives in src/; make it importable for this process and for the jobs
# it starts (also inside --use-conda environments, which hold only the dependencies).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# This sets the variable, it needs no `envvars:`; every job re-parses this file.
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

from starclusters.config import check_config, validate_config  # noqa: E402
from starclusters.photometry import (
    MODEL_VERSION as PHOTOMETRY_MODEL_VERSION,
)  # noqa: E402

# The schema (defaults filled in; a short message naming the key, not Snakemake's dump of
# the schema) and the cross-key checks, before any job starts; the same checks as
# starclusters.config.load_config and `python -m starclusters.config` (make run).
validate_config(config, Path(workflow.basedir) / "config/schema/config.schema.yaml")
check_config(config)

GALAXY = config["galaxy"]
BANDS = list(config["bands"])
PHOT = config["photometry"]
PSF = config["psf"]
MOSAIC = config["mosaic"]


def band_subset(mapping):
    """Only the configured bands' entries, so that unused bands never trigger reruns."""
    return {band: mapping[band] for band in BANDS}


def isochrone_inputs(wildcards):
    """User CMD isochrone files, when the config asks for them."""
    iso = PHOT["isochrones"]
    files = list(iso["cmd_files"]) if iso["source"] == "cmd" else []
    if iso.get("grid_file"):
        files.append(iso["grid_file"])
    return files


def photometry_outputs():
    """The photometry stage's products for the configured galaxy."""
    return expand(
        [
            "results/{galaxy}/photometry/isochrones.parquet",
            "results/{galaxy}/photometry/extinction.parquet",
            "results/{galaxy}/photometry/isochrones.png",
            "results/{galaxy}/photometry/cluster_colours.png",
        ],
        galaxy=GALAXY,
    )


def psf_inputs(wildcards):
    """The user's PSF file for this band, when the config asks for files."""
    return [PSF["files"][wildcards.band]] if PSF["source"] == "files" else []


def psf_settings(wildcards):
    """The PSF settings that shape one band's PSF file."""
    files = PSF["files"]
    return {
        "source": PSF["source"],
        "oversampling": PSF["oversampling"],
        "size_arcsec": PSF["size_arcsec"],
        "files": (
            {wildcards.band: files[wildcards.band]} if wildcards.band in files else {}
        ),
    }


def mock_config():
    """Every config value that shapes a mock shard (and nothing else, so nothing else reruns it)."""
    return {
        "bands": BANDS,
        "pixel_scale_arcsec": config["pixel_scale_arcsec"],
        "window_px": config["window_px"],
        "photometry": {key: PHOT[key] for key in ("distance_mpc", "imf", "extinction")}
        | {
            "vega_zeropoint_mag": band_subset(PHOT["vega_zeropoint_mag"]),
            "magnitude_limits": band_subset(PHOT["magnitude_limits"]),
            "magnitude_cut": PHOT["magnitude_cut"],
        },
        "psf": {key: PSF[key] for key in ("oversampling", "core_radius_px")},
        # the number of shards changes which shards exist, not what one holds
        "mocks": {k: v for k, v in config["mocks"].items() if k != "n_shards"},
    }


def mock_outputs():
    """The mock bank's shards for the configured galaxy."""
    return expand(
        "results/{galaxy}/mocks/shard_{shard}.{ext}",
        galaxy=GALAXY,
        shard=range(config["mocks"]["n_shards"]),
        ext=("fits", "parquet"),
    ) + expand(
        "results/{galaxy}/mocks/{figure}.png",
        galaxy=GALAXY,
        figure=("mock_grid", "bank_colours"),
    )


def raw_band_path(band):
    """Where a band's image comes from: the synthetic galaxy, a download, or the user's file."""
    if MOSAIC["source"] == "synthetic" or band in MOSAIC["download"]:
        return f"results/{GALAXY}/mosaic/raw/{band}.fits"
    return MOSAIC["files"][band]


def mosaic_inputs(wildcards):
    """The mosaic rule's inputs: every band's raw image and the mask catalogs."""
    inputs = {f"raw_{band}": raw_band_path(band) for band in BANDS}
    inputs["catalogs"] = [c["path"] for c in MOSAIC["mask"]["catalogs"]]
    return inputs


def synthetic_config():
    """Every config value that shapes the synthetic galaxy (and nothing else)."""
    mocks = config["mocks"]
    return {
        "galaxy": GALAXY,
        "bands": BANDS,
        "pixel_scale_arcsec": config["pixel_scale_arcsec"],
        "photometry": {key: PHOT[key] for key in ("distance_mpc", "imf", "extinction")}
        | {"vega_zeropoint_mag": band_subset(PHOT["vega_zeropoint_mag"])},
        "psf": {key: PSF[key] for key in ("oversampling", "core_radius_px")},
        "mocks": {
            key: mocks[key]
            for key in ("truncation_arcsec", "faint_limit_mag", "faint_packets")
        },
        "mosaic": {"synthetic": MOSAIC["synthetic"]},
    }


def mosaic_outputs():
    """The mosaic and background products for the configured galaxy."""
    out = expand(
        "results/{galaxy}/mosaic/{name}",
        galaxy=GALAXY,
        name=[f"{band}.fits" for band in BANDS] + ["mask.fits"],
    )
    if MOSAIC["source"] == "synthetic":
        out += expand(
            "results/{galaxy}/mosaic/{name}",
            galaxy=GALAXY,
            name=[
                "truth.parquet",
                "arms.parquet",
                "synthetic.png",
                "synthetic_zoom.png",
            ],
        )
    return out + expand(
        "results/{galaxy}/backgrounds/shard_{shard}.{ext}",
        galaxy=GALAXY,
        shard=range(config["backgrounds"]["n_shards"]),
        ext=("fits", "parquet"),
    )


def model_outputs():
    """The trained network, its history and its test on held-out mocks, with figures."""
    names = ["model.pt", "history.parquet", "training.png", "test_predictions.parquet"]
    names += [
        "test_metrics.parquet",
        "test_parameters.png",
        "test_class_visibility.png",
    ]
    names += ["test_calibration.png"]
    return expand("results/{galaxy}/model/{name}", galaxy=GALAXY, name=names)


from starclusters.detect.settings import DetectSettings  # noqa: E402

DETECT = DetectSettings.from_config(config["detect"])


def detect_tile_config():
    """Every config value that shapes one tile's maps (peak settings do not rerun tiles)."""
    return {
        "bands": BANDS,
        "window_px": config["window_px"],
        "pixel_scale_arcsec": config["pixel_scale_arcsec"],
        "model": {"grids": config["model"].get("grids")},
        "detect": DETECT.to_config(),
    }


def detect_tile_files(wildcards):
    """One maps file per tile of the plan (known once the checkpoint detect_plan has run)."""
    from starclusters.io import read_table

    plan = checkpoints.detect_plan.get(galaxy=wildcards.galaxy).output.plan
    return expand(
        "results/{galaxy}/detect/tiles/{t}.fits",
        galaxy=wildcards.galaxy,
        t=read_table(plan)["t"],
    )


def detect_outputs():
    """The value maps of the mosaic and their figure. None for the regression network
    (thesis ch. 2): it has no class or visibility output to detect clusters with."""
    if config["model"].get("head", "softmax") != "softmax":
        return []
    return expand(
        "results/{galaxy}/detect/{name}",
        galaxy=GALAXY,
        name=["maps.fits", "maps.png"],
    )


def catalog_settings(*keys):
    """The named keys of the config's `detect` section (each catalog rule gets only its own)."""
    return {key: config["detect"][key] for key in keys}


def population_prior_inputs(galaxy, mosaic_dir):
    """The network and the mosaic bands a peak rule reads to re-read its candidates under
    the galaxy's A_V prior (detect.population_prior); none when that is off."""
    if not config["detect"]["population_prior"]:
        return {}
    return {
        "model": f"results/{galaxy}/model/model.pt",
        "bands": [f"{mosaic_dir}/{band}.fits" for band in BANDS],
    }


def catalog_inputs(wildcards):
    """find_peaks' inputs: the value maps, the synthetic galaxy's geometry when used, and
    what the population prior needs."""
    galaxy = wildcards.galaxy
    inputs = {"maps": f"results/{galaxy}/detect/maps.fits"}
    arms = catalog_inputs_arms(wildcards)
    prior = population_prior_inputs(galaxy, f"results/{galaxy}/mosaic")
    return inputs | ({"arms": arms} if arms else {}) | prior


def gallery_inputs(wildcards):
    """detection_gallery's inputs; with the synthetic galaxy also its truth (marked in cyan)."""
    galaxy = wildcards.galaxy
    inputs = {
        "candidates": f"results/{galaxy}/detect/candidates.parquet",
        "model": f"results/{galaxy}/model/model.pt",
        "bands": [f"results/{galaxy}/mosaic/{band}.fits" for band in BANDS],
    }
    if MOSAIC["source"] == "synthetic":
        inputs["truth"] = f"results/{galaxy}/mosaic/truth.parquet"
    return inputs


def candidate_outputs():
    """Peaks, candidates (Parquet, DS9 regions), the gallery and, for the synthetic galaxy,
    the match with its truth. None without value maps (the regression network)."""
    if not detect_outputs():
        return []
    names = ["peaks.parquet", "candidates.parquet", "candidates.reg", "gallery.png"]
    if MOSAIC["source"] == "synthetic":
        names += ["truth_match.parquet", "truth_match.png"]
    return expand("results/{galaxy}/detect/{name}", galaxy=GALAXY, name=names)


# --- population analysis and report (report.smk)

from starclusters.analysis.comparison import check_comparison_config  # noqa: E402

check_comparison_config(config)
ANALYSIS = config["analysis"]


def analysis_settings(*keys):
    """The named keys of the config's `analysis` section (each analysis rule gets only its own)."""
    return {key: ANALYSIS[key] for key in keys}


def arms_config():
    """The `arms` section (dust lanes for distances across the arms); without one, the
    synthetic galaxy's own lanes, or none."""
    default = {"source": "synthetic" if MOSAIC["source"] == "synthetic" else "none"}
    return config.get("arms") or default


def arm_inputs(wildcards):
    """Files the arm geometry is read from: the synthetic galaxy's lanes, or the user's."""
    section = arms_config()
    if section.get("source") == "synthetic":
        return {"arms": f"results/{wildcards.galaxy}/mosaic/arms.parquet"}
    return {
        key: section[key]
        for key in ("lanes_file", "regions_file")
        if section.get("source") == "files" and section.get(key)
    }


def analysis_artificial_inputs():
    """The recovered artificial clusters, when the workflow has the artificial-cluster stage."""
    outputs = globals().get("artificial_outputs")
    path = f"results/{GALAXY}/artificial/matches.parquet"
    return {"artificial": path} if outputs is not None and path in outputs() else {}


def arm_profile_inputs(wildcards):
    """arm_profiles' inputs: candidates, arms, and the truth and artificial clusters if any."""
    inputs = {"candidates": f"results/{wildcards.galaxy}/detect/candidates.parquet"}
    inputs |= arm_inputs(wildcards) | analysis_artificial_inputs()
    if MOSAIC["source"] == "synthetic":
        inputs["truth"] = f"results/{wildcards.galaxy}/mosaic/truth.parquet"
    return inputs


def comparison_inputs(wildcards):
    """catalog_comparison's inputs: the candidates and the catalog (or the synthetic truth)."""
    inputs = {"candidates": f"results/{wildcards.galaxy}/detect/candidates.parquet"}
    if ANALYSIS["comparison"]["source"] == "truth":
        inputs["truth"] = f"results/{wildcards.galaxy}/mosaic/truth.parquet"
    else:
        inputs["catalog"] = ANALYSIS["comparison"]["path"]
    return inputs


def metrics_inputs(wildcards):
    """analysis_metrics' inputs: the fits, the arm peaks, the comparison, the truth."""
    out = f"results/{wildcards.galaxy}/analysis"
    inputs = {
        "mass_function": f"{out}/mass_function.parquet",
        "arm_peaks": f"{out}/arm_peaks.parquet",
        "candidates": f"results/{wildcards.galaxy}/detect/candidates.parquet",
    }
    if ANALYSIS["comparison"]["source"] != "none":
        inputs["comparison"] = f"{out}/comparison_summary.parquet"
    if MOSAIC["source"] == "synthetic":
        inputs["truth"] = f"results/{wildcards.galaxy}/mosaic/truth.parquet"
        inputs["arms"] = f"results/{wildcards.galaxy}/mosaic/arms.parquet"
    return inputs


def analysis_outputs():
    """Figures and tables of the population analysis. None without candidates (the
    regression network makes no value maps)."""
    if not candidate_outputs():
        return []
    names = ["parameters.png", "histograms.png", "radial.png", "arm_distance.png"]
    names += ["maps.png", "mass_function.parquet", "arm_profiles.parquet"]
    names += ["arm_peaks.parquet", "metrics.parquet"]
    if ANALYSIS["comparison"]["source"] != "none":
        names += ["comparison.parquet", "comparison_summary.parquet", "comparison.png"]
    return expand("results/{galaxy}/analysis/{name}", galaxy=GALAXY, name=names)


# --- artificial-cluster tests (artificial.smk)

from starclusters.analysis.arms import check_arms_config  # noqa: E402

check_arms_config(arms_config(), config)
ARTIFICIAL = config["artificial"]


def artificial_mock_config():
    """Every config value that shapes an artificial mock shard: the bank's, less its size."""
    bank = mock_config()
    return bank | {
        "mocks": {k: v for k, v in bank["mocks"].items() if k != "per_shard"}
    }


def artificial_search_radius():
    """Radius around each artificial mock within which the injected mosaic is searched, px
    (starclusters.artificial.grid.search_radius_px); None: the whole mosaic."""
    from starclusters.artificial.grid import search_radius_px

    if ARTIFICIAL["search"] == "whole_mosaic":
        return None
    return search_radius_px(
        ARTIFICIAL["match_radii_px"],
        config["detect"]["smooth_sigma_px"],
        DETECT.step_px,
    )


def artificial_truth_inputs(wildcards):
    """artificial_truth's inputs: the injected mocks, the arms' files, the synthetic geometry."""
    inputs = {"injected": f"results/{wildcards.galaxy}/artificial/injected.parquet"}
    inputs |= arm_inputs(wildcards)
    if config["galaxy_geometry"].get("source") == "synthetic":
        inputs["arms"] = f"results/{wildcards.galaxy}/mosaic/arms.parquet"
    return inputs


def artificial_catalog_inputs(wildcards):
    """artificial_peaks' inputs: find_peaks' with the injected mosaic's value maps."""
    galaxy = wildcards.galaxy
    return (
        catalog_inputs(wildcards)
        | {"maps": f"results/{galaxy}/artificial/maps.fits"}
        | population_prior_inputs(galaxy, f"results/{galaxy}/artificial")
    )


def artificial_tile_files(wildcards):
    """One maps file per tile of the detection's plan (known once detect_plan has run)."""
    from starclusters.io import read_table

    plan = checkpoints.detect_plan.get(galaxy=wildcards.galaxy).output.plan
    return expand(
        "results/{galaxy}/artificial/tiles/{t}.fits",
        galaxy=wildcards.galaxy,
        t=read_table(plan)["t"],
    )


def artificial_recall_settings():
    """The `artificial` keys that shape the recall tables and figures."""
    keys = (
        "match_radii_px",
        "recall_bins",
        "spatial_bin_px",
        "spatial_max_log_mass_msun",
    )
    return {key: ARTIFICIAL[key] for key in keys + ("reference",)}


def artificial_outputs():
    """The artificial-cluster test's products. None without value maps (the regression
    network has no detection to test)."""
    if not detect_outputs():
        return []
    names = [f"{band}.fits" for band in BANDS] + ["truth.parquet", "maps.fits"]
    names += ["peaks.parquet", "candidates.parquet", "matches.parquet"]
    names += ["recall.parquet", "metrics.parquet"]
    names += ["recall_map.png", "recall_parameters.png", "class_visibility.png"]
    return expand("results/{galaxy}/artificial/{name}", galaxy=GALAXY, name=names)


# --- validation galaxies (validation.smk) and the scorecard (baseline.smk, scorecard.smk)

from starclusters.mosaic.validation import validation_galaxies  # noqa: E402

VALIDATION = validation_galaxies(config)


def validation_synthetic_config(name):
    """synthetic_config() for validation galaxy ``name``: its merged synthetic settings."""
    return synthetic_config() | {
        "galaxy": f"{GALAXY}/validation/{name}",
        "mosaic": {"synthetic": VALIDATION[name]["synthetic"]},
    }


def validation_geometry():
    """Galactocentric distances of a validation galaxy's catalogs: its own synthetic disk."""
    return {"source": "synthetic"}


def validation_outputs():
    """Each validation galaxy's mosaic, truth and the network's candidates (none for the
    regression network, which has no detection)."""
    if not detect_outputs():
        return []
    names = [
        "mosaic/truth.parquet",
        "mosaic/synthetic.png",
        "detect/candidates.parquet",
    ]
    return expand(
        "results/{galaxy}/validation/{name}/{file}",
        galaxy=GALAXY,
        name=list(VALIDATION),
        file=names,
    )


#: Methods the scorecard compares: the network's candidates and the classical peer's
#: catalogs with its two SED fits (baseline.smk).
BASELINE_FITS = ("grid", "library")
SCORE_METHODS = ("cnn",) + tuple(f"classical_{fit}" for fit in BASELINE_FITS)


def score_fields():
    """The galaxies with a truth to score: the training galaxy (when synthetic) and each
    validation galaxy."""
    return (["training"] if MOSAIC["source"] == "synthetic" else []) + list(VALIDATION)


def score_methods():
    """The scored methods; the network's only when it detects (not the regression network)."""
    return [m for m in SCORE_METHODS if m != "cnn" or detect_outputs()]


def field_dir(galaxy, field):
    """Where a scored galaxy's products live: the run's own, or a validation galaxy's."""
    return (
        f"results/{galaxy}"
        if field == "training"
        else f"results/{galaxy}/validation/{field}"
    )


def field_reference_band(field):
    """The band of the truth's own grid (SyntheticGalaxySpec.reference_band) of a scored galaxy."""
    from starclusters.mosaic.synthetic_spec import SyntheticGalaxySpec

    section = (
        MOSAIC["synthetic"] if field == "training" else VALIDATION[field]["synthetic"]
    )
    return SyntheticGalaxySpec.from_config(section).reference_band


def method_benchmarks(wildcards):
    """Benchmark files of the jobs that made a method's catalog from the mosaic."""
    from starclusters.io import read_table

    galaxy, field, method = wildcards.galaxy, wildcards.field, wildcards.method
    bench = f"results/{galaxy}/benchmarks"
    if method == "cnn" and field == "training":
        plan = checkpoints.detect_plan.get(galaxy=galaxy).output.plan
        tiles = [f"{bench}/detect_tile_{t}.tsv" for t in read_table(plan)["t"]]
        return tiles + [f"{bench}/merge_maps.tsv", f"{bench}/find_peaks.tsv"]
    if method == "cnn":
        return [
            f"{bench}/validation_maps_{field}.tsv",
            f"{bench}/validation_peaks_{field}.tsv",
        ]
    fit = method.removeprefix("classical_")
    if field == "training":
        return [
            f"{bench}/baseline_photometry.tsv",
            f"{bench}/baseline_catalog_{fit}.tsv",
        ]
    return [
        f"{bench}/validation_baseline_photometry_{field}.tsv",
        f"{bench}/validation_baseline_catalog_{field}_{fit}.tsv",
    ]


def score_inputs(wildcards):
    """score_catalog's inputs: the galaxy's truth, reference band and mask, the method's
    catalog and the benchmarks of the jobs that made it."""
    root = field_dir(wildcards.galaxy, wildcards.field)
    method = wildcards.method
    catalog = (
        f"{root}/detect/candidates.parquet"
        if method == "cnn"
        else f"{root}/baseline/catalog_{method.removeprefix('classical_')}.parquet"
    )
    return {
        "truth": f"{root}/mosaic/truth.parquet",
        "catalog": catalog,
        "image": f"{root}/mosaic/{field_reference_band(wildcards.field)}.fits",
        "mask": f"{root}/mosaic/mask.fits",
        "benchmarks": method_benchmarks(wildcards),
    }


def diagnosis_inputs(wildcards):
    """diagnose_catalog's inputs: a scored galaxy's truth, contaminants, mask and bands, and
    the network's maps, peaks and candidates of it."""
    root = field_dir(wildcards.galaxy, wildcards.field)
    return {
        "truth": f"{root}/mosaic/truth.parquet",
        "contaminants": f"{root}/mosaic/contaminants.parquet",
        "mask": f"{root}/mosaic/mask.fits",
        "bands": [f"{root}/mosaic/{band}.fits" for band in BANDS],
        "maps": f"{root}/detect/maps.fits",
        "peaks": f"{root}/detect/peaks.parquet",
        "candidates": f"{root}/detect/candidates.parquet",
    }


def diagnosis_settings():
    """The `scorecard` keys the diagnosis uses (its own and the match radius): the other
    keys rerun the scores, not the diagnosis."""
    return {key: config["scorecard"][key] for key in ("match_radius_px", "diagnosis")}


def score_settings():
    """The `scorecard` keys the scores use (the diagnosis' keys do not rerun them)."""
    return {k: v for k, v in config["scorecard"].items() if k != "diagnosis"}


def diagnosis_outputs():
    """The network's diagnosis: its misses and false candidates on every scored galaxy
    (none where the scorecard does not score the network: the regression network)."""
    if "cnn" not in score_methods() or not score_fields():
        return []
    names = ["diagnosis.parquet", "diagnosis.png"]
    return expand("results/{galaxy}/scorecard/{name}", galaxy=GALAXY, name=names)


def scorecard_outputs():
    """The scorecard's tables and figures (none without a galaxy that has a truth), with the
    network's diagnosis."""
    if not score_fields():
        return []
    names = ["scorecard.parquet", "summary.parquet", "recall_visibility.png"]
    names += ["parameters.png", "age_mass_recall.png", "summary.png"]
    out = expand("results/{galaxy}/scorecard/{name}", galaxy=GALAXY, name=names)
    return out + diagnosis_outputs()


def catalog_inputs_arms(wildcards):
    """The synthetic galaxy's arms table when the catalogs' geometry comes from it."""
    if config["galaxy_geometry"].get("source") == "synthetic":
        return f"results/{wildcards.galaxy}/mosaic/arms.parquet"
    return []


def baseline_photometry_config():
    """The `photometry` keys the classical peer's SED fits use (the stellar population's)."""
    return {key: PHOT[key] for key in ("distance_mpc", "imf", "extinction")} | {
        "vega_zeropoint_mag": band_subset(PHOT["vega_zeropoint_mag"]),
        "magnitude_limits": band_subset(PHOT["magnitude_limits"]),
        "magnitude_cut": PHOT["magnitude_cut"],
    }
