"""The mock bank's priors and selection next to real clusters (docs/mock_bank_vs_real.md).

* :func:`read_ryon2015` reads Ryon et al. (2015, MNRAS 452, 525) table 3 (M83
  young massive clusters). Ryon writes the EFF profile as
  ``mu(r) = mu_0 (1 + r^2/a^2)^(-eta)``, the bank (and Elson, Fall & Freeman 1987)
  as ``(1 + r^2/a^2)^(-gamma/2)``, so **gamma = 2 eta**. Ryon's effective radius is
  that of the untruncated profile, ``R_eff = a sqrt(2^(1/(eta-1)) - 1)`` (finite for
  eta > 1), and the core radius ``r_c = a sqrt(2^(1/eta) - 1)``; the table's R_eff,
  R_core and eta satisfy both to 0.003 dex, which is how the convention was checked.
* :func:`bank_support` says whether an (a, gamma) pair could be drawn by the bank
  (a and gamma in their boxes, truncated half-number radius in its range).
* :func:`mock_magnitudes` gives IMF-sampled integrated magnitudes for a table of
  drawn mock parameters, as the bank computes them before its magnitude cuts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from starclusters.errors import InputFileError
from starclusters.mocks.eff import half_number_radius
from starclusters.photometry.population import StellarPopulation, passes_magnitude_cuts

#: Arcseconds per radian.
ARCSEC_PER_RADIAN = 180.0 * 3600.0 / np.pi

#: Ryon et al. (2015): radii are reliable for eta above this (gamma = 2 eta > 2.6).
RYON_RELIABLE_ETA = 1.3

RYON_COLUMNS = ("ID", "Eta", "logReff", "logRcore", "logAge", "logMass")


def pc_per_arcsec(distance_mpc: float) -> float:
    """Parsecs per arcsecond at ``distance_mpc`` (small-angle): 21.82 pc at 4.5 Mpc."""
    return float(distance_mpc) * 1e6 / ARCSEC_PER_RADIAN


def eff_scale_from_core_radius(core_radius, eta):
    """EFF scale a from Ryon's core radius r_c = a sqrt(2^(1/eta) - 1) (same units as r_c)."""
    eta = np.asarray(eta, dtype=float)
    return np.asarray(core_radius, dtype=float) / np.sqrt(2.0 ** (1.0 / eta) - 1.0)


def read_ryon2015(path: str | os.PathLike) -> pd.DataFrame:
    """Ryon et al. (2015) table 3 as one row per cluster.

    Columns: ``cluster_id``, ``eta``, ``eta_err`` (NaN if the table has no ``e_Eta``),
    ``gamma`` (= 2 eta, the bank's EFF slope),
    ``reff_pc`` (untruncated half-light radius; NaN where eta <= 1), ``core_radius_pc``,
    ``eff_a_pc`` (from the core radius and eta), ``log_age_yr``, ``log_mass_msun`` and
    ``reliable`` (eta > 1.3, where Ryon et al. trust the radii).
    """
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as err:
        raise InputFileError(f"{path}: cannot read the Ryon et al. (2015) table ({err})") from err
    missing = [c for c in RYON_COLUMNS if c not in table.columns]
    if missing:
        raise InputFileError(f"{path}: columns {missing} are missing; is this Ryon+2015 table 3?")
    eta = table["Eta"].to_numpy(float)
    core = 10.0 ** table["logRcore"].to_numpy(float)
    reff = np.where(eta > 1.0, 10.0 ** table["logReff"].to_numpy(float), np.nan)
    return pd.DataFrame(
        {
            "cluster_id": table["ID"].to_numpy(),
            "eta": eta,
            "eta_err": table["e_Eta"].to_numpy(float) if "e_Eta" in table else np.nan,
            "gamma": 2.0 * eta,
            "reff_pc": reff,
            "core_radius_pc": core,
            "eff_a_pc": eff_scale_from_core_radius(core, eta),
            "log_age_yr": table["logAge"].to_numpy(float),
            "log_mass_msun": table["logMass"].to_numpy(float),
            "reliable": eta > RYON_RELIABLE_ETA,
        }
    )


def read_mass_cdf(path: str | os.PathLike) -> pd.DataFrame:
    """A digitised cumulative mass distribution: two columns, log M and the CDF value.

    Returns ``log_mass_msun`` and ``fraction`` sorted by mass. The Adamo et al. (2015)
    M83 curve in ``shared/reference`` falls with mass: it is the fraction of clusters
    *above* M.
    """
    try:
        table = pd.read_csv(path, header=None, comment="#")
    except (OSError, ValueError) as err:
        raise InputFileError(f"{path}: cannot read the mass CDF ({err})") from err
    if table.shape[1] != 2:
        raise InputFileError(f"{path}: expected two columns (log M, CDF), got {table.shape[1]}")
    values = table.apply(pd.to_numeric, errors="coerce").dropna().to_numpy(float)
    values = values[np.argsort(values[:, 0], kind="stable")]
    return pd.DataFrame({"log_mass_msun": values[:, 0], "fraction": values[:, 1]})


def bank_support(a_arcsec, gamma, mocks: Mapping) -> dict[str, np.ndarray]:
    """Which (a, gamma) pairs the bank can draw, with the reasons.

    a_arcsec, gamma: arrays (broadcast); mocks: the ``mocks`` config section.
    Returns boolean arrays ``a_in``, ``gamma_in``, ``rh_in`` (the truncated half-number
    radius within ``mocks.rh_arcsec``; False where gamma <= 2), ``inside`` (all three)
    and the float array ``rh_arcsec`` (NaN where gamma <= 2).
    """
    a = np.asarray(a_arcsec, dtype=float)
    g = np.asarray(gamma, dtype=float)
    a, g = np.broadcast_arrays(a, g)
    a_lim, g_lim, rh_lim = mocks["eff_a_arcsec"], mocks["eff_gamma"], mocks["rh_arcsec"]
    rh = np.full(a.shape, np.nan)
    ok = (g > 2.0) & np.isfinite(a) & (a > 0)
    rh[ok] = half_number_radius(a[ok], g[ok], mocks["truncation_arcsec"])
    a_in = (a >= a_lim["min"]) & (a <= a_lim["max"])
    g_in = (g >= g_lim["min"]) & (g <= g_lim["max"])
    with np.errstate(invalid="ignore"):
        rh_in = (rh >= rh_lim["min"]) & (rh <= rh_lim["max"])
    return {
        "a_in": a_in,
        "gamma_in": g_in,
        "rh_in": rh_in,
        "inside": a_in & g_in & rh_in,
        "rh_arcsec": rh,
    }


def mock_magnitudes(
    population: StellarPopulation, params: pd.DataFrame, rng: np.random.Generator
) -> pd.DataFrame:
    """Apparent integrated Vega magnitudes (``mag_<band>``) of IMF-sampled mocks.

    params: rows with ``log_age_yr`` (on the population's grid), ``log_mass_msun`` and
    ``av_mag``, as from :func:`starclusters.mocks.params.draw_parameters`. One
    IMF realisation per row, in row order; the index of ``params`` is kept.
    """
    rows = []
    for age, log_mass, av in params[["log_age_yr", "log_mass_msun", "av_mag"]].itertuples(
        index=False
    ):
        stars = population.cluster_stars(age, 10.0**log_mass, av, rng)
        rows.append(population.integrated_magnitudes(stars))
    out = pd.DataFrame(rows, index=params.index, columns=list(population.bands))
    return out.add_prefix("mag_")


def passes_cuts(
    mags: pd.DataFrame, limits_mag: Mapping[str, float], require: str = "all"
) -> np.ndarray:
    """Boolean mask of the rows that pass the bank's cuts (``mag_<band> < limit`` in all
    bands, or in any: :func:`~starclusters.photometry.population.passes_magnitude_cuts`)."""
    columns = {band: mags[f"mag_{band}"].to_numpy(float) for band in limits_mag}
    return np.broadcast_to(passes_magnitude_cuts(columns, limits_mag, require), len(mags)).copy()
