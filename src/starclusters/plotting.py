"""Shared figure helpers: a non-interactive backend and atomic PNG writes."""

from __future__ import annotations

import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from starclusters.io import atomic_path  # noqa: E402


def save_figure(fig, path: str | os.PathLike, dpi: int = 120) -> None:
    """Write ``fig`` as PNG atomically and close it."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png", bbox_inches="tight")
    plt.close(fig)


def colour_bands(bands) -> tuple[str, str, str]:
    """(blue, middle, red) bands for colour diagrams; middle == blue when there are two bands."""
    bands = list(bands)
    return bands[0], bands[len(bands) // 2 if len(bands) > 2 else 0], bands[-1]
