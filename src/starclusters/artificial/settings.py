"""The ``artificial`` config section: the defaults code reads, the reference node's box, and
the checks the schema cannot express.

:func:`starclusters.config.check_config` runs :func:`check_artificial_config` with every
other stage's check; this module imports nothing of the stage (only
:func:`starclusters.sections.grid` and the errors), so the config layer stays torch-free and
loop-free (tests/test_settings.py).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from starclusters.errors import ConfigError
from starclusters.sections import grid

#: Defaults of ``artificial.draw`` for a section a library user built without the schema
#: (tests/test_settings.py keeps them the schema's).
DRAW_DEFAULTS = {
    "magnitude_cut": "none",
    "edge_width_mag": 1.0,
    "far_keep": 0.35,
    "reference_fraction": 0.12,
}


def draw_settings(draw: Mapping | None) -> dict:
    """``artificial.draw`` with its defaults filled in (:data:`DRAW_DEFAULTS`)."""
    return {**DRAW_DEFAULTS, **dict(draw or {})}


def reference_box(
    reference: Mapping, log_ages_yr: np.ndarray, mocks: Mapping
) -> tuple[np.ndarray, dict]:
    """(ages, mocks) of the reference-node draw: the grid ages within ``half_width_dex`` of
    the node's log_age_yr, and the ``mocks`` section with log_mass_msun narrowed to the
    node's ± half_width_dex (within the bank's range).

    reference: the ``artificial.reference`` section (log_age_yr, log_mass_msun,
    half_width_dex). ConfigError naming it when the box holds no grid age or no mass of the
    bank's range.
    """
    half = float(reference["half_width_dex"])
    age, mass = float(reference["log_age_yr"]), float(reference["log_mass_msun"])
    all_ages = np.asarray(log_ages_yr, float)
    ages = all_ages[np.abs(all_ages - age) <= half + 1e-9]
    bank = mocks["log_mass_msun"]
    lo, hi = max(mass - half, float(bank["min"])), min(mass + half, float(bank["max"]))
    if not len(ages) or not hi > lo:
        raise ConfigError(
            f"artificial.reference: the box log t = {age} ± {half}, log M = {mass} ± {half} "
            f"holds no age of the grid ({all_ages.min()}–{all_ages.max()}) or no mass of "
            f"mocks.log_mass_msun ({bank['min']}–{bank['max']}); move the node, widen "
            "half_width_dex, or set artificial.draw.reference_fraction to 0"
        )
    return ages, {**mocks, "log_mass_msun": {"min": lo, "max": hi}}


def check_artificial_config(config: Mapping) -> None:
    """ConfigError naming the key: with ``artificial.draw.reference_fraction`` > 0 the
    reference node's box must hold ages of ``photometry.isochrones.log_age_yr`` and masses
    of ``mocks.log_mass_msun``."""
    section = config.get("artificial") or {}
    if draw_settings(section.get("draw"))["reference_fraction"] > 0:
        ages = grid(
            config["photometry"]["isochrones"]["log_age_yr"], "photometry.isochrones.log_age_yr"
        )
        reference_box(section["reference"], ages, config["mocks"])
