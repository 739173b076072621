"""The cluster CNN: a ResNet-50 variant with four softmax heads (thesis §3.2.1, Figs. 3.5–3.6).

Built from torchvision's ``Bottleneck`` block, stacked per stage as torchvision's
``ResNet._make_layer`` does. With the default ``NetworkSpec`` (thesis size) and an input of
(N, 3, 64, 64):

========  ==========================================  ==================
layer     operation                                   output (C, H, W)
========  ==========================================  ==================
conv1     7×7 conv, **stride 1**, BN, ReLU             (64, 64, 64)
max_pool  3×3 max pool, stride 2                       (64, 32, 32)
conv2_x   3 bottlenecks, stride 1                      (128, 32, 32)
conv3_x   4 bottlenecks, first one stride 2            (256, 16, 16)
conv4_x   6 bottlenecks, first one stride 2            (512, 8, 8)
conv5_x   3 bottlenecks, first one stride 2            (1024, 4, 4)
avg_pool  global average pool                          (1024,)
fc1024    fully connected, ReLU (optional dropout)     (1024,)
heads     age × A_V × mass (20·10·14 = 2800), r_h (14), class (2), visibility (20)
========  ==========================================  ==================

A bottleneck is 1×1 conv (C_in → width), 3×3 conv (width → width, carrying the stride), 1×1
conv (width → C_out = 4 × planes), each followed by BN, with ReLU after the first two and after
the residual sum; the shortcut is a strided 1×1 conv + BN where the shape changes. The widths
default to C_out / 4 (torchvision's expansion 4): 32/64/128/256. The thesis tables (Figs. 2.4,
3.6) list 64/64/128/256 — conv2_x keeps ResNet-50's width of 64 while its output is halved to
128; ``NetworkSpec.thesis()`` (``stage_widths=THESIS_STAGE_WIDTHS``) builds exactly that.

Differences from the thesis' Keras network that we keep on purpose: torchvision strides the 3×3
conv of a bottleneck (ResNet "v1.5") where Keras' ResNet50 strided the first 1×1 conv, and BN
uses PyTorch's defaults (momentum 0.1, eps 1e-5; Keras: 0.99, 1e-3).

Outputs (``head="softmax"``, thesis ch. 3) are logits; ``probabilities`` applies the softmax —
over the whole age × A_V × mass grid jointly (eq. 3.3 with K = 2800), per head otherwise. The
ch. 2 (M31/PHAT) variant ``head="regression"`` has one linear output each for age, mass and
r_h, in the units of the training targets (e.g. log10 yr, log10 Msun, log10 arcsec), and is
meant to be used with ``rotation_average`` (Dieleman et al. 2015).

Any window size works (the pool before fc1024 is adaptive); ``window_px`` is checked against
the input so that a model is not silently applied to cutouts of another size.

Dense-ready variant (``padding="valid"``, ``input_norm="fixed"``; the fast detection mode).
Every convolution and the max pool run without padding (a 3×3 conv shrinks its input by 2
px, the 7×7 stem by 6; a bottleneck's shortcut takes the input pixels under the centres of
its 3×3 conv), and the input is scaled per band by fixed numbers learnt from the training
backgrounds instead of per window. The network's output for a window then depends on that
window's pixels only, in the same way wherever the window lies, so a fully convolutional
evaluation over a whole image (:mod:`starclusters.model.dense`) gives at every pixel exactly
what the per-window network gives for the window there. The window must be large enough
for the stages to leave at least 1 × 1 features
(:func:`~starclusters.model.spec.valid_feature_px`); e.g. 64 px
with 4 stages of 1 block, or 3 stages of 2.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping

import torch
from torch import nn
from torchvision.models.resnet import Bottleneck, conv1x1

from starclusters.model.spec import (  # noqa: F401 (valid_feature_px: network.valid_feature_px)
    BOTTLENECK_EXPANSION,
    STEM_KERNEL_PX,
    NetworkSpec,
    valid_feature_px,
)

#: Output keys of the softmax network, in head order.
SOFTMAX_KEYS = ("age_av_mass", "rh", "class", "visibility")
#: Output keys of the regression network.
REGRESSION_KEYS = ("age", "mass", "rh")

if Bottleneck.expansion != BOTTLENECK_EXPANSION:  # NetworkSpec counts channels with it
    raise ImportError(
        f"torchvision's Bottleneck.expansion is {Bottleneck.expansion}, "
        f"starclusters.model.spec assumes {BOTTLENECK_EXPANSION}"
    )


class ValidBottleneck(nn.Module):
    """torchvision's ``Bottleneck`` without padding (the dense-ready network).

    Same layers and parameter names (conv1/bn1, conv2/bn2 carrying the stride, conv3/bn3,
    downsample); the 3×3 conv is unpadded, so (N, C, H, W) → (N, C_out, (H − 3)//s + 1, …),
    and the shortcut takes the input under the 3×3 conv's centres: x[..., 1::s, 1::s].
    ``dilation`` > 1 is the fully convolutional form (:mod:`starclusters.model.dense`).
    """

    expansion = Bottleneck.expansion

    def __init__(self, inplanes, planes, stride=1, downsample=None, base_width=64):
        super().__init__()
        width = int(planes * (base_width / 64.0))
        self.conv1 = conv1x1(inplanes, width)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, padding=0, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = conv1x1(width, planes * self.expansion)
        self.bn3 = nn.BatchNorm2d(planes * self.expansion)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample
        self.stride = stride

    def forward(self, x: torch.Tensor, dilation: int = 1) -> torch.Tensor:
        """Per window (dilation 1), or dense with the 3×3 taps ``dilation`` px apart (stride 1)."""
        out = self.relu(self.bn1(self.conv1(x)))
        if dilation == 1:
            out = self.conv2(out)
            shortcut = x[..., 1:, 1:]
        else:  # dense: every stride offset at once, the taps spread by the earlier strides
            out = nn.functional.conv2d(out, self.conv2.weight, dilation=dilation)
            shortcut = x[..., dilation:, dilation:]
        out = self.bn3(self.conv3(self.relu(self.bn2(out))))
        if self.downsample is not None:
            if dilation == 1:
                shortcut = self.downsample(shortcut)
            else:
                conv, norm = self.downsample
                shortcut = norm(nn.functional.conv2d(shortcut, conv.weight))
        elif dilation == 1 and self.stride != 1:
            shortcut = shortcut[..., :: self.stride, :: self.stride]
        h, w = out.shape[-2:]
        return self.relu(out + shortcut[..., :h, :w])


def _make_stage(
    inplanes: int, channels: int, width: int, blocks: int, stride: int, padding: str = "same"
):
    """``blocks`` Bottlenecks inplanes → channels, the first one strided (``_make_layer``).

    padding "valid": :class:`ValidBottleneck` instead of torchvision's.
    """
    planes = channels // Bottleneck.expansion
    # torchvision: width = int(planes * base_width / 64) * groups; 64 × width / planes is an
    # integer (checked by NetworkSpec), so base_width / 64 is exact in binary and so is width.
    base_width = 64 * width // planes
    block = ValidBottleneck if padding == "valid" else Bottleneck
    downsample = None
    if stride != 1 or inplanes != channels:
        downsample = nn.Sequential(conv1x1(inplanes, channels, stride), nn.BatchNorm2d(channels))
    layers = [block(inplanes, planes, stride, downsample, base_width=base_width)]
    layers += [block(channels, planes, base_width=base_width) for _ in range(1, blocks)]
    return nn.Sequential(*layers)


class ClusterNetwork(nn.Module):
    """The cluster CNN for input (N, B, S, S) float (normalised, arcsinh-scaled cutouts).

    ``forward`` returns a dict of tensors. head="softmax": logits ``age_av_mass`` (N, n_age,
    n_av, n_mass), ``rh`` (N, n_rh), ``class`` (N, 2; index 1 = cluster), ``visibility``
    (N, n_visibility). head="regression": ``age``, ``mass``, ``rh``, each (N,).
    ``features`` returns the fc layer's activations (N, fc_width) that all heads read.
    """

    def __init__(self, spec: NetworkSpec | None = None):
        super().__init__()
        self.spec = spec = spec if spec is not None else NetworkSpec()
        same = spec.padding == "same"
        # conv1 without stride: clusters are only a few pixels across (thesis §2.3.1, Fig. 3.6)
        self.conv1 = nn.Conv2d(
            spec.in_bands,
            spec.stem_channels,
            STEM_KERNEL_PX,
            1,
            padding=STEM_KERNEL_PX // 2 if same else 0,
            bias=False,
        )
        self.bn1 = nn.BatchNorm2d(spec.stem_channels)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1 if same else 0)
        if spec.input_norm == "fixed":
            # (B,) counts/s per unit of the arcsinh's argument, set from the training
            # backgrounds before training (set_input_scale) and saved with the weights
            self.register_buffer("input_scale", torch.ones(spec.in_bands))
        stages = OrderedDict()
        inplanes = spec.stem_channels
        for i, (blocks, channels, width) in enumerate(
            zip(spec.stage_blocks, spec.stage_channels, spec.widths, strict=True)
        ):
            stride = 1 if i == 0 else 2
            stages[f"conv{i + 2}_x"] = _make_stage(
                inplanes, channels, width, blocks, stride, spec.padding
            )
            inplanes = channels
        self.stages = nn.Sequential(stages)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(inplanes, spec.fc_width)
        self.dropout = nn.Dropout(spec.fc_dropout)
        if spec.head == "softmax":
            sizes = {
                "age_av_mass": spec.n_age * spec.n_av * spec.n_mass,
                "rh": spec.n_rh,
                "class": 2,
                "visibility": spec.n_visibility,
            }
        else:
            sizes = dict.fromkeys(REGRESSION_KEYS, 1)
        self.heads = nn.ModuleDict({k: nn.Linear(spec.fc_width, n) for k, n in sizes.items()})
        # torchvision's ResNet initialisation
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def _check_input(self, x: torch.Tensor) -> None:
        spec = self.spec
        expected = (spec.in_bands, spec.window_px, spec.window_px)
        if x.ndim != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"the network takes (N, {expected[0]}, {expected[1]}, {expected[2]}) "
                f"(N, bands, window_px, window_px) cutouts, got {tuple(x.shape)}; cut windows "
                "of model.window_px in the model's band order"
            )

    def band_scale(self) -> torch.Tensor | None:
        """(B,) fixed input scales, counts/s (input_norm "fixed"), or None (per window)."""
        return self.input_scale if self.spec.input_norm == "fixed" else None

    def set_input_scale(self, scale_counts_s) -> None:
        """Set the (B,) fixed input scales, counts/s (input_norm "fixed" only; all > 0)."""
        if self.spec.input_norm != "fixed":
            raise ValueError("set_input_scale needs a network with input_norm 'fixed'")
        scale = torch.as_tensor(scale_counts_s, dtype=torch.float32).reshape(-1)
        if scale.shape != self.input_scale.shape or not bool(torch.all(scale > 0)):
            raise ValueError(
                f"input scale must be {tuple(self.input_scale.shape)} positive values, got "
                f"{scale.tolist()}"
            )
        self.input_scale.copy_(scale)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(N, B, S, S) → (N, fc_width) activations of fc1024 after ReLU (and dropout)."""
        self._check_input(x)
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        return self.fc_features(self.avgpool(self.stages(x)).flatten(1))

    def fc_features(self, pooled: torch.Tensor) -> torch.Tensor:
        """(N, C) pooled last-stage features → (N, fc_width) fc activations (ReLU, dropout)."""
        return self.dropout(self.relu(self.fc(pooled)))

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return self.head_outputs(self.features(x))

    def head_outputs(self, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """(N, fc_width) fc activations → the dict of ``forward`` (one code for every mode)."""
        if self.spec.head == "regression":
            return {key: head(h)[:, 0] for key, head in self.heads.items()}
        out = {key: head(h) for key, head in self.heads.items()}
        out["age_av_mass"] = out["age_av_mass"].reshape(-1, *self.spec.grid_shape)
        return out


def build_network(config_section: Mapping | None = None, **overrides) -> ClusterNetwork:
    """A freshly initialised ClusterNetwork from the ``model`` config mapping (see NetworkSpec)."""
    return ClusterNetwork(NetworkSpec.from_config(config_section, **overrides))


def probabilities(outputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Softmax of the softmax network's logits: same keys and shapes as ``outputs``.

    ``age_av_mass`` (N, A, E, M) is normalised over the whole grid jointly (sums to 1 per
    sample over A·E·M cells); ``rh``, ``class``, ``visibility`` each over their last axis.
    """
    if "age_av_mass" not in outputs:
        raise ValueError(
            "probabilities() needs the softmax network's outputs (keys "
            f"{', '.join(SOFTMAX_KEYS)}); got {', '.join(outputs)} — regression outputs are "
            "values, not logits"
        )
    grid = outputs["age_av_mass"]
    probs = {"age_av_mass": torch.softmax(grid.flatten(1), dim=1).reshape(grid.shape)}
    for key in SOFTMAX_KEYS[1:]:
        probs[key] = torch.softmax(outputs[key], dim=-1)
    return probs


def rotation_average(model: nn.Module, x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The model's outputs averaged over the input rotated by 0, 90, 180 and 270 degrees.

    x: (N, B, S, S). Returns the same dict as ``model(x)``. The four rotations go through the
    network as one batch of 4N (so BatchNorm in training mode sees all of them). Every head is
    linear in the fc activations, so averaging the outputs equals averaging those activations
    before the output layer, as thesis §2.3.1 does after Dieleman et al. (2015). For the
    softmax network the logits are averaged; apply ``probabilities`` afterwards. The result
    is invariant to rotating x by multiples of 90° up to float rounding.
    """
    n = x.shape[0]
    rotated = torch.cat([torch.rot90(x, k, dims=(-2, -1)) for k in range(4)])
    if x.is_contiguous(memory_format=torch.channels_last):
        rotated = rotated.contiguous(memory_format=torch.channels_last)
    outputs = model(rotated)
    return {key: value.reshape(4, n, *value.shape[1:]).mean(0) for key, value in outputs.items()}


def count_parameters(model: nn.Module, trainable_only: bool = True) -> int:
    """Number of (trainable, by default) parameters of ``model``."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)
