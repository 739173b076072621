"""Compare the model's integrated cluster colours with published M33 and M31 clusters.

For every catalog cluster the model draws IMF-sampled stars at the catalog's
CMD-fitted age (snapped to the 0.05 dex grid), mass and A_V, several times, and
predicts F336W−F475W, F475W−F814W and the reddening-free index
Q = (F336W−F475W) − k (F475W−F814W). The figures and numbers are those of
docs/reference_comparison.md:

    .venv/bin/python docs/scripts/reference_colours.py --reference-dir ../shared/reference \
        --out docs/figures

Runs in about a minute on 2 cores (all clusters, 20 realisations each).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from starclusters.photometry import (  # noqa: E402
    build_extinction_table,
    build_isochrone_table,
    population_from_config,
)
from starclusters.photometry.isochrones import ssp_magnitudes  # noqa: E402
from starclusters.photometry.reference import (  # noqa: E402
    colour_indices,
    colour_residuals,
    predict_colours,
    read_phat_m31_catalog,
    read_phatter_catalog,
    reddening_free_index,
    reddening_vector,
    summarise_residuals,
)

BANDS = ["F336W", "F475W", "F814W"]
COLOURS = [("F336W", "F475W"), ("F475W", "F814W")]
AGE_EDGES = (6.6, 7.0, 7.5, 8.0, 8.5, 9.5)
MASS_EDGES = (2.0, 3.0, 3.5, 4.0, 5.5)

#: M31 foreground extinction (Schlafly & Finkbeiner 2011: E(B−V) ≈ 0.055), used for
#: the M31 clusters, whose age/mass table has no fitted A_V.
M31_FOREGROUND_AV_MAG = 0.17


def photometry_config(metallicity_z: float, distance_mpc: float, ages=(6.6, 9.5, 0.05)) -> dict:
    """The ``photometry`` config section for one galaxy (PHAT/PHATTER cameras and bands)."""
    return {
        "isochrones": {
            "source": "parsec_grid",
            "metallicity_z": metallicity_z,
            "z_tolerance_dex": 0.05,
            "log_age_yr": {"min": ages[0], "max": ages[1], "step": ages[2]},
        },
        # F336W is WFC3/UVIS, F475W and F814W are ACS/WFC in PHAT and PHATTER.
        "filter_curves": {
            "F336W": "HST_WFC3_F336W",
            "F475W": "HST_ACS_WFC_F475W",
            "F814W": "HST_ACS_WFC_F814W",
        },
        "vega_zeropoint_mag": {"F336W": 23.527, "F475W": 26.168, "F814W": 25.520},
        "distance_mpc": distance_mpc,
        "extinction": {"law": "ccm89", "r_v": 3.1, "av_mag": {"min": 0.0, "max": 3.0, "step": 0.1}},
        "imf": {"mass_min_msun": 0.08, "mass_max_msun": 100.0},
        "magnitude_limits": {"F336W": 30.0, "F475W": 30.0, "F814W": 30.0},
    }


def build_population(phot: dict):
    iso, _ = build_isochrone_table(phot, BANDS)
    ext, _ = build_extinction_table(phot, BANDS)
    return population_from_config(iso, ext, phot, BANDS)


def ssp_track(population) -> pd.DataFrame:
    """Fully sampled (SSP) colours at A_V = 0 for every grid age."""
    rows = []
    for age in population.log_ages_yr:
        m = ssp_magnitudes(population.isochrone(age), population.imf, BANDS)
        rows.append({"log_age_yr": age, **m})
    return pd.DataFrame(rows)


def binned(x, y, edges):
    """Bin centres, median and 16/84th percentiles of y in bins of x (>= 5 points)."""
    out = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        sel = (x >= lo) & (x < hi) & np.isfinite(y)
        if sel.sum() >= 5:
            out.append((0.5 * (lo + hi), *np.percentile(y[sel], [50, 16, 84])))
    return np.array(out).reshape(-1, 4)


def jitter(values, rng, amplitude):
    return values + rng.uniform(-amplitude, amplitude, len(values))


def plot_colours(res, track, av_typical, red_vec, names, title, path, age_jitter, rng):
    """Observed and model colours against catalog log age."""
    fig, axes = plt.subplots(1, len(names), figsize=(11, 4.2))
    for ax, name in zip(axes, names, strict=True):
        blue, red = name.split("_")
        sel = np.isfinite(res[f"obs_{name}"])
        x = jitter(res["log_age_yr"].to_numpy(), rng, age_jitter)[sel]
        lo = res[f"model_{name}_p50"] - res[f"model_{name}_p16"]
        hi = res[f"model_{name}_p84"] - res[f"model_{name}_p50"]
        ax.errorbar(
            x + 0.012,
            res[f"model_{name}_p50"][sel],
            yerr=[lo[sel], hi[sel]],
            fmt="o",
            ms=2,
            lw=0.3,
            color="tab:orange",
            alpha=0.5,
            label="model median, 16–84 %",
        )
        ax.plot(
            x, res[f"obs_{name}"][sel], "o", ms=2, color="tab:blue", alpha=0.6, label="observed"
        )
        ssp = track[blue] - track[red]
        ax.plot(track["log_age_yr"], ssp, "k-", lw=1, label="SSP, A_V = 0")
        shift = av_typical * (red_vec[blue] - red_vec[red])
        ax.plot(track["log_age_yr"], ssp + shift, "k--", lw=1, label=f"SSP, A_V = {av_typical:.2f}")
        ax.set_xlabel("catalog log age (yr)")
        ax.set_ylabel(f"{blue} − {red} (Vega mag)")
        ax.set_ylim(
            np.nanpercentile(res[f"obs_{name}"], 0.5) - 0.5,
            np.nanpercentile(res[f"obs_{name}"], 99.5) + 0.5,
        )
        ax.set_xlim(6.55, 9.1)
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


def plot_residuals(res, names, labels, title, path, age_jitter, rng):
    """Observed − model residuals against catalog age and mass."""
    fig, axes = plt.subplots(len(names), 2, figsize=(10, 2.6 * len(names)), sharex="col")
    age = jitter(res["log_age_yr"].to_numpy(), rng, age_jitter)
    mass = res["log_mass_msun"].to_numpy()
    for row, (name, label) in enumerate(zip(names, labels, strict=True)):
        resid = res[f"resid_{name}"].to_numpy()
        for col, (x, edges, xlabel) in enumerate(
            [
                (age, AGE_EDGES, "catalog log age (yr)"),
                (mass, MASS_EDGES, "catalog log mass (Msun)"),
            ]
        ):
            ax = axes[row, col]
            ax.plot(x, resid, "o", ms=1.8, color="tab:blue", alpha=0.35)
            fine = np.arange(edges[0], edges[-1] + 1e-9, 0.25)
            b = binned(x, resid, fine)
            ax.fill_between(b[:, 0], b[:, 2], b[:, 3], color="tab:red", alpha=0.2, lw=0)
            ax.plot(b[:, 0], b[:, 1], "-", color="tab:red", lw=1.5)
            ax.axhline(0.0, color="k", lw=0.7)
            ax.set_ylim(-1.5, 1.5)
            ax.set_ylabel(f"Δ({label})", fontsize=9)
            if row == len(names) - 1:
                ax.set_xlabel(xlabel)
    fig.suptitle(f"{title}: observed − model median (red: running median, 16–84 %)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=80)
    plt.close(fig)


def tercile_diagnostics(res: pd.DataFrame, names, columns, min_log_age: float = 7.5) -> str:
    """Median residual in the lowest and highest tercile of each column (log t >= min_log_age)."""
    res = res[res["log_age_yr"] >= min_log_age]
    head = "| split by | lower / upper tercile | " + " | ".join(f"Δ {n}" for n in names) + " |"
    lines = [head, "|---" * (len(names) + 2) + "|"]
    for column in columns:
        x = res[column].to_numpy(float)
        lo, hi = np.nanpercentile(x, [100 / 3, 200 / 3])
        cells = [
            f"{np.nanmedian(res[f'resid_{n}'][x <= lo]):+.2f} → "
            f"{np.nanmedian(res[f'resid_{n}'][x >= hi]):+.2f}"
            for n in names
        ]
        lines.append(f"| {column} | ≤ {lo:.3g} / ≥ {hi:.3g} | " + " | ".join(cells) + " |")
    return f"Median residual, lowest → highest tercile (log t ≥ {min_log_age}):\n\n" + "\n".join(
        lines
    )


def phatter_extra_columns(path: Path) -> pd.DataFrame:
    """PHATTER columns the library reader leaves out: cluster probability, MS star count."""
    from astropy.table import Table

    t = Table.read(path)
    return pd.DataFrame(
        {
            "cluster_id": np.asarray(t["ID"]).astype(np.int64),
            "cluster_frac": np.asarray(t["CLUSTER_FRAC"], dtype=float),
        }
    )


def markdown(summary: pd.DataFrame, labels: dict[str, str], by: str) -> str:
    head = (
        f"| colour | {by} | n | median Δ | scatter | model 16–84 half-width | σ_obs | consistent |"
    )
    lines = [head, "|---|---|---|---|---|---|---|---|"]
    for r in summary.itertuples():
        if r.n == 0:
            continue
        lines.append(
            f"| {labels[r.colour]} | {r.bin_lo:.1f}–{r.bin_hi:.1f} | {r.n} | {r.median_resid:+.2f} | "
            f"{r.scatter:.2f} | {r.model_spread:.2f} | {r.obs_err:.2f} | {r.frac_consistent:.0%} |"
        )
    return "\n".join(lines)


def metallicity_check(zs=(0.004, 0.008, 0.016)) -> str:
    """SSP colours (A_V = 0) at a few ages for several metallicities."""
    ages = (7.0, 7.5, 8.0, 8.5, 9.0)
    rows = {}
    for z in zs:
        pop = build_population(photometry_config(z, 1.0, ages=(7.0, 9.0, 0.5)))
        for age in ages:
            m = ssp_magnitudes(pop.isochrone(age), pop.imf, BANDS)
            rows[(z, age)] = (m["F336W"] - m["F475W"], m["F475W"] - m["F814W"])
    lines = [
        "| log age | " + " | ".join(f"Z = {z}" for z in zs) + " |",
        "|---" * (len(zs) + 1) + "|",
    ]
    for age in ages:
        cells = [f"{rows[(z, age)][0]:+.2f} / {rows[(z, age)][1]:+.2f}" for z in zs]
        lines.append(f"| {age:.1f} | " + " | ".join(cells) + " |")
    return "SSP F336W−F475W / F475W−F814W at A_V = 0:\n\n" + "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference-dir", type=Path, default=Path("../shared/reference"))
    parser.add_argument("--out", type=Path, default=Path("docs/figures"))
    parser.add_argument("--n-realisations", type=int, default=20)
    parser.add_argument("--min-log-mass", type=float, default=0.0, help="skip lighter clusters")
    parser.add_argument("--max-clusters", type=int, default=0, help="random subsample (0: all)")
    parser.add_argument("--m33-z", type=float, default=0.008, help="M33 metallicity Z")
    parser.add_argument("--m31-z", type=float, default=0.009, help="M31 metallicity Z")
    parser.add_argument("--m31-av", type=float, default=M31_FOREGROUND_AV_MAG)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--galaxies", nargs="+", choices=["m33", "m31"], default=["m33", "m31"])
    parser.add_argument("--no-metallicity-check", action="store_true")
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore", module="astropy")
    args.out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    ref = args.reference_dir

    galaxies = [
        (
            "m33",
            "M33 (PHATTER)",
            photometry_config(args.m33_z, 0.85),
            lambda: read_phatter_catalog(ref / "M33_PHATTER_cluster_cat_2023.fits"),
            None,
            0.0,
        ),
        (
            "m31",
            "M31 (PHAT, Johnson+2015/2016)",
            photometry_config(args.m31_z, 0.785),
            lambda: read_phat_m31_catalog(
                ref / "J_ApJ_802_127_table2.fits", ref / "J_ApJ_827_33_table4.fits"
            ),
            args.m31_av,
            0.02,  # M31 ages are quantised to 0.1 dex: jitter them in the figures
        ),
    ]
    for key, title, phot, reader, default_av, age_jitter in galaxies:
        if key not in args.galaxies:
            continue
        t0 = time.perf_counter()
        catalog = reader()
        sample = catalog[~(catalog["log_mass_msun"] < args.min_log_mass)]
        if args.max_clusters and len(sample) > args.max_clusters:
            keep = np.sort(rng.choice(len(sample), args.max_clusters, replace=False))
            sample = sample.iloc[keep]
        population = build_population(phot)
        k, q_terms = reddening_free_index(population, *BANDS)
        indices = colour_indices(COLOURS) | {"Q": q_terms}
        labels = {name: name.replace("_", "−") for name in indices} | {"Q": "Q"}
        prediction, counts = predict_colours(
            population, sample, rng, args.n_realisations, indices, default_av_mag=default_av
        )
        res = colour_residuals(catalog, prediction, indices)
        red_vec = reddening_vector(population, BANDS)
        av_typical = float(np.nanmedian(res["av_mag"]))
        names = list(indices)

        print(
            f"\n## {title}: Z = {phot['isochrones']['metallicity_z']}, "
            f"{phot['distance_mpc']} Mpc, {args.n_realisations} realisations"
        )
        print(f"catalog rows {len(catalog)}, selected {len(sample)}; {counts}")
        print(
            f"Q = (F336W−F475W) − {k:.3f} (F475W−F814W); "
            f"E(F336W−F475W)/A_V = {red_vec['F336W'] - red_vec['F475W']:.3f}, "
            f"E(F475W−F814W)/A_V = {red_vec['F475W'] - red_vec['F814W']:.3f}"
        )
        if default_av is not None:
            d = np.nanmedian(res["resid_F475W_F814W"])
            implied = default_av + d / (red_vec["F475W"] - red_vec["F814W"])
            print(
                f"A_V assumed {default_av} mag; median F475W−F814W residual implies A_V ≈ {implied:.2f}"
            )
        print(
            "\nby age:\n"
            + markdown(summarise_residuals(res, names, "log_age_yr", AGE_EDGES), labels, "log age")
        )
        print(
            "\nby mass:\n"
            + markdown(
                summarise_residuals(res, names, "log_mass_msun", MASS_EDGES), labels, "log M"
            )
        )
        plot_colours(
            res,
            ssp_track(population),
            av_typical,
            red_vec,
            names[:2],
            f"{title}: Z = {phot['isochrones']['metallicity_z']}",
            args.out / f"reference_colours_{key}.png",
            age_jitter,
            rng,
        )
        plot_residuals(
            res,
            names,
            [labels[n] for n in names],
            title,
            args.out / f"reference_residuals_{key}.png",
            age_jitter,
            rng,
        )
        columns = ["av_mag", "log_mass_msun"] if default_av is None else ["log_mass_msun"]
        if key == "m33":
            extra = phatter_extra_columns(ref / "M33_PHATTER_cluster_cat_2023.fits")
            res = res.merge(extra, on="cluster_id", how="left")
            columns.append("cluster_frac")
        print("\n" + tercile_diagnostics(res, names, columns))
        print(f"({time.perf_counter() - t0:.0f} s)")
    if not args.no_metallicity_check:
        print("\n" + metallicity_check())


if __name__ == "__main__":
    main()
