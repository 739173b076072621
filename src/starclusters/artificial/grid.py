"""Where the artificial clusters go, and where the search for them has to look.

Grid (thesis §4.2.3: "placed on the mosaic in a regular grid ... spaced 64 pix apart from
each other, covering the whole extent of the mosaic"): centres at rows and columns
``spacing // 2 + k · spacing`` (k = 0, 1, …) of the mosaic grid, on pixel centres, with no
sub-grid jitter (the thesis places them on the grid). Layers (``artificial.n_layers``):
each layer is injected into its own copy of the mosaic, so that many more mocks can be
tested than one grid holds without ever crowding them; layer 0 is the thesis' grid, every
further layer the same grid shifted by its own whole-pixel offset (:func:`layer_offset_px`)
so that its mocks sit elsewhere. Within a layer the mocks are ``spacing_px`` apart, and
with ``spacing_px ≥ window_px`` their stamps never overlap. A site is kept where detection
would give its centre a value: the pixel is unmasked and its window complete
(:func:`starclusters.detect.tiles.complete_windows`, the detection's own test), so every
injected mock can be found.

Search region. The artificial test only needs the peaks within the largest match radius of
the injected mocks. A peak there, and its class, visibility and parameters, depend on
the value maps within r = R_match + 1 + ⌊4σ + ½⌋ + step_px of the mock: its 8-neighbours
(+1), the Gaussian smoothing of the class map (σ = ``detect.smooth_sigma_px``, kernel
truncated at 4σ by scipy; the 5 × 5 weighted window lies inside it), and the nearest
evaluated centre at steps > 1 (+step). Masking everything farther than r from every mock
(:data:`MASK_NO_SEARCH`) makes the detection skip those windows while the maps within r —
and hence every matched peak — stay exactly what a whole-mosaic search gives. With
``artificial.search: whole_mosaic`` nothing is masked (the thesis' search).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from starclusters.detect.tiles import complete_windows
from starclusters.errors import ConfigError
from starclusters.mosaic.prepare import MASK_BLANK

#: Mask bit of the artificial test's search mask: farther from every mock than the search radius.
MASK_NO_SEARCH = 128
#: Search modes of ``artificial.search``.
SEARCH_MODES = ("around_mocks", "whole_mosaic")
#: Truncation of scipy's Gaussian filter, in σ (scipy.ndimage.gaussian_filter's default).
GAUSSIAN_TRUNCATE = 4.0


def usable_centres(mask: np.ndarray, window_px: int) -> np.ndarray:
    """(H, W) bool: unmasked pixels whose window is complete (no blank pixel, inside the mosaic).

    mask: (H, W) uint8 mosaic mask (bits of :mod:`starclusters.mosaic.prepare`); the same
    test as :func:`starclusters.detect.stage.tile_maps` applies to every window.
    """
    mask = np.asarray(mask)
    blank = (mask & MASK_BLANK).astype(bool)
    return (mask == 0) & complete_windows(blank, window_px)


#: Stream of the layers' grid offsets (the mocks and the injection have their own streams).
OFFSET_STREAM = 2


def layer_offset_px(
    config_seed: int, seed_offset: int, layer: int, spacing_px: int
) -> tuple[int, int]:
    """(row, column) shift of layer ``layer``'s grid, px: (0, 0) for layer 0 (the thesis'
    grid), else uniform in [−spacing // 2, spacing − spacing // 2) from the layer's own seed."""
    if layer == 0:
        return 0, 0
    from starclusters.artificial.inject import ARTIFICIAL_STAGE

    rng = np.random.default_rng(
        [int(config_seed), ARTIFICIAL_STAGE, int(seed_offset), OFFSET_STREAM, int(layer)]
    )
    lo, hi = -(spacing_px // 2), spacing_px - spacing_px // 2
    dy, dx = rng.integers(lo, hi, 2)
    return int(dy), int(dx)


def grid_sites(
    shape: Sequence[int], spacing_px: int, offset_px: tuple[int, int] = (0, 0)
) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols) int64 of every grid site of a mosaic of ``shape`` (H, W), row-major.

    Sites at spacing // 2 + offset + k · spacing along each axis (every integer k that
    puts the site on the mosaic), px (0-based pixel centres); offset_px: (row, column) shift of the grid.
    """
    if not isinstance(spacing_px, int | np.integer) or spacing_px < 1:
        raise ConfigError(f"artificial.spacing_px: must be a positive integer, got {spacing_px!r}")
    height, width = (int(v) for v in shape)
    y0, x0 = (spacing_px // 2 + int(v) for v in offset_px)
    # the first site on the mosaic of the shifted grid
    ys = np.arange(y0 % spacing_px, height, spacing_px, dtype=np.int64)
    xs = np.arange(x0 % spacing_px, width, spacing_px, dtype=np.int64)
    rows, cols = np.meshgrid(ys, xs, indexing="ij")
    return rows.ravel(), cols.ravel()


def grid_table(
    mask: np.ndarray,
    window_px: int,
    spacing_px: int,
    n_shards: int,
    offset_px: tuple[int, int] = (0, 0),
) -> pd.DataFrame:
    """The injection sites of a mosaic: mock_id, x_px, y_px (0-based), shard (int64).

    mask: (H, W) uint8 mosaic mask; offset_px: the grid's shift (:func:`grid_sites`).
    Only usable sites (:func:`usable_centres`) are kept; they are numbered row-major and
    the shards get contiguous blocks of them (shard after shard is then mock_id order,
    the order of the injection).
    """
    if n_shards < 1:
        raise ConfigError(f"artificial.n_shards: must be ≥ 1, got {n_shards}")
    rows, cols = grid_sites(np.shape(mask), spacing_px, offset_px)
    keep = usable_centres(mask, window_px)[rows, cols]
    rows, cols = rows[keep], cols[keep]
    mock_id = np.arange(len(rows), dtype=np.int64)
    shard = (mock_id * n_shards) // max(len(mock_id), 1)
    return pd.DataFrame({"mock_id": mock_id, "x_px": cols, "y_px": rows, "shard": shard})


def search_radius_px(match_radii_px: Sequence[float], smooth_sigma_px: float, step_px: int) -> int:
    """Radius around each mock within which the maps must be made, px (module docstring)."""
    smoothing = int(GAUSSIAN_TRUNCATE * float(smooth_sigma_px) + 0.5)
    return int(math.ceil(max(match_radii_px))) + 1 + smoothing + int(step_px)


def search_mask(
    mask: np.ndarray, rows: np.ndarray, cols: np.ndarray, radius_px: int | None
) -> np.ndarray:
    """The mosaic mask with :data:`MASK_NO_SEARCH` set farther than ``radius_px`` from every site.

    mask: (H, W) uint8; rows, cols: (N,) site pixels; radius_px: None leaves the mask as
    it is (whole-mosaic search). Returns a new (H, W) uint8 array.
    """
    out = np.array(mask, dtype=np.uint8, copy=True)
    if radius_px is None:
        return out
    near = np.zeros(out.shape, bool)
    r = int(radius_px)
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    disc = dy**2 + dx**2 <= r * r
    height, width = out.shape
    for y, x in zip(np.asarray(rows, int), np.asarray(cols, int), strict=True):
        y0, y1, x0, x1 = max(y - r, 0), min(y + r + 1, height), max(x - r, 0), min(x + r + 1, width)
        near[y0:y1, x0:x1] |= disc[y0 - y + r : y1 - y + r, x0 - x + r : x1 - x + r]
    out[~near] |= MASK_NO_SEARCH
    return out
