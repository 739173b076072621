"""Aperture photometry with a local sky annulus, and the concentration index (LEGUS).

The classical peer's photometry (:mod:`starclusters.baseline`); the diagnosis' aperture
S/N (:mod:`starclusters.scorecard.diagnose`) and the candidates' recentring
(:mod:`starclusters.detect.recentre`) measure with it too, so it lives at the package root.

Per source and band (photutils.aperture, exact pixel overlap):

* sky: the sigma-clipped (``sky_clip_sigma``) median of the annulus
  ``sky_annulus_px`` (LEGUS: from 7 px; Adamo et al. 2017 §3.1), counts/s per pixel, and
  σ_sky the clipped standard deviation of its pixels;
* flux F = Σ_aperture I − A · sky, A the aperture's area in pixels, counts/s;
* error (IRAF ``phot``'s formula, e⁻/s → e⁻ with the exposure time t):
  σ_F² = F / t + A σ_sky² + A² σ_sky² / N_sky — the source's Poisson noise (F t electrons
  have variance F t, i.e. F / t in (counts/s)²), the sky's noise in the aperture, and
  the error of the sky level from N_sky annulus pixels;
* magnitude m = zp − 2.5 log10 F (Vega, zp the magnitude of 1 count/s), error
  2.5 / ln 10 · σ_F / F; NaN when F ≤ 0, when the aperture touches an unusable pixel or
  fewer than 10 annulus pixels are usable.

The concentration index (LEGUS, Adamo et al. 2017 §3.1; PHANGS-HST, Thilker et al. 2022):
CI = m(r₁) − m(r₂) with r₁, r₂ = ``ci_radii_px`` (1 and 3 px) in the band ``ci_band``,
each sky-subtracted with the same annulus; point sources have the smallest CI.

Pixel convention: 0-based (x, y) = (column, row), pixel centres at integers (photutils').
"""

from __future__ import annotations

import math
import warnings

import numpy as np

#: 2.5 / ln 10: magnitude error per relative flux error.
MAG_PER_LN = 2.5 / math.log(10.0)
#: Fewest usable annulus pixels for a sky (fewer: the photometry is NaN).
MIN_SKY_PIXELS = 10


def local_sky(
    image: np.ndarray,
    x,
    y,
    annulus_px: tuple[float, float],
    bad: np.ndarray | None = None,
    clip_sigma: float = 3.0,
    max_iter: int = 10,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sigma-clipped sky of the annulus around every source.

    image: (H, W) counts/s; x, y: (N,) px; annulus_px: (inner, outer) radius, px (pixels
    whose centres lie at inner ≤ r < outer); bad: (H, W) bool, pixels to ignore (NaN
    pixels are ignored too). Clipping as astropy's ``sigma_clip``: median centre, clip
    beyond clip_sigma × standard deviation, at most ``max_iter`` rounds. Returns (sky,
    sigma, n_pixels), each (N,): median and standard deviation of the clipped annulus,
    counts/s per pixel, and the number of pixels left; sky and sigma NaN where fewer
    than MIN_SKY_PIXELS are left. Vectorised (photutils' ApertureStats loops over the
    sources: 1.5 ms each, 22 s for 15,000).
    """
    x, y = np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float))
    sky, sigma, count = np.full(x.size, np.nan), np.full(x.size, np.nan), np.zeros(x.size)
    if x.size == 0:
        return sky, sigma, count
    bad = _bad(image, bad)
    data = np.where(bad, np.nan, image)
    h, w = data.shape
    half = int(math.ceil(annulus_px[1])) + 1
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    dy, dx = dy.ravel(), dx.ravel()
    chunk = max(1, 2_000_000 // dx.size)
    for start in range(0, x.size, chunk):
        cx, cy = x[start : start + chunk], y[start : start + chunk]
        px = np.rint(cx)[:, None] + dx[None]
        py = np.rint(cy)[:, None] + dy[None]
        r = np.hypot(px - cx[:, None], py - cy[:, None])
        inside = (r >= annulus_px[0]) & (r < annulus_px[1])
        inside &= (px >= 0) & (px < w) & (py >= 0) & (py < h)
        values = data[np.clip(py, 0, h - 1).astype(int), np.clip(px, 0, w - 1).astype(int)]
        values = np.where(inside, values, np.nan)
        with np.errstate(invalid="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows stay NaN
            for _ in range(max_iter):
                centre = np.nanmedian(values, axis=1)
                spread = np.nanstd(values, axis=1)
                clipped = np.abs(values - centre[:, None]) > clip_sigma * spread[:, None]
                if not clipped.any():
                    break
                values = np.where(clipped, np.nan, values)
            n = np.isfinite(values).sum(axis=1)
            sky[start : start + chunk] = np.nanmedian(values, axis=1)
            sigma[start : start + chunk] = np.nanstd(values, axis=1)
            count[start : start + chunk] = n
    few = ~(count >= MIN_SKY_PIXELS)
    sky[few] = np.nan
    sigma[few] = np.nan
    return sky, sigma, count


def _bad(image: np.ndarray, bad: np.ndarray | None) -> np.ndarray:
    out = ~np.isfinite(image)
    return out if bad is None else out | np.asarray(bad, bool)


def aperture_sums(image: np.ndarray, x, y, radius_px: float, bad: np.ndarray | None = None):
    """(sum, area, clean), each (N,): Σ image (counts/s) and area (px) of the circle of
    ``radius_px`` around every source (exact overlap); clean: no unusable pixel touches it."""
    from photutils.aperture import CircularAperture, aperture_photometry

    x, y = np.atleast_1d(np.asarray(x, float)), np.atleast_1d(np.asarray(y, float))
    if x.size == 0:
        return np.zeros(0), np.zeros(0), np.zeros(0, bool)
    bad = _bad(image, bad)
    aperture = CircularAperture(np.column_stack([x, y]), radius_px)
    data = np.where(bad, 0.0, image)
    total = np.asarray(aperture_photometry(data, aperture)["aperture_sum"], float)
    touched = np.asarray(aperture_photometry(bad.astype(float), aperture)["aperture_sum"], float)
    return total, np.full(x.size, aperture.area), touched == 0


def photometry(
    image: np.ndarray,
    x,
    y,
    radius_px: float,
    annulus_px: tuple[float, float],
    exptime_s: float | None,
    bad: np.ndarray | None = None,
    clip_sigma: float = 3.0,
    sky: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sky-subtracted aperture flux and its error (module docstring), each (N,) counts/s.

    image: (H, W) counts/s; x, y: (N,) px; radius_px: aperture radius; annulus_px: (inner,
    outer) sky radii; exptime_s: exposure time, s (None: no source Poisson term, e.g. for
    noise-free models); bad: (H, W) bool pixels to ignore; sky: a precomputed
    :func:`local_sky` result to reuse. Flux and error are NaN where the aperture touches
    an unusable pixel or the sky is undefined.
    """
    if sky is None:
        sky = local_sky(image, x, y, annulus_px, bad, clip_sigma)
    level, sigma, n_sky = sky
    total, area, clean = aperture_sums(image, x, y, radius_px, bad)
    flux = total - area * level
    with np.errstate(invalid="ignore", divide="ignore"):
        source = 0.0 if exptime_s is None else np.clip(flux, 0.0, None) / float(exptime_s)
        var = source + area * sigma**2 + area**2 * sigma**2 / n_sky
    flux = np.where(clean, flux, np.nan)
    return flux, np.where(clean, np.sqrt(var), np.nan)


def magnitudes(flux, flux_err, zeropoint_mag: float) -> tuple[np.ndarray, np.ndarray]:
    """(mag, mag_err) (N,): Vega magnitudes of ``flux`` (counts/s) with zero point
    ``zeropoint_mag`` (mag of 1 count/s) and their errors; NaN where flux ≤ 0 or NaN."""
    flux = np.asarray(flux, float)
    positive = flux > 0
    safe = np.where(positive, flux, 1.0)
    mag = np.where(positive, zeropoint_mag - 2.5 * np.log10(safe), np.nan)
    err = np.where(positive, MAG_PER_LN * np.asarray(flux_err, float) / safe, np.nan)
    return mag, err


def concentration_index(
    image: np.ndarray,
    x,
    y,
    radii_px: tuple[float, float],
    annulus_px: tuple[float, float],
    bad: np.ndarray | None = None,
    clip_sigma: float = 3.0,
    sky: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """CI = m(r₁) − m(r₂) (mag, (N,)) of the sources at (x, y) (N,) px in ``image`` (H, W)
    counts/s (LEGUS: r₁, r₂ = 1, 3 px), both sky-subtracted with the annulus; NaN where
    either flux is ≤ 0 or undefined. Zero points cancel."""
    if sky is None:
        sky = local_sky(image, x, y, annulus_px, bad, clip_sigma)
    inner, _ = photometry(image, x, y, radii_px[0], annulus_px, None, bad, sky=sky)
    outer, _ = photometry(image, x, y, radii_px[1], annulus_px, None, bad, sky=sky)
    ok = (inner > 0) & (outer > 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(ok, -2.5 * np.log10(np.where(ok, inner / outer, 1.0)), np.nan)
