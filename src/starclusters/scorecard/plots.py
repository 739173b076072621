"""Scorecard figures from the long table of many galaxies × methods (:func:`.score.to_long`).

Each method keeps one colour in every figure; the training galaxy is drawn with a star,
validation galaxies with circles; "validation mean ± spread" is the mean and the
standard deviation over the validation galaxies. Galaxies without truth and methods
that found nothing give empty panels or NaN points, never an error.

- :func:`plot_recall_visibility`: recall per visibility bin, a panel per galaxy and one
  for the validation mean ± spread;
- :func:`plot_parameters`: median bias (± 68 % half-width) and 95 % bound of |error|
  per parameter, method and galaxy (clusters with visibility > 2.5);
- :func:`plot_age_mass_recall`: recall in the (log t, log M) plane per method, the
  validation galaxies pooled;
- :func:`plot_summary`: precision vs recall (visibility > 2.5) per method and galaxy.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from starclusters.plotting import save_figure
from starclusters.scorecard.diagnose import DETECTED, FALSE_KINDS, MISS_REASONS
from starclusters.scorecard.score import PARAMETERS

#: Axis labels of the scored parameters (errors derived − true).
PARAMETER_LABELS = {
    "log_age_yr": r"log$_{10}$(t / yr)",
    "log_mass_msun": r"log$_{10}$(M / M$_\odot$)",
    "av_mag": r"$A_V$",
    "log_rh_arcsec": r"log$_{10}$($r_h$ / arcsec)",
}
VALIDATION_PANEL = "validation mean ± spread"


def _methods(long: pd.DataFrame) -> list[str]:
    return list(dict.fromkeys(long["method"].astype(str)))


def _colours(methods) -> dict[str, tuple]:
    cycle = plt.get_cmap("tab10").colors
    return {m: cycle[i % len(cycle)] for i, m in enumerate(methods)}


def _galaxies(long: pd.DataFrame) -> list[tuple[str, str]]:
    """(galaxy, role) in order of appearance, training galaxies first."""
    pairs = list(dict.fromkeys(zip(long["galaxy"].astype(str), long["role"], strict=True)))
    return sorted(pairs, key=lambda p: p[1] != "training")


def _no_data(path, message: str) -> None:
    fig, ax = plt.subplots(figsize=(5, 3))
    ax.text(0.5, 0.5, message, ha="center", va="center", transform=ax.transAxes)
    ax.set_axis_off()
    save_figure(fig, path)


def _yerr(value, lower, upper) -> np.ndarray:
    """(2, N) non-negative error-bar lengths (NaN stays NaN)."""
    v, lo, hi = (np.asarray(a, float) for a in (value, lower, upper))
    with np.errstate(invalid="ignore"):
        return np.vstack([np.maximum(v - lo, 0.0), np.maximum(hi - v, 0.0)])


def _mean_std(values: np.ndarray) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    mean = float(finite.mean()) if finite.size else np.nan
    std = float(finite.std(ddof=1)) if finite.size > 1 else (0.0 if finite.size else np.nan)
    return mean, std


def _bin_label(lo: float, hi: float) -> str:
    return f"≥ {lo:g}" if hi >= 1e8 else f"{lo:g}–{hi:g}"


def _grid(n_panels: int, ncols: int = 4, size=(4.2, 3.4)):
    ncols = max(1, min(ncols, n_panels))
    nrows = int(np.ceil(n_panels / ncols))
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(size[0] * ncols, size[1] * nrows), squeeze=False
    )
    for ax in axes.flat[n_panels:]:
        ax.set_axis_off()
    return fig, axes.flat[:n_panels]


def plot_recall_visibility(long_table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Recall vs true visibility bin (thesis eq. 3.2), one panel per galaxy and one for the
    validation mean ± spread; each method a coloured line with Wilson 68 % intervals."""
    table = long_table[long_table["table"] == "recall_visibility"]
    if table.empty:
        _no_data(path, "no recall-vs-visibility rows to plot")
        return
    methods = _methods(table)
    colours = _colours(methods)
    bins = table[["bin_lo", "bin_hi"]].drop_duplicates().sort_values("bin_lo")
    edges = list(zip(bins["bin_lo"], bins["bin_hi"], strict=True))
    position = {edge: i for i, edge in enumerate(edges)}
    galaxies = _galaxies(table)
    has_validation = any(role == "validation" for _, role in galaxies)
    panels = [*galaxies, (VALIDATION_PANEL, "validation")] if has_validation else galaxies
    fig, axes = _grid(len(panels))
    offsets = np.linspace(-0.15, 0.15, len(methods)) if len(methods) > 1 else [0.0]
    for ax, (galaxy, role) in zip(axes, panels, strict=True):
        drawn = False
        for method, offset in zip(methods, offsets, strict=True):
            rows = table[table["method"] == method]
            if galaxy == VALIDATION_PANEL:
                rows = rows[rows["role"] == "validation"]
                x, y, err = [], [], []
                for edge, part in rows.groupby(["bin_lo", "bin_hi"], sort=True):
                    mean, std = _mean_std(part["value"].to_numpy(float))
                    x.append(position[edge])
                    y.append(mean)
                    err.append(std)
                x, y, yerr = np.asarray(x, float), np.asarray(y, float), np.asarray(err, float)
            else:
                rows = rows[rows["galaxy"] == galaxy].sort_values("bin_lo")
                x = np.array(
                    [position[e] for e in zip(rows["bin_lo"], rows["bin_hi"], strict=True)]
                )
                x = x.astype(float)
                y = rows["value"].to_numpy(float)
                yerr = _yerr(y, rows["lower"], rows["upper"])
            if np.isfinite(y).any():
                drawn = True
            ax.errorbar(
                x + offset,
                y,
                yerr=yerr,
                fmt="o-",
                ms=4,
                lw=1.2,
                capsize=2,
                color=colours[method],
                label=method,
            )
        n_truth = table.loc[
            (table["galaxy"] == galaxy) & (table["method"] == methods[0]), "n"
        ].sum()
        title = (
            VALIDATION_PANEL
            if galaxy == VALIDATION_PANEL
            else f"{galaxy} ({role}, n = {int(n_truth)})"
        )
        ax.set_title(title, fontsize=9)
        threshold = [i for i, (lo, _) in enumerate(edges) if lo == 2.5]
        if threshold:
            ax.axvline(threshold[0] - 0.5, color="0.5", ls="--", lw=0.8)
        if not drawn:
            ax.text(
                0.5, 0.5, "no truth", ha="center", va="center", transform=ax.transAxes, color="0.4"
            )
        ax.set_xticks(range(len(edges)), [_bin_label(lo, hi) for lo, hi in edges], fontsize=7)
        ax.set(xlim=(-0.5, len(edges) - 0.5), ylim=(-0.03, 1.05))
        ax.set(xlabel="true visibility (eq. 3.2)", ylabel="recall (≤ 3 px match)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7, loc="lower right", title="method", title_fontsize=7)
    fig.suptitle("Recall vs visibility (bars: Wilson 68 % / spread over galaxies)", fontsize=10)
    fig.tight_layout()
    save_figure(fig, path)


def plot_parameters(long_table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Per parameter: median bias (derived − true, ± 68 % half-width) and the 95 % bound
    of |error| per method (x) and galaxy (offset markers; training = star), over the
    matched clusters with visibility > 2.5; black bars: validation mean ± spread."""
    table = long_table[
        (long_table["table"] == "parameters") & (long_table["selection"] == "visible")
    ]
    if table.empty:
        _no_data(path, "no parameter-error rows to plot")
        return
    methods = _methods(table)
    colours = _colours(methods)
    galaxies = _galaxies(table)
    width = 0.6 / max(len(galaxies), 1)
    fig, axes = plt.subplots(2, len(PARAMETERS), figsize=(4.2 * len(PARAMETERS), 7.0))
    for column, (parameter, unit) in enumerate(PARAMETERS.items()):
        rows = table[table["parameter"] == parameter]
        for row_index, metric in enumerate(("median_bias", "bound95_abs")):
            ax = axes[row_index, column]
            for m, method in enumerate(methods):
                mine = rows[rows["method"] == method]
                for g, (galaxy, role) in enumerate(galaxies):
                    part = mine[mine["galaxy"] == galaxy]
                    value = part.loc[part["metric"] == metric, "value"].to_numpy(float)
                    if value.size == 0:
                        continue
                    x = m + (g - (len(galaxies) - 1) / 2) * width
                    yerr = None
                    if metric == "median_bias":
                        yerr = part.loc[part["metric"] == "scatter68", "value"].to_numpy(float)
                        yerr = yerr[:1] if yerr.size else None
                    training = role == "training"
                    ax.errorbar(
                        [x],
                        value[:1],
                        yerr=yerr,
                        fmt="*" if training else "o",
                        ms=10 if training else 5,
                        color=colours[method],
                        capsize=2,
                        mec="k" if training else colours[method],
                        lw=1,
                    )
                valid = mine[(mine["role"] == "validation") & (mine["metric"] == metric)]
                if len(valid):
                    mean, std = _mean_std(valid["value"].to_numpy(float))
                    ax.errorbar(
                        [m + 0.4], [mean], yerr=[std], fmt="_", ms=12, color="k", capsize=3, lw=1.5
                    )
            if metric == "median_bias":
                ax.axhline(0.0, color="0.5", lw=0.8)
                ylabel = f"median bias ({unit}) ± 68 % half-width"
            else:
                ax.set_ylim(bottom=0.0)
                ylabel = f"95 % bound of |error| ({unit})"
            ax.set_xticks(range(len(methods)), methods, rotation=20, fontsize=8)
            ax.set_xlim(-0.6, len(methods) - 0.4)
            ax.set_ylabel(ylabel, fontsize=8)
            ax.set_title(PARAMETER_LABELS[parameter] + ": derived − true", fontsize=9)
            ax.grid(alpha=0.3, axis="y")
    handles = [
        plt.Line2D([], [], ls="", marker="s", color=colours[m], label=m) for m in methods
    ] + [
        plt.Line2D([], [], ls="", marker="*", ms=10, color="0.6", mec="k", label="training galaxy"),
        plt.Line2D([], [], ls="", marker="o", color="0.6", label="validation galaxy"),
        plt.Line2D([], [], ls="", marker="_", ms=12, color="k", label=r"validation mean ± spread"),
    ]
    fig.legend(handles=handles, loc="lower center", ncol=min(len(handles), 6), fontsize=8)
    fig.suptitle("Parameter errors of matched clusters with visibility > 2.5", fontsize=10)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    save_figure(fig, path)


def _pooled_age_mass(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(age edges, mass edges, n, k) of the rows, n and k summed over galaxies: (A, M)."""
    age = np.unique(np.concatenate([rows["bin_lo"], rows["bin_hi"]]).astype(float))
    mass = np.unique(np.concatenate([rows["bin2_lo"], rows["bin2_hi"]]).astype(float))
    n = np.zeros((len(age) - 1, len(mass) - 1))
    k = np.zeros_like(n)
    i = np.searchsorted(age, rows["bin_lo"].to_numpy(float))
    j = np.searchsorted(mass, rows["bin2_lo"].to_numpy(float))
    np.add.at(n, (i, j), rows["n"].fillna(0).to_numpy(float))
    np.add.at(k, (i, j), rows["n_detected"].fillna(0).to_numpy(float))
    return age, mass, n, k


def plot_age_mass_recall(long_table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Recall in the (log t, log M) plane per method: the validation galaxies pooled by
    summing n and n_detected per bin (all galaxies when there is no validation galaxy);
    cells labelled n_detected / n, blank where nothing was there."""
    table = long_table[long_table["table"] == "recall_age_mass"]
    if table.empty:
        _no_data(path, "no age–mass recall rows to plot")
        return
    pooled = table[table["role"] == "validation"]
    what = "validation galaxies pooled"
    if pooled.empty:
        pooled, what = table, "all galaxies pooled"
    n_galaxies = pooled["galaxy"].nunique()
    methods = _methods(pooled)
    fig, axes = _grid(len(methods), ncols=3, size=(5.0, 4.0))
    mesh = None
    for ax, method in zip(axes, methods, strict=True):
        age, mass, n, k = _pooled_age_mass(pooled[pooled["method"] == method])
        with np.errstate(invalid="ignore", divide="ignore"):
            recall = np.where(n > 0, k / n, np.nan)
        mesh = ax.pcolormesh(age, mass, recall.T, cmap="viridis", vmin=0.0, vmax=1.0)
        for i in range(n.shape[0]):
            for j in range(n.shape[1]):
                if n[i, j] > 0:
                    colour = "k" if recall[i, j] > 0.6 else "w"
                    ax.text(
                        (age[i] + age[i + 1]) / 2,
                        (mass[j] + mass[j + 1]) / 2,
                        f"{int(k[i, j])}/{int(n[i, j])}",
                        ha="center",
                        va="center",
                        fontsize=6,
                        color=colour,
                    )
        if not (n > 0).any():
            ax.text(
                0.5, 0.5, "no truth in these bins", ha="center", va="center", transform=ax.transAxes
            )
        ax.set(xlabel=r"true log$_{10}$(t / yr)", ylabel=r"true log$_{10}$(M / M$_\odot$)")
        ax.set_title(f"{method} ({what}, {n_galaxies})", fontsize=9)
    fig.subplots_adjust(wspace=0.35, hspace=0.35)
    fig.colorbar(mesh, ax=list(axes), label="recall (≤ 3 px match)", shrink=0.9)
    save_figure(fig, path)


def plot_summary(long_table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Precision vs recall of the clusters with visibility > 2.5, per method (colour) and
    galaxy (training = star), with the validation mean ± spread as a square with error
    bars."""
    table = long_table[long_table["table"] == "summary"]
    table = table[table["metric"].isin(["precision", "recall_visible"])]
    if table.empty:
        _no_data(path, "no summary rows to plot")
        return
    methods = _methods(table)
    colours = _colours(methods)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    for method in methods:
        colour = colours[method]
        mine = table[table["method"] == method]
        valid_x, valid_y = [], []
        for galaxy, role in _galaxies(mine):
            part = mine[mine["galaxy"] == galaxy].set_index("metric")
            got = {
                m: part.loc[m, ["value", "lower", "upper"]].to_numpy(float)
                if m in part.index
                else np.full(3, np.nan)
                for m in ("recall_visible", "precision")
            }
            (x, *x_interval), (y, *y_interval) = got["recall_visible"], got["precision"]
            training = role == "training"
            ax.errorbar(
                [x],
                [y],
                xerr=_yerr(x, *x_interval),
                yerr=_yerr(y, *y_interval),
                fmt="*" if training else "o",
                ms=11 if training else 5,
                color=colour,
                mec="k" if training else colour,
                lw=0.6,
                alpha=0.8,
            )
            if np.isfinite(x) and np.isfinite(y):
                ax.annotate(galaxy, (x, y), fontsize=6, xytext=(3, 3), textcoords="offset points")
            if not training:
                valid_x.append(x)
                valid_y.append(y)
        if valid_x:
            mx, sx = _mean_std(np.asarray(valid_x, float))
            my, sy = _mean_std(np.asarray(valid_y, float))
            ax.errorbar(
                [mx],
                [my],
                xerr=[sx],
                yerr=[sy],
                fmt="s",
                ms=8,
                color=colour,
                mec="k",
                capsize=4,
                lw=1.8,
            )
    handles = [
        plt.Line2D([], [], ls="", marker="s", color=colours[m], mec="k", label=m) for m in methods
    ] + [
        plt.Line2D([], [], ls="", marker="*", ms=10, color="0.6", mec="k", label="training galaxy"),
        plt.Line2D([], [], ls="", marker="o", color="0.6", label="validation galaxy"),
    ]
    ax.legend(
        handles=handles,
        fontsize=7,
        loc="lower left",
        title="square: validation mean ± spread",
        title_fontsize=7,
    )
    ax.set(xlim=(-0.02, 1.05), ylim=(-0.02, 1.05))
    ax.set(
        xlabel="recall of clusters with visibility > 2.5", ylabel="precision (matched / catalog)"
    )
    ax.set_title("Precision vs recall (one-to-one match ≤ 3 px)", fontsize=10)
    ax.grid(alpha=0.3)
    save_figure(fig, path)


#: Colours of the miss reasons and false-candidate kinds (fixed, so figures compare).
DIAGNOSIS_COLOURS = {
    "masked": "0.25",
    "edge": "0.6",
    "blended": "tab:purple",
    "offset": "tab:cyan",
    "no_peak": "tab:red",
    "class_below": "tab:orange",
    "visibility_below": "gold",
    "other": "black",
    "offset_detection": "tab:cyan",
    "cluster_fragment": "tab:pink",
    "nucleus": "tab:brown",
    "foreground_star": "0.25",
    "background_galaxy": "tab:olive",
    "ob_association": "tab:blue",
    "field_star": "tab:green",
    "noise": "tab:red",
}
#: The visibility bins of the misses' bars, with their short labels.
VISIBLE_SELECTIONS = {"2.5 < visibility <= 5": "2.5–5", "visibility > 5": "> 5"}


def _stacked(ax, x, counts: pd.DataFrame, categories, width: float, labels: bool) -> None:
    """Bars at ``x`` stacked by ``categories`` (columns of ``counts``, rows = bars)."""
    bottom = np.zeros(len(x))
    for category in categories:
        values = counts[category].to_numpy(float)
        ax.bar(
            x,
            values,
            width,
            bottom=bottom,
            color=DIAGNOSIS_COLOURS[category],
            edgecolor="white",
            lw=0.5,
            label=category if labels else None,
        )
        bottom += values


def plot_diagnosis(summary: pd.DataFrame, diagnosis: pd.DataFrame, path: str | os.PathLike) -> None:
    """The network's diagnosis (:mod:`.diagnose`) in three panels.

    (a) the missed clusters with visibility > 2.5 per galaxy, stacked by miss reason, one
    bar for visibility 2.5–5 and one for > 5 (labels: missed / clusters of the bin);
    (b) the false candidates per galaxy stacked by kind (labels: false / candidates);
    (c) the missed clusters in the true (log t, log M) plane coloured by reason, all
    galaxies pooled (training galaxy: stars, validation galaxies: circles; visibility >
    2.5 large, ≤ 2.5 or unknown small), the detected ones grey. summary:
    :func:`.diagnose.summarise` tables of the galaxies; diagnosis: their
    :func:`.diagnose.miss_reasons` tables with galaxy and role columns.
    """
    if summary.empty:
        _no_data(path, "no diagnosis to plot")
        return
    pairs = list(dict.fromkeys(zip(summary["galaxy"], summary["role"], strict=True)))
    galaxies = [g for g, _ in sorted(pairs, key=lambda p: p[1] != "training")]
    roles = dict(pairs)
    fig, axes = plt.subplots(1, 3, figsize=(17.0, 5.4), gridspec_kw={"width_ratios": [1.3, 1, 1.2]})

    # (a) miss reasons of the visible clusters
    ax = axes[0]
    misses = summary[summary["table"] == "miss_reasons"]
    width = 0.38
    for k, (selection, label) in enumerate(VISIBLE_SELECTIONS.items()):
        part = misses[misses["selection"] == selection]
        counts = part.pivot_table(index="galaxy", columns="category", values="count", aggfunc="sum")
        counts = counts.reindex(index=galaxies, columns=list(MISS_REASONS)).fillna(0)
        x = np.arange(len(galaxies)) + (k - 0.5) * (width + 0.04)
        _stacked(ax, x, counts, MISS_REASONS, width, labels=k == 0)
        totals = part.groupby("galaxy")[["n_missed", "n_selection"]].first().reindex(galaxies)
        for xi, (n_missed, n_sel) in zip(x, totals.to_numpy(), strict=True):
            ax.text(
                xi,
                n_missed,
                f"{label}\n{int(n_missed)}/{int(n_sel)}",
                ha="center",
                va="bottom",
                fontsize=6.5,
            )
    ax.set_xticks(range(len(galaxies)), [f"{g}\n({roles[g]})" for g in galaxies], fontsize=7)
    ax.set_ylabel("missed clusters (true visibility > 2.5)")
    ax.set_title("(a) why visible clusters are missed (left: 2.5–5, right: > 5)", fontsize=9)
    top = misses[misses["selection"].isin(list(VISIBLE_SELECTIONS))]["n_missed"].max()
    ax.set_ylim(0, max(float(top), 1.0) * 1.3)
    ax.legend(fontsize=7, title="reason", title_fontsize=7, loc="upper right")
    ax.grid(alpha=0.3, axis="y")

    # (b) false-candidate kinds
    ax = axes[1]
    false = summary[summary["table"] == "false_kinds"]
    counts = false.pivot_table(index="galaxy", columns="category", values="count", aggfunc="sum")
    counts = counts.reindex(index=galaxies, columns=list(FALSE_KINDS)).fillna(0)
    x = np.arange(len(galaxies), dtype=float)
    _stacked(ax, x, counts, FALSE_KINDS, 0.6, labels=True)
    totals = false.groupby("galaxy")[["n_missed", "n_selection"]].first().reindex(galaxies)
    for xi, (n_false, n_cand) in zip(x, totals.to_numpy(), strict=True):
        ax.text(xi, n_false, f"{int(n_false)}/{int(n_cand)}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(galaxies)), [f"{g}\n({roles[g]})" for g in galaxies], fontsize=7)
    ax.set_ylabel("false candidates (matched to no truth cluster)")
    ax.set_title("(b) what the false candidates are (false / all candidates)", fontsize=9)
    ax.set_ylim(0, max(float(false["n_missed"].max()), 1.0) * 1.3)
    ax.legend(fontsize=7, title="kind", title_fontsize=7, loc="upper right")
    ax.grid(alpha=0.3, axis="y")

    # (c) the missed clusters in the age-mass plane
    ax = axes[2]
    visibility = diagnosis["visibility"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        visible = visibility > 2.5
    found = diagnosis["reason"] == DETECTED
    training = (diagnosis["role"] == "training").to_numpy()
    ax.scatter(
        diagnosis.loc[found, "log_age_yr"],
        diagnosis.loc[found, "log_mass_msun"],
        s=5,
        color="0.75",
        lw=0,
        label="detected",
        zorder=1,
    )
    for reason in MISS_REASONS:
        mine = (diagnosis["reason"] == reason).to_numpy()
        for role_mask, marker, big in ((training, "*", 70), (~training, "o", 26)):
            for bright in (True, False):
                chosen = mine & role_mask & (visible == bright)
                if not chosen.any():
                    continue
                ax.scatter(
                    diagnosis.loc[chosen, "log_age_yr"],
                    diagnosis.loc[chosen, "log_mass_msun"],
                    s=big if bright else big / 5,
                    marker=marker,
                    color=DIAGNOSIS_COLOURS[reason],
                    edgecolor="k" if bright else "none",
                    lw=0.4,
                    alpha=1.0 if bright else 0.6,
                    zorder=3 if bright else 2,
                )
    handles = [
        plt.Line2D([], [], ls="", marker="o", color=DIAGNOSIS_COLOURS[r], mec="k", label=r)
        for r in MISS_REASONS
        if (diagnosis["reason"] == r).any()
    ] + [
        plt.Line2D([], [], ls="", marker="o", ms=3, color="0.75", label="detected"),
        plt.Line2D([], [], ls="", marker="*", ms=9, color="w", mec="k", label="training galaxy"),
        plt.Line2D([], [], ls="", marker="o", ms=6, color="w", mec="k", label="validation"),
    ]
    ax.legend(handles=handles, fontsize=6.5, loc="upper left", ncol=2)
    ax.set(xlabel=r"true log$_{10}$(t / yr)", ylabel=r"true log$_{10}$(M / M$_\odot$)")
    ax.set_title("(c) missed clusters (large: visibility > 2.5), all galaxies", fontsize=9)
    ax.grid(alpha=0.3)
    fig.suptitle(
        "The network's misses and false candidates (one-to-one match within the scorer's radius)",
        fontsize=10,
    )
    fig.tight_layout()
    save_figure(fig, path)
