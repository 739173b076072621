"""The value maps as FITS: one file per tile, merged into ``maps.fits`` for the mosaic.

A maps file has an empty primary HDU whose header records how the maps were made
(:func:`provenance_cards`: mode, step, window, bands, mosaic shape, model file and its
SHA-256) and one float32 image extension per map (:data:`MAPS`), each with the WCS of
the pixels it covers and its unit in BUNIT. NaN marks pixels without a value (masked,
or the window is incomplete). A tile file holds its core only, with the core's WCS and
its position (TILE, TILEY0, TILEX0) in the primary header; :func:`merge_tiles` checks
that the tiles belong together and cover the mosaic, and writes ``maps.fits`` with the
mosaic's WCS one extension at a time (memory: one H × W float32 map plus one tile).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

from starclusters.detect.tiles import Tile, tiles_of
from starclusters.errors import InputFileError
from starclusters.io import atomic_path, open_fits

#: Extension name -> (estimate of :func:`starclusters.model.inference.predict`, BUNIT, meaning).
#: BUNIT strings follow the FITS standard; "" is dimensionless.
MAPS = {
    "CLASS": ("p_cluster", "", "probability that a cluster is centred here (class c/b)"),
    "VISIBILITY": ("visibility", "", "cluster flux / (n sigma_bg), thesis eq. 3.2"),
    "LOG_AGE": ("log_age_yr", "log(yr)", "log10 age / yr"),
    "LOG_MASS": ("log_mass_msun", "log(solMass)", "log10 mass / Msun"),
    "AV": ("av_mag", "mag", "V-band extinction A_V"),
    "LOG_RH": ("log_rh_arcsec", "log(arcsec)", "log10 half-number radius r_h / arcsec"),
}
#: Primary-header cards that every tile of one run shares (checked by :func:`merge_tiles`).
SHARED_CARDS = ("DETMODE", "DETSTEP", "WINDOW", "BANDS", "MOSNY", "MOSNX", "MODEL", "MODELSHA")


def provenance_cards(
    *,
    mode: str,
    step_px: int,
    window_px: int,
    bands: Sequence[str],
    shape: Sequence[int],
    model_path: str | os.PathLike,
    model_sha256: str,
) -> dict[str, tuple]:
    """Primary-header cards (key -> value or (value, comment)): how the maps were made."""
    return {
        "DETMODE": (mode, "exact: per window; fast: dense"),
        "DETSTEP": (int(step_px), "px between evaluated window centres"),
        "WINDOW": (int(window_px), "px, side of the network's window"),
        "BANDS": (",".join(bands), "network input bands, in order"),
        "MOSNY": (int(shape[0]), "mosaic rows, px"),
        "MOSNX": (int(shape[1]), "mosaic columns, px"),
        "MODEL": (Path(model_path).name[:68], "trained network file"),
        "MODELSHA": model_sha256,  # SHA-256 of the file (64 characters: no room for a comment)
    }


def _extensions(maps: Mapping[str, np.ndarray], wcs: WCS | None) -> list[fits.ImageHDU]:
    hdus = []
    for name, (key, unit, meaning) in MAPS.items():
        header = wcs.to_header() if wcs is not None else fits.Header()
        header["BUNIT"] = (unit, meaning)
        header["ESTIMATE"] = (key, "key of starclusters.model.inference.predict")
        hdus.append(fits.ImageHDU(np.asarray(maps[key], np.float32), header=header, name=name))
    return hdus


def write_tile(
    path: str | os.PathLike,
    maps: Mapping[str, np.ndarray],
    tile: Tile,
    wcs: WCS | None,
    cards: Mapping[str, tuple],
) -> None:
    """Write one tile's core maps ({estimate: (ny, nx)}) atomically.

    wcs: the mosaic's (celestial) WCS, sliced here to the core; cards: :func:`provenance_cards`.
    """
    primary = fits.PrimaryHDU()
    for key, value in cards.items():
        primary.header[key] = value
    primary.header["TILE"] = (tile.t, "tile id (row-major)")
    primary.header["TILEY0"] = (tile.y0, "first core row on the mosaic, px (0-based)")
    primary.header["TILEX0"] = (tile.x0, "first core column on the mosaic, px (0-based)")
    core_wcs = wcs.slice(tile.core) if wcs is not None else None
    with atomic_path(path) as tmp:
        fits.HDUList([primary, *_extensions(maps, core_wcs)]).writeto(tmp, overwrite=True)


def read_maps(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], WCS, fits.Header]:
    """({extension name: (H, W) float32}, WCS, primary header) of a maps or tile file."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(
            f"{path}: no such file; make the maps first (the detection stage or "
            "`starclusters detect --output`)"
        )
    with open_fits(path) as hdul:  # not FITS, truncated: InputFileError, delete and rerun
        names = [h.name for h in hdul[1:]]
        missing = [name for name in MAPS if name not in names]
        if missing:
            raise InputFileError(
                f"{path}: no {', '.join(missing)} extension(s), not a maps file; give the "
                "maps of the detection stage or `starclusters detect`, or delete it and rerun"
            )
        maps = {name: hdul[name].data.astype(np.float32) for name in MAPS}  # native order
        return maps, WCS(hdul["CLASS"].header), hdul[0].header


def _check_tile(path: Path, header: fits.Header, tile: Tile, reference: Mapping) -> None:
    where = "delete it and rerun its detect_tile job"
    if header.get("TILE") != tile.t:
        raise InputFileError(f"{path}: holds tile {header.get('TILE')}, expected {tile.t}; {where}")
    if (header.get("TILEY0"), header.get("TILEX0")) != (tile.y0, tile.x0):
        raise InputFileError(
            f"{path}: core at (y, x) = ({header.get('TILEY0')}, {header.get('TILEX0')}), the "
            f"tile plan has ({tile.y0}, {tile.x0}); the plan changed since, {where}"
        )
    for key in SHARED_CARDS:
        if header.get(key) != reference[key]:
            raise InputFileError(
                f"{path}: {key} = {header.get(key)!r}, other tiles or the mosaic have "
                f"{reference[key]!r}; it comes from another run, {where}"
            )


def merge_tiles(
    tile_paths: Sequence[str | os.PathLike],
    plan: pd.DataFrame,
    wcs: WCS | None,
    path: str | os.PathLike,
    extra_cards: Mapping[str, tuple] | None = None,
) -> None:
    """Assemble the tiles of ``plan`` (tile_paths[t] for tile t) into ``path`` (atomic).

    Checks before writing: one file per tile, each at its plan position with its core's
    shape, all made with the same mode, step, window, bands and model file for a mosaic of
    the plan's shape (the first tile's cards are the reference, its MOSNY × MOSNX must equal
    the plan's extent). InputFileError naming the file otherwise. ``wcs``: the mosaic's.
    Memory: one (H, W) float32 map and one tile extension at a time.
    """
    tiles = tiles_of(plan)
    if len(tile_paths) != len(tiles):
        raise InputFileError(
            f"{len(tile_paths)} tile files for a plan of {len(tiles)} tiles; run every "
            "detect_tile job of the plan"
        )
    height = max(t.y0 + t.ny for t in tiles)
    width = max(t.x0 + t.nx for t in tiles)
    headers = []
    for tile, tile_path in zip(tiles, tile_paths, strict=True):
        tile_path = Path(tile_path)
        if not tile_path.exists():
            raise InputFileError(f"{tile_path}: missing tile {tile.t}; run its detect_tile job")
        with open_fits(tile_path) as hdul:
            header = hdul[0].header.copy()
            names = [h.name for h in hdul[1:]]
            shapes = {h.name: h.data.shape if h.data is not None else None for h in hdul[1:]}
        if not headers:
            reference = {key: header.get(key) for key in SHARED_CARDS}
            if (reference["MOSNY"], reference["MOSNX"]) != (height, width):
                raise InputFileError(
                    f"{tile_path}: made for a {reference['MOSNY']} × {reference['MOSNX']} "
                    f"mosaic, the tile plan covers {height} × {width}; rerun detection"
                )
        _check_tile(tile_path, header, tile, reference)
        for name in MAPS:
            if name not in names or shapes[name] != (tile.ny, tile.nx):
                raise InputFileError(
                    f"{tile_path}: extension {name} missing or not of the core's shape "
                    f"({tile.ny}, {tile.nx}); delete it and rerun its detect_tile job"
                )
        headers.append(header)

    primary = fits.PrimaryHDU()
    for key in SHARED_CARDS:
        primary.header[key] = (headers[0][key], headers[0].comments[key])
    primary.header["NTILES"] = (len(tiles), "tiles merged")
    for key, value in (extra_cards or {}).items():
        primary.header[key] = value
    with atomic_path(path) as tmp:
        primary.writeto(tmp, overwrite=True)
        for name, (key, unit, meaning) in MAPS.items():
            full = np.full((height, width), np.nan, np.float32)
            for tile, tile_path in zip(tiles, tile_paths, strict=True):
                full[tile.core] = fits.getdata(tile_path, extname=name)
            header = wcs.to_header() if wcs is not None else fits.Header()
            header["BUNIT"] = (unit, meaning)
            header["ESTIMATE"] = (key, "key of starclusters.model.inference.predict")
            fits.append(tmp, full, header=fits.ImageHDU(name=name, header=header).header)
            del full
