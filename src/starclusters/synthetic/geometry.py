"""Geometry of a synthetic galaxy: sky ↔ disk plane, rotation, spiral arms, dust screen, WCSs.

Frames
------
* **sky plane** (ξ, η), arcsec: standard coordinates of a TAN projection centred on
  the galaxy centre, ξ towards east, η towards north (:attr:`SkyFrame.model_wcs`);
* **disk plane** (x, y), kpc of the model galaxy: x along the major axis (towards
  position angle PA), y along the minor axis (towards PA − 90°), deprojected
  (divided by cos i) and divided by ``geometry_scale``
  (:meth:`GalaxyGeometry.sky_to_disk`). Disk azimuth φ = atan2(y, x), radius R;
* **band pixels** (x_px, y_px), 0-based, pixel centres at integers, through each
  band's own TAN WCS (:func:`band_wcs`); the reference band's grid is north up,
  east left, the others are shifted and rotated slightly.

The disk rotates towards increasing φ, which is clockwise on a north-up, east-left
image. Arms trail: a lane's azimuth decreases outwards,

    φ_lane,k(R) = φ_0 + 2πk / n_arms − ln(R / R_start) / tan(pitch),

so a point at the lane's radius but ahead of it in azimuth (Δφ > 0) lies outside the
lane, on the arm's convex side. Stars are born on the lane and drift by
(Ω(R) − Ω_p) t: inside corotation to Δφ > 0 ("leading"), so the lane marks the arm's
inner (concave, upstream) edge; beyond corotation the pattern overtakes them, they
trail (Δφ < 0) and the lane is the arm's outer edge. The arm band (diffuse dust,
``on_arm``) extends downstream of the lane in either case.

Distance across an arm
----------------------
In (ln R, φ) a logarithmic spiral is a straight line and the metric is conformal
(ds² = R² (d ln R² + dφ²)), so the perpendicular distance of a point at azimuthal
offset Δφ from a lane is, to first order, d = R sin(pitch) Δφ (exact at the lane,
~2 % short at d = 0.2 R). :meth:`GalaxyGeometry.arm_coordinates` returns this d
(kpc, positive downstream); arm membership, dust lanes and the truth's
``arm_distance_kpc`` all use it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.special

from starclusters.errors import ConfigError
from starclusters.synthetic.spec import SyntheticGalaxySpec

#: Arcseconds per radian.
ARCSEC_PER_RAD = 180.0 / np.pi * 3600.0
#: 1 km/s/kpc in rad/yr (1 km/s = 1.0227 pc/Myr).
KMS_KPC_TO_RAD_YR = 1.0 / 3.0856776e16 * 3.15576e7
#: 1 km/s in kpc/yr.
KMS_TO_KPC_YR = 3.15576e7 / 3.0856776e16


def _smoothstep(t: np.ndarray) -> np.ndarray:
    t = np.clip(t, 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass(frozen=True)
class GalaxyGeometry:
    """Orientation, rotation, arms and dust of the model disk (see the module docstring).

    Built by :meth:`from_spec`; all lengths kpc of the model galaxy, angles degrees.
    """

    spec: SyntheticGalaxySpec
    distance_mpc: float

    @classmethod
    def from_spec(cls, spec: SyntheticGalaxySpec, distance_mpc: float) -> GalaxyGeometry:
        if not distance_mpc > 0:
            raise ConfigError(f"photometry.distance_mpc must be positive, got {distance_mpc}")
        return cls(spec, float(distance_mpc))

    # --- scales and frames
    @property
    def kpc_per_arcsec(self) -> float:
        """Model-disk kpc per arcsec of sky (distance / 206265 / geometry_scale)."""
        return self.distance_mpc * 1e3 / ARCSEC_PER_RAD / self.spec.geometry_scale

    @property
    def pc2_per_pixel(self) -> float:
        """Physical sky area of one pixel in pc² at the galaxy's distance (never scaled)."""
        side = self.spec.pixel_scale_arcsec * self.distance_mpc * 1e6 / ARCSEC_PER_RAD
        return side * side

    def sky_to_disk(self, xi_arcsec, eta_arcsec) -> tuple[np.ndarray, np.ndarray]:
        """(x_kpc, y_kpc) in the disk plane of sky-plane offsets (arcsec from the centre)."""
        pa = np.radians(self.spec.position_angle_deg)
        s, c = np.sin(pa), np.cos(pa)
        xi, eta = np.asarray(xi_arcsec, float), np.asarray(eta_arcsec, float)
        u = xi * s + eta * c
        v = -xi * c + eta * s
        k = self.kpc_per_arcsec
        return u * k, v * k / np.cos(np.radians(self.spec.inclination_deg))

    def disk_to_sky(self, x_kpc, y_kpc) -> tuple[np.ndarray, np.ndarray]:
        """(ξ, η) arcsec of disk-plane points (inverse of :meth:`sky_to_disk`)."""
        pa = np.radians(self.spec.position_angle_deg)
        s, c = np.sin(pa), np.cos(pa)
        k = self.kpc_per_arcsec
        u = np.asarray(x_kpc, float) / k
        v = np.asarray(y_kpc, float) * np.cos(np.radians(self.spec.inclination_deg)) / k
        return s * u - c * v, c * u + s * v

    # --- rotation
    def rotation_speed_kms(self, radius_kpc) -> np.ndarray:
        """Circular speed v(R) = v_flat (1 − exp(−R / R_turn)), km/s."""
        sp = self.spec
        r = np.asarray(radius_kpc, float)
        return sp.rotation_speed_kms * -np.expm1(-r / sp.rotation_turnover_kpc)

    def angular_speed_kms_kpc(self, radius_kpc) -> np.ndarray:
        """Ω(R) = v(R) / R, km/s/kpc (finite at R = 0)."""
        r = np.maximum(np.asarray(radius_kpc, float), 1e-6)
        return self.rotation_speed_kms(r) / r

    @property
    def corotation_radius_kpc(self) -> float:
        """Radius where Ω(R) equals the pattern speed (inf for a pattern speed <= 0)."""
        sp = self.spec
        if sp.pattern_speed_kms_kpc <= 0:
            return float("inf")
        centre = sp.rotation_speed_kms / sp.rotation_turnover_kpc
        if sp.pattern_speed_kms_kpc >= centre:
            return 0.0
        return float(
            scipy.optimize.brentq(
                lambda r: self.angular_speed_kms_kpc(r) - sp.pattern_speed_kms_kpc, 1e-6, 1e4
            )
        )

    def drift_rad(self, radius_kpc, age_yr) -> np.ndarray:
        """Azimuth gained on the spiral pattern after ``age_yr``: (Ω(R) − Ω_p) t, rad."""
        rate = self.angular_speed_kms_kpc(radius_kpc) - self.spec.pattern_speed_kms_kpc
        return rate * KMS_KPC_TO_RAD_YR * np.asarray(age_yr, float)

    def spread_kpc(self, age_yr) -> np.ndarray:
        """Azimuthal spread of stars of age ``age_yr`` around their drifted place, kpc:
        birth spread ⊕ random walk (velocity dispersion × age)."""
        sp = self.spec
        walk = sp.velocity_dispersion_kms * KMS_TO_KPC_YR * np.asarray(age_yr, float)
        return np.hypot(sp.birth_spread_kpc, walk)

    # --- arms
    def lane_azimuth_rad(self, radius_kpc, arm: int) -> np.ndarray:
        """Azimuth φ of lane ``arm`` at radius R (unwrapped), rad."""
        sp = self.spec
        r = np.maximum(np.asarray(radius_kpc, float), 1e-6)
        return (
            np.radians(sp.arm_phase_deg)
            + 2.0 * np.pi * arm / sp.n_arms
            - np.log(r / sp.arm_start_kpc) / np.tan(np.radians(sp.pitch_angle_deg))
        )

    def arm_taper(self, radius_kpc) -> np.ndarray:
        """Strength of the arms at R: 0 → 1 over arm_taper_kpc around arm_start, 1 → 0 at arm_end."""
        sp = self.spec
        r = np.asarray(radius_kpc, float)
        w = max(sp.arm_taper_kpc, 1e-6)
        rise = _smoothstep((r - sp.arm_start_kpc + 0.5 * w) / w)
        fall = _smoothstep((sp.arm_end_kpc + 0.5 * w - r) / w)
        return rise * fall

    def arm_coordinates(self, x_kpc, y_kpc) -> dict[str, np.ndarray]:
        """Polar coordinates and the nearest arm of disk points.

        Returns radius_kpc, azimuth_rad, arm (int, nearest lane), dphi_rad (azimuth
        from that lane, in (−π/n, π/n], positive downstream) and distance_kpc
        (R sin(pitch) Δφ, the distance across the arm, positive downstream).
        """
        sp = self.spec
        x, y = np.asarray(x_kpc, float), np.asarray(y_kpc, float)
        radius = np.hypot(x, y)
        azimuth = np.arctan2(y, x)
        spacing = 2.0 * np.pi / sp.n_arms
        rel = np.mod(azimuth - self.lane_azimuth_rad(radius, 0), 2 * np.pi)  # from lane 0
        dphi = np.mod(rel + 0.5 * spacing, spacing) - 0.5 * spacing
        arm = np.mod(np.round((rel - dphi) / spacing), sp.n_arms).astype(int)
        distance = radius * np.sin(np.radians(sp.pitch_angle_deg)) * dphi
        return {
            "radius_kpc": radius,
            "azimuth_rad": azimuth,
            "arm": arm,
            "dphi_rad": dphi,
            "distance_kpc": distance,
        }

    def downstream_sign(self, radius_kpc) -> np.ndarray:
        """+1 inside corotation (stars overtake the pattern: downstream is +φ), −1 beyond."""
        rate = self.angular_speed_kms_kpc(radius_kpc) - self.spec.pattern_speed_kms_kpc
        return np.where(rate >= 0, 1.0, -1.0)

    def on_arm(self, x_kpc, y_kpc) -> np.ndarray:
        """True inside an arm band where the arms are at least half on: from arm_trailing
        upstream of the lane to arm_leading downstream (downstream = +d inside
        corotation, −d beyond it)."""
        sp = self.spec
        c = self.arm_coordinates(x_kpc, y_kpc)
        d = c["distance_kpc"] * self.downstream_sign(c["radius_kpc"])
        return (
            (self.arm_taper(c["radius_kpc"]) >= 0.5)
            & (d >= -sp.arm_trailing_kpc)
            & (d <= sp.arm_leading_kpc)
        )

    def arm_pattern(self, x_kpc, y_kpc, age_yr: float) -> np.ndarray:
        """Azimuthal density profile of stars of ``age_yr`` born on the lanes, mean 1 over azimuth.

        Each lane contributes a von Mises distribution in azimuth centred on the lane
        plus the drift (Ω − Ω_p) t, of width spread(t) / R; the sum over lanes is
        scaled by 2π / n_arms so that its azimuthal mean is 1.
        """
        sp = self.spec
        x, y = np.asarray(x_kpc, float), np.asarray(y_kpc, float)
        radius = np.maximum(np.hypot(x, y), 1e-6)
        azimuth = np.arctan2(y, x)
        kappa = (radius / self.spread_kpc(age_yr)) ** 2
        centre = self.drift_rad(radius, age_yr)
        total = np.zeros_like(radius)
        for arm in range(sp.n_arms):
            delta = azimuth - self.lane_azimuth_rad(radius, arm) - centre
            total += np.exp(kappa * (np.cos(delta) - 1.0)) / scipy.special.i0e(kappa)
        return total / sp.n_arms

    # --- surface densities and dust
    def screen_av_mag(self, x_kpc, y_kpc) -> np.ndarray:
        """A_V (mag) of the galaxy's dust screen in the disk plane (no Galactic foreground):
        a diffuse disk term, a diffuse arm band and the lanes on the arms' inner edges."""
        sp = self.spec
        c = self.arm_coordinates(x_kpc, y_kpc)
        radius, d = c["radius_kpc"], c["distance_kpc"]
        downstream = d * self.downstream_sign(radius)
        taper = self.arm_taper(radius)
        edge = 0.03
        band = scipy.special.expit((downstream + sp.arm_trailing_kpc) / edge) * scipy.special.expit(
            (sp.arm_leading_kpc - downstream) / edge
        )
        lane = np.exp(-0.5 * (d / sp.lane_width_kpc) ** 2) if sp.lane_width_kpc > 0 else 0.0
        disk = sp.disk_av_mag * np.exp(-radius / sp.disk_scale_kpc)
        return disk + taper * (sp.arm_av_mag * band + sp.lane_av_mag * lane)

    def bulge_density(self, x_kpc, y_kpc) -> np.ndarray:
        """Bulge surface density, face-on M☉/pc² (Sérsic, b_n from Ciotti & Bertin 1999)."""
        sp = self.spec
        r = np.hypot(np.asarray(x_kpc, float), np.asarray(y_kpc, float))
        n = sp.bulge_sersic_n
        b = 2.0 * n - 1.0 / 3.0 + 4.0 / (405.0 * n)
        return sp.bulge_sigma_e_msun_pc2 * np.exp(-b * ((r / sp.bulge_re_kpc) ** (1.0 / n) - 1.0))

    def disk_density(self, x_kpc, y_kpc) -> np.ndarray:
        """Old/intermediate disk surface density, face-on M☉/pc² (exponential)."""
        sp = self.spec
        r = np.hypot(np.asarray(x_kpc, float), np.asarray(y_kpc, float))
        return sp.disk_sigma0_msun_pc2 * np.exp(-r / sp.disk_scale_kpc)

    def sfr_density(self, radius_kpc) -> np.ndarray:
        """Azimuthally averaged star-formation rate surface density, M☉/yr/kpc²."""
        sp = self.spec
        return sp.sfr_msun_yr_kpc2 * np.exp(-np.asarray(radius_kpc, float) / sp.sfr_scale_kpc)

    def young_density(self, x_kpc, y_kpc, age_yr: float, duration_yr: float) -> np.ndarray:
        """Face-on M☉/pc² of field stars born ``age_yr`` ago over ``duration_yr``:
        SFR × duration, a share arm_sfr_fraction × taper on the drifted arm pattern."""
        sp = self.spec
        x, y = np.asarray(x_kpc, float), np.asarray(y_kpc, float)
        radius = np.hypot(x, y)
        on = sp.arm_sfr_fraction * self.arm_taper(radius)
        pattern = self.arm_pattern(x, y, age_yr) if sp.arm_sfr_fraction > 0 else 0.0
        return self.sfr_density(radius) * duration_yr * 1e-6 * (1.0 - on + on * pattern)

    def lane_polylines(self, points_per_arm: int = 400) -> list[tuple[np.ndarray, np.ndarray]]:
        """Disk-plane (x_kpc, y_kpc) of each lane from arm_start to arm_end, log-spaced in R."""
        sp = self.spec
        radius = np.geomspace(sp.arm_start_kpc, sp.arm_end_kpc, points_per_arm)
        out = []
        for arm in range(sp.n_arms):
            phi = self.lane_azimuth_rad(radius, arm)
            out.append((radius * np.cos(phi), radius * np.sin(phi)))
        return out

    def metadata(self) -> dict:
        """The geometry as JSON-able values (for Parquet metadata and FITS headers)."""
        sp = self.spec
        return {
            "centre_ra_deg": sp.centre_ra_deg,
            "centre_dec_deg": sp.centre_dec_deg,
            "distance_mpc": self.distance_mpc,
            "inclination_deg": sp.inclination_deg,
            "position_angle_deg": sp.position_angle_deg,
            "geometry_scale": sp.geometry_scale,
            "kpc_per_arcsec": self.kpc_per_arcsec,
            "corotation_radius_kpc": self.corotation_radius_kpc,
            "rotation_speed_kms": sp.rotation_speed_kms,
            "rotation_turnover_kpc": sp.rotation_turnover_kpc,
            "pattern_speed_kms_kpc": sp.pattern_speed_kms_kpc,
            "n_arms": sp.n_arms,
            "pitch_angle_deg": sp.pitch_angle_deg,
            "arm_phase_deg": sp.arm_phase_deg,
            "arm_start_kpc": sp.arm_start_kpc,
            "arm_end_kpc": sp.arm_end_kpc,
            "arm_trailing_kpc": sp.arm_trailing_kpc,
            "arm_leading_kpc": sp.arm_leading_kpc,
            "rotation_sense": "towards increasing disk azimuth: clockwise on a north-up, east-left image",
            "disk_frame": "x along the major axis (towards PA), y towards PA-90 deg, deprojected, kpc of the model galaxy (sky size / geometry_scale)",
            "arm_distance": "R sin(pitch) dphi from the nearest lane, kpc, positive downstream (leading)",
        }


def model_wcs(spec: SyntheticGalaxySpec):
    """TAN WCS of the sky plane: pixel (0, 0) (0-based) is the galaxy centre, 1 pixel = 1″,
    x towards east (ξ), y towards north (η)."""
    from astropy.wcs import WCS

    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [spec.centre_ra_deg, spec.centre_dec_deg]
    wcs.wcs.crpix = [1.0, 1.0]
    wcs.wcs.cdelt = [1.0 / 3600.0, 1.0 / 3600.0]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.set()
    return wcs


def band_wcs(spec: SyntheticGalaxySpec, rng: np.random.Generator) -> dict:
    """Each band's celestial TAN WCS (band -> astropy WCS), as separate HST visits have.

    The reference band's grid is north up, east left, centred (CRPIX at the array
    centre) on the galaxy centre plus ``field_offset_arcsec``. Every other band's
    CRPIX is shifted by uniform(−band_shift_max_px, +band_shift_max_px) per axis
    and its pixel axes rotated by uniform(−band_rotation_max_deg, +…) about it, so
    the same sky falls a few pixels and a fraction of a degree apart.
    """
    from astropy.wcs import WCS

    ny, nx = spec.shape_px
    scale = spec.pixel_scale_arcsec / 3600.0
    ra0, dec0 = model_wcs(spec).wcs_pix2world(
        [spec.field_offset_arcsec[0]], [spec.field_offset_arcsec[1]], 0
    )
    out = {}
    for band in spec.bands:
        if band == spec.reference_band:
            shift, angle = np.zeros(2), 0.0
        else:
            shift = rng.uniform(-spec.band_shift_max_px, spec.band_shift_max_px, 2)
            angle = np.radians(rng.uniform(-spec.band_rotation_max_deg, spec.band_rotation_max_deg))
        wcs = WCS(naxis=2)
        wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
        wcs.wcs.crval = [float(ra0[0]), float(dec0[0])]
        wcs.wcs.crpix = [(nx + 1) / 2.0 + shift[0], (ny + 1) / 2.0 + shift[1]]
        wcs.wcs.cdelt = [-scale, scale]
        wcs.wcs.pc = [[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]]
        wcs.wcs.cunit = ["deg", "deg"]
        wcs.wcs.radesys = "ICRS"
        wcs.wcs.set()
        out[band] = wcs
    return out


@dataclass
class SkyFrame:
    """Conversions between the sky plane, RA/Dec and each band's pixels.

    wcs: band -> astropy WCS (from :func:`band_wcs`); model: the sky-plane WCS
    (:func:`model_wcs`). Pixel coordinates are 0-based (FITS pixel − 1).
    """

    spec: SyntheticGalaxySpec
    wcs: Mapping
    model: object

    @classmethod
    def from_spec(cls, spec: SyntheticGalaxySpec, rng: np.random.Generator) -> SkyFrame:
        return cls(spec, band_wcs(spec, rng), model_wcs(spec))

    @property
    def reference(self):
        """The reference band's WCS (the truth's x_px, y_px grid)."""
        return self.wcs[self.spec.reference_band]

    def sky_to_world(self, xi_arcsec, eta_arcsec) -> tuple[np.ndarray, np.ndarray]:
        """(ra_deg, dec_deg) of sky-plane offsets (arcsec)."""
        ra, dec = self.model.wcs_pix2world(
            np.asarray(xi_arcsec, float), np.asarray(eta_arcsec, float), 0
        )
        return np.asarray(ra), np.asarray(dec)

    def world_to_sky(self, ra_deg, dec_deg) -> tuple[np.ndarray, np.ndarray]:
        """Sky-plane offsets (ξ, η) arcsec of RA/Dec."""
        xi, eta = self.model.wcs_world2pix(np.asarray(ra_deg, float), np.asarray(dec_deg, float), 0)
        return np.asarray(xi), np.asarray(eta)

    def world_to_pixel(self, band: str, ra_deg, dec_deg) -> tuple[np.ndarray, np.ndarray]:
        """0-based (x_px, y_px) of RA/Dec on ``band``'s grid."""
        x, y = self.wcs[band].wcs_world2pix(
            np.asarray(ra_deg, float), np.asarray(dec_deg, float), 0
        )
        return np.asarray(x), np.asarray(y)

    def pixel_to_sky(self, band: str, x_px, y_px) -> tuple[np.ndarray, np.ndarray]:
        """Sky-plane (ξ, η) arcsec of 0-based pixel coordinates of ``band``."""
        ra, dec = self.wcs[band].wcs_pix2world(np.asarray(x_px, float), np.asarray(y_px, float), 0)
        return self.world_to_sky(ra, dec)

    def sky_to_pixel(self, band: str, xi_arcsec, eta_arcsec) -> tuple[np.ndarray, np.ndarray]:
        """0-based pixel coordinates on ``band``'s grid of sky-plane offsets (arcsec)."""
        return self.world_to_pixel(band, *self.sky_to_world(xi_arcsec, eta_arcsec))
