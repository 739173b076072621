"""The mock-bank stage's products, built from config sections."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from starclusters.errors import ConfigError
from starclusters.io import read_table
from starclusters.mocks.bank import build_shard
from starclusters.mocks.psf import psf_enclosed_fraction, psf_for_band, read_psf, read_psfs
from starclusters.mocks.render import StampRenderer
from starclusters.mocks.settings import PSF_DEFAULTS
from starclusters.mocks.star_groups import StarDraws, StarGroupSettings, build_star_group_shard
from starclusters.photometry.population import StellarPopulation
from starclusters.photometry.settings import magnitude_cut_of
from starclusters.photometry.stage import population_from_config
from starclusters.sections import grid

log = logging.getLogger(__name__)


def make_psf(
    band: str,
    psf: Mapping,
    filter_curve: str,
    pixel_scale_arcsec: float,
    *,
    halo: bool | None = None,
    fwhm_scale: float = 1.0,
) -> tuple[np.ndarray, float, str]:
    """The ePSF of ``band`` from the ``psf`` config section, the share of light inside it, its origin.

    halo: with the fitted WFC3/UVIS halo (None: ``psf.halo``, default false); fwhm_scale:
    the model dilated (an observed galaxy's PSF that differs from training's).
    """
    halo = bool(psf.get("halo", PSF_DEFAULTS["halo"])) if halo is None else halo
    if psf["source"] == "files":
        if halo or fwhm_scale != 1.0:
            raise ConfigError(
                f"psf.files.{band}: a FITS PSF is used as it is; the halo and the FWHM scale "
                "apply to the GalSim model only (psf.source: galsim)"
            )
        path = psf["files"][band]
        epsf = read_psf(
            path,
            band=band,
            native_scale_arcsec=pixel_scale_arcsec,
            oversampling=psf["oversampling"],
            size_arcsec=psf["size_arcsec"],
        )
        return epsf, psf_enclosed_fraction(path), f"file {path}"
    epsf, fraction = psf_for_band(
        band,
        filter_curve,
        pixel_scale_arcsec,
        psf["oversampling"],
        psf["size_arcsec"],
        with_enclosed_fraction=True,
        halo=halo,
        fwhm_scale=fwhm_scale,
    )
    extras = ("; WFC3/UVIS EE halo" if halo else "") + (
        f"; FWHM x{fwhm_scale:g}" if fwhm_scale != 1.0 else ""
    )
    return epsf, fraction, f"GalSim HST model at the pivot of {filter_curve}{extras}"


def renderer_from_files(
    psf_paths: Sequence[str],
    bands: Sequence[str],
    psf: Mapping,
    pixel_scale_arcsec: float,
    window_px: int,
    max_star_radius_arcsec: float | None = None,
) -> StampRenderer:
    """A StampRenderer for ``bands`` from the stage's PSF files (one per band, in band order).

    max_star_radius_arcsec: the EFF truncation radius (no star lies farther out).
    """
    epsfs, fractions = read_psfs(psf_paths, bands, pixel_scale_arcsec, psf["oversampling"])
    return StampRenderer(
        epsfs,
        psf["oversampling"],
        pixel_scale_arcsec,
        window_px,
        psf["core_radius_px"],
        flux_fraction=fractions,
        max_star_radius_arcsec=max_star_radius_arcsec,
    )


def population_and_renderer(
    isochrones_path: str, extinction_path: str, psf_paths: Sequence[str], config: Mapping
) -> tuple[StellarPopulation, StampRenderer]:
    """The stellar population and the stamp renderer of ``config`` from the stages' files.

    config needs bands, photometry, psf, pixel_scale_arcsec, window_px and
    mocks.truncation_arcsec.
    """
    bands = list(config["bands"])
    population = population_from_config(
        read_table(isochrones_path), read_table(extinction_path), config["photometry"], bands
    )
    renderer = renderer_from_files(
        psf_paths,
        bands,
        config["psf"],
        config["pixel_scale_arcsec"],
        config["window_px"],
        config["mocks"]["truncation_arcsec"],
    )
    return population, renderer


def stamp_header(config: Mapping, shard: int, what: str, centre: str, comment: str) -> dict:
    """FITS header cards of a shard of noise-free ``what`` stamps whose centre pixel lies
    ``centre``, with ``comment`` (the axes, where the parameters are)."""
    return {
        "BUNIT": ("counts/s", f"noise-free {what} light per native pixel"),
        "BANDS": (",".join(config["bands"]), "bands along axis 2"),
        "PIXSCALE": (config["pixel_scale_arcsec"], "[arcsec] native pixel"),
        "SHARD": (shard, "shard index"),
        "CENTRE": (config["window_px"] // 2, f"0-based pixel {centre}"),
        "COMMENT": comment,
    }


def build_mock_shard(
    shard: int,
    seed: int,
    isochrones_path: str,
    extinction_path: str,
    psf_paths: Sequence[str],
    config: Mapping,
    progress: bool = True,
    require: str | None = None,
    keep=None,
):
    """Stamps (N, B, S, S), their parameter table and FITS header cards for shard ``shard``.

    config: the whole (validated) config; only bands, pixel_scale_arcsec,
    window_px, photometry, psf and mocks are read. require: the magnitude cut
    (default ``photometry.magnitude_cut``); keep: a function of the population giving
    :func:`~starclusters.mocks.bank.render_mock`'s keep probability (None: every draw).
    """
    phot = config["photometry"]
    population, renderer = population_and_renderer(
        isochrones_path, extinction_path, psf_paths, config
    )
    stamps, table = build_shard(
        shard,
        seed,
        config["mocks"]["per_shard"],
        population,
        renderer,
        config["mocks"],
        population.log_ages_yr,
        grid(phot["extinction"]["av_mag"], "photometry.extinction.av_mag"),
        phot["magnitude_limits"],
        progress=progress,
        require=require or magnitude_cut_of(phot),
        keep=None if keep is None else keep(population),
    )
    comment = "Axes (mock, band, y, x); parameters in shard_<i>.parquet."
    return stamps, table, stamp_header(config, shard, "cluster", "centred on the cluster", comment)


def build_star_groups(
    shard: int,
    seed: int,
    isochrones_path: str,
    extinction_path: str,
    psf_paths: Sequence[str],
    config: Mapping,
    progress: bool = True,
):
    """Star-group stamps (N, B, S, S), their table and FITS header cards for shard ``shard``
    (:mod:`starclusters.mocks.star_groups`: the hard negatives of training).

    config: bands, pixel_scale_arcsec, window_px, photometry (the population, the
    extinction grid and the bank's magnitude cuts), psf and star_groups.
    """
    bands = list(config["bands"])
    phot = config["photometry"]
    settings = StarGroupSettings.from_config(config.get("star_groups"))
    population = population_from_config(
        read_table(isochrones_path), read_table(extinction_path), phot, bands
    )
    # after the centroid shift a star lies at most twice the group radius from the centre
    renderer = renderer_from_files(
        psf_paths,
        bands,
        config["psf"],
        config["pixel_scale_arcsec"],
        config["window_px"],
        2 * settings.group_radius_arcsec + config["pixel_scale_arcsec"],
    )
    stamps, table = build_star_group_shard(
        shard,
        seed,
        StarDraws(population, bands, settings.star_limit_mag),
        renderer,
        settings,
        grid(phot["extinction"]["av_mag"], "photometry.extinction.av_mag"),
        phot["magnitude_limits"],
        require=magnitude_cut_of(phot),
        progress=progress,
    )
    comment = "Axes (group, band, y, x); parameters in the .parquet beside it."
    return stamps, table, stamp_header(config, shard, "star-group", "on the flux centroid", comment)


def median_background(
    cutouts_path: str, table_path: str, bands: Sequence[str]
) -> tuple[np.ndarray, list[float]]:
    """The background cutout of median brightness in the reddest band ((B, S, S) counts/s,
    float64) of one background shard, and the exposure times (B,) s."""
    from starclusters.io import read_cube

    cube, _ = read_cube(cutouts_path)
    cutouts = read_table(table_path)
    brightness = cutouts[f"median_counts_s_{bands[-1]}"].to_numpy()
    pick = int(np.argsort(brightness)[len(brightness) // 2])
    exptime = [cutouts.attrs["meta"]["exptime_s"][b] for b in bands]
    return cube[pick].astype(np.float64), exptime


def star_group_figure(
    stamp_path: str,
    table_path: str,
    bank_table_paths: Sequence[str],
    background_cutouts: str,
    background_table: str,
    bands: Sequence[str],
    seed: int,
    path: str,
) -> None:
    """The star groups of one shard beside the bank (:func:`~starclusters.mocks.plots.plot_star_groups`)."""
    import pandas as pd

    from starclusters.io import read_cube
    from starclusters.mocks.plots import plot_star_groups

    stamps, _ = read_cube(stamp_path)
    bank = pd.concat([read_table(p) for p in bank_table_paths], ignore_index=True)
    background, exptime = median_background(background_cutouts, background_table, bands)
    plot_star_groups(
        np.asarray(stamps, dtype=np.float64),
        read_table(table_path),
        bank,
        bands,
        background,
        exptime,
        np.random.default_rng(seed),
        path,
    )


def bank_figures(
    isochrones_path: str,
    extinction_path: str,
    psf_paths: Sequence[str],
    table_paths: Sequence[str],
    config: Mapping,
    seed: int,
    grid_png: str,
    colours_png: str,
    background_cutouts: str | None = None,
    background_table: str | None = None,
) -> None:
    """The bank's figures: a mass × r_h stamp grid at three ages (on a real background
    cutout when one is given: the one of median brightness), and its integrated colours."""
    import pandas as pd

    from starclusters.mocks.plots import plot_bank_colours, plot_mock_grid

    bands = list(config["bands"])
    phot = config["photometry"]
    population, renderer = population_and_renderer(
        isochrones_path, extinction_path, psf_paths, config
    )
    background = exptime = None
    if background_cutouts is not None:
        background, exptime = median_background(background_cutouts, background_table, bands)
    plot_mock_grid(
        population,
        renderer,
        config["mocks"],
        np.random.default_rng(seed),
        grid_png,
        background=background,
        exptime_s=exptime,
    )
    table = pd.concat([read_table(p) for p in table_paths], ignore_index=True)
    plot_bank_colours(table, bands, phot["magnitude_limits"], colours_png)
