"""Figures of the photometry stage: isochrones and integrated cluster colours."""

from __future__ import annotations

import os
from collections.abc import Mapping

import matplotlib.pyplot as plt
import numpy as np

from starclusters.photometry.isochrones import ssp_magnitudes
from starclusters.photometry.population import StellarPopulation
from starclusters.plotting import colour_bands, save_figure

#: Ages drawn in the isochrone figure, log10 yr (those on the grid are used).
SHOWN_AGES = (6.6, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0)


def plot_isochrones(population: StellarPopulation, path: str | os.PathLike) -> None:
    """CMD of isochrones at several ages (apparent mags at the galaxy's distance, A_V = 0)."""
    blue, mid, red = colour_bands(population.bands)
    ages = [a for a in SHOWN_AGES if np.isclose(population.log_ages_yr, a).any()]
    cmap = plt.get_cmap("viridis")
    fig, ax = plt.subplots(figsize=(6, 6))
    dm = population.distance_modulus_mag
    for k, age in enumerate(ages):
        iso = population.isochrone(age)
        colour = iso[f"abs_mag_{mid}"] - iso[f"abs_mag_{red}"]
        ax.plot(
            colour,
            iso[f"abs_mag_{red}"] + dm,
            ".",
            ms=2,
            color=cmap(k / max(len(ages) - 1, 1)),
            label=f"log t = {age:.2f}",
        )
    # Dust-enshrouded TP-AGB stars reach colours of 40 mag; show the range clusters live in.
    ax.set_xlim(-1.0, 6.0)
    ax.set_ylim(dm + 8.0, dm - 12.0)
    ax.set_xlabel(f"{mid} − {red} (Vega mag)")
    ax.set_ylabel(f"{red} at {population.distance_mpc:g} Mpc (Vega mag)")
    ax.set_title(f"Isochrones, Z = {population.isochrones['metallicity_z'].iloc[0]:.4f}")
    ax.legend(fontsize=7, markerscale=4)
    save_figure(fig, path)


def plot_cluster_colours(
    population: StellarPopulation,
    limits_mag: Mapping[str, float],
    rng: np.random.Generator,
    path: str | os.PathLike,
    log_masses: tuple[float, ...] = (3.5, 4.5, 5.5),
    age_stride: int = 2,
) -> None:
    """Integrated colours of IMF-sampled clusters (A_V = 0) and fully sampled SSP tracks.

    Like thesis Fig. 3.3: a colour-colour and a colour-magnitude diagram; points
    are single stochastic clusters of the given log masses at every
    ``age_stride``-th grid age, lines the fully sampled populations; the arrow
    shows A_V = 1 mag; the dashed line the magnitude limit of the reddest band.
    """
    blue, mid, red = colour_bands(population.bands)
    ages = population.log_ages_yr[::age_stride]
    fig, (ax_cc, ax_cm) = plt.subplots(1, 2, figsize=(11, 5))
    norm = plt.Normalize(ages.min(), ages.max())
    for log_mass, marker in zip(log_masses, "o^s", strict=False):
        rows = []
        for age in ages:
            stars = population.cluster_stars(age, 10.0**log_mass, 0.0, rng)
            mags = population.integrated_magnitudes(stars)
            rows.append((age, mags[blue] - mags[mid], mags[mid] - mags[red], mags[red]))
        rows = np.array(rows)
        kw = dict(c=rows[:, 0], cmap="viridis", norm=norm, s=14, marker=marker, edgecolors="none")
        ax_cc.scatter(rows[:, 2], rows[:, 1], label=f"log M = {log_mass}", **kw)
        sc = ax_cm.scatter(rows[:, 2], rows[:, 3], **kw)
        ssp = [
            ssp_magnitudes(population.isochrone(a), population.imf, [blue, mid, red]) for a in ages
        ]
        dm = population.distance_modulus_mag + 2.5 * -log_mass
        ax_cc.plot([s[mid] - s[red] for s in ssp], [s[blue] - s[mid] for s in ssp], "k-", lw=0.6)
        ax_cm.plot([s[mid] - s[red] for s in ssp], [s[red] + dm for s in ssp], "k-", lw=0.6)
    # Reddening vector for A_V = 1 mag at T_eff = 10^4 K.
    ext = population.extinction
    a = {
        b: float(
            ext[
                (ext.band == b) & np.isclose(ext.av_mag, 1.0) & np.isclose(ext.log_teff_k, 4.0)
            ].a_band_mag.iloc[0]
        )
        for b in (blue, mid, red)
        if ((ext.band == b) & np.isclose(ext.av_mag, 1.0)).any()
    }
    if len(a) == 3:
        x0, y0 = ax_cc.get_xlim()[0] + 0.2, ax_cc.get_ylim()[1] - 0.3
        ax_cc.annotate(
            "",
            (x0 + a[mid] - a[red], y0 + a[blue] - a[mid]),
            (x0, y0),
            arrowprops=dict(arrowstyle="->", color="r"),
        )
        ax_cc.text(x0, y0, "A_V = 1", color="r", fontsize=8, va="bottom")
    ax_cc.invert_yaxis()
    ax_cc.set_xlabel(f"{mid} − {red}")
    ax_cc.set_ylabel(f"{blue} − {mid}")
    ax_cc.legend(fontsize=8)
    ax_cm.axhline(limits_mag[red], ls="--", color="gray")
    ax_cm.invert_yaxis()
    ax_cm.set_xlabel(f"{mid} − {red}")
    ax_cm.set_ylabel(f"{red} (Vega mag at {population.distance_mpc:g} Mpc)")
    fig.colorbar(sc, ax=ax_cm, label="log age (yr)")
    save_figure(fig, path)
