"""The artificial-cluster stage's products from files (the workflow's entry points).

Per layer (``artificial.n_layers``, each its own copy of the mosaic): grid
(:func:`make_grid`) -> mock shards (:func:`build_artificial_shard`, the bank's renderer)
-> injected mosaic (:func:`inject_artificial`); the search mask (:func:`write_search_mask`);
after the detection stage's own tile, merge and catalog functions have run on the injected
mosaic: matches (:func:`make_matches`). Then all layers pooled with arms and galactocentric
distances (:func:`pool_matches`), recall tables and figures (:func:`make_recall`) and the
class–visibility figure (:func:`make_class_visibility`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS

from starclusters.artificial.draw import edge_keep, render_artificial_mocks
from starclusters.artificial.grid import (
    MASK_NO_SEARCH,
    grid_sites,
    grid_table,
    layer_offset_px,
    search_mask,
)
from starclusters.artificial.inject import artificial_seed, compose_rng, inject_mocks
from starclusters.artificial.matching import match_artificial
from starclusters.artificial.recall import metrics_table, recall_table
from starclusters.artificial.settings import DrawSettings
from starclusters.errors import InputFileError
from starclusters.io import atomic_path, read_cube, read_table, write_table
from starclusters.photometry.settings import magnitude_cut_of
from starclusters.sections import grid as config_grid

log = logging.getLogger(__name__)

#: Floor of the log10 background, counts/s per pixel (below: a sky-subtracted empty field).
MIN_BACKGROUND_COUNTS_S = 1e-3
#: Parameters with recall bins (``artificial.recall_bins``).
BINNED = ("log_age_yr", "log_mass_msun", "av_mag")


def local_backgrounds(
    image_path: str | os.PathLike, x_px, y_px, annulus_px: Sequence[float]
) -> np.ndarray:
    """(N,) local background, counts/s per pixel, of positions (0-based x, y) on an image:
    the median in an annulus (inner, outer px) by the scorecard's
    :func:`~starclusters.scorecard.score.local_background`, every pixel counted (no mask).
    One definition for the artificial mocks, the candidates and the truth clusters: each
    measured on an image that holds its own light."""
    from starclusters.io import open_fits
    from starclusters.scorecard.score import local_background

    with open_fits(image_path) as hdul:
        image = np.asarray(hdul[0].data, float)
    inner, outer = (float(v) for v in annulus_px)
    return local_background(
        image, None, np.asarray(x_px, float), np.asarray(y_px, float), inner, outer
    )


def log_background(background_counts_s) -> np.ndarray:
    """The selection function's background feature: log10 of the local background
    (counts/s per pixel), floored at :data:`MIN_BACKGROUND_COUNTS_S` — a background at or
    below zero is the sky-subtracted noise of an empty field."""
    return np.log10(np.maximum(np.asarray(background_counts_s, float), MIN_BACKGROUND_COUNTS_S))


def _read_mask(mask_path: str | os.PathLike) -> tuple[np.ndarray, fits.Header]:
    path = Path(mask_path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file; run the mosaic stage first")
    with fits.open(path, memmap=False) as hdul:
        return np.asarray(hdul[0].data, np.uint8), hdul[0].header.copy()


def make_grid(
    mask_path: str | os.PathLike,
    window_px: int,
    spacing_px: int,
    n_shards: int,
    layer: int = 0,
    config_seed: int = 0,
    seed_offset: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """(sites, meta): layer ``layer``'s injection sites on the mosaic of ``mask_path``.

    Columns mock_id, x_px, y_px (0-based mosaic pixels), shard (contiguous blocks of
    mock_id, so that the injection goes shard after shard in mock_id order), ra_deg,
    dec_deg (the mask's WCS). The grid is shifted by the layer's offset (from config_seed
    and seed_offset; none for layer 0). See :mod:`starclusters.artificial.grid`.
    """
    mask, header = _read_mask(mask_path)
    offset = layer_offset_px(config_seed, seed_offset, layer, spacing_px)
    table = grid_table(mask, window_px, spacing_px, n_shards, offset)
    wcs = WCS(header).celestial
    if len(table):
        ra, dec = wcs.pixel_to_world_values(
            table["x_px"].to_numpy(float), table["y_px"].to_numpy(float)
        )
    else:
        ra = dec = np.zeros(0)
    table["ra_deg"], table["dec_deg"] = np.asarray(ra, float), np.asarray(dec, float)
    n_sites = len(grid_sites(mask.shape, spacing_px, offset)[0])
    log.info(
        "layer %d, %d × %d mosaic: %d of %d grid sites (every %d px, shifted %s) usable, "
        "%d shard(s)",
        layer,
        *mask.shape,
        len(table),
        n_sites,
        spacing_px,
        offset,
        n_shards,
    )
    meta = {
        "what": "injection sites of the artificial-cluster test (thesis §4.2.3): a regular "
        "grid, kept where the window is complete and the centre unmasked",
        "spacing_px": int(spacing_px),
        "window_px": int(window_px),
        "n_shards": int(n_shards),
        "n_sites": int(n_sites),
        "layer": int(layer),
        "offset_px": [int(v) for v in offset],
        "mosaic_shape": [int(v) for v in mask.shape],
        "pixels": "0-based pixel centres of the mosaic grid",
    }
    return table, meta


def build_artificial_shard(
    shard: int,
    grid_path: str | os.PathLike,
    config_seed: int,
    seed_offset: int,
    isochrones_path: str,
    extinction_path: str,
    psf_paths: Sequence[str],
    config: Mapping,
    layer: int = 0,
    draw: Mapping | DrawSettings | None = None,
    reference: Mapping | None = None,
) -> tuple[np.ndarray, pd.DataFrame, dict]:
    """Noise-free stamps (N, B, S, S) counts/s, their parameters and FITS cards for one shard.

    The bank's renderer (:func:`starclusters.mocks.bank.build_shard`) with the seed of
    :func:`~starclusters.artificial.inject.artificial_seed` for the layer and as many mocks
    as the shard has sites; the table gets the sites' mock_id first. config: as for the
    bank (bands, pixel_scale_arcsec, window_px, photometry, psf, mocks); draw: the
    ``artificial.draw`` section or its :class:`~starclusters.artificial.settings.DrawSettings`
    (:mod:`starclusters.artificial.draw`; None: the bank's draw).
    With ``draw.reference_fraction`` > 0 that fraction of the sites (picked at random from
    the layer's own stream) gets a mock drawn in the box of ``reference`` (the
    ``artificial.reference`` node) instead, from a stream of its own; the table says which
    (``reference_draw``).
    """
    sites = read_table(grid_path)
    sites = sites[sites["shard"] == shard].reset_index(drop=True)
    seed = artificial_seed(config_seed, seed_offset, layer)
    bands, size = list(config["bands"]), int(config["window_px"])
    header = {
        "ARTSEED": (seed % 2**31, "low bits of the artificial mocks' seed"),
        "COMMENT": "Artificial-cluster mocks (never in the bank); axes (mock, band, y, x).",
    }
    if len(sites) == 0:
        log.info("shard %d: no sites, an empty shard", shard)
        stamps = np.zeros((0, len(bands), size, size), np.float32)
        table = pd.DataFrame({"mock_id": np.zeros(0, np.int64)})
        header["BUNIT"] = ("counts/s", "noise-free cluster light per native pixel")
        return stamps, table, header
    from starclusters.mocks.stage import population_and_renderer, stamp_header

    phot = config["photometry"]
    population, renderer = population_and_renderer(
        isochrones_path, extinction_path, list(psf_paths), config
    )
    bank_cut = magnitude_cut_of(phot)
    require, keep, fraction = bank_cut, None, 0.0
    if draw is not None:
        if not isinstance(draw, DrawSettings):
            draw = DrawSettings.from_config(draw)
        require = bank_cut if draw.magnitude_cut == "bank" else "none"
        keep = edge_keep(phot["magnitude_limits"], bank_cut, draw.edge_width_mag, draw.far_keep)(
            population
        )
        fraction = float(draw.reference_fraction)
    stamps, table = render_artificial_mocks(
        shard,
        seed,
        len(sites),
        population,
        renderer,
        config["mocks"],
        config_grid(phot["extinction"]["av_mag"], "photometry.extinction.av_mag"),
        phot["magnitude_limits"],
        require,
        keep,
        fraction,
        reference,
    )
    table.insert(0, "mock_id", sites["mock_id"].to_numpy(np.int64))
    if fraction > 0:
        n_node = int(table["reference_draw"].sum())
        log.info("shard %d: %d of %d mocks drawn at the reference node", shard, n_node, len(sites))
    comment = "Axes (mock, band, y, x); parameters in shard_<i>.parquet."
    header = {**stamp_header(config, shard, "cluster", "centred on the cluster", comment), **header}
    return stamps, table, header


def _band_images(band_paths: Sequence[str | os.PathLike], bands: Sequence[str]):
    """(images (B, H, W) float32 counts/s, headers, exptime_s (B,)) of the mosaic bands."""
    images, headers, exptime = [], [], []
    for band, path in zip(bands, band_paths, strict=True):
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header.copy()
            images.append(np.asarray(hdul[0].data, np.float32))
        if "EXPTIME" not in header:
            raise InputFileError(
                f"{path}: no EXPTIME in the header; compose() needs it for the photon noise "
                f"of {band}; rerun the mosaic stage"
            )
        headers.append(header)
        exptime.append(float(header["EXPTIME"]))
    shapes = {image.shape for image in images}
    if len(shapes) != 1:
        raise InputFileError(f"the mosaic bands differ in shape {shapes}; rerun the mosaic stage")
    return np.stack(images), headers, np.array(exptime)


def inject_artificial(
    band_paths: Sequence[str | os.PathLike],
    bands: Sequence[str],
    grid_path: str | os.PathLike,
    shard_paths: Sequence[str | os.PathLike],
    psf_paths: Sequence[str | os.PathLike],
    pixel_scale_arcsec: float,
    psf_oversampling: int,
    config_seed: int,
    seed_offset: int,
    out_band_paths: Sequence[str | os.PathLike],
    layer: int = 0,
) -> tuple[pd.DataFrame, dict]:
    """Inject every shard's mocks into the mosaic and write the injected bands.

    band_paths / out_band_paths: the mosaic's bands and where the injected ones go (same
    header, WCS and cards, plus ARTNMOCK and ARTSPACE); shard_paths: the shards' stamp
    cubes in shard order (each one's table is the .parquet beside it); psf_paths: the
    bands' ePSFs (their half-light radii widen r_h into r_h,obs for the visibility).
    Returns (injected mocks, meta): the sites with their parameters, visibility and
    visibility_<band> (thesis eq. 3.2 as compose() measures it) and the layer.
    """
    from starclusters.mocks.compose import observed_rh_px
    from starclusters.mocks.psf import half_light_radius_px, read_psfs

    bands = list(bands)
    sites = read_table(grid_path)
    images, headers, exptime_s = _band_images(band_paths, bands)
    epsfs, _ = read_psfs(psf_paths, bands, pixel_scale_arcsec, psf_oversampling)
    psf_rh_px = np.array([half_light_radius_px(e, psf_oversampling) for e in epsfs])
    rng = compose_rng(config_seed, seed_offset, layer)
    parts = []
    for shard, path in enumerate(shard_paths):
        stamps, _ = read_cube(path)
        table = read_table(Path(path).with_suffix(".parquet"))
        expected = sites.loc[sites["shard"] == shard, "mock_id"].to_numpy(np.int64)
        if len(stamps) != len(table) or not np.array_equal(
            table["mock_id"].to_numpy(np.int64), expected
        ):
            raise InputFileError(
                f"{path}: holds mocks {list(table['mock_id'][:5])}… but the grid gives shard "
                f"{shard} the sites {list(expected[:5])}…; delete the artificial shards and rerun"
            )
        if len(table) == 0:
            continue
        at = sites.set_index("mock_id").loc[expected]
        rh_px = 10.0 ** table["log_rh_arcsec"].to_numpy(float) / pixel_scale_arcsec
        rh_obs = np.stack([observed_rh_px(r, psf_rh_px) for r in rh_px])
        visibility, per_band = inject_mocks(
            images, stamps, at["y_px"], at["x_px"], exptime_s, rh_obs, rng
        )
        table = table.drop(columns=["shard"], errors="ignore")
        table["visibility"] = visibility
        for b, band in enumerate(bands):
            table[f"visibility_{band}"] = per_band[:, b]
        parts.append(table)
        log.info("shard %d: %d mocks injected", shard, len(table))
    injected = pd.concat(parts, ignore_index=True) if parts else pd.DataFrame({"mock_id": []})
    injected = sites.merge(injected, on="mock_id", how="left", validate="one_to_one")
    injected["rh_arcsec"] = 10.0 ** injected["log_rh_arcsec"].astype(float)
    injected.insert(0, "layer", np.full(len(injected), int(layer), np.int64))
    grid_meta = sites.attrs.get("meta", {})
    spacing = grid_meta.get("spacing_px")
    for b, (header, path) in enumerate(zip(headers, out_band_paths, strict=True)):
        header["ARTNMOCK"] = (len(injected), "artificial clusters injected in this layer")
        if spacing is not None:
            header["ARTSPACE"] = (int(spacing), "[px] grid spacing of the artificial clusters")
        with atomic_path(path) as tmp:
            fits.PrimaryHDU(images[b], header).writeto(tmp, overwrite=True)
    meta = {
        **grid_meta,
        "what": "the artificial clusters injected into the mosaic with compose() (thesis §3.1.3)",
        "seed_offset": int(seed_offset),
        "exptime_s": dict(zip(bands, exptime_s.tolist(), strict=True)),
        "psf_rh_px": dict(zip(bands, psf_rh_px.tolist(), strict=True)),
        "order": "composed in mock_id order; a window overlapping an earlier one sees that mock",
        "layer": int(layer),
    }
    return injected, meta


def pool_matches(
    match_paths: Sequence[str | os.PathLike],
    band_paths: Sequence[str | os.PathLike],
    background_annulus_px: Sequence[float],
    arms_section: Mapping | None,
    geometry_section: Mapping | None,
    distance_mpc: float,
    arms_path: str | os.PathLike | None = None,
) -> tuple[pd.DataFrame, dict]:
    """(matches, meta): every layer's matched mocks in one table, with galactocentric_kpc
    (deprojected, NaN without a disk geometry), on_arm and arm_distance_kpc
    (:mod:`starclusters.detect.arms`; False and NaN without arms), and the local
    background (:func:`local_backgrounds` on the layer's injected mosaic).

    match_paths: the layers' ``matches.parquet`` in layer order; rows are unique by
    (layer, mock_id). band_paths: each layer's injected mosaic in the band the background
    is measured in (the last band), in the same order; background_annulus_px: (inner,
    outer), px. arms_path: the synthetic galaxy's ``mosaic/arms.parquet``.
    """
    from starclusters.detect.arms import arm_columns, arms_from_files
    from starclusters.detect.candidates_stage import disk_geometry

    parts = [read_table(path) for path in match_paths]
    if len(band_paths) != len(parts):
        raise ValueError(f"{len(parts)} layers' matches but {len(band_paths)} band images")
    for path, part, band_path in zip(match_paths, parts, band_paths, strict=True):
        if "layer" not in part or part["layer"].nunique() > 1:
            raise InputFileError(
                f"{path}: needs one layer per file (a 'layer' column); rerun artificial_inject"
            )
        background = local_backgrounds(band_path, part["x_px"], part["y_px"], background_annulus_px)
        part["background_counts_s"] = background
        part["log_background_counts_s"] = log_background(background)
    pooled = pd.concat(parts, ignore_index=True)
    if pooled.duplicated(["layer", "mock_id"]).any():
        raise InputFileError(f"{list(match_paths)}: a layer appears twice; rerun the stage")
    geometry_section = dict(geometry_section or {})
    disk = disk_geometry(geometry_section, distance_mpc, arms_path)
    arms = arms_from_files(arms_section, geometry_section, distance_mpc, arms_path)
    ra, dec = pooled["ra_deg"].to_numpy(float), pooled["dec_deg"].to_numpy(float)
    pooled["galactocentric_kpc"] = (
        disk.galactocentric_kpc(ra, dec) if disk is not None else np.full(len(pooled), np.nan)
    )
    for name, values in arm_columns(arms, ra, dec).items():
        pooled[name] = values
    first = parts[0].attrs.get("meta", {}) if parts else {}
    meta = {
        **first,
        "what": "every injected mock of every layer with its true parameters and its matches "
        "among the candidates and peaks of its layer's injected mosaic",
        "n_layers": len(parts),
        "layers": {
            str(int(part["layer"].iloc[0])): part.attrs.get("meta", {}).get("offset_px")
            for part in parts
            if len(part)
        },
        "arms": arms.to_dict() if arms is not None else None,
        "geometry": disk.to_dict() if disk is not None else None,
        "units": {
            "x_px, y_px": "0-based pixel centres of the mosaic grid",
            "visibility": "thesis eq. 3.2 as compose() measures it; max over bands",
            "background_counts_s": "median of the last band in the annulus "
            f"{background_annulus_px} px around the mock on its layer's injected mosaic, "
            "counts/s per pixel (log_background_counts_s: log10, floored)",
            "galactocentric_kpc": "deprojected; kpc of the model galaxy for synthetic geometry",
            "arm_distance_kpc": "from the nearest dust lane, positive on the leading side",
        },
    }
    meta.pop("offset_px", None)
    meta.pop("layer", None)
    if arms is not None:
        log.info("%d of %d mocks on the arms", int(pooled["on_arm"].sum()), len(pooled))
    log.info("%d mocks in %d layer(s)", len(pooled), len(parts))
    return pooled, meta


def write_search_mask(
    mask_path: str | os.PathLike,
    grid_path: str | os.PathLike,
    radius_px: int | None,
    out_path: str | os.PathLike,
) -> None:
    """Write the mask the artificial detection runs with (:func:`~starclusters.artificial.grid.search_mask`)."""
    mask, header = _read_mask(mask_path)
    sites = read_table(grid_path)
    out = search_mask(mask, sites["y_px"].to_numpy(), sites["x_px"].to_numpy(), radius_px)
    bit = MASK_NO_SEARCH.bit_length() - 1
    header[f"MASKB{bit}"] = (MASK_NO_SEARCH, "NOSEARCH: beyond the artificial test's search")
    header["SEARCHR"] = (
        -1 if radius_px is None else int(radius_px),
        "[px] search radius around each mock (-1: all)",
    )
    searched = float(np.mean((out & MASK_NO_SEARCH) == 0))
    log.info("search radius %s px: %.1f %% of the mosaic searched", radius_px, 100 * searched)
    with atomic_path(out_path) as tmp:
        fits.PrimaryHDU(out, header).writeto(tmp, overwrite=True)


def make_matches(
    injected_path: str | os.PathLike,
    candidates_path: str | os.PathLike,
    peaks_path: str | os.PathLike,
    radii_px: Sequence[float],
) -> tuple[pd.DataFrame, dict]:
    """(matches, meta): :func:`~starclusters.artificial.matching.match_artificial` of one
    layer's injected mocks (``injected_path``) against its candidates and peaks."""
    truth = read_table(injected_path)
    matches = match_artificial(truth, read_table(candidates_path), read_table(peaks_path), radii_px)
    for radius in radii_px:
        label = f"recovered_{float(radius):g}px"
        log.info(
            "%d of %d mocks recovered within %g px", int(matches[label].sum()), len(matches), radius
        )
    meta = {
        **truth.attrs.get("meta", {}),
        "what": "every injected mock with its matches among the candidates and peaks of "
        "the injected mosaic (one-to-one, nearest first)",
        "radii_px": [float(r) for r in radii_px],
        "derived": "derived_<column>: the candidate matched at the primary radius, else at the "
        "next radius (derived_radius_px)",
    }
    return matches, meta


def recall_bins(section: Mapping) -> dict[str, np.ndarray]:
    """Bin edges per parameter from ``artificial.recall_bins`` (``{min, max, step}`` each)."""
    return {
        name: config_grid(section["recall_bins"][name], f"artificial.recall_bins.{name}")
        for name in BINNED
    }


def spatial_edges(shape: Sequence[int], bin_px: int) -> tuple[np.ndarray, np.ndarray]:
    """(x edges, y edges) px of square bins of ``bin_px`` over a mosaic of ``shape`` (H, W)."""
    height, width = (int(v) for v in shape)
    xs = np.unique(np.r_[np.arange(0, width, bin_px), width]).astype(float)
    ys = np.unique(np.r_[np.arange(0, height, bin_px), height]).astype(float)
    return xs, ys


def make_recall(
    matches_path: str | os.PathLike,
    section: Mapping,
    recall_path: str | os.PathLike,
    metrics_path: str | os.PathLike,
    map_path: str | os.PathLike,
    parameters_path: str | os.PathLike,
    bank_cut: Mapping | None = None,
) -> pd.DataFrame:
    """Write the recall table, the metrics table and Figs. 4.3a and 4.3b–g; returns the metrics.

    section: the ``artificial`` config section (match_radii_px, recall_bins, spatial_bin_px,
    spatial_max_log_mass_msun, reference). bank_cut: ``magnitude_limits`` and
    ``magnitude_cut`` of the ``photometry`` section, for the node's recall of the mocks the
    bank's cut keeps (:func:`~starclusters.artificial.recall.reference_subsets`); None: not
    given.
    """
    from starclusters.artificial.plots import plot_recall_map, plot_recall_parameters

    matches = read_table(matches_path)
    meta = matches.attrs.get("meta", {})
    shape = meta.get("mosaic_shape")
    if shape is None:
        raise InputFileError(f"{matches_path}: no mosaic_shape in its metadata; rerun the stage")
    radii = [float(r) for r in section["match_radii_px"]]
    edges = spatial_edges(shape, int(section["spatial_bin_px"]))
    max_mass = float(section["spatial_max_log_mass_msun"])
    recall = recall_table(matches, recall_bins(section), radii, edges, max_mass)
    metrics = metrics_table(matches, section["reference"], radii, bank_cut)
    for row in metrics.itertuples(index=False):
        if "recall" in row.metric and row.region == "all":
            log.info(
                "%s (%s, ≤ %g px): %.3f ± %.3f of %d",
                row.metric,
                row.region,
                row.radius_px,
                row.value,
                row.uncertainty,
                row.n,
            )
    common = {
        "radii_px": radii,
        "regions": "all; on_arm and off_arm when the galaxy has arms",
        "n_mocks": len(matches),
    }
    write_table(
        recall_path,
        recall,
        {
            **common,
            "what": "recall (recovered / injected) per bin, thesis Fig. 4.3",
            "bins": "[lo, hi), the last bin closed; spatial: mosaic px, mocks of log M < "
            f"{max_mass:g}",
            "uncertainty": "recall_err: binomial sigma; recall_lo/hi: Wilson interval at ±1 sigma",
        },
    )
    write_table(
        metrics_path,
        metrics,
        {
            **common,
            "what": "recall overall and at the reference node (all, clearly visible, and "
            "passing the bank's magnitude cut), parameter errors of recovered mocks",
            "reference": dict(section["reference"]),
            "bank_cut": dict(bank_cut or {}),
            "scatter": "1.4826 x median absolute deviation of (derived - true)",
        },
    )
    plot_recall_map(recall, matches, shape, radii[0], max_mass, map_path)
    plot_recall_parameters(recall, radii[0], parameters_path)
    return metrics


def make_class_visibility(
    matches_path: str | os.PathLike,
    peaks_path: str | os.PathLike,
    candidates_path: str | os.PathLike,
    radii_px: Sequence[float],
    figure_path: str | os.PathLike,
) -> None:
    """Write Fig. 4.2: the recovered mocks' peaks among all peaks of the original mosaic,
    with the catalogue cut its candidates (``candidates_path``) were made with."""
    from starclusters.artificial.plots import plot_class_visibility
    from starclusters.detect.candidates_stage import thresholds_of

    thresholds = thresholds_of(read_table(candidates_path), candidates_path)
    plot_class_visibility(
        read_table(matches_path), read_table(peaks_path), thresholds, radii_px, figure_path
    )


def make_selection(
    matches_path: str | os.PathLike,
    radius_px: float,
    seed: int,
    grid_path: str | os.PathLike,
    calibration_path: str | os.PathLike,
    calibration_png: str | os.PathLike,
    contours_png: str | os.PathLike,
    n_threads: int = 1,
) -> dict:
    """The selection function P(recovered within ``radius_px`` | log t, log M, A_V, r_h,
    background) of the pooled injections (:func:`~starclusters.artificial.selection.
    fit_selection`): its grid table, its cross-validated calibration table and both figures.
    Returns the fit's meta (Brier score, log loss, counts)."""
    from starclusters.artificial.selection import SelectionFunction, fit_selection
    from starclusters.artificial.selection_plots import (
        plot_selection_calibration,
        plot_selection_contours,
    )

    matches = read_table(matches_path)
    detected = f"recovered_{float(radius_px):g}px"
    if detected not in matches:
        raise InputFileError(f"{matches_path}: no column {detected}; rerun artificial_match")
    injections = matches  # its columns: the features (log_rh_arcsec from the mock table)
    try:
        grid, calibration, meta = fit_selection(
            injections, detected, seed=seed, n_threads=n_threads
        )
    except InputFileError as error:
        raise InputFileError(f"{matches_path}: {error}") from None
    meta = {
        **meta,
        "what": "P(detected | parameters) of the artificial-cluster test on its grid "
        "(starclusters.artificial.selection.SelectionFunction reads it)",
        "n_layers": matches.attrs.get("meta", {}).get("n_layers"),
    }
    log.info(
        "selection function of %d injections (%d recovered within %g px): Brier %.3f (base "
        "rate %.3f), log loss %.3f (%.3f)",
        len(injections),
        int(injections[detected].sum()),
        radius_px,
        meta["brier_cv"],
        meta["brier_base_rate"],
        meta["log_loss_cv"],
        meta["log_loss_base_rate"],
    )
    write_table(grid_path, grid, meta)
    write_table(
        calibration_path,
        calibration,
        {
            **meta,
            "what": "reliability of the selection function: cross-validated predictions "
            "of every injection in bins of predicted probability",
        },
    )
    plot_selection_calibration(calibration, meta, calibration_png)
    grid.attrs["meta"] = meta  # what the written table carries, without reading it back
    selection = SelectionFunction.from_table(grid, source=grid_path)
    plot_selection_contours(selection, contours_png, empirical=injections, detected_column=detected)
    return meta
