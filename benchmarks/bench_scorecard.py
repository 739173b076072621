"""Wall time per megapixel of the scorecard's methods, side by side on the same mosaics.

For each mosaic (the training galaxy's and every validation galaxy's of ``--config``), one
after the other in this process, with ``--threads`` torch/BLAS threads:
* cnn: the network's value maps (``detect_images``, the config's detection settings) and
  its peaks and candidates (``make_catalog``) — what ``validation_maps`` + ``validation_peaks``
  (or the tile jobs + ``find_peaks``) do;
* classical: the peer's detection, photometry and CI cut (``make_baseline_photometry``),
  then each SED fit (``make_baseline_catalog``, grid and library).
Training is not counted (a one-off per network). Every step runs ``--repeat`` times; the
least time is kept (the least disturbed by other work).

Needs a finished ``make run`` (or snakemake up to the scorecard) under ``results/<galaxy>/``.
Run:
    .venv/bin/python benchmarks/bench_scorecard.py [--config config/config.yaml]
        [--out results/bench_scorecard] [--threads 1] [--repeat 2]
Prints a Markdown table (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from astropy.io import fits

from starclusters.baseline.stage import make_baseline_catalog, make_baseline_photometry
from starclusters.config import load_config
from starclusters.detect.candidates_stage import make_catalog
from starclusters.detect.settings import DetectSettings
from starclusters.detect.stage import detect_images
from starclusters.logs import setup_logging
from starclusters.synthetic.validation import validation_galaxies

PEAK_KEYS = (
    "smooth_sigma_px",
    "weight_window_px",
    "weight_sigma_px",
    "class_threshold",
    "visibility_threshold",
)


def least_time(step, repeat: int) -> float:
    """The least wall time, s, of ``repeat`` calls of ``step()``."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--out", default="results/bench_scorecard")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    setup_logging(str(out / "bench.log"))
    res = Path("results") / config["galaxy"]
    bands = list(config["bands"])
    phot = config["photometry"]
    bank = sorted(res.glob("mocks/shard_*.parquet"))
    stamps = [p.with_suffix(".fits") for p in bank]
    psfs = {b: res / "psf" / f"{b}.fits" for b in bands}
    fields = {"training": res} | {
        name: res / "validation" / name for name in validation_galaxies(config)
    }
    settings = DetectSettings.from_config(config["detect"])
    peaks = {k: config["detect"][k] for k in PEAK_KEYS}
    photometry_config = {
        "distance_mpc": phot["distance_mpc"],
        "imf": phot["imf"],
        "extinction": phot["extinction"],
        "vega_zeropoint_mag": {b: phot["vega_zeropoint_mag"][b] for b in bands},
        "magnitude_limits": {b: phot["magnitude_limits"][b] for b in bands},
    }
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"torch threads {args.threads}, repeat {args.repeat}, {time.strftime('%Y-%m-%d %H:%M')}"
    )
    print(
        "| galaxy | Mpx | cnn maps s | cnn peaks s | classical photometry s | grid fit s "
        "| library fit s | cnn s/Mpx | classical (grid) s/Mpx | ratio classical/cnn |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    totals = np.zeros(3)
    for name, root in fields.items():
        band_paths = {b: root / "mosaic" / f"{b}.fits" for b in bands}
        mask = root / "mosaic" / "mask.fits"
        mpx = fits.getdata(mask).size / 1e6
        here = out / name
        here.mkdir(exist_ok=True)
        t_maps = least_time(
            lambda: detect_images(  # noqa: B023
                res / "model" / "model.pt",
                [band_paths[b] for b in bands],  # noqa: B023
                here / "maps.fits",  # noqa: B023
                mask_path=mask,  # noqa: B023
                bands=bands,
                settings=settings,
            ),
            args.repeat,
        )
        t_peaks = least_time(
            lambda: make_catalog(
                here / "maps.fits",  # noqa: B023
                peaks,
                {"source": "synthetic"},
                phot["distance_mpc"],
                root / "mosaic" / "arms.parquet",  # noqa: B023
            ),
            args.repeat,
        )
        t_phot = least_time(
            lambda: make_baseline_photometry(
                band_paths,  # noqa: B023
                mask,  # noqa: B023
                psfs,
                bank,
                stamps,
                photometry_config,
                config["baseline"],
                config["seed"],
                here / "photometry.parquet",  # noqa: B023
            ),
            args.repeat,
        )
        t_fit = {
            fit: least_time(
                lambda fit=fit: make_baseline_catalog(
                    here / "photometry.parquet",  # noqa: B023
                    fit,
                    res / "photometry" / "isochrones.parquet",
                    res / "photometry" / "extinction.parquet",
                    bank,
                    photometry_config,
                    bands,
                    config["baseline"],
                    {"source": "synthetic"},
                    config["seed"],
                    here / f"catalog_{fit}.parquet",  # noqa: B023
                    arms_path=root / "mosaic" / "arms.parquet",  # noqa: B023
                ),
                args.repeat,
            )
            for fit in ("grid", "library")
        }
        cnn = t_maps + t_peaks
        classical = t_phot + t_fit["grid"]
        totals += (mpx, cnn, classical)
        print(
            f"| {name} | {mpx:.2f} | {t_maps:.1f} | {t_peaks:.1f} | {t_phot:.1f} | "
            f"{t_fit['grid']:.1f} | {t_fit['library']:.1f} | {cnn / mpx:.1f} | "
            f"{classical / mpx:.1f} | {classical / cnn:.2f} |"
        )
    mpx, cnn, classical = totals
    print(
        f"| all | {mpx:.2f} | | | | | | {cnn / mpx:.1f} | {classical / mpx:.1f} | "
        f"{classical / cnn:.2f} |"
    )


if __name__ == "__main__":
    main()
