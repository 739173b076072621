"""Fast mode: the dense-ready network evaluated fully convolutionally over each tile.

Same inputs, outputs and NaN policy as the exact mode (:func:`exact_tile_maps`), same
window convention, and — for a dense-ready model (``model.padding: valid``,
``model.input_norm: fixed``) — the same values up to float rounding: the region read for
a tile is preprocessed once (the fixed per-band arcsinh scaling does not depend on the
window), its layers up to the global pool run once over the whole region
(:func:`starclusters.model.dense.dense_pooled`) instead of once per window, and only the
fully connected layer, the heads and the decoding (:func:`starclusters.model.inference.
estimates`, the same code as ``predict``) run per centre. The region is processed in
strips of rows so that the activations stay within :data:`~starclusters.detect.tiles.
FAST_ACTIVATION_BYTES` (:func:`~starclusters.detect.tiles.fast_strip_rows`).

The dense pass computes every pixel; with ``step_px`` > 1 the heads run only on the
centres of the step grid, so the maps follow the exact mode's step convention but the
backbone's cost does not shrink with the step.
"""

from __future__ import annotations

import logging
import time
from contextlib import nullcontext

import numpy as np
import torch

from starclusters.detect.exact import Centres
from starclusters.detect.progress import WindowProgress, tile_progress
from starclusters.detect.tiles import FAST_HEAD_BATCH, Tile, fast_strip_rows, widest_channels
from starclusters.model.codec import preprocess
from starclusters.model.dense import check_dense_ready, dense_pooled
from starclusters.model.inference import estimates

log = logging.getLogger(__name__)


@torch.no_grad()
def fast_tile_maps(
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
    """Fast-mode maps of one tile's core: arguments and result as :func:`exact_tile_maps`.

    images (B, h, w) float32 counts/s must be finite everywhere (the caller zeroes blank
    pixels; they only enter windows that are not usable). batch_size is not used: the
    strips' size follows from the memory bound. ValueError if the model is not dense-ready.
    """
    check_dense_ready(model)
    model.eval()
    dev = torch.device(device) if device is not None else next(model.parameters()).device
    amp = dev.type == "cuda"
    centres = Centres.of_tile(usable, origin, tile, window_px, step_px)
    grid_maps = centres.empty_maps()
    n = centres.n
    if not n:
        log.info("tile %d: no complete unmasked window, all NaN", tile.t)
        return centres.spread(grid_maps)
    top, left = centres.top, centres.left
    c0, c1 = int(left.min()), int(left.max()) + window_px  # the columns any window needs
    spec = model.spec
    channels = widest_channels(spec.stem_channels, spec.stage_channels, spec.widths)
    rows = fast_strip_rows(window_px, c1 - c0, channels)
    x_all = torch.from_numpy(np.ascontiguousarray(images[:, :, c0:c1]))
    scale = model.band_scale()
    strips = np.unique(top // rows)
    start = time.perf_counter()
    ctx = torch.autocast("cuda", dtype=torch.bfloat16) if amp else nullcontext()
    with tile_progress(progress, n, f"tile {tile.t}") as bar:
        for strip in strips:
            r0 = int(strip) * rows
            sel = np.flatnonzero((top >= r0) & (top < r0 + rows))
            r1 = int(top[sel].max()) + window_px
            x = preprocess(x_all[:, r0:r1].to(dev, torch.float32), scale)[None]
            if amp:
                x = x.contiguous(memory_format=torch.channels_last)
            with ctx:
                pooled = dense_pooled(model, x)[0]  # (C, r1 - r0 - S + 1, c1 - c0 - S + 1)
            ty = torch.as_tensor(top[sel] - r0, device=pooled.device)
            tx = torch.as_tensor(left[sel] - c0, device=pooled.device)
            features = pooled[:, ty, tx].T  # (n_strip, C)
            for k in range(0, sel.size, FAST_HEAD_BATCH):
                part = slice(k, k + FAST_HEAD_BATCH)
                with ctx:
                    raw = model.head_outputs(model.fc_features(features[part]))
                centres.put(grid_maps, sel[part], estimates(raw, grids))
            bar.update(sel.size)
    seconds = time.perf_counter() - start
    log.info(
        "tile %d: %d windows in %.1f s (%.0f windows/s, fast mode, strips of %d rows)",
        tile.t,
        n,
        seconds,
        n / max(seconds, 1e-9),
        rows,
    )
    return centres.spread(grid_maps)
