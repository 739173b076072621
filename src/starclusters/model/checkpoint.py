"""Saving, loading, exporting and checking the CNN's models and training checkpoints.

Two kinds of file, both written atomically and holding only plain Python values and tensors
(``torch.load(weights_only=True)`` reads them):

- the training checkpoint (:data:`CHECKPOINT_FORMAT`), written after every epoch by
  :func:`starclusters.model.train.train`: weights, optimiser and scheduler state, the best
  weights so far, the history, and the random states;
- the model file (:data:`MODEL_FORMAT`, ``model.pt``), written by :func:`export_model`: the
  best weights of a checkpoint with its meta and history, without the optimiser state.

``meta`` in both records spec, grids (:meth:`ParameterGrids.to_dict`), bands, window, pixel
scale, settings, seed and a fingerprint of the data; :func:`load_model` returns the best
model with it and :func:`check_checkpoint` compares it with a config. Detection and the
evaluation read models through this module and :mod:`starclusters.model.codec`, never
through the trainer.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from starclusters.errors import ConfigError, InputFileError
from starclusters.io import atomic_path
from starclusters.model.codec import GRID_NAMES, ParameterGrids
from starclusters.model.network import ClusterNetwork, NetworkSpec

CHECKPOINT_FORMAT = "starclusters.model.checkpoint"
MODEL_FORMAT = "starclusters.model"
FORMAT_VERSION = 1


def _device(device) -> torch.device:
    """The torch device named ``device``; ConfigError for CUDA where none is available."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r}: CUDA is not available here; use device='cpu'")
    return dev


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


def _asdict(obj) -> dict:
    """A dataclass as the plain JSON values of a checkpoint's ``meta`` (``weights_only``)."""
    return json.loads(json.dumps(dataclasses.asdict(obj)))


def _grids_of(meta: Mapping) -> ParameterGrids:
    return ParameterGrids.from_dict(meta["grids"])


def _history_frame(rows: list[dict] | Mapping) -> pd.DataFrame:
    frame = pd.DataFrame(rows)
    if frame.empty:
        return frame
    frame["epoch"] = frame["epoch"].astype(int)
    frame["best"] = frame["best"].astype(bool)
    return frame


# ----------------------------------------------------------------------------------- checks


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
