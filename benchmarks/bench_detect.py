"""Windows per second of exact-mode detection, per network, batch size and thread count.

Times :func:`starclusters.detect.stage.tile_maps` — gathering windows from the tile,
preprocessing, network, softmax and decoding, as a ``detect_tile`` job runs them — on a
square core of ``--core`` px (step 1) of a synthetic 3-band region (gamma-distributed
counts/s, nothing masked), after one warm-up batch. Networks: randomly initialised (speed
does not depend on the weights) from the ``model`` section of each ``--configs`` file, or
the thesis network (``thesis``). Also prints the memory estimate of one tile job
(``starclusters.detect.tiles.tile_memory_bytes``) for ``detect.tile_px`` of the config.

Run: .venv/bin/python benchmarks/bench_detect.py [--configs config/config.yaml thesis]
    [--batch-sizes 64 256] [--threads 1 2] [--core 64] [--device cpu]
Prints a Markdown table (for docs/detection.md).
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
from starclusters.model.stage import network_spec


def network(name: str, window_px: int):
    """(model, grids, label, meta) for a config file's ``model`` section or "thesis"."""
    if name == "thesis":
        section, label = {"stage_widths": [64, 64, 128, 256]}, "thesis (ResNet-50 variant)"
    else:
        section, label = load_config(name)["model"], name
    grids = ParameterGrids.from_config(section.get("grids"))
    spec = network_spec(section, window_px, 3, grids)
    model = ClusterNetwork(spec).eval()
    meta = {"spec": {**spec.__dict__}, "grids": grids.to_dict()}
    n_params = sum(p.numel() for p in model.parameters())
    return model, grids, f"{label}, {n_params / 1e6:.2f} M parameters", meta


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", nargs="+", default=["config/config.yaml", "thesis"])
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[64, 256])
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--core", type=int, default=64, help="core side, px (core² windows)")
    parser.add_argument("--window", type=int, default=64)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()

    print(f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, ", end="")
    print(f"torch {torch.__version__}, device {args.device}")
    print("\n| network | batch | threads | windows/s | tile-job memory estimate (MB) |")
    print("|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    halo = halo_px(args.window)
    side = args.core + 2 * halo
    images = rng.gamma(2.0, 0.05, (3, side, side)).astype(np.float32)
    mask = np.zeros((side, side), np.uint8)
    tile = Tile(0, halo, halo, args.core, args.core)
    for name in args.configs:
        model, grids, label, meta = network(name, args.window)
        model.to(args.device)
        for batch in args.batch_sizes:
            settings = DetectSettings(batch_size=batch, device=args.device)
            estimate = memory_estimate(meta, settings)["total"] / 2**20
            for threads in args.threads:
                torch.set_num_threads(threads)
                warm = Tile(0, halo, halo, 1, min(batch, args.core))
                tile_maps(images, mask, (0, 0), warm, model, grids, settings)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                start = time.perf_counter()
                tile_maps(images, mask, (0, 0), tile, model, grids, settings)
                if args.device.startswith("cuda"):
                    torch.cuda.synchronize()
                rate = args.core**2 / (time.perf_counter() - start)
                print(f"| {label} | {batch} | {threads} | {rate:,.0f} | {estimate:,.0f} |")


if __name__ == "__main__":
    main()
