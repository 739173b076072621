"""A gallery of the best candidates with the network's output grids (as thesis Fig. 3.21).

Per candidate: a colour cut-out of the mosaic (7″ × 7″ by default, as the thesis) with
the network's input window dashed, and the network's activations on that window: the
age × A_V map marginalised over mass (the age–extinction degeneracy shows as a
diagonal), and the mass and r_h histograms. The catalog's values (the class-weighted
means of the value maps, :mod:`starclusters.detect.peaks`) are marked in magenta, a
matched true cluster of the synthetic galaxy in cyan.

The value maps keep only point estimates, so the grids come from running the model
again on the window centred on the candidate's peak pixel: the window of centre
(y, x) spans rows y − S//2 … y − S//2 + S − 1 and the same columns (the convention of
the mock stamps, the background cut-outs and the sliding-window detection), through
the one :func:`~starclusters.model.inference.predict`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from starclusters.detect.tiles import window_start
from starclusters.plotting import save_figure

#: Side of the colour cut-out, arcsec (thesis Fig. 3.21: 7″ × 7″).
FIELD_ARCSEC = 7.0
#: Candidates shown (config detect.gallery_size).
GALLERY_SIZE = 12


def cut_windows(images, rows, cols, size: int, fill: float = np.nan) -> np.ndarray:
    """Windows (N, B, size, size) float32 of ``images`` (B, H, W) centred on (rows, cols).

    The window of centre (y, x) spans rows y − size//2 … y − size//2 + size − 1 (and the
    same for columns); pixels beyond the image get ``fill``. ``images`` may be a list of
    memory-mapped 2-D arrays: only the windows are read.
    """
    n_bands = len(images)
    height, width = np.shape(images[0])
    out = np.full((len(rows), n_bands, size, size), fill, np.float32)
    for k, (y, x) in enumerate(zip(np.asarray(rows, int), np.asarray(cols, int), strict=True)):
        y0, x0 = window_start(y, size), window_start(x, size)
        ys, xs = max(y0, 0), max(x0, 0)
        ye, xe = min(y0 + size, height), min(x0 + size, width)
        if ys >= ye or xs >= xe:
            continue
        for b in range(n_bands):
            out[k, b, ys - y0 : ye - y0, xs - x0 : xe - x0] = images[b][ys:ye, xs:xe]
    return out


def colour_image(cutout: np.ndarray, flux_scale: Sequence[float] | None = None) -> np.ndarray:
    """(B, H, W) counts/s, bands blue to red -> (H, W, 3) uint8 (astropy ``make_lupton_rgb``).

    flux_scale: per band factor to a common flux unit (e.g. 10^(−0.4 ZP_Vega), so that a
    Vega-coloured source is white); red = last band, green = the middle, blue = the first.
    Asinh stretch set by the cut-out's median (black) and 99.5th percentile (bright).
    """
    from astropy.visualization import make_lupton_rgb

    flux = np.nan_to_num(np.asarray(cutout, np.float64))
    if flux_scale is not None:
        flux = flux * np.asarray(flux_scale, float)[:, None, None]
    planes = [flux[-1], flux[len(flux) // 2], flux[0]]
    floor = [float(np.median(p)) for p in planes]
    total = np.mean([p - f for p, f in zip(planes, floor, strict=True)], axis=0)
    high = float(np.percentile(total, 99.5))
    stretch = high / 4.0 if high > 0 else 1.0
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 on black pixels, set to 0
        return make_lupton_rgb(*planes, minimum=floor, stretch=stretch, Q=8)


def candidate_grids(model, grids, images, rows, cols, device="cpu") -> dict[str, np.ndarray]:
    """The network's outputs on the windows centred on (rows, cols), grids kept.

    images: (B, H, W) in the model's band order, counts/s. Pixels beyond the mosaic or
    NaN (masked) are set to 0 counts/s (the detection never centres a window there).
    Returns :func:`~starclusters.model.inference.predict`'s dict (with ``grid_<head>``).
    """
    from starclusters.model.inference import predict

    windows = cut_windows(images, rows, cols, model.spec.window_px, fill=0.0)
    windows = np.nan_to_num(windows, nan=0.0)
    return predict(model, windows, grids, device=device, keep_grids=True)


def _histogram(ax, centres, probs, marks, label):
    ax.bar(centres, probs, width=np.diff(centres).mean(), color="0.6", edgecolor="0.3", lw=0.3)
    for value, colour in marks:
        if np.isfinite(value):
            ax.axvline(value, color=colour, lw=1.5)
    ax.set_xlabel(label, fontsize=7)
    ax.tick_params(labelsize=6)
    ax.set_yticks([])


def plot_gallery(
    candidates: pd.DataFrame,
    cutouts: np.ndarray,
    outputs: Mapping[str, np.ndarray] | None,
    grids,
    window_px: int,
    path: str | os.PathLike,
    flux_scale: Sequence[float] | None = None,
    truth: pd.DataFrame | None = None,
    pixel_scale_arcsec: float = 0.04,
) -> None:
    """Write the gallery figure: one row of 4 panels per candidate, candidates in 2 columns.

    candidates: (N,) rows of the catalog (peak_id, class, visibility, log_age_yr, av_mag,
    log_mass_msun, log_rh_arcsec); cutouts: (N, B, F, F) counts/s centred on them;
    outputs: :func:`candidate_grids` of the same N (None: no grids, e.g. a regression
    network); grids: the model's ParameterGrids; window_px: the network's window, px;
    truth: (N,) true values of a matched cluster or NaN (log_age_yr, av_mag,
    log_mass_msun, log_rh_arcsec), or None.
    """
    n = len(candidates)
    if n == 0:
        fig, ax = plt.subplots(figsize=(6, 2))
        ax.axis("off")
        ax.text(0.5, 0.5, "no candidates above the thresholds", ha="center", va="center")
        save_figure(fig, path)
        return
    n_cols = 2 if n > 1 else 1
    n_rows = -(-n // n_cols)
    fig, axes = plt.subplots(
        n_rows,
        4 * n_cols,
        figsize=(4.3 * 2 * n_cols, 2.3 * n_rows),
        gridspec_kw={"width_ratios": [1.1, 1.3, 0.9, 0.9] * n_cols},
        squeeze=False,
    )
    field = cutouts.shape[-1]
    half_arcsec = field * pixel_scale_arcsec / 2
    for k in range(n_rows * n_cols):
        row, col = divmod(k, n_cols)
        ax_img, ax_map, ax_mass, ax_rh = axes[row, 4 * col : 4 * col + 4]
        if k >= n:
            for ax in (ax_img, ax_map, ax_mass, ax_rh):
                ax.axis("off")
            continue
        cand = candidates.iloc[k]
        true = truth.iloc[k] if truth is not None else None
        ax_img.imshow(
            colour_image(cutouts[k], flux_scale),
            origin="lower",
            extent=(-half_arcsec, half_arcsec, -half_arcsec, half_arcsec),
        )
        w = window_px * pixel_scale_arcsec
        lo = (field // 2 - window_px // 2 - field / 2) * pixel_scale_arcsec  # window's edge
        ax_img.add_patch(plt.Rectangle((lo, lo), w, w, fill=False, ls="--", color="w", lw=0.8))
        ax_img.set_xticks([])
        ax_img.set_yticks([])
        ax_img.set_title(
            f"#{int(cand.peak_id)}  class {cand['class']:.3f}  vis {cand['visibility']:.1f}",
            fontsize=7,
        )
        derived = [(cand[name], "magenta") for name in ("log_mass_msun", "log_rh_arcsec")]
        trues = (
            [(np.nan, "cyan")] * 2
            if true is None
            else [
                (true["log_mass_msun"], "cyan"),
                (true["log_rh_arcsec"], "cyan"),
            ]
        )
        if outputs is None or "grid_age_av_mass" not in outputs:
            for ax in (ax_map, ax_mass, ax_rh):
                ax.axis("off")
            ax_map.text(0.5, 0.5, "no output grids", ha="center", va="center", fontsize=7)
            continue
        cube = outputs["grid_age_av_mass"][k].astype(np.float64)
        age_av = cube.sum(axis=2)
        ages, avs = grids.log_age_yr, grids.av_mag
        da, de = np.diff(ages).mean() / 2, np.diff(avs).mean() / 2
        image = ax_map.imshow(
            age_av.T,
            origin="lower",
            aspect="auto",
            cmap="viridis",
            extent=(ages[0] - da, ages[-1] + da, avs[0] - de, avs[-1] + de),
        )
        ax_map.plot(cand["log_age_yr"], cand["av_mag"], "o", mfc="magenta", mec="k", ms=5)
        if true is not None and np.isfinite(true["log_age_yr"]):
            ax_map.plot(true["log_age_yr"], true["av_mag"], "o", mfc="none", mec="cyan", ms=7)
        ax_map.set_xlabel(r"log$_{10}$(t / yr)", fontsize=7)
        ax_map.set_ylabel(r"$A_V$ (mag)", fontsize=7)
        ax_map.tick_params(labelsize=6)
        cbar = fig.colorbar(image, ax=ax_map, pad=0.02)
        cbar.ax.tick_params(labelsize=5)
        _histogram(
            ax_mass,
            grids.log_mass_msun,
            cube.sum(axis=(0, 1)),
            [derived[0], trues[0]],
            r"log$_{10}$(M / M$_\odot$)",
        )
        _histogram(
            ax_rh,
            grids.log_rh_arcsec,
            outputs["grid_rh"][k],
            [derived[1], trues[1]],
            r"log$_{10}$($r_h$ / arcsec)",
        )
    fig.suptitle(
        f"Top {n} candidates by class, then visibility: {field * pixel_scale_arcsec:.1f}″ cut-outs "
        f"(dashed: the {window_px}-px network window); magenta: catalog values"
        + ("; cyan: matched true cluster" if truth is not None else ""),
        fontsize=9,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.97))
    save_figure(fig, path)
