"""Output grids, preprocessing and decoding of the CNN (thesis §3.1.4, §3.2): its codec.

What turns images into network input and network output into estimates, shared by
training, evaluation and detection. The network predicts every parameter on a grid
(thesis §3.2.1): a joint 3-D softmax over (log age, A_V, log mass) with 20 × 10 × 14 bins,
1-D softmaxes over log r_h (14 bins) and visibility (20 log-spaced bins), and a 2-way
cluster/background class. This module holds, once each:

- :class:`ParameterGrids`: the bin centres (from config; they travel inside checkpoints);
- :func:`preprocess`: per window and band, mean 0 / standard deviation 1, then arcsinh;
- :func:`decode` and :func:`decode_outputs`: peak bin, then the probability-weighted mean
  within 3 bins of it;
- :data:`REGRESSION_TARGETS`: the outputs of the regression network (thesis ch. 2) and the
  parameters they estimate.

Heads are named ``"age_av_mass"``, ``"rh"``, ``"class"`` and ``"visibility"`` (:data:`HEADS`);
class index 0 is background, 1 is cluster. Everything works on torch tensors (any device,
float32 on GPUs); the functions that say so also take and return numpy arrays. The training
targets and losses on these grids are in :mod:`starclusters.model.targets`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from starclusters.errors import ConfigError
from starclusters.model.spec import DEFAULT_GRIDS, GRID_NAMES

#: The four output heads, in the order of thesis Fig. 3.5.
HEADS = ("age_av_mass", "rh", "class", "visibility")
#: Grids whose bins are evenly spaced in log10 of the value (centres stored as plain values).
LOG_SPACED = frozenset({"visibility"})
#: Half-width of the decoding window around the peak bin, bins (thesis §3.2.2: "3 bin radius").
DECODE_RADIUS_BINS = 3
#: Regression outputs (thesis ch. 2: one neuron each) and the table column each one predicts.
REGRESSION_TARGETS = {"age": "log_age_yr", "mass": "log_mass_msun", "rh": "log_rh_arcsec"}


def _frozen(values, name: str) -> np.ndarray:
    """Validated read-only float64 copy of a grid's centres (strictly increasing, ≥ 2, finite)."""
    arr = np.array(values, dtype=np.float64).ravel()
    if arr.size < 2 or not np.all(np.isfinite(arr)) or np.any(np.diff(arr) <= 0):
        raise ValueError(f"grid {name}: need ≥ 2 finite, strictly increasing centres, got {arr}")
    if name in LOG_SPACED and arr[0] <= 0:
        raise ValueError(f"grid {name} is log-spaced: centres must be > 0, got {arr[0]}")
    arr.setflags(write=False)
    return arr


@dataclass(frozen=True, eq=False)
class ParameterGrids:
    """Bin centres of the network's output grids — the only place they are defined.

    log_age_yr: (A,) log10(t / yr); av_mag: (E,) mag; log_mass_msun: (M,) log10(M / M☉);
    log_rh_arcsec: (R,) log10(r_h / arcsec); visibility: (V,) dimensionless, evenly spaced in
    log10. The defaults are the thesis' M83 grids (A, E, M, R, V = 20, 10, 14, 14, 20). The
    configured min and max are the first and last *centres*, so a true value at a range end
    sits on a bin centre. Visibility bin 0 is also the target for bare backgrounds
    (visibility 0, clipped to the lowest bin). Centres are read-only float64 arrays.
    """

    log_age_yr: np.ndarray = field(default_factory=lambda: _default("log_age_yr"))
    av_mag: np.ndarray = field(default_factory=lambda: _default("av_mag"))
    log_mass_msun: np.ndarray = field(default_factory=lambda: _default("log_mass_msun"))
    log_rh_arcsec: np.ndarray = field(default_factory=lambda: _default("log_rh_arcsec"))
    visibility: np.ndarray = field(default_factory=lambda: _default("visibility"))

    def __post_init__(self):
        for name in GRID_NAMES:
            object.__setattr__(self, name, _frozen(getattr(self, name), name))

    @property
    def shape_3d(self) -> tuple[int, int, int]:
        """(A, E, M): the shape of the joint age × A_V × mass grid."""
        return (self.log_age_yr.size, self.av_mag.size, self.log_mass_msun.size)

    @property
    def head_shapes(self) -> dict[str, tuple[int, ...]]:
        """Output shape of each head per image; a head's softmax runs over all its bins."""
        return {
            "age_av_mass": self.shape_3d,
            "rh": (self.log_rh_arcsec.size,),
            "class": (2,),
            "visibility": (self.visibility.size,),
        }

    @classmethod
    def from_config(cls, grids: Mapping | None) -> ParameterGrids:
        """Grids from the ``model.grids`` config section; missing grids get the defaults.

        Each entry is ``{min, max, bins}``: first and last bin centre (in the grid's own
        units: log10 for log_*, plain visibility for the log-spaced visibility) and the
        number of bins (≥ 2). Raises ConfigError naming ``model.grids.<key>``.
        """
        grids = {} if grids is None else grids
        if not isinstance(grids, Mapping):
            raise ConfigError(
                f"model.grids: expected a mapping of grids, got {type(grids).__name__}"
            )
        unknown = sorted(set(grids) - set(GRID_NAMES))
        if unknown:
            raise ConfigError(
                f"model.grids.{unknown[0]}: unknown grid; the grids are {', '.join(GRID_NAMES)}"
            )
        centres = {}
        for name in GRID_NAMES:
            spec = {**DEFAULT_GRIDS[name], **_entry(grids.get(name, {}), name)}
            centres[name] = _centres(spec, name)
        return cls(**centres)

    def to_dict(self) -> dict[str, list[float]]:
        """Plain ``{grid name: [centres]}`` (JSON- and ``torch.save(weights_only)``-safe)."""
        return {name: [float(v) for v in getattr(self, name)] for name in GRID_NAMES}

    @classmethod
    def from_dict(cls, data: Mapping) -> ParameterGrids:
        """Inverse of :meth:`to_dict` (e.g. from a checkpoint); ValueError names a missing grid."""
        missing = [name for name in GRID_NAMES if name not in data]
        if missing:
            raise ValueError(f"grid dict lacks {missing}; it must hold {list(GRID_NAMES)}")
        return cls(**{name: data[name] for name in GRID_NAMES})


def _default(name: str) -> np.ndarray:
    return _centres(DEFAULT_GRIDS[name], name)


def _entry(value, name: str) -> dict:
    """One ``model.grids.<name>`` entry, checked for keys and types."""
    key = f"model.grids.{name}"
    if not isinstance(value, Mapping):
        raise ConfigError(f"{key}: expected {{min, max, bins}}, got {value!r}")
    extra = sorted(set(value) - {"min", "max", "bins"})
    if extra:
        raise ConfigError(f"{key}.{extra[0]}: unknown key; give min, max (bin centres) and bins")
    for k in ("min", "max"):
        if k in value and (
            isinstance(value[k], bool)
            or not isinstance(value[k], int | float)
            or not np.isfinite(value[k])
        ):
            raise ConfigError(f"{key}.{k}: expected a finite number, got {value[k]!r}")
    if "bins" in value and (
        isinstance(value["bins"], bool) or not isinstance(value["bins"], int) or value["bins"] < 2
    ):
        raise ConfigError(f"{key}.bins: expected an integer ≥ 2, got {value['bins']!r}")
    return dict(value)


def _centres(spec: Mapping, name: str) -> np.ndarray:
    """Centres from a checked ``{min, max, bins}``; log-spaced grids are even in log10."""
    key = f"model.grids.{name}"
    lo, hi, n = float(spec["min"]), float(spec["max"]), int(spec["bins"])
    if hi <= lo:
        raise ConfigError(f"{key}: max ({hi}) must exceed min ({lo})")
    if name in LOG_SPACED:
        if lo <= 0:
            raise ConfigError(f"{key}.min: the grid is log-spaced, so min must be > 0, got {lo}")
        return np.logspace(np.log10(lo), np.log10(hi), n)
    return np.linspace(lo, hi, n)


# --------------------------------------------------------------------------- numpy/torch glue


def _as_tensor(x, dtype=None, device=None) -> tuple[torch.Tensor, bool]:
    """(tensor, was_numpy): numpy and lists become CPU tensors (no copy where possible)."""
    if isinstance(x, torch.Tensor):
        return x.to(dtype=dtype or x.dtype, device=device or x.device), False
    arr = np.asarray(x)
    t = torch.as_tensor(arr if arr.flags.writeable else arr.copy())
    return t.to(dtype=dtype or t.dtype, device=device or t.device), True


def _back(t: torch.Tensor, to_numpy: bool):
    return t.detach().cpu().numpy() if to_numpy else t


# ------------------------------------------------------------------------------- preprocessing


def preprocess(images, band_scale=None):
    """THE preprocessing of training and inference windows (thesis §3.1.4).

    images: (..., B, S, S) counts/s, numpy array or torch tensor. Without ``band_scale``
    (the thesis; model.input_norm "window"): per window and per band (over the last two
    axes) the pixels are normalised to mean 0 and standard deviation 1 (population std,
    ddof 0), then passed through arcsinh. With ``band_scale`` (B,) counts/s (input_norm
    "fixed", the dense-ready network): arcsinh(pixel / scale of its band) — the same for a
    pixel whichever window holds it, so that windows can share their computation (any
    image size works then, e.g. a whole tile). Returns the same type and shape; torch
    tensors keep device and dtype, numpy floats keep their dtype, integer input gives
    float32. A band that is constant in a window (std 0, or std at the float rounding level
    of its mean) gives zeros, not NaN. NaN pixels propagate: mask before calling.
    """
    x, was_numpy = _as_tensor(images)
    if x.ndim < 3:
        raise ValueError(f"images must be (..., B, S, S), got shape {tuple(x.shape)}")
    if not torch.is_floating_point(x):
        x = x.to(torch.float32)
    if band_scale is not None:
        scale = torch.as_tensor(band_scale, dtype=x.dtype, device=x.device)
        return _back(torch.asinh(x / scale.reshape(-1, 1, 1)), was_numpy)
    mean = x.mean(dim=(-2, -1), keepdim=True)
    std = x.std(dim=(-2, -1), keepdim=True, correction=0)
    # a constant window's std is its mean's rounding noise, not signal: call it flat
    flat = std <= 16 * torch.finfo(x.dtype).eps * mean.abs()
    z = torch.where(flat, torch.zeros_like(x), (x - mean) / torch.where(flat, 1.0, std))
    return _back(torch.asinh(z), was_numpy)


# ---------------------------------------------------------------------------------- decoding


@functools.cache
def _window_offsets(n_axes: int) -> np.ndarray:
    """(W, n) int64: the integer offsets within Euclidean distance DECODE_RADIUS_BINS."""
    r = DECODE_RADIUS_BINS
    grid = np.stack(np.meshgrid(*[np.arange(-r, r + 1)] * n_axes, indexing="ij"), -1)
    grid = grid.reshape(-1, n_axes)
    return grid[(grid**2).sum(axis=1) <= r * r].astype(np.int64)


def decode(probabilities, centres, log_spacing=False):
    """THE decoding of output grids into point estimates (thesis §3.2.2), numpy or torch, batched.

    "This was done by finding the bin with the highest value in the histogram, which
    represents the most likely set of parameters inferred by the network, and calculating a
    weighted average within a 3 bin radius." For a 1-D grid: the peak bin, then the
    probability-weighted mean of the bin centres with |k − peak| ≤ 3. For an n-D grid (the
    joint age × A_V × mass histogram) the peak is the *joint* peak — "the most likely set of
    parameters" — and the window the bins within Euclidean distance 3 (in bins) of it; each
    parameter is the weighted mean of its centres over that window. (Marginals would mix the
    modes of a degenerate young+dusty / old+clear output; the joint peak keeps one.)

    probabilities: (..., K) for ``centres`` an array (K,), or (..., K1, …, Kn) for
    ``centres`` a sequence of n arrays; need not be normalised. log_spacing: bool, or one
    per axis; such axes are averaged in log10 of the centres (visibility) and returned as
    plain values. Returns (...,) for a single grid, (..., n) for a sequence; numpy in →
    numpy out (float64), torch in → torch (its dtype, device). An all-zero window returns
    the peak's centre.
    """
    p, was_numpy = _as_tensor(probabilities)
    if not torch.is_floating_point(p):
        p = p.to(torch.float32)
    single = not isinstance(centres, Sequence) or (len(centres) > 0 and np.ndim(centres[0]) == 0)
    axes = [centres] if single else list(centres)
    logs = [log_spacing] * len(axes) if isinstance(log_spacing, bool) else list(log_spacing)
    n = len(axes)
    grid_shape = tuple(int(np.size(c)) for c in axes)
    if tuple(p.shape[p.ndim - n :]) != grid_shape:
        raise ValueError(
            f"probabilities {tuple(p.shape)} do not end in the grid shape {grid_shape}"
        )
    batch = p.shape[: p.ndim - n]
    flat = p.reshape(-1, int(np.prod(grid_shape)))
    peak = torch.stack(torch.unravel_index(flat.argmax(dim=1), grid_shape), dim=1)  # (N, n)
    # only the bins of the window around each peak are read: (N, W) of them, W ≤ 123 in 3-D
    offsets = torch.as_tensor(_window_offsets(n), device=p.device)  # (W, n)
    at = peak[:, None, :] + offsets[None]  # (N, W, n) grid index of every window bin
    shape = torch.as_tensor(grid_shape, device=p.device)
    inside = ((at >= 0) & (at < shape)).all(dim=2)
    at = torch.minimum(at.clamp(min=0), shape - 1)
    linear = torch.zeros_like(at[..., 0])
    for d in range(n):
        linear = linear * grid_shape[d] + at[..., d]
    w = torch.where(inside, flat.gather(1, linear), torch.zeros((), dtype=p.dtype, device=p.device))
    total = w.sum(dim=1)
    estimates = []
    for d, (c, is_log) in enumerate(zip(axes, logs, strict=True)):
        c = np.array(c, dtype=np.float64)
        c = torch.as_tensor(np.log10(c) if is_log else c, device=p.device, dtype=p.dtype)
        mean = (w * c[at[..., d]]).sum(dim=1) / torch.where(total > 0, total, 1.0)
        mean = torch.where(total > 0, mean, c[peak[:, d]])
        estimates.append(10.0**mean if is_log else mean)
    out = torch.stack(estimates, dim=-1).reshape(*batch, n)
    out = out[..., 0] if single else out
    return _back(out, was_numpy)


def decode_outputs(probs: Mapping, grids: ParameterGrids) -> dict:
    """Point estimates of every head via :func:`decode`, with the full grids kept.

    probs: {head: probabilities} as from :func:`starclusters.model.network.probabilities`
    (numpy or torch, leading
    batch axes (...) allowed). Returns log_age_yr, av_mag, log_mass_msun (from the joint
    3-D grid), log_rh_arcsec, visibility (each (...,)), p_cluster (...,) = class
    probability of index 1, and "grids": the probability arrays themselves, per head.
    """
    amm = decode(probs["age_av_mass"], [grids.log_age_yr, grids.av_mag, grids.log_mass_msun])
    return {
        "log_age_yr": amm[..., 0],
        "av_mag": amm[..., 1],
        "log_mass_msun": amm[..., 2],
        "log_rh_arcsec": decode(probs["rh"], grids.log_rh_arcsec),
        "visibility": decode(probs["visibility"], grids.visibility, log_spacing=True),
        "p_cluster": probs["class"][..., 1],
        "grids": dict(probs),
    }
