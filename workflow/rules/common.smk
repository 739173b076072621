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


from starclusters.detect.settings import DetectSettings, resolve_mode  # noqa: E402

# detect.mode auto: the mode the config's model section runs (one rule, resolve_mode)
DETECT = resolve_mode(
    DetectSettings.from_config(config["detect"]), config["model"], "the config's model"
)


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
    inputs["population_fits"] = [
        f"{out}/population_fit/{field}.parquet" for field in population_fit_fields()
    ]
    return inputs


def population_fit_fields():
    """The galaxies whose populations are fitted with the selection function: the training
    galaxy and every validation galaxy; none without the artificial-cluster test."""
    if not detect_outputs():
        return []
    return ["training", *VALIDATION]


def population_fit_inputs(wildcards):
    """population_fit's inputs: a galaxy's candidates and the band the local background is
    measured in, the training galaxy's selection function and artificial metrics, and for a
    scored galaxy its matched truth."""
    root = field_dir(wildcards.galaxy, wildcards.field)
    art = f"results/{wildcards.galaxy}/artificial"
    inputs = {
        "candidates": f"{root}/detect/candidates.parquet",
        "image": f"{root}/mosaic/{BANDS[-1]}.fits",
        "selection": f"{art}/selection.parquet",
        "artificial_metrics": f"{art}/metrics.parquet",
    }
    if (
        wildcards.field in score_fields()
    ):  # a galaxy with a truth: the selection checked on it
        inputs["truth_matched"] = (
            f"results/{wildcards.galaxy}/scorecard/{wildcards.field}/cnn_matched.parquet"
        )
    return inputs


def field_injected_population(field):
    """The population a synthetic galaxy injected (slope, M*, age index); {} for real data."""
    from starclusters.synthetic.spec import SyntheticGalaxySpec

    if field == "training" and MOSAIC["source"] != "synthetic":
        return {}
    section = (
        MOSAIC["synthetic"] if field == "training" else VALIDATION[field]["synthetic"]
    )
    spec = SyntheticGalaxySpec.from_config(section)
    return {
        "mass_function_slope": spec.mass_function_slope,
        "schechter_mass_msun": spec.schechter_mass_msun,
        "age_distribution_index": spec.age_distribution_index,
    }


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
    for field in population_fit_fields():
        names += [f"population_fit/{field}.parquet", f"population_fit/{field}.png"]
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


def artificial_layers():
    """The layers of the artificial-cluster test (0 … artificial.n_layers − 1)."""
    return range(ARTIFICIAL["n_layers"])


def artificial_pool_inputs(wildcards):
    """artificial_pool's inputs: every layer's matches and injected last band, the arms'
    files, the synthetic geometry."""
    layers = {"galaxy": wildcards.galaxy, "layer": artificial_layers()}
    inputs = {
        "matches": expand(
            "results/{galaxy}/artificial/layer_{layer}/matches.parquet", **layers
        ),
        # each layer's injected mosaic in the band of the local background (the last one)
        "bands": expand(
            f"results/{{galaxy}}/artificial/layer_{{layer}}/{BANDS[-1]}.fits", **layers
        ),
    }
    inputs |= arm_inputs(wildcards)
    if config["galaxy_geometry"].get("source") == "synthetic":
        inputs["arms"] = f"results/{wildcards.galaxy}/mosaic/arms.parquet"
    return inputs


def artificial_catalog_inputs(wildcards):
    """artificial_peaks' inputs: find_peaks' with the injected mosaic's value maps."""
    galaxy, layer_dir = (
        wildcards.galaxy,
        f"results/{wildcards.galaxy}/artificial/layer_{wildcards.layer}",
    )
    return (
        catalog_inputs(wildcards)
        | {"maps": f"{layer_dir}/maps.fits"}
        | population_prior_inputs(galaxy, layer_dir)
    )


def artificial_tile_files(wildcards):
    """One maps file per tile of the detection's plan (known once detect_plan has run)."""
    from starclusters.io import read_table

    plan = checkpoints.detect_plan.get(galaxy=wildcards.galaxy).output.plan
    return expand(
        "results/{galaxy}/artificial/layer_{layer}/tiles/{t}.fits",
        galaxy=wildcards.galaxy,
        layer=wildcards.layer,
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
    names = ["matches.parquet", "recall.parquet", "metrics.parquet"]
    names += ["recall_map.png", "recall_parameters.png", "class_visibility.png"]
    names += [
        "selection.parquet",
        "selection_calibration.png",
        "selection_contours.png",
    ]
    return expand("results/{galaxy}/artificial/{name}", galaxy=GALAXY, name=names)


# --- validation galaxies (validation.smk) and the scorecard (baseline.smk, scorecard.smk)

from starclusters.synthetic.validation import validation_galaxies  # noqa: E402

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
    from starclusters.synthetic.spec import SyntheticGalaxySpec

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


# --- job resources: threads, memory, runtime and GPUs from the config and the data size
# (docs/slurm.md). Every rule declares mem_mb and runtime; the Slurm profile only names the
# account and the partitions, and requests --cpus-per-task = the job's threads.

import math  # noqa: E402

from starclusters.detect.tiles import (  # noqa: E402
    NETWORK_DEFAULTS,
    RUNTIME_BYTES,
    halo_px,
    n_head_outputs,
    tile_memory_mb,
)

#: Memory of a job besides its data, MB: Python with numpy, astropy, pandas and torch
#: (starclusters.detect.tiles.RUNTIME_BYTES, 1000 MB) and room for small inputs: the
#: default config's jobs peaked at 0.2–1.3 GB max RSS (results/*/benchmarks/*.tsv; with
#: small inputs detection_gallery 1.24 GB, artificial_shard 1.22 GB).
JOB_BASE_MB = 1.2 * RUNTIME_BYTES / 2**20
#: Memory asked for beyond the estimate (allocator slack), as tile_memory_mb.
MEM_SLACK = 1.25
#: Minutes every job gets before its work: queueing of its steps, Snakemake starting inside
#: the job (20–30 s on a busy 2-core node), imports, writing outputs.
JOB_BASE_MIN = 10
#: Runtime asked for = SAFETY × the estimated work (the rates below are lower bounds).
RUNTIME_SAFETY = 2
#: Seconds per MB of input of the rules that process images and tables (the slowest per MB
#: on the default config: the peer's photometry, 57 s for 45 MB beside other jobs).
SECONDS_PER_INPUT_MB = 1.5
#: Seconds per MB of input of the rules that only read the mock bank and backgrounds.
SECONDS_PER_BANK_MB = 0.05
#: Network FLOP/s per CPU thread: measured ≥ 20 GFLOP/s per thread for a training step of
#: the embedded default's network under load (docs/BENCHMARKS.md); half of it here.
CPU_FLOPS_PER_THREAD = 10e9
#: Network FLOP/s per GPU (bf16): not measured (no GPU in these sessions); a twentieth of
#: the 56 TFLOP/s that the H100 target of 20,000 training images/s implies
#: (docs/BENCHMARKS.md), for the index gathers and batch composition beside the network.
GPU_FLOPS = 2.5e12
#: CPU threads of the rules that use torch's thread pool on the CPU (training, evaluation,
#: gallery); tile jobs run one thread each (docs/detection.md).
TORCH_THREADS = 2
#: CPU threads per training process on a GPU: batches are drawn on the GPU (docs/model.md),
#: the CPU only feeds it, checkpoints and logs.
TRAIN_THREADS_PER_GPU = 4


def network_spec():
    """The config's network (model section over the thesis defaults) as plain values."""
    return {**NETWORK_DEFAULTS, **config["model"]}


def network_costs():
    """What one window costs the config's network, without torch: a dict of

    - forward: FLOPs of one window forward (2 × multiply-adds of the 7×7 stem at
      window_px², the torchvision bottlenecks at window_px / 2^(i+1), the 1×1 conv before
      the stride at the input's side; fc and heads). The thesis network: 0.96 GFLOP, as
      torch.utils.flop_counter gives (docs/BENCHMARKS.md);
    - conv_per_pixel: FLOPs of every conv weight once, per pixel: the fast mode evaluates
      the convolutions at every pixel of a tile's region;
    - head: FLOPs of fc and heads, per window centre;
    - activations: floats of every layer's output for one window (what training keeps
      for the backward pass, besides BatchNorm's and ReLU's copies).

    Padding ignored (valid padding only shrinks the maps): upper bounds.
    """
    spec = network_spec()
    bands, size = len(BANDS), config["window_px"]
    widths = spec["stage_widths"] or [c // 4 for c in spec["stage_channels"]]
    stem = spec["stem_channels"]
    macs = bands * stem * 49 * size**2
    per_pixel = bands * stem * 49
    inplanes, side = stem, math.ceil(size / 2)
    activations = stem * size**2 + stem * side**2
    for i, (blocks, channels, width) in enumerate(
        zip(spec["stage_blocks"], spec["stage_channels"], widths)
    ):
        out_side = side if i == 0 else math.ceil(side / 2)
        for b in range(blocks):
            cin, in_side = (inplanes, side) if b == 0 else (channels, out_side)
            macs += cin * width * in_side**2
            macs += (9 * width * width + width * channels) * out_side**2
            per_pixel += cin * width + 9 * width * width + width * channels
            activations += width * in_side**2 + (width + channels) * out_side**2
            if b == 0 and (i > 0 or inplanes != channels):
                macs += cin * channels * out_side**2
                per_pixel += cin * channels
                activations += channels * out_side**2
        inplanes, side = channels, out_side
    n_out = n_head_outputs(spec.get("grids"))
    head = inplanes * spec["fc_width"] + spec["fc_width"] * n_out
    return {
        "forward": 2 * (macs + head),
        "conv_per_pixel": 2 * per_pixel,
        "head": 2 * head,
        "activations": activations + spec["fc_width"] + n_out,
    }


def network_seconds(flops, device, threads=1, gpus=1):
    """Seconds of ``flops`` network FLOPs on ``device`` (cpu: ``threads`` threads)."""
    rate = gpus * GPU_FLOPS if device == "cuda" else threads * CPU_FLOPS_PER_THREAD
    return flops / rate


def runtime_minutes(seconds, attempt=1):
    """The runtime to ask for, minutes: JOB_BASE_MIN + RUNTIME_SAFETY × the estimated
    seconds; every retry (Snakemake's attempt) asks for that much again."""
    return attempt * (JOB_BASE_MIN + math.ceil(RUNTIME_SAFETY * seconds / 60))


def job_mem_mb(per_input=3.0, extra_mb=0.0):
    """A mem_mb resource: the Python runtime, ``per_input`` × the job's input (MB) and
    ``extra_mb`` (what it makes beyond its inputs; a number or a function of the
    wildcards), plus MEM_SLACK; half as much again on every retry (a job killed for its
    memory gets more)."""

    def mem_mb(wildcards, input, attempt):
        extra = extra_mb(wildcards) if callable(extra_mb) else extra_mb
        need = JOB_BASE_MB + per_input * input.size_mb + extra
        return math.ceil(MEM_SLACK * need * (1 + 0.5 * (attempt - 1)))

    return mem_mb


def job_runtime(seconds_per_mb=SECONDS_PER_INPUT_MB, work_s=0.0):
    """A runtime resource (minutes): ``seconds_per_mb`` × the job's input plus ``work_s``
    seconds of computation, through runtime_minutes."""

    def runtime(wildcards, input, attempt):
        return runtime_minutes(seconds_per_mb * input.size_mb + work_s, attempt)

    return runtime


def cube_mb(n_images):
    """MB of ``n_images`` float32 windows of every band (a mock shard, a background shard)."""
    return n_images * len(BANDS) * config["window_px"] ** 2 * 4 / 2**20


def bank_mb():
    """MB of the mock bank and backgrounds as the training holds them (float32 cubes)."""
    mocks, backgrounds = config["mocks"], config["backgrounds"]
    return cube_mb(
        mocks["n_shards"] * mocks["per_shard"]
        + backgrounds["n_shards"] * backgrounds["per_shard"]
    )


def train_processes():
    """Training processes: one per GPU with device cuda, else one."""
    section = config["train"]
    return section["gpus"] if section["device"] == "cuda" else 1


def train_gpus():
    """GPUs of the train job (sbatch --gpus): train.gpus with device cuda, else 0."""
    return train_processes() if config["train"]["device"] == "cuda" else 0


def train_threads():
    """CPU threads (= Slurm CPUs) of the train job: TORCH_THREADS on the CPU (torch's pool),
    TRAIN_THREADS_PER_GPU per process on GPUs."""
    if config["train"]["device"] == "cuda":
        return TRAIN_THREADS_PER_GPU * train_processes()
    return TORCH_THREADS


def train_mem_mb(wildcards, attempt):
    """Host memory of the train job, MB: every process holds the Python runtime and the
    bank (twice while the shards are read and joined: starclusters.model.data
    _read_cubes), on the CPU also a batch's activations for the backward pass (4 copies of
    every layer's output); MEM_SLACK more, half as much again on a retry. The default
    config: 3.0 GB (measured: 1.9 GB max RSS); config/m83.yaml: 16.7 GB per GPU."""
    section = config["train"]
    need = JOB_BASE_MB + 2 * bank_mb()
    if section["device"] != "cuda":
        # float32 layer outputs, BatchNorm's and ReLU's copies and their gradients
        per_window = 4 * 4 * network_costs()["activations"]
        need += section["batch_size"] * per_window / 2**20
    per_process = MEM_SLACK * need * (1 + 0.5 * (attempt - 1))
    return math.ceil(train_processes() * per_process)


def train_runtime(wildcards, attempt):
    """Minutes of the train job: reading the bank, then epochs × steps_per_epoch ×
    batch_size images forward and backward (3 × the forward FLOPs) and val_size forward
    per epoch, at the device's rate. A job past it resumes from its checkpoint."""
    section = config["train"]
    per_window = network_costs()["forward"]
    images = section["epochs"] * section["steps_per_epoch"] * section["batch_size"]
    flops = per_window * (3 * images + section["epochs"] * section["val_size"])
    seconds = SECONDS_PER_BANK_MB * bank_mb() + network_seconds(
        flops, section["device"], TORCH_THREADS, max(1, train_gpus())
    )
    return runtime_minutes(seconds, attempt)


def evaluate_runtime(wildcards, input, attempt):
    """Minutes of evaluate_model: reading the bank, the held-out mocks and backgrounds
    forward (one GPU with train.device cuda, else TORCH_THREADS threads)."""
    n = config["evaluate"]["n_mocks"] + config["evaluate"]["n_backgrounds"]
    flops = n * network_costs()["forward"]
    seconds = SECONDS_PER_BANK_MB * input.size_mb + network_seconds(
        flops, config["train"]["device"], TORCH_THREADS
    )
    return runtime_minutes(seconds, attempt)


def detect_flops(height, width):
    """Network FLOPs of the value maps of a height × width px image, tile by tile (exact
    mode: every step_px-th window; fast: the convolutions at every pixel of each tile's
    region and the heads at every centre)."""
    costs = network_costs()
    tile, step = DETECT.tile_px, DETECT.step_px
    centres = math.ceil(height / step) * math.ceil(width / step)
    if DETECT.mode != "fast":
        return centres * costs["forward"]
    halo = halo_px(config["window_px"], step)
    tiles_y, tiles_x = math.ceil(height / tile), math.ceil(width / tile)
    region = (height + 2 * halo * tiles_y) * (width + 2 * halo * tiles_x)
    return region * costs["conv_per_pixel"] + centres * costs["head"]


def tile_runtime(wildcards, attempt):
    """Minutes of one tile job (a full tile_px² core: the last tiles are smaller)."""
    flops = detect_flops(DETECT.tile_px, DETECT.tile_px)
    return runtime_minutes(network_seconds(flops, DETECT.device), attempt)


def image_runtime(wildcards, input, attempt):
    """Minutes of the value maps of a whole image in one job (validation_maps): its side
    from the size of its float32 bands."""
    pixels = input.size_mb * 2**20 / (4 * len(BANDS) + 1)
    side = math.ceil(math.sqrt(pixels))
    seconds = SECONDS_PER_INPUT_MB * input.size_mb + network_seconds(
        detect_flops(side, side), DETECT.device
    )
    return runtime_minutes(seconds, attempt)


def detect_gpus():
    """GPUs of a detection job: one with detect.device cuda, else 0."""
    return 1 if DETECT.device == "cuda" else 0


def evaluate_gpus():
    """GPUs of evaluate_model: one with train.device cuda, else 0."""
    return 1 if config["train"]["device"] == "cuda" else 0


def synthetic_extra_mb(section):
    """MB a synthetic galaxy's rendering holds beyond the runtime: ~30 float32 images of
    its shape per band (measured: 0.3 GB for the default 1024² galaxy in 3 bands)."""
    height, width = section["shape_px"]
    return 30 * height * width * 4 * len(BANDS) / 2**20


def mock_render_seconds(n_mocks):
    """Seconds to render ``n_mocks`` mocks on one thread (measured ~21 ms each on the
    default config: 1,000 per shard in 21 s); five times that."""
    return 0.1 * n_mocks
