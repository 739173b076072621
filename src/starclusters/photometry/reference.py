"""Published star-cluster catalogs and the model's colours for their clusters.

Two catalog formats are read into one table (one row per cluster):

* PHATTER M33 (Johnson et al. 2022 and later; ``M33_PHATTER_cluster_cat_2023.fits``):
  ``MAGnnn``/``SIGnnn`` Vega magnitudes and CMD-fitted ``Age``/``Mass``/``AV``
  percentiles (16, 50, 84). Fits that failed carry ``1e20``; a magnitude
  without an uncertainty (``SIG = -99``) is not a measurement (they are the
  faint ones, most likely limits) and is treated as missing.
* PHAT M31 (Johnson et al. 2015, ApJ 802, 127, table 2: magnitudes, ``l_<band> = '>'``
  marks limits; Johnson et al. 2016, ApJ 827, 33, table 4: CMD-fitted ``logAge`` and
  ``logMass`` with their ranges, no A_V), joined on ``APID``.

Columns of :func:`read_phatter_catalog` / :func:`read_phat_m31_catalog`:

=====================  ==========================================================
cluster_id              catalog identifier (PHATTER ``ID``, PHAT ``APID``)
ra_deg, dec_deg         position, degrees (J2000)
radius_arcsec           photometric aperture radius, arcsec
log_age_yr              CMD-fitted age, log10 yr (median / best value)
log_age_yr_p16, _p84    its 16th and 84th percentiles (PHAT M31: the quoted range)
log_mass_msun           CMD-fitted mass, log10 Msun (same percentile columns)
av_mag                  CMD-fitted V-band extinction A_V, mag (NaN when not fitted);
                        av_mag_p16, av_mag_p84 likewise
mag_<band>              integrated Vega magnitude (NaN: missing or only a limit)
mag_err_<band>          its 1-sigma uncertainty, mag
=====================  ==========================================================

:func:`predict_colours` turns each cluster's catalog age, mass and A_V into
several stochastic IMF realisations with a
:class:`~starclusters.photometry.population.StellarPopulation` and returns the
model's median and 16–84 % range of each colour; :func:`colour_residuals` and
:func:`summarise_residuals` compare them with the observed colours.
:func:`reddening_free_index` builds a colour combination that does not change
with A_V, to test the model independently of the catalog's extinction.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from starclusters.errors import InputFileError
from starclusters.photometry.imf import sample_cluster_masses
from starclusters.photometry.population import StellarPopulation, magnitude_from_counts

#: Bands of the PHAT/PHATTER cluster catalogs (WFC3/UVIS F275W, F336W; ACS/WFC F475W,
#: F814W; WFC3/IR F110W, F160W).
PHAT_BANDS = ("F275W", "F336W", "F475W", "F814W", "F110W", "F160W")

#: Catalog values at or above this are "no value" sentinels (PHATTER writes 1e20).
SENTINEL_ABOVE = 1e19

#: Model quantiles reported per cluster (fractions): 16th, 50th and 84th percentile.
QUANTILES = (0.16, 0.50, 0.84)


def _column(table, name: str) -> np.ndarray:
    """A numeric catalog column as float64 with masked entries as NaN."""
    col = table[name]
    data = np.ma.filled(np.ma.asarray(col, dtype=np.float64), np.nan)
    return np.asarray(data, dtype=np.float64)


def _strings(table, name: str) -> np.ndarray:
    """A text catalog column as str with masked entries as ''."""
    col = np.ma.asarray(table[name])
    values = np.ma.filled(col.astype(str), "")
    return np.char.strip(np.asarray(values, dtype=str))


def _clean(values: np.ndarray) -> np.ndarray:
    """``values`` with non-finite numbers and sentinels (|x| >= 1e19 or x == -99) as NaN."""
    out = np.array(values, dtype=np.float64)
    out[~np.isfinite(out) | (np.abs(out) >= SENTINEL_ABOVE) | (out == -99.0)] = np.nan
    return out


def _read_fits(path: str | os.PathLike):
    from astropy.table import Table

    try:
        return Table.read(path, format="fits")
    except (OSError, ValueError) as err:
        raise InputFileError(f"{path}: cannot read the FITS table ({err})") from err


def _require(table, columns: Sequence[str], path) -> None:
    missing = [c for c in columns if c not in table.colnames]
    if missing:
        raise InputFileError(f"{path}: columns {missing} are missing; is this the right catalog?")


def read_phatter_catalog(
    path: str | os.PathLike, bands: Sequence[str] = PHAT_BANDS
) -> pd.DataFrame:
    """Read the PHATTER M33 cluster catalog (FITS) into the table of the module docstring.

    bands: the bands to read; their ``MAG<nnn>``/``SIG<nnn>`` columns must exist
    (``<nnn>`` is the band name without ``F`` and ``W``, e.g. ``MAG336`` for F336W).
    A magnitude is NaN where it is masked, non-finite or has ``SIG = -99`` (no
    uncertainty: not a measurement); age, mass and A_V are NaN where the catalog
    has its 1e20 sentinel. Returns one row per catalog row, in catalog order.
    """
    table = _read_fits(path)
    fits = {"log_age_yr": "Age", "log_mass_msun": "Mass", "av_mag": "AV"}
    needed = ["ID", "RA", "DEC"] + [f"{p}_{s}" for p in fits.values() for s in ("16", "Med", "84")]
    tags = {band: band.strip("FWMN") for band in bands}
    needed += [f"{kind}{tag}" for tag in tags.values() for kind in ("MAG", "SIG")]
    _require(table, needed, path)
    out = {
        "cluster_id": _column(table, "ID").astype(np.int64),
        "ra_deg": _column(table, "RA"),
        "dec_deg": _column(table, "DEC"),
    }
    if "RADIUS_ARCSEC" in table.colnames:
        out["radius_arcsec"] = _clean(_column(table, "RADIUS_ARCSEC"))
    for ours, theirs in fits.items():
        out[ours] = _clean(_column(table, f"{theirs}_Med"))
        out[f"{ours}_p16"] = _clean(_column(table, f"{theirs}_16"))
        out[f"{ours}_p84"] = _clean(_column(table, f"{theirs}_84"))
    for band, tag in tags.items():
        mag = _clean(_column(table, f"MAG{tag}"))
        err = _column(table, f"SIG{tag}")
        no_error = ~np.isfinite(err) | (err < 0)
        mag[no_error] = np.nan
        out[f"mag_{band}"] = mag
        out[f"mag_err_{band}"] = np.where(no_error, np.nan, err)
    return pd.DataFrame(out)


def read_phat_m31_catalog(
    photometry_path: str | os.PathLike,
    ages_path: str | os.PathLike,
    bands: Sequence[str] = PHAT_BANDS,
) -> pd.DataFrame:
    """Read the PHAT M31 cluster photometry and ages into the table of the module docstring.

    photometry_path: Johnson et al. (2015) table 2 (``APID``, ``<band>``,
    ``e_<band>``, ``l_<band>``); ages_path: Johnson et al. (2016) table 4 (``APID``,
    ``logAge``, ``b_logAge``, ``B_logAge``, ``logMass``, ``b_logMass``, ``B_logMass``).
    Only clusters in both tables are returned (inner join on APID, in the order of
    the ages table). Limits (``l_<band> == '>'``) and masked magnitudes become NaN.
    The ages table has no extinction: ``av_mag`` is NaN. Magnitudes are the
    aperture magnitudes of table 2 (the aperture correction ``mcor`` is the same
    in every band, so colours do not depend on it).
    """
    phot = _read_fits(photometry_path)
    ages = _read_fits(ages_path)
    _require(
        phot,
        ["APID", "RAdeg", "DEdeg"] + [f"{p}{b}" for b in bands for p in ("", "e_")],
        photometry_path,
    )
    _require(
        ages,
        ["APID", "logAge", "b_logAge", "B_logAge", "logMass", "b_logMass", "B_logMass"],
        ages_path,
    )
    left = {
        "cluster_id": _column(phot, "APID").astype(np.int64),
        "ra_deg": _column(phot, "RAdeg"),
        "dec_deg": _column(phot, "DEdeg"),
    }
    if "Rap" in phot.colnames:
        left["radius_arcsec"] = _clean(_column(phot, "Rap"))
    for band in bands:
        mag = _clean(_column(phot, band))
        if f"l_{band}" in phot.colnames:
            mag[_strings(phot, f"l_{band}") == ">"] = np.nan
        left[f"mag_{band}"] = mag
        left[f"mag_err_{band}"] = np.where(
            np.isfinite(mag), _clean(_column(phot, f"e_{band}")), np.nan
        )
    right = {"cluster_id": _column(ages, "APID").astype(np.int64)}
    for ours, theirs in (("log_age_yr", "logAge"), ("log_mass_msun", "logMass")):
        right[ours] = _clean(_column(ages, theirs))
        right[f"{ours}_p16"] = _clean(_column(ages, f"b_{theirs}"))
        right[f"{ours}_p84"] = _clean(_column(ages, f"B_{theirs}"))
    for suffix in ("", "_p16", "_p84"):
        right[f"av_mag{suffix}"] = np.full(len(ages), np.nan)
    left, right = pd.DataFrame(left), pd.DataFrame(right)
    if left["cluster_id"].duplicated().any():
        raise InputFileError(f"{photometry_path}: APID is not unique")
    merged = right.merge(left, on="cluster_id", how="inner", validate="one_to_one")
    front = ["cluster_id", "ra_deg", "dec_deg"] + (
        ["radius_arcsec"] if "radius_arcsec" in left else []
    )
    return merged[front + [c for c in merged.columns if c not in front]]


#: A colour or other linear combination of magnitudes: name -> {band: coefficient}.
Indices = dict[str, dict[str, float]]


def colour_name(blue: str, red: str) -> str:
    """Column-name stem of the colour ``blue - red``, e.g. ``F336W_F475W``."""
    return f"{blue}_{red}"


def default_colours(bands: Sequence[str]) -> list[tuple[str, str]]:
    """Colours of neighbouring bands: [(b0, b1), (b1, b2), ...]."""
    return [(bands[i], bands[i + 1]) for i in range(len(bands) - 1)]


def colour_indices(
    colours: Sequence[tuple[str, str]] | Mapping[str, Mapping[str, float]],
) -> Indices:
    """Normalise colours to indices: (blue, red) pairs become ``{"<blue>_<red>": {blue: 1, red: -1}}``.

    A mapping name -> {band: coefficient} (any linear combination of magnitudes, e.g.
    a reddening-free index from :func:`reddening_free_index`) is returned as is.
    """
    if isinstance(colours, Mapping):
        return {name: {b: float(c) for b, c in terms.items()} for name, terms in colours.items()}
    return {colour_name(blue, red): {blue: 1.0, red: -1.0} for blue, red in colours}


def _combine(mags: Mapping[str, np.ndarray] | pd.DataFrame, terms: Mapping[str, float]):
    """sum_b coefficient_b * mags[b]."""
    return sum(coef * mags[band] for band, coef in terms.items())


def snap_to_grid(
    log_age_yr: np.ndarray, grid_log_age_yr: np.ndarray, tolerance_dex: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest grid age for each age, and whether it lies within ``tolerance_dex`` of it.

    log_age_yr: (n,) log10 yr (NaN allowed: never inside); grid_log_age_yr: sorted (m,).
    tolerance_dex: default half the smallest grid spacing (0.025 dex for a single age),
    so every age between the first and last grid age is inside and ages beyond the
    ends by more than half a step are not. Returns (snapped (n,), inside (n,) bool).
    """
    grid = np.asarray(grid_log_age_yr, dtype=float)
    ages = np.atleast_1d(np.asarray(log_age_yr, dtype=float))
    if tolerance_dex is None:
        tolerance_dex = 0.5 * float(np.min(np.diff(grid))) if len(grid) > 1 else 0.025
    if len(grid) > 1:
        j = np.clip(np.searchsorted(grid, np.nan_to_num(ages, nan=grid[0])), 1, len(grid) - 1)
        idx = np.where(np.abs(ages - grid[j - 1]) <= np.abs(grid[j] - ages), j - 1, j)
    else:
        idx = np.zeros(ages.shape, dtype=int)
    snapped = grid[idx]
    with np.errstate(invalid="ignore"):
        inside = np.abs(ages - snapped) <= tolerance_dex + 1e-9
    return snapped, inside & np.isfinite(ages)


def realisation_magnitudes(
    population: StellarPopulation,
    log_age_yr: float,
    mass_msun: float,
    av_mag: float,
    n_realisations: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Apparent integrated Vega magnitudes of ``n_realisations`` IMF samplings of one cluster.

    log_age_yr must be on the population's age grid; mass_msun is the cluster's
    initial mass (Msun); av_mag the V-band extinction (mag). Equivalent to calling
    ``population.integrated_magnitudes(population.cluster_stars(...))`` that many
    times, but looks up the isochrone and extinction once. Returns
    (n_realisations, n_bands) in the order of ``population.bands`` (inf for a
    realisation without light in a band).
    """
    draws = [sample_cluster_masses(mass_msun, population.imf, rng) for _ in range(n_realisations)]
    counts = population.star_counts(log_age_yr, np.concatenate(draws), av_mag)
    starts = np.cumsum([0] + [len(d) for d in draws[:-1]])
    totals = np.add.reduceat(counts, starts, axis=0)
    zeropoints = np.array([population.zeropoints_mag[b] for b in population.bands])
    return magnitude_from_counts(totals, zeropoints[None, :])


def predict_colours(
    population: StellarPopulation,
    catalog: pd.DataFrame,
    rng: np.random.Generator,
    n_realisations: int = 20,
    colours: Sequence[tuple[str, str]] | Mapping[str, Mapping[str, float]] | None = None,
    default_av_mag: float | None = None,
    age_tolerance_dex: float | None = None,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """The model's integrated magnitudes and colours for each catalog cluster.

    catalog: a table with ``cluster_id``, ``log_age_yr`` (log10 yr),
    ``log_mass_msun`` (log10 Msun, used as the initial mass) and ``av_mag`` (mag)
    columns, e.g. from :func:`read_phatter_catalog`. Each cluster's age is snapped
    to the nearest age of the population's grid (see :func:`snap_to_grid`); its
    stars are drawn ``n_realisations`` times from the IMF with ``rng``.
    colours: (blue, red) band pairs or name -> {band: coefficient} (see
    :func:`colour_indices`; default: neighbouring bands of the population).
    default_av_mag: A_V (mag) used where ``av_mag`` is NaN or absent (catalogs
    without fitted extinction); with None such clusters are skipped.

    Skipped (counted, not predicted): clusters without a finite age or mass
    (``missing_age_or_mass``), without A_V (``missing_av``), whose age is off the grid
    (``outside_age_grid``), or whose A_V is outside the extinction table
    (``outside_av_table``), checked in that order. Returns the table, one row per
    predicted cluster, with ``cluster_id``, ``log_age_yr``, ``log_age_grid_yr``,
    ``log_mass_msun``, ``av_mag`` (used), ``model_mag_<band>_p<q>`` and
    ``model_<colour>_p<q>`` for q in 16, 50, 84 (percentiles over the realisations,
    computed per colour, not from the band percentiles; mag), and a dict of counts:
    ``n_catalog``, ``n_predicted`` and the skip reasons above.
    """
    if n_realisations < 1:
        raise ValueError(f"n_realisations must be at least 1, got {n_realisations}")
    bands = list(population.bands)
    indices = colour_indices(colours if colours is not None else default_colours(bands))
    for terms in indices.values():
        for band in terms:
            if band not in bands:
                raise ValueError(f"colour band {band} is not one of the population's bands {bands}")
    n = len(catalog)
    log_age = catalog["log_age_yr"].to_numpy(float)
    log_mass = catalog["log_mass_msun"].to_numpy(float)
    av = catalog["av_mag"].to_numpy(float) if "av_mag" in catalog else np.full(n, np.nan)
    if default_av_mag is not None:
        av = np.where(np.isfinite(av), av, float(default_av_mag))
    av_table = population.extinction["av_mag"].to_numpy(float)
    snapped, on_grid = snap_to_grid(log_age, population.log_ages_yr, age_tolerance_dex)

    has_age_mass = np.isfinite(log_age) & np.isfinite(log_mass)
    has_av = np.isfinite(av)
    with np.errstate(invalid="ignore"):
        av_ok = (av >= av_table.min() - 1e-9) & (av <= av_table.max() + 1e-9)
    counts = {
        "n_catalog": n,
        "missing_age_or_mass": int((~has_age_mass).sum()),
        "missing_av": int((has_age_mass & ~has_av).sum()),
        "outside_age_grid": int((has_age_mass & has_av & ~on_grid).sum()),
        "outside_av_table": int((has_age_mass & has_av & on_grid & ~av_ok).sum()),
    }
    use = np.flatnonzero(has_age_mass & has_av & on_grid & av_ok)
    counts["n_predicted"] = int(len(use))

    mags = np.empty((len(use), n_realisations, len(bands)))
    for k, i in enumerate(use):
        mags[k] = realisation_magnitudes(
            population, snapped[i], 10.0 ** log_mass[i], max(float(av[i]), 0.0), n_realisations, rng
        )
    ids = catalog["cluster_id"].to_numpy() if "cluster_id" in catalog else np.arange(n)
    out = {
        "cluster_id": ids[use],
        "log_age_yr": log_age[use],
        "log_age_grid_yr": snapped[use],
        "log_mass_msun": log_mass[use],
        "av_mag": av[use],
    }
    q = np.asarray(QUANTILES)
    tags = [f"p{round(100 * x):02d}" for x in q]
    by_band = {band: mags[:, :, j] for j, band in enumerate(bands)}
    with np.errstate(invalid="ignore"):
        for band, values in by_band.items():
            for tag, v in zip(tags, _quantiles(values, q), strict=True):
                out[f"model_mag_{band}_{tag}"] = v
        for name, terms in indices.items():
            for tag, v in zip(tags, _quantiles(_combine(by_band, terms), q), strict=True):
                out[f"model_{name}_{tag}"] = v
    return pd.DataFrame(out), counts


def _quantiles(values: np.ndarray, q: np.ndarray) -> np.ndarray:
    """Quantiles ``q`` over axis 1 of (n, n_real) ignoring NaN/inf: (len(q), n)."""
    if values.shape[0] == 0:
        return np.empty((len(q), 0))
    return np.nanquantile(np.where(np.isfinite(values), values, np.nan), q, axis=1)


def colour_residuals(
    catalog: pd.DataFrame,
    prediction: pd.DataFrame,
    colours: Sequence[tuple[str, str]] | Mapping[str, Mapping[str, float]],
) -> pd.DataFrame:
    """Observed and model colours side by side, and observed − model residuals.

    catalog: with ``cluster_id`` and ``mag_<band>`` / ``mag_err_<band>`` (Vega mag);
    prediction: the table of :func:`predict_colours` made with the same ``colours``.
    For each colour ``<c>`` adds ``obs_<c>`` and ``obs_err_<c>`` (band errors times
    |coefficient|, added in quadrature), ``resid_<c>`` = observed − model median, and
    ``consistent_<c>``: the observed colour lies within the model's 16–84 % range
    widened by the photometric error (each side's half-width and the error added
    in quadrature; False where the colour is unobserved or has no error). If model
    stochasticity and photometric errors were all there is, ~68 % of clusters would
    be consistent. Returns one row per predicted cluster (all prediction columns kept).
    """
    indices = colour_indices(colours)
    bands = sorted({b for terms in indices.values() for b in terms})
    mag_columns = [f"mag_{b}" for b in bands] + [f"mag_err_{b}" for b in bands]
    out = prediction.merge(
        catalog[["cluster_id", *mag_columns]], on="cluster_id", how="left", validate="one_to_one"
    )
    mags = {b: out[f"mag_{b}"].to_numpy(float) for b in bands}
    for name, terms in indices.items():
        obs = _combine(mags, terms)
        err = np.sqrt(sum((c * out[f"mag_err_{b}"].to_numpy(float)) ** 2 for b, c in terms.items()))
        p16, p50, p84 = (out[f"model_{name}_{t}"].to_numpy(float) for t in ("p16", "p50", "p84"))
        with np.errstate(invalid="ignore"):
            consistent = (obs >= p50 - np.hypot(p50 - p16, err)) & (
                obs <= p50 + np.hypot(p84 - p50, err)
            )
        out[f"obs_{name}"] = obs
        out[f"obs_err_{name}"] = err
        out[f"resid_{name}"] = obs - p50
        out[f"consistent_{name}"] = consistent
    return out


def reddening_vector(
    population: StellarPopulation, bands: Sequence[str], log_teff_k: float = 4.0
) -> dict[str, float]:
    """A_band / A_V for each band, from the population's extinction table.

    Taken at the table's largest A_V and at ``log_teff_k`` (default 10^4 K, a late-B
    star, typical of the blue light of a young cluster). Returns band -> ratio.
    """
    table = population.extinction
    av_max = float(table["av_mag"].max())
    if av_max <= 0:
        raise ValueError("the extinction table has no A_V > 0; cannot derive a reddening vector")
    out = {}
    for band in bands:
        sub = table[(table["band"] == band) & np.isclose(table["av_mag"], av_max)]
        sub = sub.sort_values("log_teff_k")
        a_band = np.interp(log_teff_k, sub["log_teff_k"], sub["a_band_mag"])
        out[band] = float(a_band) / av_max
    return out


def reddening_free_index(
    population: StellarPopulation, blue: str, mid: str, red: str, log_teff_k: float = 4.0
) -> tuple[float, dict[str, float]]:
    """Q = (blue − mid) − k (mid − red) with k = E(blue − mid) / E(mid − red).

    Q does not change with A_V (to first order; k from :func:`reddening_vector` at
    ``log_teff_k``). Returns (k, {band: coefficient}) for :func:`colour_indices`.
    """
    a = reddening_vector(population, (blue, mid, red), log_teff_k)
    k = (a[blue] - a[mid]) / (a[mid] - a[red])
    return k, {blue: 1.0, mid: -1.0 - k, red: k}


def summarise_residuals(
    residuals: pd.DataFrame,
    colours: Sequence[str],
    by: str = "log_age_yr",
    edges: Sequence[float] = (6.6, 7.0, 7.5, 8.0, 8.5, 9.5),
) -> pd.DataFrame:
    """Median residual and scatter of each colour in bins of ``by``.

    residuals: the table of :func:`colour_residuals`; colours: colour names (the
    ``<c>`` of its columns, e.g. ``F336W_F475W``); edges: bin edges of column ``by``
    (left-closed, the last bin closed). Per bin and colour: ``n`` clusters with an
    observed colour, ``median_resid`` (mag), ``scatter`` (half the 16–84 % range of
    the residuals, mag), ``model_spread`` (median over clusters of half the model's
    16–84 % range: the scatter IMF sampling alone produces, mag), ``obs_err``
    (median photometric error of the colour, mag) and ``frac_consistent`` (fraction
    of clusters flagged ``consistent_<c>`` by :func:`colour_residuals`; ~0.68 if IMF
    sampling and photometric errors explained the residuals). Returns a long table.
    """
    edges = np.asarray(edges, dtype=float)
    x = residuals[by].to_numpy(float)
    which = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, len(edges) - 2)
    inside = (x >= edges[0]) & (x <= edges[-1])
    rows = []
    for name in colours:
        resid = residuals[f"resid_{name}"].to_numpy(float)
        spread = 0.5 * (residuals[f"model_{name}_p84"] - residuals[f"model_{name}_p16"])
        spread = spread.to_numpy(float)
        err = residuals[f"obs_err_{name}"].to_numpy(float)
        consistent = residuals[f"consistent_{name}"].to_numpy(bool)
        for k in range(len(edges) - 1):
            sel = inside & (which == k) & np.isfinite(resid)
            row = {"colour": name, "bin_lo": edges[k], "bin_hi": edges[k + 1], "n": int(sel.sum())}
            row.update(
                dict.fromkeys(("median_resid", "scatter", "model_spread", "obs_err"), np.nan)
            )
            row["frac_consistent"] = np.nan
            if sel.any():
                p16, p50, p84 = np.percentile(resid[sel], [16, 50, 84])
                row.update(
                    median_resid=float(p50),
                    scatter=float(0.5 * (p84 - p16)),
                    model_spread=float(np.nanmedian(spread[sel])),
                    obs_err=float(np.nanmedian(err[sel])),
                    frac_consistent=float(consistent[sel].mean()),
                )
            rows.append(row)
    return pd.DataFrame(rows)
