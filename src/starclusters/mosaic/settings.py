"""Checks of the ``mosaic`` config section that the schema cannot express.

:func:`starclusters.config.check_config` runs :func:`check_mosaic_config` with every other
stage's check.
"""

from __future__ import annotations

from collections.abc import Mapping

from starclusters.errors import ConfigError


def check_mosaic_config(config: Mapping) -> None:
    """ConfigError naming the ``mosaic`` key: an image or a download for every band with
    source files. The synthetic galaxy's section (``mosaic.synthetic``) is checked by its
    owner, :func:`starclusters.synthetic.spec.check_synthetic_config`."""
    bands = config["bands"]
    mosaic = config["mosaic"]
    if mosaic["source"] == "files":
        for band in bands:
            if band not in mosaic["files"] and band not in mosaic["download"]:
                raise ConfigError(
                    f"mosaic.files.{band}: mosaic.source is 'files' but neither an image nor a "
                    f"download is given for {band}"
                )
