"""The photometry stage's products, built from the ``photometry`` config section."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from starclusters.errors import InputFileError
from starclusters.photometry.extinction import extinction_table
from starclusters.photometry.filters import describe
from starclusters.photometry.imf import kroupa_imf
from starclusters.photometry.isochrones import isochrones_on_grid
from starclusters.photometry.parsec import read_cmd_isochrones, read_parsec_grid
from starclusters.photometry.population import StellarPopulation
from starclusters.photometry.synphot import PARSEC_SED
from starclusters.sections import grid

log = logging.getLogger(__name__)

#: Columns of ``isochrones.parquet`` besides the ``abs_mag_<band>`` ones.
ISOCHRONE_COLUMNS = [
    "log_age_yr",
    "metallicity_z",
    "phase_label",
    "mini_msun",
    "mass_msun",
    "log_l_lsun",
    "log_teff_k",
    "log_g_cgs",
]


#: Metallicity-clamp warnings already given in this process: each is logged once.
_WARNED: set[tuple] = set()


def _warn_once(key: tuple, message: str, *args) -> None:
    """``log.warning(message, *args)`` the first time ``key`` is seen in this process."""
    if key not in _WARNED:
        _WARNED.add(key)
        log.warning(message, *args)


def _requested_ages(log_ages_yr, raw: pd.DataFrame) -> np.ndarray:
    """Sorted unique log ages (rounded to 1e-4 dex, the tables' age key); ValueError if
    any is not a finite number inside the isochrones' age range."""
    ages = np.asarray(log_ages_yr, dtype=float).ravel()
    if ages.size == 0 or not np.isfinite(ages).all():
        raise ValueError(f"log_ages_yr: give one or more finite log10 ages (yr), got {ages}")
    lo, hi = float(raw["log_age_yr"].min()), float(raw["log_age_yr"].max())
    outside = ages[(ages < lo - 1e-3) | (ages > hi + 1e-3)]
    if outside.size:
        raise ValueError(
            f"log_ages_yr: log t = {', '.join(f'{a:g}' for a in outside)} outside the isochrones' "
            f"range {lo:g}–{hi:g}; supply CMD isochrones (photometry.isochrones.source: cmd) "
            "that cover them"
        )
    return np.unique(np.round(ages, 4))


def build_isochrone_table(
    photometry: Mapping, bands: Sequence[str], log_ages_yr: Sequence[float] | None = None
) -> tuple[pd.DataFrame, dict]:
    """Isochrones with absolute Vega magnitudes in ``bands`` on the configured age grid.

    photometry: the ``photometry`` config section. Native HST columns of CMD files
    are used where present, otherwise the magnitudes are synthesised from the
    grid's broadband magnitudes (:mod:`starclusters.photometry.synphot`).
    log_ages_yr: ages (log10 yr) to build instead of the config's
    ``isochrones.log_age_yr`` range, any values inside the grid's age range (e.g.
    a catalog's ages); each is interpolated between its two bracketing grid ages
    along evolutionary phase, like the configured grid. They are rounded to 1e-4
    dex (the age key of the table and of :class:`StellarPopulation`), sorted and
    deduplicated.
    Returns the table and metadata describing how each band was obtained.
    """
    settings = photometry["isochrones"]
    if settings["source"] == "cmd":
        raw = read_cmd_isochrones(settings["cmd_files"])
    else:
        raw = read_parsec_grid(settings.get("grid_file"))
    if log_ages_yr is None:
        ages = grid(settings["log_age_yr"], "photometry.isochrones.log_age_yr")
    else:
        ages = _requested_ages(log_ages_yr, raw)
    z = float(settings["metallicity_z"])
    iso = isochrones_on_grid(raw, ages, z, settings["z_tolerance_dex"])
    z_grid = np.sort(raw["metallicity_z"].unique())
    if not z_grid[0] <= z <= z_grid[-1]:
        _warn_once(
            ("metallicity", raw.attrs.get("source"), z),
            "metallicity Z = %g is outside the isochrone grid [%.4g, %.4g]; using the edge "
            "(within z_tolerance_dex = %g; logged once per process)",
            z,
            z_grid[0],
            z_grid[-1],
            settings["z_tolerance_dex"],
        )
    methods = {}
    for band in bands:
        column = f"abs_mag_{band}"
        if column in iso.columns:
            methods[band] = "native isochrone column"
            continue
        curve = photometry["filter_curves"][band]
        missing = [f"abs_mag_{k}" for k in PARSEC_SED.anchors if f"abs_mag_{k}" not in iso.columns]
        if missing:
            raise InputFileError(
                f"{raw.attrs.get('source', 'isochrones')}: no {band} column and no Johnson/SDSS "
                f"columns ({', '.join(missing)}) to synthesise it from; request {band} from CMD"
            )
        iso[column] = PARSEC_SED.predict(iso, curve)
        methods[band] = f"synthetic photometry through {describe(curve)} (SED fit to UBVRI+ugriz)"
    table = iso[ISOCHRONE_COLUMNS + [f"abs_mag_{b}" for b in bands]].astype(
        {"phase_label": np.int16}
    )
    meta = {
        "source": raw.attrs.get("source"),
        "metallicity_z_requested": z,
        "magnitudes": "absolute, Vega system",
        "band_method": methods,
        "age_interpolation": "along evolutionary phase between bracketing grid ages (linear in log t)",
    }
    return table, meta


def build_extinction_table(photometry: Mapping, bands: Sequence[str]) -> tuple[pd.DataFrame, dict]:
    """A_band per band, A_V grid point and T_eff (see :mod:`starclusters.photometry.extinction`)."""
    settings = photometry["extinction"]
    av_grid = grid(settings["av_mag"], "photometry.extinction.av_mag")
    curves = {band: photometry["filter_curves"][band] for band in bands}
    table = extinction_table(curves, av_grid, settings["law"], settings["r_v"])
    meta = {
        "law": settings["law"],
        "r_v": settings["r_v"],
        "spectrum": "black body at log_teff_k",
        "filter_curves": {band: describe(curve) for band, curve in curves.items()},
    }
    return table, meta


def population_from_config(
    isochrones: pd.DataFrame, extinction: pd.DataFrame, photometry: Mapping, bands: Sequence[str]
) -> StellarPopulation:
    """A :class:`StellarPopulation` from the stage's tables and the ``photometry`` config."""
    imf = photometry["imf"]
    return StellarPopulation(
        isochrones=isochrones,
        extinction=extinction,
        bands=list(bands),
        distance_mpc=float(photometry["distance_mpc"]),
        zeropoints_mag=dict(photometry["vega_zeropoint_mag"]),
        imf=kroupa_imf(imf["mass_min_msun"], imf["mass_max_msun"]),
    )
