"""Checks of the ``mocks``, ``psf`` and ``star_groups`` config sections that the schema
cannot express, and :class:`StarGroupSettings`, the ``star_groups`` section's defaults.

:func:`starclusters.config.check_config` runs them with every other stage's check.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starclusters.errors import ConfigError
from starclusters.mocks.halo import halo_params
from starclusters.mocks.params import check_rh_reachable
from starclusters.sections import dataclass_from_config

#: Defaults of the ``mocks`` keys the schema does not require (tests/test_settings.py
#: keeps them the schema's); :func:`mock_section` fills them in.
MOCK_DEFAULTS = {
    "truncation_arcsec": 2.5,
    "faint_limit_mag": 29.0,
    "faint_packets": 2000,
    "max_draws_per_mock": 50,
}


def mock_section(mocks: Mapping) -> dict:
    """A ``mocks`` section with :data:`MOCK_DEFAULTS` where a key is absent."""
    return {**MOCK_DEFAULTS, **dict(mocks)}


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
    if psf.get("halo"):
        if psf["source"] == "files":
            raise ConfigError("psf.halo: applies to the GalSim model only (psf.source: galsim)")
        curves = config["photometry"]["filter_curves"]
        for band in bands:
            halo_params(curves[band])  # ConfigError: not WFC3/UVIS, or no fit for the filter


STAR_GROUPS_KEY = "star_groups"


@dataclass(frozen=True)
class StarGroupSettings:
    """The ``star_groups`` config section (keys = field names).

    n_shards: shards (parallel jobs); per_shard: groups per shard (after the cuts);
    max_stars: most stars in a group (1 … max_stars, equally often); group_radius_arcsec:
    radius of the disc the companions of the first star lie in, arcsec; star_limit_mag:
    every star is brighter than this apparent Vega magnitude in at least one band before
    extinction; max_draws_per_group: redraws allowed per kept group before the cuts are
    declared to reject everything. Invalid values raise ConfigError naming
    ``star_groups.<key>``.
    """

    n_shards: int = 1
    per_shard: int = 1000
    max_stars: int = 4
    group_radius_arcsec: float = 0.3
    star_limit_mag: float = 25.0
    max_draws_per_group: int = 200

    def __post_init__(self):
        for key in ("n_shards", "per_shard", "max_stars", "max_draws_per_group"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ConfigError(
                    f"{STAR_GROUPS_KEY}.{key}: must be a positive integer, got {value!r}"
                )
        for key in ("group_radius_arcsec", "star_limit_mag"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConfigError(f"{STAR_GROUPS_KEY}.{key}: must be a number, got {value!r}")
        if not self.group_radius_arcsec >= 0:
            raise ConfigError(
                f"{STAR_GROUPS_KEY}.group_radius_arcsec: must be ≥ 0, got {self.group_radius_arcsec}"
            )

    @classmethod
    def from_config(cls, section: Mapping | None = None, **overrides) -> StarGroupSettings:
        """Settings from the ``star_groups`` config mapping, then ``overrides``."""
        return dataclass_from_config(cls, section, STAR_GROUPS_KEY, **overrides)


def check_star_groups_config(config: Mapping) -> None:
    """ConfigError naming the ``star_groups`` key whose value cannot give star groups."""
    StarGroupSettings.from_config(config.get(STAR_GROUPS_KEY))
