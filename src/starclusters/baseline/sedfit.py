"""Deterministic SED fit: χ² over the project's own simple-stellar-population (SSP) grid.

The model (:func:`ssp_grid`): for every age of the isochrone table (log t/yr on its grid,
6.6–10.1 in 0.05 dex by default) and every A_V node of the extinction table (0–3 mag in
0.1, Cardelli et al. 1989, R_V = 3.1), the apparent Vega magnitudes of a fully sampled
population of 1 M☉ initial mass (Kroupa 2001 IMF, remnants dark):
:func:`starclusters.photometry.isochrones.ssp_magnitudes` of the isochrone whose every
point is reddened by its own A_band(A_V, T_eff) (:class:`~starclusters.photometry.ExtinctionGrid`,
a black body of that T_eff through the filter), plus the distance modulus. That is exactly
how the mocks' stars are reddened (:meth:`StellarPopulation.star_counts`), so the SSP's
extinction is the flux-weighted mean of its stars' — hot stars dominate the blue, cool
giants the red — not one A_band per band.

The fit (:func:`grid_fit`), per source with magnitudes m_b and errors σ_b (NaN: band not
used), σ_b² ← σ_b² + ``min_mag_err``² (the floor, LEGUS 0.05 mag):

* the mass analytically at each node: m_b = M_b(t, A_V) − 2.5 log10 M, so
  μ̂ = 2.5 log10 M̂ = Σ w_b (M_b − m_b) / Σ w_b with w_b = 1/σ_b², and
  χ²(t, A_V, μ) = χ²_node + (μ − μ̂)² Σ w_b;
* prior flat in log t (the grid nodes), A_V (the nodes) and log M within
  ``log_mass_msun_range``: the posterior of a node, the mass integrated out, is
  exp(−χ²_node / 2) · [Φ((μ_hi − μ̂) s⁻¹) − Φ((μ_lo − μ̂) s⁻¹)], s = (Σ w_b)^(−1/2);
* outputs: the best node (least χ² with μ clipped to the prior: ``*_best``, ``chi2_min``)
  and the posterior's median and 16th/84th percentiles of log_age_yr, av_mag and
  log_mass_msun (mass: each node's μ̂ clipped to the prior; the spread within a node,
  s / 2.5 ≈ 0.02 dex at 0.05 mag errors, is neglected). Percentiles of a discrete
  distribution come from its mid-point CDF (linear between nodes).

With three bands and three parameters the fit has no degrees of freedom left: χ² says
little about the fit's quality (LEGUS fits ≥ 4 bands), and the age–extinction degeneracy
shows in wide, often bimodal posteriors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.special import log_ndtr

from starclusters.errors import ConfigError
from starclusters.photometry.extinction import ExtinctionGrid
from starclusters.photometry.imf import BrokenPowerLawIMF
from starclusters.photometry.isochrones import ssp_magnitudes
from starclusters.photometry.population import distance_modulus

#: The fitted parameters, in output order.
PARAMETERS = ("log_age_yr", "log_mass_msun", "av_mag")
#: Percentiles of the posterior reported per parameter (median and ±1σ for a Gaussian).
QUANTILES = (0.16, 0.5, 0.84)
#: Sources per vectorised block (memory: block × nodes × bands × 8 bytes × ~4 arrays).
BLOCK = 256


def fit_columns() -> list[str]:
    """Columns of a fit's result: per parameter the median, _p16, _p84 and _best; chi2_min,
    n_bands_fit."""
    out = []
    for name in PARAMETERS:
        out += [name, f"{name}_p16", f"{name}_p84", f"{name}_best"]
    return [*out, "chi2_min", "n_bands_fit"]


@dataclass(frozen=True)
class SSPGrid:
    """Model magnitudes per 1 M☉: mag (T, A, B) apparent Vega on the log_age_yr (T,) and
    av_mag (A,) nodes, for ``bands`` (B,)."""

    bands: tuple[str, ...]
    log_age_yr: np.ndarray
    av_mag: np.ndarray
    mag: np.ndarray

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(log_age_yr (G,), av_mag (G,), mag (G, B)) over all G = T·A nodes, age-major."""
        t, a = np.meshgrid(self.log_age_yr, self.av_mag, indexing="ij")
        return t.ravel(), a.ravel(), self.mag.reshape(-1, len(self.bands))


def ssp_grid(
    isochrones: pd.DataFrame,
    extinction: pd.DataFrame,
    imf: BrokenPowerLawIMF,
    bands: Sequence[str],
    distance_mpc: float,
) -> SSPGrid:
    """The SSP magnitudes of 1 M☉ on every (age, A_V) node (module docstring).

    isochrones: the photometry stage's table (log_age_yr, mini_msun, log_teff_k,
    abs_mag_<band>); extinction: its extinction table; imf: e.g. ``kroupa_imf(0.08, 100)``;
    distance_mpc: Mpc. ConfigError names a band missing from either table.
    """
    bands = list(bands)
    for band in bands:
        if f"abs_mag_{band}" not in isochrones.columns:
            raise ConfigError(
                f"band {band} is not in the isochrone table; rerun the photometry stage"
            )
    ext = ExtinctionGrid.from_table(extinction, bands)
    dm = distance_modulus(distance_mpc)
    ages = np.sort(isochrones["log_age_yr"].unique())
    out = np.empty((ages.size, ext.av_mag.size, len(bands)))
    for i, (_, iso) in enumerate(isochrones.groupby("log_age_yr", sort=True)):
        iso = iso.sort_values("mini_msun").reset_index(drop=True)
        teff = iso["log_teff_k"].to_numpy(float)
        base = {b: iso[f"abs_mag_{b}"].to_numpy(float) for b in bands}
        for j, av in enumerate(ext.av_mag):
            reddened = iso.copy()
            for band in bands:
                reddened[f"abs_mag_{band}"] = base[band] + ext.for_stars(band, float(av), teff)
            mags = ssp_magnitudes(reddened, imf, bands)
            out[i, j] = [mags[b] + dm for b in bands]
    return SSPGrid(tuple(bands), ages, np.asarray(ext.av_mag, float), out)


def weighted_quantiles(values: np.ndarray, weights: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Quantiles ``q`` (Q,) of discrete distributions: values (K,) shared or (N, K), weights
    (N, K) ≥ 0. Mid-point CDF (each value holds half its weight below itself), linear
    between values, the end values beyond. Returns (N, Q); NaN where all weights are 0."""
    weights = np.asarray(weights, float)
    values = np.broadcast_to(np.asarray(values, float), weights.shape)
    order = np.argsort(values, axis=1, kind="stable")
    v = np.take_along_axis(values, order, axis=1)
    w = np.take_along_axis(weights, order, axis=1)
    total = w.sum(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        w = w / total
    cdf = np.cumsum(w, axis=1) - 0.5 * w
    out = np.empty((len(w), len(q)))
    if w.shape[1] == 1:
        out[:] = v[:, :1]
    rows = np.arange(len(w))
    for j, p in enumerate(q):
        if w.shape[1] == 1:
            break
        k = np.clip((cdf < p).sum(axis=1), 1, w.shape[1] - 1)
        lo, hi = cdf[rows, k - 1], cdf[rows, k]
        f = np.clip((p - lo) / np.where(hi > lo, hi - lo, 1.0), 0.0, 1.0)
        out[:, j] = v[rows, k - 1] + f * (v[rows, k] - v[rows, k - 1])
    out[~(total[:, 0] > 0)] = np.nan
    return out


def _log_prob_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """log(Φ(b) − Φ(a)) for a ≤ b, accurate in both tails."""
    with np.errstate(divide="ignore", invalid="ignore"):
        upper = log_ndtr(-a) + np.log1p(-np.exp(log_ndtr(-b) - log_ndtr(-a)))  # a > 0
        lower = log_ndtr(b) + np.log1p(-np.exp(log_ndtr(a) - log_ndtr(b)))  # b < 0
    return np.where(a > 0, upper, lower)


def prepare_errors(mag, mag_err, min_mag_err: float) -> tuple[np.ndarray, np.ndarray]:
    """(mag (N, B) with unusable bands 0, inverse variances (N, B), 0 for unusable bands):
    a band is used where its magnitude and error are finite; the floor is added in
    quadrature."""
    mag = np.atleast_2d(np.asarray(mag, float))
    err = np.atleast_2d(np.asarray(mag_err, float))
    ok = np.isfinite(mag) & np.isfinite(err) & (err >= 0)
    var = np.where(ok, err, 0.0) ** 2 + min_mag_err**2
    with np.errstate(divide="ignore"):
        w = np.where(ok & (var > 0), 1.0 / var, 0.0)
    return np.where(ok, mag, 0.0), w


def summarise(
    params: dict[str, np.ndarray], log_post: np.ndarray, best: np.ndarray
) -> dict[str, np.ndarray]:
    """Median, p16, p84 and best of every parameter from node values ``params`` (name →
    (K,) or (N, K)) and log posteriors (N, K); best: (N,) index of the best node."""
    finite = np.isfinite(log_post).any(axis=1)
    top = np.where(finite, np.max(np.where(np.isfinite(log_post), log_post, -np.inf), axis=1), 0.0)
    weight = np.where(np.isfinite(log_post), np.exp(log_post - top[:, None]), 0.0)
    out = {}
    rows = np.arange(len(weight))
    for name, values in params.items():
        quantiles = weighted_quantiles(values, weight, QUANTILES)
        values = np.broadcast_to(values, weight.shape)
        out[f"{name}_p16"], out[name], out[f"{name}_p84"] = quantiles.T
        out[f"{name}_best"] = np.where(finite, values[rows, best], np.nan)
    return out


def grid_fit(
    mag,
    mag_err,
    grid: SSPGrid,
    min_mag_err: float = 0.05,
    log_mass_msun_range: tuple[float, float] = (2.0, 7.0),
) -> pd.DataFrame:
    """χ² grid fit of sources' magnitudes (module docstring).

    mag, mag_err: (N, B) apparent Vega magnitudes and errors in ``grid.bands`` order, NaN
    where a band is not measured; min_mag_err: floor, mag; log_mass_msun_range: the flat
    prior's bounds on log10(M/M☉). Returns N rows with :func:`fit_columns`; a source with
    fewer than two usable bands gets NaN (mass and colour cannot both be fitted).
    """
    mag, w = prepare_errors(mag, mag_err, min_mag_err)
    if mag.shape[1] != len(grid.bands):
        raise ValueError(f"mag has {mag.shape[1]} bands, the grid {len(grid.bands)}")
    ages, avs, model = grid.flat()
    mu_lo, mu_hi = 2.5 * np.asarray(log_mass_msun_range, float)
    n = len(mag)
    columns = {c: np.full(n, np.nan) for c in fit_columns()}
    n_bands = (w > 0).sum(axis=1)
    columns["n_bands_fit"] = n_bands.astype(float)
    for start in range(0, n, BLOCK):
        sl = slice(start, min(n, start + BLOCK))
        wk = w[sl][:, None, :]  # (n, 1, B)
        d = model[None] - mag[sl][:, None, :]  # (n, G, B): M_b − m_b
        sum_w = wk.sum(axis=2)  # (n, 1)
        with np.errstate(invalid="ignore", divide="ignore"):
            mu = (wk * d).sum(axis=2) / sum_w  # (n, G)
        chi2_node = (wk * (d - mu[..., None]) ** 2).sum(axis=2)
        mu_clip = np.clip(mu, mu_lo, mu_hi)
        chi2 = chi2_node + (mu_clip - mu) ** 2 * sum_w
        s = 1.0 / np.sqrt(sum_w)
        log_post = -0.5 * chi2_node + _log_prob_between((mu_lo - mu) / s, (mu_hi - mu) / s)
        usable = n_bands[sl] >= 2
        log_post[~usable] = -np.inf
        best = np.argmin(np.where(np.isfinite(chi2), chi2, np.inf), axis=1)
        summary = summarise(
            {"log_age_yr": ages, "log_mass_msun": mu_clip / 2.5, "av_mag": avs}, log_post, best
        )
        for name, values in summary.items():
            columns[name][sl] = np.where(usable, values, np.nan)
        columns["chi2_min"][sl] = np.where(usable, chi2[np.arange(len(best)), best], np.nan)
    return pd.DataFrame(columns)[fit_columns()]
