"""Settings of the training stage (the ``train`` config section), without torch.

:class:`TrainSettings` (how to train) and :func:`batch_share` (how the global batch splits
over the GPUs: the one rule, which the config check, ``starclusters train``, the training
stage and :func:`starclusters.model.train.train` all apply) live here, below torch, so that
:func:`starclusters.config.check_config` checks the ``train`` section while the workflow
parses its config.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from starclusters.errors import ConfigError
from starclusters.sections import dataclass_from_config, is_integer, is_number

CONFIG_KEY = "train"
#: Keys of the ``train`` section that are not :class:`TrainSettings` fields: where and on
#: how many processes to train, and the mocks' split (:mod:`starclusters.model.data`).
RUN_KEYS = ("device", "gpus", "mock_split_fractions")
#: Defaults of the run keys code reads from a section built without the schema
#: (tests/test_settings.py keeps them the schema's).
RUN_DEFAULTS = {"device": "cpu", "gpus": 1}
#: Values of train.precision (:class:`TrainSettings`).
PRECISIONS = ("auto", "bf16", "fp32")


@dataclass(frozen=True)
class TrainSettings:
    """How to train (the ``train`` config section; keys = field names).

    epochs, steps_per_epoch: the run is epochs × steps_per_epoch optimiser steps;
    batch_size: images per step (half bare backgrounds; thesis 512); lr_start, lr_end:
    learning rate of the first and the last step (exponential decay in between; thesis
    0.01 → 1e-4); val_size: images in the fixed validation set (half backgrounds);
    eval_batch_size: images per forward pass when validating; augment: random 90°
    rotations and flips; jitter_px: centring jitter of the mocks, px; calibration_jitter:
    σ of the per-band background flux factor (0 = off; thesis §3.3.1: 0.2);
    star_group_fraction: share of each batch's background half that carries a star group
    (hard negatives, :mod:`starclusters.mocks.star_groups`; 0 = none); seed_offset: picks
    another independent training of the same data (weight initialisation, validation set,
    batch draws, dropout) — 0 keeps the config seed's own streams; two trainings that
    differ only in it measure the spread of training alone; precision: "bf16" runs the
    training steps under bf16 autocast (weights, optimiser and loss in float32), "fp32"
    without, "auto" with bf16 on CUDA and on CPUs with native bf16 arithmetic
    (:func:`starclusters.model.train.uses_bf16`; the network's step 1.6–1.7× faster on
    an AVX512-BF16 CPU, docs/BENCHMARKS.md).

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
    star_group_fraction: float = 0.0
    seed_offset: int = 0
    precision: str = "auto"

    def __post_init__(self):
        def bad(key, why):
            raise ConfigError(f"{CONFIG_KEY}.{key}: {why}, got {getattr(self, key)!r}")

        for key in ("epochs", "steps_per_epoch", "eval_batch_size"):
            value = getattr(self, key)
            if not is_integer(value, 1):
                bad(key, "must be a positive integer")
        for key in ("batch_size", "val_size"):
            value = getattr(self, key)
            if not is_integer(value, 2):
                bad(key, "must be an integer ≥ 2 (half backgrounds, half clusters)")
        for key in ("lr_start", "lr_end"):
            value = getattr(self, key)
            if not is_number(value) or not value > 0:
                bad(key, "must be a positive number")
        if not isinstance(self.augment, bool):
            bad("augment", "must be true or false")
        for key, unit in (("jitter_px", " (pixels)"), ("seed_offset", "")):
            value = getattr(self, key)
            if not is_integer(value, 0):
                bad(key, f"must be a non-negative integer{unit}")
        cj = self.calibration_jitter
        if not is_number(cj) or not 0 <= cj < 1:
            bad("calibration_jitter", "must be a number in [0, 1) (thesis: 0.2)")
        sg = self.star_group_fraction
        if not is_number(sg) or not 0 <= sg <= 1:
            bad("star_group_fraction", "must be a number in [0, 1]")
        if self.precision not in PRECISIONS:
            bad("precision", f"must be one of {', '.join(PRECISIONS)}")

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


def train_settings(section: Mapping | None) -> TrainSettings:
    """The :class:`TrainSettings` of a ``train`` config section (its :data:`RUN_KEYS` aside)."""
    return TrainSettings.from_config(
        {k: v for k, v in dict(section or {}).items() if k not in RUN_KEYS}
    )


def batch_share(batch_size: int, gpus: int) -> int:
    """Images each of ``gpus`` processes draws per step of a global batch of ``batch_size``.

    ConfigError naming ``train.batch_size`` unless the batch splits into ``gpus`` equal
    shares of at least 2 (each share is half bare backgrounds), with a batch size that does.
    """
    if batch_size % gpus or batch_size // gpus < 2:
        fit = max(2 * gpus, round(batch_size / gpus) * gpus)
        raise ConfigError(
            f"train.batch_size: {batch_size} images per step do not split into {gpus} equal "
            f"shares of at least 2 (one per GPU, train.gpus = {gpus}); make it a multiple of "
            f"{gpus}, e.g. {fit}, or change train.gpus"
        )
    return batch_size // gpus


def check_train_config(config: Mapping) -> None:
    """The ``train`` section's checks that the schema cannot express (ConfigError names the
    key): its :class:`TrainSettings` values, and with device cuda the batch split over
    train.gpus (:func:`batch_share`). Whether the GPUs exist is checked where they run
    (:func:`starclusters.model.train.check_gpus`)."""
    section = config.get("train") or {}
    settings = train_settings(section)
    if section.get("device") == "cuda":
        batch_share(settings.batch_size, section.get("gpus", RUN_DEFAULTS["gpus"]))
