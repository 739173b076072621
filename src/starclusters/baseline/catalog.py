"""The classical peer's two steps as the workflow calls them: files in, tables out.

* :func:`make_photometry` — detection (:mod:`.detection`), aperture photometry and CI
  (:mod:`.aperture`), the CI → (r_h, aperture correction) model (:mod:`.apcorr`) and the
  CI cut calibrated on the PSF and mocks (:mod:`.classify`): one row per source.
* :func:`fit_catalog` — the SED fit of the sources that pass as clusters, by the SSP grid
  (:mod:`.sedfit`) or the IMF-sampled library (:mod:`.slug`), as a catalog with the CNN's
  candidate columns (:data:`starclusters.detect.catalog.CATALOG_COLUMNS`).

Columns of the photometry table (units in the names; magnitudes are Vega):
source_id, x, y (0-based px of the mosaic grid), ra_deg, dec_deg (ICRS, the mosaic's WCS),
segment_id, detection_snr, area_px (:func:`.detection.detect_sources`), ci_mag (CI in
``ci_band``), log_rh_arcsec (from the CI; NaN where the CI is a point source's or below),
per band mag_<band> (aperture-corrected total), mag_err_<band> (photometric only: the
aperture correction's own uncertainty, dominated by the unknown EFF γ — see
:mod:`.apcorr` — is not in it), mag_aper_<band> (4 px aperture), apcorr_mag_<band> (Δm,
m = m_aper − Δm), sky_<band> (annulus median, counts/s/px); passes_ci (CI > cut),
passes_quality (every band measured with error ≤ ``max_mag_err``), passes_mag_limits
(brighter than the optional magnitude limits), is_cluster (all three).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from starclusters.aperture import concentration_index, local_sky, magnitudes, photometry
from starclusters.baseline.apcorr import build_aperture_correction
from starclusters.baseline.classify import calibrate_ci_cut
from starclusters.baseline.detection import SOURCE_COLUMNS, detect_sources, usable_pixels
from starclusters.baseline.settings import FIT_METHODS, BaselineSettings
from starclusters.errors import ConfigError, InputFileError
from starclusters.photometry.population import passes_magnitude_cuts
from starclusters.photometry.settings import magnitude_cut_of

log = logging.getLogger(__name__)

#: Stage number mixed into the seed so the peer never shares a random stream with a stage.
BASELINE_STAGE = 11
#: Units of the columns whose names do not carry them (Parquet metadata).
UNITS = {
    "source_id": "running number of the detected source (the catalog's peak_id)",
    "x": "0-based column of the mosaic grid (windowed centroid)",
    "y": "0-based row of the mosaic grid",
    "detection_snr": "matched-filter S/N at the source's peak in the detection image",
    "area_px": "pixels of the thresholded segment holding the source",
    "ci_mag": "concentration index m(r1) - m(r2) in ci_band, mag",
    "sky_<band>": "sigma-clipped annulus median, counts/s per pixel",
    "class_smoothed": "NaN: no classical meaning (a CNN class-map value)",
    "class": "NaN: no classical meaning (the CNN's p_cluster)",
    "visibility": "NaN: not measured by the classical peer (thesis eq. 3.2)",
}


def _photometry_columns(bands: Sequence[str]) -> list[str]:
    per_band = []
    for band in bands:
        per_band += [
            f"mag_{band}",
            f"mag_err_{band}",
            f"mag_aper_{band}",
            f"apcorr_mag_{band}",
            f"sky_{band}",
        ]
    return [
        "source_id",
        "x",
        "y",
        "ra_deg",
        "dec_deg",
        "segment_id",
        "detection_snr",
        "area_px",
        "ci_mag",
        "log_rh_arcsec",
        *per_band,
        "passes_ci",
        "passes_quality",
        "passes_mag_limits",
        "is_cluster",
    ]


def _check_bands(bands, psf_paths: Mapping, zeropoints_mag: Mapping, exptime_s) -> None:
    for band in bands:
        if band not in zeropoints_mag:
            raise ConfigError(
                f"photometry.vega_zeropoint_mag.{band}: missing; every mosaic band needs a zero point"
            )
        if band not in psf_paths:
            raise ConfigError(
                f"psf: no PSF file for band {band}; give one per mosaic band "
                f"(have {sorted(psf_paths)})"
            )
        if exptime_s is not None and band not in exptime_s:
            raise ConfigError(f"exptime_s.{band}: missing; give every band's exposure time (s)")


def read_mosaic(band_paths: Mapping[str, str | os.PathLike], mask_path: str | os.PathLike | None):
    """(images (B, H, W) float64 counts/s, mask (H, W) or None, WCS, headers by band).

    InputFileError naming the file for a missing file, a band whose shape differs from the
    first band's, or a mask of another shape."""
    from starclusters.mosaic.prepare import read_image

    images, headers, wcs, shape, first = [], {}, None, None, None
    for band, path in band_paths.items():
        data, band_wcs, header = read_image(path)
        if data is None or np.ndim(data) != 2:
            raise InputFileError(f"{path}: expected a 2-D image for band {band}")
        if shape is None:
            shape, wcs, first = data.shape, band_wcs.celestial, path
        elif data.shape != shape:
            raise InputFileError(
                f"{path}: image is {data.shape[0]}×{data.shape[1]} px but {first} is "
                f"{shape[0]}×{shape[1]}; all bands must be on one grid (rerun the mosaic stage)"
            )
        images.append(np.asarray(data, np.float64))
        headers[band] = header
    mask = None
    if mask_path is not None:
        mask, _, _ = read_image(mask_path)
        if np.shape(mask) != shape:
            raise InputFileError(
                f"{mask_path}: mask is {np.shape(mask)} px but the images ({first}) are {shape}; "
                "use the mask of this mosaic"
            )
    return np.stack(images), mask, wcs, headers


def _exposure_times(headers: Mapping, band_paths: Mapping, exptime_s) -> dict[str, float]:
    if exptime_s is not None:
        return {b: float(exptime_s[b]) for b in band_paths}
    out = {}
    for band, header in headers.items():
        if "EXPTIME" not in header:
            raise InputFileError(
                f"{band_paths[band]}: no EXPTIME in the header; the photometric errors need the "
                "exposure time: add EXPTIME (s) or give exptime_s"
            )
        out[band] = float(header["EXPTIME"])
        if not out[band] > 0:
            raise InputFileError(f"{band_paths[band]}: EXPTIME = {out[band]} must be positive")
    return out


def read_band_psfs(psf_paths: Mapping, bands: Sequence[str], pixel_scale_arcsec: float):
    """(ePSFs (B, n, n), enclosed fractions (B,), oversampling) of ``bands``, checked by
    :func:`starclusters.mocks.psf.read_psfs` against the mosaic's pixel; the oversampling
    comes from the first file's OVERSAMP header (InputFileError naming it when absent)."""
    from astropy.io import fits

    from starclusters.mocks.psf import read_psfs

    first = psf_paths[bands[0]]
    try:
        header = fits.getheader(first)
    except (OSError, FileNotFoundError) as err:
        raise InputFileError(f"{first}: cannot read the PSF ({err}); run the PSF stage") from err
    if "OVERSAMP" not in header:
        raise InputFileError(
            f"{first}: no OVERSAMP in the header; write PSFs with starclusters.mocks.psf.write_psf"
        )
    oversampling = int(header["OVERSAMP"])
    epsfs, fractions = read_psfs(
        [psf_paths[b] for b in bands], bands, pixel_scale_arcsec, oversampling
    )
    return epsfs, fractions, oversampling


def read_bank(
    bank_tables: Sequence, bank_stamps: Sequence, bands: Sequence[str], n_max: int
) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_max`` mock stamps (M, B, S, S) counts/s and their magnitudes (M, B), read
    shard by shard. InputFileError naming a file whose stamps and rows disagree."""
    from starclusters.io import read_cube, read_table

    if len(bank_tables) != len(bank_stamps):
        raise InputFileError(
            f"{len(bank_tables)} mock tables but {len(bank_stamps)} stamp files; give the "
            "shards' .parquet and .fits in the same order"
        )
    stamps, mags, have = [], [], 0
    for table_path, stamp_path in zip(bank_tables, bank_stamps, strict=True):
        table = read_table(table_path)
        cube, _ = read_cube(stamp_path)
        if cube is None or cube.ndim != 4 or len(cube) != len(table) or cube.shape[1] != len(bands):
            raise InputFileError(
                f"{stamp_path}: stamps of shape {None if cube is None else cube.shape} do not fit "
                f"{table_path} ({len(table)} rows, {len(bands)} bands); rebuild the shard"
            )
        missing = [f"mag_{b}" for b in bands if f"mag_{b}" not in table.columns]
        if missing:
            raise InputFileError(f"{table_path}: lacks {missing}; rebuild the mock bank")
        stamps.append(np.asarray(cube, np.float32))
        mags.append(table[[f"mag_{b}" for b in bands]].to_numpy(float))
        have += len(table)
        if have >= n_max:
            break
    return np.concatenate(stamps)[:n_max], np.concatenate(mags)[:n_max]


def measure_sources(
    images: np.ndarray,
    good: np.ndarray,
    sources: pd.DataFrame,
    bands: Sequence[str],
    zeropoints_mag: Mapping[str, float],
    exptime_s: Mapping[str, float],
    settings: BaselineSettings,
) -> pd.DataFrame:
    """Per band aperture photometry of ``sources`` (x, y) on ``images`` (B, H, W) counts/s,
    and the CI: columns mag_aper_<band>, mag_err_<band>, sky_<band>, ci_mag."""
    x, y = sources["x"].to_numpy(float), sources["y"].to_numpy(float)
    bad = ~good
    out = {}
    for b, band in enumerate(bands):
        sky = local_sky(images[b], x, y, settings.sky_annulus_px, bad, settings.sky_clip_sigma)
        flux, err = photometry(
            images[b],
            x,
            y,
            settings.aperture_radius_px,
            settings.sky_annulus_px,
            exptime_s[band],
            bad,
            sky=sky,
        )
        out[f"mag_aper_{band}"], out[f"mag_err_{band}"] = magnitudes(
            flux, err, zeropoints_mag[band]
        )
        out[f"sky_{band}"] = sky[0]
        if band == settings.ci_band:
            out["ci_mag"] = concentration_index(
                images[b], x, y, settings.ci_radii_px, settings.sky_annulus_px, bad, sky=sky
            )
    return pd.DataFrame(out, index=sources.index)


def make_photometry(
    band_paths: Mapping[str, str | os.PathLike],
    mask_path: str | os.PathLike | None,
    psf_paths: Mapping[str, str | os.PathLike],
    bank_tables: Sequence[str | os.PathLike],
    bank_stamps: Sequence[str | os.PathLike] | None,
    zeropoints_mag: Mapping[str, float],
    exptime_s: Mapping[str, float] | None,
    settings: BaselineSettings,
    rng_seed: int,
    magnitude_limits: Mapping[str, float] | None = None,
    magnitude_cut: str = "all",
) -> tuple[pd.DataFrame, dict]:
    """Detect, measure and classify every source of a mosaic (module docstring).

    band_paths: band → mosaic FITS (counts/s, one common grid; the band order is the
    tables'); mask_path: the mosaic's mask (non-zero = unusable) or None; psf_paths: band →
    ePSF FITS; bank_tables, bank_stamps: the mock bank's shards (.parquet, .fits) for the CI
    calibration (stamps None: give ``settings.ci_cut_mag``); zeropoints_mag: band → Vega
    magnitude of 1 count/s; exptime_s: band → s, or None to read EXPTIME from the headers;
    rng_seed: the seed of the calibration's draws (deterministic given it);
    magnitude_limits: band → apparent Vega magnitude a cluster must be brighter than in
    every band given (magnitude_cut "all") or in one of them ("any"); None: no limit. Pass ``photometry.magnitude_limits`` — the cuts of
    the mock bank, whose mocks calibrate the CI cut and train the CNN — for a catalog with
    the CNN's selection; LEGUS's analogue is M_V ≤ −6 mag (Adamo et al. 2017 §3.2).

    Returns (table, meta): one row per source with the module docstring's columns (empty,
    with those columns, when nothing is found), and the metadata: settings, bands, zero
    points, exposure times, pixel scale, the CI cut and its calibration numbers, the
    aperture-correction model, counts and timings.
    """
    start = time.perf_counter()
    bands = list(band_paths)
    _check_bands(bands, psf_paths, zeropoints_mag, exptime_s)
    settings.check_bands(bands)
    images, mask, wcs, headers = read_mosaic(band_paths, mask_path)
    exptime = _exposure_times(headers, band_paths, exptime_s)
    from astropy.wcs.utils import proj_plane_pixel_area

    pixel_scale = float(np.sqrt(proj_plane_pixel_area(wcs)) * 3600.0)
    epsfs, fractions, oversampling = read_band_psfs(psf_paths, bands, pixel_scale)
    good = usable_pixels(images, mask)
    timings = {}

    t0 = time.perf_counter()
    sources = detect_sources(images, mask, settings, bands)
    timings["detection_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    measured = measure_sources(images, good, sources, bands, zeropoints_mag, exptime, settings)
    timings["photometry_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    apcorr = build_aperture_correction(epsfs, fractions, bands, oversampling, pixel_scale, settings)
    timings["aperture_correction_s"] = time.perf_counter() - t0

    rng = np.random.default_rng(np.random.SeedSequence([int(rng_seed), BASELINE_STAGE]))
    t0 = time.perf_counter()
    cut_meta: dict
    if settings.ci_cut_mag is not None:
        cut = float(settings.ci_cut_mag)
        cut_meta = {"cut_mag": cut, "rule": "fixed (baseline.ci_cut_mag)"}
    elif len(sources) == 0:
        cut = np.nan
        cut_meta = {"cut_mag": None, "rule": "not calibrated: no sources"}
    else:
        if not bank_stamps or settings.calibration_n == 0:
            raise ConfigError(
                "baseline.ci_cut_mag: the CI cut is calibrated on mock stamps, but none are given "
                "(or baseline.calibration_n is 0); pass the bank's stamp files or set ci_cut_mag"
            )
        mock_stamps, mock_mags = read_bank(
            bank_tables, bank_stamps, bands, max(4 * settings.calibration_n, 1)
        )
        calibrated, _ = calibrate_ci_cut(
            images,
            good,
            epsfs,
            fractions,
            oversampling,
            mock_stamps,
            mock_mags,
            bands,
            zeropoints_mag,
            exptime,
            settings,
            rng,
        )
        cut, cut_meta = calibrated.cut_mag, calibrated.to_meta()
    timings["ci_calibration_s"] = time.perf_counter() - t0

    n = len(sources)
    table = pd.DataFrame({"source_id": np.arange(n, dtype=np.int64)})
    for column in SOURCE_COLUMNS:
        table[column] = sources[column].to_numpy()
    if n:
        sky = wcs.pixel_to_world(table["x"].to_numpy(float), table["y"].to_numpy(float))
        table["ra_deg"], table["dec_deg"] = sky.icrs.ra.deg, sky.icrs.dec.deg
    else:
        table["ra_deg"], table["dec_deg"] = np.zeros(0), np.zeros(0)
    ci = measured["ci_mag"].to_numpy(float) if n else np.zeros(0)
    table["ci_mag"] = ci
    rh = apcorr.rh_from_ci(ci)
    with np.errstate(divide="ignore", invalid="ignore"):
        table["log_rh_arcsec"] = np.where(rh > 0, np.log10(np.where(rh > 0, rh, 1.0)), np.nan)
    correction = apcorr.correction_from_ci(ci) if n else np.zeros((0, len(bands)))
    quality = np.ones(n, bool)
    for b, band in enumerate(bands):
        aper = measured[f"mag_aper_{band}"].to_numpy(float) if n else np.zeros(0)
        err = measured[f"mag_err_{band}"].to_numpy(float) if n else np.zeros(0)
        table[f"mag_{band}"] = aper - correction[:, b]
        table[f"mag_err_{band}"] = err
        table[f"mag_aper_{band}"] = aper
        table[f"apcorr_mag_{band}"] = correction[:, b]
        table[f"sky_{band}"] = measured[f"sky_{band}"].to_numpy(float) if n else np.zeros(0)
        quality &= np.isfinite(aper) & (err <= settings.max_mag_err)
    for band in magnitude_limits or {}:
        if band not in bands:
            raise ConfigError(
                f"photometry.magnitude_limits.{band}: {band} is not a mosaic band {bands}"
            )
    bright = np.broadcast_to(
        passes_magnitude_cuts(
            {b: table[f"mag_{b}"].to_numpy(float) for b in magnitude_limits or {}},
            {b: float(v) for b, v in (magnitude_limits or {}).items()},
            magnitude_cut,
        ),
        n,
    )
    table["passes_ci"] = ci > cut
    table["passes_quality"] = quality
    table["passes_mag_limits"] = bright
    table["is_cluster"] = table["passes_ci"] & quality & bright
    table = table[_photometry_columns(bands)]
    timings["total_s"] = time.perf_counter() - start
    meta = {
        "method": "classical peer: detection, aperture photometry, CI cut (LEGUS/PHANGS-HST)",
        "bands": bands,
        "settings": settings.to_config(),
        "zeropoints_mag": {b: float(zeropoints_mag[b]) for b in bands},
        "exptime_s": exptime,
        "pixel_scale_arcsec": pixel_scale,
        "psf_oversampling": oversampling,
        "ci_cut": cut_meta,
        "magnitude_limits": dict(magnitude_limits or {}),
        "magnitude_cut": magnitude_cut,
        "aperture_correction": apcorr.to_meta(),
        "n_sources": int(n),
        "n_clusters": int(table["is_cluster"].sum()),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "units": UNITS,
        "rng_seed": int(rng_seed),
    }
    log.info(
        "%d sources, %d clusters (CI cut %.3f mag), %.1f s",
        n,
        meta["n_clusters"],
        cut,
        timings["total_s"],
    )
    return table, meta


def fit_catalog(
    photometry: pd.DataFrame,
    method: str,
    isochrones_path: str | os.PathLike,
    extinction_path: str | os.PathLike,
    bank_tables: Sequence[str | os.PathLike],
    photometry_config: Mapping,
    bands: Sequence[str],
    settings: BaselineSettings,
    distance_mpc: float,
    geometry=None,
    mocks_config: Mapping | None = None,
    rng_seed: int = 0,
) -> pd.DataFrame:
    """The SED-fitted cluster catalog of the sources with is_cluster (module docstring).

    photometry: :func:`make_photometry`'s table; method: "grid" (:func:`.sedfit.grid_fit`
    on the SSP grid of the isochrone and extinction tables, Kroupa IMF of
    ``photometry_config['imf']``) or "library" (:func:`.slug.library_fit` on the bank's
    tables, plus ``settings.library_extra`` clusters drawn with ``mocks_config`` and
    ``photometry_config['magnitude_limits']``); bands: the fitted bands; distance_mpc:
    Mpc; geometry: a :class:`~starclusters.detect.catalog.DiskGeometry` or None.

    Returns the columns of :data:`starclusters.detect.catalog.CATALOG_COLUMNS` first —
    peak_id = source_id; class_smoothed, class and visibility are NaN (no classical
    meaning); log_age_yr, log_mass_msun, av_mag the posterior medians; log_rh_arcsec from
    the CI (:mod:`.apcorr`); rh_pc, log_density_msun_pc3 as the CNN catalog's
    (:func:`~starclusters.detect.catalog.rh_pc`, :func:`~.half_mass_density`);
    galactocentric_kpc (NaN without geometry) — then the fit's _p16, _p84, _best,
    chi2_min, n_bands_fit (library: also library_n_eff, log_rh_arcsec_lib) and the
    photometry columns. ``attrs["meta"]`` describes the fit.
    """
    from starclusters.detect.catalog import CATALOG_COLUMNS, half_mass_density, rh_pc
    from starclusters.io import read_table

    if method not in FIT_METHODS:
        raise ConfigError(
            f"baseline fit method: must be one of {', '.join(FIT_METHODS)}, got {method!r}"
        )
    bands = list(bands)
    missing = [c for b in bands for c in (f"mag_{b}", f"mag_err_{b}") if c not in photometry]
    for column in ("is_cluster", "source_id", "x", "y", "ra_deg", "dec_deg", "log_rh_arcsec"):
        if column not in photometry:
            missing.append(column)
    if missing:
        raise InputFileError(
            f"the photometry table lacks {missing}; make it with make_photometry for bands {bands}"
        )
    clusters = photometry[photometry["is_cluster"].to_numpy(bool)].reset_index(drop=True)
    mag = clusters[[f"mag_{b}" for b in bands]].to_numpy(float).reshape(-1, len(bands))
    err = clusters[[f"mag_err_{b}" for b in bands]].to_numpy(float).reshape(-1, len(bands))
    start = time.perf_counter()
    meta = {"method": method, "bands": bands, "settings": settings.to_config()}
    if method == "grid":
        from starclusters.baseline.sedfit import grid_fit, ssp_grid
        from starclusters.photometry import kroupa_imf

        imf = photometry_config["imf"]
        grid = ssp_grid(
            read_table(isochrones_path),
            read_table(extinction_path),
            kroupa_imf(imf["mass_min_msun"], imf["mass_max_msun"]),
            bands,
            distance_mpc,
        )
        fit = grid_fit(mag, err, grid, settings.min_mag_err, settings.log_mass_msun_range)
        meta["grid"] = {
            "n_ages": int(grid.log_age_yr.size),
            "n_av": int(grid.av_mag.size),
            "log_age_yr": [float(grid.log_age_yr[0]), float(grid.log_age_yr[-1])],
            "av_mag": [float(grid.av_mag[0]), float(grid.av_mag[-1])],
            "log_mass_msun_prior": list(settings.log_mass_msun_range),
        }
    else:
        from starclusters.baseline.slug import extend_library, library_fit, read_library

        library = read_library(bank_tables, bands)
        meta["library"] = {"bank_members": len(library)}
        if settings.library_extra > 0:
            if mocks_config is None:
                raise ConfigError(
                    "baseline.library_extra: drawing extra library clusters needs the mocks "
                    "config section; pass mocks_config or set library_extra: 0"
                )
            from starclusters.photometry import population_from_config

            population = population_from_config(
                read_table(isochrones_path), read_table(extinction_path), photometry_config, bands
            )
            rng = np.random.default_rng(np.random.SeedSequence([int(rng_seed), BASELINE_STAGE, 1]))
            library, cost = extend_library(
                library,
                population,
                settings.library_extra,
                mocks_config,
                photometry_config["magnitude_limits"],
                rng,
                require=magnitude_cut_of(photometry_config),
            )
            meta["library"]["extra"] = cost
        meta["library"]["members"] = len(library)
        meta["library"]["bandwidth_mag"] = settings.library_bandwidth_mag
        fit = library_fit(mag, err, library, settings.library_bandwidth_mag, settings.min_mag_err)
    meta["fit_s"] = round(time.perf_counter() - start, 3)

    nan = np.full(len(clusters), np.nan)
    out = pd.DataFrame(
        {
            "peak_id": clusters["source_id"].to_numpy(np.int64),
            "x": clusters["x"].to_numpy(float),
            "y": clusters["y"].to_numpy(float),
            "ra_deg": clusters["ra_deg"].to_numpy(float),
            "dec_deg": clusters["dec_deg"].to_numpy(float),
            "class_smoothed": nan,
            "class": nan,
            "visibility": nan,
            "log_age_yr": fit["log_age_yr"].to_numpy(float),
            "log_mass_msun": fit["log_mass_msun"].to_numpy(float),
            "av_mag": fit["av_mag"].to_numpy(float),
            "log_rh_arcsec": clusters["log_rh_arcsec"].to_numpy(float),
        }
    )
    out["rh_pc"] = rh_pc(out["log_rh_arcsec"], distance_mpc)
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_density_msun_pc3"] = np.log10(
            half_mass_density(out["log_mass_msun"], out["rh_pc"])
        )
    out["galactocentric_kpc"] = (
        nan
        if geometry is None or len(out) == 0
        else geometry.galactocentric_kpc(out["ra_deg"].to_numpy(), out["dec_deg"].to_numpy())
    )
    out = out[list(CATALOG_COLUMNS)]
    extra = fit.drop(columns=[c for c in ("log_age_yr", "log_mass_msun", "av_mag") if c in fit])
    photometry_extra = clusters.drop(
        columns=[c for c in clusters.columns if c in out.columns or c == "source_id"]
    )
    out = pd.concat([out, extra.reset_index(drop=True), photometry_extra], axis=1)
    meta["n_clusters"] = int(len(out))
    out.attrs["meta"] = meta
    return out
