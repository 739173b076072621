"""Compare the mock bank's priors and magnitude selection with real star clusters.

(a) radii and EFF slopes: the bank's half-number radius r_h and gamma (drawn with
``draw_parameters`` from the default config) against Ryon et al. (2015) M83
clusters (R_eff, gamma = 2 eta), plus the PHATTER M33 / PHAT M31 half-light radii;
(b) mass, age and A_V: the bank's priors, before and after its magnitude cuts,
against Adamo et al. (2015)'s M83 mass distribution, Ryon's ages and masses and
PHATTER's ages and A_V; (c) integrated colours and magnitudes of IMF-sampled
mocks that pass the cuts against PHATTER M33 and PHAT M31 clusters. Figures and
numbers are those of docs/mock_bank_vs_real.md:

    .venv/bin/python docs/scripts/mock_priors.py --reference-dir ../shared/reference \
        --out docs/figures

About 65 s on 2 cores with the defaults (fixed seed).
"""

from __future__ import annotations

import argparse
import copy
import multiprocessing
import time
import warnings
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from starclusters.config import grid, load_config  # noqa: E402
from starclusters.mocks.eff import half_number_radius  # noqa: E402
from starclusters.mocks.params import draw_parameters  # noqa: E402
from starclusters.mocks.priors import (  # noqa: E402
    bank_support,
    mock_magnitudes,
    passes_cuts,
    pc_per_arcsec,
    read_mass_cdf,
    read_ryon2015,
)
from starclusters.photometry import (  # noqa: E402
    build_extinction_table,
    build_isochrone_table,
    distance_modulus,
    population_from_config,
)
from starclusters.photometry.reference import (  # noqa: E402
    read_phat_m31_catalog,
    read_phatter_catalog,
)

warnings.filterwarnings("ignore", message=".*did not parse as fits unit.*")

REPO = Path(__file__).resolve().parents[2]
M33_MPC, M31_MPC = 0.85, 0.785
#: Extra bands in the PHAT/PHATTER cameras (ACS/WFC F475W and F814W; F336W is
#: WFC3/UVIS in both, as in the bank). Zero points as in docs/reference_comparison.md.
ACS = {"ACS_F475W": ("HST_ACS_WFC_F475W", 26.168), "ACS_F814W": ("HST_ACS_WFC_F814W", 25.520)}
#: PHATTER's age fits end at log t ~ 8.95 and its A_V fits at 1.9 mag.
PHATTER_MAX_LOG_AGE, PHATTER_MAX_AV = 8.95, 1.9

_POPULATION = None


def _magnitudes_chunk(args):
    params, seed = args
    return mock_magnitudes(_POPULATION, params, np.random.default_rng(seed))


def ks_distance(x, y) -> float:
    """Two-sample Kolmogorov–Smirnov distance max |F_x - F_y|."""
    x, y = np.sort(x[np.isfinite(x)]), np.sort(y[np.isfinite(y)])
    v = np.concatenate([x, y])
    return float(
        np.max(
            np.abs(
                np.searchsorted(x, v, "right") / x.size - np.searchsorted(y, v, "right") / y.size
            )
        )
    )


def pct(x, q=(16, 50, 84)):
    x = np.asarray(x, float)
    return np.nanpercentile(x[np.isfinite(x)], q)


def fmt_pct(x, q=(16, 50, 84), digits=2) -> str:
    lo, mid, hi = pct(x, q)
    return f"{mid:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def frac(mask) -> str:
    mask = np.asarray(mask, bool)
    return f"{100 * mask.mean():.1f} % ({mask.sum()}/{mask.size})"


def scatter_sets(ax, tables, x, y):
    """Scatter column ``y`` against ``x`` for (bank after cuts, M31, M33) with fixed styles."""
    styles = (
        dict(ms=1.5, color="0.45", alpha=0.5, label="bank, cuts"),
        dict(ms=2, color="tab:green", alpha=0.5, label="M31 PHAT"),
        dict(ms=2, color="tab:blue", alpha=0.6, label="M33 PHATTER"),
    )
    for table, style in zip(tables, styles, strict=True):
        ax.plot(table[x], table[y], ".", rasterized=True, **style)


def step_hist(ax, x, bins, label, **kw):
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    ax.hist(
        x, bins=bins, density=True, histtype="step", lw=1.4, label=f"{label} (n={x.size})", **kw
    )


# ---------------------------------------------------------------- (a) radii, gamma


def radii_section(prior, ryon, mocks, m33, m31, pc, out: Path):
    print("\n== (a) r_h and EFF gamma ==")
    rh_lim = mocks["rh_arcsec"]
    lo_pc, hi_pc = rh_lim["min"] * pc, rh_lim["max"] * pc
    print(f"1 arcsec = {pc:.2f} pc at 4.5 Mpc; bank r_h range {lo_pc:.2f}–{hi_pc:.2f} pc")
    bank_rh = prior["rh_arcsec"].to_numpy() * pc
    bank_g = prior["eff_gamma"].to_numpy()
    bank_a = prior["eff_a_arcsec"].to_numpy() * pc
    bank_reff_inf = half_number_radius(prior["eff_a_arcsec"], bank_g) * pc
    rel = ryon[ryon["reliable"]]
    finite = ryon[ryon["eta"] > 1.0]
    print(
        f"Ryon: {len(ryon)} clusters, {len(rel)} with eta > 1.3, {len(finite)} with eta > 1 (finite R_eff)"
    )
    print(f"bank r_h (pc) median [16, 84 %]: {fmt_pct(bank_rh)}")
    print(f"bank r_h 5/95 %: {pct(bank_rh, (5, 95)).round(2)}")
    print(f"Ryon R_eff (eta>1.3) median [16, 84 %]: {fmt_pct(rel['reff_pc'])}")
    print(f"Ryon R_eff (eta>1)   median [16, 84 %]: {fmt_pct(finite['reff_pc'])}")
    for name, r in (("eta>1.3", rel), ("eta>1", finite)):
        x = r["reff_pc"].to_numpy()
        print(
            f"Ryon {name}: R_eff < {lo_pc:.2f} pc: {frac(x < lo_pc)}, > {hi_pc:.2f} pc: {frac(x > hi_pc)}, "
            f"outside: {frac((x < lo_pc) | (x > hi_pc))}"
        )
    r_rel = rel["reff_pc"].to_numpy()
    p5, p95 = np.percentile(r_rel, [5, 95])
    print(
        f"Ryon eta>1.3 R_eff range {r_rel.min():.2f}–{r_rel.max():.2f} pc; bank r_h above Ryon's "
        f"95th percentile ({p95:.2f} pc): {frac(bank_rh > p95)}, above Ryon's max: "
        f"{frac(bank_rh > r_rel.max())}; below Ryon's 5th percentile ({p5:.2f} pc): {frac(bank_rh < p5)}"
    )
    print(
        f"KS distance log r_h bank vs Ryon eta>1.3: {ks_distance(bank_rh, rel['reff_pc'].to_numpy()):.2f}"
    )
    ratio = bank_reff_inf / bank_rh
    print(f"bank: untruncated / truncated r_h, median [16, 84 %]: {fmt_pct(ratio)}")
    print(f"bank: a (pc) median [16, 84 %]: {fmt_pct(bank_a)}")

    # gamma
    g_lim = mocks["eff_gamma"]
    print(
        f"\nbank gamma median [16, 84 %]: {fmt_pct(bank_g)}; bank gamma < 2.6 (eta < 1.3): {frac(bank_g < 2.6)}"
    )
    print(f"Ryon gamma=2 eta (eta>1.3) median [16, 84 %]: {fmt_pct(rel['gamma'])}")
    print(f"Ryon gamma (all) median [16, 84 %]: {fmt_pct(ryon['gamma'])}")
    for name, r in (("eta>1.3", rel), ("all", ryon)):
        g = r["gamma"].to_numpy()
        print(
            f"Ryon {name}: gamma < {g_lim['min']}: {frac(g < g_lim['min'])}, > {g_lim['max']}: {frac(g > g_lim['max'])}"
        )
    steep = rel[rel["gamma"] > g_lim["max"]]
    print(
        f"Ryon eta>1.3 with gamma > {g_lim['max']}: median e_Eta {np.median(steep['eta_err']):.2f}; "
        f"within 1 sigma of gamma = {g_lim['max']}: "
        f"{frac(2 * (steep['eta'] - steep['eta_err']) <= g_lim['max'])}"
    )
    g95 = np.percentile(rel["gamma"], 95)
    print(f"bank gamma above Ryon eta>1.3 95th percentile ({g95:.2f}): {frac(bank_g > g95)}")
    print(
        f"Ryon all: eta < 1.3 (gamma < 2.6): {frac(ryon['eta'] < 1.3)}; eta <= 1 (R_eff infinite): {frac(ryon['eta'] <= 1)}"
    )
    print(
        f"KS distance gamma bank vs Ryon eta>1.3: {ks_distance(np.log(bank_g), np.log(rel['gamma'].to_numpy())):.2f}"
    )

    # joint support
    sup = bank_support(rel["eff_a_pc"] / pc, rel["gamma"], mocks)
    print(
        "\nRyon eta>1.3 clusters inside the bank's support (a box, gamma box, truncated r_h range):"
    )
    for key in ("a_in", "gamma_in", "rh_in", "inside"):
        print(f"  {key}: {frac(sup[key])}")
    tr = sup["rh_arcsec"] * pc / rel["reff_pc"].to_numpy()
    print(
        f'  Ryon truncated (2.5") / untruncated r_h median [5, 95 %]: {fmt_pct(tr, (5, 50, 95), 3)}'
    )
    sup_all = bank_support(finite["eff_a_pc"] / pc, finite["gamma"], mocks)
    print(f"Ryon eta>1 inside the support: {frac(sup_all['inside'])}")
    shallow = finite[~finite["reliable"]]
    sup_sh = bank_support(shallow["eff_a_pc"] / pc, shallow["gamma"], mocks)
    print(
        "Ryon 1 < eta <= 1.3 inside the support: "
        + ", ".join(f"{k} {frac(sup_sh[k])}" for k in ("a_in", "gamma_in", "rh_in", "inside"))
    )
    print(f"Ryon a (pc, eta>1.3) median [16, 84 %]: {fmt_pct(rel['eff_a_pc'])}")
    # correlations the bank does not have (it draws r_h independently of mass and age)
    sp = (
        rel[["reff_pc", "log_mass_msun", "log_age_yr", "gamma"]]
        .assign(reff_pc=np.log10(rel["reff_pc"]))
        .corr(method="spearman")
    )
    print(
        "Ryon eta>1.3 Spearman rho: log R_eff–log M {:.2f}, log R_eff–log age {:.2f}, log R_eff–gamma {:.2f}".format(
            sp.loc["reff_pc", "log_mass_msun"],
            sp.loc["reff_pc", "log_age_yr"],
            sp.loc["reff_pc", "gamma"],
        )
    )
    for name, r in (("Ryon eta>1.3", rel), ("Ryon all", ryon)):
        for lo, hi in ((0, 7.5), (7.5, 8.5), (8.5, 11)):
            s = r[(r["log_age_yr"] >= lo) & (r["log_age_yr"] < hi)]
            print(
                f"  {name}, log age {lo}–{hi}: n={len(s)}, median R_eff {np.nanmedian(s['reff_pc']):.2f} pc, "
                f"median gamma {np.median(s['gamma']):.2f}"
            )

    # other galaxies' half-light radii
    m33_pc = m33["radius_eff_arcsec"].to_numpy() * pc_per_arcsec(M33_MPC)
    m31_pc = m31["radius_eff_arcsec"].to_numpy() * pc_per_arcsec(M31_MPC)
    for name, x in (("M33 PHATTER", m33_pc), ("M31 PHAT", m31_pc)):
        x = x[np.isfinite(x)]
        print(
            f"{name} half-light radius (pc) median [16, 84 %]: {fmt_pct(x)}; < {lo_pc:.2f}: {frac(x < lo_pc)}, "
            f"> {hi_pc:.2f}: {frac(x > hi_pc)}"
        )

    fig, axes = plt.subplots(2, 2, figsize=(10.5, 8))
    ax = axes[0, 0]
    bins = np.linspace(-0.6, 1.8, 49)
    step_hist(ax, np.log10(bank_rh), bins, 'bank r_h (2.5" truncation)', color="k")
    step_hist(ax, np.log10(rel["reff_pc"]), bins, "Ryon+15 M83 R_eff, η > 1.3", color="tab:red")
    step_hist(ax, np.log10(m33_pc), bins, "PHATTER M33 r_hl", color="tab:blue", ls="--")
    step_hist(ax, np.log10(m31_pc), bins, "PHAT M31 r_hl", color="tab:green", ls=":")
    for v in (lo_pc, hi_pc):
        ax.axvline(np.log10(v), color="0.5", lw=0.8)
    ax.set_xlabel("log10 half-light / half-number radius (pc)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title('(a) radii; grey: bank range 0.04–0.4" at 4.5 Mpc', fontsize=9)

    ax = axes[0, 1]
    gbins = np.linspace(np.log10(2.0), np.log10(20.0), 41)
    step_hist(ax, np.log10(bank_g), gbins, "bank γ", color="k")
    step_hist(ax, np.log10(rel["gamma"]), gbins, "Ryon γ = 2η, η > 1.3", color="tab:red")
    step_hist(
        ax,
        np.log10(ryon["gamma"].clip(2.0, 20.0)),
        gbins,
        "Ryon γ = 2η, all (clipped)",
        color="tab:orange",
        ls="--",
    )
    for v in (g_lim["min"], g_lim["max"], 2.6):
        ax.axvline(np.log10(v), color="0.5", lw=0.8, ls="-" if v != 2.6 else ":")
    ax.set_xticks(np.log10([2, 3, 4, 6, 8, 12, 20]), ["2", "3", "4", "6", "8", "12", "20"])
    ax.set_xlabel("EFF γ (log axis; dotted: γ = 2.6, η = 1.3)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title("(b) EFF slope", fontsize=9)

    ax = axes[1, 0]
    ax.hist2d(np.log10(bank_rh), np.log10(bank_g), bins=[40, 40], cmap="Greys", rasterized=True)
    other = ryon[(ryon["eta"] > 1.0) & ~ryon["reliable"]]
    ax.plot(
        np.log10(other["reff_pc"]),
        np.log10(other["gamma"]),
        ".",
        ms=3,
        color="tab:orange",
        alpha=0.6,
        label="Ryon 1 < η ≤ 1.3",
    )
    ax.plot(
        np.log10(rel["reff_pc"]),
        np.log10(rel["gamma"]),
        ".",
        ms=4,
        color="tab:red",
        label="Ryon η > 1.3",
    )
    ax.set_xlim(-0.8, 2.2)
    ax.set_ylim(np.log10(2.0), np.log10(20.0))
    ax.set_yticks(np.log10([2, 3, 4, 6, 8, 12, 20]), ["2", "3", "4", "6", "8", "12", "20"])
    for v in (lo_pc, hi_pc):
        ax.axvline(np.log10(v), color="0.5", lw=0.8)
    ax.axhline(np.log10(g_lim["max"]), color="0.5", lw=0.8)
    ax.set_xlabel("log10 r_h / R_eff (pc)")
    ax.set_ylabel("γ")
    ax.legend(fontsize=7, loc="upper right")
    ax.set_title("(c) bank density (grey) and Ryon clusters", fontsize=9)

    ax = axes[1, 1]
    ax.hist2d(np.log10(bank_a), np.log10(bank_g), bins=[40, 40], cmap="Greys", rasterized=True)
    ax.plot(
        np.log10(rel["eff_a_pc"]),
        np.log10(rel["gamma"]),
        ".",
        ms=4,
        color="tab:red",
        label="Ryon η > 1.3 (a from R_core, η)",
    )
    a_lim = mocks["eff_a_arcsec"]
    ax.add_patch(
        plt.Rectangle(
            (np.log10(a_lim["min"] * pc), np.log10(g_lim["min"])),
            np.log10(a_lim["max"] / a_lim["min"]),
            np.log10(g_lim["max"] / g_lim["min"]),
            fill=False,
            color="0.4",
            lw=0.8,
        )
    )
    ax.set_ylim(np.log10(2.0), np.log10(20.0))
    ax.set_yticks(np.log10([2, 3, 4, 6, 8, 12, 20]), ["2", "3", "4", "6", "8", "12", "20"])
    ax.set_xlabel("log10 EFF a (pc)")
    ax.set_ylabel("γ")
    ax.legend(fontsize=7, loc="upper left")
    ax.set_title("(d) EFF (a, γ): bank box and r_h-accepted density", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "mock_priors_radii.png", dpi=80)
    plt.close(fig)


# ---------------------------------------------------------- (b) mass, age, A_V


def ccdf(x, grid_x):
    x = np.sort(np.asarray(x, float))
    return 1.0 - np.searchsorted(x, grid_x, "right") / x.size


def population_section(prior, phot_tab, kept, ryon, adamo, m33, mocks, out: Path):
    print("\n== (b) mass, age and A_V priors ==")
    m_lo, m_hi = mocks["log_mass_msun"]["min"], mocks["log_mass_msun"]["max"]
    x0 = float(adamo["log_mass_msun"].iloc[0])
    y0 = float(adamo["fraction"].iloc[0])
    fit = adamo[adamo["log_mass_msun"] <= 4.6]
    slope = np.polyfit(fit["log_mass_msun"], np.log10(fit["fraction"]), 1)[0]
    print(
        f"Adamo+15 CCDF: starts at log M {x0:.2f} (fraction {y0:.3f}); log N(>M) slope {slope:.2f} "
        f"for log M {x0:.2f}–4.6, i.e. dN/dM ∝ M^{slope - 1:.2f}"
    )
    kept_m = phot_tab.loc[kept, "log_mass_msun"].to_numpy()
    kept_young = phot_tab.loc[kept & (phot_tab["log_age_yr"] <= 8.5), "log_mass_msun"].to_numpy()
    print("P(> M | > log M0) with log M0 = Adamo's first point:")
    for m in (4.0, 4.5, 5.0):
        ad = np.interp(m, adamo["log_mass_msun"], adamo["fraction"]) / y0
        pr = (m_hi - m) / (m_hi - x0)
        kp = np.mean(kept_m[kept_m > x0] > m)
        ky = np.mean(kept_young[kept_young > x0] > m)
        ry = np.mean(ryon["log_mass_msun"][ryon["log_mass_msun"] > x0] > m)
        print(
            f"  log M > {m}: Adamo {ad:.3f}, bank prior {pr:.3f}, bank after cuts {kp:.3f} "
            f"(log t ≤ 8.5: {ky:.3f}), Ryon {ry:.3f}"
        )
    print(
        f"Ryon log M median [16, 84 %]: {fmt_pct(ryon['log_mass_msun'])}, > {m_hi}: {frac(ryon['log_mass_msun'] > m_hi)}, < {m_lo}: {frac(ryon['log_mass_msun'] < m_lo)}"
    )
    print(
        f"Ryon log age median [16, 84 %]: {fmt_pct(ryon['log_age_yr'])}, > 9: {frac(ryon['log_age_yr'] > 9)}, < 6.6: {frac(ryon['log_age_yr'] < 6.6)}"
    )
    print(
        f"bank after cuts: log M median {np.median(kept_m):.2f}; log age > 9: {frac(phot_tab.loc[kept, 'log_age_yr'] > 9)}; prior > 9: {frac(prior['log_age_yr'] > 9)}"
    )
    print(
        f"bank after cuts: log age median [16, 84 %]: {fmt_pct(phot_tab.loc[kept, 'log_age_yr'])}"
    )
    av_k = phot_tab.loc[kept, "av_mag"].to_numpy()
    print(
        f"bank A_V prior median {np.median(prior['av_mag']):.2f}; after cuts median [16, 84 %]: {fmt_pct(av_k)}; A_V > 1.5 after cuts: {frac(av_k > 1.5)}"
    )
    m33_av = m33["av_mag"].to_numpy()
    m33_av = m33_av[np.isfinite(m33_av)]
    print(
        f"PHATTER M33 A_V median [16, 84 %]: {fmt_pct(m33_av)}; > 1.5: {frac(m33_av > 1.5)}; max {m33_av.max():.2f}"
    )
    m33_age = m33["log_age_yr"].to_numpy()
    print(
        f"PHATTER M33 log age median [16, 84 %]: {fmt_pct(m33_age)}; log M median [16, 84 %]: {fmt_pct(m33['log_mass_msun'])}; log M ≥ 3.5: {frac(m33['log_mass_msun'].dropna() >= 3.5)}"
    )

    fig, axes = plt.subplots(1, 3, figsize=(13, 3.9))
    ax = axes[0]
    gx = np.linspace(3.0, 6.3, 200)
    ax.plot(
        adamo["log_mass_msun"],
        adamo["fraction"] / y0,
        "o-",
        ms=3,
        color="tab:purple",
        label="Adamo+15 M83 (digitised)",
    )
    for x, lab, style in (
        (prior["log_mass_msun"], "bank prior", dict(color="k", ls="--")),
        (kept_m, "bank after magnitude cuts", dict(color="k")),
        (ryon["log_mass_msun"], "Ryon+15 M83", dict(color="tab:red")),
    ):
        x = np.asarray(x)
        x = x[x > x0]
        ax.plot(gx, ccdf(x, gx), label=f"{lab} (n={x.size})", **style)
    ax.set_yscale("log")
    ax.set_ylim(1e-3, 1.2)
    ax.set_xlim(x0 - 0.05, 6.3)
    ax.set_xlabel(f"log10 M (Msun); all normalised above log M = {x0:.2f}")
    ax.set_ylabel("fraction above M")
    ax.legend(fontsize=7)
    ax.set_title("(a) mass distribution", fontsize=9)

    ax = axes[1]
    bins = np.arange(6.575, 10.2, 0.1)
    step_hist(ax, prior["log_age_yr"], bins, "bank prior", color="k", ls="--")
    step_hist(ax, phot_tab.loc[kept, "log_age_yr"], bins, "bank after cuts", color="k")
    step_hist(ax, ryon["log_age_yr"], bins, "Ryon+15 M83", color="tab:red")
    step_hist(ax, m33_age, bins, "PHATTER M33", color="tab:blue")
    ax.set_xlabel("log10 age (yr)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title("(b) ages", fontsize=9)

    ax = axes[2]
    bins = np.arange(-0.05, 3.1, 0.1)
    step_hist(ax, prior["av_mag"], bins, "bank prior", color="k", ls="--")
    step_hist(ax, av_k, bins, "bank after cuts", color="k")
    step_hist(ax, m33_av, bins, "PHATTER M33 (CMD fits)", color="tab:blue")
    ax.set_xlabel("A_V (mag)")
    ax.set_ylabel("density")
    ax.legend(fontsize=7)
    ax.set_title("(c) extinction", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "mock_priors_mass_age.png", dpi=80)
    plt.close(fig)


# ------------------------------------------------------------- (c) colours


def colour_section(phot_tab, kept, limits, dm_m83, m33, m31, out: Path):
    print("\n== (c) integrated colours and magnitudes ==")
    t = phot_tab
    n = len(t)
    print(f"drawn {n} mocks; pass the cuts {limits}: {frac(kept)}")
    fails = {b: t[f"mag_{b}"].to_numpy() >= lim for b, lim in limits.items()}
    for b in limits:
        only = fails[b] & ~np.any([fails[o] for o in limits if o != b], axis=0)
        print(f"  fail {b}: {frac(fails[b])}; fail only {b}: {frac(only)}")
    for lo, hi in ((3.5, 4.0), (4.0, 4.5), (4.5, 5.0), (5.0, 5.5)):
        s = (t["log_mass_msun"] >= lo) & (t["log_mass_msun"] < hi)
        line = f"  kept, log M {lo}–{hi}: {100 * kept[s].mean():.0f} %;"
        for alo, ahi in ((6.6, 7.5), (7.5, 8.5), (8.5, 9.3), (9.3, 10.15)):
            sa = s & (t["log_age_yr"] >= alo) & (t["log_age_yr"] < ahi)
            line += f" log t {alo}–{ahi}: {100 * kept[sa].mean():.0f} %"
        print(line)
    abs_cut = {b: lim - dm_m83 for b, lim in limits.items()}
    print(
        "cuts in absolute magnitude (incl. extinction): "
        + ", ".join(f"{b} < {v:.2f}" for b, v in abs_cut.items())
    )

    bank = pd.DataFrame(
        {
            "c336_814": t["mag_F336W"] - t["mag_F814W"],
            "c438_814": t["mag_F438W"] - t["mag_F814W"],
            "abs814": t["mag_F814W"] - dm_m83,
            "abs336": t["mag_F336W"] - dm_m83,
            "acs336_475": t["mag_F336W"] - t["mag_ACS_F475W"],
            "acs475_814": t["mag_ACS_F475W"] - t["mag_ACS_F814W"],
            "acs336_814": t["mag_F336W"] - t["mag_ACS_F814W"],
            "acs_abs814": t["mag_ACS_F814W"] - dm_m83,
        }
    )
    bk = bank[kept]
    matched = (
        kept
        & (t["log_age_yr"] <= PHATTER_MAX_LOG_AGE + 0.025).to_numpy()
        & (t["av_mag"] <= PHATTER_MAX_AV).to_numpy()
    )
    bm = bank[matched]
    print(
        f"WFC3 vs ACS F814W for kept mocks (WFC3 − ACS): {fmt_pct(t.loc[kept, 'mag_F814W'] - t.loc[kept, 'mag_ACS_F814W'], digits=3)}"
    )

    def real(cat, dm):
        r = pd.DataFrame(
            {
                "acs336_814": cat["mag_F336W"] - cat["mag_F814W"],
                "acs336_475": cat["mag_F336W"] - cat["mag_F475W"],
                "acs475_814": cat["mag_F475W"] - cat["mag_F814W"],
                "acs_abs814": cat["mag_F814W"] - dm,
                "abs336": cat["mag_F336W"] - dm,
            }
        )
        r["passes"] = (r["abs336"] < abs_cut["F336W"]) & (r["acs_abs814"] < abs_cut["F814W"])
        return r

    r33 = real(m33, distance_modulus(M33_MPC))
    r31 = real(m31, distance_modulus(M31_MPC))
    print(
        f"m − M: M83 {dm_m83:.3f}, M33 {distance_modulus(M33_MPC):.3f}, M31 {distance_modulus(M31_MPC):.3f}"
    )
    for name, r, cat in (("M33", r33, m33), ("M31", r31, m31)):
        both = r["abs336"].notna() & r["acs_abs814"].notna()
        print(
            f"{name}: {len(r)} clusters, F336W and F814W both measured: {both.sum()}; would pass the "
            f"F336W and F814W cuts at 4.5 Mpc: {int((r['passes'] & both).sum())} "
            f"({100 * (r['passes'] & both).sum() / both.sum():.1f} % of measured)"
        )
        lm = cat["log_mass_msun"].to_numpy()
        pas = (r["passes"] & both).to_numpy()
        if pas.any():
            print(
                f"  catalog log M of those passing: median {np.nanmedian(lm[pas]):.2f}, range {np.nanmin(lm[pas]):.2f}–{np.nanmax(lm[pas]):.2f}"
            )
        if "apcor" in cat:
            print(
                f"  APCOR median {np.nanmedian(cat['apcor']):.3f}, 5 % {np.nanpercentile(cat['apcor'], 5):.3f}"
            )

    low_av = (
        kept
        & (t["log_age_yr"] <= PHATTER_MAX_LOG_AGE + 0.025).to_numpy()
        & (t["av_mag"] <= 0.8).to_numpy()
    )
    rows = [
        ("bank after cuts", bk),
        (f"bank after cuts, log t ≤ {PHATTER_MAX_LOG_AGE}, A_V ≤ {PHATTER_MAX_AV}", bm),
        (f"bank after cuts, log t ≤ {PHATTER_MAX_LOG_AGE}, A_V ≤ 0.8", bank[low_av]),
        ("M33 all", r33),
        ("M33 passing cuts", r33[r33["passes"]]),
        ("M31 all", r31),
        ("M31 passing cuts", r31[r31["passes"]]),
    ]
    print("\nmedian [5, 95 %] of: F336W−F814W(ACS) | F336W−F475W | F475W−F814W | M_F814W(ACS)")
    for name, d in rows:
        cells = [
            fmt_pct(d[c], (5, 50, 95))
            for c in ("acs336_814", "acs336_475", "acs475_814", "acs_abs814")
        ]
        print(f"  {name} (n={len(d)}): " + " | ".join(cells))
    print(f"bank (WFC3) F336W−F814W median [5, 95 %]: {fmt_pct(bk['c336_814'], (5, 50, 95))}")
    print(f"bank (WFC3) F438W−F814W median [5, 95 %]: {fmt_pct(bk['c438_814'], (5, 50, 95))}")
    print(f"bank (WFC3) M_F814W median [5, 95 %]: {fmt_pct(bk['abs814'], (5, 50, 95))}")

    # coverage of the real clusters' colours by the bank
    lo99, hi99 = np.nanpercentile(bk["acs336_814"], [0.5, 99.5])
    print(f"\nbank F336W−F814W 0.5–99.5 %: {lo99:.2f} to {hi99:.2f}")
    step = 0.2
    e1 = np.arange(-3.0, 4.0 + step, step)
    e2 = np.arange(-1.5, 4.0 + step, step)
    h, _, _ = np.histogram2d(bk["acs336_475"], bk["acs475_814"], bins=[e1, e2])
    for name, d in rows[3:]:
        c = d["acs336_814"].to_numpy()
        c = c[np.isfinite(c)]
        x, y = d["acs336_475"].to_numpy(), d["acs475_814"].to_numpy()
        ok = np.isfinite(x) & np.isfinite(y)
        i = np.clip(np.digitize(x[ok], e1) - 1, 0, len(e1) - 2)
        j = np.clip(np.digitize(y[ok], e2) - 1, 0, len(e2) - 2)
        inside_grid = (x[ok] >= e1[0]) & (x[ok] < e1[-1]) & (y[ok] >= e2[0]) & (y[ok] < e2[-1])
        counts = np.where(inside_grid, h[i, j], 0)
        print(
            f"  {name}: F336W−F814W bluer than bank 0.5 %: {frac(c < lo99)}, redder than 99.5 %: {frac(c > hi99)}; "
            f"in (F336W−F475W, F475W−F814W) cells of {step} mag with no bank mock: {frac(counts == 0)}, "
            f"with < 3: {frac(counts < 3)}"
        )
    for col in ("acs336_814", "acs475_814"):
        p95 = max(np.nanpercentile(r33[col], 95), np.nanpercentile(r31[col], 95))
        print(
            f"  bank after cuts redder in {col} than the M33/M31 95th percentile ({p95:.2f}): "
            f"{frac(bk[col] > p95)}"
        )
    # where are the empty-cell M33 clusters?
    x, y = r33["acs336_475"].to_numpy(), r33["acs475_814"].to_numpy()
    ok = np.isfinite(x) & np.isfinite(y)
    i = np.clip(np.digitize(x, e1) - 1, 0, len(e1) - 2)
    j = np.clip(np.digitize(y, e2) - 1, 0, len(e2) - 2)
    empty = ok & (h[i, j] == 0)
    if empty.any():
        ages = m33["log_age_yr"].to_numpy()[empty]
        print(
            f"  M33 in empty cells: F336W−F475W median {np.median(x[empty]):.2f}, F475W−F814W median {np.median(y[empty]):.2f}, "
            f"catalog log age median {np.nanmedian(ages):.2f}, log M median {np.nanmedian(m33['log_mass_msun'].to_numpy()[empty]):.2f}, "
            f"F475W−F814W > 1.5: {int((y[empty] > 1.5).sum())}, F475W−F814W < 0: {int((y[empty] < 0).sum())}"
        )
        lm = m33["log_mass_msun"].to_numpy()
        for lo, hi in ((0, 3.5), (3.5, 9)):
            sel = ok & (lm >= lo) & (lm < hi)
            print(f"  M33 with catalog log M {lo}–{hi}: in empty cells {frac(empty[sel])}")
    sel = kept & (t["av_mag"] <= 0.3).to_numpy() & t["log_age_yr"].between(7.5, 8.0).to_numpy()
    if sel.any():
        print(
            f"  bank after cuts, A_V ≤ 0.3, log t 7.5–8.0 (n={sel.sum()}): F475W−F814W min "
            f"{bank.loc[sel, 'acs475_814'].min():.2f}, 5 % "
            f"{np.percentile(bank.loc[sel, 'acs475_814'], 5):.2f}"
        )

    fig, axes = plt.subplots(2, 3, figsize=(14, 8))
    ax = axes[0, 0]
    bins = np.arange(-3.0, 4.0, 0.1)
    step_hist(ax, bk["acs336_814"], bins, "bank, cuts", color="k")
    step_hist(
        ax,
        bm["acs336_814"],
        bins,
        f"bank, cuts, log t ≤ {PHATTER_MAX_LOG_AGE}, A_V ≤ {PHATTER_MAX_AV}",
        color="0.5",
        ls="--",
    )
    step_hist(ax, r33["acs336_814"], bins, "M33 PHATTER", color="tab:blue")
    step_hist(
        ax,
        r33.loc[r33["passes"], "acs336_814"],
        bins,
        "M33 passing cuts",
        color="tab:cyan",
        ls="--",
    )
    step_hist(ax, r31["acs336_814"], bins, "M31 PHAT", color="tab:green", ls=":")
    ax.set_xlabel("F336W − F814W (ACS F814W; Vega)")
    ax.set_ylabel("density")
    ax.legend(fontsize=6)
    ax.set_title("(a) F336W − F814W", fontsize=9)

    ax = axes[0, 1]
    bins = np.arange(-1.0, 4.0, 0.1)
    step_hist(ax, bk["c438_814"], bins, "bank, cuts (WFC3)", color="k")
    step_hist(
        ax,
        bm["c438_814"],
        bins,
        f"bank, cuts, log t ≤ {PHATTER_MAX_LOG_AGE}, A_V ≤ {PHATTER_MAX_AV}",
        color="0.5",
        ls="--",
    )
    step_hist(ax, r33["acs475_814"], bins, "M33 F475W − F814W (ACS)", color="tab:blue", alpha=0.7)
    ax.set_xlabel("F438W − F814W (bank) / F475W − F814W (M33)")
    ax.set_ylabel("density")
    ax.legend(fontsize=6)
    ax.set_title("(b) blue-optical − F814W (no M33 F438W)", fontsize=9)

    ax = axes[0, 2]
    bins = np.arange(-16, -1, 0.25)
    step_hist(ax, bk["acs_abs814"], bins, "bank, cuts", color="k")
    step_hist(ax, bank["acs_abs814"], bins, "bank, all drawn", color="k", ls=":")
    step_hist(ax, r33["acs_abs814"], bins, "M33 PHATTER", color="tab:blue")
    step_hist(ax, r31["acs_abs814"], bins, "M31 PHAT", color="tab:green", ls=":")
    ax.axvline(abs_cut["F814W"], color="0.5", lw=0.8)
    ax.set_xlabel("M_F814W = m − (m − M) (includes extinction)")
    ax.set_ylabel("density")
    ax.legend(fontsize=6)
    ax.set_title("(c) absolute F814W; grey: bank cut at 4.5 Mpc", fontsize=9)

    ax = axes[1, 0]
    scatter_sets(ax, (bk, r31, r33), "acs336_814", "acs_abs814")
    ax.axhline(abs_cut["F814W"], color="0.5", lw=0.8)
    ax.set_ylim(-2, -16)
    ax.set_xlim(-3, 4)
    ax.set_xlabel("F336W − F814W")
    ax.set_ylabel("M_F814W")
    ax.legend(fontsize=7, markerscale=4)
    ax.set_title("(d) colour–magnitude", fontsize=9)

    ax = axes[1, 1]
    scatter_sets(ax, (bk, r31, r33), "acs475_814", "acs336_475")
    # reddening vector for A_V = 1 (docs/reference_comparison.md: 0.444 and 0.596 per mag of A_V)
    ax.annotate(
        "",
        xy=(2.4 + 0.596, -2.2 + 0.444),
        xytext=(2.4, -2.2),
        arrowprops=dict(arrowstyle="->", lw=1.2),
    )
    ax.text(2.4, -2.45, "A_V = 1", fontsize=7)
    ax.set_xlim(-1.5, 4)
    ax.set_ylim(2.5, -3)
    ax.set_xlabel("F475W − F814W (ACS)")
    ax.set_ylabel("F336W − F475W")
    ax.legend(fontsize=7, markerscale=4)
    ax.set_title("(e) colour–colour", fontsize=9)

    ax = axes[1, 2]
    edges = np.arange(3.5, 5.51, 0.125)
    mid = 0.5 * (edges[1:] + edges[:-1])
    for (alo, ahi), col in zip(
        ((6.6, 7.5), (7.5, 8.5), (8.5, 9.3), (9.3, 10.15)),
        ("tab:blue", "tab:green", "tab:orange", "tab:red"),
        strict=True,
    ):
        f = []
        for lo, hi in zip(edges[:-1], edges[1:], strict=True):
            s = (
                (t["log_mass_msun"] >= lo)
                & (t["log_mass_msun"] < hi)
                & (t["log_age_yr"] >= alo)
                & (t["log_age_yr"] < ahi)
            )
            f.append(kept[s.to_numpy()].mean() if s.sum() else np.nan)
        ax.plot(mid, f, "o-", ms=3, color=col, label=f"log t {alo}–{ahi}")
    ax.set_xlabel("log10 M (Msun)")
    ax.set_ylabel("fraction passing the cuts")
    ax.legend(fontsize=7)
    ax.set_title("(f) bank selection (A_V uniform 0–3)", fontsize=9)
    fig.tight_layout()
    fig.savefig(out / "mock_colours_vs_real.png", dpi=75)
    plt.close(fig)


# -------------------------------------------------------------------- main


def read_radii(path_m33, path_m31):
    """Half-light radii (arcsec) of PHATTER (F475W pixels × 0.05″) and PHAT M31 (Reff)."""
    from astropy.table import Table

    t33 = Table.read(path_m33)
    t31 = Table.read(path_m31)
    r33 = pd.DataFrame(
        {
            "cluster_id": np.asarray(t33["ID"], np.int64),
            "radius_eff_arcsec": np.ma.filled(
                np.ma.asarray(t33["RADIUS_EFF_ARCSEC"], float), np.nan
            ),
            "apcor": np.ma.filled(np.ma.asarray(t33["APCOR"], float), np.nan),
        }
    )
    r31 = pd.DataFrame(
        {
            "cluster_id": np.asarray(t31["APID"], np.int64),
            "radius_eff_arcsec": np.ma.filled(np.ma.asarray(t31["Reff"], float), np.nan),
        }
    )
    return r33, r31


def main(argv=None):
    global _POPULATION
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reference-dir", type=Path, default=REPO.parent / "shared" / "reference")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures")
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--n-prior", type=int, default=20_000, help="parameter draws for (a), (b)")
    parser.add_argument("--n-phot", type=int, default=4_000, help="IMF-sampled mocks for (b), (c)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=2025)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()

    config = load_config(args.config)
    mocks = config["mocks"]
    phot = copy.deepcopy(config["photometry"])
    bands = list(config["bands"])
    ages = grid(phot["isochrones"]["log_age_yr"], "photometry.isochrones.log_age_yr")
    avs = grid(phot["extinction"]["av_mag"], "photometry.extinction.av_mag")
    pc = pc_per_arcsec(phot["distance_mpc"])
    dm = distance_modulus(phot["distance_mpc"])
    limits = dict(phot["magnitude_limits"])
    seeds = np.random.SeedSequence(args.seed).spawn(2 + args.workers)

    prior = draw_parameters(args.n_prior, ages, avs, mocks, np.random.default_rng(seeds[0]))
    ref = args.reference_dir
    ryon = read_ryon2015(ref / "Ryon2015_M83_table3.csv")
    adamo = read_mass_cdf(ref / "m83_mass_cdf_adamo2015.csv")
    m33 = read_phatter_catalog(
        ref / "M33_PHATTER_cluster_cat_2023.fits", ("F336W", "F475W", "F814W")
    )
    m31 = read_phat_m31_catalog(
        ref / "J_ApJ_802_127_table2.fits",
        ref / "J_ApJ_827_33_table4.fits",
        ("F336W", "F475W", "F814W"),
    )
    rad33, rad31 = read_radii(
        ref / "M33_PHATTER_cluster_cat_2023.fits", ref / "J_ApJ_802_127_table2.fits"
    )
    m33 = m33.merge(rad33, on="cluster_id", how="left", validate="one_to_one")
    m31 = m31.merge(rad31, on="cluster_id", how="left", validate="one_to_one")
    radii_section(prior, ryon, mocks, m33, rad31, pc, args.out)

    # IMF-sampled mocks in the bank's bands plus the PHAT/PHATTER ACS bands
    for band, (curve, zp) in ACS.items():
        phot["filter_curves"][band] = curve
        phot["vega_zeropoint_mag"][band] = zp
    all_bands = bands + list(ACS)
    iso, _ = build_isochrone_table(phot, all_bands)
    ext, _ = build_extinction_table(phot, all_bands)
    _POPULATION = population_from_config(iso, ext, phot, all_bands)
    print(f"\nisochrones built in {time.time() - t0:.0f} s")
    draws = draw_parameters(args.n_phot, ages, avs, mocks, np.random.default_rng(seeds[1]))
    bounds = np.linspace(0, len(draws), args.workers + 1).astype(int)
    chunks = [
        (draws.iloc[lo:hi], seeds[2 + k])
        for k, (lo, hi) in enumerate(zip(bounds[:-1], bounds[1:], strict=True))
    ]
    if args.workers > 1:
        ctx = multiprocessing.get_context("fork")
        with ProcessPoolExecutor(args.workers, mp_context=ctx) as pool:
            mags = pd.concat(pool.map(_magnitudes_chunk, chunks))
    else:
        mags = pd.concat(map(_magnitudes_chunk, chunks))
    phot_tab = pd.concat([draws, mags], axis=1)
    kept = passes_cuts(phot_tab, limits)
    print(f"{args.n_phot} mocks sampled in {time.time() - t0:.0f} s")

    population_section(prior, phot_tab, kept, ryon, adamo, m33, mocks, args.out)
    colour_section(phot_tab, kept, limits, dm, m33, m31, args.out)
    print(f"\ndone in {time.time() - t0:.0f} s; figures in {args.out}")


if __name__ == "__main__":
    main()
