"""The classical peer's products from config sections and files (used by the workflow scripts).

:func:`make_baseline_photometry` detects and measures every source of a mosaic;
:func:`make_baseline_catalog` fits the clusters' SEDs into a catalog with the CNN's
columns. Both write Parquet with their metadata, atomically.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

from starclusters.baseline.catalog import UNITS, fit_catalog, make_photometry
from starclusters.baseline.settings import BaselineSettings
from starclusters.io import read_table, write_table
from starclusters.photometry.settings import magnitude_cut_of


def make_baseline_photometry(
    band_paths: Mapping[str, str | os.PathLike],
    mask_path: str | os.PathLike,
    psf_paths: Mapping[str, str | os.PathLike],
    bank_tables: Sequence[str | os.PathLike],
    bank_stamps: Sequence[str | os.PathLike],
    photometry_config: Mapping,
    baseline: Mapping,
    seed: int,
    out_path: str | os.PathLike,
) -> None:
    """Every source of the mosaic with photometry, CI and the cluster selection.

    photometry_config: the config's ``photometry`` section (zero points and the mock
    bank's magnitude limits, which the peer's clusters must pass too: the CNN is trained
    on the same selection); baseline: the ``baseline`` section; seed: the run's seed.
    """
    settings = BaselineSettings.from_config(baseline)
    bands = list(band_paths)
    table, meta = make_photometry(
        band_paths,
        mask_path,
        psf_paths,
        bank_tables,
        bank_stamps,
        {b: photometry_config["vega_zeropoint_mag"][b] for b in bands},
        None,
        settings,
        seed,
        magnitude_limits={b: photometry_config["magnitude_limits"][b] for b in bands},
        magnitude_cut=magnitude_cut_of(photometry_config),
    )
    write_table(out_path, table, {**meta, "units": UNITS})


def make_baseline_catalog(
    photometry_path: str | os.PathLike,
    method: str,
    isochrones_path: str | os.PathLike,
    extinction_path: str | os.PathLike,
    bank_tables: Sequence[str | os.PathLike],
    photometry_config: Mapping,
    bands: Sequence[str],
    baseline: Mapping,
    geometry: Mapping,
    seed: int,
    out_path: str | os.PathLike,
    mocks_config: Mapping | None = None,
    arms_path: str | os.PathLike | None = None,
) -> None:
    """The SED-fitted clusters (method "grid" or "library") as a catalog with the CNN's
    columns; geometry: a ``galaxy_geometry`` section (``synthetic`` reads ``arms_path``)."""
    from starclusters.detect.candidates_stage import disk_geometry

    settings = BaselineSettings.from_config(baseline)
    distance_mpc = float(photometry_config["distance_mpc"])
    catalog = fit_catalog(
        read_table(photometry_path),
        method,
        isochrones_path,
        extinction_path,
        bank_tables,
        photometry_config,
        bands,
        settings,
        distance_mpc,
        geometry=disk_geometry(geometry, distance_mpc, arms_path),
        mocks_config=mocks_config,
        rng_seed=seed,
    )
    meta = dict(catalog.attrs.get("meta", {}))
    write_table(out_path, catalog, {**meta, "units": UNITS, "photometry": str(photometry_path)})
