"""Selection function of the artificial test: fit, calibration, gridded table, queries, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from starclusters.artificial.selection import (
    SELECTION_FEATURES,
    SelectionFunction,
    calibration_table,
    fit_selection,
    grid_points,
)
from starclusters.errors import ConfigError, InputFileError
from starclusters.io import read_table, write_table

AGES = np.round(np.arange(6.6, 10.1001, 0.05), 2)  # an isochrone grid, log yr
AVS = np.arange(0.0, 3.001, 0.25)  # mag


def mass_50(log_age_yr, av_mag):
    """log M of 50 % completeness of the simulated test, dex."""
    return 3.6 + 0.4 * (np.asarray(log_age_yr) - 7.0) + 0.3 * np.asarray(av_mag)


def true_completeness(log_age_yr, log_mass_msun, av_mag):
    """The simulated P(detected): logistic in mass, width 0.12 dex; no r_h or background."""
    return 1.0 / (1.0 + np.exp(-(np.asarray(log_mass_msun) - mass_50(log_age_yr, av_mag)) / 0.12))


def simulate_injections(n: int, rng: np.random.Generator) -> pd.DataFrame:
    """n injections drawn like the artificial test's: masses uniform, 40 % near the edge."""
    age = rng.choice(AGES, n)
    av = rng.choice(AVS, n)
    uniform = rng.uniform(3.5, 5.5, n)
    near_edge = np.clip(mass_50(age, av) + rng.normal(0.0, 0.25, n), 3.5, 5.5)
    mass = np.where(rng.random(n) < 0.6, uniform, near_edge)
    p = true_completeness(age, mass, av)
    return pd.DataFrame(
        {
            "log_age_yr": age,
            "log_mass_msun": mass,
            "av_mag": av,
            "log_rh_arcsec": rng.uniform(np.log10(0.04), np.log10(0.4), n),
            "log_background_counts_s": rng.uniform(-2.0, 1.0, n),
            "recovered_3px": rng.random(n) < p,
        }
    )


@pytest.fixture(scope="module")
def injections() -> pd.DataFrame:
    table = simulate_injections(3000, np.random.default_rng(2024))
    table.loc[:4, "log_rh_arcsec"] = np.nan  # five rows with a missing feature
    return table


@pytest.fixture(scope="module")
def fitted(injections):
    """(selection function, grid table, calibration table, meta) of the simulated test."""
    # one thread: OpenMP threads spin-wait, and two on a busy shared machine are far slower
    grid, calibration, meta = fit_selection(injections, "recovered_3px", seed=1, n_threads=1)
    grid.attrs["meta"] = meta
    return SelectionFunction.from_table(grid), grid, calibration, meta


# ----------------------------------------------------------------------------- fit


def test_fit_recovers_the_known_completeness(fitted):
    selection, *_ = fitted
    # the well-sampled interior: away from the age, mass and A_V edges
    age, mass, av = np.meshgrid(
        np.arange(6.8, 9.81, 0.1), np.arange(3.6, 5.41, 0.1), np.arange(0, 2.51, 0.5), indexing="ij"
    )
    error = np.abs(selection(age, mass, av) - true_completeness(age, mass, av))
    assert error.mean() < 0.06  # 0.03–0.04 on such samples
    # r_h and background do not matter: the fit should not invent a dependence
    for rh, background in ((-1.3, -1.9), (-0.5, 0.9)):
        other = selection(age, mass, av, rh, background)
        assert np.abs(other - true_completeness(age, mass, av)).mean() < 0.08


def test_fit_recovers_the_50_percent_mass(fitted):
    selection, *_ = fitted
    ages = np.array([7.0, 7.5, 8.0, 8.5, 9.0])
    for av in (0.0, 1.0, 2.0):
        found = selection.log_mass_at(0.5, ages, av_mag=av)
        error = np.abs(found - mass_50(ages, av))
        assert np.isfinite(found).all()
        assert error.mean() < 0.1 and error.max() < 0.2, (av, found, mass_50(ages, av))
    # old and extinguished: P(5.5) = 0.12 in truth, ~0.5 fitted (the corner's few
    # injections share leaves with their neighbours); 90 % is never reached in the grid
    assert np.isnan(selection.log_mass_at(0.9, 10.1, av_mag=3.0))


def test_grid_is_monotone_in_mass_and_extinction(fitted):
    selection, grid, *_ = fitted
    values = selection.values  # (age, mass, A_V, r_h, background)
    assert np.all(np.diff(values, axis=1) >= 0)
    assert np.all(np.diff(values, axis=2) <= 0)
    # and the table spans the whole range of P
    assert grid["p_detected"].min() < 0.05 and grid["p_detected"].max() > 0.95


def test_default_grid_and_meta(fitted, injections):
    selection, grid, _, meta = fitted
    assert list(grid.columns) == [*SELECTION_FEATURES, "p_detected"]
    assert grid["p_detected"].dtype == np.float32
    assert 50_000 < len(grid) < 200_000
    ages = selection.axes["log_age_yr"]
    assert ages[0] == pytest.approx(6.6) and ages[-1] == pytest.approx(10.1)
    assert np.diff(ages).max() <= 0.1 + 1e-9
    assert np.diff(selection.axes["log_mass_msun"]).max() <= 0.1 + 1e-9
    assert [len(selection.axes[n]) for n in SELECTION_FEATURES[2:]] == [7, 5, 5]
    clean = injections.dropna()
    assert meta["n_injections"] == len(clean) == 2995 and meta["n_dropped_nan"] == 5
    assert meta["n_detected"] == int(clean["recovered_3px"].sum())
    assert meta["detected_column"] == "recovered_3px"
    assert meta["monotonic_cst"]["log_mass_msun"] == 1 and meta["monotonic_cst"]["av_mag"] == -1
    assert meta["medians"]["av_mag"] == pytest.approx(clean["av_mag"].median())
    assert meta["ranges"]["log_mass_msun"][1] == pytest.approx(clean["log_mass_msun"].max())
    import sklearn

    assert meta["sklearn_version"] == sklearn.__version__


def test_calibration_is_honest_and_better_than_the_base_rate(fitted):
    _, _, calibration, meta = fitted
    assert calibration["n"].sum() == meta["n_injections"]
    assert len(calibration) == 10
    full = calibration[calibration["n"] >= 20]
    assert len(full) >= 8
    # observed fractions agree with the mean prediction within twice the ±1σ interval
    half = 0.5 * (full["observed_hi"] - full["observed_lo"])
    agree = np.abs(full["observed_fraction"] - full["mean_predicted"]) <= 2 * half
    assert agree.mean() >= 0.75, full
    assert full["mean_predicted"].between(full["p_lo"], full["p_hi"]).all()
    assert meta["brier_cv"] < 0.6 * meta["brier_base_rate"]
    assert meta["log_loss_cv"] < 0.6 * meta["log_loss_base_rate"]
    # the CV predictions are out-of-fold: their Brier score stays above the noise floor of
    # the truth, E[p(1 − p)], which a model scoring its own training rows could beat
    assert meta["brier_cv"] > 0.08


def test_calibration_table_counts_and_wilson_interval():
    predicted = np.array([0.05, 0.05, 0.95, 1.0, 0.55])
    detected = np.array([False, True, True, True, False])
    table = calibration_table(predicted, detected, n_bins=10)
    assert table["n"].tolist() == [2, 0, 0, 0, 0, 1, 0, 0, 0, 2]  # p = 1 in the last bin
    assert table.loc[0, "observed_fraction"] == 0.5
    assert table.loc[9, "mean_predicted"] == pytest.approx(0.975)
    assert np.isnan(table.loc[1, "observed_fraction"])
    assert 0 < table.loc[9, "observed_lo"] < 1 == table.loc[9, "observed_hi"]


def test_fit_options_and_bad_input(injections):
    small = injections.iloc[:600]
    axes = {"log_age_yr": [7.0, 8.0, 9.0], "av_mag": [0.0, 2.0]}
    grid, _, meta = fit_selection(small, "recovered_3px", grid_axes=axes, n_folds=3, n_threads=1)
    assert sorted(grid["log_age_yr"].unique()) == [7.0, 8.0, 9.0]
    assert len(grid) == 3 * 21 * 2 * 5 * 5 and meta["n_folds"] == 3
    with pytest.raises(ConfigError, match="log_age"):
        fit_selection(small, "recovered_3px", monotone={"log_age": 1})
    with pytest.raises(ConfigError, match="monotone.av_mag"):
        fit_selection(small, "recovered_3px", monotone={"av_mag": 2})
    with pytest.raises(ConfigError, match="grid_axes.av_mag"):
        fit_selection(small, "recovered_3px", grid_axes={"av_mag": [1.0, 0.0]})
    with pytest.raises(InputFileError, match="recovered_6px"):
        fit_selection(small, "recovered_6px")
    # one outcome only (every mock found, or too few missed to cross-validate): the base
    # rate everywhere, not a fit of nothing
    for flags in (True, np.arange(len(small)) >= 2):
        grid, calibration, meta = fit_selection(
            small.assign(recovered_3px=flags), "recovered_3px", n_threads=1
        )
        assert meta["base_rate"] > 0.99 and meta["n_folds"] == 0
        assert np.allclose(grid["p_detected"], meta["base_rate"])
        assert "constant" in meta["model"]["estimator"]
        assert calibration["n"].sum() == meta["n_injections"] > 500


# ----------------------------------------------------------------------------- queries


def linear_p(age, mass, av, rh, background):
    """A P(detected) linear in every feature (in [0.05, 0.89] on the grid below): linear
    interpolation reproduces it exactly."""
    return 0.25 + 0.3 * (mass - 3.5) - 0.05 * av + 0.01 * (age - 7) + 0.02 * rh + 0.01 * background


LINEAR_AXES = {
    "log_age_yr": np.array([6.6, 7.5, 8.5, 10.1]),
    "log_mass_msun": np.array([3.5, 4.0, 4.5, 5.5]),
    "av_mag": np.array([0.0, 1.5, 3.0]),
    "log_rh_arcsec": np.array([-1.4, -0.4]),
    "log_background_counts_s": np.array([-2.0, -0.5, 1.0]),
}
LINEAR_MEDIANS = {
    "log_age_yr": 8.0,
    "log_mass_msun": 4.4,
    "av_mag": 1.0,
    "log_rh_arcsec": -1.0,
    "log_background_counts_s": -0.6,
}


@pytest.fixture
def linear_table() -> pd.DataFrame:
    points = grid_points(LINEAR_AXES)
    table = pd.DataFrame(points, columns=list(SELECTION_FEATURES))
    table["p_detected"] = linear_p(*points.T)
    table = table.sample(frac=1.0, random_state=0)  # any row order
    table.attrs["meta"] = {"medians": LINEAR_MEDIANS, "detected_column": "recovered_3px"}
    return table


def test_selection_interpolates_broadcasts_and_uses_medians(linear_table):
    selection = SelectionFunction.from_table(linear_table)
    p = selection(7.2, 4.1, 0.7, -0.9, 0.3)
    assert p.shape == () and p == pytest.approx(linear_p(7.2, 4.1, 0.7, -0.9, 0.3))
    ages = np.array([[7.0], [8.0], [9.0]])
    masses = np.array([3.7, 4.2, 4.9, 5.3])
    out = selection(ages, masses)
    assert out.shape == (3, 4)
    medians = [LINEAR_MEDIANS[n] for n in SELECTION_FEATURES[2:]]
    np.testing.assert_allclose(out, linear_p(ages, masses, *medians))
    np.testing.assert_allclose(selection(ages, masses, av_mag=1.0), out)
    assert np.isnan(selection(np.nan, 4.0))


def test_selection_clips_to_the_grid(linear_table):
    selection = SelectionFunction.from_table(linear_table)
    assert selection(12.0, 6.0, -1.0, 0.5, -np.inf) == pytest.approx(
        linear_p(10.1, 5.5, 0.0, -0.4, -2.0)
    )
    assert selection.ranges["log_mass_msun"] == (3.5, 5.5)


def test_log_mass_at(linear_table):
    selection = SelectionFunction.from_table(linear_table)
    ages = np.array([7.0, 9.0])
    found = selection.log_mass_at(0.5, ages, av_mag=1.0, log_rh_arcsec=-1.0)
    # 0.25 + 0.3 (M − 3.5) − 0.05 + 0.01 (t − 7) − 0.02 − 0.006 = 0.5
    expected = 3.5 + (0.5 - 0.25 + 0.05 - 0.01 * (ages - 7) + 0.02 + 0.006) / 0.3
    np.testing.assert_allclose(found, expected)
    assert selection.log_mass_at([0.3, 0.99], 7.0).shape == (2,)
    assert np.isnan(selection.log_mass_at(0.99, 7.0))  # never reached
    assert np.isnan(selection.log_mass_at(0.01, 7.0))  # already at the lowest mass
    with pytest.raises(ValueError, match="probabilit"):
        selection.log_mass_at(1.5, 7.0)


def test_selection_single_node_axis(linear_table):
    one_av = linear_table[linear_table["av_mag"] == 1.5]
    selection = SelectionFunction.from_table(one_av)
    assert selection(8.0, 4.0, av_mag=0.0) == pytest.approx(linear_p(8.0, 4.0, 1.5, -1.0, -0.6))


def test_read_refuses_malformed_tables(tmp_path, linear_table):
    good = tmp_path / "selection.parquet"
    write_table(good, linear_table, linear_table.attrs["meta"])
    selection = SelectionFunction.read(good)
    assert selection.medians == LINEAR_MEDIANS
    assert selection.meta["detected_column"] == "recovered_3px"
    for name, table, match in (
        ("no_av.parquet", linear_table.drop(columns="av_mag"), "av_mag"),
        ("no_p.parquet", linear_table.drop(columns="p_detected"), "p_detected"),
        ("holes.parquet", linear_table.iloc[1:], "not a full grid"),
        ("bad_p.parquet", linear_table.assign(p_detected=2.0), r"\[0, 1\]"),
    ):
        path = tmp_path / name
        write_table(path, table)
        with pytest.raises(InputFileError, match=match) as caught:
            SelectionFunction.read(path)
        assert str(path) in str(caught.value)
    with pytest.raises(InputFileError, match="missing.parquet"):
        SelectionFunction.read(tmp_path / "missing.parquet")
    # no medians in the meta: the middle node of each axis
    write_table(tmp_path / "bare.parquet", linear_table)
    assert SelectionFunction.read(tmp_path / "bare.parquet").medians["av_mag"] == 1.5


# ----------------------------------------------------------------------------- figures, CLI


def test_figures(tmp_path, fitted, injections):
    from starclusters.artificial.selection_plots import (
        plot_selection_calibration,
        plot_selection_contours,
    )

    selection, _, calibration, meta = fitted
    plot_selection_calibration(calibration, meta, tmp_path / "calibration.png")
    plot_selection_contours(selection, tmp_path / "contours.png", empirical=injections)
    plot_selection_contours(selection, tmp_path / "bare.png", av_mag_values=(0.5,))
    for name in ("calibration.png", "contours.png", "bare.png"):
        assert (tmp_path / name).read_bytes()[:4] == b"\x89PNG"


def test_cli_completeness(tmp_path, linear_table, capsys):
    from starclusters.cli import main

    path = tmp_path / "selection.parquet"
    write_table(path, linear_table, linear_table.attrs["meta"])
    common = ["completeness", "--selection", str(path), "--log-age-yr", "7"]
    assert main([*common, "--log-mass-msun", "4", "--av-mag", "0.5", "--rh-arcsec", "0.1"]) == 0
    out = capsys.readouterr().out
    expected = linear_p(7.0, 4.0, 0.5, -1.0, LINEAR_MEDIANS["log_background_counts_s"])
    assert f"p_detected = {expected:.4f}" in out
    assert "median of the injections" in out  # the background
    read_back = read_table(path)
    assert len(read_back) == len(linear_table)

    args = [*common, "--log-mass-msun", "4", "--background-counts-s", "100", "--mass-at", "0.5"]
    assert main(args) == 0
    out = capsys.readouterr().out
    p = linear_p(7.0, 4.0, 1.0, -1.0, 1.0)  # background clipped to the grid's 10 counts/s
    mass = 3.5 + (0.5 - 0.25 + 0.05 + 0.02 - 0.01) / 0.3
    assert f"p_detected = {p:.4f}" in out and "clipped" in out
    assert f"log_mass_msun at p_detected = 0.5: {mass:.3f}" in out
    assert main([*common, "--mass-at", "0.99"]) == 0
    assert "stays below 0.99" in capsys.readouterr().out

    assert main([*common]) == 1  # neither a mass nor --mass-at
    missing = ["completeness", "--selection", str(tmp_path / "none.parquet")]
    assert main([*missing, "--log-age-yr", "7", "--log-mass-msun", "4"]) == 1
    assert "none.parquet" in capsys.readouterr().err
