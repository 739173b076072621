"""Stage functions of the catalog rules: value maps -> peaks and candidates -> gallery, truth match.

Each function reads its inputs, calls the library and returns or writes the products;
the workflow scripts only unpack ``snakemake`` into them. The ``detect`` argument is
the config's ``detect`` section (its catalog keys:
:class:`~starclusters.detect.settings.CatalogSettings`),
``geometry`` its ``galaxy_geometry`` section.

A user's maps (the ``starclusters catalog`` command, and ``starclusters detect
--catalog-dir``): :func:`catalog_of_maps` writes the peaks, candidates and regions of the
rule find_peaks with the same :func:`make_catalog` and :func:`write_catalog` into one
folder; :func:`gallery_of_images` draws the rule detection_gallery's figure with
:func:`make_gallery`, the pixel scale taken from the model.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from starclusters.detect.catalog import (
    UNITS,
    build_catalog,
    candidate_mask,
    check_geometry_config,
    geometry_from_config,
    rank_candidates,
    select_candidates,
    write_regions,
)
from starclusters.detect.matching import match_positions
from starclusters.detect.peaks import (
    MAP_COLUMNS,
    find_peaks,
)
from starclusters.detect.population_prior import (
    av_prior_weights,
    peak_posteriors,
    reweight,
)
from starclusters.detect.recentre import light_centroids
from starclusters.detect.settings import CatalogSettings
from starclusters.errors import ConfigError, InputFileError
from starclusters.io import read_table, write_table

log = logging.getLogger(__name__)


def read_value_maps(path: str | os.PathLike) -> tuple[dict[str, np.ndarray], object]:
    """The value maps of ``detect/maps.fits``: ({column name: (H, W) float32}, celestial WCS).

    Extensions CLASS, VISIBILITY, LOG_AGE, LOG_MASS, AV, LOG_RH (:data:`MAP_COLUMNS`),
    NaN where masked or not evaluated, read by :func:`starclusters.detect.maps.read_maps`;
    the WCS is the CLASS extension's.
    """
    from starclusters.detect.maps import read_maps

    maps, wcs, _ = read_maps(path)
    if not wcs.has_celestial:
        raise InputFileError(f"{path}: the CLASS extension has no celestial WCS")
    return {MAP_COLUMNS[ext]: maps[ext] for ext in MAP_COLUMNS}, wcs.celestial


def synthetic_geometry_meta(arms_path: str | os.PathLike) -> dict:
    """The synthetic galaxy's geometry (centre, inclination, PA, model kpc per arcsec),
    from the metadata of its ``mosaic/arms.parquet``."""
    meta = read_table(arms_path).attrs.get("meta", {})
    if "geometry" not in meta:
        raise InputFileError(f"{arms_path}: no geometry metadata; rerun the mosaic stage")
    return meta["geometry"]


def disk_geometry(
    geometry: Mapping | None, distance_mpc: float, arms_path: str | os.PathLike | None = None
):
    """The :class:`~starclusters.detect.catalog.DiskGeometry` of a ``galaxy_geometry`` section
    (None for source none); ``synthetic`` reads the synthetic galaxy's own geometry from the
    metadata of its arms table ``arms_path``."""
    source = (geometry or {}).get("source", "none")
    synthetic = synthetic_geometry_meta(arms_path) if source == "synthetic" and arms_path else None
    return geometry_from_config(geometry, distance_mpc, synthetic)


def make_catalog(
    maps_path: str | os.PathLike,
    detect: Mapping,
    geometry: Mapping,
    distance_mpc: float | None,
    arms_path: str | os.PathLike | None = None,
    model_path: str | os.PathLike | None = None,
    band_paths: Mapping[str, str] | None = None,
    test_metrics_path: str | os.PathLike | None = None,
    mask_path: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """(peaks, candidates, meta) of a maps file.

    Peaks: every maximum of the smoothed class map with its weighted parameters and the
    physical columns (:func:`~starclusters.detect.catalog.build_catalog`); candidates:
    those above the thresholds, best first (class, then visibility). arms_path: the
    synthetic galaxy's arms table, for ``galaxy_geometry.source: synthetic``. With
    ``detect.population_prior``, model_path (the network that made the maps) and
    band_paths (band → the mosaic it ran on), the candidates' age, A_V and mass are read
    again under the galaxy's A_V prior (:func:`population_prior_estimates`); the maps'
    values stay in ``map_<column>``. distance_mpc None (unknown): rh_pc and the densities
    are NaN; a ``galaxy_geometry`` of source config then needs it (ConfigError).
    test_metrics_path: the network's held-out test, whose derived cut replaces the
    thresholds with ``detect.derived_thresholds`` (:func:`resolve_thresholds`); the meta's
    settings hold the thresholds applied. With ``detect.recentre_radius_px`` > 0 and
    band_paths every peak's x, y move to its light centroid (:func:`recentre_peaks`; mask_path
    the mosaic's mask, optional) after the maps' values are read at its pixel.
    """
    settings = resolve_thresholds(CatalogSettings.from_config(detect), test_metrics_path)
    if distance_mpc is None and (geometry or {}).get("source", "none") == "config":
        raise ConfigError(
            "photometry.distance_mpc (--distance-mpc): needed for galactocentric distances in "
            "kpc with galaxy_geometry.source: config (--geometry); give the galaxy's distance"
        )
    distance = float("nan") if distance_mpc is None else float(distance_mpc)
    disk = disk_geometry(geometry, distance, arms_path)
    maps, wcs = read_value_maps(maps_path)
    peaks = find_peaks(
        maps,
        smooth_sigma_px=settings.smooth_sigma_px,
        window_px=settings.weight_window_px,
        weight_sigma_px=settings.weight_sigma_px,
    )
    prior_meta = {"applied": False}
    if settings.population_prior and model_path is not None and band_paths:
        peaks, prior_meta = population_prior_estimates(
            peaks, maps, model_path, band_paths, settings
        )
    peaks, positions_meta = recentre_peaks(peaks, band_paths, mask_path, settings)
    catalog = build_catalog(peaks, wcs, distance, disk)
    candidates = rank_candidates(
        select_candidates(catalog, settings.class_threshold, settings.visibility_threshold)
    )
    log.info(
        "%d peaks, %d candidates (class > %g, visibility > %g)",
        len(catalog),
        len(candidates),
        settings.class_threshold,
        settings.visibility_threshold,
    )
    meta = {
        "method": "thesis §4.2.2: class map smoothed (NaN-aware Gaussian), local maxima, "
        "class x Gaussian-distance weighted means of the maps in a window around each",
        "settings": settings.to_config(),
        "thresholds_from": os.fspath(test_metrics_path)
        if settings.derived_thresholds
        else "detect.class_threshold, detect.visibility_threshold",
        "maps": os.fspath(maps_path),
        "distance_mpc": None if distance_mpc is None else float(distance_mpc),
        "geometry": {
            "source": (geometry or {}).get("source", "none"),
            **(disk.to_dict() if disk is not None else {}),
            "kpc": "kpc of the synthetic model galaxy (sky size / geometry_scale)"
            if disk is not None and (geometry or {}).get("source") == "synthetic"
            else "kpc at distance_mpc",
        },
        "units": {
            **UNITS,
            "projected_kpc": "distance from the centre on the sky, same kpc as galactocentric_kpc",
        },
        "pixels": "0-based pixel centres of the maps' grid; ra/dec via the maps' WCS",
        "positions": positions_meta,
        "population_prior": prior_meta,
    }
    return catalog, candidates, meta


def recentre_peaks(
    peaks: pd.DataFrame,
    band_paths: Mapping[str, str] | None,
    mask_path: str | os.PathLike | None,
    settings: CatalogSettings,
) -> tuple[pd.DataFrame, dict]:
    """(peaks, meta): the peaks at their light centroids, the class-map pixel kept.

    peaks: :func:`~starclusters.detect.peaks.find_peaks`' table (x, y whole pixels);
    band_paths: band → mosaic image (counts/s, the maps' grid), all bands used; mask_path:
    the mosaic's mask (any bit set: the pixel is not used), or None. With
    ``settings.recentre_radius_px`` > 0 and images, x and y become the noise-weighted light
    centroid within that radius (:func:`starclusters.detect.recentre.light_centroids`),
    float px; peak_x, peak_y (int64) are always the class-map peak pixel, where the maps'
    values were read. Without images (a user's maps alone) the peaks stay, with a log line.
    meta: what was done (for the tables' metadata).
    """
    out = peaks.copy()
    at = list(out.columns).index("y") + 1
    out.insert(at, "peak_x", out["x"].to_numpy(np.int64))
    out.insert(at + 1, "peak_y", out["y"].to_numpy(np.int64))
    if not settings.recentres:
        return out, {"method": "class-map peak pixel (detect.recentre_radius_px: 0)"}
    if not band_paths:
        log.info("no images given: the peaks stay at their class-map pixels (no recentring)")
        return out, {"method": "class-map peak pixel (no images to recentre on)"}
    images = _band_images(list(band_paths.values()))
    bad = None
    if mask_path is not None:
        from astropy.io import fits

        bad = fits.getdata(mask_path) != 0
        if bad.shape != np.shape(images[0]):
            raise InputFileError(
                f"{mask_path}: shape {bad.shape} differs from the images "
                f"{np.shape(images[0])}; give the mask of these images"
            )
    x, y, moved = light_centroids(
        images,
        out["x"].to_numpy(float),
        out["y"].to_numpy(float),
        settings.recentre_radius_px,
        settings.recentre_sky_annulus_px,
        bad,
    )
    out["x"], out["y"] = x, y
    shift = np.hypot(x - out["peak_x"].to_numpy(float), y - out["peak_y"].to_numpy(float))
    median = float(np.median(shift)) if len(shift) else float("nan")
    log.info(
        "%d of %d peaks moved to their light centroids (median shift %.2f px, radius %g px)",
        int(moved.sum()),
        len(out),
        median,
        settings.recentre_radius_px,
    )
    return out, {
        "method": "noise-weighted light centroid of the bands around the class-map peak "
        "(starclusters.detect.recentre); peak_x, peak_y: the peak pixel",
        "radius_px": float(settings.recentre_radius_px),
        "sky_annulus_px": list(settings.recentre_sky_annulus_px),
        "bands": list(band_paths),
        "mask": None if mask_path is None else os.fspath(mask_path),
        "n_moved": int(moved.sum()),
        "median_shift_px": median,
    }


def resolve_thresholds(
    settings: CatalogSettings, test_metrics_path: str | os.PathLike | None
) -> CatalogSettings:
    """``settings`` with the catalogue cut its candidates are made with.

    With ``detect.derived_thresholds`` class_threshold and visibility_threshold become the
    cut the network's held-out test derived (``model/test_metrics.parquet``, Youden's J:
    :func:`~starclusters.model.evaluate.read_derived_thresholds`); otherwise the settings
    are returned as they are. ConfigError naming the key when the test's file is not given.
    """
    if not settings.derived_thresholds:
        return settings
    if test_metrics_path is None:
        raise ConfigError(
            "detect.derived_thresholds: the cut comes from the network's held-out test; give "
            "its test_metrics.parquet (starclusters catalog --derived-thresholds PATH) or set "
            "detect.derived_thresholds: false"
        )
    from starclusters.model.evaluate import read_derived_thresholds

    class_threshold, visibility_threshold = read_derived_thresholds(test_metrics_path)
    log.info(
        "catalogue cut of the held-out test %s: class > %g, visibility > %g "
        "(detect.derived_thresholds)",
        test_metrics_path,
        class_threshold,
        visibility_threshold,
    )
    return dataclasses.replace(
        settings, class_threshold=class_threshold, visibility_threshold=visibility_threshold
    )


def peak_pixels(table: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(rows, cols), int64 (N,) each: the class-map peak pixels of a peaks or candidates
    table, where its maps' values were read (peak_y, peak_x; a table made before the
    recentring has only x, y, whole pixels then)."""
    if {"peak_x", "peak_y"} <= set(table.columns):
        return table["peak_y"].to_numpy(np.int64), table["peak_x"].to_numpy(np.int64)
    return (
        np.rint(table["y"].to_numpy(float)).astype(np.int64),
        np.rint(table["x"].to_numpy(float)).astype(np.int64),
    )


def thresholds_of(candidates: pd.DataFrame, path: str | os.PathLike) -> tuple[float, float]:
    """(class, visibility) thresholds a candidates table was made with (its metadata's
    settings: the config's numbers or the held-out test's derived cut). InputFileError
    naming the file when its metadata has none (not a candidates table of this package)."""
    made = candidates.attrs.get("meta", {}).get("settings", {})
    if not {"class_threshold", "visibility_threshold"} <= set(made):
        raise InputFileError(
            f"{path}: no class and visibility thresholds in its metadata; not a candidates "
            "table of find_peaks or `starclusters catalog`, rerun it"
        )
    return float(made["class_threshold"]), float(made["visibility_threshold"])


#: The columns the population prior re-reads (from the joint age × A_V × mass grid).
PRIOR_COLUMNS = ("log_age_yr", "av_mag", "log_mass_msun")


def population_prior_estimates(
    peaks: pd.DataFrame,
    maps: Mapping[str, np.ndarray],
    model_path: str | os.PathLike,
    band_paths: Mapping[str, str],
    settings: CatalogSettings,
    chunk: int = 64,
) -> tuple[pd.DataFrame, dict]:
    """The peaks with the candidates' age, A_V and mass under the galaxy's A_V prior.

    For every peak above the thresholds the network runs again on the windows centred on
    the weight_window_px² pixels around it (``chunk`` peaks at a time); their posteriors,
    weighted by the maps' class × exp(−d²/2σ²) as the maps' point estimates are, make the
    peak's posterior; EM over all candidates estimates the A_V prior
    (:mod:`starclusters.detect.population_prior`); the re-weighted posteriors are decoded
    by THE decoding. Returns (peaks with ``map_<column>`` = the maps' values for every
    peak and the re-read values in ``<column>`` for the candidates, meta for the table).
    A model without a ``training_prior`` (trained before it was recorded) or without
    output grids leaves the values as they are, with a warning.
    """
    from starclusters.detect.gallery import candidate_grids
    from starclusters.model.checkpoint import load_model
    from starclusters.model.codec import decode

    peaks = peaks.copy()
    for column in PRIOR_COLUMNS:
        peaks[f"map_{column}"] = peaks[column]
    chosen = np.flatnonzero(
        candidate_mask(peaks, settings.class_threshold, settings.visibility_threshold)
    )
    model, grids, meta = load_model(model_path, device="cpu")
    training = (meta.get("training_prior") or {}).get("av_mag")
    if training is None or model.spec.head == "regression":
        log.warning(
            "%s has no training prior (trained before it was recorded) or no output grids; "
            "the candidates keep the maps' values (retrain to use detect.population_prior)",
            model_path,
        )
        return peaks, {"applied": False}
    bands = list(meta["bands"])
    missing = [band for band in bands if band not in band_paths]
    if missing:
        raise InputFileError(f"the model was trained on bands {bands}; no mosaic for {missing}")
    images = _band_images([band_paths[band] for band in bands])
    window = int(settings.weight_window_px)
    half = window // 2
    dy, dx = (a.ravel() for a in np.mgrid[-half : half + 1, -half : half + 1])
    class_map = np.asarray(maps["class"], np.float64)
    posteriors = []
    for start in range(0, len(chosen), chunk):
        rows = peaks["y"].to_numpy(int)[chosen[start : start + chunk]]
        cols = peaks["x"].to_numpy(int)[chosen[start : start + chunk]]
        y = (rows[:, None] + dy[None]).ravel()
        x = (cols[:, None] + dx[None]).ravel()
        inside = (y >= 0) & (y < class_map.shape[0]) & (x >= 0) & (x < class_map.shape[1])
        # the maps' class is the weight: NaN (incomplete window, masked) and outside count 0
        ny, nx = class_map.shape
        weight = np.where(inside, class_map[np.clip(y, 0, ny - 1), np.clip(x, 0, nx - 1)], 0.0)
        out = candidate_grids(model, grids, images, y, x)
        posteriors.append(
            peak_posteriors(
                out["grid_age_av_mass"].reshape(len(rows), window * window, *grids.shape_3d),
                np.nan_to_num(weight).reshape(len(rows), window * window),
                window,
                settings.weight_sigma_px,
            )
        )
    shape = (0, *grids.shape_3d)
    posterior = np.concatenate(posteriors) if posteriors else np.zeros(shape)
    weights, estimated, iterations = av_prior_weights(
        posterior,
        np.asarray(training),
        shrink=settings.population_prior_shrink,
        smooth=settings.population_prior_smoothing,
    )
    if len(chosen):
        values = decode(
            reweight(posterior, weights), [grids.log_age_yr, grids.av_mag, grids.log_mass_msun]
        )
        for k, column in enumerate(PRIOR_COLUMNS):
            peaks.loc[peaks.index[chosen], column] = values[:, k]
    train_av = np.asarray(training, float) / np.sum(training)
    log.info(
        "population prior from %d candidates (%d EM iterations): A_V marginal %s (training %s) "
        "at A_V %s mag",
        len(chosen),
        iterations,
        np.round(estimated, 3).tolist(),
        np.round(train_av, 3).tolist(),
        np.round(grids.av_mag, 2).tolist(),
    )
    return peaks, {
        "applied": True,
        "method": "EM estimate of the galaxy's A_V prior from the candidates' posteriors "
        "(Saerens et al. 2002); map_<column> keep the maps' values",
        "n_candidates": int(len(chosen)),
        "iterations": int(iterations),
        "av_mag": np.asarray(grids.av_mag, float).tolist(),
        "av_prior": np.asarray(estimated, float).tolist(),
        "training_av_prior": train_av.tolist(),
        "shrink": float(settings.population_prior_shrink),
        **(
            {"smoothing": "EMS, kernel [1/4, 1/2, 1/4]"}
            if settings.population_prior_smoothing
            else {}
        ),
    }


def write_catalog(
    peaks: pd.DataFrame,
    candidates: pd.DataFrame,
    meta: Mapping,
    peaks_path: str | os.PathLike,
    candidates_path: str | os.PathLike,
    regions_path: str | os.PathLike,
) -> None:
    """Write peaks and candidates (Parquet) and the candidates' DS9 regions, atomically."""
    write_table(peaks_path, peaks, {**meta, "what": "every peak of the smoothed class map"})
    write_table(
        candidates_path,
        candidates,
        {**meta, "what": "peaks above the class and visibility thresholds, best first"},
    )
    write_regions(regions_path, candidates)


#: What :func:`catalog_of_maps` writes into its folder, by :func:`write_catalog` argument
#: (the names of the workflow's detect/ folder).
CATALOG_FILES = {
    "peaks": "peaks.parquet",
    "candidates": "candidates.parquet",
    "regions": "candidates.reg",
}


def image_band_paths(
    image_paths: Sequence[str | os.PathLike],
    model_path: str | os.PathLike | None,
    bands: Sequence[str] | None = None,
) -> dict[str, str]:
    """{band: image path} of a user's images for the model of ``model_path``.

    image_paths: one FITS image per band (counts/s, the maps' grid); bands: theirs, in
    order (default: their BAND cards, else the model's order, as ``starclusters detect``
    takes them: :func:`starclusters.detect.stage.image_bands`). ConfigError naming
    ``--images`` if their number is not the model's, ``--bands`` if theirs is not the
    images'. Without a model (the images serve the recentring only, any band order) the
    bands given, else the paths, name the images.
    """
    from starclusters.detect.stage import image_bands
    from starclusters.model.checkpoint import load_model

    if bands is not None and len(bands) != len(image_paths):
        raise ConfigError(f"--bands: {len(bands)} band(s) for {len(image_paths)} images")
    if model_path is None:
        names = list(bands) if bands is not None else [os.fspath(p) for p in image_paths]
        return dict(zip(names, map(os.fspath, image_paths), strict=True))
    _, _, meta = load_model(model_path, device="cpu")
    model_bands = list(meta["bands"])
    if len(image_paths) != len(model_bands):
        raise ConfigError(
            f"--images: {len(image_paths)} image(s) given, the model {model_path} takes "
            f"{len(model_bands)} ({', '.join(model_bands)}); give one image per band"
        )
    names = list(bands) if bands is not None else image_bands(image_paths, model_bands)
    return {band: os.fspath(path) for band, path in zip(names, image_paths, strict=True)}


def catalog_of_maps(
    maps_path: str | os.PathLike,
    output_dir: str | os.PathLike,
    *,
    detect: Mapping | None = None,
    geometry: Mapping | None = None,
    distance_mpc: float | None = None,
    model_path: str | os.PathLike | None = None,
    image_paths: Sequence[str | os.PathLike] | None = None,
    bands: Sequence[str] | None = None,
    test_metrics_path: str | os.PathLike | None = None,
    mask_path: str | os.PathLike | None = None,
) -> dict[str, Path]:
    """Peaks, candidates and their DS9 regions of a maps file, written into ``output_dir``.

    The rule find_peaks' :func:`make_catalog` and :func:`write_catalog` on a user's maps
    (``starclusters catalog``): detect: the catalog keys of the ``detect`` section (absent
    ones at the defaults of :class:`~starclusters.detect.settings.CatalogSettings`);
    geometry: a ``galaxy_geometry`` section (default source none: galactocentric
    distances NaN); distance_mpc: the galaxy's distance, Mpc
    (None: r_h in pc and the densities NaN). With model_path (the network that made the
    maps) and image_paths (its images, one per band; bands as :func:`image_band_paths`)
    the candidates are read under the galaxy's A_V prior, as in the workflow; image_paths
    (with or without the model) and mask_path (their mask, optional) also move the peaks
    to their light centroids (``detect.recentre_radius_px``); test_metrics_path: the
    network's held-out test, for ``detect.derived_thresholds``. Returns {"peaks",
    "candidates", "regions": path} (:data:`CATALOG_FILES`).
    """
    if mask_path is not None and not image_paths:
        raise ConfigError("--mask: the mask of the images; give --images too")
    geometry = dict(geometry or {"source": "none"})
    # the workflow's checks before any file is read: the catalog keys, a complete geometry
    # (a user's maps are never the synthetic galaxy's, so that geometry source is refused)
    settings = CatalogSettings.from_config(detect)
    if settings.derived_thresholds and test_metrics_path is None:
        resolve_thresholds(settings, None)  # ConfigError: the test's file is needed
    check_geometry_config({"galaxy_geometry": geometry, "mosaic": {"source": "user images"}})
    band_paths = image_band_paths(image_paths, model_path, bands) if image_paths else None
    if model_path is not None and not band_paths and settings.population_prior:
        log.info("no images given: the candidates keep the maps' values (no population prior)")
    peaks, candidates, meta = make_catalog(
        maps_path,
        dict(detect or {}),
        geometry,
        distance_mpc,
        model_path=model_path,
        band_paths=band_paths,
        test_metrics_path=test_metrics_path,
        mask_path=mask_path,
    )
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {key: out / name for key, name in CATALOG_FILES.items()}
    write_catalog(peaks, candidates, meta, paths["peaks"], paths["candidates"], paths["regions"])
    log.info("wrote %s", ", ".join(str(p) for p in paths.values()))
    return paths


def gallery_of_images(
    candidates_path: str | os.PathLike,
    model_path: str | os.PathLike,
    image_paths: Sequence[str | os.PathLike],
    figure_path: str | os.PathLike,
    *,
    bands: Sequence[str] | None = None,
    zeropoints_mag: Sequence[float] | None = None,
    detect: Mapping | None = None,
) -> pd.DataFrame:
    """The rule detection_gallery's figure of a user's candidates (:func:`make_gallery`).

    image_paths: the images the maps were made of, one per band (bands as
    :func:`image_band_paths`); zeropoints_mag: Vega magnitude of 1 count/s per band in the
    model's band order (colours in Vega units; default 0 for every band: colours in
    counts/s); detect: gallery_size, gallery_field_arcsec (defaults
    :class:`~starclusters.detect.settings.CatalogSettings`). The pixel scale is the
    model's. Returns the shown candidates.
    """
    from starclusters.model.checkpoint import load_model

    band_paths = image_band_paths(image_paths, model_path, bands)
    _, _, meta = load_model(model_path, device="cpu")
    model_bands = list(meta["bands"])
    if zeropoints_mag is None:
        zeropoints_mag = [0.0] * len(model_bands)
    if len(zeropoints_mag) != len(model_bands):
        raise ConfigError(
            f"--zeropoints-mag: {len(zeropoints_mag)} value(s), the model has "
            f"{len(model_bands)} bands ({', '.join(model_bands)}); give one per band, in order"
        )
    return make_gallery(
        candidates_path,
        model_path,
        band_paths,
        dict(detect or {}),
        float(meta["pixel_scale_arcsec"]),
        dict(zip(model_bands, map(float, zeropoints_mag), strict=True)),
        figure_path,
    )


def _band_images(band_paths: Sequence[str]):
    """Memory-mapped (H, W) images of the mosaic bands (only the cut-outs are read)."""
    from astropy.io import fits

    images = []
    for path in band_paths:
        with fits.open(path, memmap=True) as hdul:
            images.append(hdul[0].data)
    return images


def _truth_rows(truth: pd.DataFrame, candidates: pd.DataFrame, max_px: float) -> pd.DataFrame:
    """Per candidate, the true values of the cluster matched within max_px (or NaN)."""
    index, _ = match_positions(
        candidates[["x", "y"]].to_numpy(float), truth[["x_px", "y_px"]].to_numpy(float), max_px
    )
    columns = {
        "log_age_yr": truth["log_age_yr"].to_numpy(float),
        "av_mag": truth["av_mag"].to_numpy(float),
        "log_mass_msun": truth["log_mass_msun"].to_numpy(float),
        "log_rh_arcsec": np.log10(truth["rh_arcsec"].to_numpy(float)),
    }
    hit = index >= 0
    out = {}
    for name, values in columns.items():
        column = np.full(len(candidates), np.nan)
        column[hit] = values[index[hit]]
        out[name] = column
    return pd.DataFrame(out)


def make_gallery(
    candidates_path: str | os.PathLike,
    model_path: str | os.PathLike,
    band_paths: Mapping[str, str],
    detect: Mapping,
    pixel_scale_arcsec: float,
    zeropoints_mag: Mapping[str, float],
    figure_path: str | os.PathLike,
    truth_path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Write the gallery of the top candidates (:mod:`starclusters.detect.gallery`).

    band_paths: band -> mosaic FITS (counts/s); zeropoints_mag: band -> Vega magnitude of
    1 count/s (colours in Vega units). The model runs on CPU: a dozen windows.
    Returns the shown candidates with the model's point estimates on their windows
    (window_<estimate> columns).
    """
    from starclusters.detect.gallery import candidate_grids, cut_windows, plot_gallery
    from starclusters.model.checkpoint import load_model

    settings = CatalogSettings.from_config(detect)
    candidates = read_table(candidates_path)
    top = rank_candidates(candidates).head(int(settings.gallery_size))
    model, grids, meta = load_model(model_path, device="cpu")
    bands = list(meta["bands"])
    missing = [band for band in bands if band not in band_paths]
    if missing:
        raise InputFileError(f"the model was trained on bands {bands}; no mosaic for {missing}")
    images = _band_images([band_paths[band] for band in bands])
    rows, cols = peak_pixels(top)
    field = max(int(round(settings.gallery_field_arcsec / pixel_scale_arcsec)) | 1, 1)
    cutouts = cut_windows(images, rows, cols, field)
    outputs = None
    if len(top):
        outputs = candidate_grids(model, grids, images, rows, cols)
        if "grid_age_av_mass" not in outputs:
            log.info("the model has no output grids (regression head): images only")
    truth = None
    if truth_path is not None:
        truth = _truth_rows(read_table(truth_path), top, settings.match_radius_px)
    plot_gallery(
        top,
        cutouts,
        outputs,
        grids,
        int(meta["window_px"]),
        figure_path,
        flux_scale=[10.0 ** (-0.4 * float(zeropoints_mag[band])) for band in bands],
        truth=truth,
        pixel_scale_arcsec=pixel_scale_arcsec,
    )
    shown = top.copy()
    if outputs is not None:
        for name in ("p_cluster", "visibility", "log_age_yr", "av_mag", "log_mass_msun"):
            shown[f"window_{name}"] = outputs[name]
    return shown


def make_truth_match(
    truth_path: str | os.PathLike,
    candidates_path: str | os.PathLike,
    peaks_path: str | os.PathLike,
    detect: Mapping,
    table_path: str | os.PathLike,
    figure_path: str | os.PathLike,
) -> dict:
    """Match the candidates and peaks to the synthetic truth; write the table and figure.

    Returns the summary (:func:`~starclusters.detect.matching.match_summary`), which also
    goes into the table's metadata.
    """
    from starclusters.detect.matching import match_summary, match_truth
    from starclusters.detect.matching_plots import plot_truth_match

    settings = CatalogSettings.from_config(detect)
    truth = read_table(truth_path)
    candidates = read_table(candidates_path)
    peaks = read_table(peaks_path)
    thresholds = thresholds_of(candidates, candidates_path)
    max_px = float(settings.match_radius_px)
    matched = match_truth(truth, candidates, peaks, max_px)
    summary = {**match_summary(matched, len(candidates)), "max_px": max_px}
    log.info(
        "recall %.3f (%d of %d true clusters), precision %.3f (%d candidates) within %g px",
        summary["recall"],
        summary["n_detected"],
        summary["n_truth"],
        summary["precision"],
        summary["n_candidates"],
        max_px,
    )
    for name, err in summary["errors"].items():
        log.info(
            "%s: n %d, median bias %+.3f, 95%% bound %.3f %s",
            name,
            err["n"],
            err["median_bias"],
            err["bound95_abs"],
            err["unit"],
        )
    write_table(
        table_path,
        matched,
        {
            "what": "the synthetic galaxy's clusters with their matches among the candidates "
            "(detected, candidate_id) and among all peaks (peak_id), one-to-one, nearest first",
            "max_px": max_px,
            "derived": "derived_<column>: the matched candidate's value, else the matched peak's",
            "summary": summary,
        },
    )
    plot_truth_match(
        matched,
        candidates,
        peaks,
        summary,
        thresholds,
        figure_path,
    )
    return summary
