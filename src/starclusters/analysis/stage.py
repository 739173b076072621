"""Stage functions of the analysis rules (workflow/rules/report.smk): read, call the
library, write. The workflow scripts only unpack ``snakemake`` into them.

``settings`` is the config's ``analysis`` section (keys, defaults and checks:
:class:`AnalysisSettings`, documented in config/schema/config.schema.yaml).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping

import numpy as np
import pandas as pd

from starclusters.analysis import plots
from starclusters.analysis.mass_function import (
    equivalent_power_law_slope,
    fit_power_law,
    fit_schechter,
    fit_schechter_mstar,
    unfitted,
)
from starclusters.analysis.population import (
    AgeGroup,
    age_groups,
    count_peak_with_error,
    group_count_profiles,
    window_centres,
)
from starclusters.analysis.settings import AnalysisSettings
from starclusters.errors import ConfigError, InputFileError
from starclusters.io import read_table, write_table

log = logging.getLogger(__name__)

#: Node spacing of the (log M, log t) grid of the population fits, dex.
POPULATION_GRID_STEP_DEX = 0.05


def analysis_settings(section: Mapping | None) -> dict:
    """The ``analysis`` section with defaults filled in and checked (:class:`AnalysisSettings`)."""
    return AnalysisSettings.from_config(section).to_config()


def _groups(settings: Mapping) -> tuple[list[AgeGroup], AgeGroup, AgeGroup]:
    """(arm groups, young, old) of the settings."""
    young = AgeGroup(-math.inf, float(settings["young_max_log_age_yr"]))
    old = AgeGroup(float(settings["old_min_log_age_yr"]), math.inf)
    return age_groups(settings["age_groups_log_yr"]), young, old


def mass_function_fits(
    log_mass_msun,
    log_age_yr,
    settings: Mapping,
    log_mass_lo_msun: float,
    log_mass_hi_msun: float,
) -> dict[str, object]:
    """The three mass-function fits (label -> MassFunctionFit) of the clusters younger than
    mass_function.max_log_age_yr, from the completeness limit ``log_mass_lo_msun`` (a number:
    the setting's, or :func:`derived_completeness_limit`'s) to ``log_mass_hi_msun``. A limit
    that is NaN or not below the top gives unfitted fits (n 0), not an error."""
    mf = settings["mass_function"]
    young = np.asarray(log_age_yr, float) < float(mf["max_log_age_yr"])
    mass = np.asarray(log_mass_msun, float)[young]
    lo, hi = float(log_mass_lo_msun), float(log_mass_hi_msun)
    fixed = f"Schechter, slope {mf['slope']:g}"
    if not lo < hi:
        return {
            fixed: unfitted("schechter_fixed_slope", lo, hi, mf["slope"]),
            "Schechter, slope free": unfitted("schechter", lo, hi),
            "power law": unfitted("power_law", lo, hi),
        }
    return {
        fixed: fit_schechter_mstar(mass, lo, hi, mf["slope"]),
        "Schechter, slope free": fit_schechter(mass, lo, hi),
        "power law": fit_power_law(mass, lo, hi),
    }


def derived_completeness_limit(
    selection,
    candidates: pd.DataFrame,
    log_background_counts_s,
    log_mass_range_msun: tuple[float, float],
    log_age_range_yr: tuple[float, float],
    max_log_age_yr: float,
    level: float,
) -> float:
    """log10(M/M☉) above which the young sample (derived log t < max_log_age_yr) is complete
    at ``level``, from the selection function instead of by hand.

    At each node of the age grid below max_log_age_yr (0.05 dex, from the bottom of
    log_age_range_yr) the mass where the detection probability of a cluster like the young
    candidates — the median over them of P at their own derived A_V, r_h and local
    background (:func:`candidate_completeness`) — first reaches ``level``
    (:func:`~starclusters.analysis.population_fit.completeness_limit_log_mass`); the limit
    is the highest of these (P falls with age at fixed mass, so the oldest ages set it).
    NaN when the sample has no young candidate or P never reaches ``level`` at some age
    within log_mass_range_msun (the hard cut cannot be made complete there).
    log_background_counts_s: (N,) per candidate, as the injections' (NaN: the median).
    """
    from starclusters.analysis.population_fit import completeness_limit_log_mass

    young = candidates["log_age_yr"].to_numpy(float) < float(max_log_age_yr)
    if not young.any():
        return math.nan
    mass_grid = population_grid(*log_mass_range_msun)
    ages = population_grid(*log_age_range_yr)
    ages = ages[ages < float(max_log_age_yr)]
    if ages.size == 0:
        return math.nan
    completeness = candidate_completeness(
        selection,
        candidates[young],
        np.asarray(log_background_counts_s, float)[young],
        mass_grid,
        ages,
    )
    limits = completeness_limit_log_mass(completeness, mass_grid, float(level))
    return float(np.max(limits)) if np.isfinite(limits).all() else math.nan


def completeness_log_mass(
    settings: Mapping,
    candidates: pd.DataFrame,
    log_mass_range_msun: tuple[float, float],
    log_age_range_yr: tuple[float, float],
    selection_path: str | os.PathLike | None = None,
    image_path: str | os.PathLike | None = None,
    background_annulus_px: tuple[float, float] | None = None,
) -> float:
    """The hard-cut fits' lower mass limit, log10(M/M☉): mass_function.completeness_log_mass_msun
    when it is a number, else (``selection``) :func:`derived_completeness_limit` at
    mass_function.completeness_level with the selection function at ``selection_path``
    and the local backgrounds measured on ``image_path`` (the injections' band) in
    ``background_annulus_px`` (inner, outer, px). ConfigError naming the key when the
    files it needs are not given."""
    mf = analysis_settings(settings)["mass_function"]
    value = mf["completeness_log_mass_msun"]
    if value != "selection":
        return float(value)
    if selection_path is None or image_path is None or background_annulus_px is None:
        raise ConfigError(
            "analysis.mass_function.completeness_log_mass_msun: 'selection' derives the limit "
            "from the artificial-cluster test's selection function; give its file, the image "
            "and the background annulus, or set a number (log10 M/Msun)"
        )
    from starclusters.artificial.selection import SelectionFunction
    from starclusters.artificial.stage import local_backgrounds, log_background

    background = local_backgrounds(
        image_path, candidates["x"], candidates["y"], background_annulus_px
    )
    limit = derived_completeness_limit(
        SelectionFunction.read(selection_path),
        candidates,
        log_background(background),
        log_mass_range_msun,
        log_age_range_yr,
        float(mf["max_log_age_yr"]),
        float(mf["completeness_level"]),
    )
    if math.isfinite(limit):
        log.info(
            "completeness limit from the selection function: log M %.2f (P ≥ %g for the "
            "young candidates up to log t %g)",
            limit,
            mf["completeness_level"],
            mf["max_log_age_yr"],
        )
    else:
        log.warning(
            "the selection function never reaches P = %g for the young candidates up to "
            "log t %g within log M %g–%g: the hard-cut fits are left unfitted (lower "
            "analysis.mass_function.completeness_level or max_log_age_yr, or set "
            "completeness_log_mass_msun to a number)",
            mf["completeness_level"],
            mf["max_log_age_yr"],
            *log_mass_range_msun,
        )
    return limit


def make_population_figures(
    candidates_path: str | os.PathLike,
    settings: Mapping,
    log_mass_range_msun: tuple[float, float],
    log_age_range_yr: tuple[float, float],
    pairs_path: str | os.PathLike,
    histograms_path: str | os.PathLike,
    radial_path: str | os.PathLike,
    table_path: str | os.PathLike,
    selection_path: str | os.PathLike | None = None,
    image_path: str | os.PathLike | None = None,
    background_annulus_px: tuple[float, float] | None = None,
) -> pd.DataFrame:
    """Figs. 4.5, 4.6 and 4.8 of the candidates, and the mass-function fits as a table
    (one row per fit; :meth:`MassFunctionFit.to_dict` columns plus ``label``).

    log_mass_range_msun: the network's mass range (the fits' top, and the grid a derived
    completeness limit is searched on); log_age_range_yr: the isochrone grid's; the last
    three: what :func:`completeness_log_mass` needs for a limit derived from the
    selection function (``completeness_log_mass_msun: selection``)."""
    settings = analysis_settings(settings)
    candidates = read_table(candidates_path)
    groups, young, old = _groups(settings)
    lo = completeness_log_mass(
        settings,
        candidates,
        log_mass_range_msun,
        log_age_range_yr,
        selection_path,
        image_path,
        background_annulus_px,
    )
    fits = mass_function_fits(
        candidates["log_mass_msun"],
        candidates["log_age_yr"],
        settings,
        lo,
        log_mass_range_msun[1],
    )
    for label, fit in fits.items():
        log.info(
            "%s: n %d, slope %.2f (%.2f–%.2f), log M* %.2f (%.2f–%.2f)",
            label,
            fit.n,
            fit.slope,
            fit.slope_lo,
            fit.slope_hi,
            fit.log_mstar_msun,
            fit.log_mstar_lo_msun,
            fit.log_mstar_hi_msun,
        )
    plots.plot_parameter_pairs(candidates, pairs_path)
    plots.plot_histograms(
        candidates,
        fits,
        float(settings["mass_function"]["max_log_age_yr"]),
        groups[0],
        groups[-1],
        histograms_path,
    )
    radial = settings["radial"]
    radius = candidates["galactocentric_kpc"].to_numpy(float)
    top = float(np.nanmax(radius)) if np.isfinite(radius).any() else 1.0
    centres = window_centres(0.0, top + radial["step_kpc"], radial["step_kpc"])
    plots.plot_radial(candidates, young, old, centres, radial["window_kpc"], radial_path)
    table = pd.DataFrame([{"label": label, **fit.to_dict()} for label, fit in fits.items()])
    write_table(
        table_path,
        table,
        {
            "what": "maximum-likelihood fits of dN/dM ∝ M^slope exp(-M/M*) to the candidates "
            "younger than mass_function.max_log_age_yr above the completeness limit",
            "units": {
                "slope*": "dN/dM exponent",
                "log_mstar*": "log10(M*/Msun); inf: no cutoff",
                "*_lo, *_hi": "68 % profile-likelihood bounds",
            },
            "settings": settings["mass_function"],
            "completeness_log_mass_msun": lo,
            "n_candidates": len(candidates),
        },
    )
    return table


def lane_points(
    arms_section: Mapping | None, arms_path: str | os.PathLike | None
) -> pd.DataFrame | None:
    """The dust lanes' points (arm, ra_deg, dec_deg, in order) for drawing: the synthetic
    galaxy's arms table or the user's lanes_file; None without arms."""
    from starclusters.detect.arms import read_points_table

    section = dict(arms_section or {})
    source = section.get("source", "none")
    if source == "synthetic" and arms_path is not None:
        return read_table(arms_path)
    if source == "files" and section.get("lanes_file"):
        return read_points_table(section["lanes_file"], "arm")
    return None


def _arm_geometry(arms_section, geometry, distance_mpc, arms_path):
    from starclusters.detect.arms import arms_from_files

    return arms_from_files(arms_section, geometry, distance_mpc, arms_path)


def make_arm_profiles(
    candidates_path: str | os.PathLike,
    settings: Mapping,
    arms_section: Mapping,
    geometry: Mapping,
    distance_mpc: float,
    seed: int,
    figure_path: str | os.PathLike,
    profiles_path: str | os.PathLike,
    peaks_path: str | os.PathLike,
    arms_path: str | os.PathLike | None = None,
    truth_path: str | os.PathLike | None = None,
    artificial_path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Thesis Fig. 4.7a: counts against signed distance from the lanes per age group, for
    the candidates, the synthetic truth (when given) and the recovered artificial clusters
    (when given: rows of ``artificial/matches.parquet`` with recovered_3px, grouped by their
    derived ages where present, else their true ages). Writes the profiles, the peaks
    (sample, group, n, peak_kpc, peak_err_kpc: bootstrap) and the figure; returns the peaks.
    """
    settings = analysis_settings(settings)
    groups, _, _ = _groups(settings)
    ad = settings["arm_distance"]
    centres = window_centres(ad["min_kpc"], ad["max_kpc"], ad["step_kpc"])
    arms = _arm_geometry(arms_section, geometry, distance_mpc, arms_path)
    samples = {"candidates": (read_table(candidates_path), "log_age_yr")}
    titles = {"candidates": "a) candidates"}
    if truth_path is not None:
        samples["truth"] = (read_table(truth_path), "log_age_yr")
        titles["truth"] = "synthetic truth (all injected clusters)"
    if artificial_path is not None:
        art = read_table(artificial_path)
        if "recovered_3px" in art.columns:
            art = art[art["recovered_3px"].to_numpy(bool)]
        age = next((c for c in ("derived_log_age_yr", "log_age_yr") if c in art.columns), None)
        samples["artificial"] = (art, age)
        titles["artificial"] = "recovered artificial clusters (selection)"
    rng = np.random.default_rng(seed)
    profiles, peaks = [], []
    for sample, (table, age_column) in samples.items():
        if arms is None or len(table) == 0 or age_column is None:
            distance = np.full(len(table), np.nan)
        else:
            distance = arms.signed_distance_kpc(table["ra_deg"], table["dec_deg"])
        ages = table[age_column].to_numpy(float) if age_column else np.full(len(table), np.nan)
        rows = group_count_profiles(distance, ages, groups, centres, ad["window_kpc"])
        profiles.append(rows.assign(sample=sample))
        for group in groups:
            inside = group.mask(ages) & (distance >= centres[0]) & (distance <= centres[-1])
            peak, err = count_peak_with_error(
                distance[inside], centres, ad["window_kpc"], rng, int(settings["bootstrap"])
            )
            peaks.append(
                {
                    "sample": sample,
                    "group": group.label,
                    "n": int(inside.sum()),
                    "peak_kpc": peak,
                    "peak_err_kpc": err,
                }
            )
    profiles = pd.concat(profiles, ignore_index=True)
    peaks = pd.DataFrame(peaks)
    for row in peaks.itertuples():
        log.info("%s %s: n %d, peak %+.3f ± %.3f kpc", *row[1:])
    if arms is None:
        titles = {k: f"{v} — no arms (arms.source: none)" for k, v in titles.items()}
    plots.plot_arm_profiles(profiles, peaks, ad["window_kpc"], figure_path, titles)
    meta = {
        "settings": ad,
        "arms": arms.to_dict() if arms is not None else None,
        "units": {"centre_kpc": "signed distance from the nearest lane, + leading"},
    }
    write_table(profiles_path, profiles, {**meta, "what": "sliding-window counts per group"})
    write_table(peaks_path, peaks, {**meta, "what": "count peak per sample and group"})
    return peaks


def _downsampled_band(band_path: str | os.PathLike, max_px: int):
    """(image, factor, wcs): the band block-averaged so that its long side ≤ max_px."""
    from astropy.io import fits
    from astropy.nddata import block_reduce
    from astropy.wcs import WCS

    with fits.open(band_path, memmap=True) as hdul:
        data = np.asarray(hdul[0].data, np.float32)
        wcs = WCS(hdul[0].header).celestial
    factor = max(1, math.ceil(max(data.shape) / max_px))
    ny, nx = (s // factor * factor for s in data.shape)
    image = block_reduce(np.nan_to_num(data[:ny, :nx]), factor, func=np.mean)
    return image, factor, wcs


def make_spatial_maps(
    candidates_path: str | os.PathLike,
    band_path: str | os.PathLike,
    band: str,
    settings: Mapping,
    arms_section: Mapping,
    geometry: Mapping,
    distance_mpc: float,
    figure_path: str | os.PathLike,
    arms_path: str | os.PathLike | None = None,
) -> None:
    """Thesis Fig. 4.9: the candidates over the downsampled mosaic band, coloured by
    distance from the lanes, age, A_V and density, with the lanes and galactocentric rings."""
    from starclusters.detect.candidates_stage import disk_geometry

    settings = analysis_settings(settings)
    candidates = read_table(candidates_path)
    image, factor, wcs = _downsampled_band(band_path, int(settings["map_max_px"]))
    arms = _arm_geometry(arms_section, geometry, distance_mpc, arms_path)
    distance = None
    if arms is not None:
        distance = arms.signed_distance_kpc(candidates["ra_deg"], candidates["dec_deg"])
    lanes = []
    points = lane_points(arms_section, arms_path)
    if points is not None and len(points):
        for _, rows in points.groupby("arm", sort=True):
            x, y = wcs.world_to_pixel_values(rows["ra_deg"], rows["dec_deg"])
            lanes.append((np.asarray(x), np.asarray(y)))
    disk = disk_geometry(geometry, distance_mpc, arms_path)
    radius = None
    if disk is not None:
        # the centre of each block, in full-resolution pixels
        yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]] * factor + (factor - 1) / 2
        ra, dec = wcs.pixel_to_world_values(xx, yy)
        radius = disk.galactocentric_kpc(ra, dec)
    plots.plot_spatial_maps(
        candidates,
        image,
        factor,
        figure_path,
        arm_distance_kpc=distance,
        lanes_px=lanes,
        radius_map_kpc=radius,
        min_log_mass_msun=float(settings["map_min_log_mass_msun"]),
        band=band,
    )


#: Column map of the synthetic truth when it plays the published catalog.
TRUTH_COLUMNS = {
    "ra_deg": "ra_deg",
    "dec_deg": "dec_deg",
    "log_age_yr": "log_age_yr",
    "log_mass_msun": "log_mass_msun",
    "av_mag": "av_mag",
    "rh_arcsec": "rh_arcsec",
}


def read_comparison_catalog(comparison: Mapping, truth_path=None, catalog_path=None):
    """(catalog with our column names, label) for comparison.source truth or file."""
    from starclusters.analysis.comparison import read_catalog

    comparison = AnalysisSettings.from_config({"comparison": comparison}).comparison
    if comparison["source"] == "truth":
        truth = read_table(truth_path)
        return truth[list(TRUTH_COLUMNS.values())].rename(
            columns={v: k for k, v in TRUTH_COLUMNS.items()}
        ), comparison.get("label") or "synthetic truth"
    path = catalog_path or comparison["path"]
    catalog = read_catalog(path, comparison["format"], comparison["columns"])
    return catalog, comparison.get("label") or os.path.basename(path)


def make_comparison(
    candidates_path: str | os.PathLike,
    comparison: Mapping,
    distance_mpc: float,
    table_path: str | os.PathLike,
    summary_path: str | os.PathLike,
    figure_path: str | os.PathLike,
    truth_path: str | os.PathLike | None = None,
    catalog_path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Match the candidates to the comparison catalog (thesis Figs. 3.15, 3.17); write the
    matched table, the summary per quantity and the figure; return the summary."""
    from starclusters.analysis.comparison import (
        candidate_quantities,
        comparison_summary,
        cross_match,
        with_log_rh_pc,
    )

    comparison = AnalysisSettings.from_config({"comparison": comparison}).comparison
    catalog, label = read_comparison_catalog(comparison, truth_path, catalog_path)
    catalog = with_log_rh_pc(catalog, distance_mpc)
    candidates = candidate_quantities(read_table(candidates_path))
    radius = float(comparison["match_radius_arcsec"])
    matched = cross_match(candidates, catalog, radius)
    summary = comparison_summary(matched)
    n_hit = int((matched["candidate_row"] >= 0).sum())
    log.info("%d of %d %s objects matched within %g arcsec", n_hit, len(catalog), label, radius)
    meta = {
        "catalog": label,
        "match_radius_arcsec": radius,
        "n_catalog": len(catalog),
        "n_candidates": len(candidates),
        "n_matched": n_hit,
    }
    write_table(table_path, matched, {**meta, "what": "catalog objects with their candidate"})
    write_table(summary_path, summary, {**meta, "what": "derived minus catalog values"})
    plots.plot_comparison(matched, summary, label, figure_path)
    return summary


#: Rows of analysis/metrics.parquet from the population fits: (fit label, parameter, the
#: prefix of its error columns, quantity, unit).
POPULATION_FIT_QUANTITIES = (
    ("schechter", "slope", "slope", "completeness_fit_slope", "dN/dM exponent"),
    ("schechter", "log_mstar_msun", "log_mstar", "completeness_fit_log_mstar_msun", "dex"),
    ("schechter", "age_index", "age_index", "completeness_fit_age_index", "dN/dt exponent"),
    (
        "schechter_fixed_slope",
        "log_mstar_msun",
        "log_mstar",
        "completeness_fit_log_mstar_msun_fixed_slope",
        "dex",
    ),
    ("power_law", "slope", "slope", "completeness_fit_power_law_slope", "dN/dM exponent"),
)


def population_fit_rows(paths) -> list[dict]:
    """analysis/metrics rows of the population fits with completeness: per galaxy and
    quantity the fitted value, its 1σ error (the mean of the two 68 % distances) and the
    injected value."""
    rows = []
    for path in paths:
        table = read_table(path).set_index("label")
        for label, parameter, error, quantity, unit in POPULATION_FIT_QUANTITIES:
            if label not in table.index:
                continue
            fit = table.loc[label]
            rows.append(
                {
                    "quantity": quantity,
                    "sample": str(fit["field"]),
                    "n": int(fit["n_clusters"]),
                    "measured": float(fit[parameter]),
                    "error": 0.5 * (float(fit[f"{error}_err_lo"]) + float(fit[f"{error}_err_hi"])),
                    "injected": float(fit[f"injected_{parameter}"]),
                    "unit": unit,
                }
            )
        check = table.attrs.get("meta", {}).get("selection_check")
        if check:  # the selection function's recall of the galaxy's own clusters, and the truth
            whole = next(row for row in check if row["bin"] == "all")
            field = str(table["field"].iloc[0])
            rows.append(
                {
                    "quantity": "selection_predicted_recall",
                    "sample": field,
                    "n": int(whole["n"]),
                    "measured": float(whole["predicted"]),
                    "injected": float(whole["observed"]),
                    "unit": "fraction of the truth clusters (injected: measured by the scorecard)",
                }
            )
    return rows


def make_metrics(
    mass_function_path: str | os.PathLike,
    arm_peaks_path: str | os.PathLike,
    candidates_path: str | os.PathLike,
    settings: Mapping,
    log_mass_hi_msun: float,
    log_age_grid_yr: Mapping,
    seed: int,
    metrics_path: str | os.PathLike,
    truth_path: str | os.PathLike | None = None,
    arms_path: str | os.PathLike | None = None,
    comparison_path: str | os.PathLike | None = None,
    population_fit_paths: list[str | os.PathLike] | None = None,
) -> pd.DataFrame:
    """The analysis' numbers in one table: quantity, sample, measured, error (1σ), unit,
    and for the synthetic galaxy the same measured on its truth (truth_sample) and the
    value it injected (injected). log_age_grid_yr: the isochrone grid {min, max, step}
    (the generator's ages lie on it). population_fit_paths: the population fits with
    completeness of the training and validation galaxies (sample: the galaxy)."""
    from starclusters.analysis.injected import (
        injected_arm_peaks,
        injected_mass_function,
        spec_from_arms_meta,
    )

    settings = analysis_settings(settings)
    groups, _, _ = _groups(settings)
    fits = read_table(mass_function_path).set_index("model")
    # the hard cut the fits used (the setting's, or derived from the selection function)
    lo = float(fits["log_mass_lo_msun"].iloc[0]) if len(fits) else math.nan
    peaks = read_table(arm_peaks_path)
    candidates = read_table(candidates_path)
    rows = [{"quantity": "n_candidates", "measured": len(candidates), "unit": "count"}]
    truth_fits = {}
    if truth_path is not None:
        truth = read_table(truth_path)
        truth_fits = {
            fit.model: fit
            for fit in mass_function_fits(
                truth["log_mass_msun"], truth["log_age_yr"], settings, lo, log_mass_hi_msun
            ).values()
        }
    injected_mf, injected_arms = {}, None
    if arms_path is not None and truth_path is not None:
        spec, distance_mpc = spec_from_arms_meta(read_table(arms_path).attrs["meta"])
        # without a usable cut (lo NaN) the injected slope and M* stand, the power law not
        injected_mf = injected_mass_function(spec, lo, log_mass_hi_msun)
        ad = settings["arm_distance"]
        grid = log_age_grid_yr
        injected_arms = injected_arm_peaks(
            spec,
            distance_mpc,
            groups,
            window_centres(grid["min"], grid["max"], grid["step"]),
            window_centres(ad["min_kpc"], ad["max_kpc"], ad["step_kpc"]),
            ad["window_kpc"],
            np.random.default_rng(seed),
        ).set_index("group")
    wanted = [
        ("schechter", "slope", "slope_err", "mass_function_slope", "slope"),
        (
            "schechter",
            "log_mstar_msun",
            "log_mstar_err",
            "mass_function_log_mstar_msun",
            "log_mstar_msun",
        ),
        (
            "schechter_fixed_slope",
            "log_mstar_msun",
            "log_mstar_err",
            "schechter_log_mstar_msun_fixed_slope",
            "log_mstar_msun",
        ),
        ("power_law", "slope", "slope_err", "power_law_slope", "power_law_slope"),
    ]
    for model, value, error, quantity, injected_key in wanted:
        fit = fits.loc[model] if model in fits.index else None
        truth_fit = truth_fits.get(model)
        rows.append(
            {
                "quantity": quantity,
                "sample": f"log t < {settings['mass_function']['max_log_age_yr']:g}",
                "n": int(fit["n"]) if fit is not None else 0,
                "measured": float(fit[value]) if fit is not None else math.nan,
                "error": float(fit[error]) if fit is not None else math.nan,
                "truth_sample": getattr(truth_fit, value, math.nan),
                "truth_sample_error": getattr(truth_fit, error, math.nan),
                "injected": injected_mf.get(injected_key, math.nan),
                "unit": "dN/dM exponent" if value == "slope" else "dex",
            }
        )
    for group in groups:

        def pick(sample, group=group):
            hit = peaks[(peaks["sample"] == sample) & (peaks["group"] == group.label)]
            return hit.iloc[0] if len(hit) else None

        ours, truth_peak = pick("candidates"), pick("truth")
        inj = injected_arms.loc[group.label] if injected_arms is not None else None
        rows.append(
            {
                "quantity": "arm_offset_peak_kpc",
                "sample": group.label,
                "n": int(ours["n"]) if ours is not None else 0,
                "measured": float(ours["peak_kpc"]) if ours is not None else math.nan,
                "error": float(ours["peak_err_kpc"]) if ours is not None else math.nan,
                "truth_sample": float(truth_peak["peak_kpc"])
                if truth_peak is not None
                else math.nan,
                "truth_sample_error": float(truth_peak["peak_err_kpc"])
                if truth_peak is not None
                else math.nan,
                # a group mostly spread evenly over the disk has no injected offset
                "injected": float(inj["injected_peak_kpc"])
                if inj is not None and inj["born_on_lane_fraction"] >= 0.5
                else math.nan,
                "unit": "kpc",
            }
        )
    if comparison_path is not None:
        summary = read_table(comparison_path)
        for row in summary.itertuples():
            rows.append(
                {
                    "quantity": f"comparison_{row.quantity}",
                    "sample": summary.attrs["meta"].get("catalog", "catalog"),
                    "n": int(row.n),
                    "measured": row.median_difference,
                    "error": row.robust_scatter,
                    "unit": row.unit,
                }
            )
    rows += population_fit_rows(population_fit_paths or [])
    table = pd.DataFrame(rows)
    for column in ("sample", "n", "measured", "error", "truth_sample", "truth_sample_error"):
        if column not in table.columns:
            table[column] = math.nan
    if "injected" not in table.columns:
        table["injected"] = math.nan
    table = table[
        [
            "quantity",
            "sample",
            "n",
            "measured",
            "error",
            "truth_sample",
            "truth_sample_error",
            "injected",
            "unit",
        ]
    ]
    table["sample"] = table["sample"].fillna("all").astype(str)
    table["n"] = table["n"].fillna(len(candidates)).astype(int)
    for row in table.itertuples():
        log.info(
            "%s [%s]: measured %.3f ± %.3f, truth sample %.3f, injected %.3f %s",
            row.quantity,
            row.sample,
            row.measured,
            row.error,
            row.truth_sample,
            row.injected,
            row.unit,
        )
    write_table(
        metrics_path,
        table,
        {
            "what": "population analysis: measured on the candidates; for the synthetic "
            "galaxy also measured on its truth catalog (truth_sample) and injected",
            "columns": {
                "measured, error": "on the candidates; error 1σ (mass function: profile "
                "likelihood; arm offsets: bootstrap); comparison_*: median difference "
                "derived - catalog and its robust scatter",
                "truth_sample": "the same measurement on mosaic/truth.parquet",
                "injected": "the synthetic galaxy's spec (analysis.injected)",
            },
        },
    )
    return table


def population_grid(lo: float, hi: float) -> np.ndarray:
    """Nodes from lo to hi (both exactly) about :data:`POPULATION_GRID_STEP_DEX` apart."""
    n = max(int(round((float(hi) - float(lo)) / POPULATION_GRID_STEP_DEX)), 1) + 1
    return np.linspace(float(lo), float(hi), n)


def candidate_completeness(
    selection,
    candidates: pd.DataFrame,
    log_background_counts_s: np.ndarray,
    log_mass_grid: np.ndarray,
    log_age_grid: np.ndarray,
) -> np.ndarray:
    """(N, n_mass, n_age) detection probability of a cluster with each candidate's derived
    A_V, r_h and local background at every (log M, log t) node of the grids.

    selection: a :class:`~starclusters.artificial.selection.SelectionFunction`; candidates:
    av_mag (mag), log_rh_arcsec; log_background_counts_s: (N,) as the injections'.
    """

    def nuisance(name, values):
        # a missing value (a background off the image) takes the injections' median
        values = np.asarray(values, float)
        return np.where(np.isfinite(values), values, selection.medians[name])[:, None, None]

    av = nuisance("av_mag", candidates["av_mag"])
    rh = nuisance("log_rh_arcsec", candidates["log_rh_arcsec"])
    background = nuisance("log_background_counts_s", log_background_counts_s)
    return np.asarray(
        selection(
            np.asarray(log_age_grid, float)[None, None, :],
            np.asarray(log_mass_grid, float)[None, :, None],
            av_mag=av,
            log_rh_arcsec=rh,
            log_background_counts_s=background,
        ),
        float,
    )


def population_fits(
    candidates: pd.DataFrame,
    completeness: np.ndarray,
    log_mass_grid: np.ndarray,
    log_age_grid: np.ndarray,
    *,
    c_min: float,
    sigma_log_mass: float,
    sigma_log_age: float,
    fixed_slope: float,
) -> dict[str, object]:
    """The population fits (label -> PopulationFit) of the candidates with completeness in
    the likelihood: Schechter with slope free, with the slope fixed, and a power law. With
    fewer usable candidates than a fit has parameters (C ≥ c_min at their derived values:
    :func:`~starclusters.analysis.population_fit.sample_mask`) a fit is all NaN, not an
    error — a galaxy with too few clusters still gets its table."""
    from starclusters.analysis.population_fit import PopulationFit, fit_population, sample_mask

    common = {
        "c_min": c_min,
        "sigma_log_mass": sigma_log_mass,
        "sigma_log_age": sigma_log_age,
    }
    m = candidates["log_mass_msun"].to_numpy(float)
    t = candidates["log_age_yr"].to_numpy(float)
    args = (m, t, completeness, log_mass_grid, log_age_grid)
    n_usable = int(sample_mask(*args, **common).sum()) if len(m) else 0
    models = {
        "schechter": ({"model": "schechter"}, 3),
        "schechter_fixed_slope": ({"model": "schechter", "fix_slope": fixed_slope}, 2),
        "power_law": ({"model": "power_law"}, 2),
    }
    fits = {}
    for label, (options, n_free) in models.items():
        if n_usable > n_free:
            fits[label] = fit_population(*args, **options, **common)
            continue
        log.warning(
            "%s: %d of %d candidates have C ≥ %g at their derived values, too few to fit",
            label,
            n_usable,
            len(m),
            c_min,
        )
        fits[label] = PopulationFit.unfitted(
            options["model"],
            len(m),
            c_min,
            sigma_log_mass,
            sigma_log_age,
            log_mass_grid,
            log_age_grid,
        )
    return fits


#: Bins of true log10(M/Msun) in which the selection function's predicted recall of a
#: galaxy's own clusters is compared with the recall measured on it.
CHECK_LOG_MASS_EDGES_MSUN = (3.5, 4.0, 4.5, 5.0, 5.5)


def selection_check(selection, truth: pd.DataFrame, log_background_counts_s) -> pd.DataFrame:
    """The selection function tested on a galaxy's own clusters: per bin of true log M (and
    "all"), the recall it predicts (mean P at each cluster's true age, mass, A_V, r_h and
    local background) against the recall measured on the galaxy (scorecard: ``detected``).

    truth: the scorecard's matched truth (log_age_yr, log_mass_msun, av_mag,
    log_rh_arcsec, detected). Columns bin, n, predicted, observed, observed_err,
    observed_lo, observed_hi (Wilson ±1σ).
    """
    from starclusters.stats import binomial_recall

    p = np.asarray(
        selection(
            truth["log_age_yr"].to_numpy(float),
            truth["log_mass_msun"].to_numpy(float),
            av_mag=truth["av_mag"].to_numpy(float),
            log_rh_arcsec=truth["log_rh_arcsec"].to_numpy(float),
            log_background_counts_s=np.nan_to_num(
                np.asarray(log_background_counts_s, float),
                nan=selection.medians["log_background_counts_s"],
            ),
        ),
        float,
    )
    found = truth["detected"].to_numpy(bool)
    mass = truth["log_mass_msun"].to_numpy(float)
    edges = CHECK_LOG_MASS_EDGES_MSUN
    bins = [("all", np.ones(len(truth), bool))] + [
        (f"{lo:g}-{hi:g}", (mass >= lo) & ((mass < hi) | ((hi == edges[-1]) & (mass <= hi))))
        for lo, hi in zip(edges[:-1], edges[1:], strict=True)
    ]
    rows = []
    for label, inside in bins:
        n = int(inside.sum())
        stats = binomial_recall(int(found[inside].sum()), n)
        rows.append(
            {
                "bin": label,
                "n": n,
                "predicted": float(p[inside].mean()) if n else math.nan,
                "observed": float(stats["recall"]),
                "observed_err": float(stats["recall_err"]),
                "observed_lo": float(stats["recall_lo"]),
                "observed_hi": float(stats["recall_hi"]),
            }
        )
    return pd.DataFrame(rows)


def artificial_scatter_dex(metrics_path: str | os.PathLike, radius_px: float) -> dict[str, float]:
    """The artificial test's robust scatter of derived − true log M and log t (dex) at the
    primary match radius, all regions: {"log_mass_msun": σ, "log_age_yr": σ}."""
    metrics = read_table(metrics_path)
    out = {}
    for name in ("log_mass_msun", "log_age_yr"):
        hit = metrics[
            (metrics["metric"] == f"scatter_{name}")
            & (metrics["region"] == "all")
            & np.isclose(metrics["radius_px"].astype(float), float(radius_px))
        ]
        if hit.empty:
            raise InputFileError(
                f"{metrics_path}: no scatter_{name} at {radius_px:g} px; rerun artificial_recall"
            )
        value = float(hit["value"].iloc[0])
        if not np.isfinite(value):  # no mock recovered: nothing to measure the errors on
            log.warning(
                "%s: no scatter_%s (no mock recovered within %g px): no kernel in %s "
                "(analysis.population_fit.error_kernel)",
                metrics_path,
                name,
                radius_px,
                name,
            )
            value = 0.0
        out[name] = value
    return out


def make_population_fit(
    candidates_path: str | os.PathLike,
    selection_path: str | os.PathLike,
    image_path: str | os.PathLike,
    artificial_metrics_path: str | os.PathLike,
    settings: Mapping,
    log_mass_range_msun: tuple[float, float],
    log_age_range_yr: tuple[float, float],
    background_annulus_px: tuple[float, float],
    radius_px: float,
    injected: Mapping | None,
    field: str,
    table_path: str | os.PathLike,
    figure_path: str | os.PathLike,
    truth_matched_path: str | os.PathLike | None = None,
) -> pd.DataFrame:
    """Fit the candidates' mass function and age distribution with the selection function in
    the likelihood; write the table (one row per model, fitted and injected values) and the
    figure (observed against predicted counts). Returns the table.

    image_path: the band the injections' local background was measured in (the last band);
    settings: the ``analysis`` section (population_fit, mass_function.slope);
    log_mass_range_msun / log_age_range_yr: the population's range — the network's
    (mocks.log_mass_msun, the isochrone grid); injected: for a synthetic galaxy its
    mass_function_slope, schechter_mass_msun and age_distribution_index, else None;
    truth_matched_path: for a galaxy with a truth, the scorecard's matched truth of the
    network's catalog: the selection function's predicted recall of the galaxy's own
    clusters is then set against the measured one (:func:`selection_check`, in the table's
    meta and the figure).
    """
    from starclusters.analysis.population_fit import expected_counts, sample_mask
    from starclusters.artificial.selection import SelectionFunction
    from starclusters.artificial.stage import local_backgrounds, log_background

    settings = analysis_settings(settings)
    pf = settings["population_fit"]
    candidates = read_table(candidates_path)
    selection = SelectionFunction.read(selection_path)
    background = local_backgrounds(
        image_path, candidates["x"], candidates["y"], background_annulus_px
    )
    sigma = (
        artificial_scatter_dex(artificial_metrics_path, radius_px)
        if pf["error_kernel"]
        else {"log_mass_msun": 0.0, "log_age_yr": 0.0}
    )
    mass_grid = population_grid(*log_mass_range_msun)
    age_grid = population_grid(*log_age_range_yr)
    completeness = candidate_completeness(
        selection, candidates, log_background(background), mass_grid, age_grid
    )
    fit_kwargs = {
        "c_min": float(pf["min_completeness"]),
        "sigma_log_mass": sigma["log_mass_msun"],
        "sigma_log_age": sigma["log_age_yr"],
    }
    fits = population_fits(
        candidates,
        completeness,
        mass_grid,
        age_grid,
        fixed_slope=float(settings["mass_function"]["slope"]),
        **fit_kwargs,
    )
    check = None
    if truth_matched_path is not None:
        matched = read_table(truth_matched_path)
        truth_background = local_backgrounds(
            image_path, matched["x_px"], matched["y_px"], background_annulus_px
        )
        check = selection_check(selection, matched, log_background(truth_background))
        whole = check.iloc[0]
        log.info(
            "%s: the selection function predicts a recall of %.2f of the %d truth clusters, "
            "measured %.2f ± %.2f",
            field,
            whole["predicted"],
            whole["n"],
            whole["observed"],
            whole["observed_err"],
        )
    injected = dict(injected or {})
    equivalent = math.nan
    if injected.get("schechter_mass_msun"):
        equivalent = equivalent_power_law_slope(
            injected["mass_function_slope"], injected["schechter_mass_msun"], *log_mass_range_msun
        )
    truth = {
        "slope": injected.get("mass_function_slope", math.nan),
        "log_mstar_msun": math.log10(injected["schechter_mass_msun"])
        if injected.get("schechter_mass_msun")
        else math.nan,
        "age_index": injected.get("age_distribution_index", math.nan),
    }
    rows = []
    for label, fit in fits.items():
        log.info(
            "%s %s: n %d, slope %.2f (−%.2f +%.2f), log M* %.2f, age index %.2f (−%.2f +%.2f)",
            field,
            label,
            fit.n_clusters,
            fit.slope,
            fit.slope_err_lo,
            fit.slope_err_hi,
            fit.log_mstar_msun,
            fit.age_index,
            fit.age_index_err_lo,
            fit.age_index_err_hi,
        )
        injected_values = {f"injected_{k}": v for k, v in truth.items()}
        if label == "power_law":  # what a power law fits to the injected Schechter function
            injected_values["injected_slope"] = equivalent
        rows.append({"field": field, "label": label, **fit.to_dict(), **injected_values})
    table = pd.DataFrame(rows)
    args = (
        candidates["log_mass_msun"].to_numpy(float),
        candidates["log_age_yr"].to_numpy(float),
        completeness,
        mass_grid,
        age_grid,
    )
    kept = np.zeros(len(candidates), bool)
    if len(candidates):
        kept = sample_mask(
            *args,
            c_min=fit_kwargs["c_min"],
            sigma_log_mass=fit_kwargs["sigma_log_mass"],
            sigma_log_age=fit_kwargs["sigma_log_age"],
            mass_range=log_mass_range_msun,
            age_range=log_age_range_yr,
        )
    mass_edges = np.arange(log_mass_range_msun[0], log_mass_range_msun[1] + 0.1, 0.2)
    age_edges = np.arange(log_age_range_yr[0], log_age_range_yr[1] + 0.1, 0.25)
    predicted = {
        label: expected_counts(fit, *args, mass_edges, age_edges)
        for label, fit in fits.items()
        if fit.n_clusters > 0
    }
    plots.plot_population_fit(
        candidates[kept],
        candidates,
        predicted,
        mass_edges,
        age_edges,
        fits,
        truth,
        field,
        figure_path,
        check=check,
    )
    write_table(
        table_path,
        table,
        {
            "what": "mass function and age distribution fitted by maximum likelihood with the "
            "artificial test's selection function in the likelihood "
            "(starclusters.analysis.population_fit)",
            "field": field,
            "n_candidates": len(candidates),
            "sigma_dex": sigma,
            "settings": dict(pf),
            "selection_check": check.to_dict(orient="records") if check is not None else None,
            "units": {
                "slope": "dN/dM exponent",
                "log_mstar_msun": "log10(M*/Msun); inf: power law",
                "age_index": "dN/dt exponent (t in yr)",
                "*_err_lo, *_err_hi": "68 % profile-likelihood distances to the interval ends",
            },
        },
    )
    return table
