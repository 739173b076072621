"""Settings of the ``mocks`` and ``star_groups`` config sections (:class:`MockSettings`,
:class:`StarGroupSettings`: defaults and checks) and the ``psf`` section's checks.

:func:`starclusters.config.check_config` runs them with every other stage's check.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from starclusters.errors import ConfigError
from starclusters.mocks.halo import halo_params
from starclusters.mocks.params import check_rh_reachable
from starclusters.sections import dataclass_from_config, is_integer, is_number

MOCKS_KEY = "mocks"
#: The ``mocks`` keys that are {min, max} ranges of the drawn parameters.
RANGE_KEYS = ("log_mass_msun", "eff_a_arcsec", "eff_gamma", "rh_arcsec")


@dataclass(frozen=True)
class MockSettings:
    """The ``mocks`` config section (keys = field names): how the mock bank is drawn.

    n_shards: shards (parallel jobs); per_shard: mocks per shard; log_mass_msun, eff_a_arcsec,
    eff_gamma, rh_arcsec: {min, max} ranges of the drawn log10 mass (M☉), EFF core radius
    (arcsec), EFF slope and half-light radius (arcsec; thesis §3.1.3); truncation_arcsec:
    radius the EFF profile is truncated at; faint_limit_mag: stars fainter than this
    apparent Vega magnitude are light packets (None: every star drawn);
    faint_packets: packets the faint stars' light is spread over; max_draws_per_mock:
    redraws allowed per kept mock before the magnitude cuts are declared to reject
    everything. Invalid values raise ConfigError naming ``mocks.<key>``.
    """

    n_shards: int
    per_shard: int
    log_mass_msun: Mapping
    eff_a_arcsec: Mapping
    eff_gamma: Mapping
    rh_arcsec: Mapping
    truncation_arcsec: float = 2.5
    faint_limit_mag: float | None = 29.0
    faint_packets: int = 2000
    max_draws_per_mock: int = 50

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{MOCKS_KEY}.{key}: {why}, got {getattr(self, key)!r}")

        for key in ("n_shards", "per_shard", "faint_packets", "max_draws_per_mock"):
            value = getattr(self, key)
            if not is_integer(value, 1):
                bad(key, "must be a positive integer")
        if not is_number(self.truncation_arcsec) or not self.truncation_arcsec > 0:
            bad("truncation_arcsec", "must be a number > 0 (arcsec)")
        if self.faint_limit_mag is not None and not is_number(self.faint_limit_mag):
            bad("faint_limit_mag", "must be a number (Vega mag) or null")
        for key in RANGE_KEYS:
            bounds = getattr(self, key)
            if not isinstance(bounds, Mapping) or not all(
                is_number(bounds.get(end)) for end in ("min", "max")
            ):
                bad(key, "must be a range {min: number, max: number}")
            if bounds["min"] > bounds["max"]:
                raise ConfigError(
                    f"{MOCKS_KEY}.{key}: min ({bounds['min']}) exceeds max ({bounds['max']})"
                )
        check_rh_reachable(self.to_config())

    @classmethod
    def from_config(cls, section: Mapping | None) -> MockSettings:
        """Settings from a ``mocks`` mapping: absent keys with a default take it; an absent
        required key or an unknown one raises ConfigError naming it."""
        section = dict(section or {})
        for f in dataclasses.fields(cls):
            if f.default is dataclasses.MISSING and f.name not in section:
                raise ConfigError(f"{MOCKS_KEY}.{f.name}: missing; the mock bank needs it")
        return dataclass_from_config(cls, section, MOCKS_KEY)

    def to_config(self) -> dict:
        """The settings as a plain ``mocks`` config mapping (every key filled in)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


#: The defaults of :class:`MockSettings` (the keys a ``mocks`` section may leave out).
MOCK_DEFAULTS = {
    f.name: f.default
    for f in dataclasses.fields(MockSettings)
    if f.default is not dataclasses.MISSING
}


def mock_section(mocks: Mapping) -> dict:
    """A ``mocks`` mapping with :class:`MockSettings`' defaults where a key is absent.

    Also for the subsets callers pass (e.g. the synthetic galaxy's faint_limit_mag and
    faint_packets for its clusters' stars), which are not whole sections."""
    return {**MOCK_DEFAULTS, **dict(mocks)}


def check_mocks_config(config: Mapping) -> None:
    """ConfigError naming the ``mocks`` key: :class:`MockSettings` (ordered ranges, an r_h
    range the EFF profiles reach: :func:`~starclusters.mocks.params.check_rh_reachable`)."""
    MockSettings.from_config(config["mocks"])


#: Defaults of the ``psf`` keys code reads from a section built without the schema
#: (tests/test_settings.py keeps them the schema's).
PSF_DEFAULTS = {"halo": False}


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
            if not is_integer(value, 1):
                raise ConfigError(
                    f"{STAR_GROUPS_KEY}.{key}: must be a positive integer, got {value!r}"
                )
        for key in ("group_radius_arcsec", "star_limit_mag"):
            value = getattr(self, key)
            if not is_number(value):
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
