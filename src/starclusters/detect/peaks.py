"""Object candidates from the value maps: smoothed class peaks and weighted parameters (thesis §4.2.2).

The thesis "first smoothed the class_c/b map with a Gaussian kernel (σ = 3 pixels) and
then searched for local peaks", and gave each peak "a weighted average of the inferred
parameters around a peak, using each pixel's class_c/b value, as well as its distance
from said peak in a 5 × 5 window, as the weight". Here:

* :func:`smooth_nan` — Gaussian smoothing that ignores NaNs (normalised convolution:
  smooth(value · valid) / smooth(valid)), so masked or unevaluated pixels neither pull
  the map down nor spread; NaN where (almost) nothing valid is near.
* :func:`local_maxima` — pixels not lower than any of their 8 neighbours (a 3 × 3
  maximum filter); a flat plateau counts once (at its pixel nearest its centroid) and
  only when no pixel of it has a higher neighbour. Pixels that are NaN in the raw class
  map are never peaks and do not block their neighbours.
* :func:`weighted_parameters` — per peak, the mean of every map over the 5 × 5 window,
  weighted by raw class × exp(−d² / 2σ_w²), d the distance from the peak in pixels.
  The thesis averages the parameters this way (visibility, age, mass, extinction, size),
  not the class itself: a candidate's ``class`` is the raw class map at its peak pixel
  (what the thresholds cut on); the class map's own weighted mean (Σc²k / Σck) is kept as
  ``class_weighted``, and the smoothed peak height as ``class_smoothed``.
  The thesis gives no form or width for the distance term; σ_w = 1.5 px (the default,
  config ``detect.weight_sigma_px``) keeps the estimate local to the peak — the window's
  corners (d = 2.8 px) weigh 0.17 of its centre — while still averaging over the
  cluster's core, and is half the smoothing σ so that it does not blur further than the
  peak search did. Visibility, spread over decades, is averaged in log10.

Pixel convention: 0-based (x, y) = (column, row) of the maps' array, pixel centres at
integers, as astropy's ``pixel_to_world`` reads them.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd
import scipy.ndimage as ndi

#: Extension names of ``detect/maps.fits`` -> column names of the values they hold.
MAP_COLUMNS = {
    "CLASS": "class",
    "VISIBILITY": "visibility",
    "LOG_AGE": "log_age_yr",
    "LOG_MASS": "log_mass_msun",
    "AV": "av_mag",
    "LOG_RH": "log_rh_arcsec",
}
#: Columns averaged in log10 and returned as plain values.
LOG_AVERAGED = frozenset({"visibility"})
#: The thesis' smoothing of the class map, px (§4.2.2).
SMOOTH_SIGMA_PX = 3.0
#: The thesis' window for the weighted parameters, px (§4.2.2).
WEIGHT_WINDOW_PX = 5
#: σ of the Gaussian distance weight in that window, px (chosen; see the module docstring).
WEIGHT_SIGMA_PX = 1.5

_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]
_EIGHT = np.ones((3, 3), bool)


def smooth_nan(image: np.ndarray, sigma_px: float, min_weight: float = 1e-3) -> np.ndarray:
    """Gaussian-smoothed ``image`` (H, W) ignoring NaNs: (H, W) float64.

    smooth(value · valid) / smooth(valid) with zero padding beyond the edges, so edges
    and holes are renormalised rather than darkened. sigma_px: Gaussian σ in pixels (0
    returns a float64 copy); min_weight: pixels where the smoothed validity (the kernel's
    share that falls on valid pixels) is below this are NaN. Non-finite pixels are
    invalid; they get the smoothed value of their valid neighbours.
    """
    image = np.asarray(image, dtype=np.float64)
    if image.ndim != 2:
        raise ValueError(f"smooth_nan() needs a 2-D map, got shape {image.shape}")
    if sigma_px < 0:
        raise ValueError(f"sigma_px must be >= 0, got {sigma_px}")
    valid = np.isfinite(image)
    if sigma_px == 0:
        return np.where(valid, image, np.nan)
    values = ndi.gaussian_filter(np.where(valid, image, 0.0), sigma_px, mode="constant")
    weight = ndi.gaussian_filter(valid.astype(np.float64), sigma_px, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = values / weight
    out[~(weight >= min_weight)] = np.nan
    return out


def _shifted(array: np.ndarray, dy: int, dx: int, fill) -> np.ndarray:
    """array[y + dy, x + dx] at every (y, x), ``fill`` beyond the edges."""
    out = np.full_like(array, fill)
    h, w = array.shape
    out[max(0, -dy) : h - max(0, dy), max(0, -dx) : w - max(0, dx)] = array[
        max(0, dy) : h - max(0, -dy), max(0, dx) : w - max(0, -dx)
    ]
    return out


def local_maxima(
    image: np.ndarray, valid: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) int64 of the local maxima of ``image`` (H, W), in raster order.

    A pixel is a maximum when no valid 8-neighbour is higher. A plateau (8-connected
    pixels of one value) is one maximum, at its pixel nearest its centroid, when no pixel
    of it has a higher neighbour; pixels beyond the edges do not count. valid: (H, W)
    bool of pixels that may be maxima and are compared (default: finite pixels); the
    others neither are maxima nor block one.
    """
    image = np.asarray(image, dtype=np.float64)
    ok = np.isfinite(image) if valid is None else (np.asarray(valid, bool) & np.isfinite(image))
    work = np.where(ok, image, -np.inf)
    highest = ndi.maximum_filter(work, footprint=_EIGHT, mode="constant", cval=-np.inf)
    candidate = ok & (work == highest)
    equal = np.zeros_like(ok)
    for dy, dx in _NEIGHBOURS:
        equal |= _shifted(ok, dy, dx, False) & (_shifted(work, dy, dx, -np.inf) == work)
    equal &= ok
    rows, cols = np.nonzero(candidate & ~equal)  # strict maxima
    flat = candidate & equal
    if flat.any():
        extra = _plateau_maxima(work, highest, ok & equal, flat)
        rows = np.concatenate([rows, extra[0]])
        cols = np.concatenate([cols, extra[1]])
        order = np.lexsort((cols, rows))
        rows, cols = rows[order], cols[order]
    return rows.astype(np.int64), cols.astype(np.int64)


def _plateau_maxima(work, highest, equal, flat) -> tuple[np.ndarray, np.ndarray]:
    """One pixel per plateau that is a maximum. ``equal``: valid pixels with an equal
    neighbour (every plateau lies inside one of its 8-connected components); ``flat``:
    the 3 × 3 maxima among them."""
    labels, _ = ndi.label(equal, structure=_EIGHT)
    rows, cols = [], []
    for index, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        inside = labels[box] == index
        seeds = flat[box] & inside
        if not seeds.any():
            continue
        sub, sub_high = work[box], highest[box]
        for value in np.unique(sub[seeds]):
            plateaus, _ = ndi.label(inside & (sub == value), structure=_EIGHT)
            for plateau in np.unique(plateaus[seeds & (sub == value)]):
                region = plateaus == plateau
                if np.any(sub_high[region] > value):
                    continue  # part of the plateau borders a higher pixel
                ry, rx = np.nonzero(region)
                k = np.argmin((ry - ry.mean()) ** 2 + (rx - rx.mean()) ** 2)
                rows.append(ry[k] + box[0].start)
                cols.append(rx[k] + box[1].start)
    return np.asarray(rows, np.int64), np.asarray(cols, np.int64)


def weighted_parameters(
    maps: Mapping[str, np.ndarray],
    rows,
    cols,
    window_px: int = WEIGHT_WINDOW_PX,
    sigma_px: float = WEIGHT_SIGMA_PX,
) -> dict[str, np.ndarray]:
    """Per peak, each map's mean over the window around it, weighted by class × distance.

    maps: column name -> (H, W) map; "class" (p_cluster in [0, 1]) is required and is
    also the weight. rows, cols: (P,) peak pixels. window_px: odd side of the window, px
    (thesis 5); sigma_px: σ of the Gaussian distance weight exp(−d² / 2σ²), px. A pixel
    counts for a map where both the class and that map are finite (and, for visibility,
    positive: it is averaged in log10). Pixels beyond the edges do not count. Returns
    column -> (P,) float64, NaN where no pixel counts.
    """
    if "class" not in maps:
        raise ValueError(f"weighted_parameters() needs a 'class' map, got {sorted(maps)}")
    if window_px < 1 or window_px % 2 != 1:
        raise ValueError(f"window_px must be a positive odd number, got {window_px}")
    if not sigma_px > 0:
        raise ValueError(f"sigma_px must be positive, got {sigma_px}")
    shape = np.shape(maps["class"])
    rows, cols = np.asarray(rows, np.int64), np.asarray(cols, np.int64)
    half = window_px // 2
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    dy, dx = dy.ravel(), dx.ravel()
    kernel = np.exp(-0.5 * (dy**2 + dx**2) / sigma_px**2)
    y = rows[:, None] + dy[None]
    x = cols[:, None] + dx[None]
    inside = (y >= 0) & (y < shape[0]) & (x >= 0) & (x < shape[1])
    y, x = np.clip(y, 0, shape[0] - 1), np.clip(x, 0, shape[1] - 1)
    weight = np.asarray(maps["class"], np.float64)[y, x] * kernel[None]
    weight = np.where(inside & np.isfinite(weight), weight, 0.0)
    out = {}
    for name, image in maps.items():
        values = np.asarray(image, np.float64)[y, x]
        if name in LOG_AVERAGED:
            with np.errstate(invalid="ignore", divide="ignore"):
                values = np.where(values > 0, np.log10(values), np.nan)
        usable = np.isfinite(values)
        w = np.where(usable, weight, 0.0)
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.sum(np.where(usable, values, 0.0) * w, axis=1) / total
        mean[~(total > 0)] = np.nan
        out[name] = 10.0**mean if name in LOG_AVERAGED else mean
    return out


def find_peaks(
    maps: Mapping[str, np.ndarray],
    smooth_sigma_px: float = SMOOTH_SIGMA_PX,
    window_px: int = WEIGHT_WINDOW_PX,
    weight_sigma_px: float = WEIGHT_SIGMA_PX,
    min_weight: float = 1e-3,
) -> pd.DataFrame:
    """Every peak of the smoothed class map with its weighted parameters (thesis §4.2.2).

    maps: (H, W) value maps keyed by column name ("class", "visibility", "log_age_yr",
    "log_mass_msun", "av_mag", "log_rh_arcsec") or by their maps.fits extension name
    (:data:`MAP_COLUMNS`); "class" is required, NaN where masked or not evaluated.
    smooth_sigma_px: σ of the class map's smoothing, px (thesis 3); window_px,
    weight_sigma_px: the weighted-mean window and distance σ, px (:func:`weighted_parameters`);
    min_weight: see :func:`smooth_nan`.

    Returns one row per peak in raster order: peak_id, x, y (0-based column and row),
    class_smoothed (the smoothed map at the peak), class (the raw class map at the peak
    pixel: the value the thesis thresholds), class_weighted (the class map's own weighted
    mean, for reference), then the weighted mean of every other map under its column name.
    """
    maps = {MAP_COLUMNS.get(name, name): np.asarray(image) for name, image in maps.items()}
    if "class" not in maps:
        raise ValueError(f"find_peaks() needs the class map (CLASS), got {sorted(maps)}")
    shape = maps["class"].shape
    for name, image in maps.items():
        if image.shape != shape:
            raise ValueError(f"map {name} has shape {image.shape}, the class map {shape}")
    raw = np.asarray(maps["class"], np.float64)
    smoothed = smooth_nan(raw, smooth_sigma_px, min_weight)
    rows, cols = local_maxima(smoothed, valid=np.isfinite(raw))
    params = weighted_parameters(maps, rows, cols, window_px, weight_sigma_px)
    table = pd.DataFrame(
        {
            "peak_id": np.arange(len(rows), dtype=np.int64),
            "x": cols,
            "y": rows,
            "class_smoothed": smoothed[rows, cols],
            "class": raw[rows, cols],
            "class_weighted": params["class"],
        }
    )
    for name in maps:
        if name != "class":
            table[name] = params[name]
    return table
