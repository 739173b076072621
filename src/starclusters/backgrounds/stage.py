"""The background stage's products: one shard of cutouts from the prepared mosaic."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
from astropy.wcs import WCS

from starclusters.backgrounds.cutouts import block_splits, draw_windows, valid_centres
from starclusters.errors import ConfigError, InputFileError
from starclusters.io import open_fits

#: Stage number mixed into seeds so that stages never share random streams.
BACKGROUND_STAGE = 4


def build_background_shard(
    band_paths: Sequence[str],
    mask_path: str,
    bands: Sequence[str],
    window_px: int,
    settings: Mapping,
    seed: int,
    shard: int,
):
    """Cutouts (N, B, S, S) float32, their table and FITS header cards for shard ``shard``.

    The table's ``attrs["exptime_s"]`` holds each band's exposure time (s), which
    :func:`starclusters.mocks.compose.compose` needs; the script stores it in the
    Parquet metadata.

    band_paths: the prepared mosaic, one file per band on the common grid;
    mask_path: its mask (non-zero = masked); settings: the ``backgrounds`` config
    section. The block map of the train/val/test splits depends only on the
    mosaic, ``settings`` and ``seed`` — every shard sees the same one.
    """
    images, wcs, exptime_s = [], None, {}
    for band, path in zip(bands, band_paths, strict=True):
        with open_fits(path, memmap=True) as hdul:
            images.append(np.asarray(hdul[0].data, dtype=np.float32))
            wcs = wcs or WCS(hdul[0].header).celestial
            if "EXPTIME" not in hdul[0].header:
                raise InputFileError(
                    f"{path}: no EXPTIME in the header; compose() needs it for photon noise"
                )
            exptime_s[band] = float(hdul[0].header["EXPTIME"])
    images = np.stack(images)
    with open_fits(mask_path) as hdul:
        mask = np.asarray(hdul[0].data) != 0
    if mask.shape != images.shape[1:]:
        raise InputFileError(
            f"{mask_path}: mask shape {mask.shape} differs from the mosaic's {images.shape[1:]}"
        )
    # NaNs (outside a band's footprint) must be masked whatever the mask says
    mask |= ~np.isfinite(images).all(axis=0)
    if min(mask.shape) < window_px:
        # with mosaic.source: files the size is known only now (the config check cannot)
        raise ConfigError(
            f"window_px: the mosaic {mask_path} is {mask.shape[0]} x {mask.shape[1]} px, "
            f"smaller than one {window_px}-px window; use larger images (or a mosaic.files "
            "region that covers more) or a smaller window_px (and retrain)"
        )
    block_px = settings["block_px"]
    blocks = block_splits(
        mask.shape,
        block_px,
        settings["split_fractions"],
        np.random.default_rng([seed, BACKGROUND_STAGE]),
    )
    centres = valid_centres(mask, blocks, block_px, window_px, settings["max_masked_fraction"])
    rng = np.random.default_rng([seed, BACKGROUND_STAGE, shard + 1])
    cube, table = draw_windows(images, list(bands), centres, settings["per_shard"], window_px, rng)
    sky = wcs.pixel_to_world(table["col_px"].to_numpy(), table["row_px"].to_numpy())
    table.insert(2, "ra_deg", sky.ra.deg)
    table.insert(3, "dec_deg", sky.dec.deg)
    table["shard"] = shard
    table.attrs["exptime_s"] = exptime_s
    header = {
        "BUNIT": ("counts/s", "per native pixel"),
        "BANDS": (",".join(bands), "bands along axis 2"),
        "SHARD": (shard, "shard index"),
        "COMMENT": "Axes (cutout, band, y, x); positions and splits in shard_<i>.parquet.",
    }
    return cube, table, header
