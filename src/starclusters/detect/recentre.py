"""Sub-pixel candidate positions from the image's light around each class-map peak.

A peak of the smoothed class map (:mod:`.peaks`) is a whole pixel where the network's
"cluster here" response is highest. That response is a broad plateau over a cluster
(the class map saturates near 1 within a few pixels of the centre, then the σ = 3 px
smoothing), so the maximum falls where the plateau is most symmetric, not on the light:
off-centre for an extended or lopsided cluster, pulled inwards next to a mask or the
mosaic's edge. On the six validation galaxies of the bench preset the class-map peaks of
matched clusters lie a median 1.1 px from the true centres, and six of fifteen false
candidates were clusters found 3–5 px off (docs/detection.md).

:func:`light_centroids` moves each peak to the first moment of the image's light around
it, as source finders centre their detections (SExtractor's barycentre; the classical
peer's windowed centroids, :mod:`starclusters.baseline.detection`):

1. per band b, the local sky and its noise σ_b: the sigma-clipped median and standard
   deviation of the annulus ``sky_annulus_px`` around the peak
   (:func:`starclusters.aperture.local_sky`, the peer's photometry sky);
2. the noise-weighted light S = Σ_b (I_b − sky_b) / σ_b over the pixels whose centres lie
   within ``radius_px`` of the peak pixel, negative values set to 0 (the sum of the bands'
   S/N, as the peer's detection image, so no band's units dominate);
3. the position is Σ S · (x, y) / Σ S.

One step, not iterated: iterating walks onto brighter neighbours (more false candidates
than one step on the same galaxies). The centroid is a weighted mean of pixels within
``radius_px``, so it never moves farther than that. Pixels that are masked, non-finite or
off the image weigh 0; a band whose annulus has too few usable pixels (NaN sky) adds
nothing; where nothing positive is left the peak pixel stays.

Pixel convention: 0-based (x, y) = (column, row), pixel centres at integers.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from starclusters.aperture import local_sky

#: Radius of the centroid's circle, px: the thesis' match radius (§3.3.1, 3 px), within
#: which a candidate is the cluster.
RADIUS_PX = 3.0
#: Sky annulus, px: from 7 px as LEGUS (Adamo et al. 2017 §3.1), 5 px wide for a steadier
#: clipped median around crowded peaks.
SKY_ANNULUS_PX = (7.0, 12.0)


def light_centroids(
    images: Sequence[np.ndarray],
    x,
    y,
    radius_px: float = RADIUS_PX,
    sky_annulus_px: tuple[float, float] = SKY_ANNULUS_PX,
    bad: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, y, moved), each (N,): the noise-weighted light centroid around every peak.

    images: B (H, W) images of the bands, counts/s (memory-mapped arrays are fine; the
    sky estimate reads each whole once); x, y: (N,) peak positions, px (rounded to their
    pixel); radius_px: the centroid's circle, px, > 0; sky_annulus_px: (inner, outer)
    radii of the sky annulus, px; bad: (H, W) bool, unusable pixels, or None. Returns
    float64 positions (the peak's own where nothing positive lies within the circle) and
    whether each moved from its pixel. See the module docstring for the method.
    """
    x0 = np.rint(np.atleast_1d(np.asarray(x, float)))
    y0 = np.rint(np.atleast_1d(np.asarray(y, float)))
    if not radius_px > 0:
        raise ValueError(f"radius_px must be > 0, got {radius_px}")
    if x0.size == 0 or not len(images):
        return x0, y0, np.zeros(x0.size, bool)
    h, w = np.shape(images[0])
    reach = int(math.floor(radius_px))
    dy, dx = np.mgrid[-reach : reach + 1, -reach : reach + 1]
    disc = dx**2 + dy**2 <= radius_px**2
    dx, dy = dx[disc].astype(float), dy[disc].astype(float)
    px = x0[:, None] + dx[None]
    py = y0[:, None] + dy[None]
    inside = (px >= 0) & (px < w) & (py >= 0) & (py < h)
    rows = np.clip(py, 0, h - 1).astype(np.intp)
    cols = np.clip(px, 0, w - 1).astype(np.intp)
    usable = inside if bad is None else inside & ~np.asarray(bad, bool)[rows, cols]
    light = np.zeros(px.shape)
    for image in images:
        sky, sigma, _ = local_sky(image, x0, y0, sky_annulus_px, bad=bad)
        good_band = np.isfinite(sky) & (sigma > 0)
        values = np.asarray(image[rows, cols], float)
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = (values - sky[:, None]) / sigma[:, None]
        light += np.where(usable & good_band[:, None] & np.isfinite(snr), snr, 0.0)
    light = np.clip(light, 0.0, None)
    total = light.sum(axis=1)
    moved = total > 0
    cx, cy = x0.copy(), y0.copy()
    cx[moved] = (light[moved] * px[moved]).sum(axis=1) / total[moved]
    cy[moved] = (light[moved] * py[moved]).sum(axis=1) / total[moved]
    moved &= (cx != x0) | (cy != y0)
    return cx, cy, moved
