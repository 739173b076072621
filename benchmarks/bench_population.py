"""Time the photometry stage's tables and the per-cluster star sampling.

Run: .venv/bin/python benchmarks/bench_population.py [--config config/config.yaml]
Prints a Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np

from starclusters.config import load_config
from starclusters.photometry import (
    build_extinction_table,
    build_isochrone_table,
    population_from_config,
)


def timed(func, *args, repeat=1):
    start = time.perf_counter()
    for _ in range(repeat):
        out = func(*args)
    return out, (time.perf_counter() - start) / repeat


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--config", default="config/config.yaml")
    args = parser.parse_args()
    cfg = load_config(args.config)
    phot, bands = cfg["photometry"], cfg["bands"]
    (iso, _), t_iso = timed(build_isochrone_table, phot, bands)
    (ext, _), t_ext = timed(build_extinction_table, phot, bands)
    pop = population_from_config(iso, ext, phot, bands)
    rng = np.random.default_rng(0)
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    print(
        f"\n| step | time |\n|---|---|\n| isochrone table ({iso['log_age_yr'].nunique()} ages, "
        f"{len(iso)} points) | {t_iso:.2f} s |\n| extinction table ({len(ext)} rows) | {t_ext:.2f} s |"
    )
    print("\n| log M (Msun) | stars | cluster_stars (ms) |\n|---|---|---|")
    for log_mass in (3.5, 4.5, 5.5):
        stars, t = timed(pop.cluster_stars, 8.0, 10**log_mass, 1.0, rng, repeat=20)
        print(f"| {log_mass} | {len(stars.mini_msun)} | {1e3 * t:.1f} |")


if __name__ == "__main__":
    main()
