"""The candidate catalog: peaks with sky positions, physical sizes, densities and galactocentric
distances; threshold selection; DS9 regions (thesis §4.2.2, §4.3.4).

* RA, Dec: the maps' celestial WCS at the peak pixel (0-based x, y as astropy reads them).
* r_h (pc) = r_h (arcsec) × D / 206 265 at the distance D of ``photometry.distance_mpc``.
* density within the half-mass radius, thesis §4.3: ρ_h = 3M / (8π r_h³), M☉ pc⁻³ (half
  the mass in the sphere of radius r_h).
* galactocentric distance: deprojected into the disk plane of a thin disk with centre
  (α₀, δ₀), inclination i and major-axis position angle PA (north through east). With
  (ξ, η) the gnomonic offsets from the centre (ξ east, η north),
  u = ξ sin PA + η cos PA (along the major axis), v = −ξ cos PA + η sin PA (along the
  minor axis), R = √(u² + (v / cos i)²) × the kpc per arcsec of :class:`DiskGeometry` —
  the same frame as the synthetic galaxy's ``GalaxyGeometry.sky_to_disk``.

Candidates are the peaks with class > ``class_threshold`` and visibility >
``visibility_threshold`` (thesis §4.2.3: 0.95 and 2.5).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from starclusters.errors import ConfigError, InputFileError
from starclusters.io import atomic_path
from starclusters.model.thresholds import THESIS_CLASS_THRESHOLD, THESIS_VISIBILITY_THRESHOLD

#: Arcseconds per radian.
ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
#: The thesis' candidate thresholds (§4.2.3, Fig. 4.2), defined with the held-out test's
#: derivation of them (:mod:`starclusters.model.thresholds`).
CLASS_THRESHOLD = THESIS_CLASS_THRESHOLD
VISIBILITY_THRESHOLD = THESIS_VISIBILITY_THRESHOLD
#: Smallest circle drawn in the region file, arcsec (unresolved candidates stay visible).
MIN_REGION_RADIUS_ARCSEC = 0.1
#: Derived values of a candidate (the weighted parameters and the physical quantities).
DERIVED_COLUMNS = (
    "class",
    "visibility",
    "log_age_yr",
    "log_mass_msun",
    "av_mag",
    "log_rh_arcsec",
    "rh_pc",
    "log_density_msun_pc3",
    "galactocentric_kpc",
)
#: Columns every peak and candidate table has (others may follow).
CATALOG_COLUMNS = ("peak_id", "x", "y", "ra_deg", "dec_deg", "class_smoothed", *DERIVED_COLUMNS)
#: Units of the catalog's columns whose names do not carry them (Parquet metadata).
UNITS = {
    "peak_id": "row of detect/peaks.parquet",
    "x": "0-based column of the maps' pixel grid (the mosaic grid)",
    "y": "0-based row of the maps' pixel grid",
    "class_smoothed": "p_cluster smoothed with the Gaussian of detect.smooth_sigma_px, at the peak",
    "class": "p_cluster at the peak pixel (thresholded)",
    "class_weighted": "p_cluster, class-and-distance weighted mean over the window",
    "visibility": "thesis eq. 3.2, weighted mean of log10 over the window",
    "galactocentric_kpc": "deprojected distance in the disk plane; see meta geometry",
}


@dataclass(frozen=True)
class DiskGeometry:
    """A thin disk on the sky: centre (deg), inclination i (deg, 0 = face-on), major-axis
    position angle PA (deg, north through east) and the kpc per arcsec of sky at its distance.

    For the synthetic galaxy kpc_per_arcsec is the model galaxy's (its structure is shrunk
    by ``geometry_scale`` on the sky), so distances come in the kpc of its truth table.
    """

    centre_ra_deg: float
    centre_dec_deg: float
    inclination_deg: float
    position_angle_deg: float
    kpc_per_arcsec: float

    def __post_init__(self):
        if not 0 <= self.inclination_deg < 90:
            raise ConfigError(
                f"galaxy_geometry.inclination_deg: must be in [0, 90) degrees, got "
                f"{self.inclination_deg}"
            )
        if not -90 <= self.centre_dec_deg <= 90:
            raise ConfigError(
                f"galaxy_geometry.centre_dec_deg: must be in [-90, 90], got {self.centre_dec_deg}"
            )
        if not self.kpc_per_arcsec > 0:
            raise ValueError(f"kpc_per_arcsec must be positive, got {self.kpc_per_arcsec}")

    def sky_offsets_arcsec(self, ra_deg, dec_deg) -> tuple[np.ndarray, np.ndarray]:
        """Gnomonic (TAN) offsets (ξ east, η north) from the centre, arcsec."""
        ra = np.radians(np.asarray(ra_deg, float))
        dec = np.radians(np.asarray(dec_deg, float))
        ra0, dec0 = np.radians(self.centre_ra_deg), np.radians(self.centre_dec_deg)
        cos_c = np.sin(dec0) * np.sin(dec) + np.cos(dec0) * np.cos(dec) * np.cos(ra - ra0)
        xi = np.cos(dec) * np.sin(ra - ra0) / cos_c
        eta = (np.cos(dec0) * np.sin(dec) - np.sin(dec0) * np.cos(dec) * np.cos(ra - ra0)) / cos_c
        return xi * ARCSEC_PER_RAD, eta * ARCSEC_PER_RAD

    def disk_kpc(self, ra_deg, dec_deg) -> tuple[np.ndarray, np.ndarray]:
        """Disk-plane (x along the major axis towards PA, y towards PA − 90°), kpc."""
        xi, eta = self.sky_offsets_arcsec(ra_deg, dec_deg)
        pa = np.radians(self.position_angle_deg)
        u = xi * np.sin(pa) + eta * np.cos(pa)
        v = -xi * np.cos(pa) + eta * np.sin(pa)
        k = self.kpc_per_arcsec
        return u * k, v * k / np.cos(np.radians(self.inclination_deg))

    def galactocentric_kpc(self, ra_deg, dec_deg) -> np.ndarray:
        """Deprojected distance from the centre in the disk plane, kpc."""
        return np.hypot(*self.disk_kpc(ra_deg, dec_deg))

    def projected_kpc(self, ra_deg, dec_deg) -> np.ndarray:
        """Distance from the centre on the sky (not deprojected), kpc."""
        return np.hypot(*self.sky_offsets_arcsec(ra_deg, dec_deg)) * self.kpc_per_arcsec

    def to_dict(self) -> dict:
        return {
            "centre_ra_deg": self.centre_ra_deg,
            "centre_dec_deg": self.centre_dec_deg,
            "inclination_deg": self.inclination_deg,
            "position_angle_deg": self.position_angle_deg,
            "kpc_per_arcsec": self.kpc_per_arcsec,
        }


def kpc_per_arcsec(distance_mpc: float) -> float:
    """kpc of sky per arcsec at ``distance_mpc``."""
    return float(distance_mpc) * 1e3 / ARCSEC_PER_RAD


GEOMETRY_KEYS = ("centre_ra_deg", "centre_dec_deg", "inclination_deg", "position_angle_deg")


def check_geometry_config(config: Mapping) -> None:
    """Checks of the ``galaxy_geometry`` section that the schema cannot express (ConfigError
    names the key): complete for source config, source synthetic only with the synthetic
    galaxy. (The ``detect`` keys of the catalog are
    :class:`~starclusters.detect.settings.CatalogSettings`' to check.)"""
    section = config.get("galaxy_geometry") or {}
    source = section.get("source", "none")
    if source == "synthetic" and config["mosaic"]["source"] != "synthetic":
        raise ConfigError(
            "galaxy_geometry.source: 'synthetic' needs mosaic.source: synthetic; give "
            "source: config with centre_ra_deg, centre_dec_deg, inclination_deg, position_angle_deg"
        )
    if source == "config":
        geometry_from_config(section, 1.0)


def geometry_from_config(
    section: Mapping | None, distance_mpc: float, synthetic_meta: Mapping | None = None
) -> DiskGeometry | None:
    """The disk geometry of the ``galaxy_geometry`` config section (None for source none).

    section: ``{source: config, centre_ra_deg, centre_dec_deg, inclination_deg,
    position_angle_deg}``, ``{source: synthetic}``, which takes the synthetic galaxy's
    own geometry from ``synthetic_meta`` (the "geometry" metadata of
    ``mosaic/arms.parquet``, kpc of the model galaxy), or ``{source: none}`` (the
    default: no geometry). ConfigError names the key.
    """
    section = section or {}
    source = section.get("source", "none")
    if source == "none":
        return None
    if source == "synthetic":
        if synthetic_meta is None:
            raise ConfigError(
                "galaxy_geometry.source: 'synthetic' needs the synthetic galaxy "
                "(mosaic.source: synthetic); give the numbers with source: config"
            )
        keys = GEOMETRY_KEYS
        missing = [k for k in (*keys, "kpc_per_arcsec") if k not in synthetic_meta]
        if missing:
            raise InputFileError(
                f"the synthetic galaxy's geometry metadata lacks {missing}; rerun the mosaic stage"
            )
        return DiskGeometry(
            *(float(synthetic_meta[k]) for k in keys), float(synthetic_meta["kpc_per_arcsec"])
        )
    if source != "config":
        raise ConfigError(
            f"galaxy_geometry.source: 'config', 'synthetic' or 'none', got {source!r}"
        )
    values = []
    for key in GEOMETRY_KEYS:
        if section.get(key) is None:
            raise ConfigError(f"galaxy_geometry.{key}: missing (needed with source: config)")
        values.append(float(section[key]))
    return DiskGeometry(*values, kpc_per_arcsec(distance_mpc))


def rh_pc(log_rh_arcsec, distance_mpc: float) -> np.ndarray:
    """Half-light radius in pc from log10(r_h / arcsec) at ``distance_mpc``."""
    return 10.0 ** np.asarray(log_rh_arcsec, float) * kpc_per_arcsec(distance_mpc) * 1e3


def half_mass_density(log_mass_msun, rh_pc_) -> np.ndarray:
    """ρ_h = 3M / (8π r_h³), M☉ pc⁻³: mean density of the half mass inside r_h (thesis §4.3)."""
    mass = 10.0 ** np.asarray(log_mass_msun, float)
    return 3.0 * mass / (8.0 * np.pi * np.asarray(rh_pc_, float) ** 3)


def build_catalog(
    peaks: pd.DataFrame, wcs, distance_mpc: float, geometry: DiskGeometry | None
) -> pd.DataFrame:
    """``peaks`` (:func:`~starclusters.detect.peaks.find_peaks`) with the physical columns.

    wcs: the maps' celestial astropy WCS. Adds ra_deg, dec_deg, rh_pc, density_msun_pc3,
    log_density_msun_pc3, galactocentric_kpc (deprojected) and projected_kpc (on the sky;
    both NaN without a geometry).
    """
    out = peaks.copy()
    if len(out):
        sky = wcs.pixel_to_world(out["x"].to_numpy(float), out["y"].to_numpy(float))
        ra, dec = np.atleast_1d(sky.icrs.ra.deg), np.atleast_1d(sky.icrs.dec.deg)
    else:
        ra = dec = np.zeros(0)
    out.insert(3, "ra_deg", ra)
    out.insert(4, "dec_deg", dec)
    out["rh_pc"] = rh_pc(out["log_rh_arcsec"], distance_mpc)
    out["density_msun_pc3"] = half_mass_density(out["log_mass_msun"], out["rh_pc"])
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_density_msun_pc3"] = np.log10(out["density_msun_pc3"])
    nan = np.full(len(out), np.nan)
    out["galactocentric_kpc"] = nan if geometry is None else geometry.galactocentric_kpc(ra, dec)
    out["projected_kpc"] = nan if geometry is None else geometry.projected_kpc(ra, dec)
    return out


def select_candidates(
    catalog: pd.DataFrame,
    class_threshold: float = CLASS_THRESHOLD,
    visibility_threshold: float = VISIBILITY_THRESHOLD,
) -> pd.DataFrame:
    """Rows with class > class_threshold and visibility > visibility_threshold (NaN fails)."""
    return catalog[candidate_mask(catalog, class_threshold, visibility_threshold)].reset_index(
        drop=True
    )


def candidate_mask(
    catalog: pd.DataFrame,
    class_threshold: float = CLASS_THRESHOLD,
    visibility_threshold: float = VISIBILITY_THRESHOLD,
) -> np.ndarray:
    """(N,) bool: the rows :func:`select_candidates` keeps (NaN fails)."""
    return (catalog["class"].to_numpy(float) > class_threshold) & (
        catalog["visibility"].to_numpy(float) > visibility_threshold
    )


def rank_candidates(catalog: pd.DataFrame) -> pd.DataFrame:
    """Candidates best first: by class, then visibility, both descending (ties by peak_id)."""
    return catalog.sort_values(
        ["class", "visibility", "peak_id"], ascending=[False, False, True], kind="stable"
    ).reset_index(drop=True)


def region_label(row) -> str:
    """DS9 text of a candidate: id, log age, log mass."""
    return f"{int(row.peak_id)}: t={row.log_age_yr:.2f} M={row.log_mass_msun:.2f}"


def write_regions(
    path: str | os.PathLike,
    catalog: pd.DataFrame,
    min_radius_arcsec: float = MIN_REGION_RADIUS_ARCSEC,
) -> None:
    """Write a DS9 region file atomically, FK5 J2000 (DS9's ``j2000``): one circle per row of
    radius max(r_h, min_radius_arcsec), labelled by :func:`region_label` (log10 age in yr,
    log10 mass in M☉)."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord
    from regions import CircleSkyRegion, Regions

    shapes = []
    for row in catalog.itertuples(index=False):
        rh = 10.0**row.log_rh_arcsec if np.isfinite(row.log_rh_arcsec) else 0.0
        region = CircleSkyRegion(
            SkyCoord(row.ra_deg, row.dec_deg, unit="deg", frame="icrs").fk5,
            max(rh, min_radius_arcsec) * u.arcsec,
        )
        region.meta["text"] = region_label(row)
        shapes.append(region)
    with atomic_path(path) as tmp:  # no candidates: an empty file, which DS9 and regions read
        Regions(shapes).write(str(tmp), format="ds9", overwrite=True)
