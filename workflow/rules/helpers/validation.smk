"""Validation galaxies (validation.smk): their config, outputs, job runtime.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""


def validation_synthetic_config(name):
    """synthetic_config() for validation galaxy ``name``: its merged synthetic settings."""
    return synthetic_config() | {
        "galaxy": f"{GALAXY}/validation/{name}",
        "mosaic": {"synthetic": SYNTHETIC_FIELDS[name]["synthetic"]},
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
