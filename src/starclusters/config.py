"""Configuration: loading, schema validation and the checks a schema cannot express.

The JSON schema in ``config/schema/config.schema.yaml`` documents and types every
key and fills its defaults; Snakemake applies it with ``validate()``, and
:func:`load_config` does the same for library users. :func:`check_config` adds the
cross-key checks (every band has a zero point, ranges are ordered...): the run's own keys
here, each stage's in that stage's settings module (:data:`STAGE_CHECKS`). The workflow
(``workflow/rules/common.smk``), :func:`load_config` and ``python -m starclusters.config``
run the same checks.

Layers, lowest first: :mod:`starclusters.errors`; :mod:`starclusters.sections` (config
sections as dataclasses, and :func:`~starclusters.sections.grid`, which turns a
``{min, max, step}`` range into the parameter grid so that grids are defined once, from
config); the stages' settings modules (``<stage>/settings.py`` and the settings classes
beside them), which import only those and their own stage; this module, which imports the
stages' checks; the command line and the workflow. No stage package imports this module
(tests/test_settings.py), so there is no import loop, and nothing here imports torch.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import yaml

from starclusters.analysis.comparison import check_comparison_config
from starclusters.analysis.settings import check_analysis_config
from starclusters.artificial.settings import check_artificial_config
from starclusters.backgrounds.settings import check_backgrounds_config
from starclusters.detect.arms import check_arms_config
from starclusters.detect.settings import check_detect_config
from starclusters.errors import ConfigError
from starclusters.mocks.settings import (
    check_mocks_config,
    check_psf_config,
    check_star_groups_config,
)
from starclusters.model.settings import check_train_config
from starclusters.mosaic.settings import check_mosaic_config
from starclusters.photometry.settings import check_photometry_config
from starclusters.scorecard.diagnose import check_diagnosis_config
from starclusters.sections import grid  # noqa: F401 (starclusters.config.grid, as before)
from starclusters.synthetic.spec import check_synthetic_config
from starclusters.synthetic.validation import robustness_galaxies, validation_galaxies

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


#: Each stage's checks of the config that the schema cannot express, in the order the stages
#: run; each takes the whole config (stages read other sections too: bands, window_px...) and
#: raises ConfigError naming the key.
STAGE_CHECKS = (
    check_photometry_config,
    check_mocks_config,
    check_star_groups_config,
    check_mosaic_config,
    check_synthetic_config,
    check_backgrounds_config,
    check_psf_config,
    check_train_config,
    check_detect_config,
    check_artificial_config,
    validation_galaxies,
    robustness_galaxies,
    check_diagnosis_config,
    check_analysis_config,
    check_comparison_config,
    check_arms_config,
)


def check_config(config: Mapping) -> None:
    """Checks across keys that the schema cannot express; raise ConfigError naming the key.

    The run's own keys (galaxy, window_px), then every stage's checks (:data:`STAGE_CHECKS`):
    what the workflow checks before any job starts, and what :func:`load_config` checks.
    """
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
    for check in STAGE_CHECKS:
        check(config)


if __name__ == "__main__":
    raise SystemExit(main())
