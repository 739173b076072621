"""The mosaic stage's products, built from config sections (used by the workflow scripts)."""

from __future__ import annotations

from collections.abc import Mapping

from starclusters.mosaic.prepare import prepare_mosaic, read_catalog


def make_mosaic(
    raw_paths: Mapping[str, str],
    image_paths: Mapping[str, str],
    mask_path: str,
    pixel_scale_arcsec: float,
    settings: Mapping,
) -> None:
    """Reproject the bands onto one north-up TAN grid and build the mask (``settings``: ``mosaic``).

    raw_paths: band → the image file; ``settings["files"]`` (optional): band → how to read
    it, {hdu, weight, weight_hdu} (:func:`starclusters.mosaic.settings.band_file` without
    its image; absent: the defaults, SCI or the first image HDU and the weight map found).
    """
    mask = settings["mask"]
    files = settings.get("files") or {}
    sources = {
        band: {"hdu": None, "weight": None, "weight_hdu": None}
        | {k: v for k, v in (files.get(band) or {}).items() if k != "image"}
        | {"image": path}
        for band, path in raw_paths.items()
    }
    catalogs = [
        read_catalog(
            c["path"],
            ra_column=c["ra_column"],
            dec_column=c["dec_column"],
            radius_column=c["radius_column"],
        )
        for c in mask["catalogs"]
    ]
    prepare_mosaic(
        sources,
        image_paths,
        mask_path,
        pixel_scale_arcsec,
        extent=settings["extent"],
        method=settings["method"],
        tile_px=settings["tile_px"],
        blank=mask["blank"],
        saturation_cps=mask.get("saturation_counts_s") or None,
        saturation_grow_arcsec=mask["saturation_grow_arcsec"],
        catalogs=catalogs,
    )
