"""The ``analysis`` config section: :class:`AnalysisSettings`, its defaults and checks.

:func:`starclusters.config.check_config` runs :func:`check_analysis_config` with every other
stage's check; the stage functions (:mod:`starclusters.analysis.stage`) fill their sections
in through it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields

from starclusters.analysis.mass_function import THESIS_SLOPE
from starclusters.analysis.population import (
    ARM_AGE_EDGES_LOG_YR,
    OLD_MIN_LOG_AGE_YR,
    YOUNG_MAX_LOG_AGE_YR,
    age_groups,
)
from starclusters.errors import ConfigError
from starclusters.sections import dataclass_from_config, is_integer

ANALYSIS_KEY = "analysis"


def _nested(**defaults):
    """A dataclass field whose default is the mapping ``defaults`` (a fresh dict each time)."""
    return field(default_factory=lambda: dict(defaults))


@dataclass(frozen=True)
class AnalysisSettings:
    """The ``analysis`` config section (keys = field names; thesis §4.3).

    age_groups_log_yr: ascending log10(t/yr) edges of the arm-distance age groups;
    young_max_log_age_yr, old_min_log_age_yr: the young and old samples' age limits;
    mass_function: completeness_log_mass_msun ("selection": derived from the selection
    function, or a number), completeness_level, max_log_age_yr, slope; arm_distance and
    radial: the sliding windows (kpc); map_max_px, map_min_log_mass_msun: the maps figure;
    bootstrap: resamplings of the error bars; comparison: a published catalog to compare
    with (:mod:`starclusters.analysis.comparison`); population_fit: min_completeness,
    error_kernel. A subsection given in part takes the other keys' defaults. Invalid
    values raise ConfigError naming ``analysis.<key>``.
    """

    age_groups_log_yr: tuple = tuple(ARM_AGE_EDGES_LOG_YR)
    young_max_log_age_yr: float = YOUNG_MAX_LOG_AGE_YR
    old_min_log_age_yr: float = OLD_MIN_LOG_AGE_YR
    mass_function: Mapping = _nested(
        completeness_log_mass_msun="selection",
        completeness_level=0.9,
        max_log_age_yr=8.5,
        slope=THESIS_SLOPE,
    )
    arm_distance: Mapping = _nested(min_kpc=-1.0, max_kpc=1.5, step_kpc=0.01, window_kpc=0.1)
    radial: Mapping = _nested(step_kpc=0.1, window_kpc=0.5)
    map_max_px: int = 1024
    map_min_log_mass_msun: float = 4.0
    bootstrap: int = 200
    comparison: Mapping = _nested(source="none", format="csv", match_radius_arcsec=0.12)
    population_fit: Mapping = _nested(min_completeness=0.1, error_kernel=True)

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{ANALYSIS_KEY}.{key}: {why}, got {getattr(self, key)!r}")

        for key, smallest in (("map_max_px", 64), ("bootstrap", 2)):
            value = getattr(self, key)
            if not is_integer(value, smallest):
                bad(key, f"must be an integer ≥ {smallest}")
        try:
            age_groups(self.age_groups_log_yr)
        except (TypeError, ValueError):
            bad("age_groups_log_yr", "must be ascending log10(t/yr) edges")

    @classmethod
    def from_config(cls, section: Mapping | None = None) -> AnalysisSettings:
        """Settings from an ``analysis`` mapping: absent keys take their defaults, and so do
        the absent keys of a subsection given in part. ConfigError names an unknown key."""
        section = dict(section or {})
        defaults = cls()
        for key, value in section.items():
            default = getattr(defaults, key, None)
            if isinstance(default, Mapping) and isinstance(value, Mapping):
                unknown = sorted(set(value) - set(default))
                if unknown and key != "comparison":  # its keys depend on its source
                    raise ConfigError(
                        f"{ANALYSIS_KEY}.{key}.{unknown[0]}: unknown key; known keys are "
                        f"{', '.join(sorted(default))}"
                    )
                section[key] = {**default, **value}
        return dataclass_from_config(cls, section, ANALYSIS_KEY)

    def to_config(self) -> dict:
        """The settings as a plain ``analysis`` mapping (lists, not tuples, as YAML has)."""
        out = {f.name: getattr(self, f.name) for f in fields(self)}
        out["age_groups_log_yr"] = list(self.age_groups_log_yr)
        return out


#: The ``analysis`` keys and their defaults: :class:`AnalysisSettings`' (thesis §4.3).
ANALYSIS_DEFAULTS = AnalysisSettings().to_config()


def check_analysis_config(config: Mapping) -> None:
    """ConfigError naming the ``analysis`` key whose value :class:`AnalysisSettings` refuses."""
    AnalysisSettings.from_config(config.get(ANALYSIS_KEY))
