"""A torch job's CPU pass with glibc's default malloc and with :func:`starclusters.logs.
tune_allocator`, side by side, one run.

Each measurement is a fresh child process (the allocator is set once per process, as in a
job) that builds the ``model`` section of ``--config`` made dense-ready (random weights:
speed does not depend on them), runs one warm-up tile and then ``--repeats`` fast-mode
tiles of ``--core`` px (:func:`starclusters.detect.stage.tile_maps`, the per-tile function
of the detection jobs) on synthetic 3-band counts/s with one thread. Children alternate
default / tuned ``--rounds`` times. Reported per child: wall seconds of the timed tiles,
user and system CPU seconds of the whole process, peak RSS; then the medians and the ratio
default / tuned.

Run: .venv/bin/python benchmarks/bench_allocator.py [--config config/config.yaml]
    [--core 512] [--repeats 3] [--rounds 3]
Prints a Markdown table (docs/BENCHMARKS.md).
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import statistics
import subprocess
import sys
import time


def child(config_path: str, core: int, repeats: int, tuned: bool) -> dict:
    """Time ``repeats`` fast-mode tiles in this process; the allocator tuned first or not."""
    from starclusters.logs import tune_allocator, use_threads

    applied = tune_allocator() if tuned else False
    use_threads(1)
    import numpy as np

    from starclusters.config import load_config
    from starclusters.detect.settings import DetectSettings
    from starclusters.detect.stage import tile_maps
    from starclusters.detect.tiles import Tile, halo_px
    from starclusters.model.codec import ParameterGrids
    from starclusters.model.network import ClusterNetwork
    from starclusters.model.spec import DENSE_READY
    from starclusters.model.stage import network_spec

    config = load_config(config_path)
    section = {**config["model"], **DENSE_READY}
    grids = ParameterGrids.from_config(section.get("grids"))
    spec = network_spec(section, config["window_px"], len(config["bands"]), grids)
    model = ClusterNetwork(spec).eval()
    halo = halo_px(spec.window_px)
    side = core + 2 * halo
    images = np.random.default_rng(0).gamma(2.0, 0.05, (3, side, side)).astype(np.float32)
    mask = np.zeros((side, side), np.uint8)
    settings = DetectSettings(mode="fast")
    tile_maps(images, mask, (0, 0), Tile(0, halo, halo, 16, 16), model, grids, settings)
    start = time.perf_counter()
    for _ in range(repeats):
        tile_maps(images, mask, (0, 0), Tile(0, halo, halo, core, core), model, grids, settings)
    wall = time.perf_counter() - start
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {
        "tuned": tuned,
        "applied": applied,
        "wall_s": wall,
        "user_s": usage.ru_utime,
        "sys_s": usage.ru_stime,
        "max_rss_mb": usage.ru_maxrss / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--core", type=int, default=512)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--child", choices=["default", "tuned"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        result = child(args.config, args.core, args.repeats, args.child == "tuned")
        print(json.dumps(result))
        return
    rows = []
    for _ in range(args.rounds):
        for kind in ("default", "tuned"):
            command = [sys.executable, __file__, "--child", kind, "--config", args.config]
            command += ["--core", str(args.core), "--repeats", str(args.repeats)]
            out = subprocess.run(command, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
    print(f"{platform.processor() or platform.machine()}, {args.config}, fast mode, ")
    print(f"{args.repeats} tiles of {args.core}² px per child, 1 thread, {args.rounds} rounds\n")
    print("| allocator | wall of the tiles (s) | user (s) | system (s) | peak RSS (MB) |")
    print("|---|---|---|---|---|")
    medians = {}
    for kind in ("default", "tuned"):
        part = [r for r in rows if r["tuned"] == (kind == "tuned")]
        if kind == "tuned" and not all(r["applied"] for r in part):
            print("(not glibc: tune_allocator changed nothing)")
        values = {
            key: statistics.median(r[key] for r in part)
            for key in ("wall_s", "user_s", "sys_s", "max_rss_mb")
        }
        medians[kind] = values
        runs = ", ".join(f"{r['wall_s']:.1f}" for r in part)
        print(
            f"| {kind} | {values['wall_s']:.1f} ({runs}) | {values['user_s']:.1f} | "
            f"{values['sys_s']:.1f} | {values['max_rss_mb']:.0f} |"
        )
    ratio = medians["default"]["wall_s"] / medians["tuned"]["wall_s"]
    rss = medians["tuned"]["max_rss_mb"] / medians["default"]["max_rss_mb"]
    print(f"\ndefault / tuned wall time: {ratio:.2f}; peak RSS tuned / default: {rss:.2f}")


if __name__ == "__main__":
    main()
