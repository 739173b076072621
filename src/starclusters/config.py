"""Configuration: loading, schema validation and the checks a schema cannot express.

The JSON schema in ``config/schema/config.schema.yaml`` documents and types every
key; Snakemake applies it with ``validate()``. :func:`check_config` adds the
cross-key checks (every band has a zero point, ranges are ordered...) and
:func:`grid` turns a ``{min, max, step}`` range into the parameter grid, so that
grids are defined once, from config.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import yaml

from starclusters.errors import ConfigError

#: The schema shipped with the workflow.
SCHEMA_PATH = Path(__file__).resolve().parents[2] / "config" / "schema" / "config.schema.yaml"


def load_config(path: str | os.PathLike, schema_path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Read a YAML config, fill schema defaults, validate it and run :func:`check_config`."""
    from snakemake.utils import validate

    path = Path(path)
    if not path.exists():
        raise ConfigError(f"{path}: config file not found")
    with path.open() as handle:
        config = yaml.safe_load(handle) or {}
    validate(config, str(schema_path), set_default=True)
    check_config(config)
    return config


def dataclass_from_config(cls, section: Mapping | None, key: str, **overrides):
    """An instance of dataclass ``cls`` from a config section whose keys are its field names.

    ``overrides`` win over the section; lists become tuples (YAML has no tuples).
    ConfigError naming ``<key>.<name>`` for a key that is not a field.
    """
    import dataclasses

    values = {**dict(section or {}), **overrides}
    names = {f.name for f in dataclasses.fields(cls)}
    for name in values:
        if name not in names:
            raise ConfigError(
                f"{key}.{name}: unknown key; known keys are {', '.join(sorted(names))}"
            )

    def as_tuple(value):
        return tuple(as_tuple(v) for v in value) if isinstance(value, list) else value

    return cls(**{name: as_tuple(value) for name, value in values.items()})


def grid(spec: Mapping[str, float], key: str) -> np.ndarray:
    """Grid values min, min + step, ..., max from a ``{min, max, step}`` mapping.

    key: the config key of ``spec``, for error messages. Values are rounded to 6
    decimals so that grid points compare equal across stages.
    """
    lo, hi, step = float(spec["min"]), float(spec["max"]), float(spec["step"])
    if not hi >= lo:
        raise ConfigError(f"{key}: max ({hi}) must not be below min ({lo})")
    n = (hi - lo) / step
    if abs(n - round(n)) > 1e-6:
        raise ConfigError(
            f"{key}: (max - min) = {hi - lo:g} is not a whole number of steps of {step:g}"
        )
    return np.round(lo + step * np.arange(round(n) + 1), 6)


def check_config(config: Mapping) -> None:
    """Checks across keys that the schema cannot express; raise ConfigError naming the key."""
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
    mocks = config["mocks"]
    for key in ("log_mass_msun", "eff_a_arcsec", "eff_gamma", "rh_arcsec"):
        if mocks[key]["min"] > mocks[key]["max"]:
            raise ConfigError(
                f"mocks.{key}: min ({mocks[key]['min']}) exceeds max ({mocks[key]['max']})"
            )
    from starclusters.mocks.params import check_rh_reachable

    check_rh_reachable(mocks)
    mosaic = config["mosaic"]
    if mosaic["source"] == "files":
        for band in bands:
            if band not in mosaic["files"] and band not in mosaic["download"]:
                raise ConfigError(
                    f"mosaic.files.{band}: mosaic.source is 'files' but neither an image nor a "
                    f"download is given for {band}"
                )
    else:
        from starclusters.mosaic.synthetic_spec import SyntheticGalaxySpec

        SyntheticGalaxySpec.from_config(mosaic["synthetic"])  # names unknown keys
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
    # the GPUs share each step's batch evenly (starclusters.model.train checks it again
    # against the processes started; whether the GPUs exist is checked where they run)
    train = config.get("train", {})
    gpus, batch = train.get("gpus", 1), train.get("batch_size")
    if train.get("device") == "cuda" and batch is not None and (batch % gpus or batch < 2 * gpus):
        raise ConfigError(
            f"train.batch_size: {batch} images per step do not split into {gpus} equal shares "
            f"of at least 2 (one per GPU, train.gpus = {gpus}); make it a multiple of {gpus} "
            "or change train.gpus"
        )
    # the maps' settings (mode, step, tile, batch, device); peak keys are checked where used
    from starclusters.detect.settings import DetectSettings

    DetectSettings.from_config(config.get("detect")).check_model(config.get("model"))
    # the peak and catalog keys (odd weight window, a complete galaxy_geometry)
    from starclusters.detect.catalog import check_catalog_config

    check_catalog_config(config)
    # validation galaxies: names, seeds and their synthetic keys
    from starclusters.mosaic.validation import validation_galaxies

    validation_galaxies(config)
    # the scorecard's diagnosis: its values, and its sky annulus outside its aperture
    from starclusters.scorecard.diagnose import DiagnosisSettings

    DiagnosisSettings.from_config((config.get("scorecard") or {}).get("diagnosis"))
