"""Figures of the mock bank: a thesis-Fig.-3.1-like stamp grid and Fig.-3.3-like colour diagrams."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from starclusters.mocks.bank import draw_stars, render_stars
from starclusters.mocks.render import StampRenderer
from starclusters.photometry.population import StellarPopulation
from starclusters.plotting import colour_bands, save_figure


def rgb_arcsinh(image: np.ndarray, scale: float, soften: float) -> np.ndarray:
    """(B, S, S) counts/s -> (S, S, 3) RGB in [0, 1]: red = last band, blue = first, arcsinh stretch.

    scale: counts/s mapped to full intensity; soften: counts/s where the stretch turns logarithmic.
    """
    bands = [image[-1], image[len(image) // 2], image[0]]
    rgb = np.stack(
        [np.arcsinh(np.clip(b, 0, None) / soften) / np.arcsinh(scale / soften) for b in bands],
        axis=-1,
    )
    return np.clip(rgb, 0.0, 1.0)


def plot_mock_grid(
    population: StellarPopulation,
    renderer: StampRenderer,
    mocks: Mapping,
    rng: np.random.Generator,
    path: str | os.PathLike,
    background: np.ndarray | None = None,
    exptime_s: Sequence[float] | None = None,
    log_ages_yr: Sequence[float] = (7.0, 8.0, 9.0),
    log_masses_msun: Sequence[float] = (3.5, 4.5, 5.5),
    rh_arcsec: Sequence[float] = (0.05, 0.15, 0.35),
    eff_gamma: float = 3.0,
) -> None:
    """Mocks on a mass (rows) × r_h (columns) grid, one panel block per age (thesis Fig. 3.1).

    With ``background`` ((B, S, S) counts/s, one real cutout) and ``exptime_s``
    (per band), every mock is put on that same background with :func:`compose`,
    its r_h,obs drawn as a yellow circle and its visibility written below 100, as
    in the thesis; otherwise the noise-free stamps are shown. a is set from r_h
    for the given gamma (untruncated relation); A_V = 0.
    """
    from starclusters.mocks.compose import compose, observed_rh_px
    from starclusters.mocks.psf import half_light_radius_px

    ages = [a for a in log_ages_yr if np.isclose(population.log_ages_yr, a).any()]
    fig, axes = plt.subplots(
        len(log_masses_msun),
        len(rh_arcsec) * len(ages),
        figsize=(2.0 * len(rh_arcsec) * len(ages), 2.1 * len(log_masses_msun)),
    )
    axes = np.atleast_2d(axes)
    psf_rh_px = [half_light_radius_px(e, renderer.oversampling) for e in renderer.epsfs]
    images, visibility, rh_obs = {}, {}, {}
    for k, age in enumerate(ages):
        for i, log_mass in enumerate(log_masses_msun):
            for j, rh in enumerate(rh_arcsec):
                a = rh / np.sqrt(2 ** (2 / (eff_gamma - 2)) - 1)
                stars = draw_stars(population, age, log_mass, 0.0, mocks, rng)
                stamp = render_stars(stars, renderer, a, eff_gamma, mocks, rng)
                rh_obs[k, i, j] = observed_rh_px(rh / renderer.pixel_scale_arcsec, psf_rh_px)
                if background is None:
                    images[k, i, j] = stamp
                else:
                    images[k, i, j], visibility[k, i, j], _ = compose(
                        stamp, background, exptime_s, rng, rh_obs[k, i, j]
                    )
    if background is None:
        peak = np.percentile([im.max() for im in images.values()], 50)
        scale, soften = peak, peak / 200
    else:
        scale = np.percentile(np.stack(list(images.values())), 99.7)
        soften = 2.0 * float(np.median(np.std(background, axis=(1, 2))))
    centre = renderer.stamp_px // 2
    for (k, i, j), image in images.items():
        ax = axes[i, k * len(rh_arcsec) + j]
        ax.imshow(rgb_arcsinh(image, scale, soften), origin="lower")
        ax.set_xticks([]), ax.set_yticks([])
        if background is not None:
            ax.add_patch(
                plt.Circle(
                    (centre, centre), max(rh_obs[k, i, j]), fill=False, color="yellow", lw=0.6
                )
            )
            if visibility[k, i, j] < 100:
                ax.text(2, 2, f"{visibility[k, i, j]:.1f}", color="yellow", fontsize=7)
        if i == 0:
            ax.set_title(f"log t={ages[k]:.1f}\nr_h={rh_arcsec[j]:.2f}″", fontsize=8)
        if k == 0 and j == 0:
            ax.set_ylabel(f"log M={log_masses_msun[i]:.1f}", fontsize=8)
    what = "on one background cutout of the mosaic" if background is not None else "noise-free"
    fig.suptitle(
        f"Mock clusters {what} (A_V = 0), RGB = " + "/".join(reversed(population.bands)),
        fontsize=9,
    )
    save_figure(fig, path)


def plot_bank_colours(
    table: pd.DataFrame, bands: Sequence[str], limits_mag: Mapping[str, float], path
) -> None:
    """Integrated colour-colour and colour-magnitude diagrams of the bank coloured by age, A_V, mass (thesis Fig. 3.3)."""
    blue, mid, red = colour_bands(bands)
    x = table[f"mag_{mid}"] - table[f"mag_{red}"]
    y = table[f"mag_{blue}"] - table[f"mag_{mid}"]
    m = table[f"mag_{red}"]
    fig, axes = plt.subplots(2, 3, figsize=(15, 8), sharex=True, layout="constrained")
    for col, (key, label, cmap) in enumerate(
        (
            ("log_age_yr", "log age (yr)", "viridis"),
            ("av_mag", "A_V (mag)", "magma"),
            ("log_mass_msun", "log M (M☉)", "cividis"),
        )
    ):
        for row, (yy, ylabel) in enumerate(((y, f"{blue} − {mid}"), (m, f"{red} (Vega mag)"))):
            ax = axes[row, col]
            sc = ax.scatter(x, yy, c=table[key], cmap=cmap, s=6, edgecolors="none")
            ax.invert_yaxis()
            if col == 0:
                ax.set_ylabel(ylabel)
            if row == 1:
                ax.set_xlabel(f"{mid} − {red}")
                ax.axhline(limits_mag[red], ls="--", color="gray")
            fig.colorbar(sc, ax=ax, label=label)
    fig.suptitle(
        f"Integrated colours of the {len(table)} mocks in the bank (after the magnitude cuts)"
    )
    save_figure(fig, path)


def plot_star_groups(
    stamps: np.ndarray,
    table: pd.DataFrame,
    bank: pd.DataFrame,
    bands: Sequence[str],
    background: np.ndarray,
    exptime_s: Sequence[float],
    rng: np.random.Generator,
    path: str | os.PathLike,
    per_row: int = 6,
) -> None:
    """Star groups (the hard negatives) beside the bank: a gallery and a colour-magnitude diagram.

    stamps: (K, B, S, S) noise-free star-group stamps, counts/s, with their ``table``
    (n_stars, mag_<band>); bank: the mock bank's table (mag_<band>); background: one real
    cutout (B, S, S) counts/s with ``exptime_s`` (B,), onto which each shown group is
    composed. Left: ``per_row`` groups of each size (rows n = 1, 2, …), RGB = reddest /
    middle / bluest band, arcsinh stretch, visibility as a cluster's in yellow. Right: both
    tables in (middle − reddest, reddest).
    """
    from starclusters.mocks.compose import compose

    sizes = sorted(int(n) for n in table["n_stars"].unique())
    fig = plt.figure(figsize=(2.0 * per_row + 6, 2.0 * len(sizes) + 0.8), layout="constrained")
    grid = fig.add_gridspec(len(sizes), per_row + 3)
    shown = []
    for i, n in enumerate(sizes):
        rows = np.flatnonzero(table["n_stars"].to_numpy() == n)[:per_row]
        for j, row in enumerate(rows):
            image, vis, _ = compose(stamps[row], background, exptime_s, rng, 1.0)
            shown.append((i, j, image, vis))
    scale = np.percentile(np.stack([s[2] for s in shown]), 99.7)
    soften = 2.0 * float(np.median(np.std(background, axis=(1, 2))))
    for i, j, image, vis in shown:
        ax = fig.add_subplot(grid[i, j])
        ax.imshow(rgb_arcsinh(image, scale, soften), origin="lower")
        ax.set_xticks([]), ax.set_yticks([])
        ax.text(2, 2, f"{vis:.1f}", color="yellow", fontsize=7)
        if j == 0:
            ax.set_ylabel(f"{sizes[i]} star{'s' if sizes[i] > 1 else ''}", fontsize=8)
    _, mid, red = colour_bands(bands)
    ax = fig.add_subplot(grid[:, per_row:])
    for frame, colour, label in (
        (bank, "0.6", "mock clusters"),
        (table, "tab:blue", "star groups"),
    ):
        ax.scatter(
            frame[f"mag_{mid}"] - frame[f"mag_{red}"],
            frame[f"mag_{red}"],
            s=4,
            c=colour,
            edgecolors="none",
            alpha=0.6,
            label=f"{label} ({len(frame)})",
        )
    ax.invert_yaxis()
    ax.set(xlabel=f"{mid} − {red}", ylabel=f"{red} (Vega mag)")
    ax.legend(loc="lower left", markerscale=3)
    fig.suptitle(
        "Star groups (hard negatives, class 0) on one background cutout, visibility as a "
        "cluster's in yellow; right: their magnitudes against the bank's",
        fontsize=9,
    )
    save_figure(fig, path)
