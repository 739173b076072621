"""Training images per second of batch composition, all paths side by side in one run.

A training batch (``TrainingData.make_batch``) is N windows of 3 bands × 64² px: N/2 bare
backgrounds and N/2 mocks composed on other backgrounds with THE ``compose()`` (random
90° rotations and flips, ±2 px centring jitter, calibration jitter σ = 0.2 here).
Timed paths, each on the same data and batch sizes:

- ``loop``: the per-image reference (one ``compose()`` call per window, the
  implementation before batching; kept below as ``loop_draw`` for the ratio);
- ``numpy``: the vectorised draw, numpy on the CPU (the CPU default);
- ``torch-cpu``: the same draw composed in torch on the CPU (``draw(device="cpu")``);
- ``torch-cuda``: composed on the GPU from device copies of the bank and backgrounds
  (``make_batch(device="cuda")``), when a GPU is visible.

Columns: ``draw`` (raw images and table), ``batch`` (x preprocessed plus the targets,
i.e. what ``make_batch`` hands the training step; for torch-cpu the same steps spelled
out). Each figure is the batch size over the median time per batch, from batches run for
at least ``--seconds`` after one warm-up batch (which also copies the cubes to the
device); CUDA timings synchronise after every batch.

Data: synthetic by default (Gaussian-blob clusters of 1–1000 counts/s on flat skies of
the synthetic M83's per-band levels with their Poisson scatter, exposure times 1200,
1000, 1000 s), or ``--data results/<galaxy>`` for the shards of a pipeline run.

Run: .venv/bin/python benchmarks/bench_batches.py [--seconds 3] [--batch-sizes 64 512]
Prints a Markdown table for docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import glob
import os
import platform
import time

import numpy as np
import pandas as pd
import torch

from starclusters.mocks.compose import compose
from starclusters.model.codec import ParameterGrids, preprocess
from starclusters.model.data import (
    MIN_CALIBRATION_FACTOR,
    TrainingData,
    _orient,
    blob_training_data,
    load_training_data,
    orient_centred,
)
from starclusters.model.targets import batch_targets

BANDS = ("F336W", "F438W", "F814W")
SKY_COUNTS_S = (0.0084, 0.030, 0.084)  # per-band medians of the synthetic M83 backgrounds
EXPTIME_S = (1200.0, 1000.0, 1000.0)


def synthetic_data(n_mocks: int, n_backgrounds: int, window: int, seed: int = 0) -> TrainingData:
    """Blob clusters and flat Poisson skies of the synthetic M83's medians, counts/s, all "train"."""
    return blob_training_data(
        n_mocks,
        n_backgrounds,
        window_px=window,
        seed=seed,
        sigma_px=(1.0, 4.0),
        log_flux=(0.0, 3.0),
        sky_counts_s=SKY_COUNTS_S,
        exptime_s=EXPTIME_S,
        split="train",
    )


def pipeline_data(results: str) -> TrainingData:
    """The mock and background shards and PSFs of a pipeline run under ``results``."""
    data = load_training_data(
        sorted(glob.glob(os.path.join(results, "mocks", "shard_*.fits"))),
        sorted(glob.glob(os.path.join(results, "backgrounds", "shard_*.fits"))),
        [os.path.join(results, "psf", f"{b}.fits") for b in BANDS],
        bands=BANDS,
        window_px=64,
        pixel_scale_arcsec=0.04,
        psf_oversampling=7,
    )
    # time on every image: the benchmark measures speed, not a split
    data.mock_split[:] = "train"
    data.background_split[:] = "train"
    return data


def loop_draw(data: TrainingData, batch_size: int, rng, jitter_px: int, calibration_jitter):
    """The per-image reference: ``draw("train", ...)`` as one compose() call per window.

    Same random numbers in the same order as ``TrainingData.draw`` (so the same images);
    returns (images (N, B, S, S) float32, table with is_cluster, parameters, visibility
    and visibility_<band>). tests/test_train.py checks ``draw`` against it bit for bit.
    """
    n_bg, n_cl, b = batch_size // 2, batch_size - batch_size // 2, len(data.bands)
    mock_pool = np.flatnonzero(data.mock_split == "train")
    bg_pool = np.flatnonzero(data.background_split == "train")
    bg_idx = bg_pool[rng.integers(0, bg_pool.size, batch_size)]
    mock_idx = mock_pool[rng.integers(0, mock_pool.size, n_cl)]
    bg_rot = rng.integers(0, 4, batch_size)
    bg_flip = rng.integers(0, 2, batch_size).astype(bool)
    st_rot = rng.integers(0, 4, n_cl)
    st_flip = rng.integers(0, 2, n_cl).astype(bool)
    shift = rng.integers(-jitter_px, jitter_px + 1, (n_cl, 2))
    scale = rng.normal(1.0, calibration_jitter, (batch_size, b))
    scale = np.maximum(scale, MIN_CALIBRATION_FACTOR) if calibration_jitter > 0 else None
    images = np.empty((batch_size, b, data.window_px, data.window_px), dtype=np.float32)
    vis = np.zeros((batch_size, b))
    for i in range(batch_size):
        bg = _orient(data.backgrounds[bg_idx[i]], bg_rot[i], bg_flip[i])
        if scale is not None:
            bg = bg * scale[i][:, None, None]
        if i < n_bg:
            images[i] = bg
            continue
        j = i - n_bg
        m = mock_idx[j]
        stamp = orient_centred(data.mocks[m], st_rot[j], st_flip[j])
        dy, dx = int(shift[j, 0]), int(shift[j, 1])
        rolled = np.roll(bg, (-dy, -dx), axis=(-2, -1))
        image, _, per_band = compose(stamp, rolled, data.exptime_s, rng, data.rh_obs_px[m])
        images[i] = np.roll(image, (dy, dx), axis=(-2, -1))
        vis[i] = per_band
    table = pd.DataFrame({"is_cluster": np.arange(batch_size) >= n_bg})
    for col in ("log_age_yr", "log_mass_msun", "av_mag", "log_rh_arcsec"):
        values = np.full(batch_size, np.nan)
        values[n_bg:] = data.mock_params[col].to_numpy(float)[mock_idx]
        table[col] = values
    table["visibility"] = vis.max(axis=1)
    for k, band in enumerate(data.bands):
        table[f"visibility_{band}"] = vis[:, k]
    return images, table


def images_per_s(step, batch_size: int, seconds: float, cuda: bool) -> float:
    """Images/s of ``step()`` (one batch per call): batch size over the median time per call.

    Calls for ≥ ``seconds`` (at least 5) after a warm-up call; the median keeps the figure
    steady when other jobs share the cores now and then. CUDA is synchronised per call.
    """
    step()
    times, start = [], time.perf_counter()
    while len(times) < 5 or time.perf_counter() - start < seconds:
        t0 = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return batch_size / float(np.median(times))


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[64, 512])
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--mocks", type=int, default=5000, help="synthetic bank size")
    parser.add_argument("--backgrounds", type=int, default=2000, help="synthetic cutouts")
    parser.add_argument("--data", help="a results/<galaxy> directory instead of synthetic data")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--skip-loop", action="store_true", help="skip the per-image loop")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = (
        pipeline_data(args.data) if args.data else synthetic_data(args.mocks, args.backgrounds, 64)
    )
    grids = ParameterGrids()
    kw = dict(augment=True, jitter_px=2, calibration_jitter=0.2)
    cuda = torch.cuda.is_available()
    gpu = torch.cuda.get_device_name(0) if cuda else "none visible"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} CPU threads), GPU: {gpu}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; load average at start "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(
        f"data: {len(data.mocks)} mocks, {len(data.backgrounds)} backgrounds, "
        f"{len(data.bands)} × {data.window_px}² px ({args.data or 'synthetic'})"
    )

    def targets(table, device=None):
        return batch_targets(table, table["is_cluster"].to_numpy(), grids, device=device)

    def paths(n, rng):
        def loop_batch():
            images, table = loop_draw(data, n, rng, kw["jitter_px"], kw["calibration_jitter"])
            return torch.from_numpy(preprocess(images)), targets(table)

        def torch_cpu_batch():
            images, table = data.draw("train", n, rng, device="cpu", **kw)
            return preprocess(images), targets(table, "cpu")

        out = {}
        if not args.skip_loop:
            out["loop"] = (
                lambda: loop_draw(data, n, rng, kw["jitter_px"], kw["calibration_jitter"]),
                loop_batch,
            )
        out["numpy"] = (
            lambda: data.draw("train", n, rng, **kw),
            lambda: data.make_batch("train", n, rng, grids, **kw),
        )
        out["torch-cpu"] = (lambda: data.draw("train", n, rng, device="cpu", **kw), torch_cpu_batch)
        if cuda:
            out["torch-cuda"] = (
                lambda: data.draw("train", n, rng, device="cuda", **kw),
                lambda: data.make_batch("train", n, rng, grids, device="cuda", **kw),
            )
        return out

    print(
        "\n| batch | path | draw (images/s) | batch: x + targets (images/s) | × loop (batch) |"
        "\n|---|---|---|---|---|"
    )
    for n in args.batch_sizes:
        rng = np.random.default_rng(n)
        reference = None
        for name, (draw, batch) in paths(n, rng).items():
            on_gpu = name == "torch-cuda"
            draw_rate = images_per_s(draw, n, args.seconds, on_gpu)
            batch_rate = images_per_s(batch, n, args.seconds, on_gpu)
            reference = batch_rate if name == "loop" else reference
            ratio = f"{batch_rate / reference:.1f}×" if reference else "–"
            print(f"| {n} | {name} | {draw_rate:,.0f} | {batch_rate:,.0f} | {ratio} |", flush=True)
    if cuda:
        peak = torch.cuda.max_memory_allocated() / 2**30
        print(f"\nGPU memory: {peak:.2f} GiB peak allocated (device copies of the cubes included)")


if __name__ == "__main__":
    main()
