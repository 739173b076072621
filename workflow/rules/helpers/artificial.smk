"""Artificial-cluster tests (artificial.smk): settings, inputs, outputs.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""

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
        | peak_job_inputs(galaxy, layer_dir, mask_dir=f"results/{galaxy}/mosaic")
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
    return section_settings("artificial", *keys, "reference")


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
