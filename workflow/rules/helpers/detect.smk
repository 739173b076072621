"""Detection (detect.smk): tile config and files, catalog settings and inputs, outputs.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""


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
    return section_settings("detect", *keys)


def peak_settings():
    """The `detect` keys of the peak jobs (find_peaks, validation_peaks, artificial_peaks):
    all three make their catalogs alike."""
    return catalog_settings(
        "smooth_sigma_px",
        "weight_window_px",
        "weight_sigma_px",
        "class_threshold",
        "visibility_threshold",
        "derived_thresholds",
        "population_prior",
        "population_prior_shrink",
        "population_prior_smoothing",
        "recentre_radius_px",
        "recentre_sky_annulus_px",
    )


def peak_job_inputs(galaxy, mosaic_dir, mask_dir=None):
    """What a peak job reads beside its maps, each only when on: the network and the mosaic
    bands in ``mosaic_dir`` to re-read its candidates under the galaxy's A_V prior
    (detect.population_prior); the bands and the mask (in ``mask_dir``, default
    ``mosaic_dir``) to move its peaks to their light centroids (detect.recentre_radius_px);
    the held-out test whose cut it applies (detect.derived_thresholds)."""
    detect = config["detect"]
    inputs = {}
    if detect["population_prior"]:
        inputs["model"] = f"results/{galaxy}/model/model.pt"
    if detect["population_prior"] or detect["recentre_radius_px"] > 0:
        inputs["bands"] = [f"{mosaic_dir}/{band}.fits" for band in BANDS]
    if detect["recentre_radius_px"] > 0:
        inputs["mask"] = f"{mask_dir or mosaic_dir}/mask.fits"
    if detect["derived_thresholds"]:
        inputs["test_metrics"] = f"results/{galaxy}/model/test_metrics.parquet"
    return inputs


def catalog_inputs_arms(wildcards):
    """The synthetic galaxy's arms table when the catalogs' geometry comes from it."""
    if config["galaxy_geometry"].get("source") == "synthetic":
        return f"results/{wildcards.galaxy}/mosaic/arms.parquet"
    return []


def catalog_inputs(wildcards):
    """find_peaks' inputs: the value maps, the synthetic galaxy's geometry when used, and
    what the population prior, the recentring and the derived thresholds need."""
    galaxy = wildcards.galaxy
    inputs = {"maps": f"results/{galaxy}/detect/maps.fits"}
    arms = catalog_inputs_arms(wildcards)
    extra = peak_job_inputs(galaxy, f"results/{galaxy}/mosaic")
    return inputs | ({"arms": arms} if arms else {}) | extra


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
