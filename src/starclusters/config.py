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


def read_yaml(path: str | os.PathLike) -> dict:
    """The mapping in a YAML (or JSON) config file; ConfigError with the file and line of a
    syntax error, or if the file is missing or does not hold a mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        with path.open(encoding="utf-8") as handle:
            config = yaml.safe_load(handle)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"{path}, line {mark.line + 1}, column {mark.column + 1}" if mark else str(path)
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        context, start = getattr(err, "context", None), getattr(err, "context_mark", None)
        if context and start is not None and start is not mark:
            context += f" that starts at line {start.line + 1}"
        raise ConfigError(
            f"{where}: not valid YAML ({problem}"
            f"{', ' + context if context else ''}); fix the file there (indent with spaces, "
            "not tabs; close brackets and quotes)"
        ) from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not a text file ({err})") from None
    if config is None:
        return {}
    if not isinstance(config, dict):
        raise ConfigError(
            f"{path}: holds a {type(config).__name__}, a config must map keys to values"
        )
    return config


def merge(base: Mapping, over: Mapping) -> dict:
    """``over`` merged into a copy of ``base`` section by section (as Snakemake's --configfile)."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def validate_config(config: dict, schema_path: str | os.PathLike = SCHEMA_PATH) -> None:
    """Validate against the schema and fill its defaults (the workflow's own check).

    ConfigError naming the key on the first violation, in a line or two (Snakemake's
    ``validate`` would print the whole schema after it): an unknown key gives the key and
    the allowed ones.
    """
    import jsonschema
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    try:
        validate(config, str(schema_path), set_default=True)
    except WorkflowError as err:
        cause = err.__cause__ or err.__context__  # Snakemake raises it inside `except`
        if not isinstance(cause, jsonschema.ValidationError):
            raise
        raise ConfigError(_schema_message(cause)) from None


def _schema_message(error) -> str:
    """A short message for one jsonschema ValidationError: the key, what is wrong."""
    path = [str(p) for p in error.absolute_path]
    key = ".".join(path) or "config"
    if error.validator == "additionalProperties" and isinstance(error.instance, Mapping):
        allowed = sorted((error.schema.get("properties") or {}).keys())
        extra = sorted(k for k in error.instance if k not in allowed)
        if allowed and extra:
            where = ".".join([*path, extra[0]])
            return (
                f"{where}: unknown key; allowed keys{' in ' + key if path else ''} are "
                f"{', '.join(allowed)}"
            )
    if error.validator == "propertyNames":
        return f"{key}: key {error.instance!r} not allowed ({error.message})"
    message = error.message
    if len(message) > 300:
        message = message[:300] + " ..."
    return f"{key}: {message}"


def load_config(path: str | os.PathLike, schema_path: str | os.PathLike = SCHEMA_PATH) -> dict:
    """Read a YAML config, fill schema defaults, validate it and run :func:`check_config`.

    The checks of the workflow (``workflow/rules/common.smk``), in the same order:
    :func:`read_yaml` (file and line of a syntax error), :func:`validate_config` (schema,
    short messages) and :func:`check_config` (cross-key checks).
    """
    config = read_yaml(path)
    validate_config(config, schema_path)
    check_config(config)
    return config


def main(argv=None) -> int:
    """``python -m starclusters.config [CONFIG ...]``: check configs before a run.

    Each CONFIG is merged over ``config/config.yaml`` (as ``snakemake --configfile``
    does) and checked as the workflow checks it. Exit status 1 with the message (file and
    line of a YAML error, or the key) on the first problem.
    """
    import sys

    paths = list(sys.argv[1:] if argv is None else argv)
    default = SCHEMA_PATH.parents[1] / "config.yaml"
    try:
        base = read_yaml(default)
        for path in paths or [default]:
            config = merge(base, read_yaml(path))
            validate_config(config)
            check_config(config)
    except ConfigError as err:
        print(f"ConfigError: {err}", file=sys.stderr)
        return 1
    return 0


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
    galaxy = config["galaxy"]
    if (
        not isinstance(galaxy, str)
        or galaxy in ("", ".", "..")
        or any(sep in galaxy for sep in ("/", "\\", os.sep))
    ):
        raise ConfigError(
            f"galaxy: {galaxy!r} is not a plain name (results go to results/<galaxy>/); use "
            "letters, digits, '_', '-' or '.', without path separators, not '.' or '..'"
        )
    window = config["window_px"]
    if window % 2:
        raise ConfigError(
            f"window_px: must be even (the window centred on a pixel spans S/2 pixels on "
            f"either side, thesis 64 or 80), got {window}"
        )
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
        from starclusters.synthetic.spec import SyntheticGalaxySpec

        spec = SyntheticGalaxySpec.from_config(  # names unknown keys
            mosaic["synthetic"],
            bands=tuple(bands),
            pixel_scale_arcsec=config["pixel_scale_arcsec"],
        )
        spec.check(bands)  # every value the generator needs (shape_px, exptime_s...)
        if min(spec.shape_px) < window:
            raise ConfigError(
                f"mosaic.synthetic.shape_px: {list(spec.shape_px)} px is smaller than the "
                f"{window}-px window (window_px); make the mosaic larger or window_px smaller"
            )
    check_backgrounds(config.get("backgrounds") or {}, window)
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
    # the training settings, and the batch split over train.gpus (whether the GPUs exist
    # is checked where they run)
    from starclusters.model.settings import check_train_config

    check_train_config(config)
    # the maps' settings (mode, step, tile, batch, device); peak keys are checked where used
    from starclusters.detect.settings import DetectSettings

    DetectSettings.from_config(config.get("detect")).check_model(config.get("model"))
    # the peak and catalog keys (odd weight window, a complete galaxy_geometry)
    from starclusters.detect.catalog import check_catalog_config

    check_catalog_config(config)
    # validation galaxies: names, seeds and their synthetic keys
    from starclusters.synthetic.validation import validation_galaxies

    validation_galaxies(config)
    # the scorecard's diagnosis: its values, and its sky annulus outside its aperture
    from starclusters.scorecard.diagnose import DiagnosisSettings

    DiagnosisSettings.from_config((config.get("scorecard") or {}).get("diagnosis"))
    # the analysis' catalog comparison and the arms (dust lanes) it measures distances from
    from starclusters.analysis.arms import arms_section, check_arms_config
    from starclusters.analysis.comparison import check_comparison_config

    check_comparison_config(config)
    check_arms_config(arms_section(config), config)


def check_backgrounds(section: Mapping, window_px: int) -> None:
    """ConfigError naming the ``backgrounds`` key whose value cannot give cutouts."""
    fractions = section.get("split_fractions")
    if fractions:
        total = sum(float(v) for v in fractions.values())
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(
                f"backgrounds.split_fractions: the shares must sum to 1, got {dict(fractions)} "
                f"(sum {total:g})"
            )
    block = section.get("block_px")
    if block is not None and block < window_px:
        raise ConfigError(
            f"backgrounds.block_px: {block} px is smaller than the {window_px}-px window "
            "(window_px); a cutout must fit inside one block, make block_px at least window_px"
        )


if __name__ == "__main__":
    raise SystemExit(main())
