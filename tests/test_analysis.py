"""Population analysis (thesis §4.3): mass-function fits, sliding-window statistics, the age
gradient across the arms on data drawn with the synthetic galaxy's own code, the catalog
cross-match, and the stage functions on empty and tiny catalogs."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import scipy.stats

from starclusters.analysis.mass_function import (
    equivalent_power_law_slope,
    fit_power_law,
    fit_schechter,
    fit_schechter_mstar,
)
from starclusters.analysis.population import (
    AgeGroup,
    age_groups,
    count_peak,
    group_count_profiles,
    poisson_band,
    running_statistics,
    sliding_counts,
    window_centres,
)
from starclusters.synthetic.catalogs import sample_schechter_masses


def draw_log_masses(n, slope, mstar, rng, lo=3.5, hi=5.5):
    return np.log10(sample_schechter_masses(n, slope, 10**lo, 10**hi, mstar, rng))


# --- mass functions


def test_schechter_fit_recovers_mstar_at_the_thesis_slope(rng):
    fit = fit_schechter_mstar(draw_log_masses(3000, -2.0, 1e5, rng), 3.5, 5.5)
    assert fit.n == 3000 and fit.slope == -2.0
    assert fit.log_mstar_lo_msun < 5.0 < fit.log_mstar_hi_msun
    assert 0.02 < fit.log_mstar_err < 0.15
    assert abs(fit.log_mstar_msun - 5.0) < 2.5 * fit.log_mstar_err


def test_power_law_fit_recovers_its_slope(rng):
    fit = fit_power_law(draw_log_masses(2000, -2.3, math.inf, rng), 3.5, 5.5)
    assert 0.01 < fit.slope_err < 0.1
    assert abs(fit.slope + 2.3) < 2.5 * fit.slope_err
    # no cutoff in the data: the fixed-slope Schechter fit finds none either (open upper end)
    flat = fit_schechter_mstar(draw_log_masses(500, -2.0, math.inf, rng), 3.5, 5.5)
    assert flat.log_mstar_msun > 5.3 or math.isinf(flat.log_mstar_hi_msun)


def test_free_schechter_fit_recovers_slope_and_mstar(rng):
    fit = fit_schechter(draw_log_masses(3000, -2.0, 1e5, rng), 3.5, 5.5)
    assert abs(fit.slope + 2.0) < 2.5 * fit.slope_err
    assert fit.slope_err < 0.15
    assert abs(fit.log_mstar_msun - 5.0) < 0.3


def test_power_law_on_a_schechter_sample_converges_to_the_equivalent_slope(rng):
    expected = equivalent_power_law_slope(-2.0, 1e5, 3.5, 5.5)
    assert -2.3 < expected < -2.05  # the cutoff steepens the apparent slope
    assert equivalent_power_law_slope(-1.7, math.inf, 3.5, 5.5) == pytest.approx(-1.7, abs=1e-6)
    fit = fit_power_law(draw_log_masses(4000, -2.0, 1e5, rng), 3.5, 5.5)
    assert abs(fit.slope - expected) < 2.5 * fit.slope_err


def test_fits_leave_out_masses_below_the_completeness_limit(rng):
    masses = np.concatenate([draw_log_masses(1000, -2.0, math.inf, rng, lo=4.0), [3.0] * 500])
    fit = fit_power_law(np.append(masses, np.nan), 4.0, 5.5)
    assert fit.n == 1000 and abs(fit.slope + 2.0) < 2.5 * fit.slope_err


def test_fits_of_too_few_clusters_are_nan_not_errors():
    for fit in (
        fit_schechter_mstar([4.0], 3.5, 5.5),
        fit_power_law([], 3.5, 5.5),
        fit_schechter([4.0, 4.1], 3.5, 5.5),
    ):
        assert fit.n <= 2 and math.isnan(fit.slope_err) and math.isnan(fit.log_mstar_err)
        assert fit.expected_counts(np.array([3.5, 4.0, 4.5])).sum() == 0


def test_expected_counts_sum_to_n_over_the_fitted_range(rng):
    fit = fit_schechter_mstar(draw_log_masses(400, -2.0, 1e5, rng), 3.5, 5.5)
    counts = fit.expected_counts(np.linspace(3.0, 6.0, 31))
    assert counts.sum() == pytest.approx(400, rel=1e-6)
    assert counts[:5].sum() == 0  # below the completeness limit


# --- sliding windows


def test_sliding_counts_use_half_open_windows():
    values = [0.0, 0.05, 0.1, 0.2, np.nan, 0.95]
    assert list(sliding_counts(values, [0.0, 0.1, 1.0], 0.1)) == [1, 2, 1]


def test_poisson_band_is_garwoods_interval():
    counts = np.array([0, 1, 4, 25])
    lower, upper = poisson_band(counts)
    alpha = 1.0 - 0.682689492
    expected_lower = np.where(counts > 0, scipy.stats.chi2.ppf(alpha / 2, 2 * counts) / 2, 0.0)
    expected_upper = scipy.stats.chi2.ppf(1 - alpha / 2, 2 * counts + 2) / 2
    assert lower == pytest.approx(expected_lower, rel=1e-6)
    assert upper == pytest.approx(expected_upper, rel=1e-6)
    assert upper[0] == pytest.approx(1.841, abs=1e-3)


def test_running_statistics_of_a_hand_made_case():
    x = [0.0, 0.2, 0.4, 1.0, 1.1, 1.2, 3.0, np.nan]
    y = [1.0, 2.0, 3.0, 10.0, 20.0, 30.0, 5.0, 100.0]
    stats = running_statistics(x, y, [0.25, 1.1, 3.0, 5.0], 0.6)
    assert list(stats["n"]) == [3, 3, 1, 0]
    assert stats["mean"][:2].tolist() == pytest.approx([2.0, 20.0])
    assert stats["std"][:2].tolist() == pytest.approx([1.0, 10.0])  # sample std, ddof 1
    assert np.isnan(stats["mean"][2:]).all()  # fewer than 2 points


def test_count_peak_and_groups():
    centres = window_centres(-1.0, 1.0, 0.1)
    assert len(centres) == 21 and centres[-1] == pytest.approx(1.0)
    assert count_peak([0.31, 0.32, 0.33, -0.5], centres, 0.1) == pytest.approx(0.3)
    assert math.isnan(count_peak([], centres, 0.1))
    groups = age_groups([7.0, 7.7])
    assert [g.label for g in groups] == ["log t < 7", "7 ≤ log t < 7.7", "log t ≥ 7.7"]
    assert groups[1].mask([6.9, 7.0, 7.69, 7.7, np.nan]).tolist() == [0, 1, 1, 0, 0]
    profiles = group_count_profiles([0.0, 0.5], [6.8, 8.0], groups, centres, 0.2)
    assert len(profiles) == 3 * 21 and profiles["count"].sum() == 4  # 2 windows each
    with pytest.raises(ValueError):
        age_groups([7.7, 7.0])


# --- the age gradient and mass function of the synthetic galaxy


@pytest.fixture(scope="module")
def synthetic_galaxy():
    """The default synthetic galaxy's spec, geometry, frame and arms (no images)."""
    from starclusters.detect.arms import ArmGeometry
    from starclusters.synthetic.galaxy import arms_table
    from starclusters.synthetic.geometry import GalaxyGeometry, SkyFrame
    from starclusters.synthetic.spec import SyntheticGalaxySpec

    spec = SyntheticGalaxySpec()
    geometry = GalaxyGeometry.from_spec(spec, 4.5)
    frame = SkyFrame.from_spec(spec, np.random.default_rng(83))
    table = arms_table(geometry, frame)
    arms = ArmGeometry.from_config({"source": "synthetic"}, table, geometry.metadata())
    return spec, geometry, frame, arms, table


def test_age_gradient_is_recovered_from_a_catalog_drawn_like_the_truth(synthetic_galaxy):
    """Clusters placed by the generator's own recipe: the youngest group's count peak across
    the lanes (measured with the arm geometry, as for candidates) lies within 0.1 kpc of the
    peak of the offsets the generator injected; the oldest shows no such peak."""
    from starclusters.analysis.injected import draw_group_ages, injected_arm_peaks
    from starclusters.analysis.population import count_peak_with_error
    from starclusters.synthetic.catalogs import place_objects

    spec, geometry, frame, arms, _ = synthetic_galaxy
    rng = np.random.default_rng(7)
    grid = window_centres(6.6, 10.1, 0.05)
    groups = age_groups([7.0, 7.7])
    centres = window_centres(-1.0, 1.5, 0.01)
    injected = injected_arm_peaks(spec, 4.5, groups, grid, centres, 0.1, rng).set_index("group")
    young = groups[0]
    assert 0.02 < injected.loc[young.label, "injected_peak_kpc"] < 0.2  # leading, ~50 pc/Myr
    ages = draw_group_ages(spec, grid, young, 1500, rng)
    places = place_objects(ages, geometry, frame, rng)
    distance = arms.signed_distance_kpc(places["ra_deg"], places["dec_deg"])
    peak, err = count_peak_with_error(distance, centres, 0.1, rng, 100)
    assert abs(peak - injected.loc[young.label, "injected_peak_kpc"]) < 0.1
    assert err < 0.05
    # the field population: few on the lanes, counts flat within Poisson noise near the lane
    assert injected.loc[groups[-1].label, "born_on_lane_fraction"] < 0.2
    old = draw_group_ages(spec, grid, groups[-1], 1500, rng)
    old_distance = arms.signed_distance_kpc(
        *place_objects(old, geometry, frame, rng)[["ra_deg", "dec_deg"]].to_numpy().T
    )
    near = sliding_counts(old_distance, [0.05], 0.1)[0]
    young_near = sliding_counts(distance, [peak], 0.1)[0]
    assert young_near > 3 * near


def test_mass_function_slope_is_recovered_from_masses_drawn_like_the_truth(synthetic_galaxy):
    from starclusters.analysis.injected import injected_mass_function

    spec = synthetic_galaxy[0]
    lo, hi = spec.cluster_log_mass_msun
    rng = np.random.default_rng(11)
    masses = draw_log_masses(2500, spec.mass_function_slope, spec.schechter_mass_msun, rng, lo, hi)
    injected = injected_mass_function(spec, lo, hi)
    assert injected["slope"] == -2.0 and injected["log_mstar_msun"] == pytest.approx(5.0)
    fit = fit_schechter(masses, lo, hi)
    assert abs(fit.slope - injected["slope"]) < 2 * fit.slope_err
    power = fit_power_law(masses, lo, hi)
    assert abs(power.slope - injected["power_law_slope"]) < 2 * power.slope_err


# --- catalog comparison


def test_cross_match_finds_the_planted_counterparts():
    from starclusters.analysis.comparison import comparison_summary, cross_match

    rng = np.random.default_rng(3)
    ra0, dec0 = 204.25, -29.87
    n = 40
    candidates = pd.DataFrame(
        {
            "ra_deg": ra0 + rng.uniform(-0.003, 0.003, n),
            "dec_deg": dec0 + rng.uniform(-0.003, 0.003, n),
            "log_age_yr": rng.uniform(6.6, 9.0, n),
            "log_mass_msun": rng.uniform(3.5, 5.0, n),
            "av_mag": rng.uniform(0, 2, n),
            "log_rh_pc": rng.uniform(0, 1, n),
        }
    )
    planted = np.arange(0, n, 2)  # every other candidate has a catalog counterpart
    offset_arcsec = 0.05
    cos_dec = np.cos(np.radians(dec0))
    catalog = pd.DataFrame(
        {
            "ra_deg": candidates["ra_deg"][planted] + offset_arcsec / 3600 / cos_dec,
            "dec_deg": candidates["dec_deg"][planted],
            "log_age_yr": candidates["log_age_yr"][planted] - 0.1,
        }
    )
    # and two objects far from any candidate
    far = pd.DataFrame({"ra_deg": [ra0 + 0.01, ra0 - 0.01], "dec_deg": [dec0, dec0]})
    catalog = pd.concat([catalog, far], ignore_index=True)
    matched = cross_match(candidates, catalog, radius_arcsec=0.12)
    assert matched["candidate_row"].tolist() == [*planted.tolist(), -1, -1]
    assert matched["separation_arcsec"][:-2].to_numpy() == pytest.approx(offset_arcsec, rel=1e-3)
    summary = comparison_summary(matched).set_index("quantity")
    assert summary.loc["log_age_yr", "n"] == len(planted)
    assert summary.loc["log_age_yr", "median_difference"] == pytest.approx(0.1)
    assert summary.loc["log_mass_msun", "n"] == 0  # the catalog has no masses
    # a radius below the offset matches nothing
    assert (cross_match(candidates, catalog, 0.01)["candidate_row"] == -1).all()


def test_read_catalog_maps_columns_and_names_what_is_missing(tmp_path):
    from starclusters.analysis.comparison import read_catalog, with_log_rh_pc
    from starclusters.errors import ConfigError, InputFileError

    path = tmp_path / "cat.csv"
    pd.DataFrame(
        {"RA": [204.2], "DE": [-29.8], "logAge": [7.1], "Reff": [2.0], "b_logAge": [7.0]}
    ).to_csv(path, index=False)
    columns = {"ra_deg": "RA", "dec_deg": "DE", "log_age_yr": "logAge", "rh_pc": "Reff"}
    catalog = with_log_rh_pc(
        read_catalog(path, "csv", columns | {"log_age_yr_min": "b_logAge"}), 4.5
    )
    assert catalog["log_rh_pc"][0] == pytest.approx(math.log10(2.0))
    assert catalog["log_age_yr_min"][0] == 7.0
    with pytest.raises(InputFileError, match="Mass"):
        read_catalog(path, "csv", columns | {"log_mass_msun": "Mass"})
    with pytest.raises(ConfigError, match="age_gyr"):
        read_catalog(path, "csv", columns | {"age_gyr": "logAge"})
    with pytest.raises(InputFileError, match="nowhere"):
        read_catalog(tmp_path / "nowhere.csv", "csv", columns)


def test_ryon_catalog_shipped_for_the_m83_preset_reads(default_config):
    import yaml
    from conftest import REPO

    from starclusters.analysis.comparison import read_catalog

    m83 = yaml.safe_load((REPO / "config" / "m83.yaml").read_text())["analysis"]["comparison"]
    catalog = read_catalog(REPO / m83["path"], m83["format"], m83["columns"])
    assert len(catalog) == 478 and catalog["log_age_yr"].between(6, 10.5).all()


# --- the stage functions on empty and tiny catalogs


def _candidates(n: int, rng) -> pd.DataFrame:
    from starclusters.detect.catalog import half_mass_density, rh_pc

    table = pd.DataFrame(
        {
            "peak_id": np.arange(n),
            "x": rng.uniform(20, 230, n),
            "y": rng.uniform(20, 230, n),
            "class": rng.uniform(0.9, 1, n),
            "visibility": rng.uniform(3, 30, n),
            "log_age_yr": rng.uniform(6.6, 9.5, n),
            "log_mass_msun": rng.uniform(3.5, 5.0, n),
            "av_mag": rng.uniform(0, 2, n),
            "log_rh_arcsec": rng.uniform(-1.3, -0.4, n),
        }
    )
    table["rh_pc"] = rh_pc(table["log_rh_arcsec"], 4.5)
    table["density_msun_pc3"] = half_mass_density(table["log_mass_msun"], table["rh_pc"])
    table["log_density_msun_pc3"] = np.log10(table["density_msun_pc3"])
    return table


@pytest.fixture(scope="module")
def small_galaxy(tmp_path_factory, synthetic_galaxy):
    """A 256² band on a TAN grid over the synthetic galaxy's centre, its arms table (with
    the generator's metadata) and truth-like clusters."""
    from astropy.io import fits

    from starclusters.io import write_table
    from starclusters.mosaic.prepare import tan_wcs
    from starclusters.synthetic.galaxy import _spec_meta

    spec, geometry, _, _, table = synthetic_galaxy
    out = tmp_path_factory.mktemp("analysis")
    wcs = tan_wcs((256, 256), 0.16, (spec.centre_ra_deg, spec.centre_dec_deg))
    image = np.random.default_rng(1).normal(0.01, 0.002, (256, 256)).astype(np.float32)
    fits.PrimaryHDU(image, wcs.to_header()).writeto(out / "F438W.fits")
    meta = {"geometry": geometry.metadata(), "spec": _spec_meta(spec)}
    write_table(out / "arms.parquet", table, meta)
    return out, wcs


@pytest.mark.parametrize("n", [0, 1, 5])
def test_stage_functions_survive_empty_and_tiny_catalogs(small_galaxy, n, tmp_path):
    from starclusters.analysis import stage
    from starclusters.io import read_table, write_table

    out, wcs = small_galaxy
    rng = np.random.default_rng(n)
    candidates = _candidates(n, rng)
    ra, dec = wcs.pixel_to_world_values(candidates["x"], candidates["y"])
    candidates.insert(3, "ra_deg", np.atleast_1d(ra))
    candidates.insert(4, "dec_deg", np.atleast_1d(dec))
    candidates["galactocentric_kpc"] = rng.uniform(0.5, 4, n)
    write_table(tmp_path / "candidates.parquet", candidates)
    truth = candidates.rename(columns={"log_rh_arcsec": "rh_arcsec"})
    truth["rh_arcsec"] = 10 ** truth["rh_arcsec"]
    write_table(tmp_path / "truth.parquet", truth)
    settings = {"bootstrap": 5, "mass_function": {"completeness_log_mass_msun": 3.5}}
    synthetic = {"source": "synthetic"}
    arms = out / "arms.parquet"
    c = tmp_path / "candidates.parquet"
    stage.make_population_figures(
        c, settings, (3.5, 5.5), (6.6, 10.1),
        *(tmp_path / f for f in ("p.png", "h.png", "r.png", "mf.parquet")),
    )  # fmt: skip
    peaks = stage.make_arm_profiles(
        c, settings, synthetic, synthetic, 4.5, 1, tmp_path / "a.png", tmp_path / "prof.parquet",
        tmp_path / "peaks.parquet", arms_path=arms, truth_path=tmp_path / "truth.parquet",
    )  # fmt: skip
    assert set(peaks["sample"]) == {"candidates", "truth"} and (peaks["n"] <= n).all()
    stage.make_spatial_maps(
        c, out / "F438W.fits", "F438W", settings, synthetic, synthetic, 4.5, tmp_path / "m.png",
        arms_path=arms,
    )  # fmt: skip
    summary = stage.make_comparison(
        c, {"source": "truth", "match_radius_arcsec": 0.12}, 4.5, tmp_path / "cmp.parquet",
        tmp_path / "cmps.parquet", tmp_path / "cmp.png", truth_path=tmp_path / "truth.parquet",
    )  # fmt: skip
    assert (summary["n"] == n).all()  # the truth is the candidates: all match
    metrics = stage.make_metrics(
        tmp_path / "mf.parquet", tmp_path / "peaks.parquet", c, settings, 5.5,
        {"min": 6.6, "max": 10.1, "step": 0.05}, 1, tmp_path / "metrics.parquet",
        truth_path=tmp_path / "truth.parquet", arms_path=arms, comparison_path=tmp_path / "cmps.parquet",
    )  # fmt: skip
    assert read_table(tmp_path / "metrics.parquet").equals(metrics)
    by = metrics.set_index(["quantity", "sample"])
    assert by.loc[("n_candidates", "all"), "measured"] == n
    assert by.loc[("mass_function_slope", "log t < 8.5"), "injected"] == -2.0
    assert 0.02 < by.loc[("arm_offset_peak_kpc", "log t < 7"), "injected"] < 0.2
    for name in ("p.png", "h.png", "r.png", "a.png", "m.png", "cmp.png"):
        assert (tmp_path / name).stat().st_size > 10_000
    assert not list(tmp_path.glob(".*.tmp"))


# --- a completeness limit derived from the selection function

#: The known completeness of these tests: a logistic in log M whose 50 % point rises by
#: 0.5 dex per dex of age from log M 3.8 at log t 7, 0.1 dex wide; no nuisance dependence.
M50_AT_7, M50_PER_DEX, WIDTH_DEX = 3.8, 0.5, 0.1


def _logistic_selection(top=1.0):
    from starclusters.artificial.selection import SELECTION_FEATURES, SelectionFunction

    axes = {name: np.array([0.0]) for name in SELECTION_FEATURES}
    axes["log_age_yr"] = np.arange(6.6, 10.1001, 0.05)
    axes["log_mass_msun"] = np.arange(3.0, 6.0001, 0.02)
    t, m = np.meshgrid(axes["log_age_yr"], axes["log_mass_msun"], indexing="ij")
    m50 = M50_AT_7 + M50_PER_DEX * (t - 7.0)
    p = top / (1.0 + np.exp(-(m - m50) / WIDTH_DEX))
    medians = {name: float(a[0]) for name, a in axes.items()}
    return SelectionFunction(axes, p.reshape(p.shape + (1, 1, 1)), medians), axes


def _selection_table(selection, axes):
    """The grid table fit_selection writes, for SelectionFunction.read."""
    from starclusters.artificial.selection import SELECTION_FEATURES

    grids = np.meshgrid(*(axes[n] for n in SELECTION_FEATURES), indexing="ij")
    table = pd.DataFrame({n: g.ravel() for n, g in zip(SELECTION_FEATURES, grids, strict=True)})
    table["p_detected"] = selection.values.ravel()
    return table, {"medians": selection.medians}


def test_the_derived_completeness_limit_is_where_the_oldest_young_age_reaches_the_level(rng):
    from starclusters.analysis import stage

    selection, _ = _logistic_selection()
    candidates = _candidates(40, rng)
    background = np.full(len(candidates), np.nan)  # off the image: the median
    young_top = 8.5
    limit = stage.derived_completeness_limit(
        selection, candidates, background, (3.5, 5.5), (6.6, 10.1), young_top, 0.9
    )
    oldest = stage.population_grid(6.6, 10.1)
    oldest = oldest[oldest < young_top].max()  # 8.45: the highest node of the young sample
    expected = M50_AT_7 + M50_PER_DEX * (oldest - 7.0) + WIDTH_DEX * math.log(9.0)
    assert limit == pytest.approx(expected, abs=0.01)
    # a lower level, a lower limit; a younger sample, a lower limit
    assert stage.derived_completeness_limit(
        selection, candidates, background, (3.5, 5.5), (6.6, 10.1), young_top, 0.5
    ) == pytest.approx(expected - WIDTH_DEX * math.log(9.0), abs=0.01)
    younger = stage.derived_completeness_limit(
        selection, candidates, background, (3.5, 5.5), (6.6, 10.1), 7.5, 0.9
    )
    assert younger == pytest.approx(expected - M50_PER_DEX, abs=0.03)
    # never reached (P tops out at 0.85), and no young candidate: NaN
    capped, _ = _logistic_selection(top=0.85)
    assert math.isnan(
        stage.derived_completeness_limit(
            capped, candidates, background, (3.5, 5.5), (6.6, 10.1), young_top, 0.9
        )
    )
    assert math.isnan(
        stage.derived_completeness_limit(
            selection, candidates, background, (3.5, 5.5), (6.6, 10.1), 6.0, 0.9
        )
    )


def test_the_hard_cut_fits_use_the_derived_limit_or_stay_unfitted(small_galaxy, tmp_path, rng):
    from starclusters.analysis import stage
    from starclusters.errors import ConfigError
    from starclusters.io import read_table, write_table

    out, _ = small_galaxy
    candidates = _candidates(60, rng)
    candidates["galactocentric_kpc"] = rng.uniform(0.5, 4, 60)
    write_table(tmp_path / "candidates.parquet", candidates)
    selection, axes = _logistic_selection()
    table, meta = _selection_table(selection, axes)
    write_table(tmp_path / "selection.parquet", table, meta)
    figures = [tmp_path / f for f in ("p.png", "h.png", "r.png", "mf.parquet")]
    files = {
        "selection_path": tmp_path / "selection.parquet",
        "image_path": out / "F438W.fits",
        "background_annulus_px": (8.0, 16.0),
    }
    settings = {"mass_function": {"completeness_log_mass_msun": "selection"}}
    fits = stage.make_population_figures(
        tmp_path / "candidates.parquet", settings, (3.5, 5.5), (6.6, 10.1), *figures, **files
    )
    limit = stage.derived_completeness_limit(
        selection, candidates, np.full(60, np.nan), (3.5, 5.5), (6.6, 10.1), 8.5, 0.9
    )
    assert fits["log_mass_lo_msun"].to_numpy() == pytest.approx(limit)
    young = candidates["log_age_yr"] < 8.5
    assert (fits["n"] == ((candidates["log_mass_msun"] >= limit) & young).sum()).all()
    assert read_table(figures[-1]).attrs["meta"]["completeness_log_mass_msun"] == limit
    # a level the function never reaches: the fits are unfitted, not an error
    settings["mass_function"]["completeness_level"] = 0.999999
    fits = stage.make_population_figures(
        tmp_path / "candidates.parquet", settings, (3.5, 5.5), (6.6, 10.1), *figures, **files
    )
    assert (fits["n"] == 0).all() and fits["log_mass_lo_msun"].isna().all()
    assert fits.loc[fits["model"] == "schechter_fixed_slope", "slope"].item() == -2.0
    # 'selection' without the files it needs names the key
    with pytest.raises(ConfigError, match="completeness_log_mass_msun"):
        stage.make_population_figures(
            tmp_path / "candidates.parquet", settings, (3.5, 5.5), (6.6, 10.1), *figures
        )


def test_comparison_config_is_checked():
    from starclusters.analysis.comparison import check_comparison_config
    from starclusters.errors import ConfigError

    def config(comparison, source="files"):
        return {"mosaic": {"source": source}, "analysis": {"comparison": comparison}}

    check_comparison_config(config({"source": "truth"}, "synthetic"))
    with pytest.raises(ConfigError, match="analysis.comparison.source"):
        check_comparison_config(config({"source": "truth"}))
    with pytest.raises(ConfigError, match="analysis.comparison.path"):
        check_comparison_config(config({"source": "file"}))
    with pytest.raises(ConfigError, match="dec_deg"):
        check_comparison_config(config({"source": "file", "path": "x", "columns": {"ra_deg": "R"}}))


def test_load_config_checks_comparison_and_arms(config):
    """The library's check_config (load_config) runs the checks the workflow runs."""
    from starclusters.config import check_config
    from starclusters.detect.arms import arms_section
    from starclusters.errors import ConfigError

    assert arms_section(config) == {"source": "synthetic"}  # the synthetic galaxy's lanes
    config["analysis"]["comparison"] = {"source": "file"}
    with pytest.raises(ConfigError, match=r"^analysis\.comparison\.path"):
        check_config(config)
    config["analysis"]["comparison"] = {"source": "none"}
    config["arms"] = {"source": "files"}
    with pytest.raises(ConfigError, match=r"^arms\.lanes_file"):
        check_config(config)


def test_age_group_mask_ignores_nan():
    assert not AgeGroup(-math.inf, 7.0).mask([np.nan]).any()


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"bootstrap": 1}, "bootstrap"),
        ({"map_max_px": 10.5}, "map_max_px"),
        ({"age_groups_log_yr": [7.7, 7.0]}, "age_groups_log_yr"),
        ({"radial": {"step": 0.1}}, "radial.step"),
        ({"bogus": 1}, "bogus"),
    ],
)
def test_analysis_settings_fill_subsections_and_name_the_bad_key(section, key):
    """The ``analysis`` section has one home: AnalysisSettings' defaults (a subsection given
    in part keeps the other keys' defaults) and checks."""
    from starclusters.analysis.settings import AnalysisSettings
    from starclusters.errors import ConfigError

    filled = AnalysisSettings.from_config({"radial": {"window_kpc": 0.3}}).to_config()
    assert filled["radial"] == {"step_kpc": 0.1, "window_kpc": 0.3}
    assert filled["age_groups_log_yr"] == [7.0, 7.7]
    assert AnalysisSettings.from_config({"comparison": {"source": "files", "path": "x"}})
    with pytest.raises(ConfigError, match=f"^analysis.{key}"):
        AnalysisSettings.from_config(section)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("source", "lanes"),
        ("rotation", "left"),
        ("trailing_kpc", -0.1),
        ("leading_kpc", "0.4"),
        ("corotation_radius_kpc", 0),
        ("lanes_file", 3),
        ("bogus", 1),
    ],
)
def test_arms_settings_name_the_bad_key(key, value):
    """The ``arms`` section has one home: ArmsSettings' defaults and checks, which
    ArmGeometry.from_config and check_config both go through."""
    from starclusters.detect.arms import ArmGeometry, ArmsSettings
    from starclusters.errors import ConfigError

    assert ArmsSettings.from_config({"source": "files"}).trailing_kpc == 0.1
    assert ArmGeometry.from_config(None) is None
    with pytest.raises(ConfigError, match=f"^arms.{key}"):
        ArmsSettings.from_config({"source": "files", key: value})
    with pytest.raises(ConfigError, match=f"^arms.{key}"):
        ArmGeometry.from_config({"source": "files", key: value})
