"""Accuracy side by side: the thesis-style network in exact mode against the dense-ready one
in exact and fast mode, on the default pipeline's data.

Trains two networks with the same data, seed and training settings (those of ``--config``):
the thesis' (``model.padding: same``, ``model.input_norm: window``) and the dense-ready one
(``valid``, ``fixed``); scores both on the held-out test mocks (``evaluate`` settings of the
config) and runs detection on the config's mosaic — the thesis-style network in exact mode
at ``--exact-step`` (the old default), the dense-ready one in fast mode at that step and at
step 1 (the new default), and the dense-ready one in both modes at ``--check-step`` (the
largest difference between their maps is printed) — then peaks, candidates and the match
to the synthetic truth (≤ 3 px): recall and precision at the config's thresholds,
parameter errors of the matched clusters.

Needs the default pipeline's mosaic, mock and background shards and PSFs under
``results/<galaxy>/`` (``make run``, or snakemake up to ``train``). Run:
    .venv/bin/python benchmarks/bench_fast_accuracy.py [--config config/config.yaml]
        [--out results/bench_fast_accuracy] [--exact-step 2] [--check-step 4]
Prints Markdown tables (docs/BENCHMARKS.md) and writes every product under --out.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from starclusters.config import load_config
from starclusters.detect.candidates_stage import make_catalog, make_truth_match, write_catalog
from starclusters.detect.maps import read_maps
from starclusters.detect.settings import DetectSettings
from starclusters.detect.stage import detect_images
from starclusters.logs import setup_logging
from starclusters.model.stage import evaluate_model, train_model

VARIANTS = {
    "thesis": {"padding": "same", "input_norm": "window"},
    "dense": {"padding": "valid", "input_norm": "fixed"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--out", default="results/bench_fast_accuracy")
    parser.add_argument("--exact-step", type=int, default=2)
    parser.add_argument("--check-step", type=int, default=4)
    args = parser.parse_args()
    config = load_config(args.config)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    setup_logging(str(out / "bench.log"))
    res = Path("results") / config["galaxy"]
    mocks = sorted(map(str, (res / "mocks").glob("shard_*.fits")))
    backgrounds = sorted(map(str, (res / "backgrounds").glob("shard_*.fits")))
    psfs = [str(res / "psf" / f"{band}.fits") for band in config["bands"]]
    bands = [str(res / "mosaic" / f"{band}.fits") for band in config["bands"]]
    mask = str(res / "mosaic" / "mask.fits")
    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, ", end="")
    print(f"torch {torch.__version__}, {time.strftime('%Y-%m-%d')}, config {args.config}")

    runs = [("thesis", "exact", args.exact_step), ("dense", "fast", args.exact_step)]
    runs += [("dense", "fast", 1), ("dense", "exact", args.check_step)]
    runs.append(("dense", "fast", args.check_step))
    test_rows, match_rows = [], []
    for variant, keys in VARIANTS.items():
        cfg = copy.deepcopy(config)
        cfg["model"].update(keys)
        model = out / f"{variant}.pt"
        if not model.exists():
            t0 = time.perf_counter()
            train_model(
                mocks,
                backgrounds,
                psfs,
                cfg,
                cfg["seed"],
                str(out / f"{variant}_ckpt.pt"),
                str(model),
            )
            print(f"trained {variant} in {time.perf_counter() - t0:.0f} s")
        _, metrics = evaluate_model(str(model), mocks, backgrounds, psfs, cfg, cfg["seed"])
        metrics.insert(0, "network", variant)
        test_rows.append(metrics)
    for variant, mode, step in runs:
        name = f"{variant}_{mode}_step{step}"
        maps = out / f"{name}_maps.fits"
        settings = DetectSettings.from_config(config["detect"], mode=mode, step_px=step)
        t0 = time.perf_counter()
        if not maps.exists():
            detect_images(out / f"{variant}.pt", bands, maps, mask_path=mask, settings=settings)
        seconds = time.perf_counter() - t0
        peaks, candidates, meta = make_catalog(
            maps,
            config["detect"],
            config["galaxy_geometry"],
            config["photometry"]["distance_mpc"],
            arms_path=res / "mosaic" / "arms.parquet",
        )
        paths = [out / f"{name}_{k}" for k in ("peaks.parquet", "candidates.parquet", "c.reg")]
        write_catalog(peaks, candidates, meta, *paths)
        summary = make_truth_match(
            res / "mosaic" / "truth.parquet",
            paths[1],
            paths[0],
            config["detect"],
            out / f"{name}_truth.parquet",
            out / f"{name}_truth.png",
        )
        row = {"run": name, "seconds": round(seconds, 1), "n_peaks": len(peaks)}
        row.update({k: summary[k] for k in ("n_candidates", "n_detected", "recall", "precision")})
        for param, err in summary["errors"].items():
            row[f"{param} bias"] = err["median_bias"]
            row[f"{param} 95%"] = err["bound95_abs"]
        match_rows.append(row)
    exact = read_maps(out / f"dense_exact_step{args.check_step}_maps.fits")[0]
    fast = read_maps(out / f"dense_fast_step{args.check_step}_maps.fits")[0]
    for name in exact:
        same_nan = bool((np.isnan(exact[name]) == np.isnan(fast[name])).all())
        diff = float(np.nanmax(np.abs(exact[name] - fast[name])))
        print(
            f"dense network, step {args.check_step}, {name}: fast - exact max |diff| "
            f"{diff:.2e}, same NaN pixels: {same_nan}"
        )
    tests = pd.concat(test_rows)
    tests.to_parquet(out / "test_metrics.parquet")
    matches = pd.DataFrame(match_rows)
    matches.to_parquet(out / "truth_match.parquet")
    print(tests.to_markdown(index=False))
    print()
    print(matches.to_markdown(index=False, floatfmt=".3g"))
    (out / "summary.json").write_text(json.dumps(match_rows, indent=1, default=float))


if __name__ == "__main__":
    main()
