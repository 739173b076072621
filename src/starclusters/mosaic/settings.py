"""Checks of the ``mosaic`` config section that the schema cannot express.

:func:`starclusters.config.check_config` runs :func:`check_mosaic_config` with every other
stage's check.
"""

from __future__ import annotations

from collections.abc import Mapping

from starclusters.errors import ConfigError
from starclusters.synthetic.spec import SyntheticGalaxySpec


def check_mosaic_config(config: Mapping) -> None:
    """ConfigError naming the ``mosaic`` key: an image or a download for every band with
    source files; for the synthetic galaxy every value its generator needs, and a mosaic
    at least one window across."""
    bands = config["bands"]
    window = config["window_px"]
    mosaic = config["mosaic"]
    if mosaic["source"] == "files":
        for band in bands:
            if band not in mosaic["files"] and band not in mosaic["download"]:
                raise ConfigError(
                    f"mosaic.files.{band}: mosaic.source is 'files' but neither an image nor a "
                    f"download is given for {band}"
                )
        return
    spec = SyntheticGalaxySpec.from_config(  # names unknown keys
        mosaic["synthetic"],
        bands=tuple(bands),
        pixel_scale_arcsec=config["pixel_scale_arcsec"],
    )
    spec.check(bands)  # every value the generator needs (shape_px, exptime_s...)
    if min(spec.shape_px) < window:
        raise ConfigError(
            f"mosaic.synthetic.shape_px: {list(spec.shape_px)} px is smaller than the "
            f"{window}-px window (window_px); make the mosaic larger or window_px smaller"
        )
