"""Figures of the artificial-cluster test: recall maps (thesis Fig. 4.3) and class against
visibility of the recovered mocks among all peaks of the original mosaic (Fig. 4.2)."""

from __future__ import annotations

import os
from collections.abc import Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from starclusters.artificial.recall import PAIRS
from starclusters.detect.matching_plots import VISIBILITY_RANGE
from starclusters.plotting import save_figure

_LABELS = {
    "log_age_yr": r"log$_{10}$(t / yr)",
    "log_mass_msun": r"log$_{10}$(M / M$_\odot$)",
    "av_mag": r"$A_V$ (mag)",
    "x_px": "x (px)",
    "y_px": "y (px)",
}
_REGION_TITLES = {"all": "all mocks", "on_arm": "on the spiral arms", "off_arm": "off the arms"}


def _grid(rows: pd.DataFrame, value: str = "recall") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x edges, y edges, (ny, nx) values) of one kind/region/radius block of the long table."""
    x_edges = np.unique(np.r_[rows["x_lo"], rows["x_hi"]])
    y_edges = np.unique(np.r_[rows["y_lo"], rows["y_hi"]])
    image = np.full((len(y_edges) - 1, len(x_edges) - 1), np.nan)
    ix = np.searchsorted(x_edges, rows["x_lo"].to_numpy(float))
    iy = np.searchsorted(y_edges, rows["y_lo"].to_numpy(float))
    image[iy, ix] = rows[value].to_numpy(float)
    return x_edges, y_edges, image


def _recall_image(ax, rows: pd.DataFrame, annotate: bool = True):
    """Draw recall in its bins (black where nothing was injected, as the thesis); the mesh."""
    x_edges, y_edges, recall = _grid(rows)
    _, _, counts = _grid(rows, "n_injected")
    ax.set_facecolor("black")
    mesh = ax.pcolormesh(
        x_edges, y_edges, np.ma.masked_invalid(recall), cmap="viridis", vmin=0, vmax=1
    )
    if annotate and recall.size <= 400:
        xc, yc = 0.5 * (x_edges[1:] + x_edges[:-1]), 0.5 * (y_edges[1:] + y_edges[:-1])
        for j, y in enumerate(yc):
            for i, x in enumerate(xc):
                if counts[j, i] > 0:
                    colour = "w" if recall[j, i] < 0.6 else "k"
                    label = f"{int(counts[j, i])}"
                    ax.text(x, y, label, ha="center", va="center", fontsize=6, color=colour)
    return mesh


def plot_recall_map(
    recall: pd.DataFrame,
    matches: pd.DataFrame,
    shape: Sequence[int],
    radius_px: float,
    max_log_mass_msun: float,
    path: str | os.PathLike,
) -> None:
    """Fig. 4.3a: recall of the mocks below ``max_log_mass_msun`` per spatial bin of the mosaic,
    with the arm regions (``on_arm`` of the mocks, which sit on a regular grid) outlined in white.

    recall: the long table of :func:`~starclusters.artificial.recall.recall_table`; matches:
    the match table (x_px, y_px, on_arm); shape: (H, W) of the mosaic, px.
    """
    rows = recall[
        (recall["kind"] == "spatial")
        & (recall["region"] == "all")
        & (recall["radius_px"] == float(radius_px))
    ]
    height, width = (int(v) for v in shape)
    fig, ax = plt.subplots(figsize=(7, 7 * height / max(width, 1) + 0.6))
    mesh = _recall_image(ax, rows)
    fig.colorbar(mesh, ax=ax, label=f"recall (≤ {radius_px:g} px)", shrink=0.8)
    if "on_arm" in matches and matches["on_arm"].any() and len(matches) > 3:
        xs, ys = np.unique(matches["x_px"]), np.unique(matches["y_px"])
        if len(xs) > 1 and len(ys) > 1:
            on = np.zeros((len(ys), len(xs)))
            on[np.searchsorted(ys, matches["y_px"]), np.searchsorted(xs, matches["x_px"])] = (
                matches["on_arm"].to_numpy(float)
            )
            ax.contour(xs, ys, on, levels=[0.5], colors="white", linewidths=1.2)
    found = matches[f"recovered_{float(radius_px):g}px"].to_numpy(bool)
    light = matches["log_mass_msun"].to_numpy(float) < max_log_mass_msun
    for hit, marker, colour, label in (
        (True, "o", "white", "recovered"),
        (False, "x", "tab:red", "missed"),
    ):
        shown = matches[light & (found == hit)]
        ax.scatter(shown["x_px"], shown["y_px"], s=6, marker=marker, c=colour, lw=0.6, label=label)
    ax.legend(fontsize=7, loc="upper right", framealpha=0.5)
    ax.set(xlim=(0, width), ylim=(0, height), aspect="equal", xlabel="x (px)", ylabel="y (px)")
    n = int(rows["n_injected"].sum())
    k = int(rows["n_recovered"].sum())
    ax.set_title(
        f"Recall of mocks with log M < {max_log_mass_msun:g}: {k} / {n} "
        f"(numbers: mocks per bin; white: spiral arms)",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, path)


def plot_recall_parameters(recall: pd.DataFrame, radius_px: float, path: str | os.PathLike) -> None:
    """Figs. 4.3b–g: recall against age–mass, age–A_V and mass–A_V, on the arms (top) and off
    them (bottom), or for all mocks when the galaxy has no arms; black bins are empty."""
    regions = [r for r in ("on_arm", "off_arm") if (recall["region"] == r).any()] or ["all"]
    fig, axes = plt.subplots(
        len(regions),
        len(PAIRS),
        figsize=(4.6 * len(PAIRS), 4.1 * len(regions)),
        squeeze=False,
        layout="constrained",
    )
    mesh = None
    for r, region in enumerate(regions):
        for c, (kind, (xp, yp)) in enumerate(PAIRS.items()):
            ax = axes[r, c]
            rows = recall[
                (recall["kind"] == kind)
                & (recall["region"] == region)
                & (recall["radius_px"] == float(radius_px))
            ]
            mesh = _recall_image(ax, rows)
            n = int(rows["n_injected"].sum())
            k = int(rows["n_recovered"].sum())
            ax.set(xlabel=_LABELS[xp], ylabel=_LABELS[yp])
            ax.set_title(f"{_REGION_TITLES[region]}: {k} / {n} recovered", fontsize=9)
    fig.colorbar(mesh, ax=axes, label=f"recall (≤ {radius_px:g} px)", shrink=0.8)
    fig.suptitle("Recall of artificial clusters (numbers: mocks per bin; black: none)")
    save_figure(fig, path)


def plot_class_visibility(
    matches: pd.DataFrame,
    peaks: pd.DataFrame,
    thresholds: tuple[float, float],
    radii_px: Sequence[float],
    path: str | os.PathLike,
) -> None:
    """Fig. 4.2: class against visibility of every peak of the original mosaic (grey), of the
    peaks on injected mocks within the largest radius (black) and within the primary one
    (blue), with log-count histograms of each axis and the thresholds (dashed red: class and
    visibility; dotted red: visibility ± 0.5, as the thesis' 2 and 3 around 2.5).

    matches: :func:`~starclusters.artificial.matching.match_artificial`'s table (peak_class,
    peak_visibility, peak_distance_px); peaks: the original mosaic's ``detect/peaks.parquet``.
    """
    class_threshold, visibility_threshold = thresholds
    primary, widest = float(radii_px[0]), float(max(radii_px))
    distance = matches["peak_distance_px"].to_numpy(float)
    samples = [
        (
            np.clip(peaks["visibility"].to_numpy(float), *VISIBILITY_RANGE),
            peaks["class"].to_numpy(float),
            "0.65",
            2,
            f"original mosaic: {len(peaks)} peaks",
        ),
    ]
    for radius, colour, size in ((widest, "black", 5), (primary, "tab:blue", 5)):
        on = distance <= radius
        samples.append(
            (
                np.clip(matches["peak_visibility"].to_numpy(float)[on], *VISIBILITY_RANGE),
                matches["peak_class"].to_numpy(float)[on],
                colour,
                size,
                f"mocks, a peak ≤ {radius:g} px: {int(on.sum())} of {len(matches)}",
            )
        )
    fig = plt.figure(figsize=(8, 7))
    grid = fig.add_gridspec(
        2, 2, width_ratios=(4, 1), height_ratios=(1, 4), wspace=0.05, hspace=0.05
    )
    ax = fig.add_subplot(grid[1, 0])
    top = fig.add_subplot(grid[0, 0], sharex=ax)
    right = fig.add_subplot(grid[1, 1], sharey=ax)
    vis_edges = np.logspace(np.log10(VISIBILITY_RANGE[0]), np.log10(VISIBILITY_RANGE[1]), 41)
    class_edges = np.linspace(0, 1, 41)
    for vis, cls, colour, size, label in samples:
        finite = np.isfinite(vis) & np.isfinite(cls)
        ax.scatter(vis[finite], cls[finite], s=size, c=colour, label=label, lw=0)
        if finite.any():
            top.hist(vis[finite], bins=vis_edges, histtype="step", color=colour, log=True)
            right.hist(
                cls[finite],
                bins=class_edges,
                histtype="step",
                color=colour,
                log=True,
                orientation="horizontal",
            )
    for axis in (ax, right):
        axis.axhline(class_threshold, color="tab:red", ls="--", lw=1)
    for axis in (ax, top):
        axis.axvline(visibility_threshold, color="tab:red", ls="--", lw=1)
        for offset in (-0.5, 0.5):
            if visibility_threshold + offset > 0:
                axis.axvline(visibility_threshold + offset, color="tab:red", ls=":", lw=0.8)
    ax.set(xscale="log", xlim=VISIBILITY_RANGE, ylim=(-0.02, 1.02))
    ax.set(xlabel="visibility (clipped to the axis)", ylabel=r"class$_{c/b}$")
    ax.legend(fontsize=7, loc="lower right")
    top.set_ylabel("count")
    right.set_xlabel("count")
    plt.setp(top.get_xticklabels(), visible=False)
    plt.setp(right.get_yticklabels(), visible=False)
    top.set_title(
        f"Peaks of the original mosaic and of injected mocks (thresholds: class > "
        f"{class_threshold:g}, visibility > {visibility_threshold:g})",
        fontsize=9,
    )
    save_figure(fig, path)
