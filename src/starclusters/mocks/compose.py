"""Put a noise-free mock cluster on a real background: the one ``compose()``.

The cluster's light is converted to counts with the exposure time, each pixel drawn
from a Poisson distribution, converted back to counts/s and added to the real
background cutout: the background keeps its own noise and structure, the cluster adds
its own photons' shot noise and nothing else (a sum of Poisson variables is Poisson).

Thesis §3.1.3 adds the background's median to the cluster before the Poisson draw and
subtracts it after. That draws the sky's shot noise a second time in every pixel of
the window, so every composed window is noisier than every bare background, cluster
light or not; a network learns that as a cluster cue (docs/mocks.md: a network trained
on a bank with many faint mocks called 31 % of empty composed windows clusters, 1 % of
bare ones). The median is therefore not added here.

Visibility (thesis eq. 3.2), per band b:

    v_b = f_c,b / (n_b · σ_b),

f_c,b the cluster's (noise-free) flux within r_h,obs,b of its centre, n_b the number
of pixels whose centres lie within r_h,obs,b (at least one), σ_b the standard
deviation of the background's pixels within 25 px of the centre. r_h,obs is the
cluster's half-number radius widened by the PSF: r_h,obs,b = sqrt(r_h² + r_psf,b²),
with r_psf,b the PSF's half-light radius in band b (exact for Gaussians, a good
approximation otherwise). A cluster is as visible as it is in its most visible
band: **visibility = max_b v_b** (the network sees all bands; a cluster that stands
out in F336W alone is still a detectable cluster). ``compose`` returns the
per-band values too.

Both functions take one window (B, S, S) or a batch (..., B, S, S), as numpy arrays or
as torch tensors on any device (training composes its batches on the GPU). The formulas
are written once; the few primitives that numpy and torch spell differently (standard
deviation, Poisson draws, dtype casts) are in :class:`_NumpyOps` and
:class:`_TorchOps`. Both compute in float64. torch is imported only if a tensor is given
(the mock-bank environment has no torch).
"""

from __future__ import annotations

import functools
import sys

import numpy as np

#: Radius of the aperture in which the background's standard deviation is measured, px (thesis: 25 px = 1″).
SIGMA_APERTURE_PX = 25.0


def _radius_px(shape: tuple[int, int]) -> np.ndarray:
    """Distance of each pixel centre from the stamp centre (pixel (S//2, S//2)), px."""
    ny, nx = shape
    y, x = np.mgrid[0:ny, 0:nx]
    return np.hypot(x - nx // 2, y - ny // 2)


@functools.lru_cache(maxsize=16)
def _aperture(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(radius (ny, nx) px, flat indices (K,) of the pixels within SIGMA_APERTURE_PX), read-only."""
    radius = _radius_px(shape)
    ring = np.flatnonzero(radius.ravel() <= SIGMA_APERTURE_PX)
    radius.flags.writeable = ring.flags.writeable = False
    return radius, ring


class _NumpyOps:
    """The primitives of compose/visibility for numpy arrays (float64)."""

    @staticmethod
    def asarray(x, like=None):
        return np.asarray(x, dtype=np.float64)

    broadcast_to = staticmethod(np.broadcast_to)

    @staticmethod
    def aperture(shape, like):
        return _aperture(tuple(shape))

    @staticmethod
    def std(x):
        """Population standard deviation (ddof 0) over the last axis."""
        return np.std(x, axis=-1)

    @staticmethod
    def amax(x):
        return np.max(x, axis=-1)

    where = staticmethod(np.where)

    @staticmethod
    def clip_at_zero_(x):
        """x clipped below at 0, in place."""
        return np.clip(x, 0.0, None, out=x)

    @staticmethod
    def poisson(mean, rng):
        if not isinstance(rng, np.random.Generator):
            raise TypeError(f"rng must be a numpy Generator for numpy arrays, got {type(rng)}")
        return rng.poisson(mean)

    @staticmethod
    def float32(x):
        return x.astype(np.float32)

    @staticmethod
    def scalar(x):
        return float(x)


class _TorchOps:
    """The same primitives for torch tensors (float64, on the first argument's device)."""

    def __init__(self, torch):
        self.torch = torch

    def asarray(self, x, like=None):
        device = x.device if like is None else like.device
        return self.torch.as_tensor(x, dtype=self.torch.float64, device=device)

    def broadcast_to(self, x, shape):
        return x.broadcast_to(shape)

    def aperture(self, shape, like):
        return _torch_aperture(tuple(shape), like.device)

    def std(self, x):
        return x.std(dim=-1, correction=0)

    def amax(self, x):
        return x.amax(dim=-1)

    def where(self, cond, a, b):
        return self.torch.where(cond, a, b)

    @staticmethod
    def clip_at_zero_(x):
        return x.clamp_(min=0.0)

    def poisson(self, mean, rng):
        torch = self.torch
        if isinstance(rng, np.random.Generator):
            # one draw from the caller's numpy stream seeds a generator on the tensor's device
            seed = int(rng.integers(0, 2**63))
            rng = torch.Generator(device=mean.device)
            rng.manual_seed(seed)
        elif not isinstance(rng, torch.Generator):
            raise TypeError(f"rng must be a torch or numpy Generator, got {type(rng)}")
        return torch.poisson(mean, generator=rng)

    def float32(self, x):
        return x.to(self.torch.float32)

    @staticmethod
    def scalar(x):
        return x


@functools.lru_cache(maxsize=16)
def _torch_aperture(shape: tuple[int, int], device):
    """:func:`_aperture` as tensors on ``device`` (copied there once)."""
    import torch

    radius, ring = _aperture(shape)
    return torch.tensor(radius, device=device), torch.tensor(ring, device=device)


def _ops(array):
    """_TorchOps if ``array`` is a torch tensor, else _NumpyOps."""
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(array, torch.Tensor):
        return _TorchOps(torch)
    return _NumpyOps


def observed_rh_px(rh_px: float, psf_rh_px: np.ndarray) -> np.ndarray:
    """r_h,obs per band (px): the cluster's r_h widened in quadrature by the PSF's half-light radius."""
    return np.sqrt(rh_px**2 + np.asarray(psf_rh_px, dtype=float) ** 2)


def visibility(stamp, background, rh_obs_px):
    """Per-band visibility (thesis eq. 3.2) of noise-free ``stamp`` on ``background``.

    stamp, background: (..., B, S, S) counts/s (one window (B, S, S) or a batch), numpy
    arrays or torch tensors (then the result is a float64 tensor on stamp's device);
    rh_obs_px: r_h,obs (..., B), (B,) or scalar, px. The aperture is centred on pixel
    (S//2, S//2): it holds the pixels with radius ≤ max(r_h,obs, 0.5) (at least the
    central one), σ is the population std of the background's pixels within
    SIGMA_APERTURE_PX. Returns (..., B) float64, dimensionless; inf where σ = 0.
    """
    ops = _ops(stamp)
    stamp = ops.asarray(stamp)
    background = ops.asarray(background, like=stamp)
    lead = tuple(stamp.shape[:-2])
    radius, ring = ops.aperture(stamp.shape[-2:], stamp)
    rh_obs = ops.broadcast_to(ops.asarray(rh_obs_px, like=stamp), lead).clip(min=0.5)
    inside = radius <= rh_obs[..., None, None]
    n_inside = inside.sum(axis=(-2, -1))
    flux = (stamp * inside).sum(axis=(-2, -1))
    sigma = ops.std(background.reshape(*lead, -1)[..., ring])
    positive = sigma > 0
    return ops.where(positive, flux / (n_inside * ops.where(positive, sigma, 1.0)), np.inf)


def compose(stamp, background, exptime_s, rng, rh_obs_px):
    """Add a noise-free cluster to a real background with its photon noise (thesis §3.1.3, corrected).

    stamp: (..., B, S, S) noise-free cluster light, counts/s, centred on pixel (S//2, S//2);
    background: real cutouts of the same shape, counts/s; exptime_s: exposure time per
    band (B,) (or (..., B), or scalar), s; rh_obs_px: r_h,obs (..., B), (B,) or scalar, px
    (see :func:`observed_rh_px`). Leading axes are a batch: each window gets its own
    median and visibility.

    Returns (images (..., B, S, S) float32 counts/s, visibility (...,), per-band visibility
    (..., B) float64). For one window (B, S, S) of numpy arrays the visibility is a float
    and per-band (B,), as the figures and injection expect.

    numpy arrays: Poisson draws from ``rng``, a numpy Generator; for a batch in C order
    they are the draws that composing the windows one by one with the same ``rng`` makes.
    torch tensors (any device): all the math in float64 on stamp's device (other inputs are
    moved there), results as tensors there (a 0-d visibility for one window); ``rng`` is a
    ``torch.Generator`` on that device, or a numpy Generator from which one integer in
    [0, 2^63) seeds a fresh torch Generator (reproducible, one draw of the numpy stream).
    The CUDA Poisson sampler holds counts below 2^32 per pixel. Where the stamp is 0
    the window is the background, unchanged (see the module docstring for why the
    thesis' background median is not added before the draw).
    """
    ops = _ops(stamp)
    stamp = ops.asarray(stamp)
    background = ops.asarray(background, like=stamp)
    if tuple(stamp.shape) != tuple(background.shape):
        raise ValueError(
            f"stamp {tuple(stamp.shape)} and background {tuple(background.shape)} differ in shape"
        )
    if stamp.ndim < 3:
        raise ValueError(f"stamp must be (..., B, S, S), got shape {tuple(stamp.shape)}")
    lead = tuple(stamp.shape[:-2])
    t = ops.broadcast_to(ops.asarray(exptime_s, like=stamp), lead)[..., None, None]
    mean_counts = stamp * t  # in place from here: full-size temporaries are the cost
    noisy = ops.poisson(ops.clip_at_zero_(mean_counts), rng) / t
    noisy += background
    per_band = visibility(stamp, background, rh_obs_px)
    best = ops.amax(per_band)
    if stamp.ndim == 3:
        best = ops.scalar(best)
    return ops.float32(noisy), best, per_band
