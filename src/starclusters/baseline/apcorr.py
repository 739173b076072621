"""CI-based aperture correction and size: the classical way to get a cluster's total
magnitude and half-light radius from its concentration index.

A cluster's light spreads beyond the photometry aperture (4 px) and into the sky annulus
(7–9 px), by more the larger it is. Cluster surveys correct each source by an amount
that depends on its size, and measure the size by its concentration index (CI): LEGUS
uses an average correction from isolated clusters, Chandar et al. (2010, ApJ 719, 966)
and Cook et al. (2019, MNRAS 484, 4897) a correction as a function of CI, from models of
clusters of known size convolved with the PSF. This module builds that model:

* EFF profiles (:mod:`starclusters.mocks.eff`; Elson, Fall & Freeman 1987) of one γ
  (``eff_gamma``), truncated at ``eff_truncation_arcsec`` like the mocks, on a grid of
  half-light radii r_h: 0 (a point source) and ``apcorr_n_rh`` − 1 values log-spaced from
  0.01″ to ``apcorr_rh_max_arcsec``; the profile is sampled by deterministic points
  (radius quantiles × angles, equal weights) and drawn with the mock bank's own renderer
  (:class:`starclusters.mocks.render.StampRenderer`: the ePSFs and their enclosed
  fraction), total flux 1 per band, noise-free;
* each model measured exactly as the sources are (:mod:`starclusters.aperture`:
  annulus sky, so the cluster light in the annulus is subtracted as it is from real
  sources), at ``apcorr_phases``² sub-pixel centre offsets, averaged in magnitudes:
  CI in ``ci_band`` and the aperture correction per band,
  Δm_b = −2.5 log10(F_b,measured / F_total) ≥ 0, so that m_total = m_aperture − Δm_b;
* a source's measured CI gives, by linear interpolation in the (monotone) CI(r_h) curve,
  its r_h (``log_rh_arcsec``; 0 and thus NaN in log for CI at or below a point
  source's) and its Δm_b. CIs beyond the grid take the end values.

Choice of γ: the bank draws γ log-uniform in [2.05, 8] (keeping r_h in [0.04, 0.4]″);
γ = 4 is the middle of that range in log (√(2.05 × 8) = 4.05). At a fixed CI a smaller γ
means more light in the wings and in the sky annulus, hence a larger correction and a
larger r_h. Measured with this project's GalSim F438W ePSF (0.04″/px, 7-fold
oversampled, ``results/synthetic_m83/psf``; point source: CI = 0.80 mag, Δm = 0.11 mag):

=====  ======================  ======================  ======================
γ      CI = 1.3: Δm, r_h       CI = 1.6: Δm, r_h       CI = 2.0: Δm, r_h
=====  ======================  ======================  ======================
2.5    0.54 mag, 0.065″        0.84 mag, 0.131″        1.60 mag, 0.284″
3      0.34 mag, 0.048″        0.58 mag, 0.091″        1.27 mag, 0.202″
4      0.20 mag, 0.040″        0.36 mag, 0.070″        0.93 mag, 0.149″
6      0.14 mag, 0.039″        0.24 mag, 0.062″        0.67 mag, 0.121″
8      0.13 mag, 0.038″        0.20 mag, 0.060″        0.57 mag, 0.113″
=====  ======================  ======================  ======================

So the unknown γ alone makes the total magnitudes of extended clusters uncertain by
≈ ±0.3 mag (≈ ±0.12 dex in mass) and their r_h by ≈ ±0.25 dex — the classical method's
known limitation. The CI saturates near 2.2–2.3 mag for r_h ≳ 0.3″ (the annulus then lies
inside the cluster), so the grid stops at ``apcorr_rh_max_arcsec`` (default 0.4″, the
bank's largest r_h) and larger CIs take its values. Building the default model (24 r_h,
9 phases, 3 bands) takes 3–4 s on one core.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import brentq

from starclusters.aperture import concentration_index, photometry
from starclusters.baseline.settings import BaselineSettings
from starclusters.mocks.eff import half_number_radius

#: Smallest non-zero r_h of the model grid, arcsec (0.25 px at 0.04″/px).
RH_MIN_ARCSEC = 0.01
#: Radius quantiles and angles of the points that sample an EFF profile.
N_RADII = 240
N_ANGLES = 20
#: Golden-ratio angle step between the rings of points, so rings do not line up.
_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


def eff_scale_for_rh(rh_arcsec: float, gamma: float, truncation_arcsec: float) -> float:
    """EFF scale a (arcsec) whose truncated profile has half-number radius ``rh_arcsec``."""
    if not 0 < rh_arcsec < truncation_arcsec / 2:
        raise ValueError(f"r_h must be in (0, {truncation_arcsec / 2}) arcsec, got {rh_arcsec}")
    lo, hi = 1e-6 * rh_arcsec, 1e3 * truncation_arcsec
    return float(
        brentq(lambda a: half_number_radius(a, gamma, truncation_arcsec) - rh_arcsec, lo, hi)
    )


def eff_points(
    rh_arcsec: float, gamma: float, truncation_arcsec: float
) -> tuple[np.ndarray, np.ndarray]:
    """Deterministic points that sample a truncated EFF profile of half-light radius
    ``rh_arcsec``: (positions (n, 2) arcsec (x, y), weights (n,) summing to 1). r_h = 0
    gives the single point (0, 0)."""
    if rh_arcsec == 0:
        return np.zeros((1, 2)), np.ones(1)
    a = eff_scale_for_rh(rh_arcsec, gamma, truncation_arcsec)
    q = 1.0 - gamma / 2.0
    total = 1.0 - (1.0 + (truncation_arcsec / a) ** 2) ** q
    u = (np.arange(N_RADII) + 0.5) / N_RADII * total
    radius = a * np.sqrt((1.0 - u) ** (1.0 / q) - 1.0)
    turn = (np.arange(N_RADII)[:, None] * _GOLDEN + np.arange(N_ANGLES)[None]) / N_ANGLES
    angle = 2.0 * np.pi * turn
    xy = np.stack([radius[:, None] * np.cos(angle), radius[:, None] * np.sin(angle)], axis=-1)
    n = N_RADII * N_ANGLES
    return xy.reshape(n, 2), np.full(n, 1.0 / n)


@dataclass(frozen=True)
class ApertureCorrection:
    """The CI → (r_h, aperture correction) model of one γ (module docstring).

    bands: (B,) names; ci_band: the CI's band; rh_arcsec: (R,) r_h grid, increasing, the
    first 0; ci_mag: (R,) CI of each model, mag, increasing; correction_mag: (B, R) Δm_b
    ≥ 0 (m_total = m_aperture − Δm_b), mag; gamma, truncation_arcsec: the EFF profile.
    """

    bands: tuple[str, ...]
    ci_band: str
    gamma: float
    truncation_arcsec: float
    rh_arcsec: np.ndarray
    ci_mag: np.ndarray
    correction_mag: np.ndarray

    def __post_init__(self):
        if not np.all(np.diff(self.ci_mag) > 0):
            raise ValueError(
                f"CI does not grow with r_h in the model ({np.round(self.ci_mag, 4)}); "
                "the CI radii or the PSF cannot tell these sizes apart"
            )

    @property
    def point_source_ci_mag(self) -> float:
        """CI of a point source (the model at r_h = 0), mag."""
        return float(self.ci_mag[0])

    def rh_from_ci(self, ci_mag) -> np.ndarray:
        """r_h (arcsec) of sources of CI ``ci_mag`` (N,): 0 at or below a point source's CI,
        the grid's largest beyond its largest CI, NaN for NaN CI."""
        ci = np.asarray(ci_mag, float)
        return np.where(np.isfinite(ci), np.interp(ci, self.ci_mag, self.rh_arcsec), np.nan)

    def correction_from_ci(self, ci_mag) -> np.ndarray:
        """Δm (N, B) mag of sources of CI ``ci_mag`` (N,) (end values beyond the grid;
        NaN for NaN CI)."""
        ci = np.atleast_1d(np.asarray(ci_mag, float))
        out = np.stack([np.interp(ci, self.ci_mag, c) for c in self.correction_mag], axis=1)
        out[~np.isfinite(ci)] = np.nan
        return out

    def to_meta(self) -> dict:
        """JSON-able description (Parquet metadata)."""
        return {
            "bands": list(self.bands),
            "ci_band": self.ci_band,
            "eff_gamma": self.gamma,
            "eff_truncation_arcsec": self.truncation_arcsec,
            "rh_arcsec": np.round(self.rh_arcsec, 5).tolist(),
            "ci_mag": np.round(self.ci_mag, 5).tolist(),
            "correction_mag": {
                b: np.round(c, 5).tolist()
                for b, c in zip(self.bands, self.correction_mag, strict=True)
            },
        }


def model_stamp_px(settings: BaselineSettings) -> int:
    """Side (px, odd) of the model stamps: the sky annulus and 3 px of margin."""
    return 2 * (int(math.ceil(settings.sky_annulus_px[1])) + 3) + 1


def measure_models(
    renderer,
    bands: Sequence[str],
    rh_grid_arcsec: Sequence[float],
    settings: BaselineSettings,
    pixel_scale_arcsec: float,
    gamma: float | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """CI (R,) in ci_band and Δm (B, R) of noise-free unit-flux EFF models of r_h
    ``rh_grid_arcsec`` (R,) drawn by ``renderer`` (a StampRenderer of stamp side
    :func:`model_stamp_px`), each averaged over the sub-pixel phases."""
    gamma = settings.eff_gamma if gamma is None else gamma
    p = settings.apcorr_phases
    offsets = ((np.arange(p) + 0.5) / p - 0.5) if p > 1 else np.zeros(1)
    centre = renderer.stamp_px // 2
    ci_band = list(bands).index(settings.ci_band)
    cis = np.zeros(len(rh_grid_arcsec))
    corr = np.zeros((len(bands), len(rh_grid_arcsec)))
    for k, rh in enumerate(rh_grid_arcsec):
        xy, weights = eff_points(float(rh), gamma, settings.eff_truncation_arcsec)
        counts = np.repeat(weights[:, None], len(bands), axis=1)
        ci_k, corr_k = [], []
        for dy in offsets:
            for dx in offsets:
                shift = np.array([dx, dy]) * pixel_scale_arcsec
                stamp = renderer.render(xy + shift, counts).astype(np.float64)
                x, y = np.array([centre + dx]), np.array([centre + dy])
                ci_k.append(
                    concentration_index(
                        stamp[ci_band], x, y, settings.ci_radii_px, settings.sky_annulus_px
                    )[0]
                )
                fluxes = [
                    photometry(
                        stamp[b], x, y, settings.aperture_radius_px, settings.sky_annulus_px, None
                    )[0][0]
                    for b in range(len(bands))
                ]
                corr_k.append(-2.5 * np.log10(np.asarray(fluxes)))
        cis[k] = np.mean(ci_k)
        corr[:, k] = np.mean(corr_k, axis=0)
    return cis, corr


def rh_grid_arcsec(settings: BaselineSettings) -> np.ndarray:
    """The model's r_h grid (R,), arcsec: 0, then log-spaced from RH_MIN_ARCSEC to
    ``apcorr_rh_max_arcsec``."""
    return np.concatenate(
        [
            [0.0],
            np.geomspace(RH_MIN_ARCSEC, settings.apcorr_rh_max_arcsec, settings.apcorr_n_rh - 1),
        ]
    )


def make_renderer(
    epsfs: np.ndarray,
    flux_fraction: np.ndarray,
    oversampling: int,
    pixel_scale_arcsec: float,
    settings: BaselineSettings,
):
    """The StampRenderer of the models: ePSFs (B, n, n) with their enclosed light
    ``flux_fraction`` (B,), stamps of :func:`model_stamp_px`."""
    from starclusters.mocks.render import StampRenderer

    return StampRenderer(
        epsfs,
        oversampling,
        pixel_scale_arcsec,
        model_stamp_px(settings),
        flux_fraction=np.asarray(flux_fraction, float),
        max_star_radius_arcsec=settings.eff_truncation_arcsec + pixel_scale_arcsec,
    )


def build_aperture_correction(
    epsfs: np.ndarray,
    flux_fraction: np.ndarray,
    bands: Sequence[str],
    oversampling: int,
    pixel_scale_arcsec: float,
    settings: BaselineSettings,
) -> ApertureCorrection:
    """The CI → (r_h, Δm) model (module docstring) for the ePSFs (B, n, n) of ``bands``
    (fine pixel pixel_scale_arcsec / oversampling, summing to 1, holding the share
    ``flux_fraction`` (B,) of a star's light), at the native pixel ``pixel_scale_arcsec``."""
    settings.check_bands(bands)
    renderer = make_renderer(epsfs, flux_fraction, oversampling, pixel_scale_arcsec, settings)
    grid = rh_grid_arcsec(settings)
    ci, corr = measure_models(renderer, bands, grid, settings, pixel_scale_arcsec)
    return ApertureCorrection(
        tuple(bands),
        settings.ci_band,
        settings.eff_gamma,
        settings.eff_truncation_arcsec,
        grid,
        ci,
        corr,
    )
