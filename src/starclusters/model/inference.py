"""Apply a trained network to windows: THE inference path shared by evaluation and detection.

:func:`predict` takes raw windows (counts/s), applies :func:`~starclusters.model.codec.preprocess`
and the network in batches (bf16 autocast and channels_last on CUDA, as in training), turns
logits into probabilities with :func:`~starclusters.model.network.probabilities` and decodes
them with :func:`~starclusters.model.codec.decode_outputs` — the same three functions the
training and the detection stage use, so a window is read the same way everywhere.
"""

from __future__ import annotations

from contextlib import nullcontext

import numpy as np
import torch

from starclusters.model.codec import (
    REGRESSION_TARGETS,
    ParameterGrids,
    decode_outputs,
    preprocess,
)
from starclusters.model.network import ClusterNetwork, probabilities, rotation_average

#: Point estimates returned by :func:`predict`, in this order.
ESTIMATES = ("p_cluster", "visibility", "log_age_yr", "av_mag", "log_mass_msun", "log_rh_arcsec")


@torch.no_grad()
def predict(
    model: ClusterNetwork,
    images,
    grids: ParameterGrids,
    *,
    batch_size: int = 256,
    device=None,
    keep_grids: bool = False,
) -> dict[str, np.ndarray]:
    """Decoded network outputs for raw windows.

    model: a ClusterNetwork (eval mode is set here); images: (N, B, S, S)
    counts/s, numpy or torch (no NaNs: mask before); grids: the model's output grids;
    batch_size: windows per forward pass; device: where to run (default: the model's);
    keep_grids: also return the probability grids.

    Returns numpy arrays: p_cluster (N,) class probability of "cluster"; visibility (N,);
    log_age_yr, av_mag, log_mass_msun (N,) from the joint age × A_V × mass grid;
    log_rh_arcsec (N,); with keep_grids, "grid_<head>" float32 probabilities (N, A, E, M) for
    age_av_mass, (N, R) rh, (N, 2) class, (N, V) visibility.

    The regression network (thesis ch. 2) gives log_age_yr, log_mass_msun and
    log_rh_arcsec averaged over the 4 rotations of each window; its other estimates are
    NaN and it has no grids.
    """
    regression = model.spec.head == "regression"
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    model.eval()
    n = len(images)
    chunks: list[dict[str, np.ndarray]] = []
    amp = dev.type == "cuda"
    for start in range(0, n, batch_size):
        batch = images[start : start + batch_size]
        x = torch.as_tensor(np.asarray(batch) if not isinstance(batch, torch.Tensor) else batch)
        x = preprocess(x.to(dev, dtype=torch.float32), model.band_scale())
        if amp:
            x = x.contiguous(memory_format=torch.channels_last)
        ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
        with ctx:
            raw = rotation_average(model, x) if regression else model(x)
        chunks.append(estimates(raw, grids, keep_grids=keep_grids))
    if not chunks:
        raise ValueError("predict() got no windows")
    return {k: np.concatenate([c[k] for c in chunks]) for k in chunks[0]}


def estimates(
    raw: dict[str, torch.Tensor], grids: ParameterGrids, *, keep_grids: bool = False
) -> dict[str, np.ndarray]:
    """THE decoding of network outputs (the tail of :func:`predict`; also the fast detection).

    raw: the network's outputs for n windows (``forward`` / ``head_outputs``; regression
    outputs rotation-averaged); grids: the model's output grids. Returns numpy float64
    arrays (n,) keyed by :data:`ESTIMATES` (NaN where the regression network has none) and,
    with keep_grids (softmax network), the float32 probability grids "grid_<head>".
    """
    raw = {k: v.float().detach().cpu() for k, v in raw.items()}
    if "age_av_mass" not in raw:  # the regression network (thesis ch. 2)
        n = len(next(iter(raw.values())))
        out = {k: np.full(n, np.nan) for k in ESTIMATES}
        for key, name in REGRESSION_TARGETS.items():
            out[name] = raw[key].numpy().astype(np.float64)
        return out
    probs = probabilities(raw)
    decoded = decode_outputs(probs, grids)
    out = {k: decoded[k].numpy().astype(np.float64) for k in ESTIMATES}
    if keep_grids:
        for head, p in probs.items():
            out[f"grid_{head}"] = p.numpy().astype(np.float32)
    return out
