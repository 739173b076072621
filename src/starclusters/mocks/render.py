"""Fast, pixel-exact rendering of noise-free cluster stamps.

Drawing every star with GalSim ``drawImage`` costs ~1 ms per star and band; a
10^5 Msun cluster has ~10^5 stars. Instead, per band:

* the effective PSF (ePSF: optics ⊗ charge diffusion ⊗ native pixel, sampled
  ``oversampling`` times finer than the native pixels; see ``mocks.psf``) is split
  into a **core** (the ePSF times a cosine taper from 1 at half of
  ``core_radius_px`` to 0 at ``core_radius_px``) and the **wings** (the rest;
  the smooth taper keeps sub-pixel structure out of them, so that their pixel sums
  do not depend on a star's sub-pixel position);
* every star's flux is deposited with bilinear weights on a fine grid covering the
  stamp plus the core radius; the fine grid is split into its oversampling²
  sub-pixel phases, each convolved (FFT, at native resolution) with the core
  sampled at that phase's offsets, and the sum gives the native pixel values —
  sub-pixel positions matter in the undersampled core, but only native pixels
  are computed;
* every star's flux is also deposited with bilinear weights on the native grid
  covering the stamp plus the whole PSF, convolved once with the wing kernel
  (the ePSF outside the core, sampled at native spacing) — the wings are smooth
  on the scale of a pixel, so native resolution suffices.

FFTs run in single precision (relative round-off 1e-7).

Against drawing each star separately with GalSim (tests/test_render.py), with
``oversampling`` 7 and ``core_radius_px`` 6: pixel values agree to 0.6 % of the
peak pixel, and the flux in the stamp to 0.06 % at 806 nm and 0.12 % at 336 nm
(there, GalSim's native-scale drawing itself differs by 0.12 % from the 7×
finer ePSF drawing of the same model).

Coordinates: a stamp is ``stamp_px`` × ``stamp_px`` native pixels; the cluster
centre is the centre of pixel (stamp_px // 2, stamp_px // 2) (row, column);
positions are (x, y) in arcsec, x along columns, y along rows.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.fft


def _fft_shape(n: int) -> int:
    return scipy.fft.next_fast_len(n, real=True)


def _bilinear_deposit(u: np.ndarray, v: np.ndarray, weights: np.ndarray, shape: tuple[int, int]):
    """Deposit ``weights`` (n, B) at fractional grid positions (u column, v row).

    Returns (B, ny, nx) float64; points whose 2×2 footprint leaves the grid lose that part.
    """
    ny, nx = shape
    j0 = np.floor(u).astype(np.int64)
    i0 = np.floor(v).astype(np.int64)
    fu, fv = u - j0, v - i0
    # the four corners of every point, in one bincount per band
    i = np.concatenate([i0, i0, i0 + 1, i0 + 1])
    j = np.concatenate([j0, j0 + 1, j0, j0 + 1])
    w = np.concatenate([(1 - fv) * (1 - fu), (1 - fv) * fu, fv * (1 - fu), fv * fu])
    ok = (i >= 0) & (i < ny) & (j >= 0) & (j < nx)
    index, w = i[ok] * nx + j[ok], w[ok]
    n = len(u)
    point = np.concatenate([np.arange(n)] * 4)[ok]
    out = np.empty((weights.shape[1], ny * nx))
    for b in range(weights.shape[1]):
        out[b] = np.bincount(index, weights=w * weights[point, b], minlength=ny * nx)
    return out.reshape(weights.shape[1], ny, nx)


@dataclass
class StampRenderer:
    """Renders noise-free stamps (B, S, S) in counts/s from star positions and count rates.

    epsfs: (B, n, n) effective PSFs on the fine grid (n odd, centred, each summing
    to 1); oversampling: fine samples per native pixel (odd, so that native pixel
    centres fall on fine samples); pixel_scale_arcsec: native pixel; stamp_px: S;
    flux_fraction: (B,) share of a star's light inside each ePSF array (the light
    beyond it is lost, as it is from a real image's stamp); default 1;
    max_star_radius_arcsec: no star lies farther from the stamp centre (e.g. the
    EFF truncation radius), which shrinks the wing grid; stars beyond are ignored.
    """

    epsfs: np.ndarray
    oversampling: int
    pixel_scale_arcsec: float
    stamp_px: int
    core_radius_px: int = 6
    flux_fraction: np.ndarray | None = None
    max_star_radius_arcsec: float | None = None

    def __post_init__(self):
        o = self.oversampling
        if o % 2 != 1:
            raise ValueError(
                f"oversampling must be odd so native pixel centres are fine samples, got {o}"
            )
        epsfs = np.asarray(self.epsfs, dtype=np.float64)
        n = epsfs.shape[-1]
        if epsfs.ndim != 3 or epsfs.shape[-2] != n or n % 2 != 1:
            raise ValueError(f"ePSFs must be (bands, n, n) with n odd, got {epsfs.shape}")
        c = n // 2
        rc = self.core_radius_px * o  # core half-width in fine samples
        if rc > c:
            raise ValueError("core radius exceeds the PSF size")
        # Values per native pixel for unit flux: o^2 × ePSF (the ePSF sums to 1 on the
        # fine grid) × the share of the light that falls inside it.
        fraction = (
            np.ones(len(epsfs)) if self.flux_fraction is None else np.asarray(self.flux_fraction)
        )
        scaled = epsfs * o**2 * fraction[:, None, None]
        # The core fades smoothly to zero between half the core radius and the core
        # radius: a hard edge would leave sub-pixel structure in the wings, and then
        # the wings' pixel sums would depend on a star's sub-pixel phase.
        y, x = np.mgrid[-c : c + 1, -c : c + 1] / o
        r = np.hypot(x, y)
        inner = 0.5 * self.core_radius_px
        taper = np.clip((self.core_radius_px - r) / (self.core_radius_px - inner), 0.0, 1.0)
        taper = 0.5 - 0.5 * np.cos(np.pi * taper)
        core = scaled * taper
        wing_fine = scaled - core
        # Wing kernel on native spacing: fine samples at native pixel centres (phase 0).
        half_native = c // o
        idx = c + o * np.arange(-half_native, half_native + 1)
        self._wing = wing_fine[:, idx][:, :, idx]
        self._half_native = half_native
        s = self.stamp_px
        m = self.core_radius_px
        # Core, polyphase: the fine grid (stamp plus core margin) is split into its
        # o × o sub-pixel phases, each a native-resolution grid; phase p is
        # convolved with the core sampled at native spacing with that phase's
        # offset, and the sums are the native pixel values. Only native pixels are
        # computed, not the whole fine grid.
        h = (o - 1) // 2
        t_max = -(-(rc + h) // o)  # ceil
        t = np.arange(-t_max, t_max + 1)
        pad = o * t_max + o
        padded = np.pad(core, ((0, 0), (pad, pad), (pad, pad)))  # zero outside the core anyway
        kernels = np.empty((len(core), o, o, t.size, t.size))
        for py in range(o):
            for px in range(o):
                rows, cols = c + pad + o * t + h - py, c + pad + o * t + h - px
                kernels[:, py, px] = padded[:, rows][:, :, cols]
        self._t_max = t_max
        self._cells = s + 2 * m
        # Circular convolution is enough: the FFT only has to be long enough that
        # what wraps around misses the stamp's pixels (and holds grid and kernel).
        self._core_fft = _fft_shape(max(s + m + t_max, self._cells, 2 * t_max + 1))
        # Single precision: 1e-7 relative round-off, twice the speed of double.
        self._core_hat = scipy.fft.rfft2(kernels.astype(np.float32), s=(self._core_fft,) * 2)
        # Wings: native grid with the whole PSF as margin.
        # Stars deposit on a native grid reaching half_grid pixels from the stamp
        # centre: as far as a star can light the stamp, or as far as stars exist.
        reach = s // 2 + half_native
        if self.max_star_radius_arcsec is not None:
            reach = min(
                reach, int(np.ceil(self.max_star_radius_arcsec / self.pixel_scale_arcsec)) + 1
            )
        self._half_grid = reach
        self._native_n = 2 * reach + 1
        self._native_fft = _fft_shape(
            max(reach + half_native + s // 2 + 1, self._native_n, 2 * half_native + 1)
        )
        self._wing_hat = scipy.fft.rfft2(self._wing.astype(np.float32), s=(self._native_fft,) * 2)

    @property
    def n_bands(self) -> int:
        return self._wing.shape[0]

    def render(self, positions_arcsec: np.ndarray, counts_s: np.ndarray) -> np.ndarray:
        """Stamp (B, S, S) float32, counts/s per native pixel.

        positions_arcsec: (n, 2) x, y from the cluster centre; counts_s: (n, B).
        """
        o, s = self.oversampling, self.stamp_px
        counts = np.asarray(counts_s, dtype=np.float64)
        # native pixel coordinates of the stars (column u, row v), stamp pixel centres at integers
        u = s // 2 + positions_arcsec[:, 0] / self.pixel_scale_arcsec
        v = s // 2 + positions_arcsec[:, 1] / self.pixel_scale_arcsec
        bright = counts.sum(axis=1) > 0
        u, v, counts = u[bright], v[bright], counts[bright]

        # Core: fine sample k sits at native coordinate (k - (o-1)/2)/o - margin,
        # i.e. fine index k = o * cell + phase.
        margin = self.core_radius_px
        n_cells = self._cells
        fu = (u + margin) * o + (o - 1) / 2
        fv = (v + margin) * o + (o - 1) / 2
        fine = _bilinear_deposit(fu, fv, counts, (n_cells * o, n_cells * o))
        # contiguous, zero-padded phase images: FFTs of strided views are slower
        phases = np.zeros((len(fine), o, o, self._core_fft, self._core_fft), np.float32)
        phases[..., :n_cells, :n_cells] = fine.reshape(-1, n_cells, o, n_cells, o).transpose(
            0, 2, 4, 1, 3
        )
        spectrum = scipy.fft.rfft2(phases)
        summed = (spectrum * self._core_hat).sum(axis=(1, 2))
        conv = scipy.fft.irfft2(summed, s=(self._core_fft,) * 2)
        start = margin + self._t_max
        core_img = conv[:, start : start + s, start : start + s]

        # Wings: native grid with the whole PSF as margin.
        h, g = self._half_native, self._half_grid
        offset = g - s // 2  # native grid index of stamp coordinate 0
        native = np.zeros((len(fine), self._native_fft, self._native_fft), np.float32)
        native[:, : self._native_n, : self._native_n] = _bilinear_deposit(
            u + offset, v + offset, counts, (self._native_n, self._native_n)
        )
        conv = scipy.fft.irfft2(scipy.fft.rfft2(native) * self._wing_hat, s=native.shape[-2:])
        start = offset + h
        wing_img = conv[:, start : start + s, start : start + s]
        return (core_img + wing_img).astype(np.float32)
