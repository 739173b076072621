"""The ``artificial`` config section: :class:`DrawSettings` (the ``draw`` subsection's
defaults and checks), the reference node's box, and the checks the schema cannot express.

:func:`starclusters.config.check_config` runs :func:`check_artificial_config` with every
other stage's check; this module imports nothing of the stage (only
:func:`starclusters.sections.grid` and the errors), so the config layer stays torch-free and
loop-free (tests/test_settings.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from starclusters.errors import ConfigError
from starclusters.sections import dataclass_from_config, grid, is_number

DRAW_KEY = "artificial.draw"
#: ``artificial.draw.magnitude_cut``: none (the whole grid) or the bank's cut.
DRAW_CUTS = ("none", "bank")


@dataclass(frozen=True)
class DrawSettings:
    """How the artificial mocks' parameters are drawn (the ``artificial.draw`` section; keys =
    field names; :mod:`starclusters.artificial.draw`).

    magnitude_cut: "none" (the whole grid) or "bank" (the bank's photometry cut);
    edge_width_mag: width (mag) of the extra density around the magnitude limits, > 0;
    far_keep: probability of keeping a draw far from that edge, in (0, 1] (1 = uniform);
    reference_fraction: share of the sites drawn at the reference node, in [0, 1).
    Invalid values raise ConfigError naming ``artificial.draw.<key>``.
    """

    magnitude_cut: str = "none"
    edge_width_mag: float = 1.0
    far_keep: float = 0.35
    reference_fraction: float = 0.12

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{DRAW_KEY}.{key}: {why}, got {getattr(self, key)!r}")

        def number(key):
            value = getattr(self, key)
            if not is_number(value):
                bad(key, "must be a number")
            return value

        if self.magnitude_cut not in DRAW_CUTS:
            bad("magnitude_cut", f"must be one of {', '.join(DRAW_CUTS)}")
        if not number("edge_width_mag") > 0:
            bad("edge_width_mag", "must be > 0 (mag)")
        if not 0 < number("far_keep") <= 1:
            bad("far_keep", "must be in (0, 1]")
        if not 0 <= number("reference_fraction") < 1:
            bad("reference_fraction", "must be in [0, 1)")

    @classmethod
    def from_config(cls, section: Mapping | None = None) -> DrawSettings:
        """Settings from an ``artificial.draw`` mapping (absent keys: defaults; unknown: fail)."""
        return dataclass_from_config(cls, section, DRAW_KEY)


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
    """ConfigError naming the key: the ``artificial.draw`` settings (:class:`DrawSettings`),
    and with ``artificial.draw.reference_fraction`` > 0 the reference node's box must hold
    ages of ``photometry.isochrones.log_age_yr`` and masses of ``mocks.log_mass_msun``."""
    section = config.get("artificial") or {}
    if DrawSettings.from_config(section.get("draw")).reference_fraction > 0:
        ages = grid(
            config["photometry"]["isochrones"]["log_age_yr"], "photometry.isochrones.log_age_yr"
        )
        reference_box(section["reference"], ages, config["mocks"])
