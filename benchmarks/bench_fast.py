"""Pixels per second of the exact and the fast detection mode, side by side, one run.

Both modes run :func:`starclusters.detect.stage.tile_maps` — the per-tile function of the
``detect_tile`` jobs, from the region's counts/s to the six decoded maps — at step 1 on a
synthetic 3-band region (gamma-distributed counts/s, nothing masked) with the same
dense-ready network (randomly initialised: speed does not depend on the weights), after a
warm-up. The exact mode is timed on a ``--exact-core`` px core (it is slow), the fast mode
on a ``--fast-core`` px core (a detect.tile_px tile); the figure of merit is pixels of map
per second, and the ratio fast / exact. Networks: the ``model`` section of each
``--configs`` file made dense-ready (``padding: valid``, ``input_norm: fixed``).

Run: .venv/bin/python benchmarks/bench_fast.py [--configs config/config.yaml config/bench.yaml]
    [--threads 1 2] [--exact-core 32] [--fast-core 512] [--device cpu]
Prints a Markdown table (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from starclusters.config import load_config
from starclusters.detect.settings import DetectSettings
from starclusters.detect.stage import memory_estimate, tile_maps
from starclusters.detect.tiles import Tile, halo_px
from starclusters.model.codec import ParameterGrids
from starclusters.model.network import ClusterNetwork
from starclusters.model.spec import DENSE_READY
from starclusters.model.stage import network_spec


def network(path: str):
    """(model, grids, label, meta, window_px) for a config file's ``model`` section."""
    config = load_config(path)
    section = {**config["model"], **DENSE_READY}
    grids = ParameterGrids.from_config(section.get("grids"))
    spec = network_spec(section, config["window_px"], len(config["bands"]), grids)
    model = ClusterNetwork(spec).eval()
    meta = {"spec": {**spec.__dict__}, "grids": grids.to_dict()}
    n_params = sum(p.numel() for p in model.parameters())
    return model, grids, f"{path}, {n_params / 1e6:.2f} M parameters", meta, spec.window_px


def pixels_per_s(model, grids, window_px: int, core: int, mode: str, device: str) -> float:
    """Map pixels per second of ``mode`` on a core × core tile (after a small warm-up)."""
    rng = np.random.default_rng(0)
    halo = halo_px(window_px)
    side = core + 2 * halo
    images = rng.gamma(2.0, 0.05, (3, side, side)).astype(np.float32)
    mask = np.zeros((side, side), np.uint8)
    settings = DetectSettings(mode=mode, batch_size=256, device=device)
    warm = Tile(0, halo, halo, 2, 16)
    tile_maps(images, mask, (0, 0), warm, model, grids, settings)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    tile_maps(images, mask, (0, 0), Tile(0, halo, halo, core, core), model, grids, settings)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    return core**2 / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["config/config.yaml", "config/bench.yaml"])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--exact-core", type=int, default=32, help="exact mode's core side, px")
    parser.add_argument("--fast-core", type=int, default=512, help="fast mode's core side, px")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, ", end="")
    print(f"torch {torch.__version__}, device {args.device}, {time.strftime('%Y-%m-%d %H:%M')}")
    print(
        "\n| network | threads | exact px/s | fast px/s | fast / exact | fast tile-job "
        "memory estimate (MB) |"
    )
    print("|---|---|---|---|---|---|")
    for path in args.configs:
        model, grids, label, meta, window_px = network(path)
        model.to(args.device)
        settings = DetectSettings(mode="fast", tile_px=args.fast_core, device=args.device)
        estimate = memory_estimate(meta, settings)["total"] / 2**20
        for threads in args.threads:
            torch.set_num_threads(threads)
            exact = pixels_per_s(model, grids, window_px, args.exact_core, "exact", args.device)
            fast = pixels_per_s(model, grids, window_px, args.fast_core, "fast", args.device)
            print(
                f"| {label} | {threads} | {exact:,.0f} | {fast:,.0f} | {fast / exact:.0f}× "
                f"| {estimate:,.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
