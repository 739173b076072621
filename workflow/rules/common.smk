"""Shared helpers: config validation, output lists, the library on sys.path."""

import os
import sys
from pathlib import Path

from snakemake.utils import validate

# The library lives in src/; make it importable for this process and for the jobs
# it starts (also inside --use-conda environments, which hold only the dependencies).
SRC = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC)
# This sets the variable, it needs no `envvars:`; every job re-parses this file.
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC, os.environ.get("PYTHONPATH")) if p)
)

from starclusters.config import check_config  # noqa: E402

validate(config, "../../config/schema/config.schema.yaml")
check_config(config)

GALAXY = config["galaxy"]
BANDS = list(config["bands"])
PHOT = config["photometry"]


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
