"""Training of the cluster CNN (thesis §3.2.2), resumable from per-epoch checkpoints.

Adam; the learning rate decays exponentially per step from ``lr_start`` (thesis: 0.01) to
``lr_end`` (1e-4) at the last step of the run; batches of ``batch_size`` (thesis: 512), half
bare backgrounds (:meth:`TrainingData.make_batch`); after every epoch the loss on a fixed
validation set (drawn once, from its own seed) decides the best model ("the best CNN model
was selected by picking the training iteration during which the CNN's loss was the lowest
on the validation set").

Resuming. After every epoch one checkpoint file is written atomically: weights, optimiser
and scheduler state, the best weights so far, the history, and the random states. The
randomness of epoch e (batches, augmentation, photon noise, dropout) derives from
(seed, e) alone, so a run that is killed (even ``kill -9``) and restarted with the same
arguments continues after its last finished epoch and ends with the same weights and
history (except the ``seconds`` column) as an uninterrupted run — bit for bit on CPU with
the same number of threads. A checkpoint made with other settings, network, grids, bands,
window, pixel scale, seed or data is refused with a ConfigError naming the key.

The checkpoint holds only plain Python values and tensors (``torch.load(weights_only=True)``
reads it). ``meta`` in it records spec, grids (:meth:`ParameterGrids.to_dict`), bands,
window, pixel scale, settings, seed and a fingerprint of the data; :func:`load_model` returns
the best model with it and :func:`check_checkpoint` compares it with a config.

Several GPUs (DistributedDataParallel). Launched by ``torchrun`` (``starclusters train``
joins the process group), :func:`train` runs one process per GPU: the global batch stays
``batch_size`` images per step, each of the W ranks draws batch_size / W of them from its
own stream of (seed, epoch, rank) — rank 0 of a single process draws exactly the stream
above — and DDP averages the gradients, so the learning-rate schedule and the number of
images seen do not depend on W. The draws themselves do: a W-GPU run is statistically
equivalent to, not bit-identical with, a 1-GPU run of the same seed. BatchNorm normalises
over each rank's batch_size / W images (no SyncBatchNorm: at the thesis' 512 images even 8
GPUs see 64 each, and syncing statistics would cost a collective per BatchNorm layer);
running statistics are rank 0's, which DDP broadcasts before every forward pass. Rank 0
alone draws the validation set, validates (on the unwrapped model), writes the checkpoint
and logs; the other ranks wait at a barrier. The step's losses are averaged over the ranks
before the backward pass, so every rank sees the same (global) training loss and all stop
together on a non-finite one. Every rank resumes from the same checkpoint; a checkpoint
written by another number of processes is resumed too (with a warning: from there on the
draws differ from an uninterrupted run's).
"""

from __future__ import annotations

import copy
import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from starclusters.config import dataclass_from_config
from starclusters.errors import ConfigError, InputFileError
from starclusters.io import atomic_path
from starclusters.model.data import TrainingData
from starclusters.model.network import ClusterNetwork, NetworkSpec, rotation_average
from starclusters.model.targets import (
    GRID_NAMES,
    HEADS,
    REGRESSION_TARGETS,
    ParameterGrids,
    loss,
    regression_loss,
)

log = logging.getLogger(__name__)

CONFIG_KEY = "train"
CHECKPOINT_FORMAT = "starclusters.model.checkpoint"
MODEL_FORMAT = "starclusters.model"
FORMAT_VERSION = 1
#: Tags mixed into SeedSequence so that the streams of training epochs, the validation set
#: and the weight initialisation never coincide.
_TRAIN_TAG, _VAL_TAG, _INIT_TAG = 1, 2, 3


@dataclass(frozen=True)
class TrainSettings:
    """How to train (the ``train`` config section; keys = field names).

    epochs, steps_per_epoch: the run is epochs × steps_per_epoch optimiser steps;
    batch_size: images per step (half bare backgrounds; thesis 512); lr_start, lr_end:
    learning rate of the first and the last step (exponential decay in between; thesis
    0.01 → 1e-4); val_size: images in the fixed validation set (half backgrounds);
    eval_batch_size: images per forward pass when validating; augment: random 90°
    rotations and flips; jitter_px: centring jitter of the mocks, px; calibration_jitter:
    σ of the per-band background flux factor (0 = off; thesis §3.3.1: 0.2).

    Invalid values raise ConfigError naming ``train.<key>``.
    """

    epochs: int = 50
    steps_per_epoch: int = 100
    batch_size: int = 512
    lr_start: float = 0.01
    lr_end: float = 1e-4
    val_size: int = 2048
    eval_batch_size: int = 512
    augment: bool = True
    jitter_px: int = 2
    calibration_jitter: float = 0.0

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{CONFIG_KEY}.{key}: {why}, got {getattr(self, key)!r}")

        for key in ("epochs", "steps_per_epoch", "eval_batch_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                bad(key, "must be a positive integer")
        for key in ("batch_size", "val_size"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 2:
                bad(key, "must be an integer ≥ 2 (half backgrounds, half clusters)")
        for key in ("lr_start", "lr_end"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
                bad(key, "must be a positive number")
        if not isinstance(self.augment, bool):
            bad("augment", "must be true or false")
        if isinstance(self.jitter_px, bool) or not isinstance(self.jitter_px, int):
            bad("jitter_px", "must be a non-negative integer (pixels)")
        if self.jitter_px < 0:
            bad("jitter_px", "must be a non-negative integer (pixels)")
        cj = self.calibration_jitter
        if isinstance(cj, bool) or not isinstance(cj, int | float) or not 0 <= cj < 1:
            bad("calibration_jitter", "must be a number in [0, 1) (thesis: 0.2)")

    @classmethod
    def from_config(cls, section: Mapping | None = None, **overrides) -> TrainSettings:
        """Settings from the ``train`` config mapping, then ``overrides``; unknown keys fail."""
        return dataclass_from_config(cls, section, CONFIG_KEY, **overrides)

    @property
    def total_steps(self) -> int:
        return self.epochs * self.steps_per_epoch

    def lr_factor(self, step: int) -> float:
        """Learning rate of optimiser step ``step`` (0-based) over lr_start: (end/start)^(step/(T-1))."""
        t = self.total_steps
        frac = min(step, t - 1) / (t - 1) if t > 1 else 0.0
        return (self.lr_end / self.lr_start) ** frac


@dataclass
class TrainResult:
    """The outcome of :func:`train`: the best model (eval mode), its epoch and the history."""

    model: ClusterNetwork
    history: pd.DataFrame
    best_epoch: int
    best_val_loss: float
    meta: dict


# ------------------------------------------------------------------------------ seeds, devices


def _entropy(seed: int, tag: int, epoch: int, rank: int) -> list[int]:
    # rank 0 keeps the entropy of a single process, whose streams predate DDP
    return [int(seed), tag, int(epoch)] + ([int(rank)] if rank else [])


def _rng(seed: int, tag: int, epoch: int = 0, rank: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(_entropy(seed, tag, epoch, rank)))


def _torch_seed(seed: int, tag: int, epoch: int = 0, rank: int = 0) -> int:
    sequence = np.random.SeedSequence(_entropy(seed, tag, epoch, rank))
    return int(sequence.generate_state(1, np.uint64)[0])


def _device(device) -> torch.device:
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available here; use device='cpu'")
    return dev


def _fork_rng(dev: torch.device):
    """Fork torch's CPU RNG (and the device's) so that training leaves the caller's RNG alone."""
    devices = [dev.index or 0] if dev.type == "cuda" else []
    return torch.random.fork_rng(devices=devices, device_type="cuda")


# ----------------------------------------------------------------------- several processes


def rank_and_world() -> tuple[int, int]:
    """(rank, world size) of this process: (0, 1) unless a torch.distributed group is up."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _barrier(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.distributed.barrier(device_ids=[dev.index])
    else:
        torch.distributed.barrier()


def _batch_share(batch_size: int, world: int) -> int:
    """Images each of ``world`` processes draws per step; ConfigError unless an even split."""
    if batch_size % world or batch_size // world < 2:
        fit = max(2 * world, round(batch_size / world) * world)
        raise ConfigError(
            f"train.batch_size: {batch_size} images per step do not split into {world} equal "
            f"shares of at least 2 (one per GPU, train.gpus = {world}); make it a multiple of "
            f"{world}, e.g. {fit}, or change train.gpus"
        )
    return batch_size // world


def check_gpus(device, gpus: int, batch_size: int | None = None) -> None:
    """Refuse a GPU request that this machine cannot serve, before any data are read.

    device: ``train.device`` ("cpu" or "cuda[:k]"); gpus: ``train.gpus``, processes of one
    GPU each (ignored on CPU); batch_size: ``train.batch_size``, the global batch, which the
    GPUs share evenly. ConfigError naming the key, with the numbers and what to do.
    """
    if isinstance(gpus, bool) or not isinstance(gpus, int) or gpus < 1:
        raise ConfigError(f"train.gpus: must be a positive integer, got {gpus!r}")
    if _device(device).type != "cuda":  # also: CUDA not available
        return
    visible = torch.cuda.device_count()
    if gpus > visible:
        where = os.environ.get("CUDA_VISIBLE_DEVICES")
        shown = f" (CUDA_VISIBLE_DEVICES={where})" if where is not None else ""
        raise ConfigError(
            f"train.gpus: {gpus} GPUs asked for, but {visible} visible here{shown}; set "
            f"train.gpus to at most {visible}, or run where {gpus} GPUs are allocated (the "
            "Slurm profile requests train.gpus of them for the rule train)"
        )
    if batch_size is not None:
        _batch_share(batch_size, gpus)


# --------------------------------------------------------------------------- meta and checks


def _meta(spec, grids, data: TrainingData, settings, seed) -> dict:
    return {
        "spec": _asdict(spec),
        "grids": grids.to_dict(),
        "bands": list(data.bands),
        "window_px": int(data.window_px),
        "pixel_scale_arcsec": float(data.pixel_scale_arcsec),
        "exptime_s": [float(v) for v in data.exptime_s],
        "settings": _asdict(settings),
        "seed": int(seed),
        "data_counts": data.counts(),
        "data_fingerprint": data.fingerprint(),
        "training_prior": _training_prior(grids, data),
        "torch_version": str(torch.__version__),
    }


def _training_prior(grids, data: TrainingData) -> dict:
    """Per-axis marginals of the age × A_V × mass targets of the training split's mocks
    (the prior the network's posteriors are under; starclusters.detect.population_prior)."""
    from starclusters.detect.population_prior import training_marginals
    from starclusters.model.targets import soft_target_3d

    params = data.mock_params[np.asarray(data.mock_split) == "train"]
    if params.empty:
        params = data.mock_params
    total = np.zeros(grids.shape_3d)
    for start in range(0, len(params), 2048):  # (2048, A, E, M) float64 at a time
        rows = params.iloc[start : start + 2048]
        total += soft_target_3d(
            rows["log_age_yr"].to_numpy(float),
            rows["av_mag"].to_numpy(float),
            rows["log_mass_msun"].to_numpy(float),
            grids,
        ).sum(axis=0)
    return training_marginals(total)


def _cpu_scale(model: ClusterNetwork):
    """The model's fixed input scales on the CPU (for batches composed there), or None."""
    scale = model.band_scale()
    return None if scale is None else scale.detach().cpu()


def _asdict(obj) -> dict:
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def _grids_equal(a: Sequence, b: Sequence) -> bool:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return a.shape == b.shape and np.allclose(a, b, rtol=1e-9, atol=1e-12)


def check_checkpoint(
    meta: Mapping,
    bands: Sequence[str],
    window_px: int,
    grids: ParameterGrids,
    pixel_scale_arcsec: float | None = None,
) -> None:
    """Refuse a model whose bands, window, grids or pixel scale differ from the config's.

    meta: the ``meta`` of :func:`load_model`. ConfigError naming the first mismatching key
    (``bands``, ``window_px``, ``model.grids.<name>``, ``pixel_scale_arcsec``) with both
    values, and what to do.
    """
    where = "the model was trained with"
    fix = "use the matching config or retrain the model"
    if list(meta.get("bands", [])) != list(bands):
        raise ConfigError(f"bands: {where} {meta.get('bands')}, config has {list(bands)}; {fix}")
    if int(meta.get("window_px", -1)) != int(window_px):
        raise ConfigError(
            f"window_px: {where} {meta.get('window_px')}, config has {window_px}; {fix}"
        )
    stored = meta.get("grids", {})
    for name in GRID_NAMES:
        if name not in stored or not _grids_equal(stored[name], getattr(grids, name)):
            theirs = np.asarray(stored.get(name, []), float)
            ours = getattr(grids, name)
            raise ConfigError(
                f"model.grids.{name}: {where} {theirs.size} centres "
                f"[{theirs[:1]}…{theirs[-1:]}], config gives {ours.size} "
                f"[{ours[0]:g}…{ours[-1]:g}]; {fix}"
            )
    if pixel_scale_arcsec is not None and not math.isclose(
        float(meta.get("pixel_scale_arcsec", math.nan)), pixel_scale_arcsec, rel_tol=1e-9
    ):
        raise ConfigError(
            f"pixel_scale_arcsec: {where} {meta.get('pixel_scale_arcsec')}, config has "
            f"{pixel_scale_arcsec}; {fix}"
        )


def _check_resume(stored: Mapping, current: Mapping, path: Path) -> None:
    """ConfigError naming the first key in which a checkpoint's meta differs from this run."""
    fix = f"delete {path} to start training over, or restore the previous config"
    for key in ("settings", "spec"):
        section = "train" if key == "settings" else "model"
        for name, value in current[key].items():
            if stored.get(key, {}).get(name) != value:
                raise ConfigError(
                    f"{section}.{name}: the checkpoint {path} was made with "
                    f"{stored.get(key, {}).get(name)!r}, this run has {value!r}; {fix}"
                )
    check_checkpoint(stored, current["bands"], current["window_px"], _grids_of(current))
    for key in ("pixel_scale_arcsec", "seed", "data_fingerprint"):
        if stored.get(key) != current[key]:
            what = "the training data (mock bank or backgrounds) changed" if "data" in key else ""
            raise ConfigError(
                f"{key}: the checkpoint {path} was made with {stored.get(key)!r}, this run "
                f"has {current[key]!r} {what}; {fix}"
            )


def _grids_of(meta: Mapping) -> ParameterGrids:
    return ParameterGrids.from_dict(meta["grids"])


def _check_compatible(spec: NetworkSpec, grids: ParameterGrids, data: TrainingData) -> None:
    if spec.window_px != data.window_px:
        raise ConfigError(
            f"model.window_px: the network takes {spec.window_px} px, the data are "
            f"{data.window_px} px; set model.window_px to window_px"
        )
    if spec.in_bands != len(data.bands):
        raise ConfigError(
            f"model.in_bands: the network takes {spec.in_bands} bands, the data have "
            f"{len(data.bands)} ({', '.join(data.bands)})"
        )
    sizes = {
        "n_age": ("log_age_yr", spec.n_age),
        "n_av": ("av_mag", spec.n_av),
        "n_mass": ("log_mass_msun", spec.n_mass),
        "n_rh": ("log_rh_arcsec", spec.n_rh),
        "n_visibility": ("visibility", spec.n_visibility),
    }
    for key, (grid, n) in sizes.items():
        if spec.head == "softmax" and getattr(grids, grid).size != n:
            raise ConfigError(
                f"model.{key}: the network has {n} bins but model.grids.{grid} has "
                f"{getattr(grids, grid).size}; make them equal"
            )


# -------------------------------------------------------------------------------- checkpoints


def _load(path: Path, device) -> dict:
    try:
        return torch.load(path, map_location=device, weights_only=True)
    except Exception as err:  # truncated, not a torch file, or unsafe content
        raise InputFileError(
            f"{path}: not a readable model checkpoint ({type(err).__name__}: {err}); delete it "
            "and rerun the training"
        ) from err


def _save(obj: Mapping, path: Path) -> None:
    with atomic_path(path) as tmp:
        torch.save(dict(obj), tmp)


def _state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------------- training


def _objective(head: str):
    """(loss function, names of its parts) of the network's head type."""
    if head == "regression":  # thesis ch. 2: smooth-L1 on age, mass and r_h
        return regression_loss, tuple(REGRESSION_TARGETS)
    return loss, HEADS


def _forward(model, x, dev, amp: bool, head: str = "softmax"):
    """The network's outputs; the regression network averages over the 4 rotations of x
    (thesis §2.3.1, Dieleman et al. 2015) in training and evaluation alike."""
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
    if dev.type == "cuda":
        x = x.to(dev, non_blocking=True, memory_format=torch.channels_last)
    with ctx:
        return rotation_average(model, x) if head == "regression" else model(x)


def _accuracy(outputs, targets) -> torch.Tensor:
    """Class accuracy of the softmax network; NaN for the regression network (no class)."""
    if "class" not in outputs:
        return torch.tensor(float("nan"), device=targets["cluster"].device)
    return (outputs["class"].argmax(dim=1) == targets["class"].argmax(dim=1)).float().mean()


@torch.no_grad()
def evaluate(model, x: torch.Tensor, targets: Mapping, eval_batch_size: int, device="cpu"):
    """(total loss, {head: loss}, class accuracy) of ``model`` in eval mode on a fixed set.

    x: (N, B, S, S) preprocessed; targets: from :meth:`TrainingData.make_batch` for the
    model's head type. Outputs are computed in chunks of eval_batch_size and the loss on
    all N at once, so it equals the loss of the whole set. Accuracy is NaN for the
    regression network.
    """
    dev = _device(device)
    head = model.spec.head
    loss_fn, _ = _objective(head)
    was_training = model.training
    model.eval()
    chunks = []
    for start in range(0, x.shape[0], eval_batch_size):
        out = _forward(model, x[start : start + eval_batch_size], dev, dev.type == "cuda", head)
        chunks.append({k: v.float() for k, v in out.items()})
    model.train(was_training)
    outputs = {k: torch.cat([c[k] for c in chunks]) for k in chunks[0]}
    targets = {k: v.to(dev) for k, v in targets.items()}
    total, per_head = loss_fn(outputs, targets)
    return (
        float(total),
        {k: float(v) for k, v in per_head.items()},
        float(_accuracy(outputs, targets)),
    )


def train(
    spec: NetworkSpec,
    grids: ParameterGrids,
    data: TrainingData,
    settings: TrainSettings,
    checkpoint_path: str | os.PathLike,
    seed: int,
    device="cpu",
    *,
    stop_after_epochs: int | None = None,
    restart_on_mismatch: bool = False,
) -> TrainResult:
    """Train a ClusterNetwork on ``data``; resume from ``checkpoint_path`` if it exists.

    A checkpoint made with other settings, network, grids, seed or data stops the run
    with the key named, or — with ``restart_on_mismatch`` (the workflow: a rerun
    after a config change) — is set aside and training starts over.

    spec, grids: the network and its output grids (sizes must agree); data: the in-memory
    bank and backgrounds (:class:`TrainingData`); settings: :class:`TrainSettings`;
    checkpoint_path: written atomically after every epoch and read at start; seed: all
    randomness (initial weights, batches, validation set) derives from it; device: "cpu"
    or "cuda[:k]" (there: bf16 autocast and channels_last). stop_after_epochs: return after
    this many epochs of *this call* (e.g. to fit a wall-time limit); rerun to continue.

    Inside an initialised torch.distributed group (``torchrun``; gloo also works on CPU)
    every rank calls this with the same arguments — device: its own GPU — and the model
    is wrapped in DistributedDataParallel (see the module docstring); batch_size must be a
    multiple of the world size (ConfigError naming ``train.batch_size``). Every rank returns
    the same result; the history's train values are means over all ranks' images.

    Returns the best model by validation loss (eval mode, on ``device``) with the history:
    one row per epoch with epoch (1-based), train_loss, val_loss, train_loss_<head>,
    val_loss_<head> (heads age_av_mass, rh, class, visibility; for the regression network
    of thesis ch. 2 — clusters only, 4-rotation averaging, smooth-L1 — age, mass, rh; train
    values are means over the epoch's steps), train_accuracy, val_accuracy (class; NaN for
    the regression network), lr (of the epoch's last step),
    seconds (wall time of the epoch) and best (the epoch is the best so far).
    """
    path = Path(checkpoint_path)
    dev = _device(device)
    amp = dev.type == "cuda"
    rank, world = rank_and_world()
    share = _batch_share(settings.batch_size, world)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())  # torchrun: set from LOCAL_RANK
    _check_compatible(spec, grids, data)
    meta = _meta(spec, grids, data, settings, seed)
    loss_fn, parts_names = _objective(spec.head)

    with _fork_rng(dev):
        torch.manual_seed(_torch_seed(seed, _INIT_TAG))
        model = ClusterNetwork(spec)
    if spec.input_norm == "fixed":
        model.set_input_scale(data.band_scale())
    model.to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr_start)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: settings.lr_factor(step))
    history: list[dict] = []
    best = {"epoch": 0, "val_loss": math.inf, "model": _state_copy(model)}
    start_epoch = 0

    state = _load(path, dev) if path.exists() else None
    if state is not None:
        if state.get("format") != CHECKPOINT_FORMAT:
            raise InputFileError(
                f"{path}: not a training checkpoint (format {state.get('format')!r}); delete "
                "it or give another checkpoint path"
            )
        try:
            _check_resume(state["meta"], meta, path)
        except ConfigError as err:
            if not restart_on_mismatch:
                raise
            if rank == 0:
                log.warning("starting over: %s", err)
            state = None
    if state is not None:
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        best = {
            "epoch": state["best"]["epoch"],
            "val_loss": state["best"]["val_loss"],
            "model": state["best"]["model"],
        }
        history = pd.DataFrame(state["history"]).to_dict("records")
        start_epoch = int(state["epoch"])
        if rank == 0:
            log.info("resuming %s after epoch %d of %d", path, start_epoch, settings.epochs)
            stored_world = int(state.get("world_size", 1))
            if stored_world != world and start_epoch < settings.epochs:
                log.warning(
                    "the checkpoint was written by %d training process(es), this run has %d: "
                    "the remaining epochs draw other batches than an uninterrupted run would",
                    stored_world,
                    world,
                )
    ddp = model
    if world > 1:
        ids = [dev.index] if dev.type == "cuda" else None
        ddp = torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)

    val_x = val_targets = None
    if rank == 0:
        val_x, val_targets = data.make_batch(
            "val",
            settings.val_size,
            _rng(seed, _VAL_TAG),
            grids,
            augment=settings.augment,
            jitter_px=settings.jitter_px,
            calibration_jitter=settings.calibration_jitter,
            head=spec.head,
            band_scale=_cpu_scale(model),
        )
    end_epoch = settings.epochs
    if stop_after_epochs is not None:
        end_epoch = min(end_epoch, start_epoch + int(stop_after_epochs))

    band_scale = model.band_scale()
    for epoch in range(start_epoch + 1, end_epoch + 1):
        t0 = time.perf_counter()
        rng = _rng(seed, _TRAIN_TAG, epoch, rank)
        sums = {k: 0.0 for k in ("loss", "accuracy", *parts_names)}
        ddp.train()
        with _fork_rng(dev):
            torch.manual_seed(_torch_seed(seed, _TRAIN_TAG, epoch, rank))  # dropout
            steps = tqdm(
                range(settings.steps_per_epoch),
                desc=f"epoch {epoch}/{settings.epochs}",
                leave=False,
                disable=None if rank == 0 else True,
            )
            for _ in steps:
                x, targets = data.make_batch(
                    "train",
                    share,
                    rng,
                    grids,
                    augment=settings.augment,
                    jitter_px=settings.jitter_px,
                    calibration_jitter=settings.calibration_jitter,
                    device=dev,
                    head=spec.head,
                    band_scale=band_scale,
                )
                outputs = _forward(ddp, x, dev, amp, spec.head)
                outputs = {k: v.float() for k, v in outputs.items()}
                total, per_head = loss_fn(outputs, targets)
                # (loss, accuracy, heads), averaged over the ranks before anyone steps
                accuracy = _accuracy(outputs, targets)
                parts = [total, accuracy, *(per_head[h] for h in parts_names)]
                stats = torch.stack([p.detach() for p in parts]).double()
                if world > 1:
                    torch.distributed.all_reduce(stats)
                    stats /= world
                value, accuracy, *head_values = stats.tolist()
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"training loss is {value} at epoch {epoch}; lower train.lr_start"
                    )
                optimizer.zero_grad(set_to_none=True)
                total.backward()
                optimizer.step()
                lr = optimizer.param_groups[0]["lr"]
                scheduler.step()
                sums["loss"] += value
                sums["accuracy"] += accuracy
                for head, part in zip(parts_names, head_values, strict=True):
                    sums[head] += part
                steps.set_postfix(loss=f"{value:.3f}")
        if rank == 0:  # validation, history, checkpoint, log
            n = settings.steps_per_epoch
            val_loss, val_heads, val_acc = evaluate(
                model, val_x, val_targets, settings.eval_batch_size, dev
            )
            is_best = val_loss < best["val_loss"]
            if is_best:
                best = {"epoch": epoch, "val_loss": val_loss, "model": _state_copy(model)}
            row = {"epoch": epoch, "train_loss": sums["loss"] / n, "val_loss": val_loss}
            row.update({f"train_loss_{h}": sums[h] / n for h in parts_names})
            row.update({f"val_loss_{h}": val_heads[h] for h in parts_names})
            row.update(
                train_accuracy=sums["accuracy"] / n,
                val_accuracy=val_acc,
                lr=lr,
                seconds=time.perf_counter() - t0,
                best=is_best,
            )
            history.append(row)
            _save(
                {
                    "format": CHECKPOINT_FORMAT,
                    "version": FORMAT_VERSION,
                    "meta": meta,
                    "epoch": epoch,
                    "model": _state_copy(model),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "best": best,
                    "history": pd.DataFrame(history).to_dict("list"),
                    "numpy_rng": json.dumps(rng.bit_generator.state),
                    "torch_rng": torch.get_rng_state(),
                    "world_size": world,
                },
                path,
            )
            log.info(
                "epoch %d/%d: train loss %.4f, val loss %.4f%s, class accuracy %.3f/%.3f, "
                "lr %.2e, %.1f s",
                epoch,
                settings.epochs,
                row["train_loss"],
                val_loss,
                " (best)" if is_best else f" (best {best['val_loss']:.4f} at {best['epoch']})",
                row["train_accuracy"],
                val_acc,
                lr,
                row["seconds"],
            )
        if world > 1:
            _barrier(dev)  # the checkpoint of this epoch is written

    if rank > 0 and end_epoch > start_epoch:  # rank 0 alone validated: its checkpoint knows
        state = _load(path, dev)
        best = state["best"]
        history = pd.DataFrame(state["history"]).to_dict("records")
    model.load_state_dict(best["model"])
    model.eval()
    hist = _history_frame(history)
    out_meta = {**meta, "best_epoch": best["epoch"], "best_val_loss": best["val_loss"]}
    return TrainResult(model, hist, best["epoch"], best["val_loss"], out_meta)


def _history_frame(rows: list[dict] | Mapping) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["epoch"] = frame["epoch"].astype(int)
    frame["best"] = frame["best"].astype(bool)
    return frame


# --------------------------------------------------------------------------- using the model


def export_model(checkpoint_path: str | os.PathLike, model_path: str | os.PathLike) -> None:
    """Write the best weights of a training checkpoint, with its meta and history, atomically.

    The result (``model.pt``) is what detection reads; it lacks the optimiser state.
    """
    state = _load(Path(checkpoint_path), "cpu")
    if state.get("format") != CHECKPOINT_FORMAT:
        raise InputFileError(
            f"{checkpoint_path}: not a training checkpoint; give the one train wrote"
        )
    meta = {
        **state["meta"],
        "best_epoch": state["best"]["epoch"],
        "best_val_loss": state["best"]["val_loss"],
        "epochs_done": state["epoch"],
    }
    _save(
        {
            "format": MODEL_FORMAT,
            "version": FORMAT_VERSION,
            "meta": meta,
            "model": state["best"]["model"],
            "history": state["history"],
        },
        Path(model_path),
    )


def load_model(
    path: str | os.PathLike, device="cpu"
) -> tuple[ClusterNetwork, ParameterGrids, dict]:
    """(model in eval mode on ``device``, its grids, meta) from a model file or a checkpoint.

    A training checkpoint gives its best weights. meta holds spec, grids, bands, window_px,
    pixel_scale_arcsec, settings, seed, best_epoch, best_val_loss and ``history`` (a
    DataFrame); check it against a config with :func:`check_checkpoint`.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such model file; run the training stage first")
    dev = _device(device)
    state = _load(path, dev)
    fmt = state.get("format") if isinstance(state, Mapping) else None
    if fmt not in (CHECKPOINT_FORMAT, MODEL_FORMAT):
        raise InputFileError(f"{path}: not a starclusters model (format {fmt!r}); retrain it")
    meta = copy.deepcopy(dict(state["meta"]))
    if fmt == CHECKPOINT_FORMAT:
        weights = state["best"]["model"]
        meta.update(best_epoch=state["best"]["epoch"], best_val_loss=state["best"]["val_loss"])
        meta["epochs_done"] = state["epoch"]
    else:
        weights = state["model"]
    meta["history"] = _history_frame(state["history"])
    model = ClusterNetwork(NetworkSpec(**meta["spec"]))
    model.load_state_dict(weights)
    model.to(dev).eval()
    return model, _grids_of(meta), meta
