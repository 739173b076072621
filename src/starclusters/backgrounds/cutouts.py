"""Drawing background windows from a masked multi-band mosaic.

Splits are spatial: the mosaic is divided into square blocks of ``block_px``
pixels, each block is given to one split (train, validation or test) with the
configured fractions, and a window is only drawn where it lies entirely inside
one block. Windows of different splits therefore never share a pixel (thesis
§2.4: test backgrounds must be unseen in training). The block map depends only
on the mosaic's shape, the block size, the fractions and the seed, so every
shard job computes the same one.

Positions are window centres: the window of centre (row, col) covers rows
row - S//2 ... row - S//2 + S - 1 (the centre pixel is (S//2, S//2) of the
window, as for mock stamps).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from starclusters.errors import ConfigError

#: Split names, in block-assignment order.
SPLITS = ("train", "val", "test")


def block_splits(
    shape: tuple[int, int], block_px: int, fractions: Mapping[str, float], rng: np.random.Generator
) -> np.ndarray:
    """Split index (into ``SPLITS``) of every block: (n_block_rows, n_block_cols) int8.

    Blocks are shuffled and dealt out so that the split fractions hold as closely
    as the number of blocks allows; every split with a positive fraction gets at
    least one block.
    """
    n_rows, n_cols = -(-shape[0] // block_px), -(-shape[1] // block_px)
    n_blocks = n_rows * n_cols
    wanted = [fractions.get(name, 0.0) for name in SPLITS]
    if not np.isclose(sum(wanted), 1.0):
        raise ConfigError(f"backgrounds.split_fractions: must sum to 1, got {dict(fractions)}")
    counts = np.floor(np.array(wanted) * n_blocks).astype(int)
    counts[np.argmax(wanted)] += n_blocks - counts.sum()
    for k, f in enumerate(wanted):  # every requested split gets a block
        if f > 0 and counts[k] == 0:
            donor = int(np.argmax(counts))
            counts[donor] -= 1
            counts[k] += 1
    if np.any(counts < 0) or (np.array(wanted) > 0).sum() > n_blocks:
        raise ConfigError(
            f"backgrounds.block_px: {block_px} px gives only {n_blocks} blocks for the "
            f"splits {dict(fractions)}; use smaller blocks"
        )
    labels = np.repeat(np.arange(len(SPLITS), dtype=np.int8), counts)
    return rng.permutation(labels).reshape(n_rows, n_cols)


def _window_sums(mask: np.ndarray, window_px: int) -> np.ndarray:
    """Masked pixels in the window whose top-left corner is each pixel: (H-S+1, W-S+1) int32."""
    padded = np.pad(mask.astype(np.int32), ((1, 0), (1, 0)))
    integral = padded.cumsum(axis=0, dtype=np.int32).cumsum(axis=1, dtype=np.int32)
    s = window_px
    return integral[s:, s:] - integral[:-s, s:] - integral[s:, :-s] + integral[:-s, :-s]


def valid_centres(
    mask: np.ndarray,
    blocks: np.ndarray,
    block_px: int,
    window_px: int,
    max_masked_fraction: float = 0.0,
) -> np.ndarray:
    """Split index of every pixel where a window may be centred, -1 elsewhere: (H, W) int8.

    A window is allowed when it lies inside the mosaic and inside a single block,
    and at most ``max_masked_fraction`` of its pixels are masked. Blocks are
    handled one at a time, so memory beyond the output is one block's worth.
    """
    out = np.full(mask.shape, -1, np.int8)
    lo, s = window_px // 2, window_px
    limit = max_masked_fraction * s * s
    for bi in range(blocks.shape[0]):
        for bj in range(blocks.shape[1]):
            r0, c0 = bi * block_px, bj * block_px
            block_mask = np.asarray(mask[r0 : r0 + block_px, c0 : c0 + block_px])
            if block_mask.shape[0] < s or block_mask.shape[1] < s:
                continue
            ok = _window_sums(block_mask, s) <= limit  # indexed by the window's top-left corner
            rows, cols = np.nonzero(ok)
            out[r0 + rows + lo, c0 + cols + lo] = blocks[bi, bj]
    return out


def draw_windows(
    images: np.ndarray,
    bands: list[str],
    centres_split: np.ndarray,
    n_windows: int,
    window_px: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, pd.DataFrame]:
    """``n_windows`` random windows (N, B, S, S) float32 from ``images`` (B, H, W) and their table.

    centres_split: the output of :func:`valid_centres`. Splits are drawn with the
    frequency of their valid centres. Table columns: row_px, col_px (window
    centre on the mosaic grid), split, median_counts_s_<band> (a proxy of the
    local surface brightness).
    """
    candidates = np.flatnonzero(centres_split.ravel() >= 0)
    if len(candidates) == 0:
        raise ConfigError(
            "backgrounds: no window fits inside a single block without masked pixels; "
            "use larger backgrounds.block_px or a higher backgrounds.max_masked_fraction"
        )
    pick = rng.choice(candidates, size=n_windows, replace=len(candidates) < n_windows)
    rows, cols = np.unravel_index(pick, centres_split.shape)
    lo = window_px // 2
    cube = np.empty((n_windows, images.shape[0], window_px, window_px), np.float32)
    for k, (r, c) in enumerate(zip(rows, cols, strict=True)):
        cube[k] = images[:, r - lo : r - lo + window_px, c - lo : c - lo + window_px]
    table = pd.DataFrame(
        {
            "row_px": rows.astype(np.int32),
            "col_px": cols.astype(np.int32),
            "split": np.array(SPLITS)[centres_split.ravel()[pick]],
        }
    )
    medians = np.median(cube, axis=(2, 3))
    for b, band in enumerate(bands):
        table[f"median_counts_s_{band}"] = medians[:, b]
    return cube, table
