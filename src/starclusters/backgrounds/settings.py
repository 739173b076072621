"""Checks of the ``backgrounds`` config section that the schema cannot express.

:func:`starclusters.config.check_config` runs :func:`check_backgrounds_config` with every
other stage's check.
"""

from __future__ import annotations

from collections.abc import Mapping

from starclusters.errors import ConfigError


def check_backgrounds(section: Mapping, window_px: int) -> None:
    """ConfigError naming the ``backgrounds`` key whose value cannot give cutouts."""
    fractions = section.get("split_fractions")
    if fractions:
        total = sum(float(v) for v in fractions.values())
        if abs(total - 1.0) > 1e-6:
            raise ConfigError(
                f"backgrounds.split_fractions: the shares must sum to 1, got {dict(fractions)} "
                f"(sum {total:g})"
            )
    block = section.get("block_px")
    if block is not None and block < window_px:
        raise ConfigError(
            f"backgrounds.block_px: {block} px is smaller than the {window_px}-px window "
            "(window_px); a cutout must fit inside one block, make block_px at least window_px"
        )


def check_backgrounds_config(config: Mapping) -> None:
    """:func:`check_backgrounds` of the config's section and window."""
    check_backgrounds(config.get("backgrounds") or {}, config["window_px"])
