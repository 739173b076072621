"""The window convention, the tile plan of a mosaic and the memory of one tile job.

Window convention (the mock stamps' and background cutouts', see
:mod:`starclusters.backgrounds.cutouts`): the window *centred* on pixel (y, x) of an
S × S-pixel network covers rows y - S//2 … y - S//2 + S - 1 and the same columns, so
the centre pixel is (S//2, S//2) of the window — for the even S of the thesis (64) the
window is [y - S/2, y + S/2). A value map holds at (y, x) what the network says about
the window centred there (thesis §4.2.2: "each pixel having an associated likelihood of
there being a cluster centered on it").

Tiles. The mosaic (H × W pixels) is cut into *cores* of ``tile_px`` × ``tile_px`` pixels,
numbered t = 0 … T-1 row-major; the last row and column of cores are shorter when H or W
is not a multiple of ``tile_px``, so every pixel lies in exactly one core. A tile job
reads its core plus a *halo* of :func:`halo_px` pixels on every side (clipped to the
mosaic): every window a core's pixel needs then lies inside what the job read, unless it
leaves the mosaic (such windows are incomplete and their pixels NaN).

Nothing here imports torch: the workflow reads this module while it parses the
Snakefile, to size the tile jobs' memory (:func:`tile_memory_bytes`); the network's size
comes from its torch-free definition, :mod:`starclusters.model.spec`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from starclusters.backgrounds.cutouts import valid_centres
from starclusters.detect.settings import DetectSettings, mode_that_runs
from starclusters.errors import ConfigError
from starclusters.model.spec import (
    BOTTLENECK_EXPANSION,
    n_head_outputs,
    network_weights,
    spec_defaults,
)

#: Columns of the tile plan (``detect/tiles.parquet``): tile id, core origin and size, px.
PLAN_COLUMNS = ("t", "y0", "x0", "ny", "nx")
#: Resident memory of a tile job besides its data: Python with numpy, astropy, pandas, torch
#: and Snakemake's script runner (measured: 812 MB max RSS after the imports, torch 2.14.1
#: CPU wheel, Linux x86-64), plus torch's thread pools, oneDNN scratch and allocator slack
#: (whole tile jobs of the tiny network peaked at 0.87–1.02 GB), rounded up.
RUNTIME_BYTES = 1000 * 2**20
#: Fast mode: bound on the dense activations of one strip, bytes (fast_strip_rows).
FAST_ACTIVATION_BYTES = 768 * 2**20
#: Fast mode: float32 maps of the widest layer alive at once in a dense bottleneck (its
#: input, three convolution outputs, the shortcut), for fast_strip_rows.
FAST_LIVE_TENSORS = 5
#: Fast mode: the fewest window rows per strip (the bound yields to it for huge networks).
FAST_MIN_ROWS = 8
#: Fast mode: centres per pass through fc, heads and decoding (the probability grids of
#: 4,096 centres take 4 × 4,096 × 2,836 × 4 B ≈ 190 MB at the thesis' grid sizes).
FAST_HEAD_BATCH = 4096
#: Value maps a tile job holds (CLASS, VISIBILITY, LOG_AGE, LOG_MASS, AV, LOG_RH).
N_MAPS = 6


def window_start(centre, window_px: int):
    """First row (or column) of the window centred on ``centre`` (int or int array), px."""
    return centre - window_px // 2


def halo_px(window_px: int, step_px: int = 1) -> int:
    """Halo read around a core on each side, px: ``window_px // 2 + step_px``.

    A core pixel takes its values from the nearest evaluated centre (:func:`nearest_centre`),
    at most ``step_px - 1`` pixels outside the core, and that centre's window reaches
    S//2 pixels before and S - S//2 - 1 after it; S//2 + step_px covers both sides.
    """
    return window_px // 2 + step_px


def nearest_centre(coords, step_px: int) -> np.ndarray:
    """The evaluated window centre nearest each pixel coordinate (rows or columns), px.

    With a step of ``step_px`` the network is evaluated at the pixels whose row and column
    are multiples of ``step_px`` on the mosaic grid (0, step, 2·step, …); the pixel at
    coordinate c takes the values of centre ``step · ⌊(c + ⌊step/2⌋) / step⌋``, the nearest
    one (a tie, possible for an even step, goes to the larger coordinate). With step 1
    every pixel is its own centre. The grid is global, so tiles agree at their borders.
    """
    coords = np.asarray(coords, dtype=np.int64)
    return step_px * ((coords + step_px // 2) // step_px)


@dataclass(frozen=True)
class Tile:
    """One tile: id ``t`` and its core, rows y0 … y0+ny-1 and columns x0 … x0+nx-1, px."""

    t: int
    y0: int
    x0: int
    ny: int
    nx: int

    @property
    def core(self) -> tuple[slice, slice]:
        """The core as (row, column) slices of the mosaic."""
        return slice(self.y0, self.y0 + self.ny), slice(self.x0, self.x0 + self.nx)

    def region(self, shape: Sequence[int], halo: int) -> tuple[int, int, int, int]:
        """(ry0, ry1, rx0, rx1): the core grown by ``halo`` px, clipped to a mosaic of ``shape``."""
        height, width = shape
        return (
            max(self.y0 - halo, 0),
            min(self.y0 + self.ny + halo, height),
            max(self.x0 - halo, 0),
            min(self.x0 + self.nx + halo, width),
        )


def plan_tiles(shape: Sequence[int], tile_px: int) -> pd.DataFrame:
    """The tile plan of a mosaic of ``shape`` (H, W) px: columns t, y0, x0, ny, nx (int64).

    Cores of ``tile_px`` px, row-major, the last ones shorter; they cover every pixel once.
    """
    height, width = (int(v) for v in shape)
    if height < 1 or width < 1:
        raise ValueError(f"mosaic shape {tuple(shape)} has no pixels")
    if not isinstance(tile_px, int | np.integer) or tile_px < 1:
        raise ConfigError(f"detect.tile_px: must be a positive integer, got {tile_px!r}")
    rows = []
    for y0 in range(0, height, tile_px):
        for x0 in range(0, width, tile_px):
            ny, nx = min(tile_px, height - y0), min(tile_px, width - x0)
            rows.append((len(rows), y0, x0, ny, nx))
    return pd.DataFrame(rows, columns=list(PLAN_COLUMNS)).astype(np.int64)


def tiles_of(plan: pd.DataFrame) -> list[Tile]:
    """The plan's rows as :class:`Tile` objects, in tile order."""
    return [Tile(*(int(row[c]) for c in PLAN_COLUMNS)) for _, row in plan.iterrows()]


def check_plan(plan: pd.DataFrame, shape: Sequence[int], where: str = "tile plan") -> None:
    """ValueError unless ``plan`` numbers its tiles 0 … T-1 and covers ``shape`` exactly once."""
    if list(plan.columns[: len(PLAN_COLUMNS)]) != list(PLAN_COLUMNS):
        raise ValueError(f"{where}: columns {list(plan.columns)}, expected {list(PLAN_COLUMNS)}")
    if list(plan["t"]) != list(range(len(plan))):
        raise ValueError(f"{where}: tiles are not numbered 0 … {len(plan) - 1} in order")
    count = np.zeros(tuple(int(v) for v in shape), np.int32)
    for tile in tiles_of(plan):
        if tile.ny < 1 or tile.nx < 1 or tile.y0 < 0 or tile.x0 < 0:
            raise ValueError(f"{where}: tile {tile.t} is empty or starts off the mosaic")
        count[tile.core] += 1
    if count.sum() != count.size or not (count == 1).all():
        raise ValueError(f"{where}: the cores do not cover the {tuple(shape)} mosaic exactly once")


# --------------------------------------------------------------------------- memory


def tile_memory_bytes(
    *,
    n_bands: int,
    window_px: int,
    tile_px: int,
    step_px: int,
    batch_size: int,
    n_outputs: int,
    stage_blocks: Sequence[int],
    stage_channels: Sequence[int],
    stage_widths: Sequence[int] | None,
    stem_channels: int,
    fc_width: int,
    mode: str = "exact",
) -> dict[str, int]:
    """Peak host memory of one tile job, bytes, by term, with "total".

    With R = tile_px + 2·halo (:func:`halo_px`), S = window_px, B = n_bands, N = batch_size,
    K = n_outputs (all head outputs, A·E·M + R_h + 2 + V):

    - runtime: :data:`RUNTIME_BYTES` (Python with numpy, astropy, pandas, torch);
    - weights: 2 × 4 B × :func:`~starclusters.model.spec.network_weights` (the state dict
      and the module);
    - region: R² × (4·B + 12) B — the bands (float32), the mask, three boolean maps and
      the int32 integral image that finds complete windows;
    - maps: 6 maps × 4 B × (tile_px² + (tile_px/step + 2)²) — the core and the grid of
      evaluated centres — plus 24 B per evaluated centre (its indices);
    - batch: 4 copies × N·B·S² × 4 B (the gathered windows, the tensor, preprocessing);
    - activations: 3 live tensors × N × 4 B × the largest layer output (conv1: stem·S²; a
      stage: max(channels, width) · (S / 2^(i+1))²) — no autograd graph is kept;
    - outputs: 4 copies × N·K × 4 B (logits, probabilities, decoding).

    mode "fast" (:mod:`starclusters.detect.fast`) replaces the last three: batch — the
    region preprocessed (R² × B × 4 B, twice); activations — :data:`FAST_LIVE_TENSORS`
    float32 maps of the widest layer over one strip (:func:`fast_strip_rows`: R columns,
    rows + S − 1 rows; at most :data:`FAST_ACTIVATION_BYTES` unless the strip is at its
    minimum), plus the strip's pooled features; outputs: as above with N =
    :data:`FAST_HEAD_BATCH`.

    Runtime and weights do not grow with the tile; the rest grows with tile_px² and
    batch_size. On a GPU the batch, activations and outputs live in GPU memory instead
    (bf16 activations); the host then needs about the other terms plus one batch.
    """
    halo = halo_px(window_px, step_px)
    region = (tile_px + 2 * halo) ** 2
    centres = (math.ceil(tile_px / step_px) + 2) ** 2
    widths = stage_widths or [c // BOTTLENECK_EXPANSION for c in stage_channels]
    largest = stem_channels * window_px**2
    for i, (channels, width) in enumerate(zip(stage_channels, widths, strict=True)):
        side = math.ceil(window_px / 2 ** (i + 1))
        largest = max(largest, max(channels, width) * side * side)
    weights = network_weights(
        n_bands,
        n_outputs,
        stage_blocks=stage_blocks,
        stage_channels=stage_channels,
        stage_widths=stage_widths,
        stem_channels=stem_channels,
        fc_width=fc_width,
    )
    terms = {
        "runtime": RUNTIME_BYTES,
        "weights": 2 * 4 * weights,
        "region": region * (4 * n_bands + 12),
        "maps": N_MAPS * 4 * (tile_px**2 + centres) + 24 * centres,
        "batch": 4 * batch_size * n_bands * window_px**2 * 4,
        "activations": 3 * batch_size * 4 * largest,
        "outputs": 4 * batch_size * n_outputs * 4,
    }
    if mode == "fast":
        side = tile_px + 2 * halo
        channels = widest_channels(stem_channels, stage_channels, widths)
        rows = fast_strip_rows(window_px, side, channels)
        strip = FAST_LIVE_TENSORS * 4 * channels * side * (rows + window_px - 1)
        pooled = 4 * stage_channels[-1] * side * rows
        terms["batch"] = 2 * region * n_bands * 4
        terms["activations"] = strip + pooled
        terms["outputs"] = 4 * FAST_HEAD_BATCH * n_outputs * 4
    terms["total"] = sum(terms.values())
    return terms


def widest_channels(
    stem_channels: int, stage_channels: Sequence[int], stage_widths: Sequence[int]
) -> int:
    """Channels of the network's widest feature map (stem, bottleneck widths, stage outputs)."""
    return max(stem_channels, *stage_channels, *stage_widths)


def fast_strip_rows(window_px: int, region_cols: int, largest_channels: int) -> int:
    """Window rows per strip of the fast mode, so its activations fit FAST_ACTIVATION_BYTES.

    A strip of r window rows reads r + S - 1 image rows of ``region_cols`` columns; the
    dense pass holds about :data:`FAST_LIVE_TENSORS` float32 maps of the widest layer's
    ``largest_channels`` at that size. At least :data:`FAST_MIN_ROWS` rows.
    """
    per_row = FAST_LIVE_TENSORS * 4 * largest_channels * region_cols
    return max(FAST_MIN_ROWS, FAST_ACTIVATION_BYTES // per_row - (window_px - 1))


def tile_memory_mb(config: Mapping) -> int:
    """Memory to request for a tile job of ``config`` (sections bands, window_px, model,
    detect), MB: :func:`tile_memory_bytes` plus 25 % for allocator slack, rounded up."""
    model = {**spec_defaults(), **config.get("model", {})}
    detect = config["detect"]
    terms = tile_memory_bytes(
        n_bands=len(config["bands"]),
        window_px=config["window_px"],
        tile_px=detect["tile_px"],
        step_px=detect["step_px"],
        batch_size=detect["batch_size"],
        # the mode the job will run: auto is fast for a dense-ready network (whose strips
        # need more memory than exact's batches), exact otherwise
        mode=mode_that_runs(detect.get("mode", DetectSettings.mode), model),
        n_outputs=n_head_outputs(model.get("grids")),
        stage_blocks=model["stage_blocks"],
        stage_channels=model["stage_channels"],
        stage_widths=model["stage_widths"],
        stem_channels=model["stem_channels"],
        fc_width=model["fc_width"],
    )
    return math.ceil(1.25 * terms["total"] / 2**20)


def complete_windows(blank: np.ndarray, window_px: int) -> np.ndarray:
    """(h, w) bool: the window centred on the pixel lies inside ``blank`` and has no blank pixel.

    blank: (h, w) bool, True where a pixel has no data (mask bit 1, or NaN in a band).
    Uses the background cutouts' :func:`~starclusters.backgrounds.cutouts.valid_centres`
    (one block over the whole array, no masked pixel allowed), so detection windows and
    training backgrounds follow one convention. Such windows are the only ones the network
    saw in training.
    """
    blank = np.asarray(blank, dtype=bool)
    one_block = np.zeros((1, 1), np.int8)
    return valid_centres(blank, one_block, max(blank.shape), window_px, 0.0) == 0
