"""Checks of the ``mocks`` and ``psf`` config sections that the schema cannot express.

:func:`starclusters.config.check_config` runs them with every other stage's check.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from starclusters.errors import ConfigError
from starclusters.mocks.params import check_rh_reachable


def check_mocks_config(config: Mapping) -> None:
    """ConfigError naming the ``mocks`` key: ordered ranges, and r_h range reachable by the
    EFF profiles (:func:`~starclusters.mocks.params.check_rh_reachable`)."""
    mocks = config["mocks"]
    for key in ("log_mass_msun", "eff_a_arcsec", "eff_gamma", "rh_arcsec"):
        if mocks[key]["min"] > mocks[key]["max"]:
            raise ConfigError(
                f"mocks.{key}: min ({mocks[key]['min']}) exceeds max ({mocks[key]['max']})"
            )
    check_rh_reachable(mocks)


def check_psf_config(config: Mapping) -> None:
    """ConfigError naming the ``psf`` key: a PSF as large as the window, odd oversampling,
    an existing file for every band with source files."""
    bands = config["bands"]
    psf = config["psf"]
    stamp_arcsec = config["window_px"] * config["pixel_scale_arcsec"]
    if psf["size_arcsec"] < stamp_arcsec:
        raise ConfigError(
            f"psf.size_arcsec: {psf['size_arcsec']}″ is smaller than the {config['window_px']}-px "
            f"window ({stamp_arcsec:g}″); a star at the centre must light the whole stamp"
        )
    if psf["oversampling"] % 2 != 1:
        raise ConfigError(
            f"psf.oversampling: must be odd so that native pixel centres are PSF samples, got {psf['oversampling']}"
        )
    if psf["source"] == "files":
        for band in bands:
            if band not in psf["files"]:
                raise ConfigError(
                    f"psf.files.{band}: psf.source is 'files' but no PSF is given for {band}"
                )
            if not Path(psf["files"][band]).exists():
                raise ConfigError(f"psf.files.{band}: {psf['files'][band]} does not exist")
