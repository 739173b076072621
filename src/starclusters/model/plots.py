"""Figures of the network's test on held-out mocks (thesis Figs. 3.10 and 3.12, calibration)."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from starclusters.model.evaluate import (
    CALIBRATED,
    THESIS_BOUND95,
    errors,
    metric,
    star_group_mask,
)
from starclusters.plotting import save_figure

_LABELS = {
    "log_age_yr": r"log$_{10}$(t / yr)",
    "av_mag": r"$A_V$ (mag)",
    "log_mass_msun": r"log$_{10}$(M / M$_\odot$)",
    "log_rh_arcsec": r"log$_{10}$($r_h$ / arcsec)",
    "age_av_mass": "age × A_V × mass (joint)",
    "visibility": "visibility",
}


def _not_inferred(ax, what: str) -> None:
    """An empty panel saying the network does not infer ``what`` (regression network)."""
    ax.text(
        0.5,
        0.5,
        f"{_LABELS.get(what, what)}:\nnot inferred by this network\n"
        "(regression heads, thesis ch. 2)",
        ha="center",
        va="center",
        transform=ax.transAxes,
    )
    ax.set_axis_off()


def plot_parameter_recovery(
    table: pd.DataFrame, metrics: pd.DataFrame, path: str | os.PathLike
) -> None:
    """Thesis Fig. 3.10: true vs derived age, mass, A_V and r_h of the test mocks.

    Log-scaled hexbin densities, the diagonal, dashed lines at ± the 95 % bound of the
    absolute error (and the thesis' M83 bound, dotted), and the mocks whose age error is
    beyond its 95 % bound: red if derived too young, blue if too old.
    """
    mocks = table[table["is_cluster"].to_numpy(bool)]
    age_err = errors(mocks, "log_age_yr")
    age_bound = metric(metrics, "log_age_yr", "bound95_abs")
    too_young = age_err < -age_bound
    too_old = age_err > age_bound
    fig, axes = plt.subplots(2, 2, figsize=(10, 9.5))
    panels = ("log_age_yr", "log_mass_msun", "av_mag", "log_rh_arcsec")
    for ax, name in zip(axes.flat, panels, strict=True):
        true = mocks[f"{name}_true"].to_numpy(float)
        derived = mocks[name].to_numpy(float)
        if not np.isfinite(derived).any():
            _not_inferred(ax, name)
            continue
        lo = float(np.nanmin([true.min(), derived.min()]))
        hi = float(np.nanmax([true.max(), derived.max()]))
        pad = 0.03 * (hi - lo)
        lo, hi = lo - pad, hi + pad
        hb = ax.hexbin(
            true, derived, gridsize=30, extent=(lo, hi, lo, hi), bins="log", cmap="Greys", mincnt=1
        )
        line = np.array([lo, hi])
        ax.plot(line, line, "k-", lw=0.8)
        bound = metric(metrics, name, "bound95_abs")
        for sign in (-1, 1):
            ax.plot(line, line + sign * bound, "k--", lw=1)
            if name in THESIS_BOUND95:
                ax.plot(line, line + sign * THESIS_BOUND95[name], ":", color="tab:green", lw=1)
        ax.scatter(true[too_young], derived[too_young], s=5, c="tab:red", label="age too young")
        ax.scatter(true[too_old], derived[too_old], s=5, c="tab:blue", label="age too old")
        ax.set(
            xlim=(lo, hi),
            ylim=(lo, hi),
            xlabel=f"true {_LABELS[name]}",
            ylabel=f"derived {_LABELS[name]}",
        )
        bias = metric(metrics, name, "median_bias")
        ax.set_title(f"95 % within ±{bound:.2f}, median bias {bias:+.2f}", fontsize=10)
        fig.colorbar(hb, ax=ax, label="mocks per cell")
    handles = [
        plt.Line2D([], [], ls="--", c="k", label="95 % bound (this model)"),
        plt.Line2D([], [], ls=":", c="tab:green", label="95 % bound, thesis M83"),
        plt.Line2D([], [], ls="", marker="o", c="tab:red", label="age beyond bound, too young"),
        plt.Line2D([], [], ls="", marker="o", c="tab:blue", label="age beyond bound, too old"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=4, frameon=False)
    fig.suptitle(f"{len(mocks)} held-out test mocks on test backgrounds")
    fig.tight_layout(rect=(0, 0.04, 1, 0.97))
    save_figure(fig, path)


def plot_class_visibility(
    table: pd.DataFrame, metrics: pd.DataFrame, path: str | os.PathLike
) -> None:
    """Thesis Fig. 3.12: derived class vs derived visibility for mocks and bare backgrounds
    (and star groups, the hard negatives, when the table has them).

    Marginal histograms (log counts) of class on top and visibility on the right; top
    right: true vs derived visibility of the mocks with the 95 % bounds. The thesis'
    catalogue cut (class 0.95, visibility 2.5, dashed) and the one derived from this test
    (dotted, :mod:`~starclusters.model.thresholds`) bound the windows a catalogue keeps.
    """
    is_cl = table["is_cluster"].to_numpy(bool)
    is_group = star_group_mask(table)
    p = table["p_cluster"].to_numpy(float)
    vis = np.clip(table["visibility"].to_numpy(float), 1e-3, None)
    if np.isnan(p).all():
        fig, ax = plt.subplots(figsize=(6, 4))
        _not_inferred(ax, "class and visibility")
        save_figure(fig, path)
        return
    fig = plt.figure(figsize=(9, 8.5))
    grid = fig.add_gridspec(2, 2, width_ratios=(3, 1.2), height_ratios=(1.2, 3))
    ax = fig.add_subplot(grid[1, 0])
    ax_top = fig.add_subplot(grid[0, 0], sharex=ax)
    ax_right = fig.add_subplot(grid[1, 1], sharey=ax)
    ax_vis = fig.add_subplot(grid[0, 1])
    styles = [(~is_cl & ~is_group, "0.5", "test backgrounds"), (is_cl, "tab:red", "test mocks")]
    if is_group.any():
        styles.append((is_group, "tab:blue", "test star groups"))
    for sel, colour, label in styles:
        ax.scatter(p[sel], vis[sel], s=4, c=colour, alpha=0.5, label=f"{label} ({sel.sum()})")
        ax_top.hist(p[sel], bins=np.linspace(0, 1, 26), color=colour, histtype="step", log=True)
        ax_right.hist(
            vis[sel],
            bins=np.logspace(-3, 3, 31),
            color=colour,
            histtype="step",
            log=True,
            orientation="horizontal",
        )
    ax.set(yscale="log", xlabel="derived class (p cluster)", ylabel="derived visibility")
    ax.set_xlim(-0.02, 1.02)
    top = 3 * max(float(np.nanmax(vis)), 10.0)
    for subset, style in (("thesis", "--"), ("derived", ":")):
        c = metric(metrics, "thresholds", "class_threshold", subset)
        v = metric(metrics, "thresholds", "visibility_threshold", subset)
        j = metric(metrics, "thresholds", "youden_j", subset)
        if np.isfinite(c) and np.isfinite(v):  # the catalogue's cut: the box to the upper right
            ax.plot([c, c, 1.02], [top, v, v], "k" + style, lw=1.2)
            ax.plot([], [], "k" + style, label=f"{subset} cut ({c:.3g}, {v:.3g}), J {j:.3f}")
    auc = metric(metrics, "class", "roc_auc")
    ax.legend(loc="lower right", title=f"ROC AUC {auc:.3f}", markerscale=3)
    ax_top.set_ylabel("windows")
    ax_right.set_xlabel("windows")
    plt.setp(ax_top.get_xticklabels(), visible=False)
    plt.setp(ax_right.get_yticklabels(), visible=False)
    true_vis = np.clip(table.loc[is_cl, "visibility_true"].to_numpy(float), 1e-3, None)
    if is_cl.any():
        ax_vis.hexbin(
            np.log10(true_vis), np.log10(vis[is_cl]), gridsize=20, bins="log", cmap="Reds", mincnt=1
        )
        line = np.array([np.log10(true_vis).min(), np.log10(true_vis).max()])
        bound = metric(metrics, "log_visibility", "bound95_abs")
        ax_vis.plot(line, line, "k-", lw=0.8)
        for sign in (-1, 1):
            ax_vis.plot(line, line + sign * bound, "k--", lw=1)
    ax_vis.set(xlabel="log true visibility", ylabel="log derived visibility")
    ax_vis.set_title("mocks", fontsize=9)
    fig.tight_layout()
    save_figure(fig, path)


def plot_calibration(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Coverage of the highest-probability regions of each output grid against their level.

    A calibrated grid follows the diagonal (slightly above it: the truth's own bin counts
    whole); below it the network is over-confident, above it under-confident.
    """
    mocks = table[table["is_cluster"].to_numpy(bool)]
    alpha = np.linspace(0, 1, 101)
    fig, ax = plt.subplots(figsize=(6, 5.5))
    if all(mocks[f"hpd_level_{grid}"].isna().all() for grid in CALIBRATED):
        _not_inferred(ax, "probability grids")
        save_figure(fig, path)
        return
    for grid in CALIBRATED:
        level = mocks[f"hpd_level_{grid}"].to_numpy(float)
        level = level[np.isfinite(level)]
        if level.size == 0:
            continue
        coverage = (level[None, :] < alpha[:, None]).mean(axis=1)
        style = "-" if grid == "age_av_mass" else "--"
        ax.plot(alpha, coverage, style, label=_LABELS[grid])
    ax.plot([0, 1], [0, 1], "k:", lw=1, label="calibrated")
    for level in (0.68, 0.95):
        ax.axvline(level, color="0.8", lw=0.8, zorder=0)
    ax.set(
        xlabel="probability of the highest-density region",
        ylabel="fraction of test mocks with the truth inside",
        xlim=(0, 1),
        ylim=(0, 1.01),
    )
    ax.set_title(f"calibration of the output grids ({len(mocks)} test mocks)")
    ax.legend(loc="lower right", fontsize=8)
    save_figure(fig, path)
