"""The artificial mocks' seed stream and their injection into the mosaic with ``compose()``.

Seeds. The bank draws mock k of shard s from ``mock_seed(seed, s, k)``; the artificial mocks
are drawn by the same code (:func:`starclusters.mocks.stage.build_mock_shard`) with the
config seed replaced by :func:`artificial_seed` — a 63-bit number hashed from (seed,
:data:`ARTIFICIAL_STAGE`, ``artificial.seed_offset``, and the layer for layers ≥ 1) — so
they come from the bank's parameter distribution (with or without its magnitude cuts,
``artificial.draw``) but are never among the mocks the network was trained or tested on.
``seed_offset`` picks another independent set. The mocks drawn at the reference node
(``artificial.draw.reference_fraction``) come from :func:`reference_seed` of the layer's
seed, and which sites get them from the layer's seed, the shard and
:data:`REFERENCE_STREAM` (:func:`starclusters.artificial.draw.reference_sites`).

Injection (thesis §4.2.3; photon noise as in compose(), without §3.1.3's second sky
draw): for every site, in mock_id order, the window (B, S, S) centred on it is replaced by what
:func:`starclusters.mocks.compose.compose` makes of the noise-free stamp on that window:
the cluster with its own Poisson noise on the real background. Sites closer than the
window (``spacing_px`` < ``window_px``) see the mocks injected before them as part of
their background, as a real neighbour would be.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from starclusters.detect.tiles import window_start
from starclusters.mocks.bank import hashed_seed
from starclusters.mocks.compose import compose

#: Stage number mixed into seeds so that stages never share random streams (the bank: 3).
ARTIFICIAL_STAGE = 7
#: Stream of the injection's Poisson draws (the mocks' own streams come from their seeds).
COMPOSE_STREAM = 1
#: Marks the seeds of layers ≥ 1 (layer 0's are those of the single grid before layers).
LAYER_STREAM = 3
#: Stream of the mocks drawn at the reference node (``artificial.draw.reference_fraction``).
REFERENCE_STREAM = 5


def _layer_key(config_seed: int, seed_offset: int, layer: int) -> list[int]:
    """The entropy of a layer's streams; layer 0 keeps the single grid's (before layers)."""
    key = [int(config_seed), ARTIFICIAL_STAGE, int(seed_offset)]
    return key if layer == 0 else key + [LAYER_STREAM, int(layer)]


def artificial_seed(config_seed: int, seed_offset: int = 0, layer: int = 0) -> int:
    """The seed that replaces the config seed when layer ``layer``'s mocks are drawn (63 bits)."""
    return hashed_seed(*_layer_key(config_seed, seed_offset, layer))


def reference_seed(seed: int) -> int:
    """The seed of the reference-node mocks of a layer whose mocks have ``seed`` (63 bits)."""
    return hashed_seed(seed, REFERENCE_STREAM)


def compose_rng(config_seed: int, seed_offset: int = 0, layer: int = 0) -> np.random.Generator:
    """The generator of layer ``layer``'s injection's Poisson draws."""
    return np.random.default_rng(_layer_key(config_seed, seed_offset, layer) + [COMPOSE_STREAM])


def inject_mocks(
    images: np.ndarray,
    stamps: np.ndarray,
    rows: Sequence[int],
    cols: Sequence[int],
    exptime_s: Sequence[float],
    rh_obs_px: np.ndarray,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Add mocks to ``images`` in place with :func:`~starclusters.mocks.compose.compose`.

    images: (B, H, W) float32 mosaic, counts/s, changed in place; stamps: (N, B, S, S)
    noise-free mocks, counts/s, centred on pixel (S//2, S//2); rows, cols: (N,) centre
    pixels (0-based) — each window must lie inside the mosaic and hold no NaN; exptime_s:
    (B,) exposure times, s; rh_obs_px: (N, B) observed r_h per mock and band, px
    (:func:`~starclusters.mocks.compose.observed_rh_px`); rng: the Poisson draws, used
    mock after mock in the given order.

    Returns (visibility (N,) float64 — max over bands, thesis eq. 3.2 —, per-band (N, B)).
    """
    stamps = np.asarray(stamps)
    n, n_bands, size = len(stamps), images.shape[0], stamps.shape[-1] if len(stamps) else 0
    visibility = np.full(n, np.nan)
    per_band = np.full((n, n_bands), np.nan)
    rh_obs_px = np.asarray(rh_obs_px, float).reshape(n, n_bands)
    for k, (row, col) in enumerate(zip(rows, cols, strict=True)):
        top, left = window_start(int(row), size), window_start(int(col), size)
        if top < 0 or left < 0 or top + size > images.shape[1] or left + size > images.shape[2]:
            raise ValueError(f"mock {k} at (row {row}, col {col}): its window leaves the mosaic")
        window = (slice(None), slice(top, top + size), slice(left, left + size))
        background = images[window]
        if not np.isfinite(background).all():
            raise ValueError(f"mock {k} at (row {row}, col {col}): its window holds NaN pixels")
        composed, visibility[k], per_band[k] = compose(
            stamps[k], background, exptime_s, rng, rh_obs_px[k]
        )
        images[window] = composed
    return visibility, per_band
