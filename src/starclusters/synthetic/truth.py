"""The synthetic galaxy's truth on the prepared mosaic: grid positions and visibility.

The generator writes its cluster catalog on the reference band's own grid. After
reprojection, detection and matching need positions on the common grid, and the
analysis needs each cluster's visibility (thesis eq. 3.2), defined exactly as for
the mocks (:func:`starclusters.mocks.compose.visibility`): every cluster's
noise-free stamp is drawn again from its seed with the same stars, and the
background is the mosaic around it minus that stamp.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from astropy.wcs import WCS

from starclusters.mocks.compose import observed_rh_px, visibility
from starclusters.mocks.psf import half_light_radius_px
from starclusters.mocks.render import StampRenderer
from starclusters.photometry.population import StellarPopulation
from starclusters.synthetic.catalogs import cluster_light
from starclusters.synthetic.geometry import model_wcs
from starclusters.synthetic.spec import SyntheticGalaxySpec


def truth_on_grid(
    truth: pd.DataFrame,
    spec: SyntheticGalaxySpec,
    population: StellarPopulation,
    renderer: StampRenderer,
    images: np.ndarray,
    wcs: WCS,
) -> pd.DataFrame:
    """``truth`` with x_px, y_px on the mosaic grid (0-based; the generator's are kept
    as x_ref_px, y_ref_px), visibility and visibility_<band>.

    images: (B, H, W) the prepared mosaic in counts/s, bands in ``spec.bands`` order;
    renderer: draws the bands' ePSFs on stamps of the network's window size.
    Clusters whose window leaves the mosaic get NaN visibility.
    """
    out = truth.rename(columns={"x_px": "x_ref_px", "y_px": "y_ref_px"}).copy()
    x, y = wcs.world_to_pixel_values(out["ra_deg"].to_numpy(), out["dec_deg"].to_numpy())
    out.insert(0, "y_px", y)
    out.insert(0, "x_px", x)
    sky = model_wcs(spec)
    scale = renderer.pixel_scale_arcsec
    s = renderer.stamp_px
    psf_rh = [half_light_radius_px(e, renderer.oversampling) for e in renderer.epsfs]
    per_band = np.full((len(out), len(spec.bands)), np.nan)
    for k, row in enumerate(out.itertuples(index=False)):
        cx, cy = int(round(row.x_px)), int(round(row.y_px))
        r0, c0 = cy - s // 2, cx - s // 2
        if r0 < 0 or c0 < 0 or r0 + s > images.shape[1] or c0 + s > images.shape[2]:
            continue
        offsets, counts = cluster_light(row._asdict(), population, spec, spec.bands)
        xi0, eta0 = sky.wcs_world2pix([row.ra_deg], [row.dec_deg], 0)
        ra, dec = sky.wcs_pix2world(xi0[0] + offsets[:, 0], eta0[0] + offsets[:, 1], 0)
        px, py = wcs.world_to_pixel_values(ra, dec)
        positions = np.stack([(px - cx) * scale, (py - cy) * scale], axis=1)
        stamp = renderer.render(positions, counts).astype(np.float64)
        window = images[:, r0 : r0 + s, c0 : c0 + s].astype(np.float64)
        rh_obs = observed_rh_px(row.rh_arcsec / scale, psf_rh)
        per_band[k] = visibility(stamp, window - stamp, rh_obs)
    measured = np.isfinite(per_band).all(axis=1)
    out["visibility"] = np.where(
        measured, np.max(np.where(measured[:, None], per_band, 0), axis=1), np.nan
    )
    for b, band in enumerate(spec.bands):
        out[f"visibility_{band}"] = per_band[:, b]
    return out
