"""Figures of the population analysis (thesis Figs. 4.5–4.9, 3.15/3.17).

Every function writes one PNG atomically (:func:`starclusters.plotting.save_figure`)
and draws a readable figure for any number of candidates: panels without data say so
instead of failing.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from starclusters.analysis.comparison import COMPARED
from starclusters.analysis.mass_function import MassFunctionFit
from starclusters.analysis.population import AgeGroup, running_statistics
from starclusters.plotting import save_figure

LABELS = {
    "log_age_yr": r"log$_{10}$(t / yr)",
    "log_mass_msun": r"log$_{10}$(M / M$_\odot$)",
    "av_mag": r"$A_V$ (mag)",
    "log_rh_pc": r"log$_{10}$($r_h$ / pc)",
    "log_density_msun_pc3": r"log$_{10}$($\rho_h$ / M$_\odot$ pc$^{-3}$)",
    "galactocentric_kpc": "galactocentric distance (kpc)",
    "arm_distance_kpc": "distance from the dust lane (kpc; + leading)",
}
#: Colour range of ages, log10 yr (thesis: blue 6.6 to red ≥ 9).
AGE_RANGE_LOG_YR = (6.6, 9.0)
AGE_CMAP = "jet"
#: Line colours of successive age groups (young to old), as the thesis' blue/orange/red.
GROUP_COLOURS = ("tab:blue", "tab:orange", "tab:red", "tab:purple", "tab:brown")


def no_data(ax, text: str = "no candidates") -> None:
    """Say in the middle of ``ax`` that there is nothing to show."""
    ax.text(0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", color="0.4")


def with_log_rh_pc(candidates: pd.DataFrame) -> pd.DataFrame:
    """The candidate columns the figures use, with log_rh_pc from rh_pc (pc)."""
    out = candidates.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_rh_pc"] = np.log10(out["rh_pc"].to_numpy(float))
    return out


def _age_scatter(ax, x, y, log_age, size: float = 9):
    return ax.scatter(
        x, y, c=log_age, s=size, cmap=AGE_CMAP, vmin=AGE_RANGE_LOG_YR[0], vmax=AGE_RANGE_LOG_YR[1]
    )


def plot_parameter_pairs(candidates: pd.DataFrame, path: str | os.PathLike) -> None:
    """Thesis Fig. 4.5: mass, A_V and size against age; A_V and size against mass and size
    against A_V coloured by age, with lines of constant half-mass density in the size–mass
    panel."""
    c = with_log_rh_pc(candidates)
    pairs = [
        ("log_age_yr", "log_mass_msun"),
        ("log_age_yr", "av_mag"),
        ("log_age_yr", "log_rh_pc"),
        ("log_mass_msun", "av_mag"),
        ("log_mass_msun", "log_rh_pc"),
        ("av_mag", "log_rh_pc"),
    ]
    fig, axes = plt.subplots(2, 3, figsize=(13, 8), layout="constrained")
    mappable = None
    for k, (ax, (x, y)) in enumerate(zip(axes.flat, pairs, strict=True)):
        ax.set_xlabel(LABELS[x])
        ax.set_ylabel(LABELS[y])
        ax.set_title(f"{'abcdef'[k]})", loc="left")
        if len(c) == 0:
            no_data(ax)
            continue
        if k < 3:
            ax.scatter(c[x], c[y], s=6, color="0.25", alpha=0.6)
        else:
            mappable = _age_scatter(ax, c[x], c[y], c["log_age_yr"])
        if (x, y) == ("log_mass_msun", "log_rh_pc"):
            m = np.linspace(np.nanmin(c[x]) - 0.2, np.nanmax(c[x]) + 0.2, 10)
            for log_rho in range(0, 5):  # ρ_h = 3M/(8π r³) solved for r at fixed ρ_h
                r = (m + np.log10(3.0 / (8.0 * np.pi)) - log_rho) / 3.0
                ax.plot(m, r, ls=":", lw=0.8, color="0.5")
                ax.annotate(f"$10^{log_rho}$", (m[-1], r[-1]), fontsize=7, color="0.4")
    if mappable is not None:
        fig.colorbar(mappable, ax=axes[1, :], label=LABELS["log_age_yr"], shrink=0.8)
    fig.suptitle(f"Parameters of {len(c)} candidates")
    save_figure(fig, path)


def _step_hist(ax, values, bins, **kwargs):
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if v.size:
        ax.hist(v, bins=bins, **kwargs)


def plot_histograms(
    candidates: pd.DataFrame,
    fits: Mapping[str, MassFunctionFit],
    mass_max_log_age_yr: float,
    young: AgeGroup,
    old: AgeGroup,
    path: str | os.PathLike,
    mass_bin_dex: float = 0.1,
) -> None:
    """Thesis Fig. 4.6: mass (a), size (b) and density (c) histograms.

    a) all candidates (grey) and those younger than ``mass_max_log_age_yr`` (circles) with
    the mass-function fits (expected counts per bin; the fixed-slope Schechter fit with its
    1σ Poisson band) over their range; b, c) all, ``young`` and ``old`` candidates.
    fits: label -> fit of the young sample (:mod:`starclusters.analysis.mass_function`).
    """
    c = with_log_rh_pc(candidates)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.3), layout="constrained")
    ax = axes[0]
    ax.set_xlabel(LABELS["log_mass_msun"])
    ax.set_ylabel(f"clusters per {mass_bin_dex:g} dex")
    ax.set_yscale("log")
    ax.set_title("a) mass", loc="left")
    fitted = [f for f in fits.values() if f.n > 0]
    masses = c["log_mass_msun"].to_numpy(float) if len(c) else np.zeros(0)
    masses = masses[np.isfinite(masses)]
    lo = min([*masses, *[f.log_mass_lo_msun for f in fitted]] or [3.5])
    hi = max([*masses, *[f.log_mass_hi_msun for f in fitted]] or [5.5])
    edges = np.arange(math.floor(lo * 10) / 10, hi + mass_bin_dex, mass_bin_dex)
    young_mass = c.loc[c["log_age_yr"] < mass_max_log_age_yr, "log_mass_msun"]
    if len(c):
        _step_hist(ax, c["log_mass_msun"], edges, color="0.8", label="all")
        counts, _ = np.histogram(young_mass.dropna(), edges)
        centres = 0.5 * (edges[1:] + edges[:-1])
        shown = counts > 0
        ax.plot(
            centres[shown],
            counts[shown],
            "o",
            mfc="none",
            color="k",
            label=f"log t < {mass_max_log_age_yr:g}",
        )
    else:
        no_data(ax)
    styles = {"schechter_fixed_slope": "-", "schechter": "--", "power_law": ":"}
    fine = np.arange(edges[0], edges[-1] + 1e-9, mass_bin_dex / 4)
    for label, fit in fits.items():
        if fit.n == 0 or not np.isfinite(fit.slope) or np.isnan(fit.log_mstar_msun):
            continue
        # per-bin expectation on a finer grid, scaled to the histogram's bin width
        expected = fit.expected_counts(fine) * 4
        mid = 0.5 * (fine[1:] + fine[:-1])
        keep = expected > 0
        (line,) = ax.plot(mid[keep], expected[keep], styles.get(fit.model, "-"), label=label)
        if fit.model == "schechter_fixed_slope":
            band = np.sqrt(expected[keep])
            ax.fill_between(
                mid[keep],
                np.clip(expected[keep] - band, 1e-3, None),
                expected[keep] + band,
                color=line.get_color(),
                alpha=0.2,
                lw=0,
            )
            ax.axvline(
                fit.log_mass_lo_msun, color="0.5", lw=0.8, ls="--", label="completeness limit"
            )
    ax.set_ylim(bottom=0.3)  # below one cluster per bin the log axis shows only the model
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    for ax, column, title in (
        (axes[1], "log_rh_pc", "b) size"),
        (axes[2], "log_density_msun_pc3", "c) density"),
    ):
        ax.set_xlabel(LABELS[column])
        ax.set_ylabel("clusters")
        ax.set_title(title, loc="left")
        values = c[column].to_numpy(float) if len(c) else np.zeros(0)
        values = values[np.isfinite(values)]
        if values.size == 0:
            no_data(ax)
            continue
        bins = np.histogram_bin_edges(values, bins=min(30, max(5, values.size // 3)))
        _step_hist(ax, values, bins, color="0.8", label="all")
        for group, colour in ((young, "tab:blue"), (old, "tab:red")):
            _step_hist(
                ax,
                c.loc[group.mask(c["log_age_yr"]), column],
                bins,
                histtype="step",
                color=colour,
                lw=1.5,
                label=group.label,
            )
        ax.legend(fontsize=7)
    fig.suptitle(f"Mass, size and density of {len(c)} candidates")
    save_figure(fig, path)


def plot_radial(
    candidates: pd.DataFrame,
    young: AgeGroup,
    old: AgeGroup,
    centres_kpc: np.ndarray,
    window_kpc: float,
    path: str | os.PathLike,
) -> None:
    """Thesis Fig. 4.8: density, mass and size against galactocentric distance, points
    coloured by age, running mean ± standard deviation (window ``window_kpc``) of the
    ``young`` and ``old`` candidates."""
    c = with_log_rh_pc(candidates)
    radius = c["galactocentric_kpc"].to_numpy(float) if len(c) else np.zeros(0)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.3), layout="constrained")
    mappable = None
    for k, (ax, column) in enumerate(
        zip(axes, ("log_density_msun_pc3", "log_mass_msun", "log_rh_pc"), strict=True)
    ):
        ax.set_xlabel(LABELS["galactocentric_kpc"])
        ax.set_ylabel(LABELS[column])
        ax.set_title(f"{'abc'[k]})", loc="left")
        if len(c) == 0:
            no_data(ax)
            continue
        if not np.isfinite(radius).any():
            no_data(ax, "no galactocentric distances\n(galaxy_geometry.source: none)")
            continue
        mappable = _age_scatter(ax, radius, c[column], c["log_age_yr"], size=7)
        for group, colour in ((young, "tab:blue"), (old, "tab:red")):
            mask = group.mask(c["log_age_yr"])
            stats = running_statistics(radius[mask], c.loc[mask, column], centres_kpc, window_kpc)
            ax.plot(stats["centre"], stats["mean"], "--", color=colour, label=group.label)
            ax.fill_between(
                stats["centre"],
                stats["mean"] - stats["std"],
                stats["mean"] + stats["std"],
                color=colour,
                alpha=0.15,
                lw=0,
            )
        x0 = np.nanmin(radius)
        ax.plot(
            [x0, x0 + window_kpc], [0.97, 0.97], color="k", lw=2, transform=ax.get_xaxis_transform()
        )
        ax.legend(fontsize=7, loc="lower right")
    if mappable is not None:
        fig.colorbar(mappable, ax=axes, label=LABELS["log_age_yr"], shrink=0.8)
    fig.suptitle(f"Against galactocentric distance ({len(c)} candidates; bar: window)")
    save_figure(fig, path)


def plot_arm_profiles(
    profiles: pd.DataFrame,
    peaks: pd.DataFrame,
    window_kpc: float,
    path: str | os.PathLike,
    titles: Mapping[str, str] | None = None,
) -> None:
    """Thesis Fig. 4.7a: counts per kpc against signed distance from the dust lanes, one
    panel per sample (candidates, the synthetic truth, recovered artificial clusters), one
    line per age group with its 1σ Poisson band; markers at each group's count peak.

    profiles: :func:`~starclusters.analysis.population.group_count_profiles` rows with a
    ``sample`` column; peaks: sample, group, peak_kpc; titles: sample -> panel title (and
    order). A sample without rows says so.
    """
    titles = dict(titles or {s: s for s in profiles["sample"].unique()})
    fig, axes = plt.subplots(
        1, len(titles), figsize=(5 * len(titles), 4.2), squeeze=False, layout="constrained"
    )
    for ax, (sample, title) in zip(axes[0], titles.items(), strict=True):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel(LABELS["arm_distance_kpc"])
        ax.set_ylabel("clusters per kpc")
        ax.axvline(0.0, color="k", lw=0.8)
        rows = profiles[profiles["sample"] == sample]
        if rows.empty or rows["count"].sum() == 0:
            no_data(ax, "no clusters" if rows.empty else "no clusters near the arms")
            continue
        for colour, (group, curve) in zip(
            GROUP_COLOURS, rows.groupby("group", sort=False), strict=False
        ):
            x = curve["centre_kpc"].to_numpy(float)
            ax.plot(x, curve["per_kpc"], color=colour, label=f"{group} ({_n_label(curve)})")
            ax.fill_between(
                x,
                curve["lower"] / window_kpc,
                curve["upper"] / window_kpc,
                color=colour,
                alpha=0.2,
                lw=0,
            )
            peak = peaks[(peaks["sample"] == sample) & (peaks["group"] == group)]
            for value in peak["peak_kpc"].to_numpy(float):
                if np.isfinite(value):
                    ax.axvline(value, color=colour, ls=":", lw=1)
        x0 = float(rows["centre_kpc"].min())
        ax.plot(
            [x0, x0 + window_kpc], [0.03, 0.03], color="k", lw=2, transform=ax.get_xaxis_transform()
        )
        ax.legend(fontsize=7)
    save_figure(fig, path)


def _n_label(curve: pd.DataFrame) -> str:
    return f"peak {int(curve['count'].max())} per window"


def plot_spatial_maps(
    candidates: pd.DataFrame,
    image: np.ndarray,
    factor: int,
    path: str | os.PathLike,
    arm_distance_kpc: np.ndarray | None = None,
    lanes_px: Sequence[tuple[np.ndarray, np.ndarray]] = (),
    radius_map_kpc: np.ndarray | None = None,
    min_log_mass_msun: float = 4.0,
    band: str = "",
) -> None:
    """Thesis Fig. 4.9: candidates over the (downsampled) mosaic coloured by a) signed
    distance from the lanes (±1.5 kpc), b) age, c) A_V and d) density of those with
    log M > ``min_log_mass_msun``.

    image: (h, w) the mosaic band block-averaged by ``factor`` (counts/s); candidates'
    x, y are full-resolution pixels. lanes_px: the dust lanes as (x, y) full-resolution
    pixel polylines; radius_map_kpc: (h, w) galactocentric distance of each image pixel,
    drawn as rings every kpc.
    """
    from astropy.visualization import AsinhStretch, ImageNormalize, PercentileInterval

    finite = image[np.isfinite(image)]
    norm = (
        ImageNormalize(finite, interval=PercentileInterval(99.5), stretch=AsinhStretch(0.05))
        if finite.size
        else None
    )
    x = candidates["x"].to_numpy(float) / factor if len(candidates) else np.zeros(0)
    y = candidates["y"].to_numpy(float) / factor if len(candidates) else np.zeros(0)
    massive = candidates["log_mass_msun"].to_numpy(float) > min_log_mass_msun
    panels = [
        ("a) distance from the lanes (kpc)", arm_distance_kpc, "bwr", (-1.5, 1.5), None),
        ("b) log10(t / yr)", candidates["log_age_yr"], AGE_CMAP, AGE_RANGE_LOG_YR, None),
        (
            f"c) A_V (mag), log M > {min_log_mass_msun:g}",
            candidates["av_mag"],
            "jet",
            (0, 3),
            massive,
        ),
        (
            f"d) log10 ρ_h, log M > {min_log_mass_msun:g}",
            candidates["log_density_msun_pc3"],
            "jet",
            (1, 3),
            massive,
        ),
    ]
    fig, axes = plt.subplots(
        2, 2, figsize=(12, 12 * image.shape[0] / max(image.shape[1], 1)), layout="constrained"
    )
    for ax, (title, values, cmap, limits, keep) in zip(axes.flat, panels, strict=True):
        ax.imshow(image, origin="lower", cmap="gray_r", norm=norm, interpolation="nearest")
        ax.set_title(title, fontsize=10)
        ax.set_xticks([])
        ax.set_yticks([])
        if radius_map_kpc is not None and np.isfinite(radius_map_kpc).any():
            levels = np.arange(1, math.ceil(np.nanmax(radius_map_kpc)) + 1)
            if levels.size:
                ax.contour(radius_map_kpc, levels=levels, colors="0.6", linewidths=0.5)
        for lx, ly in lanes_px:
            ax.plot(np.asarray(lx) / factor, np.asarray(ly) / factor, color="k", lw=1)
        ax.set_xlim(-0.5, image.shape[1] - 0.5)
        ax.set_ylim(-0.5, image.shape[0] - 0.5)
        if values is None:
            no_data(ax, "no arm geometry")
            continue
        v = np.asarray(values, float)
        show = np.isfinite(v) if keep is None else np.isfinite(v) & np.asarray(keep, bool)
        if not show.any():
            no_data(ax, "no candidates" if len(candidates) == 0 else "none selected")
            continue
        points = ax.scatter(
            x[show],
            y[show],
            c=v[show],
            cmap=cmap,
            vmin=limits[0],
            vmax=limits[1],
            s=14,
            edgecolors="k",
            linewidths=0.3,
        )
        fig.colorbar(points, ax=ax, shrink=0.7)
    fig.suptitle(f"{len(candidates)} candidates on {band} (rings: 1 kpc steps; black: lanes)")
    save_figure(fig, path)


def plot_comparison(
    matched: pd.DataFrame, summary: pd.DataFrame, label: str, path: str | os.PathLike
) -> None:
    """Thesis Figs. 3.15/3.17: derived (candidate) against catalog values of the matched
    objects for each quantity the catalog has, with the 1:1 line and the catalog's
    ranges as horizontal bars; the median difference and robust scatter in each panel."""
    shown = [q for q in COMPARED if f"catalog_{q}" in matched.columns]
    fig, axes = plt.subplots(
        1,
        max(len(shown), 1),
        figsize=(4.2 * max(len(shown), 1), 4.3),
        squeeze=False,
        layout="constrained",
    )
    hit = matched["candidate_row"].to_numpy(int) >= 0 if len(matched) else np.zeros(0, bool)
    if not shown:
        no_data(axes[0, 0], f"{label}: no compared columns")
    for ax, name in zip(axes[0], shown, strict=False):
        ax.set_xlabel(f"{COMPARED[name][0]}, {label}")
        ax.set_ylabel(f"{COMPARED[name][0]}, CNN")
        theirs = matched[f"catalog_{name}"].to_numpy(float)[hit]
        ours = matched[f"derived_{name}"].to_numpy(float)[hit]
        ok = np.isfinite(theirs) & np.isfinite(ours)
        if not ok.any():
            no_data(ax, "no matched candidates")
            continue
        lo_col, hi_col = f"catalog_{name}_min", f"catalog_{name}_max"
        if lo_col in matched.columns and hi_col in matched.columns:
            lo = matched[lo_col].to_numpy(float)[hit][ok]
            hi = matched[hi_col].to_numpy(float)[hit][ok]
            err = np.clip(np.vstack([theirs[ok] - lo, hi - theirs[ok]]), 0, None)
            ax.errorbar(
                theirs[ok], ours[ok], xerr=np.nan_to_num(err), fmt="none", ecolor="0.7", lw=0.7
            )
        ax.scatter(theirs[ok], ours[ok], s=10, color="tab:green", edgecolors="k", linewidths=0.3)
        both = np.concatenate([theirs[ok], ours[ok]])
        # percentiles: a catalog's few absurd values (e.g. unbounded EFF fits) would squash the rest
        lo, hi = np.percentile(both, [1, 99]) if both.size > 20 else (both.min(), both.max())
        span = [lo - 0.2, hi + 0.2]
        ax.set_xlim(span)
        ax.set_ylim(span)
        ax.plot(span, span, color="k", lw=0.8)
        row = summary[summary["quantity"] == name].iloc[0]
        ax.text(
            0.03,
            0.97,
            f"n = {int(row['n'])}\nmedian Δ = {row['median_difference']:+.2f}\n"
            f"scatter = {row['robust_scatter']:.2f} {row['unit']}",
            transform=ax.transAxes,
            va="top",
            fontsize=8,
        )
    n_hit = int(hit.sum())
    fig.suptitle(f"{n_hit} of {len(matched)} {label} objects matched by a candidate")
    save_figure(fig, path)


def plot_population_fit(
    sample: pd.DataFrame,
    candidates: pd.DataFrame,
    predicted: Mapping[str, tuple[np.ndarray, np.ndarray | None]],
    mass_edges: np.ndarray,
    age_edges: np.ndarray,
    fits: Mapping[str, object],
    injected: Mapping[str, float],
    field: str,
    path: str | os.PathLike,
    check: pd.DataFrame | None = None,
) -> None:
    """Observed against predicted counts of derived mass (a) and age (b); with ``check``
    (:func:`starclusters.analysis.stage.selection_check`) also c) the recall of the galaxy's
    own clusters the selection function predicts against the one measured, per mass bin.

    sample: the fitted candidates (C ≥ min_completeness at their derived values); candidates:
    all of them (grey); predicted: label -> (counts per mass bin, per age bin) of each fit
    (:func:`starclusters.analysis.population_fit.expected_counts`); fits: label ->
    PopulationFit; injected: slope, log_mstar_msun, age_index of the synthetic galaxy (NaN
    where unknown).
    """
    styles = {"schechter": "-", "schechter_fixed_slope": "--", "power_law": ":"}
    n_panels = 2 if check is None else 3
    fig, axes = plt.subplots(1, n_panels, figsize=(6 * n_panels, 4.5), layout="constrained")
    if check is not None:
        ax = axes[2]
        ax.set_title("c) selection function on this galaxy's clusters", loc="left")
        bins = check[check["bin"] != "all"].reset_index(drop=True)
        x = np.arange(len(bins))
        ax.errorbar(
            x,
            bins["observed"],
            yerr=[bins["observed"] - bins["observed_lo"], bins["observed_hi"] - bins["observed"]],
            fmt="o",
            color="k",
            label="measured (truth clusters found)",
        )
        ax.plot(x, bins["predicted"], "s", color="tab:red", label="predicted (mean P)")
        for k, n in enumerate(bins["n"]):
            ax.annotate(f"{n}", (k, 0.02), ha="center", fontsize=8, color="0.4")
        ax.set_xticks(x, bins["bin"])
        ax.set_xlabel(f"true {LABELS['log_mass_msun']}")
        ax.set_ylabel("recall")
        ax.set_ylim(0, 1.05)
        whole = check[check["bin"] == "all"].iloc[0]
        ax.legend(
            fontsize=8,
            title=f"all {whole['n']}: predicted {whole['predicted']:.2f}, measured "
            f"{whole['observed']:.2f} ± {whole['observed_err']:.2f}",
            title_fontsize=8,
            loc="upper left",
        )
    for k, (ax, column, edges, what) in enumerate(
        (
            (axes[0], "log_mass_msun", mass_edges, "a) mass"),
            (axes[1], "log_age_yr", age_edges, "b) age"),
        )
    ):
        ax.set_title(what, loc="left")
        ax.set_xlabel(LABELS[column])
        ax.set_ylabel("candidates per bin")
        ax.set_yscale("log")
        if not len(candidates):
            no_data(ax)
            continue
        everything = np.histogram(candidates[column].to_numpy(float), edges)[0]
        observed = np.histogram(sample[column].to_numpy(float), edges)[0]
        centres = 0.5 * (edges[1:] + edges[:-1])
        ax.stairs(everything, edges, color="0.7", label=f"all candidates ({len(candidates)})")
        ax.errorbar(
            centres,
            observed,
            yerr=np.sqrt(observed),
            fmt="o",
            color="k",
            ms=4,
            label=f"fitted sample ({len(sample)})",
        )
        for label, counts in predicted.items():
            values = counts[k]
            if values is None:
                continue
            fit = fits[label]
            text = f"{label}: β {fit.slope:.2f}"
            if math.isfinite(fit.log_mstar_msun):
                text += f", log M* {fit.log_mstar_msun:.2f}"
            text += f", γ {fit.age_index:.2f}"
            ax.stairs(values, edges, linestyle=styles.get(label, "-"), label=text)
        ax.set_ylim(bottom=0.5)
    truth = ", ".join(
        f"{name} {value:.2f}" for name, value in injected.items() if math.isfinite(value)
    )
    axes[0].legend(fontsize=7, loc="lower left")
    fig.suptitle(
        f"{field}: population fits with the selection function in the likelihood"
        + (f" (injected: {truth})" if truth else "")
    )
    save_figure(fig, path)
