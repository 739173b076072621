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
    log_ages_yr: Sequence[float] = (7.0, 8.0, 9.0),
    log_masses_msun: Sequence[float] = (3.5, 4.5, 5.5),
    rh_arcsec: Sequence[float] = (0.05, 0.15, 0.35),
    eff_gamma: float = 3.0,
) -> None:
    """Noise-free mocks on a mass (rows) × r_h (columns) grid, one panel block per age (thesis Fig. 3.1).

    a is set from r_h for the given gamma (untruncated relation); A_V = 0.
    """
    ages = [a for a in log_ages_yr if np.isclose(population.log_ages_yr, a).any()]
    fig, axes = plt.subplots(
        len(log_masses_msun),
        len(rh_arcsec) * len(ages),
        figsize=(2.0 * len(rh_arcsec) * len(ages), 2.1 * len(log_masses_msun)),
    )
    axes = np.atleast_2d(axes)
    stamps = {}
    for k, age in enumerate(ages):
        for i, log_mass in enumerate(log_masses_msun):
            for j, rh in enumerate(rh_arcsec):
                a = rh / np.sqrt(2 ** (2 / (eff_gamma - 2)) - 1)
                stars = draw_stars(population, age, log_mass, 0.0, mocks, rng)
                stamps[k, i, j] = render_stars(stars, renderer, a, eff_gamma, mocks, rng)
    peak = np.percentile([s.max() for s in stamps.values()], 50)
    for (k, i, j), stamp in stamps.items():
        ax = axes[i, k * len(rh_arcsec) + j]
        ax.imshow(rgb_arcsinh(stamp, peak, peak / 200), origin="lower")
        ax.set_xticks([]), ax.set_yticks([])
        if i == 0:
            ax.set_title(f"log t={ages[k]:.1f}\nr_h={rh_arcsec[j]:.2f}″", fontsize=8)
        if k == 0 and j == 0:
            ax.set_ylabel(f"log M={log_masses_msun[i]:.1f}", fontsize=8)
    fig.suptitle(
        "Noise-free mock clusters (A_V = 0), RGB = " + "/".join(reversed(population.bands)),
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
