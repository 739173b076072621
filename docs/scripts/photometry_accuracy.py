"""Measure the errors of the photometry stage's two approximations; prints Markdown tables.

1. Synthetic HST photometry from UBVRI+ugriz (starclusters.photometry.synphot):
   a. on real spectra (CALSPEC Vega, the observed and Kurucz Sun shipped with pyphot),
      whose HST magnitudes can be integrated directly;
   b. leave-bands-out on the PARSEC grid itself: predict a grid band from the
      others and compare with the tabulated value.
2. Isochrone interpolation along evolutionary phase: leave each interior grid age
   out, rebuild it from its neighbours 0.24 dex apart (twice the grid step), and
   compare integrated SSP magnitudes; snapping to the younger neighbour for contrast.

Run: .venv/bin/python docs/scripts/photometry_accuracy.py  (about a minute)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyphot import Sun, Vega

from starclusters.photometry.imf import kroupa_imf
from starclusters.photometry.isochrones import interpolate_isochrones, ssp_magnitudes
from starclusters.photometry.parsec import read_parsec_grid
from starclusters.photometry.synphot import (
    ANCHOR_BANDS,
    ANCHOR_ZERO_POINTS,
    PARSEC_SED,
    SEDReconstruction,
    _vega,
    synthetic_magnitude,
)

HST = [
    "HST_WFC3_F336W",
    "HST_WFC3_F438W",
    "HST_WFC3_F814W",
    "HST_ACS_WFC_F475W",
    "HST_ACS_WFC_F814W",
]


def real_spectra():
    """The spectra pyphot ships, with the T_eff given to the reconstruction.

    Vega: the CALSPEC spectrum that defines the Vega system (stis_011), the older
    CALSPEC composite (stis_003) and three Kurucz model atmospheres of Vega
    (mod_002–004); the Sun: the CALSPEC solar reference spectrum and a Kurucz model.
    """
    out = {"Vega (CALSPEC stis_011, 9550 K)": (*_vega(), np.log10(9550.0))}
    for flavor, label in (
        ("stis_003", "Vega (CALSPEC stis_003)"),
        ("mod_002", "Vega (Kurucz model mod_002)"),
        ("mod_003", "Vega (Kurucz model mod_003)"),
        ("mod_004", "Vega (Kurucz model mod_004)"),
    ):
        with Vega(flavor=flavor) as vega:
            out[label] = (
                np.asarray(vega.wavelength.to("AA").value),
                np.asarray(vega.flux.to("flam").value),
                np.log10(9550.0),
            )
    for flavor, label in (("observed", "Sun (STIS)"), ("theoretical", "Sun (Kurucz 93)")):
        sun = Sun(flavor=flavor)
        out[label] = (
            np.asarray(sun.wavelength.to("AA").value),
            np.asarray(sun.flux.to("flam").value),
            np.log10(5772.0),
        )
    return out


def main():
    print("## Synthetic HST photometry on real spectra (predicted − true, mag)\n")
    print("| spectrum | " + " | ".join(h.replace("HST_", "") for h in HST) + " |")
    print("|---" * (len(HST) + 1) + "|")
    for name, (wave, flam, log_teff) in real_spectra().items():
        table = PARSEC_SED.anchor_table(wave, flam, log_teff)
        errs = [
            PARSEC_SED.predict(table, c)[0] - synthetic_magnitude(c, wave, flam, "vega")
            for c in HST
        ]
        print(f"| {name} | " + " | ".join(f"{e:+.3f}" for e in errs) + " |")

    grid = read_parsec_grid()
    grid = grid[grid["metallicity_z"] == grid["metallicity_z"].max()]
    grid = grid[(grid["log_age_yr"] >= 6.6) & (grid["log_teff_k"] > 3.5)]
    print(
        f"\n## Leave-bands-out on the PARSEC grid (Z = 0.0278, log t ≥ 6.6, T_eff > 3160 K; {len(grid)} points)\n"
    )
    print("| predicted band | anchors left out | median error | 95th pct of abs error |")
    print("|---|---|---|---|")
    cases = [
        ("johnson_u", ("johnson_u",), "U (3600 Å) from u and redder bands"),
        ("sdss_u", ("sdss_u",), "u (3560 Å) from U and redder bands"),
        ("johnson_u", ("johnson_u", "sdss_u"), "U extrapolated 1100 Å from g (harsher than F336W)"),
        ("johnson_b", ("johnson_b",), "B (4400 Å, near F438W)"),
        ("sdss_g", ("sdss_g",), "g (4700 Å, near F475W)"),
        ("johnson_i", ("johnson_i", "sdss_i"), "I (7900 Å, near F814W)"),
    ]
    for key, drop, label in cases:
        subset = SEDReconstruction(
            {k: v for k, v in ANCHOR_BANDS.items() if k not in drop}, ANCHOR_ZERO_POINTS
        )
        curve, system = ANCHOR_BANDS[key]
        # (synthesised with Vega = 0; the grid's Johnson-Cousins columns have Vega = 0.03)
        predicted = subset.predict(grid, curve, system) + ANCHOR_ZERO_POINTS.get(key, 0.0)
        err = predicted - grid[f"abs_mag_{key}"].to_numpy()
        print(
            f"| {label} | {', '.join(drop)} | {np.median(err):+.3f} | {np.percentile(np.abs(err), 95):.3f} |"
        )

    print("\n## Consistency of the anchors: fit residual (fitted SED − grid), all anchors used\n")
    print("| anchor | median | 95th pct of abs |")
    print("|---|---|---|")
    residual = PARSEC_SED.anchor_residuals(grid)
    for key in ANCHOR_BANDS:
        r = residual[key]
        print(f"| {key} | {np.median(r):+.3f} | {np.percentile(np.abs(r), 95):.3f} |")

    print("\n## Isochrone interpolation, leave-one-age-out (0.24 dex gaps), Z = 0.0278\n")
    imf = kroupa_imf()
    bands = ["johnson_u", "johnson_b", "johnson_v", "johnson_i"]
    full = read_parsec_grid()
    sub = full[full["metallicity_z"] == full["metallicity_z"].max()]
    ages = np.sort(sub["log_age_yr"].unique())
    rows = []
    for i in range(1, len(ages) - 1):
        younger, truth, older = (sub[sub["log_age_yr"] == ages[k]] for k in (i - 1, i, i + 1))

        def qty(m):
            return np.array(
                [
                    m["johnson_v"],
                    m["johnson_u"] - m["johnson_b"],
                    m["johnson_b"] - m["johnson_v"],
                    m["johnson_v"] - m["johnson_i"],
                ]
            )

        t = qty(ssp_magnitudes(truth, imf, bands))
        rows.append(
            (
                ages[i],
                *(qty(ssp_magnitudes(interpolate_isochrones(younger, older, 0.5), imf, bands)) - t),
                *(qty(ssp_magnitudes(younger, imf, bands)) - t),
            )
        )
    res = pd.DataFrame(
        rows,
        columns=["log_age", "dV_i", "dUB_i", "dBV_i", "dVI_i", "dV_s", "dUB_s", "dBV_s", "dVI_s"],
    )
    print(
        "| quantity | phase interpolation: median abs | max abs (at log t) | snapping: median abs |"
    )
    print("|---|---|---|---|")
    for q, label in (
        ("dV", "V per unit mass"),
        ("dUB", "U − B"),
        ("dBV", "B − V"),
        ("dVI", "V − I"),
    ):
        i_abs, s_abs = res[f"{q}_i"].abs(), res[f"{q}_s"].abs()
        print(
            f"| {label} | {i_abs.median():.3f} | {i_abs.max():.3f} ({res.log_age[i_abs.idxmax()]:.2f}) | {s_abs.median():.3f} |"
        )
    young = res[res.log_age < 7.2]
    print(
        f"\nlog t < 7.2 (red-supergiant onset): max |Δ(V−I)| = {young['dVI_i'].abs().max():.3f}; "
        f"log t ≥ 7.2: max |Δ(V−I)| = {res[res.log_age >= 7.2]['dVI_i'].abs().max():.3f}"
    )


if __name__ == "__main__":
    main()
