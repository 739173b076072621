"""Exact mode: the network on the window centred on every ``step_px``-th pixel (thesis §4.2.2).

"The network was applied on input images of fixed size, which were obtained by sliding a
64 × 64 pix window through the whole mosaic with a step of 1 pixel." Each window is cut
from the mosaic as it is (counts/s) and goes through
:func:`starclusters.model.inference.predict` — the preprocessing, network, softmax and
decoding of training and evaluation — in batches of ``batch_size``. Nothing is
approximated: the value at a pixel is what the network says about that pixel's window.

Windows are gathered batch by batch from a strided view of the tile (numpy
``sliding_window_view``), so a tile never holds more than one batch of windows.

With ``step_px`` > 1 the network runs on the pixels whose row and column are multiples of
the step (a global grid, so tiles agree) and every pixel takes the values of its nearest
evaluated centre (:func:`starclusters.detect.tiles.nearest_centre`); the maps keep the
mosaic's full resolution, in blocks of step × step equal values. A pixel is NaN when it
is masked or its own window is incomplete (see :func:`~starclusters.detect.tiles.complete_windows`), and also when
its nearest centre is (near masks, blank areas and the mosaic's edges): a map at step s is
the step-1 map sampled at the nearest centres, NaN where the step-1 map is NaN.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from starclusters.detect.progress import WindowProgress, tile_progress
from starclusters.detect.tiles import Tile, nearest_centre, window_start
from starclusters.model.inference import ESTIMATES, predict

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Centres:
    """The window centres one tile needs, and how its core pixels take their values.

    rows, cols: (r,), (c,) mosaic row/column of every centre on the step grid near the core;
    row_of, col_of: (ny,), (nx,) index into rows/cols of each core row/column's nearest
    centre; wanted: (ny, nx) the core pixels that may have values; ii, jj: (n,) indices
    (into rows, cols) of the centres to evaluate — needed by a wanted pixel and usable
    themselves — in row-major order; top, left: (n,) their windows' first row and column
    in the region read (local px).
    """

    rows: np.ndarray
    cols: np.ndarray
    row_of: np.ndarray
    col_of: np.ndarray
    wanted: np.ndarray
    ii: np.ndarray
    jj: np.ndarray
    top: np.ndarray
    left: np.ndarray

    @classmethod
    def of_tile(
        cls, usable: np.ndarray, origin: tuple[int, int], tile: Tile, window_px: int, step_px: int
    ) -> Centres:
        """The centres of ``tile`` (arguments as :func:`exact_tile_maps`)."""
        ry0, rx0 = origin
        height, width = usable.shape
        oy, ox = tile.y0 - ry0, tile.x0 - rx0
        wanted = usable[oy : oy + tile.ny, ox : ox + tile.nx]
        cy = nearest_centre(np.arange(tile.y0, tile.y0 + tile.ny), step_px)
        cx = nearest_centre(np.arange(tile.x0, tile.x0 + tile.nx), step_px)
        rows, row_of = np.unique(cy, return_inverse=True)
        cols, col_of = np.unique(cx, return_inverse=True)
        # centres that at least one wanted pixel takes its values from (cy, cx are sorted)
        first_r = np.flatnonzero(np.r_[True, np.diff(cy) != 0])
        first_c = np.flatnonzero(np.r_[True, np.diff(cx) != 0])
        need = np.logical_or.reduceat(wanted, first_r, axis=0)
        need = np.logical_or.reduceat(need, first_c, axis=1)
        local_r, local_c = rows - ry0, cols - rx0
        need &= ((local_r >= 0) & (local_r < height))[:, None]
        need &= ((local_c >= 0) & (local_c < width))[None, :]
        ii, jj = np.nonzero(need)
        keep = usable[local_r[ii], local_c[jj]]
        ii, jj = ii[keep], jj[keep]
        top = window_start(local_r[ii], window_px)
        left = window_start(local_c[jj], window_px)
        return cls(rows, cols, row_of, col_of, wanted, ii, jj, top, left)

    @property
    def n(self) -> int:
        """Number of centres to evaluate."""
        return int(self.ii.size)

    def empty_maps(self) -> np.ndarray:
        """(len(ESTIMATES), r, c) float32 NaN: the values at the centres, to fill."""
        return np.full((len(ESTIMATES), self.rows.size, self.cols.size), np.nan, np.float32)

    def put(self, grid_maps: np.ndarray, sel, estimates: dict[str, np.ndarray]) -> None:
        """Store the estimates of the centres ``sel`` (a slice or index of 0 … n-1)."""
        for m, key in enumerate(ESTIMATES):
            grid_maps[m, self.ii[sel], self.jj[sel]] = estimates[key]

    def spread(self, grid_maps: np.ndarray) -> dict[str, np.ndarray]:
        """{estimate: (ny, nx) float32}: every core pixel the value of its nearest centre,
        NaN where the pixel is not wanted."""
        maps = {}
        for m, key in enumerate(ESTIMATES):
            full = grid_maps[m][self.row_of][:, self.col_of]
            full[~self.wanted] = np.nan
            maps[key] = full
        return maps


def exact_tile_maps(
    images: np.ndarray,
    usable: np.ndarray,
    origin: tuple[int, int],
    tile: Tile,
    model,
    grids,
    *,
    window_px: int,
    step_px: int = 1,
    batch_size: int = 256,
    device=None,
    progress: WindowProgress | None = None,
) -> dict[str, np.ndarray]:
    """Exact-mode maps of one tile's core: {estimate: (ny, nx) float32}, keys of ESTIMATES.

    images: (B, h, w) float32 counts/s, the region read for the tile (core plus halo, see
    :meth:`Tile.region`), bands in the model's order, no NaN where ``usable``; usable: (h, w)
    bool, the pixels of the region that may have values — unmasked, and their window
    complete (:func:`~starclusters.detect.tiles.complete_windows`); origin: (row, column) of the region's first pixel on
    the mosaic; tile: the core on the mosaic; model, grids: from
    :func:`starclusters.model.checkpoint.load_model`; window_px: the model's S; step_px: evaluate
    every step-th row and column; batch_size: windows per forward pass; device: torch device
    (default the model's); progress: the windows' counter shared by the tiles of an image
    (default: one of this tile's, :func:`~starclusters.detect.progress.tile_progress`).

    Returns p_cluster (probability that a cluster is centred on the pixel), visibility,
    log_age_yr [log10 yr], av_mag [mag], log_mass_msun [log10 M☉], log_rh_arcsec
    [log10 arcsec]; NaN where the pixel or its nearest centre is not ``usable``: the maps
    at step s > 1 are the step-1 maps sampled at the nearest centres. This is the exact
    mode's per-tile function in :data:`starclusters.detect.stage.MODES`.
    """
    centres = Centres.of_tile(usable, origin, tile, window_px, step_px)
    top, left, n = centres.top, centres.left, centres.n
    grid_maps = centres.empty_maps()
    if n:
        view = sliding_window_view(images, (window_px, window_px), axis=(1, 2))
        start = time.perf_counter()
        with tile_progress(progress, n, f"tile {tile.t}") as bar:
            for k in range(0, n, batch_size):
                sel = slice(k, min(k + batch_size, n))
                # (B, n, S, S) gathered from the view -> (n, B, S, S): one batch in memory
                windows = np.ascontiguousarray(np.moveaxis(view[:, top[sel], left[sel]], 0, 1))
                out = predict(model, windows, grids, batch_size=batch_size, device=device)
                centres.put(grid_maps, sel, out)
                bar.update(sel.stop - sel.start)
        seconds = time.perf_counter() - start
        log.info(
            "tile %d: %d windows in %.1f s (%.0f windows/s, step %d px, batch %d)",
            tile.t,
            n,
            seconds,
            n / max(seconds, 1e-9),
            step_px,
            batch_size,
        )
    else:
        log.info("tile %d: no complete unmasked window, all NaN", tile.t)
    return centres.spread(grid_maps)
