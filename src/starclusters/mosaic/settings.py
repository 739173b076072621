"""The ``mosaic`` config section: each band's files in one shape, and the checks that the
schema cannot express.

``mosaic.files.<band>`` is a path (the image) or ``{image, hdu, weight, weight_hdu}``
(docs/mosaic.md, "Your own images"); :func:`band_file` turns either into the one dict the
workflow and :func:`starclusters.mosaic.prepare.read_band` use.
:func:`starclusters.config.check_config` runs :func:`check_mosaic_config` with every other
stage's check. Nothing here reads a file (the workflow calls it while it parses).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePath

from starclusters.errors import ConfigError

#: ``mosaic.files.<band>.weight`` meaning "no weight map" (only NaN and zeros are blank).
NO_WEIGHT = "none"
#: The keys of a band's entry in its one shape (``image`` None: the stage's raw file).
BAND_FILE_KEYS = ("image", "hdu", "weight", "weight_hdu")

#: ``_sci`` as its own part of a file name (HLSP and HLA products: ``..._drz_sci.fits``),
#: followed by ``.`` or ``_``, so that ``m83_science.fits`` is not taken for one.
_SCI_PART = re.compile(r"_(sci)(?=[._])", re.IGNORECASE)


def sci_weight_path(image: str | PurePath) -> str | None:
    """The weight map beside a science image by the archive convention: the last ``_sci`` part
    of the file name replaced by ``_wht`` (``x_drz_sci.fits`` -> ``x_drz_wht.fits``, case
    kept); None when the name has no ``_sci`` part. Says nothing about whether it exists."""
    name = PurePath(image).name
    matches = list(_SCI_PART.finditer(name))
    if not matches:
        return None
    start, end = matches[-1].span(1)
    wht = "wht" if name[start:end].islower() else "WHT"
    return str(PurePath(image).with_name(name[:start] + wht + name[end:]))


def band_file(mosaic: Mapping, band: str) -> dict:
    """``mosaic.files.<band>`` in its one shape: {image, hdu, weight, weight_hdu}.

    image: the FITS path, or None where the stage's own raw file is read (source synthetic,
    or a band in ``mosaic.download``); hdu, weight_hdu: HDU index or EXTNAME, None = the
    default ('SCI' or the first 2-D HDU; 'WHT'); weight: a path, :data:`NO_WEIGHT`, or None
    (find it: a WHT extension of the image file, else the ``_sci`` -> ``_wht`` file beside
    it). The string form is ``{image: <path>}``, the others None.
    """
    entry = {key: None for key in BAND_FILE_KEYS}
    if mosaic["source"] != "files":
        return entry
    given = mosaic.get("files", {}).get(band)
    if isinstance(given, Mapping):
        entry.update({key: given.get(key) for key in BAND_FILE_KEYS})
    elif given is not None:
        entry["image"] = given
    if isinstance(entry["weight"], str) and entry["weight"].strip().lower() == NO_WEIGHT:
        entry["weight"] = NO_WEIGHT
    if band in mosaic.get("download", {}):
        # read from the downloaded file; a string entry is ignored, as before
        entry["image"] = None
    return entry


def _same_hdu(a, b) -> bool:
    """Whether two HDU specifiers surely name the same HDU (an index and a name may too)."""
    if isinstance(a, str) and isinstance(b, str):
        return a.strip().upper() == b.strip().upper()
    return a is not None and type(a) is type(b) and a == b


def check_mosaic_config(config: Mapping) -> None:
    """ConfigError naming the ``mosaic`` key: an image or a download for every band with
    source files, and each band's ``files`` entry consistent (no weight HDU beside
    ``weight: none``, weight not the image itself, no image for a downloaded band). The files
    themselves are checked when the mosaic stage reads them (``read_band``). The synthetic
    galaxy's section (``mosaic.synthetic``) is checked by its owner,
    :func:`starclusters.synthetic.spec.check_synthetic_config`."""
    bands = config["bands"]
    mosaic = config["mosaic"]
    if mosaic["source"] != "files":
        return
    files, download = mosaic.get("files", {}), mosaic.get("download", {})
    for band in bands:
        if band not in files and band not in download:
            raise ConfigError(
                f"mosaic.files.{band}: mosaic.source is 'files' but neither an image nor a "
                f"download is given for {band}"
            )
    for band in bands:
        given = files.get(band)
        if not isinstance(given, Mapping):
            continue  # a path (schema-checked), or a downloaded band without an entry
        key = f"mosaic.files.{band}"
        entry = band_file(mosaic, band)
        if band in download:
            if given.get("image") is not None:
                raise ConfigError(
                    f"{key}.image: {band} is downloaded (mosaic.download.{band}) and read from "
                    f"results/<galaxy>/mosaic/raw/{band}.fits; remove `image` (hdu and weight "
                    "apply to the downloaded file) or the download"
                )
        elif not entry["image"]:
            raise ConfigError(
                f"{key}.image: no image path for {band}; give `image: <FITS path>` "
                "(or the path alone as the entry)"
            )
        if entry["weight"] == NO_WEIGHT and entry["weight_hdu"] is not None:
            raise ConfigError(
                f"{key}.weight_hdu: `weight: none` uses no weight map, so weight_hdu "
                f"{entry['weight_hdu']!r} would be ignored; remove one of the two"
            )
        # the weight read from the image's own HDU would blank nothing but the image's zeros
        weight_in_image = entry["weight"] is None or (
            entry["image"] is not None and PurePath(entry["weight"]) == PurePath(entry["image"])
        )
        if weight_in_image and entry["weight_hdu"] is not None:
            image_hdu = "SCI" if entry["hdu"] is None else entry["hdu"]
            if _same_hdu(entry["weight_hdu"], image_hdu):
                raise ConfigError(
                    f"{key}.weight_hdu: {entry['weight_hdu']!r} is the image's own HDU "
                    f"(hdu {image_hdu!r}); name the weight extension (e.g. 'WHT') or set "
                    "`weight: none`"
                )
