"""Photometry (photometry.smk): the user's isochrone files, the stage's outputs.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""

from starclusters.photometry import MODEL_VERSION as PHOTOMETRY_MODEL_VERSION


def isochrone_inputs(wildcards):
    """User CMD isochrone files, when the config asks for them."""
    iso = PHOT["isochrones"]
    files = list(iso["cmd_files"]) if iso["source"] == "cmd" else []
    if iso.get("grid_file"):
        files.append(iso["grid_file"])
    return files


def bank_cut_settings():
    """The bank's magnitude cut: `photometry.magnitude_limits` of the configured bands and
    how they combine (`photometry.magnitude_cut`), for every rule that applies it."""
    return {
        "magnitude_limits": band_subset(PHOT["magnitude_limits"]),
        "magnitude_cut": PHOT["magnitude_cut"],
    }


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
