"""The test-set evaluation: inference path, metrics, ROC AUC and grid calibration."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_NETWORK, TINY_WINDOW_PX

from starclusters.errors import ConfigError
from starclusters.model.codec import ParameterGrids, decode_outputs, preprocess
from starclusters.model.evaluate import (
    CALIBRATED,
    EvaluateSettings,
    metric,
    nearest_bin,
    roc_auc,
    run_test_set,
    score_test_set,
    truth_hpd_level,
)
from starclusters.model.inference import predict
from starclusters.model.network import ClusterNetwork, NetworkSpec, probabilities
from starclusters.model.plots import (
    plot_calibration,
    plot_class_visibility,
    plot_parameter_recovery,
)

SPEC = NetworkSpec(**{**TINY_NETWORK, "fc_width": 32}, window_px=TINY_WINDOW_PX)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return ClusterNetwork(SPEC).eval()


def test_truth_hpd_level_by_hand():
    p = np.array([[0.5, 0.3, 0.2], [0.1, 0.6, 0.3]])
    assert truth_hpd_level(p, [0, 0]) == pytest.approx([0.0, 0.9])
    assert truth_hpd_level(p, [2, 1]) == pytest.approx([0.8, 0.0])
    assert np.isnan(truth_hpd_level(p, [-1, 2])[0])
    # n-D grids: the cell index is one per axis
    p2 = np.array([[[0.4, 0.1], [0.3, 0.2]]])
    assert truth_hpd_level(p2, [[1, 1]]) == pytest.approx([0.7])


def test_hpd_coverage_of_a_calibrated_grid_equals_its_level():
    """Truths drawn from the predicted distributions themselves: coverage ≈ α (bins: ≥ α)."""
    rng = np.random.default_rng(1)
    n, k = 20000, 12
    p = rng.dirichlet(np.full(k, 0.7), n)
    truth = np.array([rng.choice(k, p=row) for row in p])
    level = truth_hpd_level(p, truth)
    for alpha in (0.68, 0.95):
        coverage = np.mean(level < alpha)
        assert alpha - 0.01 < coverage < alpha + 0.08
    # an over-confident grid (truth drawn from a flatter distribution) covers far less
    wide = np.array([rng.choice(k) for _ in range(n)])
    assert np.mean(truth_hpd_level(p, wide) < 0.68) < 0.6


def test_nearest_bin_clips_and_handles_log_grids():
    centres = np.array([1.0, 10.0, 100.0])
    assert list(nearest_bin([0.0, 2.0, 4.0, 50.0, 1e4], centres, log_spacing=True)) == [
        0,
        0,
        1,
        2,
        2,
    ]
    assert list(nearest_bin([np.nan, 5.4, 6.0], [5.0, 6.0])) == [-1, 0, 1]


def test_roc_auc_matches_pairwise_count():
    rng = np.random.default_rng(2)
    scores = np.round(rng.random(300), 2)  # with ties
    labels = rng.random(300) < 0.4
    pos, neg = scores[labels], scores[~labels]
    pairs = (pos[:, None] > neg[None, :]).mean() + 0.5 * (pos[:, None] == neg[None, :]).mean()
    assert roc_auc(scores, labels) == pytest.approx(pairs)
    assert roc_auc([0.9, 0.8, 0.1], [True, True, False]) == 1.0
    assert roc_auc([0.1, 0.2, 0.9], [True, True, False]) == 0.0


def test_metrics_on_a_hand_made_table():
    n = 1000
    true_age = np.linspace(6.6, 10.0, n)
    err = np.where(np.arange(n) % 20 == 0, 1.0, 0.1)  # 5 % far off: the 95 % bound is 0.1
    table = pd.DataFrame(
        {
            "is_cluster": True,
            "log_age_yr_true": true_age,
            "log_age_yr": true_age + err,
            "av_mag_true": 1.0,
            "av_mag": 1.0 - 0.2,
            "log_mass_msun_true": 4.0,
            "log_mass_msun": 4.0,
            "log_rh_arcsec_true": -1.0,
            "log_rh_arcsec": -1.0,
            "visibility_true": 10.0,
            "visibility": 100.0,
            "p_cluster": 0.9,
        }
    )
    table = pd.concat(
        [table, pd.DataFrame({"is_cluster": [False] * 10, "p_cluster": np.linspace(0, 0.5, 10)})],
        ignore_index=True,
    )
    for grid in CALIBRATED:
        table[f"hpd_level_{grid}"] = np.where(table["is_cluster"], 0.5, np.nan)
    m = score_test_set(table)
    assert metric(m, "log_age_yr", "bound95_abs") == pytest.approx(0.1 + 0.9 * 0.05 / 0.05, 0.99)
    assert metric(m, "log_age_yr", "median_bias") == pytest.approx(0.1)
    assert metric(m, "av_mag", "median_bias") == pytest.approx(-0.2)
    assert metric(m, "log_visibility", "median_bias") == pytest.approx(1.0)
    assert metric(m, "log_age_yr", "n", "log_age_lt_8") == np.sum(true_age < 8)
    assert metric(m, "class", "roc_auc") == 1.0
    assert metric(m, "class", "frac_above_0.5", "backgrounds") == 0.0
    assert metric(m, "age_av_mass", "hpd68_coverage") == 1.0
    assert metric(m, "visibility", "hpd95_coverage") == 1.0
    # every mock (p 0.9, visibility 100) kept, every background cut: J = 1 up to class 0.9
    assert metric(m, "thresholds", "youden_j", "derived") == 1.0
    assert metric(m, "thresholds", "class_threshold", "derived") == pytest.approx(0.895)
    assert metric(m, "thresholds", "youden_j", "thesis") == 0.0  # 0.9 is below the thesis' 0.95


def test_predict_is_preprocess_network_probabilities_decode(model):
    grids = ParameterGrids()
    rng = np.random.default_rng(3)
    images = rng.normal(1.0, 0.1, (10, 3, TINY_WINDOW_PX, TINY_WINDOW_PX)).astype(np.float32)
    out = predict(model, images, grids, batch_size=4, keep_grids=True)
    with torch.no_grad():
        probs = probabilities(model(torch.from_numpy(preprocess(images))))
    direct = decode_outputs(probs, grids)
    for key in ("p_cluster", "log_age_yr", "av_mag", "log_mass_msun", "log_rh_arcsec"):
        assert out[key].shape == (10,)
        np.testing.assert_allclose(out[key], direct[key].numpy(), rtol=1e-5, atol=1e-5)
    assert out["grid_age_av_mass"].shape == (10, *grids.shape_3d)
    np.testing.assert_allclose(out["grid_age_av_mass"].sum(axis=(1, 2, 3)), 1.0, rtol=1e-5)
    assert np.all((out["p_cluster"] >= 0) & (out["p_cluster"] <= 1))


def test_run_test_set_uses_the_test_split_and_is_reproducible(model, tiny_data):
    grids = ParameterGrids()
    settings = EvaluateSettings(n_mocks=13, n_backgrounds=7, batch_size=8)
    table = run_test_set(model, grids, tiny_data, settings, seed=4)
    assert table["is_cluster"].sum() == 13 and (~table["is_cluster"]).sum() == 7
    mocks = table[table["is_cluster"]]
    assert set(tiny_data.mock_split[mocks["mock_index"]]) == {"test"}
    assert set(tiny_data.background_split[table["background_index"]]) == {"test"}
    params = tiny_data.mock_params.iloc[mocks["mock_index"]]
    np.testing.assert_array_equal(mocks["log_age_yr_true"], params["log_age_yr"])
    for grid in CALIBRATED:
        level = table[f"hpd_level_{grid}"]
        assert level[~table["is_cluster"]].isna().all()
        assert ((level[table["is_cluster"]] >= 0) & (level[table["is_cluster"]] < 1)).all()
    again = run_test_set(model, grids, tiny_data, settings, seed=4)
    pd.testing.assert_frame_equal(table, again)
    other = run_test_set(model, grids, tiny_data, settings, seed=5)
    assert not other["mock_index"].equals(table["mock_index"])


def test_figures_are_written(tmp_path, model, tiny_data):
    grids = ParameterGrids()
    table = run_test_set(model, grids, tiny_data, EvaluateSettings(20, 20, 16), seed=1)
    metrics = score_test_set(table)
    for plot, name in (
        (lambda p: plot_parameter_recovery(table, metrics, p), "parameters.png"),
        (lambda p: plot_class_visibility(table, metrics, p), "class.png"),
        (lambda p: plot_calibration(table, p), "calibration.png"),
    ):
        plot(tmp_path / name)
        assert (tmp_path / name).stat().st_size > 10_000


def test_settings_errors_name_the_key():
    with pytest.raises(ConfigError, match="evaluate.n_mocks"):
        EvaluateSettings(n_mocks=0)
    with pytest.raises(ConfigError, match="evaluate.bogus"):
        EvaluateSettings.from_config({"bogus": 1})


def test_regression_network_is_scored_on_its_three_parameters(tmp_path, tiny_data):
    import dataclasses

    torch.manual_seed(1)
    model = ClusterNetwork(dataclasses.replace(SPEC, head="regression")).eval()
    grids = ParameterGrids()
    table = run_test_set(model, grids, tiny_data, EvaluateSettings(10, 4, 8), seed=2)
    metrics = score_test_set(table)
    for name in ("log_age_yr", "log_mass_msun", "log_rh_arcsec"):
        assert np.isfinite(metric(metrics, name, "bound95_abs"))
    assert metric(metrics, "av_mag", "n") == 0
    assert np.isnan(metric(metrics, "class", "roc_auc"))
    plot_parameter_recovery(table, metrics, tmp_path / "p.png")
    plot_class_visibility(table, metrics, tmp_path / "c.png")
    plot_calibration(table, tmp_path / "k.png")
    assert all((tmp_path / n).exists() for n in ("p.png", "c.png", "k.png"))
