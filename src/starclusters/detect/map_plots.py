"""A figure of the value maps of ``maps.fits`` (the report's view of detection)."""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
from astropy.io import fits
from matplotlib.colors import LogNorm

from starclusters.detect.maps import MAPS
from starclusters.plotting import save_figure

#: Longest side of a panel, px: larger maps are shown every n-th pixel.
MAX_PANEL_PX = 1200
_LABELS = {
    "CLASS": "class c/b (P cluster)",
    "VISIBILITY": "visibility",
    "LOG_AGE": "log(t / yr)",
    "LOG_MASS": "log(M / M☉)",
    "AV": "A_V (mag)",
    "LOG_RH": "log(r_h / arcsec)",
}


def plot_maps(maps_path: str | os.PathLike, path: str | os.PathLike) -> None:
    """Six panels, one per map (NaN grey), of a maps file written by the detection stage."""
    fig, axes = plt.subplots(2, 3, figsize=(15, 9.5), sharex=True, sharey=True)
    with fits.open(maps_path, memmap=True) as hdul:
        header = hdul[0].header
        for ax, name in zip(axes.ravel(), MAPS, strict=True):
            data = hdul[name].data
            every = max(1, -(-max(data.shape) // MAX_PANEL_PX))
            image = np.array(data[::every, ::every], dtype=np.float32)
            finite = image[np.isfinite(image)]
            cmap = plt.get_cmap("magma" if name in ("CLASS", "VISIBILITY") else "viridis")
            cmap = cmap.with_extremes(bad="0.6")
            if name == "VISIBILITY" and finite.size and finite.max() > 0:
                norm = LogNorm(max(finite[finite > 0].min(), 1e-2), finite.max())
                shown = ax.imshow(image, origin="lower", cmap=cmap, norm=norm)
            elif name == "CLASS":
                shown = ax.imshow(image, origin="lower", cmap=cmap, vmin=0, vmax=1)
            else:
                lo, hi = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
                shown = ax.imshow(image, origin="lower", cmap=cmap, vmin=lo, vmax=hi)
            extent = f" (every {every}th px)" if every > 1 else ""
            ax.set_title(f"{name}{extent}")
            fig.colorbar(shown, ax=ax, shrink=0.8, label=_LABELS[name])
    fig.suptitle(
        f"Value maps, {header.get('DETMODE')} mode, step {header.get('DETSTEP')} px, "
        f"model {header.get('MODEL')}"
    )
    save_figure(fig, path)
