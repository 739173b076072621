"""Fit the model PSF's halo (starclusters.mocks.halo) to the WFC3/UVIS encircled energies.

For each filter, the GalSim diffraction ePSF (starclusters.mocks.psf.psf_for_band at
0.04″/px, 6″, ``--oversampling``) is convolved with the halo kernel whose core blur,
halo fraction and halo FWHM minimise the difference between its EE(r)/EE(1.98″) and
that of STScI's UVIS2 table (resources/psf/wfc3uvis2_aper_007_syn.csv) at the table's
radii 0.04–1.98″. Writes ``resources/psf/uvis_halo.csv`` with, per filter, the three
parameters and the largest |ΔEE| before and after, and EE(0.4″) of the table and of
the fitted model (normalised at 1.98″)::

    .venv/bin/python docs/scripts/fit_psf_halo.py            # ~20 s per filter
"""

from __future__ import annotations

import argparse
import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from starclusters.mocks.halo import (
    FIT_RADII_ARCSEC,
    HALO_MOFFAT_BETA,
    HALO_TABLE,
    HaloParams,
    add_halo,
    ee_shape_error,
    encircled_energy,
    fit_halo,
    read_ee_table,
)
from starclusters.mocks.psf import psf_for_band

FILTERS = ("F275W", "F336W", "F438W", "F475W", "F555W", "F606W", "F625W", "F775W", "F814W")
PIXEL_SCALE_ARCSEC = 0.04


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--oversampling", type=int, default=5)
    parser.add_argument("--out", type=Path, default=HALO_TABLE)
    args = parser.parse_args()
    radii, table = read_ee_table()
    fine = PIXEL_SCALE_ARCSEC / args.oversampling
    rows = []
    for name in FILTERS:
        epsf = psf_for_band(name, f"HST_WFC3_{name}", PIXEL_SCALE_ARCSEC, args.oversampling, 6.0)
        ee = table.loc[name].to_numpy()[1:].astype(float)
        before = ee_shape_error(epsf, fine, name).abs().max()
        params, after = fit_halo(epsf, fine, radii, ee)
        model, kept = add_halo(epsf, fine, params)
        at = encircled_energy(model, fine, [0.4, FIT_RADII_ARCSEC[1]])
        at_table = np.interp([0.4, FIT_RADII_ARCSEC[1]], radii, ee)
        rows.append(
            {
                "filter": name,
                "core_sigma_arcsec": round(params.core_sigma_arcsec, 5),
                "halo_fraction": round(params.halo_fraction, 5),
                "halo_fwhm_arcsec": round(params.halo_fwhm_arcsec, 4),
                "max_abs_dee_before": round(before, 4),
                "max_abs_dee_after": round(after, 4),
                "ee_0p4_table": round(at_table[0] / at_table[1], 4),
                "ee_0p4_model": round(at[0] / at[1], 4),
                "kept_in_box": round(kept, 5),
            }
        )
        print(rows[-1], flush=True)
        assert isinstance(params, HaloParams)
    header = (
        f"# fitted {datetime.date.today()} by docs/scripts/fit_psf_halo.py: GalSim model ePSF at "
        f"{PIXEL_SCALE_ARCSEC} arcsec/px, oversampling {args.oversampling}, 6 arcsec; kernel "
        f"(1-f) G(core) + f G(core) * Moffat(FWHM, beta {HALO_MOFFAT_BETA}); fitted to "
        f"EE(r)/EE({FIT_RADII_ARCSEC[1]}) of resources/psf/wfc3uvis2_aper_007_syn.csv at "
        f"r = {FIT_RADII_ARCSEC[0]}-{FIT_RADII_ARCSEC[1]} arcsec; dee: EE shape differences\n"
    )
    with open(args.out, "w") as handle:
        handle.write(header)
        pd.DataFrame(rows).to_csv(handle, index=False)


if __name__ == "__main__":
    main()
