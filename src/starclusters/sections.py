"""Config sections as dataclasses, and parameter grids from config: the helpers of every
stage's settings.

:func:`dataclass_from_config` is what every settings class's ``from_config`` uses, and
:func:`is_number` / :func:`is_integer` what their checks test values with; :func:`grid` turns a ``{min, max, step}`` range into its grid. This module sits below
:mod:`starclusters.config` and the stages (it needs only
:class:`~starclusters.errors.ConfigError`), so that the stage packages whose settings
:func:`starclusters.config.check_config` checks never import ``config`` back.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from starclusters.errors import ConfigError


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


def is_number(value) -> bool:
    """Whether a config value is a real number: an int or a float (YAML's true/false are not)."""
    return not isinstance(value, bool) and isinstance(value, int | float)


def is_integer(value, smallest: int | None = None) -> bool:
    """Whether a config value is an int (not true/false), and at least ``smallest`` if given."""
    if isinstance(value, bool) or not isinstance(value, int):
        return False
    return smallest is None or value >= smallest


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
