"""Put a noise-free mock cluster on a real background: the one ``compose()``.

Thesis §3.1.3: take a background cutout and its median, add the median to the
cluster image, convert to counts with the exposure time, draw each pixel from a
Poisson distribution, subtract the median, add the real background, and convert
back to counts/s. The cluster thus gets the photon noise it would have on that
sky, while the background keeps its own real noise and structure.

Visibility (thesis eq. 3.2), per band b:

    v_b = f_c,b / (n_b · σ_b),

f_c,b the cluster's (noise-free) flux within r_h,obs,b of its centre, n_b the number
of pixels whose centres lie within r_h,obs,b (at least one), σ_b the standard
deviation of the background's pixels within 25 px of the centre. r_h,obs is the
cluster's half-number radius widened by the PSF: r_h,obs,b = sqrt(r_h² + r_psf,b²),
with r_psf,b the PSF's half-light radius in band b (exact for Gaussians, a good
approximation otherwise). A cluster is as visible as it is in its most visible
band: **visibility = max_b v_b** (the network sees all bands; a cluster that stands
out in F336W alone is still a detectable cluster). ``compose`` returns the
per-band values too.
"""

from __future__ import annotations

import numpy as np

#: Radius of the aperture in which the background's standard deviation is measured, px (thesis: 25 px = 1″).
SIGMA_APERTURE_PX = 25.0


def _radius_px(shape: tuple[int, int]) -> np.ndarray:
    """Distance of each pixel centre from the stamp centre (pixel (S//2, S//2)), px."""
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    return np.hypot(x - nx // 2, y - ny // 2)


def observed_rh_px(rh_px: float, psf_rh_px: np.ndarray) -> np.ndarray:
    """r_h,obs per band (px): the cluster's r_h widened in quadrature by the PSF's half-light radius."""
    return np.sqrt(rh_px**2 + np.asarray(psf_rh_px, dtype=float) ** 2)


def visibility(stamp: np.ndarray, background: np.ndarray, rh_obs_px: np.ndarray) -> np.ndarray:
    """Per-band visibility (B,) of noise-free ``stamp`` on ``background`` (both (B, S, S), counts/s)."""
    radius = _radius_px(stamp.shape[-2:])
    rh_obs = np.broadcast_to(np.asarray(rh_obs_px, dtype=float), (stamp.shape[0],))
    ring = radius <= SIGMA_APERTURE_PX
    out = np.empty(stamp.shape[0])
    for b in range(stamp.shape[0]):
        inside = radius <= max(rh_obs[b], 0.5)  # at least the central pixel
        sigma = np.std(background[b][ring])
        flux = float(stamp[b][inside].sum())
        out[b] = flux / (inside.sum() * sigma) if sigma > 0 else np.inf
    return out


def compose(
    stamp: np.ndarray,
    background: np.ndarray,
    exptime_s: np.ndarray,
    rng: np.random.Generator,
    rh_obs_px: np.ndarray,
) -> tuple[np.ndarray, float, np.ndarray]:
    """Add a noise-free cluster to a real background with photon noise (thesis §3.1.3).

    stamp: (B, S, S) noise-free cluster light, counts/s; background: (B, S, S)
    real cutout, counts/s; exptime_s: exposure time per band (B,) or scalar, s;
    rh_obs_px: r_h,obs per band (B,) or scalar, px (see :func:`observed_rh_px`).

    Returns (image (B, S, S) float32 counts/s, visibility, per-band visibility (B,)).
    A negative background median (over-subtracted sky) is treated as zero
    for the Poisson mean, so the cluster always gets its own shot noise.
    """
    stamp = np.asarray(stamp, dtype=np.float64)
    background = np.asarray(background, dtype=np.float64)
    if stamp.shape != background.shape:
        raise ValueError(f"stamp {stamp.shape} and background {background.shape} differ in shape")
    t = np.broadcast_to(np.asarray(exptime_s, dtype=float), (stamp.shape[0],))[:, None, None]
    median = np.median(background, axis=(1, 2), keepdims=True)
    floor = np.maximum(median, 0.0)
    mean_counts = np.clip((stamp + floor) * t, 0.0, None)
    noisy = rng.poisson(mean_counts) / t - floor + background
    per_band = visibility(stamp, background, rh_obs_px)
    return noisy.astype(np.float32), float(np.max(per_band)), per_band
