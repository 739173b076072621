"""Source finding of the classical peer: a noise-weighted detection image, a matched
filter, thresholded segments, SExtractor's multi-threshold deblending and windowed centroids,
all but the first two by photutils (``photutils.segmentation``).

1. Per band, the sky and its noise: photutils ``Background2D`` (sigma-clipped, SExtractor's
   mode estimator, box ``background_box_px``, 3 × 3 median filter of the mesh) over the
   usable pixels.
2. The detection image, a noise-weighted sum of the detection bands' S/N images
   (Szalay, Connolly & Szokoly 1999 square them into a χ² image instead):
   D = Σ_b (I_b − sky_b) / σ_b / √N_b, so pure noise has unit σ in every pixel.
3. The matched-filter S/N: D smoothed with a unit-sum Gaussian k of FWHM
   ``smooth_fwhm_px`` (≈ the ePSF), divided by the smoothed noise √Σk², so that S is in
   units of its own noise (for white noise).
4. Segments (photutils ``detect_sources``): 8-connected pixels with S > ``detection_sigma``,
   at least ``npixels`` of them; masked and non-finite pixels belong to none.
5. Deblending (photutils ``deblend_sources``, SExtractor's multi-threshold tree, Bertin &
   Arnouts 1996 §2.5): each segment of ≥ 2 ``npixels`` pixels with two local maxima of S
   or more (no other can split) is re-thresholded at
   ``deblend_nlevels`` exponentially spaced levels between its lowest and highest S; a
   branch of ≥ ``npixels`` pixels becomes a source of its own when it holds at least
   ``deblend_contrast`` of the segment's summed S (the rest is shared out by watershed).
   photutils spaces the levels linearly instead in a segment with > 200 candidate
   branches (logged): on the synthetic M83 the 6 largest blends (arm and centre, 10⁴–
   6.5 × 10⁴ px, S up to ~6000), where faint sources on bright light then go unsplit.
6. Positions (photutils ``SourceCatalog`` on S): windowed centroids (SExtractor's
   XWIN_IMAGE: iterated Gaussian-weighted first moments, σ from the half-light radius),
   where photutils gives none (NaN) the isophotal centroid; the peak S (``max_value``).

Masked (mask ≠ 0, see :mod:`starclusters.mosaic.prepare`) and non-finite pixels are 0 in D,
belong to no segment, and no source is kept whose centroid falls on one.

Steps 4–6 are :func:`segment_sources`, which takes any S/N image: the detection runs it on
the whole mosaic's, the CI calibration of :mod:`.classify` on its composed windows', so
that calibration and catalog find, deblend and centre their sources alike.

Pixel convention: 0-based (x, y) = (column, row) of the mosaic's array, pixel centres at
integers, as astropy's ``pixel_to_world`` reads them.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import pandas as pd
import scipy.ndimage as ndi

from starclusters.baseline.settings import BaselineSettings

log = logging.getLogger(__name__)

#: Columns of :func:`detect_sources`' table.
SOURCE_COLUMNS = ("segment_id", "x", "y", "detection_snr", "area_px")


def usable_pixels(images: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """(H, W) bool: pixels finite in every band and unmasked (mask == 0).

    images: (B, H, W) counts/s; mask: (H, W) integer, non-zero = unusable, or None.
    """
    good = np.all(np.isfinite(images), axis=0)
    if mask is not None:
        good &= np.asarray(mask) == 0
    return good


def sky_and_noise(
    image: np.ndarray, good: np.ndarray, box_px: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sky and its per-pixel noise, (H, W) float64 each, counts/s, from photutils Background2D.

    image: (H, W) counts/s; good: (H, W) usable pixels (the others are ignored); box_px: the
    mesh, clipped to the image size. Boxes with > 10 % unusable pixels are interpolated
    from their neighbours (Background2D's exclude_percentile). Where no box is usable (a
    small, largely masked mosaic) the sky is flat: the sigma-clipped (3σ) median and
    standard deviation of all usable pixels, with a warning.
    """
    from astropy.stats import sigma_clipped_stats
    from photutils.background import Background2D

    box = int(min(box_px, *image.shape))
    data = np.where(good, image, 0.0)
    try:
        bkg = Background2D(data, box, mask=~good, filter_size=(3, 3))
    except ValueError as error:  # photutils: every box has too many masked pixels
        _, median, std = sigma_clipped_stats(image[good], sigma=3.0)
        log.warning("Background2D failed (%s); a flat sky %.4g ± %.4g counts/s", error, median, std)
        return np.full(image.shape, float(median)), np.full(image.shape, float(std))
    return np.asarray(bkg.background, np.float64), np.asarray(bkg.background_rms, np.float64)


def detection_image(
    images: np.ndarray, good: np.ndarray, box_px: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-weighted S/N sum of ``images`` (B, H, W) counts/s: (D (H, W), sky (B, H, W),
    noise (B, H, W)); D is dimensionless with unit noise, 0 on unusable pixels."""
    det = np.zeros(images.shape[1:])
    skies, noises = [], []
    for image in images:
        sky, noise = sky_and_noise(image, good, box_px)
        with np.errstate(invalid="ignore", divide="ignore"):
            snr = (image - sky) / noise
        det += np.where(good & (noise > 0), snr, 0.0)
        skies.append(sky)
        noises.append(noise)
    return det / math.sqrt(len(images)), np.stack(skies), np.stack(noises)


def smooth(image: np.ndarray, fwhm_px: float) -> np.ndarray:
    """``image`` (H, W) convolved with a unit-sum Gaussian of FWHM ``fwhm_px`` (zero beyond
    the edges); (H, W) float64."""
    return ndi.gaussian_filter(
        np.asarray(image, np.float64),
        fwhm_px / (2.0 * math.sqrt(2.0 * math.log(2.0))),
        mode="constant",
    )


def matched_filter_snr(det: np.ndarray, good: np.ndarray, fwhm_px: float) -> np.ndarray:
    """S (H, W): the unit-noise detection image ``det`` smoothed by a unit-sum Gaussian of
    FWHM ``fwhm_px`` and divided by the smoothed white noise √Σk²; 0 on unusable pixels."""
    size = 2 * int(math.ceil(3 * fwhm_px)) + 1
    delta = np.zeros((size, size))
    delta[size // 2, size // 2] = 1.0
    noise = math.sqrt(float(np.sum(smooth(delta, fwhm_px) ** 2)))
    return np.where(good, smooth(np.where(good, det, 0.0), fwhm_px) / noise, 0.0)


def empty_sources() -> pd.DataFrame:
    """The table of :func:`detect_sources` with no rows."""
    return pd.DataFrame(
        {
            "segment_id": np.zeros(0, np.int64),
            "x": np.zeros(0),
            "y": np.zeros(0),
            "detection_snr": np.zeros(0),
            "area_px": np.zeros(0, np.int64),
        }
    )


def segment_sources(snr: np.ndarray, good: np.ndarray, settings: BaselineSettings) -> pd.DataFrame:
    """Sources of a matched-filter S/N image: steps 4–6 of the module docstring.

    snr: (H, W) S in its own noise units (:func:`matched_filter_snr`); good: (H, W) usable
    pixels (the others belong to no segment, and no source is kept whose centroid falls on
    one); settings: detection_sigma, npixels, deblend_nlevels, deblend_contrast. Returns
    :func:`detect_sources`' table (0-based px of ``snr``), in raster order of the sources'
    highest pixels; ``attrs["counts"]``: segments, deblended sources, and sources without a
    windowed centroid (given the isophotal one).
    """
    import warnings

    from photutils.segmentation import SourceCatalog, deblend_sources
    from photutils.segmentation import detect_sources as threshold_segments
    from photutils.utils.exceptions import NoDetectionsWarning

    from starclusters.detect.peaks import local_maxima

    snr = np.asarray(snr, np.float64)
    good = np.asarray(good, bool)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoDetectionsWarning)
        segments = threshold_segments(
            snr, settings.detection_sigma, settings.npixels, connectivity=8, mask=~good
        )
    if segments is None:
        table = empty_sources()
        table.attrs["counts"] = {"segments": 0, "deblended": 0, "no_window": 0}
        return table
    # Only a segment with two local maxima or more can split at any threshold: deblending
    # just those gives the same result, in about 2/3 of the time on a crowded mosaic.
    rows, cols = local_maxima(snr, valid=segments.data > 0)
    peaks = np.bincount(segments.data[rows, cols], minlength=segments.max_label + 1)
    several = np.flatnonzero(peaks >= 2)
    if several.size == 0:
        deblended = segments
    else:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            deblended = deblend_sources(
                snr,
                segments,
                settings.npixels,
                labels=several,
                n_levels=settings.deblend_nlevels,
                contrast=settings.deblend_contrast,
                mode="exponential",
                connectivity=8,
                progress_bar=False,
            )
        for caught_warning in caught:  # the details are in deblended.info
            log.debug("deblend_sources: %s", caught_warning.message)
    for why in (getattr(deblended, "info", None) or {}).get("warnings", {}).values():
        changed = np.asarray(why["input_labels"])
        log.info(
            "deblend_sources: %s %d segments, of %s px",
            why["message"],
            changed.size,
            np.sort(segments.areas[segments.get_indices(changed)])[::-1].tolist(),
        )
    catalog = SourceCatalog(snr, deblended, mask=~good, progress_bar=False)
    x = np.asarray(catalog.x_centroid_win, np.float64)
    y = np.asarray(catalog.y_centroid_win, np.float64)
    no_window = ~(np.isfinite(x) & np.isfinite(y))
    x[no_window] = np.asarray(catalog.x_centroid, np.float64)[no_window]
    y[no_window] = np.asarray(catalog.y_centroid, np.float64)[no_window]
    rows = np.asarray(catalog.max_value_yindex, np.int64)
    cols = np.asarray(catalog.max_value_xindex, np.int64)
    parent = segments.data[rows, cols].astype(np.int64)
    area = np.bincount(segments.data.ravel(), minlength=segments.max_label + 1)
    h, w = good.shape
    finite = np.isfinite(x) & np.isfinite(y)
    ix = np.clip(np.rint(np.where(finite, x, 0)).astype(int), 0, w - 1)
    iy = np.clip(np.rint(np.where(finite, y, 0)).astype(int), 0, h - 1)
    usable = finite & good[iy, ix]
    order = np.lexsort((cols, rows))
    table = (
        pd.DataFrame(
            {
                "segment_id": parent,
                "x": x,
                "y": y,
                "detection_snr": np.asarray(catalog.max_value, np.float64),
                "area_px": area[parent].astype(np.int64),
            }
        )
        .iloc[order][usable[order]]
        .reset_index(drop=True)
    )
    table.attrs["counts"] = {
        "segments": int(segments.n_labels),
        "deblended": int(deblended.n_labels),
        "no_window": int(no_window.sum()),
    }
    return table


def detect_sources(
    images: np.ndarray,
    mask: np.ndarray | None,
    settings: BaselineSettings,
    bands=None,
) -> pd.DataFrame:
    """Sources of the mosaic ``images`` (B, H, W) float counts/s (module docstring).

    mask: (H, W) integer, non-zero = unusable (the mosaic stage's mask), or None; bands:
    names of the B images, needed when ``settings.detection_bands`` picks some of them.
    Returns one row per source in raster order of the peaks: segment_id (the thresholded
    segment, before deblending, it lies in, from 1; deblended sources share it), x, y
    (windowed centroid, 0-based px of the mosaic grid), detection_snr (S at the source's
    highest pixel: the matched-filter S/N), area_px (pixels of its thresholded segment,
    before deblending). Nothing usable or nothing above the threshold gives an empty table
    with these columns. Steps 4–6 are :func:`segment_sources`.
    """
    images = np.asarray(images, np.float64)
    if images.ndim != 3:
        raise ValueError(f"images must be (bands, H, W), got shape {images.shape}")
    if mask is not None and np.shape(mask) != images.shape[1:]:
        raise ValueError(f"mask has shape {np.shape(mask)}, the images {images.shape[1:]}")
    if settings.detection_bands:
        if bands is None:
            raise ValueError("detect_sources() needs the band names to pick detection_bands")
        names = list(bands)
        use = [names.index(b) for b in settings.detection_band_list(names)]
    else:
        use = list(range(images.shape[0]))
    good = usable_pixels(images, mask)
    if good.sum() < max(settings.npixels, 16):
        log.info("no usable pixels: no sources")
        return empty_sources()
    det, _, _ = detection_image(images[use], good, settings.background_box_px)
    snr = matched_filter_snr(det, good, settings.smooth_fwhm_px)
    table = segment_sources(snr, good, settings)
    counts = table.attrs.pop("counts")
    if counts["segments"] == 0:
        log.info("nothing above S/N %.3g: no sources", settings.detection_sigma)
        return table
    log.info(
        "%d sources in %d segments (%d after deblending, %d without a windowed centroid)",
        len(table),
        counts["segments"],
        counts["deblended"],
        counts["no_window"],
    )
    return table
