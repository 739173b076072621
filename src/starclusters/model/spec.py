"""The cluster CNN's definition without torch: its size (:class:`NetworkSpec`) and grids.

The one definition of the network's defaults (the thesis network), its output grids'
defaults (:data:`DEFAULT_GRIDS`), what makes it dense-ready (:data:`DENSE_READY`) and its
size counted without torch (:func:`network_weights`, :func:`n_head_outputs`).
:mod:`starclusters.model.network` builds the torch network from a :class:`NetworkSpec`,
:mod:`starclusters.model.codec` the grids' centres from :data:`DEFAULT_GRIDS`; the config
check and the workflow's job sizes (:mod:`starclusters.detect.tiles`) read this module
while the workflow parses its config, so it imports neither torch nor torchvision.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from starclusters.errors import ConfigError
from starclusters.sections import dataclass_from_config, is_integer

CONFIG_KEY = "model"
HEADS = ("softmax", "regression")
#: Bottleneck widths of conv2_x … conv5_x in the thesis tables (Figs. 2.4 and 3.6).
THESIS_STAGE_WIDTHS = (64, 64, 128, 256)
#: "same": zero padding, as the thesis (and torchvision); "valid": none (dense-ready).
PADDINGS = ("same", "valid")
#: "window": per-window, per-band standardisation (thesis §3.1.4); "fixed": fixed per-band
#: scales from the training backgrounds (dense-ready; see
#: :func:`starclusters.model.codec.preprocess`).
INPUT_NORMS = ("window", "fixed")
#: Kernel of the stem convolution, px.
STEM_KERNEL_PX = 7


def _positive_int(value) -> bool:
    return is_integer(value, 1)


#: The grids, in the order of :class:`~starclusters.model.codec.ParameterGrids`' fields; the
#: first three span the 3-D head.
GRID_NAMES = ("log_age_yr", "av_mag", "log_mass_msun", "log_rh_arcsec", "visibility")
#: Default grids (thesis §3.2.1 and Table 4.1, M83): first centre, last centre, number of bins.
DEFAULT_GRIDS = {
    "log_age_yr": {"min": 6.6, "max": 10.1, "bins": 20},
    "av_mag": {"min": 0.0, "max": 3.0, "bins": 10},
    "log_mass_msun": {"min": 3.5, "max": 5.5, "bins": 14},
    "log_rh_arcsec": {"min": float(np.log10(0.04)), "max": float(np.log10(0.4)), "bins": 14},
    "visibility": {"min": 0.1, "max": 1000.0, "bins": 20},
}
#: Output channels of a bottleneck over its width (torchvision's ``Bottleneck.expansion``;
#: :mod:`starclusters.model.network` refuses a torchvision with another).
BOTTLENECK_EXPANSION = 4
#: model.<key>: the values that make the network dense-ready (:attr:`NetworkSpec.dense_ready`):
#: no padding and window-independent input scaling, so that a fully convolutional pass over a
#: whole image equals the per-window network (the fast detection mode).
DENSE_READY = {"padding": "valid", "input_norm": "fixed"}


@dataclass(frozen=True)
class NetworkSpec:
    """Size and heads of the cluster CNN; the defaults are the thesis network (ch. 3).

    in_bands: B, input channels (passbands, blue to red); window_px: S, the input is S × S
    pixels; stage_blocks: bottlenecks per stage (conv2_x, conv3_x, …; ResNet-50: 3, 4, 6, 3);
    stage_channels: output channels per stage (each divisible by 4, torchvision's expansion);
    stage_widths: bottleneck (3×3 conv) width per stage, None for stage_channels / 4;
    stem_channels: output channels of the 7×7 stride-1 conv1; fc_width: the fully connected
    layer before the heads; fc_dropout: dropout probability after it (thesis ch. 2 trained with
    0.5; ch. 3 does not mention dropout); n_age, n_av, n_mass: the 3-D softmax grid; n_rh,
    n_visibility: 1-D softmax bins; head: "softmax" (ch. 3) or "regression" (ch. 2: linear age,
    mass and r_h outputs); padding: "same" (thesis) or "valid" (no padding anywhere);
    input_norm: "window" (thesis) or "fixed". padding "valid" with input_norm "fixed" makes
    the network dense-ready (:attr:`dense_ready`; :mod:`starclusters.model.network`).

    Invalid values raise ConfigError naming ``model.<key>``.
    """

    in_bands: int = 3
    window_px: int = 64
    stage_blocks: tuple[int, ...] = (3, 4, 6, 3)
    stage_channels: tuple[int, ...] = (128, 256, 512, 1024)
    stage_widths: tuple[int, ...] | None = None
    stem_channels: int = 64
    fc_width: int = 1024
    fc_dropout: float = 0.0
    n_age: int = DEFAULT_GRIDS["log_age_yr"]["bins"]
    n_av: int = DEFAULT_GRIDS["av_mag"]["bins"]
    n_mass: int = DEFAULT_GRIDS["log_mass_msun"]["bins"]
    n_rh: int = DEFAULT_GRIDS["log_rh_arcsec"]["bins"]
    n_visibility: int = DEFAULT_GRIDS["visibility"]["bins"]
    head: str = "softmax"
    padding: str = "same"
    input_norm: str = "window"

    def __post_init__(self):
        for key in ("stage_blocks", "stage_channels", "stage_widths"):
            value = getattr(self, key)
            if isinstance(value, list):
                object.__setattr__(self, key, tuple(value))
        self._check()

    @classmethod
    def thesis(cls, **overrides) -> NetworkSpec:
        """The network of thesis Fig. 3.6 exactly (bottleneck widths 64/64/128/256)."""
        return cls(**{"stage_widths": THESIS_STAGE_WIDTHS, **overrides})

    @classmethod
    def from_config(cls, section: Mapping | None = None, **overrides) -> NetworkSpec:
        """A spec from the ``model`` config mapping (keys = field names), then ``overrides``.

        ConfigError naming ``model.<key>`` for an unknown key or an invalid value.
        """
        return dataclass_from_config(cls, section, CONFIG_KEY, **overrides)

    def _check(self) -> None:
        def bad(key, why):
            raise ConfigError(f"{CONFIG_KEY}.{key}: {why}, got {getattr(self, key)!r}")

        counts = ("in_bands", "window_px", "stem_channels", "fc_width")
        for key in counts + ("n_age", "n_av", "n_mass", "n_rh", "n_visibility"):
            if not _positive_int(getattr(self, key)):
                bad(key, "must be a positive integer")
        if self.head not in HEADS:
            bad("head", f"must be one of {', '.join(HEADS)}")
        if self.padding not in PADDINGS:
            bad("padding", f"must be one of {', '.join(PADDINGS)}")
        if self.input_norm not in INPUT_NORMS:
            bad("input_norm", f"must be one of {', '.join(INPUT_NORMS)}")
        if not isinstance(self.fc_dropout, int | float) or not 0 <= self.fc_dropout < 1:
            bad("fc_dropout", "must be a probability in [0, 1)")
        n = len(self.stage_blocks) if isinstance(self.stage_blocks, tuple) else 0
        if n == 0 or not all(_positive_int(v) for v in self.stage_blocks):
            bad(
                "stage_blocks",
                "must be a non-empty list of positive block counts, e.g. [3, 4, 6, 3]",
            )
        for key in ("stage_channels", "stage_widths"):
            value = getattr(self, key)
            if value is None and key == "stage_widths":
                continue
            if not isinstance(value, tuple) or len(value) != n:
                bad(key, f"must be a list with one entry per stage (stage_blocks has {n})")
            if not all(_positive_int(v) for v in value):
                bad(key, "must be positive integers")
        if any(c % BOTTLENECK_EXPANSION for c in self.stage_channels):
            bad("stage_channels", f"each must be divisible by {BOTTLENECK_EXPANSION}")
        for channels, width in zip(self.stage_channels, self.widths, strict=True):
            planes = channels // BOTTLENECK_EXPANSION
            if (64 * width) % planes:
                bad(
                    "stage_widths",
                    f"width {width} with {channels} output channels is not representable by "
                    f"torchvision's Bottleneck (64 × width must be divisible by {planes}); "
                    "use a multiple of output channels / 256 or leave stage_widths unset",
                )
        smallest = 2**n
        if self.window_px < smallest:
            bad("window_px", f"must be at least {smallest} px for {n} stages (each halves it)")
        if self.padding == "valid":
            sizes = valid_feature_px(self.window_px, self.stage_blocks)
            if min(sizes) < 1:
                stage = next(i for i, s in enumerate(sizes) if s < 1)
                where = "the stem" if stage == 0 else f"stage conv{stage + 1}_x"
                bad(
                    "window_px",
                    f"with padding: valid a {self.window_px}-px window leaves no pixel after "
                    f"{where} (sizes {list(sizes)}); use a larger window or fewer stages/blocks",
                )

    @property
    def dense_ready(self) -> bool:
        """True if a fully convolutional evaluation equals the per-window network exactly."""
        return all(getattr(self, key) == value for key, value in DENSE_READY.items())

    @property
    def widths(self) -> tuple[int, ...]:
        """Bottleneck widths per stage (stage_widths, or stage_channels / 4)."""
        if self.stage_widths is not None:
            return self.stage_widths
        return tuple(c // BOTTLENECK_EXPANSION for c in self.stage_channels)

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """(n_age, n_av, n_mass): the shape of the joint softmax grid."""
        return (self.n_age, self.n_av, self.n_mass)


def valid_feature_px(window_px: int, stage_blocks) -> tuple[int, ...]:
    """Feature-map side, px, of the padding="valid" network for an S-px window.

    Returns (after the stem and max pool, after conv2_x, conv3_x, …): a 7×7 conv takes 6
    px, the 3×3 / stride-2 max pool halves, each bottleneck's 3×3 conv takes 2 px (after
    halving in the first block of every stage but the first). Values < 1: the window is
    too small.
    """
    side = (window_px - (STEM_KERNEL_PX - 1) - 3) // 2 + 1
    sizes = [side]
    for i, blocks in enumerate(stage_blocks):
        for b in range(blocks):
            stride = 2 if (i > 0 and b == 0) else 1
            side = (side - 3) // stride + 1 if side >= 3 else 0
        sizes.append(side)
    return tuple(sizes)


def spec_defaults() -> dict:
    """{field: default} of :class:`NetworkSpec`: the values of a ``model`` section's absent keys."""
    return {f.name: f.default for f in dataclasses.fields(NetworkSpec)}


def n_head_outputs(grids: Mapping | None = None) -> int:
    """A·E·M + R + 2 + V: outputs of the softmax heads for a ``model.grids`` config section."""
    bins = {k: v["bins"] for k, v in DEFAULT_GRIDS.items()}
    bins.update({k: v["bins"] for k, v in (grids or {}).items() if "bins" in v})
    grid_3d = bins["log_age_yr"] * bins["av_mag"] * bins["log_mass_msun"]
    return grid_3d + bins["log_rh_arcsec"] + 2 + bins["visibility"]


def network_weights(
    n_bands: int,
    n_outputs: int,
    *,
    stage_blocks: Sequence[int],
    stage_channels: Sequence[int],
    stage_widths: Sequence[int] | None,
    stem_channels: int,
    fc_width: int,
) -> int:
    """Floats in the softmax ClusterNetwork's weights and BatchNorm buffers.

    The architecture of :mod:`starclusters.model.network` counted without torch: 7×7 conv1,
    torchvision Bottlenecks (1×1, 3×3, 1×1, strided 1×1 shortcut where the shape changes),
    fc, linear heads with ``n_outputs`` outputs in all. BatchNorm: 4 floats per channel.
    """
    widths = stage_widths or [c // BOTTLENECK_EXPANSION for c in stage_channels]
    total = n_bands * stem_channels * STEM_KERNEL_PX**2 + 4 * stem_channels
    inplanes = stem_channels
    for i, (blocks, channels, width) in enumerate(
        zip(stage_blocks, stage_channels, widths, strict=True)
    ):
        for b in range(blocks):
            cin = inplanes if b == 0 else channels
            total += cin * width + 9 * width * width + width * channels + 8 * width + 4 * channels
            if b == 0 and (i > 0 or inplanes != channels):
                total += cin * channels + 4 * channels
        inplanes = channels
    return total + inplanes * fc_width + fc_width + fc_width * n_outputs + n_outputs
