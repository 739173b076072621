"""Mock stamps per second per core, and the per-star GalSim baseline, in one run.

For the M83 set-up (config/config.yaml: F336W/F438W/F814W, 64×64 px at 0.04″/px,
GalSim HST PSFs): clusters at the bank's median mass (log M = 4.5) and at
log M = 5.5, log t = 8, A_V = 1, r_h ≈ 0.15″. A "stamp" is the whole work of a
mock: IMF sampling, magnitudes, positions and rendering of all bands; it is timed
with every star drawn and with the faint main-sequence stars aggregated into
light packets (``mocks.faint_limit_mag``, the bank's default).

The baseline draws stars one by one with GalSim ``drawImage`` (PSF ⊗ pixel, the
exact reference). Drawing the ~10^5 stars of one cluster that way takes hours, so
it is timed on ``--baseline-stars`` random stars of the same cluster and scaled
to the cluster's number of luminous stars (the per-star cost does not depend on
the star).

Run: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/bench_mocks.py
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np

from starclusters.config import load_config
from starclusters.mocks.eff import sample_positions
from starclusters.mocks.psf import hst_optical_psf, psf_for_band
from starclusters.mocks.render import StampRenderer
from starclusters.photometry import (
    build_extinction_table,
    build_isochrone_table,
    population_from_config,
)
from starclusters.photometry.synphot import pivot_wavelength_aa


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--baseline-stars", type=int, default=60)
    args = parser.parse_args()
    cfg = load_config(args.config)
    bands, phot, psf_cfg = cfg["bands"], cfg["photometry"], cfg["psf"]
    scale, window = cfg["pixel_scale_arcsec"], cfg["window_px"]
    iso, _ = build_isochrone_table(phot, bands)
    ext, _ = build_extinction_table(phot, bands)
    population = population_from_config(iso, ext, phot, bands)
    epsfs = np.stack(
        [
            psf_for_band(
                b, phot["filter_curves"][b], scale, psf_cfg["oversampling"], psf_cfg["size_arcsec"]
            )
            for b in bands
        ]
    )
    renderer = StampRenderer(
        epsfs, psf_cfg["oversampling"], scale, window, psf_cfg["core_radius_px"]
    )
    models = [hst_optical_psf(pivot_wavelength_aa(phot["filter_curves"][b]) / 10.0) for b in bands]
    for model in models:  # GalSim builds the optical PSF lazily: keep that out of the timing
        model.drawImage(nx=window, ny=window, scale=scale)
    rng = np.random.default_rng(1)
    a, gamma = 0.1, 3.0  # r_h = 0.17″

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )
    mocks = cfg["mocks"]
    print(
        "\n| log M | stars | drawn one by one | stamps/s/core | GalSim per star (ms, 3 bands) | "
        "GalSim per stamp (s) | speed-up |\n|---|---|---|---|---|---|---|"
    )
    import galsim

    for log_mass in (4.5, 5.5):
        for faint_limit in (None, mocks["faint_limit_mag"]):
            start = time.perf_counter()
            for _ in range(args.repeat):
                stars = population.cluster_stars(
                    8.0, 10**log_mass, 1.0, rng, faint_limit, mocks["faint_packets"]
                )
                lit = stars.luminous
                pos = sample_positions(int(lit.sum()), a, gamma, mocks["truncation_arcsec"], rng)
                renderer.render(pos, stars.counts_s[lit])
            per_stamp = (time.perf_counter() - start) / args.repeat
            drawn = int(np.isfinite(stars.mini_msun).sum())
            if faint_limit is None:  # the baseline draws every luminous star
                n_lit = int(lit.sum())
                image = galsim.ImageD(window, window, scale=scale)
                pick = rng.choice(n_lit, size=min(args.baseline_stars, n_lit), replace=False)
                start = time.perf_counter()
                for (x, y), c in zip(pos[pick], stars.counts_s[lit][pick], strict=True):
                    for b, model in enumerate(models):
                        model.withFlux(c[b]).drawImage(
                            image=image,
                            add_to_image=True,
                            offset=(x / scale + 0.5, y / scale + 0.5),
                            method="auto",
                        )
                per_star = (time.perf_counter() - start) / len(pick)
                baseline = per_star * n_lit
            label = "all" if faint_limit is None else f"brighter than {faint_limit} mag"
            print(
                f"| {log_mass} | {stars.n_stars} | {drawn} ({label}) | {1 / per_stamp:.1f} | "
                f"{1e3 * per_star:.1f} | {baseline:.0f} | {baseline / per_stamp:.0f}× |"
            )


if __name__ == "__main__":
    main()
