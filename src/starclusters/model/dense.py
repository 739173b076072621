"""The dense-ready network evaluated fully convolutionally: every window of an image at once.

Overlapping windows share almost all their computation. For a network with
``padding="valid"`` and ``input_norm="fixed"`` (:attr:`NetworkSpec.dense_ready`) the
per-window network is a function of the window's pixels only, applied the same way
wherever the window lies; its strided layers can then be evaluated at every offset at once
(the "à trous" trick, Long et al. 2015; Sermanet et al. 2014): a layer of stride s becomes
stride 1 and the layers after it read their inputs s× further apart (dilation), the
3×3 / stride-2 max pool becomes a stride-1 pool, and the global average pool over the last
f × f features becomes a mean of f² taps spaced by the total stride. The result at pixel
(i, j) is *exactly* (up to float rounding) the per-window network on the window whose
top-left pixel is (i, j) — see tests/test_dense.py — at a cost per pixel of about one
window's last-stage features instead of a whole window's forward pass.

Only the layers before ``fc`` are evaluated densely (:func:`dense_pooled`); the caller
picks the pixels it needs and runs :meth:`ClusterNetwork.fc_features` and
:meth:`ClusterNetwork.head_outputs` on them, the same code as the per-window ``forward``.
"""

from __future__ import annotations

import torch
from torch.nn import functional

from starclusters.model.network import ClusterNetwork
from starclusters.model.spec import valid_feature_px


def check_dense_ready(model: ClusterNetwork, what: str = "the model") -> None:
    """ValueError unless ``model`` can be evaluated densely (padding valid, input_norm fixed)."""
    spec = model.spec
    if not spec.dense_ready:
        raise ValueError(
            f"{what} has model.padding: {spec.padding} and model.input_norm: "
            f"{spec.input_norm}; the fast (dense) evaluation needs padding: valid and "
            "input_norm: fixed — train such a model or use detect.mode: exact"
        )


def total_stride(model: ClusterNetwork) -> int:
    """Pixels between neighbouring last-stage features of one window (2 per halving)."""
    return 2 ** len(model.spec.stage_blocks)


@torch.no_grad()
def dense_pooled(model: ClusterNetwork, x: torch.Tensor) -> torch.Tensor:
    """Pooled last-stage features of every complete window of x.

    model: a dense-ready ClusterNetwork in eval mode (BatchNorm uses its running
    statistics); x: (N, B, H, W) float32, *preprocessed* (``preprocess(images,
    model.band_scale())``), H, W ≥ S = window_px. Returns (N, C, H − S + 1, W − S + 1):
    at (i, j) the features the per-window network averages before ``fc`` for the window
    x[..., i:i + S, j:j + S] (its centre pixel is (i + S//2, j + S//2)).
    """
    check_dense_ready(model)
    if model.training:
        raise ValueError("dense evaluation needs the model in eval mode (BatchNorm statistics)")
    window = model.spec.window_px
    if x.ndim != 4 or x.shape[1] != model.spec.in_bands:
        raise ValueError(f"x must be (N, {model.spec.in_bands}, H, W), got {tuple(x.shape)}")
    out_h, out_w = x.shape[-2] - window + 1, x.shape[-1] - window + 1
    if out_h < 1 or out_w < 1:
        raise ValueError(f"x is {tuple(x.shape[-2:])} px, smaller than the {window}-px window")
    h = model.relu(model.bn1(model.conv1(x)))
    h = functional.max_pool2d(h, 3, stride=1)  # the stride-2 pool at every offset
    dilation = 2
    for stage in model.stages:
        for block in stage:
            h = block(h, dilation=dilation)
            dilation *= block.stride
    # the per-window global average over f × f features, `dilation` px apart
    side = valid_feature_px(window, model.spec.stage_blocks)[-1]
    pooled = None
    for dy in range(side):
        for dx in range(side):
            tap = h[
                ..., dy * dilation : dy * dilation + out_h, dx * dilation : dx * dilation + out_w
            ]
            pooled = tap.clone() if pooled is None else pooled.add_(tap)
    return pooled.mul_(1.0 / side**2)
