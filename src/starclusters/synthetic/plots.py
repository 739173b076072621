"""Preview figures of a synthetic galaxy: the whole mosaic and a zoom, RGB arcsinh, with the
truth clusters and the dust lanes marked.

Each band is resampled onto the reference band's grid for the picture only
(bilinear, through the WCSs; block-averaged first when the mosaic is larger than
the figure), reading the FITS files through memory maps.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import scipy.ndimage

from starclusters.mocks.plots import rgb_arcsinh
from starclusters.plotting import save_figure
from starclusters.synthetic.geometry import SkyFrame
from starclusters.synthetic.spec import SyntheticGalaxySpec

#: Longest side of the whole-mosaic panel, pixels.
PREVIEW_PX = 1024
#: Side of the zoom, reference pixels.
ZOOM_PX = 256
#: Age classes of the markers (log t/yr upper edges) and their colours (thesis Fig. 4.7).
AGE_CLASSES = (
    (7.0, "tab:blue", "log t < 7"),
    (7.7, "tab:orange", "7–7.7"),
    (99, "tab:red", "≥ 7.7"),
)


def band_data(hdul):
    """The image of a band file: its SCI extension (drizzled, archive-like) or primary HDU."""
    return hdul["SCI"].data if "SCI" in hdul else hdul[0].data


def _block_mean(path: str | os.PathLike, factor: int) -> np.ndarray:
    """The image of a FITS file block-averaged by ``factor``, read a band of rows at a time."""
    from astropy.io import fits

    with fits.open(path, memmap=True) as hdul:
        data = band_data(hdul)
        ny, nx = data.shape
        my, mx = ny // factor, nx // factor
        out = np.empty((my, mx), np.float32)
        for i in range(my):
            rows = np.asarray(data[i * factor : (i + 1) * factor, : mx * factor], np.float32)
            out[i] = rows.reshape(factor, mx, factor).mean(axis=(0, 2))
    return out


def _on_reference(
    path, band: str, frame: SkyFrame, factor: int, x_ref: np.ndarray, y_ref: np.ndarray
) -> np.ndarray:
    """Band ``band`` sampled at reference-grid pixel coordinates (x_ref, y_ref) (bilinear)."""
    image = _block_mean(path, factor) if factor > 1 else None
    if image is None:
        from astropy.io import fits

        with fits.open(path, memmap=True) as hdul:
            data = band_data(hdul)
            ra, dec = frame.reference.wcs_pix2world(x_ref.ravel(), y_ref.ravel(), 0)
            xb, yb = frame.world_to_pixel(band, ra, dec)
            y0 = max(int(np.floor(yb.min())) - 1, 0)
            y1 = min(int(np.ceil(yb.max())) + 2, data.shape[0])
            x0 = max(int(np.floor(xb.min())) - 1, 0)
            x1 = min(int(np.ceil(xb.max())) + 2, data.shape[1])
            part = np.asarray(data[y0:y1, x0:x1], np.float32)
        values = scipy.ndimage.map_coordinates(part, [yb - y0, xb - x0], order=1, mode="nearest")
        return values.reshape(x_ref.shape)
    ra, dec = frame.reference.wcs_pix2world(x_ref.ravel(), y_ref.ravel(), 0)
    xb, yb = frame.world_to_pixel(band, ra, dec)
    coords = [(yb + 0.5) / factor - 0.5, (xb + 0.5) / factor - 0.5]
    values = scipy.ndimage.map_coordinates(image, coords, order=1, mode="nearest")
    return values.reshape(x_ref.shape)


def _vega_scale(path) -> float:
    """Factor from counts/s to Vega flux units (10^(−0.4 ZPVEGA); 1 without ZPVEGA)."""
    from astropy.io import fits

    header = fits.getheader(path)
    return 10.0 ** (-0.4 * float(header["ZPVEGA"])) if "ZPVEGA" in header else 1.0


def _rgb(planes: list[np.ndarray], scales: list[float]) -> np.ndarray:
    """(3, H, W) resampled bands (blue→red order) -> RGB in Vega flux units (a Vega-coloured
    source is white, old populations red), one stretch set by the median and the
    99.5th percentile of the summed light."""
    flux = np.stack([p * s for p, s in zip(planes, scales, strict=True)])
    total = flux.sum(axis=0)
    high = np.percentile(total, 99.8)
    low = max(np.percentile(total, 90), 1e-3 * high)
    return rgb_arcsinh(flux, high / 3.0, low / 3.0)


def _mark(ax, truth: pd.DataFrame, arms: pd.DataFrame, x0, y0, factor, size, lw=0.6):
    for arm, lane in arms.groupby("arm"):
        ax.plot(
            (lane["x_px"] - x0 + 0.5) / factor - 0.5,
            (lane["y_px"] - y0 + 0.5) / factor - 0.5,
            ls="--",
            lw=lw,
            color="white",
            label="dust lanes" if arm == 0 else None,
        )
    lower = -np.inf
    for upper, colour, label in AGE_CLASSES:
        sel = truth[(truth["log_age_yr"] >= lower) & (truth["log_age_yr"] < upper)]
        lower = upper
        ax.scatter(
            (sel["x_px"] - x0 + 0.5) / factor - 0.5,
            (sel["y_px"] - y0 + 0.5) / factor - 0.5,
            s=size,
            facecolors="none",
            edgecolors=colour,
            linewidths=lw,
            label=f"clusters {label}",
        )


def _busiest_window(truth: pd.DataFrame, shape: tuple[int, int], side: int) -> tuple[int, int]:
    """Lower-left corner of the side × side window (64-px steps) holding the most clusters
    on the arms, then the most clusters."""
    ny, nx = shape
    best, corner = (-1, -1), (max((nx - side) // 2, 0), max((ny - side) // 2, 0))
    young = truth["on_arm"].to_numpy(bool)
    for y0 in range(0, max(ny - side, 0) + 1, 64):
        for x0 in range(0, max(nx - side, 0) + 1, 64):
            inside = (
                (truth["x_px"] >= x0)
                & (truth["x_px"] < x0 + side)
                & (truth["y_px"] >= y0)
                & (truth["y_px"] < y0 + side)
            ).to_numpy()
            score = (int((inside & young).sum()), int(inside.sum()))
            if score > best:
                best, corner = score, (x0, y0)
    return corner


def plot_synthetic_galaxy(
    band_paths: Mapping[str, str | os.PathLike],
    spec: SyntheticGalaxySpec,
    frame: SkyFrame,
    truth: pd.DataFrame,
    arms: pd.DataFrame,
    preview_png: str | os.PathLike | None,
    zoom_png: str | os.PathLike | None,
) -> None:
    """Write the whole-mosaic RGB (red = reddest band) and a 256-px zoom on the busiest area."""
    bands = list(spec.bands)
    blue, mid, red = bands[0], bands[len(bands) // 2], bands[-1]
    scales = [_vega_scale(band_paths[b]) for b in (blue, mid, red)]
    ny, nx = spec.shape_px
    if preview_png is not None:
        factor = max(1, math.ceil(max(ny, nx) / PREVIEW_PX))
        my, mx = ny // factor, nx // factor
        gy, gx = np.mgrid[0:my, 0:mx].astype(float)
        x_ref, y_ref = (gx + 0.5) * factor - 0.5, (gy + 0.5) * factor - 0.5
        planes = [
            _on_reference(band_paths[b], b, frame, factor, x_ref, y_ref) for b in (blue, mid, red)
        ]
        fig, ax = plt.subplots(figsize=(8, 8 * my / mx))
        ax.imshow(_rgb(planes, scales), origin="lower", interpolation="nearest")
        _mark(ax, truth, arms, 0, 0, factor, 14)
        ax.set_xlim(-0.5, mx - 0.5), ax.set_ylim(-0.5, my - 0.5)
        x0, y0 = _busiest_window(truth, (ny, nx), ZOOM_PX)
        ax.add_patch(
            plt.Rectangle(
                ((x0 - 0.5) / factor, (y0 - 0.5) / factor),
                ZOOM_PX / factor,
                ZOOM_PX / factor,
                fill=False,
                ec="yellow",
                lw=0.8,
            )
        )
        ax.legend(loc="upper right", fontsize=7, framealpha=0.5)
        ax.set_title(
            f"{spec.name}: RGB = {red}/{mid}/{blue} (Vega units, arcsinh), {nx}×{ny} px at "
            f"{spec.pixel_scale_arcsec}″/px; {len(truth)} truth clusters",
            fontsize=9,
        )
        ax.set_xlabel(f"x [{spec.reference_band} px / {factor}]"), ax.set_ylabel("y")
        save_figure(fig, preview_png)
    if zoom_png is not None:
        side = min(ZOOM_PX, nx, ny)
        x0, y0 = _busiest_window(truth, (ny, nx), side)
        gy, gx = np.mgrid[0:side, 0:side].astype(float)
        planes = [
            _on_reference(band_paths[b], b, frame, 1, gx + x0, gy + y0) for b in (blue, mid, red)
        ]
        fig, ax = plt.subplots(figsize=(7, 7))
        ax.imshow(_rgb(planes, scales), origin="lower", interpolation="nearest")
        _mark(ax, truth, arms, x0, y0, 1, 60, lw=0.9)
        ax.set_xlim(-0.5, side - 0.5), ax.set_ylim(-0.5, side - 0.5)
        ax.legend(loc="upper right", fontsize=7, framealpha=0.5)
        ax.set_title(f"zoom: reference pixels x {x0}–{x0 + side}, y {y0}–{y0 + side}", fontsize=9)
        save_figure(fig, zoom_png)
