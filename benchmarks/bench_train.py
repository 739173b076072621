"""Training images per second of the cluster CNN, three network sizes side by side in one run.

Networks (all on windows of 3 bands × 64² px, softmax heads on the grids of their config):

- ``default``: the ``model`` section of ``config/config.yaml`` (the tiny embedded network);
- ``bench``: the ``model`` section of ``config/bench.yaml`` if that file exists, else
  stage_blocks [2, 2, 2, 2], stage_channels [32, 64, 128, 256], stem 32, fc 256;
- ``thesis``: ``NetworkSpec.thesis()``, the network of thesis Fig. 3.6 (9.96 M parameters).

Per network and batch size three figures are measured:

1. ``step``: the optimiser step alone — forward (through ``train._forward``: bf16 autocast
   as ``train.precision`` gives it, channels_last on CUDA), the real ``loss`` on real
   ``batch_targets``, backward, Adam
   step — on a random preprocessed batch already on the device (images/s);
2. ``whole``: the training step as ``train()`` does it — ``TrainingData.make_batch`` (composed
   on the fly: numpy on the CPU, ``device=`` path on a GPU, augmentation on, ±2 px jitter,
   calibration jitter 0.2) + the step + the per-step statistics that ``train()`` reads back
   (accuracy, per-head losses, one host sync) + the learning-rate scheduler (images/s);
   ``whole / step`` near 1 means composition is not the bottleneck;
3. ``infer``: ``predict()`` of ``model/inference.py`` on raw windows (counts/s, numpy on the
   host: preprocessing, eval-mode forward without grad, softmax, decoding and the copy back
   included), one call per batch (windows/s) — what detection will pay.

Each figure is the batch size over the median time per call. The three calls of a
configuration are timed in turn (round robin, so that other jobs on the machine slow them
alike and the ratios hold) for at least ``--seconds`` each on average and at least
``--min-steps`` calls each, after ``--warmup`` untimed calls each; on CUDA every call is
synchronised, ``torch.backends.cudnn.benchmark`` is on and the
peak GPU memory of each configuration is reported (it includes the device copies of the
synthetic bank and backgrounds that ``make_batch(device=...)`` keeps). ``--compile`` also
times the model wrapped in ``torch.compile`` (compilation happens in the warm-up calls) and
gives the ratio to eager. ``--precisions fp32 bf16`` times the training steps of both
precisions (``train.precision``; bf16 autocast on the CPU as well) in the same round robin
and gives the ratio to the first; inference is float32 on the CPU either way.

Data: synthetic (``--mocks`` Gaussian-blob clusters of 1–1000 counts/s, ``--backgrounds``
flat skies at the synthetic M83's per-band levels with Poisson scatter, exposure times
1200/1000/1000 s), all in the "train" split.

Defaults: CUDA if visible (batch sizes 512 and 2048), else CPU with batch 64 and
``--threads`` torch threads (all cores). The thesis trained on a GTX 1080 at ≈ 46 images/s;
the target on one H100 is ≥ 20,000 training images/s for the thesis network.

Run: .venv/bin/python benchmarks/bench_train.py [--seconds 4] [--compile]
Prints a Markdown table for docs/BENCHMARKS.md and one summary line per configuration.
"""

from __future__ import annotations

import argparse
import os
import platform
import resource
import time
from pathlib import Path

import bench_batches  # this folder: the blob data of the composition benchmark
import numpy as np
import torch
import yaml

from starclusters.model.codec import HEADS, ParameterGrids, preprocess
from starclusters.model.data import TrainingData
from starclusters.model.inference import predict
from starclusters.model.network import ClusterNetwork, NetworkSpec
from starclusters.model.settings import PRECISIONS
from starclusters.model.stage import network_spec
from starclusters.model.targets import batch_targets, loss
from starclusters.model.train import _accuracy, _forward, uses_bf16

BANDS = ("F336W", "F438W", "F814W")
WINDOW_PX = 64
#: Augmentation of the training batches (thesis §3.3.1).
BATCH_KW = dict(augment=True, jitter_px=2, calibration_jitter=0.2)
#: The "bench" network when config/bench.yaml does not exist.
BENCH_MODEL = dict(
    stage_blocks=[2, 2, 2, 2], stage_channels=[32, 64, 128, 256], stem_channels=32, fc_width=256
)
#: Training images/s of the thesis network on the thesis' GTX 1080.
GTX1080_IMAGES_S = 46.0
#: Target on one H100 for the thesis network, training images/s.
H100_TARGET_IMAGES_S = 20_000.0


def synthetic_data(n_mocks: int, n_backgrounds: int, seed: int = 0) -> TrainingData:
    """bench_batches' blob clusters and Poisson skies, 64 px."""
    return bench_batches.synthetic_data(n_mocks, n_backgrounds, WINDOW_PX, seed)


def model_section(path: str) -> dict:
    """The ``model`` mapping of a YAML config (empty if the file has none)."""
    with open(path) as handle:
        return dict((yaml.safe_load(handle) or {}).get("model") or {})


def networks(config: str, bench_config: str) -> dict[str, tuple[NetworkSpec, ParameterGrids, str]]:
    """{name: (spec, grids, where the size came from)} of the three benchmarked networks."""
    out = {}
    bench = Path(bench_config)
    sources = {
        "default": (model_section(config), f"{config} model"),
        "bench": (
            (model_section(bench), f"{bench} model")
            if bench.exists()
            else (BENCH_MODEL, "built-in bench size")
        ),
    }
    for name, (section, source) in sources.items():
        grids = ParameterGrids.from_config(section.get("grids"))
        out[name] = (network_spec(section, WINDOW_PX, len(BANDS), grids), grids, source)
    grids = ParameterGrids()
    out["thesis"] = (NetworkSpec.thesis(), grids, "NetworkSpec.thesis()")
    return out


def images_per_s(calls: dict, n: int, args, cuda: bool) -> dict[str, tuple[float, int]]:
    """{name: (n / median seconds per call, timed calls)} of ``calls`` {name: call()}.

    Each call is warmed up ``args.warmup`` times (untimed), then the calls are timed in
    turn, round robin, until each has ≥ ``args.min_steps`` calls and ≥ ``args.seconds``
    seconds on average: interleaved, so that other jobs on the machine slow all of them
    alike and their ratios hold. CUDA is synchronised after every call.
    """
    for call in calls.values():
        for _ in range(args.warmup):
            call()
    if cuda:
        torch.cuda.synchronize()
    times = {name: [] for name in calls}
    start = time.perf_counter()

    def enough() -> bool:
        elapsed = time.perf_counter() - start
        calls_done = min(len(t) for t in times.values())
        return calls_done >= args.min_steps and elapsed >= args.seconds * len(calls)

    while not enough():
        for name, call in calls.items():
            t0 = time.perf_counter()
            call()
            if cuda:
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - t0)
    return {name: (n / float(np.median(t)), len(t)) for name, t in times.items()}


def measure(spec, grids, data, n: int, dev: torch.device, compiled: bool, args) -> dict:
    """{precision: its step, whole-step and inference rates} of one network at batch size
    ``n`` on ``dev``, every precision of ``args.precisions`` timed in one round robin."""
    cuda = dev.type == "cuda"
    torch.manual_seed(0)
    model = ClusterNetwork(spec).to(dev)
    if cuda:
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.999**step)
    if compiled:
        torch._dynamo.reset()  # fresh caches: no recompile limit across configurations
    net = torch.compile(model) if compiled else model
    rng = np.random.default_rng(n)
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)

    # (1) a random preprocessed batch on the device, the real targets of a drawn batch
    _, table = data.draw("train", n, rng, **BATCH_KW)
    x_fixed = preprocess(torch.rand(n, len(BANDS), WINDOW_PX, WINDOW_PX, device=dev) * 10)
    t_fixed = batch_targets(table, table["is_cluster"].to_numpy(), grids, device=dev)

    def step(amp):  # (1): forward, loss, backward, Adam on the fixed batch
        model.train()  # predict() leaves the model in eval mode
        outputs = _forward(net, x_fixed, dev, amp)
        outputs = {k: v.float() for k, v in outputs.items()}
        total, _ = loss(outputs, t_fixed)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()

    def whole_step(amp):  # (2): the body of train()'s loop, without tqdm and DDP
        model.train()
        x, targets = data.make_batch("train", n, rng, grids, device=dev, **BATCH_KW)
        outputs = _forward(net, x, dev, amp)
        outputs = {k: v.float() for k, v in outputs.items()}
        total, per_head = loss(outputs, targets)
        parts = [total, _accuracy(outputs, targets), *(per_head[h] for h in HEADS)]
        torch.stack([p.detach() for p in parts]).double().tolist()  # the host sync of train()
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        scheduler.step()

    windows, _ = data.draw("train", n, rng, **BATCH_KW)  # raw counts/s on the host
    calls = {"infer": lambda: predict(net, windows, grids, batch_size=n, device=dev)}
    for precision in args.precisions:
        amp = uses_bf16(precision, dev)
        calls[f"step {precision}"] = lambda amp=amp: step(amp)
        calls[f"whole {precision}"] = lambda amp=amp: whole_step(amp)
    rates = images_per_s(calls, n, args, cuda)
    peak = torch.cuda.max_memory_allocated(dev) / 2**30 if cuda else None
    out = {}
    for precision in args.precisions:
        r = {"peak_gib": peak}
        for key in ("step", "whole", "infer"):
            name = key if key == "infer" else f"{key} {precision}"
            r[key], r[f"{key}_calls"] = rates[name]
        out[precision] = r
    return out


def report(name, n_params, n, mode, r, eager, dev) -> tuple[str, str]:
    """(table row, summary line) of one configuration; ``eager``: its eager figures."""

    def rate(key):
        ratio = f" ({r[key] / eager[key]:.2f}× the first row)" if r is not eager else ""
        return f"{r[key]:,.0f}{ratio}"

    ratio = r["whole"] / r["step"]
    peak = f"{r['peak_gib']:.2f}" if r["peak_gib"] is not None else "–"
    gtx = f"{r['whole'] / GTX1080_IMAGES_S:.2f}×" if name == "thesis" else "–"
    row = (
        f"| {name} | {n_params / 1e6:.2f} M | {n} | {mode} | {rate('step')} | {rate('whole')} | "
        f"{ratio:.2f} | {rate('infer')} | {peak} | {gtx} |"
    )
    extra_ms = 1e3 * n * (1 / r["whole"] - 1 / r["step"])
    share = 1 - ratio
    if share > 0.5:
        verdict = "composition is the bottleneck"
    elif share > 0.2:
        verdict = "composition is a large share"
    elif share < 0:
        verdict = "no measurable cost: the difference is timing noise"
    else:
        verdict = "composition is not the bottleneck"
    line = (
        f"{name}, batch {n}, {mode} on {dev.type}: optimiser step {r['step']:,.0f} images/s "
        f"({r['step_calls']} calls), whole training step {r['whole']:,.0f} images/s "
        f"({r['whole_calls']} calls; make_batch and the rest add {extra_ms:.0f} ms per batch, "
        f"{100 * share:.0f} % of the whole step: {verdict}), inference {r['infer']:,.0f} "
        f"windows/s ({r['infer_calls']} calls)"
    )
    if name == "thesis":
        line += f"; {r['whole'] / GTX1080_IMAGES_S:.2f}× the thesis' GTX 1080 (46 images/s)"
        if dev.type == "cuda":
            met = "met" if r["whole"] >= H100_TARGET_IMAGES_S else "NOT met"
            line += f"; H100 target ≥ 20,000 images/s: {met}"
    return row, line


def main():
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", help="cpu or cuda[:k] (default: cuda if visible, else cpu)")
    parser.add_argument(
        "--batch-sizes", type=int, nargs="+", help="default: 512 2048 on CUDA, 64 on the CPU"
    )
    parser.add_argument("--nets", nargs="+", default=["default", "bench", "thesis"])
    parser.add_argument("--seconds", type=float, default=4.0, help="least timed seconds per figure")
    parser.add_argument("--min-steps", type=int, default=3, help="least timed calls per figure")
    parser.add_argument("--warmup", type=int, help="untimed calls (default: 1 CPU, 5 CUDA)")
    parser.add_argument("--threads", type=int, default=os.cpu_count(), help="torch CPU threads")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile")
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["auto"],
        choices=PRECISIONS,
        help="train.precision values timed side by side (default: auto)",
    )
    parser.add_argument("--config", default="config/config.yaml")
    parser.add_argument("--bench-config", default="config/bench.yaml")
    parser.add_argument("--mocks", type=int, default=2000, help="synthetic bank size")
    parser.add_argument("--backgrounds", type=int, default=1000, help="synthetic sky cutouts")
    args = parser.parse_args()

    dev = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    cuda = dev.type == "cuda"
    if cuda and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())
    args.batch_sizes = args.batch_sizes or ([512, 2048] if cuda else [64])
    args.warmup = args.warmup if args.warmup is not None else (5 if cuda else 1)
    torch.set_num_threads(args.threads)
    if cuda:
        torch.backends.cudnn.benchmark = True
    nets = networks(args.config, args.bench_config)
    unknown = sorted(set(args.nets) - set(nets))
    if unknown:
        parser.error(f"--nets: unknown {unknown}; choose from {list(nets)}")
    data = synthetic_data(args.mocks, args.backgrounds)

    gpu = torch.cuda.get_device_name(dev) if cuda else "none used"
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python "
        f"{platform.python_version()}, numpy {np.__version__}, torch {torch.__version__} "
        f"({torch.get_num_threads()} CPU threads), device {dev}, GPU: {gpu}"
        f"{' (bf16 autocast, channels_last, cudnn.benchmark)' if cuda else ''}; "
        f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; load average at start "
        f"{os.getloadavg()[0]:.2f}"
    )
    print(
        f"data: {len(data.mocks)} blob mocks, {len(data.backgrounds)} skies, "
        f"{len(BANDS)} × {WINDOW_PX}² px; timing: ≥ {args.seconds:g} s and ≥ {args.min_steps} "
        f"calls per figure after {args.warmup} warm-up call(s), median"
    )
    for name in args.nets:
        spec, _, source = nets[name]
        print(
            f"network {name} ({source}): stage_blocks {list(spec.stage_blocks)}, stage_channels "
            f"{list(spec.stage_channels)}, widths {list(spec.widths)}, stem {spec.stem_channels}, "
            f"fc {spec.fc_width}"
        )

    header = (
        "| network | params | batch | mode | (1) step (images/s) | (2) make_batch + step "
        "(images/s) | (2)/(1) | (3) inference (windows/s) | peak GPU memory (GiB) | "
        "(2) × GTX 1080 |"
    )
    print(f"\n{header}\n|---|---|---|---|---|---|---|---|---|---|", flush=True)
    summaries = []
    modes = ["eager", "compile"] if args.compile else ["eager"]
    for name in args.nets:
        spec, grids, _ = nets[name]
        n_params = sum(p.numel() for p in ClusterNetwork(spec).parameters())
        for n in args.batch_sizes:
            eager = None
            for mode in modes:
                by_precision = measure(spec, grids, data, n, dev, mode == "compile", args)
                if cuda:
                    torch.cuda.empty_cache()  # the model and optimiser of measure() are gone
                for precision, r in by_precision.items():
                    eager = eager or r
                    label = f"{mode}, {precision}" if len(args.precisions) > 1 else mode
                    row, line = report(name, n_params, n, label, r, eager, dev)
                    print(row, flush=True)
                    summaries.append(line)
    print()
    for line in summaries:
        print(line)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"\npeak RSS of the process: {rss:.2f} GiB; load average at end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
