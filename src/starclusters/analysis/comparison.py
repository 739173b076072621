"""Candidates against a published (or the synthetic galaxy's true) cluster catalog
(thesis §3.3.2, Figs. 3.15 and 3.17): read, map columns, cross-match on the sky, compare.

A catalog is read with astropy (CSV, FITS or VOTable) and its columns renamed to the
project's by a column map ``{our name: catalog column}``. Our names:

* ``ra_deg``, ``dec_deg`` (ICRS, deg; required);
* ``log_age_yr``, ``log_mass_msun``, ``av_mag``, and a size as ``log_rh_pc``,
  ``rh_pc``, ``log_rh_arcsec`` or ``rh_arcsec`` (any subset);
* ``<quantity>_min`` / ``<quantity>_max`` for any quantity above: the catalog's own
  range or errors bars (drawn as horizontal bars, thesis Fig. 3.17).

Sizes are compared as log10(r_h / pc) (:data:`COMPARED`), converted at the galaxy's
distance. Matching is one to one, nearest pair first, within a radius in arcsec
(:func:`starclusters.detect.matching.match_positions` on tangent-plane offsets).
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from starclusters.detect.catalog import ARCSEC_PER_RAD
from starclusters.detect.matching import match_positions
from starclusters.errors import ConfigError, InputFileError

#: Compared quantities: name -> (axis label, unit).
COMPARED = {
    "log_age_yr": ("log10(age / yr)", "dex"),
    "log_mass_msun": ("log10(M / M☉)", "dex"),
    "av_mag": ("A_V (mag)", "mag"),
    "log_rh_pc": ("log10(r_h / pc)", "dex"),
}
#: Size columns a catalog may give, in the order they are used.
SIZE_COLUMNS = ("log_rh_pc", "rh_pc", "log_rh_arcsec", "rh_arcsec")
#: Names a column map may use.
KNOWN = {"ra_deg", "dec_deg", *COMPARED, *SIZE_COLUMNS}
KNOWN |= {f"{name}_{end}" for name in (*COMPARED, *SIZE_COLUMNS) for end in ("min", "max")}
#: astropy formats of the config's ``format`` values.
FORMATS = {"csv": "ascii.csv", "fits": "fits", "votable": "votable"}


def check_comparison_config(config: Mapping) -> None:
    """ConfigError naming the key for an ``analysis.comparison`` section that cannot work:
    source truth without the synthetic galaxy, source file without path or ra/dec columns."""
    section = (config.get("analysis") or {}).get("comparison") or {}
    source = section.get("source", "none")
    key = "analysis.comparison"
    if source == "truth" and config["mosaic"]["source"] != "synthetic":
        raise ConfigError(f"{key}.source: 'truth' needs mosaic.source: synthetic; give a file")
    if source == "file":
        if not section.get("path"):
            raise ConfigError(f"{key}.path: missing (needed with source: file)")
        columns = section.get("columns") or {}
        missing = [c for c in ("ra_deg", "dec_deg") if c not in columns]
        if missing:
            raise ConfigError(f"{key}.columns: give the catalog's column for {missing}")
        unknown = sorted(set(columns) - KNOWN)
        if unknown:
            raise ConfigError(
                f"{key}.columns: unknown names {unknown}; use some of {sorted(KNOWN)}"
            )


def pc_per_arcsec(distance_mpc: float) -> float:
    """pc of sky per arcsec at ``distance_mpc``."""
    return float(distance_mpc) * 1e6 / ARCSEC_PER_RAD


def read_catalog(path: str | os.PathLike, fmt: str, columns: Mapping[str, str]) -> pd.DataFrame:
    """The catalog at ``path`` (fmt: csv, fits or votable) with ``columns`` ({our name:
    catalog column}) renamed to our names; other columns are dropped.

    InputFileError names the file and the missing columns; ConfigError an unknown name.
    """
    from astropy.table import Table

    unknown = sorted(set(columns) - KNOWN)
    if unknown:
        raise ConfigError(
            f"analysis.comparison.columns: unknown names {unknown}; use some of {sorted(KNOWN)}"
        )
    for need in ("ra_deg", "dec_deg"):
        if need not in columns:
            raise ConfigError(f"analysis.comparison.columns: give the catalog's {need} column")
    if fmt not in FORMATS:
        raise ConfigError(f"analysis.comparison.format: one of {sorted(FORMATS)}, got {fmt!r}")
    if not os.path.exists(path):
        raise InputFileError(f"{path}: no such catalog (analysis.comparison.path)")
    try:
        table = Table.read(os.fspath(path), format=FORMATS[fmt])
    except Exception as err:  # astropy raises many kinds for a malformed file
        raise InputFileError(f"{path}: not a readable {fmt} table ({err})") from err
    missing = sorted(c for c in columns.values() if c not in table.colnames)
    if missing:
        raise InputFileError(
            f"{path}: no columns {missing} (analysis.comparison.columns); it has {table.colnames}"
        )
    data = {
        ours: np.ma.filled(np.asarray(table[theirs], float), np.nan)
        for ours, theirs in columns.items()
    }
    return pd.DataFrame(data)


def with_log_rh_pc(catalog: pd.DataFrame, distance_mpc: float) -> pd.DataFrame:
    """``catalog`` with log_rh_pc (and _min/_max) from whichever size column it has."""
    out = catalog.copy()
    scale = pc_per_arcsec(distance_mpc)
    convert = {
        "log_rh_pc": lambda v: v,
        "rh_pc": np.log10,
        "log_rh_arcsec": lambda v: v + math.log10(scale),
        "rh_arcsec": lambda v: np.log10(v * scale),
    }
    for source in SIZE_COLUMNS:
        if source in out.columns:
            with np.errstate(divide="ignore", invalid="ignore"):
                for end in ("", "_min", "_max"):
                    if f"{source}{end}" in out.columns:
                        out[f"log_rh_pc{end}"] = convert[source](
                            out[f"{source}{end}"].astype(float)
                        )
            break
    return out


def tangent_offsets_arcsec(ra_deg, dec_deg, centre_ra_deg: float, centre_dec_deg: float):
    """(n, 2) gnomonic offsets (east, north) from the centre, arcsec."""
    import astropy.units as u
    from astropy.coordinates import SkyCoord, SkyOffsetFrame

    origin = SkyCoord(centre_ra_deg * u.deg, centre_dec_deg * u.deg, frame="icrs")
    points = SkyCoord(np.asarray(ra_deg, float) * u.deg, np.asarray(dec_deg, float) * u.deg)
    offset = points.transform_to(SkyOffsetFrame(origin=origin))
    return np.stack([offset.lon.to_value(u.arcsec), offset.lat.to_value(u.arcsec)], axis=1)


def cross_match(
    candidates: pd.DataFrame, catalog: pd.DataFrame, radius_arcsec: float
) -> pd.DataFrame:
    """The catalog's objects with their matched candidate (one to one, nearest first).

    Returns one row per catalog object: its columns prefixed ``catalog_``, candidate_row
    (row of ``candidates``, −1 if unmatched), separation_arcsec (NaN if unmatched) and,
    for matches, the candidate's values of :data:`COMPARED` prefixed ``derived_``.
    """
    out = catalog.add_prefix("catalog_").reset_index(drop=True)
    n = len(out)
    index = np.full(n, -1, np.int64)
    separation = np.full(n, np.nan)
    if n and len(candidates):
        ra0 = float(np.nanmedian(candidates["ra_deg"]))
        dec0 = float(np.nanmedian(candidates["dec_deg"]))
        ours = tangent_offsets_arcsec(candidates["ra_deg"], candidates["dec_deg"], ra0, dec0)
        theirs = tangent_offsets_arcsec(catalog["ra_deg"], catalog["dec_deg"], ra0, dec0)
        index, separation = match_positions(theirs, ours, radius_arcsec)
    out["candidate_row"] = index
    out["separation_arcsec"] = separation
    hit = index >= 0
    for name in COMPARED:
        column = np.full(n, np.nan)
        if name in candidates.columns:
            column[hit] = candidates[name].to_numpy(float)[index[hit]]
        out[f"derived_{name}"] = column
    return out


def candidate_quantities(candidates: pd.DataFrame) -> pd.DataFrame:
    """``candidates`` with log_rh_pc (log10 of the catalog's rh_pc) added."""
    out = candidates.copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_rh_pc"] = np.log10(out["rh_pc"].to_numpy(float)) if "rh_pc" in out else np.nan
    return out


def comparison_summary(matched: pd.DataFrame) -> pd.DataFrame:
    """Per compared quantity: n pairs, median (derived − catalog), robust scatter
    (1.4826 × MAD) and the 16th/84th percentiles of the difference, in the quantity's unit."""
    rows = []
    for name, (_, unit) in COMPARED.items():
        ours, theirs = matched[f"derived_{name}"], matched.get(f"catalog_{name}")
        diff = (ours - theirs).to_numpy(float) if theirs is not None else np.zeros(0)
        diff = diff[np.isfinite(diff)]
        median = float(np.median(diff)) if diff.size else math.nan
        rows.append(
            {
                "quantity": name,
                "n": int(diff.size),
                "median_difference": median,
                "robust_scatter": float(1.4826 * np.median(np.abs(diff - median)))
                if diff.size
                else math.nan,
                "p16_difference": float(np.percentile(diff, 16)) if diff.size else math.nan,
                "p84_difference": float(np.percentile(diff, 84)) if diff.size else math.nan,
                "unit": unit,
            }
        )
    return pd.DataFrame(rows)
