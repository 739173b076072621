"""Figures of the selection function (:mod:`starclusters.artificial.selection`): its
cross-validated calibration and its 50 % and 90 % completeness masses against age (the
fitted counterpart of thesis Fig. 4.3)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from starclusters.artificial.plots import _LABELS
from starclusters.artificial.recall import recall_2d
from starclusters.artificial.selection import SelectionFunction
from starclusters.plotting import save_figure

#: Completeness levels drawn by :func:`plot_selection_contours`, with their colours.
LEVELS = {0.5: "tab:blue", 0.9: "tab:red"}
#: Line styles of successive A_V values.
AV_STYLES = ("-", "--", ":", "-.")


def plot_selection_calibration(
    calibration_table: pd.DataFrame, meta: Mapping, path: str | os.PathLike
) -> None:
    """Reliability diagram of the cross-validated predictions, with their histogram below.

    calibration_table: :func:`~starclusters.artificial.selection.calibration_table`'s (bins of
    predicted P, observed fraction with Wilson ±1σ interval); meta: :func:`fit_selection`'s
    (Brier score and log loss of the predictions and of the base rate, counts).
    """
    table = calibration_table[calibration_table["n"] > 0]
    fig, (ax, hist) = plt.subplots(
        2, 1, figsize=(5.5, 6.5), sharex=True, gridspec_kw={"height_ratios": (3, 1)}
    )
    ax.plot([0, 1], [0, 1], color="0.6", ls="--", lw=1, label="perfect calibration")
    observed = table["observed_fraction"].to_numpy(float)
    bars = np.stack(
        [
            observed - table["observed_lo"].to_numpy(float),
            table["observed_hi"].to_numpy(float) - observed,
        ]
    )
    ax.errorbar(
        table["mean_predicted"],
        observed,
        yerr=bars,
        fmt="o",
        ms=4,
        color="black",
        capsize=2,
        label=(
            f"{meta.get('n_folds', 5)}-fold CV: Brier {meta['brier_cv']:.3f} "
            f"(base rate {meta['brier_base_rate']:.3f}),\nlog loss {meta['log_loss_cv']:.3f} "
            f"(base rate {meta['log_loss_base_rate']:.3f})"
        ),
    )
    ax.set(xlim=(0, 1), ylim=(-0.02, 1.02), ylabel="observed fraction detected (±1σ Wilson)")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title(
        f"Selection function ({meta.get('detected_column', 'detected')}): "
        f"{meta.get('n_detected', '?')} of {meta.get('n_injections', '?')} injections detected",
        fontsize=9,
    )
    lo = calibration_table["p_lo"].to_numpy(float)
    width = calibration_table["p_hi"].to_numpy(float) - lo
    hist.bar(lo, calibration_table["n"], width=width, align="edge", color="0.6", edgecolor="k")
    hist.set(xlabel="predicted P(detected) (cross-validated)", ylabel="injections")
    fig.tight_layout()
    save_figure(fig, path)


def _empirical_image(ax, selection: SelectionFunction, injections: pd.DataFrame, column: str):
    """Binned recall of the injections (all A_V, r_h, background) in age–mass cells two grid
    steps wide (a few injections per single cell would be mostly noise), faint, under the
    lines; the mesh."""
    edges = {}
    for name in ("log_age_yr", "log_mass_msun"):
        nodes = selection.axes[name]
        step = 2 * (np.diff(nodes).min() if nodes.size > 1 else 0.1)
        n_cells = max(1, int(np.ceil((nodes[-1] - nodes[0]) / step - 1e-9)))
        edges[name] = np.linspace(nodes[0], nodes[0] + n_cells * step, n_cells + 1)
    _, _, stats = recall_2d(
        injections["log_age_yr"].to_numpy(float),
        injections["log_mass_msun"].to_numpy(float),
        injections[column].to_numpy(bool),
        edges["log_age_yr"],
        edges["log_mass_msun"],
    )
    return ax.pcolormesh(
        edges["log_age_yr"],
        edges["log_mass_msun"],
        np.ma.masked_invalid(stats["recall"].T),
        cmap="viridis",
        vmin=0,
        vmax=1,
        alpha=0.35,
        lw=0,
    )


def plot_selection_contours(
    selection: SelectionFunction,
    path: str | os.PathLike,
    *,
    av_mag_values: Sequence[float] = (0, 1, 2),
    empirical: pd.DataFrame | None = None,
    detected_column: str | None = None,
) -> None:
    """The log mass at which the fitted completeness reaches 50 % and 90 % against log age.

    One colour per level (:data:`LEVELS`), one line style per A_V of ``av_mag_values``
    (mag), at the injections' median r_h and background. Where a line is missing the level
    is not crossed inside the grid's mass range
    (:meth:`~starclusters.artificial.selection.SelectionFunction.log_mass_at`).
    empirical: the injections table; when given, the binned fraction detected
    (``detected_column``, default the selection's own) of all injections — every A_V, r_h and
    background together — is shown faintly beneath (blank: no injections).
    """
    ages = selection.axes["log_age_yr"]
    fine = np.linspace(ages[0], ages[-1], 4 * (ages.size - 1) + 1) if ages.size > 1 else ages
    masses = selection.axes["log_mass_msun"]
    fig, ax = plt.subplots(figsize=(7, 5))
    if empirical is not None:
        column = detected_column or selection.meta.get("detected_column")
        if column is None or column not in empirical:
            raise ValueError(f"empirical: no detection column {column!r}; pass detected_column")
        mesh = _empirical_image(ax, selection, empirical, column)
        fig.colorbar(mesh, ax=ax, label="fraction detected (all injections)", shrink=0.8)
    for i, av in enumerate(av_mag_values):
        style = AV_STYLES[i % len(AV_STYLES)]
        for level, colour in LEVELS.items():
            mass = selection.log_mass_at(level, fine, av_mag=av)
            ax.plot(
                fine,
                mass,
                color=colour,
                ls=style,
                lw=1.6,
                label=f"{level:.0%}, $A_V$ = {av:g} mag",
            )
    rh = selection.medians["log_rh_arcsec"]
    background = selection.medians["log_background_counts_s"]
    ax.set(
        xlim=(ages[0], ages[-1]),
        ylim=(masses[0], masses[-1]),
        xlabel=_LABELS["log_age_yr"],
        ylabel=_LABELS["log_mass_msun"],
    )
    ax.legend(fontsize=7, loc="lower right", ncol=2)
    ax.set_title(
        f"Completeness of the fitted selection function at $r_h$ = {10**rh:.2g}″, "
        f"background = {10**background:.2g} counts/s/px (medians)",
        fontsize=9,
    )
    fig.tight_layout()
    save_figure(fig, path)
