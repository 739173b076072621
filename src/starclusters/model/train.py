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

The checkpoint's format, and reading, exporting and checking it and the model file, are in
:mod:`starclusters.model.checkpoint` (:func:`~starclusters.model.checkpoint.load_model`,
:func:`~starclusters.model.checkpoint.export_model`,
:func:`~starclusters.model.checkpoint.check_checkpoint`); the targets and losses in
:mod:`starclusters.model.targets`, the grids in :mod:`starclusters.model.codec`.

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

import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

from starclusters.errors import ConfigError, InputFileError
from starclusters.model.checkpoint import (
    CHECKPOINT_FORMAT,
    FORMAT_VERSION,
    _asdict,
    _device,
    _grids_of,
    _history_frame,
    _load,
    _save,
    check_checkpoint,
)
from starclusters.model.codec import HEADS, REGRESSION_TARGETS, ParameterGrids
from starclusters.model.data import TrainingData
from starclusters.model.network import ClusterNetwork, NetworkSpec, rotation_average
from starclusters.model.settings import TrainSettings, batch_share
from starclusters.model.targets import loss, regression_loss

log = logging.getLogger(__name__)

#: Tags mixed into SeedSequence so that the streams of training epochs, the validation set
#: and the weight initialisation never coincide.
_TRAIN_TAG, _VAL_TAG, _INIT_TAG, _OFFSET_TAG = 1, 2, 3, 4
#: Training settings that checkpoints written before they existed were made with.
_SETTING_DEFAULTS = {
    "seed_offset": TrainSettings.seed_offset,
    # before train.precision: bf16 on CUDA, float32 on the CPU; such a checkpoint resumes
    # under auto (identical on CUDA; bf16 from here on a CPU with native bf16)
    "precision": TrainSettings.precision,
}


@dataclass
class TrainResult:
    """The outcome of :func:`train`: the best model (eval mode), its epoch and the history."""

    model: ClusterNetwork
    history: pd.DataFrame
    best_epoch: int
    best_val_loss: float
    meta: dict


# ------------------------------------------------------------------------------ seeds, devices


def _entropy(run: _Run, tag: int, epoch: int, rank: int) -> list[int]:
    # rank 0 keeps the entropy of a single process, whose streams predate DDP, and
    # train.seed_offset 0 that of the runs before the offset existed
    key = [int(run.seed), tag, int(epoch)] + ([int(rank)] if rank else [])
    offset = run.settings.seed_offset
    return key + [_OFFSET_TAG, int(offset)] if offset else key


def _rng(run: _Run, tag: int, epoch: int = 0, rank: int = 0) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence(_entropy(run, tag, epoch, rank)))


def _torch_seed(run: _Run, tag: int, epoch: int = 0, rank: int = 0) -> int:
    sequence = np.random.SeedSequence(_entropy(run, tag, epoch, rank))
    return int(sequence.generate_state(1, np.uint64)[0])


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
        batch_share(batch_size, gpus)


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
    from starclusters.model.targets import soft_target_3d, training_marginals

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


def _check_resume(stored: Mapping, current: Mapping, path: Path) -> None:
    """ConfigError naming the first key in which a checkpoint's meta differs from this run."""
    fix = f"delete {path} to start training over, or restore the previous config"
    # a setting added since the checkpoint was written had its default then
    absent = {"settings": _SETTING_DEFAULTS, "spec": {}}
    for key in ("settings", "spec"):
        section = "train" if key == "settings" else "model"
        for name, value in current[key].items():
            made_with = stored.get(key, {}).get(name, absent[key].get(name))
            if made_with != value:
                raise ConfigError(
                    f"{section}.{name}: the checkpoint {path} was made with "
                    f"{made_with!r}, this run has {value!r}; {fix}"
                )
    check_checkpoint(stored, current["bands"], current["window_px"], _grids_of(current))
    for key in ("pixel_scale_arcsec", "seed", "data_fingerprint"):
        if stored.get(key) != current[key]:
            what = "the training data (mock bank or backgrounds) changed" if "data" in key else ""
            raise ConfigError(
                f"{key}: the checkpoint {path} was made with {stored.get(key)!r}, this run "
                f"has {current[key]!r} {what}; {fix}"
            )


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


def _state_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}


# ----------------------------------------------------------------------------------- training


def _objective(head: str):
    """(loss function, names of its parts) of the network's head type."""
    if head == "regression":  # thesis ch. 2: smooth-L1 on age, mass and r_h
        return regression_loss, tuple(REGRESSION_TARGETS)
    return loss, HEADS


def cpu_has_bf16() -> bool:
    """Whether this CPU does bf16 arithmetic natively (AVX512-BF16 or AMX: oneDNN's bf16
    kernels); elsewhere bf16 autocast is emulated and slower than float32."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def uses_bf16(precision: str, dev: torch.device) -> bool:
    """Whether training steps on ``dev`` run under bf16 autocast for train.precision
    ``precision``: always with bf16, never with fp32; auto on CUDA and on a CPU with
    native bf16 (:func:`cpu_has_bf16`)."""
    if precision != "auto":
        return precision == "bf16"
    return dev.type == "cuda" or (dev.type == "cpu" and cpu_has_bf16())


def _forward(model, x, dev, amp: bool, head: str = "softmax"):
    """The network's outputs, under bf16 autocast on ``dev`` with ``amp``; the regression
    network averages over the 4 rotations of x (thesis §2.3.1, Dieleman et al. 2015) in
    training and evaluation alike."""
    ctx = torch.autocast(dev.type, dtype=torch.bfloat16) if amp else nullcontext()
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
    or "cuda[:k]" (there channels_last; bf16 autocast as ``settings.precision`` says,
    :func:`uses_bf16`). stop_after_epochs: return after
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
    run = _setup(spec, grids, data, settings, checkpoint_path, seed, device)
    state = _initial_state(run)
    start_epoch = _resume(run, state, restart_on_mismatch)
    ddp = _distributed(run, state.model)
    val_set = _validation_set(run, state.model) if run.rank == 0 else None
    end_epoch = settings.epochs
    if run.rank == 0:
        log.info(
            "training steps in %s on %s (train.precision: %s)",
            "bf16 autocast" if run.amp else "float32",
            run.dev,
            settings.precision,
        )
    if stop_after_epochs is not None:
        end_epoch = min(end_epoch, start_epoch + int(stop_after_epochs))

    for epoch in range(start_epoch + 1, end_epoch + 1):
        t0 = time.perf_counter()
        sums, lr, rng = _train_epoch(run, state, ddp, epoch)
        if run.rank == 0:  # validation, history, checkpoint, log
            row = _validate(run, state, epoch, sums, lr, t0, val_set)
            _save_checkpoint(run, state, epoch, rng)
            _log_epoch(run, state, row)
        if run.world > 1:
            _barrier(run.dev)  # the checkpoint of this epoch is written

    return _result(run, state, ran=end_epoch > start_epoch)


# ------------------------------------------------------------------------- the steps of train()


@dataclass(frozen=True)
class _Run:
    """What one call of :func:`train` trains, and where; the same on every rank but ``rank``."""

    spec: NetworkSpec
    grids: ParameterGrids
    data: TrainingData
    settings: TrainSettings
    seed: int
    path: Path  # the checkpoint, read at start and written after every epoch
    meta: dict  # the checkpoint's meta (:func:`_meta`)
    dev: torch.device
    rank: int
    world: int
    share: int  # images this rank draws per step (:func:`~starclusters.model.settings.batch_share`)
    loss_fn: Callable  # of the head type (:func:`_objective`)
    parts: tuple[str, ...]  # the names of its per-head parts

    @property
    def amp(self) -> bool:
        """bf16 autocast of the training steps (:func:`uses_bf16`; channels_last on CUDA)."""
        return uses_bf16(self.settings.precision, self.dev)


@dataclass
class _State:
    """What a run carries from epoch to epoch and writes into its checkpoint."""

    model: ClusterNetwork
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    best: dict  # epoch, val_loss and model (weights on the CPU) of the best epoch so far
    history: list[dict] = field(default_factory=list)  # one row per finished epoch


def _setup(spec, grids, data, settings, checkpoint_path, seed, device) -> _Run:
    """The run of :func:`train`'s arguments, its device, rank and checkpoint meta, checked."""
    path = Path(checkpoint_path)
    dev = _device(device)
    rank, world = rank_and_world()
    share = batch_share(settings.batch_size, world)
    if dev.type == "cuda" and dev.index is None:
        dev = torch.device("cuda", torch.cuda.current_device())  # torchrun: set from LOCAL_RANK
    _check_compatible(spec, grids, data)
    meta = _meta(spec, grids, data, settings, seed)
    loss_fn, parts = _objective(spec.head)
    return _Run(
        spec, grids, data, settings, seed, path, meta, dev, rank, world, share, loss_fn, parts
    )


def _initial_state(run: _Run) -> _State:
    """A new network with its initial weights from the seed, on the device; Adam and the
    learning-rate schedule at step 0; the initial weights as the best so far."""
    settings = run.settings
    with _fork_rng(run.dev):
        torch.manual_seed(_torch_seed(run, _INIT_TAG))
        model = ClusterNetwork(run.spec)
    if run.spec.input_norm == "fixed":
        model.set_input_scale(run.data.band_scale())
    model.to(run.dev)
    if run.dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr_start)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: settings.lr_factor(step))
    best = {"epoch": 0, "val_loss": math.inf, "model": _state_copy(model)}
    return _State(model, optimizer, scheduler, best)


def _resume(run: _Run, state: _State, restart_on_mismatch: bool) -> int:
    """The number of epochs already done: those of the checkpoint at ``run.path``, whose
    weights, optimiser, scheduler, best model and history then replace ``state``'s; 0
    without a checkpoint, or with a mismatching one and ``restart_on_mismatch``."""
    path = run.path
    checkpoint = _load(path, run.dev) if path.exists() else None
    if checkpoint is not None:
        if checkpoint.get("format") != CHECKPOINT_FORMAT:
            raise InputFileError(
                f"{path}: not a training checkpoint (format {checkpoint.get('format')!r}); "
                "delete it or give another checkpoint path"
            )
        try:
            _check_resume(checkpoint["meta"], run.meta, path)
        except ConfigError as err:
            if not restart_on_mismatch:
                raise
            if run.rank == 0:
                log.warning("starting over: %s", err)
            checkpoint = None
    if checkpoint is None:
        return 0
    state.model.load_state_dict(checkpoint["model"])
    state.optimizer.load_state_dict(checkpoint["optimizer"])
    state.scheduler.load_state_dict(checkpoint["scheduler"])
    state.best = {
        "epoch": checkpoint["best"]["epoch"],
        "val_loss": checkpoint["best"]["val_loss"],
        "model": checkpoint["best"]["model"],
    }
    state.history = pd.DataFrame(checkpoint["history"]).to_dict("records")
    start_epoch = int(checkpoint["epoch"])
    if run.rank == 0:
        log.info("resuming %s after epoch %d of %d", path, start_epoch, run.settings.epochs)
        stored_world = int(checkpoint.get("world_size", 1))
        if stored_world != run.world and start_epoch < run.settings.epochs:
            log.warning(
                "the checkpoint was written by %d training process(es), this run has %d: "
                "the remaining epochs draw other batches than an uninterrupted run would",
                stored_world,
                run.world,
            )
    return start_epoch


def _distributed(run: _Run, model: ClusterNetwork) -> torch.nn.Module:
    """The model as the steps call it: wrapped in DistributedDataParallel with several ranks."""
    if run.world == 1:
        return model
    ids = [run.dev.index] if run.dev.type == "cuda" else None
    return torch.nn.parallel.DistributedDataParallel(model, device_ids=ids)


def _validation_set(run: _Run, model: ClusterNetwork) -> tuple[torch.Tensor, dict]:
    """(x, targets) of the fixed validation set, drawn once from its own seed (rank 0)."""
    settings = run.settings
    return run.data.make_batch(
        "val",
        settings.val_size,
        _rng(run, _VAL_TAG),
        run.grids,
        augment=settings.augment,
        jitter_px=settings.jitter_px,
        calibration_jitter=settings.calibration_jitter,
        star_group_fraction=settings.star_group_fraction,
        head=run.spec.head,
        band_scale=_cpu_scale(model),
    )


def _train_epoch(run: _Run, state: _State, ddp, epoch: int):
    """Epoch ``epoch``'s steps_per_epoch optimiser steps, its randomness from (seed, epoch, rank).

    Returns the sums over the steps of the loss, the class accuracy and the per-head losses
    (each step's averaged over the ranks), the learning rate of the last step, and the
    epoch's batch generator (whose state the checkpoint records).
    """
    settings = run.settings
    rng = _rng(run, _TRAIN_TAG, epoch, run.rank)
    sums = {k: 0.0 for k in ("loss", "accuracy", *run.parts)}
    band_scale = state.model.band_scale()
    ddp.train()
    with _fork_rng(run.dev):
        torch.manual_seed(_torch_seed(run, _TRAIN_TAG, epoch, run.rank))  # dropout
        steps = tqdm(
            range(settings.steps_per_epoch),
            desc=f"epoch {epoch}/{settings.epochs}",
            leave=False,
            disable=None if run.rank == 0 else True,
        )
        for _ in steps:
            x, targets = run.data.make_batch(
                "train",
                run.share,
                rng,
                run.grids,
                augment=settings.augment,
                jitter_px=settings.jitter_px,
                calibration_jitter=settings.calibration_jitter,
                star_group_fraction=settings.star_group_fraction,
                device=run.dev,
                head=run.spec.head,
                band_scale=band_scale,
            )
            (value, accuracy, *head_values), lr = _step(run, state, ddp, x, targets, epoch)
            sums["loss"] += value
            sums["accuracy"] += accuracy
            for head, part in zip(run.parts, head_values, strict=True):
                sums[head] += part
            steps.set_postfix(loss=f"{value:.3f}")
    return sums, lr, rng


def _step(run: _Run, state: _State, ddp, x, targets, epoch: int) -> tuple[list[float], float]:
    """One optimiser step on the batch (x, targets): forward, loss, backward, Adam, schedule.

    Returns [loss, class accuracy, *per-head losses], averaged over the ranks before anyone
    steps (so that all stop together on a non-finite loss: FloatingPointError), and the
    learning rate of the step.
    """
    outputs = _forward(ddp, x, run.dev, run.amp, run.spec.head)
    outputs = {k: v.float() for k, v in outputs.items()}
    total, per_head = run.loss_fn(outputs, targets)
    # (loss, accuracy, heads), averaged over the ranks before anyone steps
    accuracy = _accuracy(outputs, targets)
    parts = [total, accuracy, *(per_head[h] for h in run.parts)]
    stats = torch.stack([p.detach() for p in parts]).double()
    if run.world > 1:
        torch.distributed.all_reduce(stats)
        stats /= run.world
    values = stats.tolist()
    if not math.isfinite(values[0]):
        raise FloatingPointError(
            f"training loss is {values[0]} at epoch {epoch}; lower train.lr_start"
        )
    optimizer = state.optimizer
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    lr = optimizer.param_groups[0]["lr"]
    state.scheduler.step()
    return values, lr


def _validate(run: _Run, state: _State, epoch: int, sums: dict, lr: float, t0: float, val_set):
    """Validate the epoch's model on the fixed set (rank 0), keep it if it is the best so
    far, and append the epoch's history row (returned); t0: when the epoch began."""
    settings = run.settings
    n = settings.steps_per_epoch
    val_x, val_targets = val_set
    val_loss, val_heads, val_acc = evaluate(
        state.model, val_x, val_targets, settings.eval_batch_size, run.dev
    )
    is_best = val_loss < state.best["val_loss"]
    if is_best:
        state.best = {"epoch": epoch, "val_loss": val_loss, "model": _state_copy(state.model)}
    row = {"epoch": epoch, "train_loss": sums["loss"] / n, "val_loss": val_loss}
    row.update({f"train_loss_{h}": sums[h] / n for h in run.parts})
    row.update({f"val_loss_{h}": val_heads[h] for h in run.parts})
    row.update(
        train_accuracy=sums["accuracy"] / n,
        val_accuracy=val_acc,
        lr=lr,
        seconds=time.perf_counter() - t0,
        best=is_best,
    )
    state.history.append(row)
    return row


def _save_checkpoint(run: _Run, state: _State, epoch: int, rng: np.random.Generator) -> None:
    """Write the checkpoint of the run after ``epoch`` atomically (rank 0)."""
    _save(
        {
            "format": CHECKPOINT_FORMAT,
            "version": FORMAT_VERSION,
            "meta": run.meta,
            "epoch": epoch,
            "model": _state_copy(state.model),
            "optimizer": state.optimizer.state_dict(),
            "scheduler": state.scheduler.state_dict(),
            "best": state.best,
            "history": pd.DataFrame(state.history).to_dict("list"),
            "numpy_rng": json.dumps(rng.bit_generator.state),
            "torch_rng": torch.get_rng_state(),
            "world_size": run.world,
        },
        run.path,
    )


def _log_epoch(run: _Run, state: _State, row: Mapping) -> None:
    """One log line of the epoch's history row (rank 0)."""
    best = state.best
    log.info(
        "epoch %d/%d: train loss %.4f, val loss %.4f%s, class accuracy %.3f/%.3f, lr %.2e, %.1f s",
        row["epoch"],
        run.settings.epochs,
        row["train_loss"],
        row["val_loss"],
        " (best)" if row["best"] else f" (best {best['val_loss']:.4f} at {best['epoch']})",
        row["train_accuracy"],
        row["val_accuracy"],
        row["lr"],
        row["seconds"],
    )


def _result(run: _Run, state: _State, ran: bool) -> TrainResult:
    """The best model (eval mode) with the history; ran: this call trained an epoch."""
    best, history = state.best, state.history
    if run.rank > 0 and ran:  # rank 0 alone validated: its checkpoint knows
        checkpoint = _load(run.path, run.dev)
        best = checkpoint["best"]
        history = pd.DataFrame(checkpoint["history"]).to_dict("records")
    model = state.model
    model.load_state_dict(best["model"])
    model.eval()
    hist = _history_frame(history)
    out_meta = {**run.meta, "best_epoch": best["epoch"], "best_val_loss": best["val_loss"]}
    return TrainResult(model, hist, best["epoch"], best["val_loss"], out_meta)
