"""The synthetic galaxies' products, built from config sections (used by the workflow
scripts of the mosaic and validation rules)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from starclusters.io import read_table
from starclusters.mocks.psf import read_psfs
from starclusters.mosaic.prepare import read_image
from starclusters.photometry.stage import population_from_config
from starclusters.synthetic.galaxy import build_synthetic_galaxy
from starclusters.synthetic.spec import SyntheticGalaxySpec

#: Stage number mixed into seeds so that stages never share random streams.
MOSAIC_STAGE = 5


def synthetic_spec(config: Mapping) -> SyntheticGalaxySpec:
    """The synthetic galaxy of ``config`` (its ``mosaic.synthetic`` section plus the shared keys)."""
    return SyntheticGalaxySpec.from_config(
        config["mosaic"]["synthetic"],
        name=config["galaxy"],
        bands=tuple(config["bands"]),
        pixel_scale_arcsec=config["pixel_scale_arcsec"],
        truncation_arcsec=config["mocks"]["truncation_arcsec"],
        faint_limit_mag=config["mocks"]["faint_limit_mag"],
        faint_packets=config["mocks"]["faint_packets"],
    )


def galaxy_photometry(config: Mapping) -> dict:
    """The ``photometry`` section the galaxy of ``config`` is observed with: the run's,
    with the synthetic section's own ``distance_mpc`` where it sets one (its own
    ``metallicity_z`` is in the isochrone table the workflow gives it)."""
    photometry = dict(config["photometry"])
    distance = (config["mosaic"].get("synthetic") or {}).get("distance_mpc")
    if distance is not None:
        photometry["distance_mpc"] = float(distance)
    return photometry


def make_synthetic_galaxy(
    isochrones_path: str,
    extinction_path: str,
    psf_paths: Sequence[str],
    config: Mapping,
    seed: int,
    band_paths: Mapping[str, str],
    truth_path: str,
    arms_path: str,
    contaminants_path: str,
    preview_png: str,
    zoom_png: str,
) -> None:
    """Build and write the synthetic galaxy of ``config`` (per-band images on their own WCS)."""
    bands = list(config["bands"])
    population = population_from_config(
        read_table(isochrones_path), read_table(extinction_path), galaxy_photometry(config), bands
    )
    epsfs, fractions = read_psfs(
        psf_paths, bands, config["pixel_scale_arcsec"], config["psf"]["oversampling"]
    )
    spec = synthetic_spec(config)
    spec.check(bands)
    build_synthetic_galaxy(
        spec,
        population,
        epsfs,
        config["psf"]["oversampling"],
        band_paths,
        truth_path,
        arms_path,
        np.random.default_rng([seed, MOSAIC_STAGE]),
        flux_fraction=fractions,
        core_radius_px=config["psf"]["core_radius_px"],
        contaminants_path=contaminants_path,
        preview_png=preview_png,
        zoom_png=zoom_png,
        progress=True,
    )


def make_truth(
    raw_truth_path: str,
    image_paths: Sequence[str],
    isochrones_path: str,
    extinction_path: str,
    psf_paths: Sequence[str],
    config: Mapping,
) -> pd.DataFrame:
    """The synthetic truth on the prepared mosaic grid, with visibilities (see :mod:`.truth`)."""
    from starclusters.mocks.stage import population_and_renderer
    from starclusters.synthetic.truth import truth_on_grid

    population, renderer = population_and_renderer(
        isochrones_path,
        extinction_path,
        psf_paths,
        {**config, "photometry": galaxy_photometry(config)},
    )
    images = np.stack([read_image(p)[0].astype(np.float32) for p in image_paths])
    wcs = read_image(image_paths[0])[1].celestial
    return truth_on_grid(
        read_table(raw_truth_path), synthetic_spec(config), population, renderer, images, wcs
    )
