"""The detection stage's maps from files: plan, one tile, merge (workflow) and whole images (CLI).

Workflow: :func:`write_plan` (rule detect_plan, a checkpoint: the number of tiles follows
from the mosaic's shape), :func:`detect_tile` (rule detect_tile, one job per tile) and
:func:`merge_maps` (rule merge_maps). A user's own images: :func:`detect_images` (the
``starclusters detect`` command) runs the same per-tile function tile after tile into a
temporary folder and merges with the same :func:`~starclusters.detect.maps.merge_tiles`.

Modes. :data:`MODES` maps ``detect.mode`` to the function that makes one tile's core
maps from the region read around it (:func:`mode_function`); every mode gets the same
inputs (see :func:`tile_maps`) and its maps get the same NaN policy, so a second mode (the
fully convolutional "fast" mode) plugs in by adding an entry (and its halo to
:func:`starclusters.detect.tiles.halo_px` if it needs more).

Importing this module imports no torch: the plan and the merge (rules detect_plan,
merge_maps, artificial_maps) run without it, and the functions that load a model import
it when they run (torch and torchvision take ~4 s of each job's start).

Before any window is read the model is checked against the config (bands, window, output
grids, pixel scale; :func:`starclusters.model.checkpoint.check_checkpoint`), and ``detect.mode:
auto`` becomes the mode that runs it (:func:`starclusters.detect.settings.resolve_mode`).
"""

from __future__ import annotations

import hashlib
import importlib
import logging
import os
import resource
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from astropy.wcs import WCS
from astropy.wcs.utils import proj_plane_pixel_scales

from starclusters.detect.maps import merge_tiles, provenance_cards, write_tile
from starclusters.detect.progress import WindowProgress
from starclusters.detect.settings import DetectSettings, resolve_mode
from starclusters.detect.tiles import (
    Tile,
    check_plan,
    complete_windows,
    halo_px,
    plan_tiles,
    tile_memory_bytes,
    tiles_of,
)
from starclusters.errors import ConfigError, InputFileError
from starclusters.io import open_fits, read_fits_header, read_table, write_table
from starclusters.model.spec import n_head_outputs
from starclusters.mosaic.prepare import MASK_BLANK

if TYPE_CHECKING:
    from starclusters.model.codec import ParameterGrids

log = logging.getLogger(__name__)

#: detect.mode -> "module:function" of the function that makes one tile's core maps
#: (signature of :func:`starclusters.detect.exact.exact_tile_maps`), imported when used.
MODES: dict[str, str] = {
    "exact": "starclusters.detect.exact:exact_tile_maps",
    "fast": "starclusters.detect.fast:fast_tile_maps",
}


def mode_function(mode: str) -> Callable[..., dict[str, np.ndarray]]:
    """The tile function of ``detect.mode`` ``mode`` (:data:`MODES`), imported now."""
    module, name = MODES[mode].split(":")
    return getattr(importlib.import_module(module), name)


#: Relative difference of pixel scales taken as equal (WCS round-off), for user images.
PIXEL_SCALE_RTOL = 1e-6


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file (recorded with the maps, compared when tiles are merged)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(2**20), b""):
            digest.update(block)
    return digest.hexdigest()


def load_detector(
    model_path: str | os.PathLike,
    bands: Sequence[str],
    window_px: int,
    grids: ParameterGrids,
    pixel_scale_arcsec: float,
    device: str = "cpu",
    mode: str = "exact",
):
    """(model, grids, meta) of ``model_path``, refused unless it fits the data and the mode.

    ConfigError naming the key if the model was trained on other bands, window, output
    grids or pixel scale (:func:`starclusters.model.checkpoint.check_checkpoint`), if it is
    the regression network (thesis ch. 2), which has no class or visibility output, or if
    ``mode`` is "fast" and the network is not dense-ready.
    """
    from starclusters.model.checkpoint import load_model

    model, model_grids, meta = load_model(model_path, device)
    check_detector(model, meta, bands, window_px, grids, pixel_scale_arcsec, model_path, mode)
    return model, model_grids, meta


def check_detector(
    model,
    meta: Mapping,
    bands: Sequence[str],
    window_px: int,
    grids: ParameterGrids,
    pixel_scale_arcsec: float,
    model_path: str | os.PathLike = "the model",
    mode: str = "exact",
) -> None:
    """The checks of :func:`load_detector` on a loaded model and its meta."""
    from starclusters.model.checkpoint import check_checkpoint

    check_checkpoint(meta, bands, window_px, grids, pixel_scale_arcsec)
    DetectSettings(mode=mode).check_model(meta["spec"], str(model_path))
    if model.spec.head != "softmax":
        raise ConfigError(
            f"model.head: {model_path} is the {model.spec.head} network, which has no class "
            "or visibility output to detect clusters with; train the softmax network"
        )


def mosaic_geometry(mask_path: str | os.PathLike) -> tuple[tuple[int, int], WCS]:
    """((H, W), celestial WCS) of the mosaic, from its mask's header (no pixels read)."""
    path = Path(mask_path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file; run the mosaic stage first")
    header = read_fits_header(path)
    return (int(header["NAXIS2"]), int(header["NAXIS1"])), WCS(header).celestial


def read_region(
    band_paths: Sequence[str | os.PathLike],
    mask_path: str | os.PathLike | None,
    region: tuple[int, int, int, int],
    shape: tuple[int, int],
    bands: Sequence[str] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(images (B, h, w) float32 counts/s, mask (h, w) uint8) of rows ry0:ry1, columns rx0:rx1.

    Only the region is read (memory-mapped files). Every file must be on the mosaic grid
    ``shape``, and a band file's BAND card, where present, must name the band expected at its
    position (``bands``): InputFileError otherwise. Without a mask, an all-zero one.
    """
    ry0, ry1, rx0, rx1 = region
    images = np.empty((len(band_paths), ry1 - ry0, rx1 - rx0), np.float32)
    for b, path in enumerate(band_paths):
        with open_fits(path, memmap=True) as hdul:
            data, header = hdul[0].data, hdul[0].header
            if data is None or data.shape != tuple(shape):
                found = None if data is None else data.shape
                raise InputFileError(
                    f"{path}: image of shape {found}, the mosaic is {tuple(shape)}; give the "
                    "bands on one common grid (the mosaic stage's outputs)"
                )
            if bands is not None and "BAND" in header and header["BAND"].strip() != bands[b]:
                raise InputFileError(
                    f"{path}: BAND = {header['BAND']!r} but band {b} should be {bands[b]}; "
                    "give the images in the model's band order"
                )
            images[b] = data[ry0:ry1, rx0:rx1]
    mask = np.zeros(images.shape[1:], np.uint8)
    if mask_path is not None:
        with open_fits(mask_path, memmap=True) as hdul:
            data = hdul[0].data
            if data is None or data.shape != tuple(shape):
                raise InputFileError(
                    f"{mask_path}: mask of shape {None if data is None else data.shape}, the "
                    f"mosaic is {tuple(shape)}; use the mask of these images"
                )
            mask[:] = data[ry0:ry1, rx0:rx1]
    return images, mask


def usable_pixels(
    images: np.ndarray, mask: np.ndarray, window_px: int
) -> tuple[np.ndarray, np.ndarray]:
    """(blank, usable), both (h, w) bool, of a region read around a tile.

    images (B, h, w) counts/s, mask (h, w) uint8 (bits of starclusters.mosaic.prepare).
    blank: no data (mask bit 1 or a NaN in any band); usable: the pixel may get values —
    unmasked (mask 0) and its window_px window complete (:func:`complete_windows`).
    """
    blank = (mask & MASK_BLANK).astype(bool) | ~np.isfinite(images).all(axis=0)
    return blank, (mask == 0) & complete_windows(blank, window_px)


def tile_maps(
    images: np.ndarray,
    mask: np.ndarray,
    origin: tuple[int, int],
    tile: Tile,
    model,
    grids: ParameterGrids,
    settings: DetectSettings,
    progress: WindowProgress | None = None,
) -> dict[str, np.ndarray]:
    """One tile's core maps {estimate: (ny, nx) float32} with the mode of ``settings``.

    images (B, h, w) counts/s and mask (h, w) uint8 (bits of starclusters.mosaic.prepare)
    of the region read around the tile, whose first pixel is ``origin`` (row, column) on
    the mosaic. A pixel gets values when it is unmasked (mask 0) and its window is complete
    (inside the mosaic, no blank pixel: mask bit 1 or a NaN in any band); it is NaN
    otherwise, whatever the mode. progress: the windows' counter shared by an image's
    tiles (default: the tile's own).
    """
    from starclusters.model.inference import ESTIMATES

    window_px = model.spec.window_px
    blank, usable = usable_pixels(images, mask, window_px)
    # blank pixels never enter a window that is evaluated; zero them so no NaN is touched
    images = np.where(blank, np.float32(0), images) if blank.any() else images
    maps = mode_function(settings.mode)(
        images,
        usable,
        origin,
        tile,
        model,
        grids,
        window_px=window_px,
        step_px=settings.step_px,
        batch_size=settings.batch_size,
        device=settings.device,
        progress=progress,
    )
    oy, ox = tile.y0 - origin[0], tile.x0 - origin[1]
    wanted = usable[oy : oy + tile.ny, ox : ox + tile.nx]
    for key in ESTIMATES:
        maps[key][~wanted] = np.nan
    return maps


def memory_estimate(meta: Mapping, settings: DetectSettings) -> dict[str, int]:
    """:func:`~starclusters.detect.tiles.tile_memory_bytes` for a loaded model's meta."""
    spec = meta["spec"]
    return tile_memory_bytes(
        n_bands=spec["in_bands"],
        window_px=spec["window_px"],
        tile_px=settings.tile_px,
        step_px=settings.step_px,
        batch_size=settings.batch_size,
        mode=settings.mode,
        n_outputs=n_head_outputs({k: {"bins": len(v)} for k, v in meta["grids"].items()}),
        stage_blocks=spec["stage_blocks"],
        stage_channels=spec["stage_channels"],
        stage_widths=spec["stage_widths"],
        stem_channels=spec["stem_channels"],
        fc_width=spec["fc_width"],
    )


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux


def _run_tile(
    tile: Tile,
    band_paths: Sequence[str | os.PathLike],
    mask_path: str | os.PathLike | None,
    shape: tuple[int, int],
    bands: Sequence[str],
    wcs: WCS | None,
    model,
    grids: ParameterGrids,
    cards: Mapping[str, tuple],
    settings: DetectSettings,
    out_path: str | os.PathLike,
    progress: WindowProgress | None = None,
) -> None:
    region = tile.region(shape, halo_px(model.spec.window_px, settings.step_px))
    images, mask = read_region(band_paths, mask_path, region, shape, bands)
    origin = (region[0], region[2])
    maps = tile_maps(images, mask, origin, tile, model, grids, settings, progress)
    write_tile(out_path, maps, tile, wcs, cards)


def count_windows(
    tiles: Sequence[Tile],
    band_paths: Sequence[str | os.PathLike],
    mask_path: str | os.PathLike | None,
    shape: tuple[int, int],
    bands: Sequence[str],
    window_px: int,
    step_px: int,
) -> int:
    """Windows the network evaluates for ``tiles`` of the mosaic ``shape`` (H, W) px: the
    centres on the step grid each tile needs (:meth:`~starclusters.detect.exact.Centres.of_tile`)
    from the region read around it (:func:`read_region`), for the progress' total."""
    from starclusters.detect.exact import Centres

    total = 0
    halo = halo_px(window_px, step_px)
    for tile in tiles:
        region = tile.region(shape, halo)
        images, mask = read_region(band_paths, mask_path, region, shape, bands)
        _, usable = usable_pixels(images, mask, window_px)
        total += Centres.of_tile(usable, (region[0], region[2]), tile, window_px, step_px).n
    return total


def write_plan(mask_path: str | os.PathLike, tile_px: int, out_path: str | os.PathLike) -> int:
    """Write the tile plan of the mosaic of ``mask_path`` (rule detect_plan); returns T."""
    shape, _ = mosaic_geometry(mask_path)
    plan = plan_tiles(shape, tile_px)
    write_table(out_path, plan, {"mosaic_shape": list(shape), "tile_px": tile_px})
    log.info("%d × %d mosaic: %d tiles of %d px", *shape, len(plan), tile_px)
    return len(plan)


def detect_tile(
    band_paths: Sequence[str | os.PathLike],
    mask_path: str | os.PathLike,
    model_path: str | os.PathLike,
    plan_path: str | os.PathLike,
    t: int,
    out_path: str | os.PathLike,
    config: Mapping,
) -> None:
    """Maps of tile ``t`` of the plan, written to ``out_path`` (rule detect_tile).

    config: bands, window_px, pixel_scale_arcsec, model.grids and the ``detect`` section.
    The model is checked against it first. Memory: see
    :func:`~starclusters.detect.tiles.tile_memory_bytes` (logged with the measured peak).
    """
    from starclusters.model.codec import ParameterGrids

    settings = DetectSettings.from_config(config["detect"])
    bands = list(config["bands"])
    grids = ParameterGrids.from_config(config.get("model", {}).get("grids"))
    model, grids, meta = load_detector(
        model_path,
        bands,
        config["window_px"],
        grids,
        config["pixel_scale_arcsec"],
        settings.device,
        settings.mode,
    )
    settings = resolve_mode(settings, meta["spec"], str(model_path))
    shape, wcs = mosaic_geometry(mask_path)
    plan = read_table(plan_path)
    check_plan(plan, shape, str(plan_path))
    if not 0 <= t < len(plan):
        raise InputFileError(f"{plan_path}: no tile {t} in a plan of {len(plan)} tiles")
    tile = tiles_of(plan)[t]
    cards = provenance_cards(
        mode=settings.mode,
        step_px=settings.step_px,
        window_px=config["window_px"],
        bands=bands,
        shape=shape,
        model_path=model_path,
        model_sha256=file_sha256(model_path),
    )
    _run_tile(
        tile, band_paths, mask_path, shape, bands, wcs, model, grids, cards, settings, out_path
    )
    estimate = memory_estimate(meta, settings)["total"] / 2**20
    log.info("tile %d: peak memory %.0f MB (estimate %.0f MB)", t, _peak_rss_mb(), estimate)


def merge_maps(
    tile_paths: Sequence[str | os.PathLike],
    plan_path: str | os.PathLike,
    mask_path: str | os.PathLike,
    out_path: str | os.PathLike,
    tile_px: int | None = None,
) -> None:
    """Merge the tile files into ``out_path`` with the mosaic's WCS (rule merge_maps)."""
    shape, wcs = mosaic_geometry(mask_path)
    plan = read_table(plan_path)
    check_plan(plan, shape, str(plan_path))
    extra = {"TILEPX": (tile_px, "px, side of a tile's core")} if tile_px else None
    merge_tiles(tile_paths, plan, wcs, out_path, extra)
    log.info("merged %d tiles into %s", len(plan), out_path)


def image_bands(band_paths: Sequence[str | os.PathLike], model_bands: Sequence[str]) -> list:
    """Bands of the images from their BAND cards; the model's where a card is missing."""
    bands = []
    for path, expected in zip(band_paths, model_bands, strict=False):
        band = read_fits_header(path).get("BAND")
        if band is None:
            log.warning("%s: no BAND card; taken to be %s (the model's order)", path, expected)
        bands.append(str(band).strip() if band is not None else expected)
    return bands


def _pixel_scale_arcsec(wcs: WCS) -> float:
    return float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)


#: Largest offset (px) between two bands' pixel grids still taken as one grid.
GRID_TOLERANCE_PX = 0.01


def image_grid(
    band_paths: Sequence[str | os.PathLike], scale_arcsec: float
) -> tuple[tuple[int, int], WCS | None]:
    """((H, W), celestial WCS or None) of the images, refused unless every band is on one grid.

    Every image must be a 2-D FITS image of the first one's shape; if the first has a
    celestial WCS, every band must have one with pixels of ``scale_arcsec`` (the model's;
    ConfigError naming pixel_scale_arcsec) and the same pixel grid as the first (corners
    and centre within :data:`GRID_TOLERANCE_PX`; InputFileError naming the file). Only
    headers are read.
    """
    shape, first = None, None
    for i, path in enumerate(band_paths):
        header = read_fits_header(path)
        if header.get("NAXIS") != 2:
            raise InputFileError(
                f"{path}: NAXIS = {header.get('NAXIS')}, expected a 2-D image in the primary "
                "HDU (one band per file)"
            )
        found = (int(header["NAXIS2"]), int(header["NAXIS1"]))
        if shape is None:
            shape = found
        elif found != shape:
            raise InputFileError(
                f"{path}: image of shape {found}, {band_paths[0]} is {shape}; give the bands "
                "on one common grid (the mosaic stage's outputs)"
            )
        wcs = WCS(header)
        wcs = wcs.celestial if wcs.has_celestial else None
        if i == 0:
            first = wcs
            if wcs is None:
                log.warning(
                    "%s: no celestial WCS; pixel scales and grids not checked, maps without WCS",
                    path,
                )
        if first is None:
            continue
        if wcs is None:
            raise InputFileError(
                f"{path}: no celestial WCS, {band_paths[0]} has one; give every band the WCS "
                "of the common grid"
            )
        scale = _pixel_scale_arcsec(wcs)
        if not np.isclose(scale, scale_arcsec, rtol=PIXEL_SCALE_RTOL, atol=0):
            raise ConfigError(
                f"pixel_scale_arcsec: {path} has {scale:.6g}″ pixels, the model was "
                f"trained on {scale_arcsec:g}″; resample the images (the mosaic stage) first"
            )
        ny, nx = shape
        xs = np.array([0.0, nx - 1.0, 0.0, nx - 1.0, (nx - 1) / 2])
        ys = np.array([0.0, 0.0, ny - 1.0, ny - 1.0, (ny - 1) / 2])
        x, y = wcs.world_to_pixel(first.pixel_to_world(xs, ys))
        offset = float(np.max(np.hypot(np.asarray(x) - xs, np.asarray(y) - ys)))
        if not offset <= GRID_TOLERANCE_PX:
            raise InputFileError(
                f"{path}: its pixels are up to {offset:.3g} px off those of {band_paths[0]}; "
                "give the bands on one common grid (reproject them, e.g. with the mosaic stage)"
            )
    return shape, first


#: Rows read at a time when a band's values are checked.
CHECK_ROWS = 512


def check_band_values(path: str | os.PathLike, band: str) -> None:
    """Refuse a band without usable pixels; warn if most of its pixels are negative.

    InputFileError naming the file if the image has no finite pixel (empty or all NaN),
    only zeros, or no positive pixel (a sky-subtracted image in counts/s has the galaxy
    above zero). Read CHECK_ROWS rows at a time (memory-mapped).
    """
    finite = nonzero = positive = negative = 0
    with open_fits(path, memmap=True) as hdul:
        data = hdul[0].data
        if data is None or data.size == 0:
            raise InputFileError(f"{path}: band {band} holds no image (empty primary HDU)")
        for y0 in range(0, data.shape[0], CHECK_ROWS):
            rows = np.asarray(data[y0 : y0 + CHECK_ROWS], dtype=np.float32)
            ok = np.isfinite(rows)
            values = rows[ok]
            finite += values.size
            nonzero += int(np.count_nonzero(values))
            positive += int((values > 0).sum())
            negative += int((values < 0).sum())
    what = None
    if finite == 0:
        what = "every pixel is NaN or infinite"
    elif nonzero == 0:
        what = "every pixel is zero"
    elif positive == 0:
        what = "no pixel is positive"
    if what:
        raise InputFileError(
            f"{path}: band {band} has no usable pixel ({what}); give the band's image in "
            "counts/s (the mosaic stage's output)"
        )
    if negative > positive:
        log.warning(
            "%s: band %s: %d of %d pixels are negative; check its sign and sky level "
            "(the network expects counts/s with the sky near zero and sources above it)",
            path,
            band,
            negative,
            finite,
        )


def detect_images(
    model_path: str | os.PathLike,
    band_paths: Sequence[str | os.PathLike],
    out_path: str | os.PathLike,
    *,
    mask_path: str | os.PathLike | None = None,
    bands: Sequence[str] | None = None,
    settings: DetectSettings | None = None,
) -> None:
    """Value maps of a user's images with a trained model (the ``starclusters detect`` command).

    band_paths: one FITS image per band on one common grid (counts/s, the model's band
    order and pixel scale, e.g. the mosaic stage's outputs); mask_path: optional uint8 mask
    on that grid (bit 1 blank, any bit: no value); bands: the images' bands (default: their
    BAND cards, else the model's). The model must fit the images (bands, pixel scale from
    the WCS): ConfigError before any window is read; every band must be on the first's grid
    (:func:`image_grid`) and hold usable pixels (:func:`check_band_values`): InputFileError
    naming the file. settings.mode auto: fast for a dense-ready model, else exact
    (:func:`~starclusters.detect.settings.resolve_mode`, logged). Tiles run one after the
    other in this process, into a temporary folder beside ``out_path``, and are merged into
    it; the windows of all tiles are counted first, and their progress (done / total, ETA)
    is shown as a bar on a terminal and logged every
    :data:`~starclusters.detect.progress.LOG_EVERY_S` s
    (:class:`~starclusters.detect.progress.WindowProgress`).
    """
    from starclusters.model.checkpoint import load_model

    settings = settings or DetectSettings()
    model, grids, meta = load_model(model_path, settings.device)
    settings = resolve_mode(settings, meta["spec"], str(model_path))
    bands = list(bands) if bands is not None else image_bands(band_paths, meta["bands"])
    scale = float(meta["pixel_scale_arcsec"])
    shape, wcs = image_grid(band_paths, scale)
    if len(band_paths) != len(meta["bands"]):
        raise ConfigError(
            f"bands: {len(band_paths)} images given, the model takes {len(meta['bands'])} "
            f"({', '.join(meta['bands'])})"
        )
    check_detector(model, meta, bands, meta["window_px"], grids, scale, model_path, settings.mode)
    for path, band in zip(band_paths, bands, strict=False):
        check_band_values(path, band)
    cards = provenance_cards(
        mode=settings.mode,
        step_px=settings.step_px,
        window_px=meta["window_px"],
        bands=bands,
        shape=shape,
        model_path=model_path,
        model_sha256=file_sha256(model_path),
    )
    plan = plan_tiles(shape, settings.tile_px)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{out_path.name}.tiles.", dir=out_path.parent))
    try:
        tiles = tiles_of(plan)
        paths = [scratch / f"{tile.t}.fits" for tile in tiles]
        window_px, step_px = int(meta["window_px"]), settings.step_px
        total = count_windows(tiles, band_paths, mask_path, shape, bands, window_px, step_px)
        log.info(
            "%d × %d px, %d tile(s) of %d px, %s mode, step %d px: %d windows",
            *shape,
            len(tiles),
            settings.tile_px,
            settings.mode,
            step_px,
            total,
        )
        with WindowProgress(total, "detection") as progress:
            for tile, path in zip(tiles, paths, strict=True):
                args = (tile, band_paths, mask_path, shape, bands, wcs, model, grids, cards)
                _run_tile(*args, settings, path, progress)
            log.info("%s", progress.line())
        extra = {"TILEPX": (settings.tile_px, "px, side of a tile's core")}
        merge_tiles(paths, plan, wcs, out_path, extra)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    estimate = memory_estimate(meta, settings)["total"] / 2**20
    log.info(
        "%d tiles merged into %s; peak memory %.0f MB (per-tile estimate %.0f MB)",
        len(plan),
        out_path,
        _peak_rss_mb(),
        estimate,
    )
