"""Checks of the ``photometry`` config section that the schema cannot express.

:func:`starclusters.config.check_config` runs :func:`check_photometry_config` with every
other stage's check; this module imports nothing of the stage but the grids' rule
(:func:`starclusters.sections.grid`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from starclusters.errors import ConfigError
from starclusters.sections import grid

#: Defaults of ``photometry`` keys that code reads from a section a library user may have
#: built without the schema (tests/test_settings.py keeps them the schema's).
PHOTOMETRY_DEFAULTS = {"magnitude_cut": "all"}


def magnitude_cut_of(photometry: Mapping) -> str:
    """``photometry.magnitude_cut`` of a section, its default where absent."""
    return photometry.get("magnitude_cut", PHOTOMETRY_DEFAULTS["magnitude_cut"])


def check_photometry_config(config: Mapping) -> None:
    """ConfigError naming the key: a value for every band in each per-band table, whole
    grids of ages and A_V, existing CMD files for source cmd, an ordered IMF mass range."""
    bands = config["bands"]
    phot = config["photometry"]
    for table in ("vega_zeropoint_mag", "filter_curves", "magnitude_limits"):
        for band in bands:
            if band not in phot[table]:
                raise ConfigError(
                    f"photometry.{table}.{band}: missing; every band in `bands` needs a value here"
                )
    iso = phot["isochrones"]
    grid(iso["log_age_yr"], "photometry.isochrones.log_age_yr")
    grid(phot["extinction"]["av_mag"], "photometry.extinction.av_mag")
    if iso["source"] == "cmd":
        if not iso.get("cmd_files"):
            raise ConfigError(
                "photometry.isochrones.cmd_files: source is 'cmd' but no files are listed"
            )
        for file in iso["cmd_files"]:
            if not Path(file).exists():
                raise ConfigError(f"photometry.isochrones.cmd_files: {file} does not exist")
    imf = phot["imf"]
    if not imf["mass_min_msun"] < imf["mass_max_msun"]:
        raise ConfigError("photometry.imf: mass_min_msun must be below mass_max_msun")
