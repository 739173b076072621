"""An independent check of the model's colours: fully sampled SSPs against BC03.

The photometry stage's integrated colours rest on PARSEC isochrones and on HST
magnitudes synthesised from their broadband magnitudes. Bruzual & Charlot (2003;
2016 version with the MILES library, Padova 1994 tracks) is an independent model
of the same thing: :data:`DEFAULT_TABLE` holds its SSP magnitudes per solar mass
formed, integrated through the project's own filter curves by
docs/scripts/bc03_reference.py (resources/reference/README.md says how it was made).

:func:`project_ssp_magnitudes` gives the project's magnitudes of a fully sampled
(massive-cluster) population at any ages and metallicity, :func:`compare_ssp_colours`
sets its colours beside BC03's, and :func:`light_fractions` says which stars make a
band's light (the evidence where the two disagree). docs/reference_comparison.md
reports the comparison.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from starclusters.photometry.imf import BrokenPowerLawIMF, kroupa_imf
from starclusters.photometry.isochrones import ssp_magnitudes, ssp_weights
from starclusters.photometry.synphot import ANCHOR_BANDS

#: The shipped BC03 table (docs/scripts/bc03_reference.py writes it).
DEFAULT_TABLE = (
    Path(__file__).resolve().parents[3] / "resources" / "reference" / "bc03_ssp_magnitudes.csv"
)

#: HST curves compared: M83's WFC3/UVIS bands and M31's (PHAT) bands.
HST_CURVES = (
    "HST_WFC3_F336W",
    "HST_WFC3_F438W",
    "HST_WFC3_F814W",
    "HST_ACS_WFC_F475W",
    "HST_ACS_WFC_F814W",
)
#: Johnson-Cousins curves of the SED anchors (pyphot's, as synphot uses them) whose
#: magnitudes the PARSEC grid tabulates: the project side uses those native columns.
#: Comparing U−B with F336W−F438W tells the models' differences (tracks, atmospheres)
#: from the error of synthesising HST magnitudes out of UBVRI+ugriz.
ANCHOR_CURVES = ("GROUND_JOHNSON_U", "GROUND_JOHNSON_B", "GROUND_JOHNSON_V", "GROUND_COUSINS_I")
#: Filter curves of the BC03 table.
BC03_CURVES = HST_CURVES + ANCHOR_CURVES
#: Curve -> the PARSEC grid's native column (``abs_mag_<column>``), Vega anchors only.
NATIVE_COLUMNS = {
    curve: column for column, (curve, system) in ANCHOR_BANDS.items() if system == "vega"
}

#: Colours compared: label -> (blue curve, red curve). M83: WFC3/UVIS F336W, F438W,
#: F814W; M31 (PHAT): WFC3/UVIS F336W, ACS/WFC F475W and F814W.
COLOURS: dict[str, tuple[str, str]] = {
    "F336W-F438W": ("HST_WFC3_F336W", "HST_WFC3_F438W"),
    "F438W-F814W": ("HST_WFC3_F438W", "HST_WFC3_F814W"),
    "F336W-F475W": ("HST_WFC3_F336W", "HST_ACS_WFC_F475W"),
    "F475W-F814W": ("HST_ACS_WFC_F475W", "HST_ACS_WFC_F814W"),
}
#: Native PARSEC colours (no HST synthesis on the project side), for diagnosis.
ANCHOR_COLOURS: dict[str, tuple[str, str]] = {
    "U-B": ("GROUND_JOHNSON_U", "GROUND_JOHNSON_B"),
    "B-V": ("GROUND_JOHNSON_B", "GROUND_JOHNSON_V"),
    "V-I": ("GROUND_JOHNSON_V", "GROUND_COUSINS_I"),
}

#: Where PARSEC and BC03 agree at equal Z: their native Johnson-Cousins colours (U−B,
#: B−V, V−I; no HST synthesis involved) differ by at most :data:`NATIVE_AGREEMENT_MAG`.
#: Z -> log t windows (docs/reference_comparison.md, "Independent SSP check").
TRACKS_AGREE: dict[float, tuple[tuple[float, float], ...]] = {
    0.008: ((7.8, 8.3), (9.3, 9.4)),
    0.02: ((7.8, 8.3),),
}
NATIVE_AGREEMENT_MAG = 0.07
#: Issue 14's target for the HST colours where the tracks agree.
TARGET_MAG = 0.1


def read_bc03_table(path: str | Path = DEFAULT_TABLE) -> pd.DataFrame:
    """The BC03 magnitude table (``bc03_z``, ``log_age_yr``, ``abs_mag_<curve>`` ...)."""
    return pd.read_csv(path, comment="#")


def bc03_metallicities(table: pd.DataFrame) -> np.ndarray:
    """The BC03 metallicities Z in ``table`` (BC03 Z_sun = 0.02)."""
    return np.sort(table["bc03_z"].unique())


def nearest_bc03_z(metallicity_z: float, table: pd.DataFrame) -> float:
    """The BC03 metallicity of ``table`` nearest to ``metallicity_z`` in log Z."""
    zs = bc03_metallicities(table)
    return float(zs[np.argmin(np.abs(np.log10(zs) - np.log10(metallicity_z)))])


def bc03_magnitudes(
    table: pd.DataFrame, bc03_z: float, log_ages_yr: Sequence[float]
) -> pd.DataFrame:
    """BC03 magnitudes per Msun formed at ``log_ages_yr``: linear in log t between the
    table's ages (0.02–0.05 dex apart). ValueError for a Z not in the table or an age
    outside its range."""
    part = table[np.isclose(table["bc03_z"], bc03_z, rtol=1e-6, atol=0.0)]
    if part.empty:
        raise ValueError(
            f"BC03 Z = {bc03_z:g} is not in the table; it has Z = "
            f"{', '.join(f'{z:g}' for z in bc03_metallicities(table))}"
        )
    part = part.sort_values("log_age_yr")
    ages = np.asarray(log_ages_yr, dtype=float)
    lo, hi = part["log_age_yr"].iloc[0], part["log_age_yr"].iloc[-1]
    if ages.min() < lo - 1e-6 or ages.max() > hi + 1e-6:
        raise ValueError(f"log t outside the BC03 table's range {lo:g}–{hi:g}: {ages}")
    out = pd.DataFrame({"log_age_yr": ages})
    for column in [c for c in part.columns if c.startswith("abs_mag_")]:
        out[column] = np.interp(ages, part["log_age_yr"], part[column])
    return out


def _photometry_for(photometry: Mapping, metallicity_z: float | None, curves) -> dict:
    """The ``photometry`` section with one band per curve (named by the curve)."""
    section = copy.deepcopy(dict(photometry))
    section["filter_curves"] = {curve: curve for curve in curves if curve not in NATIVE_COLUMNS}
    if metallicity_z is not None:
        section["isochrones"]["metallicity_z"] = float(metallicity_z)
    return section


def _imf(photometry: Mapping) -> BrokenPowerLawIMF:
    imf = photometry["imf"]
    return kroupa_imf(imf["mass_min_msun"], imf["mass_max_msun"])


def project_isochrones(
    photometry: Mapping,
    log_ages_yr: Sequence[float],
    metallicity_z: float | None = None,
    curves: Sequence[str] = BC03_CURVES,
) -> pd.DataFrame:
    """The project's isochrones at ``log_ages_yr`` with ``abs_mag_<curve>`` columns.

    photometry: the ``photometry`` config section; metallicity_z overrides its
    ``isochrones.metallicity_z`` (a Z above the grid is clamped as in the stage).
    HST curves are synthesised as in the stage; the curves of :data:`NATIVE_COLUMNS`
    are the grid's own Johnson-Cousins magnitudes.
    """
    from starclusters.photometry.stage import build_isochrone_table

    section = _photometry_for(photometry, metallicity_z, curves)
    bands = [NATIVE_COLUMNS.get(curve, curve) for curve in curves]
    table, _ = build_isochrone_table(section, bands, log_ages_yr=log_ages_yr)
    return table.rename(
        columns={
            f"abs_mag_{NATIVE_COLUMNS[c]}": f"abs_mag_{c}" for c in curves if c in NATIVE_COLUMNS
        }
    )


def project_ssp_magnitudes(
    photometry: Mapping,
    log_ages_yr: Sequence[float],
    metallicity_z: float | None = None,
    curves: Sequence[str] = BC03_CURVES,
    isochrones: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Absolute magnitudes per Msun of initial mass of fully sampled populations.

    One row per age: ``log_age_yr``, ``metallicity_z`` (the isochrones' Z after
    interpolation/clamping) and ``abs_mag_<curve>``; the IMF is the config's.
    isochrones: a table from :func:`project_isochrones` to reuse.
    """
    if isochrones is None:
        isochrones = project_isochrones(photometry, log_ages_yr, metallicity_z, curves)
    imf = _imf(photometry)
    rows = []
    for age in np.round(np.asarray(log_ages_yr, dtype=float), 4):
        iso = isochrones[np.isclose(isochrones["log_age_yr"], age)]
        mags = ssp_magnitudes(iso, imf, list(curves))
        rows.append(
            {
                "log_age_yr": float(age),
                "metallicity_z": float(iso["metallicity_z"].iloc[0]),
                **{f"abs_mag_{c}": m for c, m in mags.items()},
            }
        )
    return pd.DataFrame(rows)


def compare_ssp_colours(
    photometry: Mapping,
    log_ages_yr: Sequence[float],
    metallicity_z: float | None = None,
    bc03_z: float | None = None,
    table: pd.DataFrame | None = None,
    colours: Mapping[str, tuple[str, str]] = COLOURS,
    project: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The project's massive-cluster colours beside BC03's.

    photometry: the ``photometry`` config section (its metallicity unless
    ``metallicity_z`` is given); bc03_z: the BC03 metallicity to compare with
    (default: the nearest in log Z to the project's Z after clamping to the
    isochrone grid); table: the BC03 table (default: the shipped one); project: a
    :func:`project_ssp_magnitudes` result to reuse.
    Returns one row per age and colour: ``log_age_yr``, ``colour``, ``project``,
    ``bc03``, ``delta`` (project − BC03, mag), ``project_z``, ``bc03_z``.
    """
    table = read_bc03_table() if table is None else table
    curves = sorted({c for pair in colours.values() for c in pair})
    if project is None:
        project = project_ssp_magnitudes(photometry, log_ages_yr, metallicity_z, curves)
    project_z = float(project["metallicity_z"].iloc[0])
    bc03_z = nearest_bc03_z(project_z, table) if bc03_z is None else float(bc03_z)
    bc03 = bc03_magnitudes(table, bc03_z, project["log_age_yr"])
    rows = []
    for k, age in enumerate(project["log_age_yr"]):
        for label, (blue, red) in colours.items():
            ours = project[f"abs_mag_{blue}"].iloc[k] - project[f"abs_mag_{red}"].iloc[k]
            theirs = bc03[f"abs_mag_{blue}"].iloc[k] - bc03[f"abs_mag_{red}"].iloc[k]
            rows.append(
                {
                    "log_age_yr": float(age),
                    "colour": label,
                    "project": float(ours),
                    "bc03": float(theirs),
                    "delta": float(ours - theirs),
                    "project_z": project_z,
                    "bc03_z": bc03_z,
                }
            )
    return pd.DataFrame(rows)


#: Ages whose near-UV light A stars make (log t / yr), over which BC03's own spectra give
#: how an HST colour follows the native U−B (:func:`native_sensitivity`).
A_STAR_AGES = (7.6, 8.6)


def native_sensitivity(
    table: pd.DataFrame,
    bc03_z: float,
    colour: tuple[str, str],
    native: tuple[str, str] = ANCHOR_COLOURS["U-B"],
    log_ages_yr: tuple[float, float] = A_STAR_AGES,
) -> float:
    """d colour / d native colour of BC03's own SSPs at ``bc03_z``: the slope of a
    straight-line fit over the ages within ``log_ages_yr`` (inclusive).

    colour, native: (blue curve, red curve) of the table. No HST synthesis is involved on
    either side, so the slope is a property of the spectra: F336W lies wholly below the
    Balmer jump, Johnson U straddles it, and for A-star populations F336W−F438W changes
    1.7 times as fast as U−B (docs/reference_comparison.md). A model difference in U−B
    (tracks, atmospheres) therefore shows in F336W−F438W amplified by that factor; what
    remains of Δ(colour) after slope × Δ(native) is the synthesis' own part.
    """
    rows = table[np.isclose(table["bc03_z"], float(bc03_z))]
    lo, hi = log_ages_yr
    rows = rows[(rows["log_age_yr"] >= lo - 1e-6) & (rows["log_age_yr"] <= hi + 1e-6)]
    if len(rows) < 3:
        raise ValueError(f"fewer than 3 BC03 ages at Z = {bc03_z} within {log_ages_yr}")

    def of(pair):
        return (rows[f"abs_mag_{pair[0]}"] - rows[f"abs_mag_{pair[1]}"]).to_numpy(float)

    return float(np.polyfit(of(native), of(colour), 1)[0])


def light_fractions(
    iso: pd.DataFrame, imf: BrokenPowerLawIMF, band: str, log_teff_cool: float = 3.7
) -> dict[str, float]:
    """Fractions of a fully sampled population's light in ``band`` by kind of star.

    iso: one isochrone with ``abs_mag_<band>`` (or ``band="bolometric"``: ``log_l_lsun``),
    ``log_teff_k`` and ``phase_label``. Returns ``cool`` (log T_eff < ``log_teff_cool``:
    red supergiants, red giants, AGB stars), ``core_he_burning`` (PARSEC labels 4–6,
    blue loops included), ``tp_agb`` (label 8) and ``main_sequence`` (labels 0–1).
    """
    if band == "bolometric":
        per_star = 10.0 ** iso["log_l_lsun"].to_numpy()
    else:
        per_star = 10.0 ** (-0.4 * iso[f"abs_mag_{band}"].to_numpy())
    light = ssp_weights(iso, imf) * per_star
    total = light.sum()
    label = iso["phase_label"].to_numpy()
    masks = {
        "cool": iso["log_teff_k"].to_numpy() < log_teff_cool,
        "core_he_burning": (label >= 4) & (label <= 6),
        "tp_agb": label == 8,
        "main_sequence": label <= 1,
    }
    return {name: float(light[mask].sum() / total) for name, mask in masks.items()}
