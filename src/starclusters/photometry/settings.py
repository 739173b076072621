"""The ``photometry`` config section: :class:`PhotometrySettings`, its defaults and checks.

:func:`starclusters.config.check_config` runs :func:`check_photometry_config` with every
other stage's check; this module imports nothing of the stage but the grids' rule
(:func:`starclusters.sections.grid`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import MISSING, dataclass, field, fields
from pathlib import Path

from starclusters.errors import ConfigError
from starclusters.sections import dataclass_from_config, grid

PHOTOMETRY_KEY = "photometry"
#: Values of ``photometry.magnitude_cut``: a mock passes the limits in all bands (thesis
#: §3.1.2) or in any one (old clusters seen in F814W only; docs/detection.md).
MAGNITUDE_CUTS = ("all", "any")


#: Defaults of the keys of the subsections (a subsection given in part takes the others).
SUBSECTION_DEFAULTS = {
    "isochrones": {"source": "parsec_grid", "cmd_files": [], "z_tolerance_dex": 0.05},
    "extinction": {"law": "ccm89", "r_v": 3.1},
    "imf": {"name": "kroupa2001", "mass_min_msun": 0.08, "mass_max_msun": 100.0},
}


@dataclass(frozen=True)
class PhotometrySettings:
    """The ``photometry`` config section (keys = field names; docs/photometry.md).

    isochrones: source ("parsec_grid" or "cmd"), metallicity_z, log_age_yr {min, max,
    step}, grid_file, cmd_files, z_tolerance_dex; filter_curves, vega_zeropoint_mag,
    magnitude_limits: per band; distance_mpc: the galaxy's distance, Mpc; extinction:
    av_mag {min, max, step}, law, r_v; imf: name, mass_min_msun, mass_max_msun;
    magnitude_cut: "all" or "any" (:data:`MAGNITUDE_CUTS`). A subsection given in part
    takes the other keys' defaults. Invalid values raise ConfigError naming
    ``photometry.<key>``; that every band has its entries is
    :func:`check_photometry_config`'s to check (it needs ``bands``).
    """

    isochrones: Mapping
    filter_curves: Mapping
    vega_zeropoint_mag: Mapping
    distance_mpc: float
    extinction: Mapping
    magnitude_limits: Mapping
    imf: Mapping = field(default_factory=lambda: dict(SUBSECTION_DEFAULTS["imf"]))
    magnitude_cut: str = "all"

    def __post_init__(self):
        if self.magnitude_cut not in MAGNITUDE_CUTS:
            raise ConfigError(
                f"{PHOTOMETRY_KEY}.magnitude_cut: must be one of {', '.join(MAGNITUDE_CUTS)}, "
                f"got {self.magnitude_cut!r}"
            )
        distance = self.distance_mpc
        if isinstance(distance, bool) or not isinstance(distance, int | float) or distance <= 0:
            raise ConfigError(
                f"{PHOTOMETRY_KEY}.distance_mpc: must be a number > 0, got {distance!r}"
            )
        iso = self.isochrones
        grid(iso["log_age_yr"], "photometry.isochrones.log_age_yr")
        grid(self.extinction["av_mag"], "photometry.extinction.av_mag")
        if iso["source"] == "cmd":
            if not iso.get("cmd_files"):
                raise ConfigError(
                    "photometry.isochrones.cmd_files: source is 'cmd' but no files are listed"
                )
            for file in iso["cmd_files"]:
                if not Path(file).exists():
                    raise ConfigError(f"photometry.isochrones.cmd_files: {file} does not exist")
        if not self.imf["mass_min_msun"] < self.imf["mass_max_msun"]:
            raise ConfigError("photometry.imf: mass_min_msun must be below mass_max_msun")

    @classmethod
    def from_config(cls, section: Mapping | None) -> PhotometrySettings:
        """Settings from a ``photometry`` mapping: absent keys (and absent keys of a
        subsection) take their defaults; an absent required key raises ConfigError naming
        it, as does an unknown one."""
        section = dict(section or {})
        for f in fields(cls):
            if f.default is MISSING and f.default_factory is MISSING and f.name not in section:
                raise ConfigError(f"{PHOTOMETRY_KEY}.{f.name}: missing; the photometry needs it")
        for key, default in SUBSECTION_DEFAULTS.items():
            if key in section:
                section[key] = {**default, **dict(section[key] or {})}
        for key, grid_key in (("isochrones", "log_age_yr"), ("extinction", "av_mag")):
            if grid_key not in section[key]:
                raise ConfigError(f"{PHOTOMETRY_KEY}.{key}.{grid_key}: missing")
        return dataclass_from_config(cls, section, PHOTOMETRY_KEY)


def magnitude_cut_of(photometry: Mapping) -> str:
    """``photometry.magnitude_cut`` of a section, its default where absent."""
    return photometry.get("magnitude_cut", PhotometrySettings.magnitude_cut)


def check_photometry_config(config: Mapping) -> None:
    """ConfigError naming the key: :class:`PhotometrySettings` (whole grids of ages and A_V,
    existing CMD files for source cmd, an ordered IMF mass range, a known magnitude cut),
    and a value for every band of ``bands`` in each per-band table."""
    bands = config["bands"]
    phot = config["photometry"]
    for table in ("vega_zeropoint_mag", "filter_curves", "magnitude_limits"):
        for band in bands:
            if band not in phot[table]:
                raise ConfigError(
                    f"photometry.{table}.{band}: missing; every band in `bands` needs a value here"
                )
    PhotometrySettings.from_config(phot)
