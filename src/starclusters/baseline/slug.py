"""Stochastic SED fit in the spirit of cluster_slug (Krumholz et al. 2015, MNRAS 452, 1447).

Below ~10⁴ M☉ a cluster's light is ruled by its few brightest stars, and the SSP model of
:mod:`starclusters.baseline.sedfit` (a fully sampled IMF) is biased. cluster_slug instead
compares the photometry with a large library of clusters whose stars were drawn from the
IMF one by one, and turns the library into a posterior with a kernel density estimate.
Here the library is the mock bank's table (``mag_<band>``: IMF-sampled integrated
apparent Vega magnitudes, and the true log_age_yr, log_mass_msun, av_mag, log_rh_arcsec),
optionally extended by :func:`extend_library` (the bank's own recipe, without rendering).

Per source with magnitudes m_b and errors σ_b (floored by ``min_mag_err`` in quadrature),
library member i weighs

    w_i = exp(−½ Σ_b (m_b − m_i,b)² / (σ_b² + h²)),

h the kernel bandwidth (``library_bandwidth_mag``; cluster_slug's default 0.1 mag): the
Gaussian kernel density of the library convolved with the photometric error, at the
source's photometry. The posterior of any parameter is the w-weighted distribution of
the members' values: median, 16th/84th percentiles; ``*_best`` is the heaviest member,
``chi2_min`` its Σ_b (m_b − m_i,b)² / (σ_b² + h²), ``library_n_eff`` = (Σw)² / Σw² the
number of members that carry the posterior (≲ 10: too few neighbours, an unreliable
posterior).

The prior is the library's distribution: the bank's (log t uniform on the isochrone grid,
log M uniform in 3.5–5.5, A_V uniform on its grid, thesis Table 4.1) **cut by the bank's
magnitude limits** (F336W < 24, F438W < 23.5, F814W < 23 by default: fainter draws were
redrawn). A faint source thus sees only the library's bright corner — massive and/or young
and little extincted — and sources outside the library's reach (fainter, or masses below
3.5) get the nearest members, with a large chi2_min and a small n_eff.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from starclusters.baseline.sedfit import (
    PARAMETERS,
    fit_columns,
    prepare_errors,
    summarise,
    weighted_quantiles,
)
from starclusters.errors import InputFileError
from starclusters.mocks.settings import mock_section

#: Parameters a library member carries (the fitted ones and the size).
LIBRARY_PARAMETERS = (*PARAMETERS, "log_rh_arcsec")
#: Sources per vectorised block (block × members × bands float64 per array).
BLOCK = 64


@dataclass(frozen=True)
class ClusterLibrary:
    """IMF-sampled clusters: mags (L, B) apparent Vega in ``bands`` order, params: L rows of
    LIBRARY_PARAMETERS (log_rh_arcsec may be NaN for members drawn without one)."""

    bands: tuple[str, ...]
    mags: np.ndarray
    params: pd.DataFrame

    def __len__(self) -> int:
        return len(self.mags)


def read_library(bank_tables: Sequence[str | os.PathLike], bands: Sequence[str]) -> ClusterLibrary:
    """The mock bank's shards as a library. InputFileError naming the file when one lacks
    ``mag_<band>`` or a parameter column."""
    from starclusters.io import read_table

    mags, params = [], []
    for path in bank_tables:
        table = read_table(path)
        need = [f"mag_{b}" for b in bands] + list(LIBRARY_PARAMETERS)
        missing = [c for c in need if c not in table.columns]
        if missing:
            raise InputFileError(
                f"{path}: the mock table lacks columns {missing}; rebuild the mock bank with "
                "these bands"
            )
        mags.append(table[[f"mag_{b}" for b in bands]].to_numpy(float))
        params.append(table[list(LIBRARY_PARAMETERS)].reset_index(drop=True))
    if not mags:
        raise InputFileError("no mock-bank tables given for the cluster library")
    return ClusterLibrary(tuple(bands), np.concatenate(mags), pd.concat(params, ignore_index=True))


def extend_library(
    library: ClusterLibrary,
    population,
    n: int,
    mocks: Mapping,
    limits_mag: Mapping[str, float],
    rng: np.random.Generator,
    require: str = "all",
) -> tuple[ClusterLibrary, dict]:
    """``library`` plus ``n`` clusters drawn with the bank's recipe, not rendered.

    population: a :class:`~starclusters.photometry.StellarPopulation` for the library's
    bands; mocks: the ``mocks`` config section (priors, faint_limit_mag, faint_packets);
    limits_mag, require: the bank's magnitude cuts and how they combine (draws that fail
    are redrawn, as in the bank).
    Parameters from :func:`starclusters.mocks.params.draw_parameters`, stars from
    :func:`starclusters.mocks.bank.draw_stars`. Returns (library, cost) with cost
    {"drawn", "kept", "seconds", "ms_per_kept"}.
    """
    from starclusters.mocks.bank import draw_stars
    from starclusters.mocks.params import draw_parameters
    from starclusters.photometry.population import passes_magnitude_cuts

    start = time.perf_counter()
    av_grid = np.unique(population.extinction["av_mag"].to_numpy(float))
    mags, rows, drawn = [], [], 0
    max_draws = int(mock_section(mocks)["max_draws_per_mock"]) * max(n, 1)
    while len(rows) < n and drawn < max_draws:
        row = draw_parameters(1, population.log_ages_yr, av_grid, mocks, rng).iloc[0]
        drawn += 1
        stars = draw_stars(
            population, row["log_age_yr"], row["log_mass_msun"], row["av_mag"], mocks, rng
        )
        m = population.integrated_magnitudes(stars)
        if not passes_magnitude_cuts(m, limits_mag, require):
            continue
        mags.append([m[b] for b in library.bands])
        rows.append(
            {
                "log_age_yr": row["log_age_yr"],
                "log_mass_msun": row["log_mass_msun"],
                "av_mag": row["av_mag"],
                "log_rh_arcsec": float(np.log10(row["rh_arcsec"])),
            }
        )
    seconds = time.perf_counter() - start
    cost = {
        "drawn": drawn,
        "kept": len(rows),
        "seconds": round(seconds, 3),
        "ms_per_kept": round(1e3 * seconds / max(len(rows), 1), 3),
    }
    if not rows:
        return library, cost
    return (
        ClusterLibrary(
            library.bands,
            np.concatenate([library.mags, np.asarray(mags, float)]),
            pd.concat([library.params, pd.DataFrame(rows)], ignore_index=True),
        ),
        cost,
    )


def library_fit(
    mag,
    mag_err,
    library: ClusterLibrary,
    bandwidth_mag: float = 0.1,
    min_mag_err: float = 0.05,
) -> pd.DataFrame:
    """Kernel-density fit of sources' magnitudes against ``library`` (module docstring).

    mag, mag_err: (N, B) apparent Vega magnitudes and errors in ``library.bands`` order,
    NaN where a band is not measured; bandwidth_mag: h, mag; min_mag_err: floor, mag.
    Returns N rows with :func:`~starclusters.baseline.sedfit.fit_columns` plus
    log_rh_arcsec_lib (the weighted median of the members' r_h) and library_n_eff; sources
    with fewer than two usable bands get NaN.
    """
    mag, w = prepare_errors(mag, mag_err, min_mag_err)
    if mag.shape[1] != len(library.bands):
        raise ValueError(f"mag has {mag.shape[1]} bands, the library {len(library.bands)}")
    usable_members = np.all(np.isfinite(library.mags), axis=1)
    lib_mags = library.mags[usable_members]
    params = {k: library.params[k].to_numpy(float)[usable_members] for k in LIBRARY_PARAMETERS}
    n = len(mag)
    columns = {
        c: np.full(n, np.nan) for c in [*fit_columns(), "log_rh_arcsec_lib", "library_n_eff"]
    }
    used = w > 0
    n_bands = used.sum(axis=1)
    columns["n_bands_fit"] = n_bands.astype(float)
    variance = np.where(used, 1.0 / np.where(used, w, 1.0), np.inf)  # σ² + floor²
    inv = 1.0 / (variance + bandwidth_mag**2)  # 0 for unused bands
    for start in range(0, n, BLOCK):
        sl = slice(start, min(n, start + BLOCK))
        d = mag[sl][:, None, :] - lib_mags[None]  # (n, L, B)
        chi2 = (inv[sl][:, None, :] * d**2).sum(axis=2)  # (n, L)
        log_w = -0.5 * chi2
        usable = n_bands[sl] >= 2
        log_w[~usable] = -np.inf
        best = np.argmin(chi2, axis=1)
        summary = summarise({k: params[k] for k in PARAMETERS}, log_w, best)
        for name, values in summary.items():
            columns[name][sl] = np.where(usable, values, np.nan)
        top = chi2[np.arange(len(best)), best]
        columns["chi2_min"][sl] = np.where(usable, top, np.nan)
        weight = np.exp(-0.5 * (chi2 - top[:, None]))
        finite_rh = np.isfinite(params["log_rh_arcsec"])
        rh = (
            weighted_quantiles(params["log_rh_arcsec"][finite_rh], weight[:, finite_rh], [0.5])[
                :, 0
            ]
            if finite_rh.any()
            else np.full(len(best), np.nan)
        )
        columns["log_rh_arcsec_lib"][sl] = np.where(usable, rh, np.nan)
        n_eff = weight.sum(axis=1) ** 2 / (weight**2).sum(axis=1)
        columns["library_n_eff"][sl] = np.where(usable, n_eff, np.nan)
    return pd.DataFrame(columns)
