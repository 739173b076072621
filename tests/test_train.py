"""Training data batches and the resumable training loop, on tiny synthetic arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from starclusters.errors import ConfigError
from starclusters.model.data import SPLITS, TrainingData, orient_centred, split_by_seed
from starclusters.model.network import NetworkSpec
from starclusters.model.targets import ParameterGrids
from starclusters.model.train import (
    TrainSettings,
    check_checkpoint,
    export_model,
    load_model,
    train,
)

WINDOW = 32
BANDS = ("F336W", "F438W", "F814W")
SPEC = NetworkSpec(
    stage_blocks=(1, 1, 1, 1),
    stage_channels=(16, 32, 64, 128),
    stem_channels=16,
    fc_width=64,
    window_px=WINDOW,
)


def _blobs(rng, n):
    """n Gaussian-blob 'clusters' (n, 3, S, S) counts/s, centred on pixel (S//2, S//2)."""
    y, x = np.mgrid[0:WINDOW, 0:WINDOW] - WINDOW // 2
    sigma = rng.uniform(1.0, 3.0, n)
    flux = 10 ** rng.uniform(0.0, 1.5, (n, 3))
    profile = np.exp(-0.5 * (x**2 + y**2)[None] / sigma[:, None, None] ** 2)
    profile /= profile.sum(axis=(1, 2), keepdims=True)
    return (flux[:, :, None, None] * profile[:, None]).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    n_mocks, n_bg = 40, 40
    params = pd.DataFrame(
        {
            "log_age_yr": rng.uniform(6.6, 10.1, n_mocks),
            "log_mass_msun": rng.uniform(3.5, 5.5, n_mocks),
            "av_mag": rng.uniform(0.0, 3.0, n_mocks),
            "log_rh_arcsec": rng.uniform(-1.4, -0.4, n_mocks),
            "seed": rng.integers(0, 2**63, n_mocks),
        }
    )
    # every split populated (hash splits of 40 seeds may leave one nearly empty)
    split = np.array(["train"] * 30 + ["val"] * 5 + ["test"] * 5)
    backgrounds = rng.normal(0.05, 0.01, (n_bg, 3, WINDOW, WINDOW)).astype(np.float32)
    return TrainingData(
        bands=BANDS,
        pixel_scale_arcsec=0.04,
        exptime_s=[1200.0, 1000.0, 1000.0],
        psf_rh_px=[1.0, 1.0, 1.3],
        mocks=_blobs(rng, n_mocks),
        mock_params=params,
        mock_split=split,
        backgrounds=backgrounds,
        background_split=split,
    )


@pytest.fixture(scope="module")
def grids():
    return ParameterGrids()


def _settings(**overrides):
    values = dict(
        epochs=2,
        steps_per_epoch=3,
        batch_size=16,
        lr_start=1e-3,
        lr_end=1e-4,
        val_size=16,
        eval_batch_size=8,
    )
    return TrainSettings(**{**values, **overrides})


def test_split_by_seed_is_deterministic_and_near_fractions():
    seeds = np.arange(4000) * 7919
    split = split_by_seed(seeds)
    assert np.array_equal(split, split_by_seed(seeds[::-1])[::-1])  # order-independent
    shares = {s: np.mean(split == s) for s in SPLITS}
    assert abs(shares["train"] - 0.8) < 0.03 and abs(shares["val"] - 0.1) < 0.02
    with pytest.raises(ConfigError, match="train.mock_split_fractions"):
        split_by_seed(seeds, {"train": 0.8, "val": 0.3, "test": 0.1})


def test_batch_is_half_backgrounds_with_masked_cluster_heads(data, grids):
    x, targets = data.make_batch("train", 10, np.random.default_rng(0), grids)
    assert x.shape == (10, 3, WINDOW, WINDOW) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    bg = ~targets["cluster"]
    assert bg.tolist() == [True] * 5 + [False] * 5
    assert torch.equal(targets["class"][bg], torch.tensor([[1.0, 0.0]] * 5))
    assert torch.equal(targets["class"][~bg], torch.tensor([[0.0, 1.0]] * 5))
    assert (targets["age_av_mass"][bg] == 0).all() and (targets["rh"][bg] == 0).all()
    assert torch.allclose(targets["age_av_mass"][~bg].sum(dim=(1, 2, 3)), torch.ones(5))
    # backgrounds: visibility 0 → the peak of the target is bin 0
    assert (targets["visibility"][bg].argmax(dim=1) == 0).all()


def test_draw_uses_only_its_split_and_rng(data):
    a, ta = data.draw("val", 8, np.random.default_rng(3), jitter_px=2, calibration_jitter=0.2)
    b, tb = data.draw("val", 8, np.random.default_rng(3), jitter_px=2, calibration_jitter=0.2)
    assert np.array_equal(a, b) and ta.equals(tb)
    assert set(data.background_split[ta["background_index"]]) == {"val"}
    assert set(data.mock_split[ta["mock_index"][ta["is_cluster"]]]) == {"val"}
    assert (ta["visibility"][ta["is_cluster"]] > 0).all()
    assert (ta.loc[~ta["is_cluster"], "visibility"] == 0).all()
    assert ta[["shift_y_px", "shift_x_px"]].abs().to_numpy().max() <= 2


@pytest.mark.parametrize("size", [8, 9])
def test_orientation_keeps_the_centre_pixel(size):
    stamp = np.zeros((2, size, size))
    stamp[:, size // 2, size // 2] = 1.0
    stamp[0, size // 2, size // 2 + 1] = 0.5  # marks the orientation
    seen = set()
    for k in range(4):
        for flip in (False, True):
            out = orient_centred(stamp, k, flip)
            assert out.shape == stamp.shape and out[:, size // 2, size // 2].tolist() == [1, 1]
            seen.add(tuple(np.argwhere(out[0] == 0.5)[0]))
    assert len(seen) == 4  # the marker visits all four neighbours


def test_augmentation_keeps_shapes_and_moves_the_cluster(data):
    kwargs = dict(augment=True, jitter_px=3, calibration_jitter=0.2)
    images, table = data.draw("train", 64, np.random.default_rng(1), **kwargs)
    assert images.shape == (64, 3, WINDOW, WINDOW) and images.dtype == np.float32
    plain, _ = data.draw("train", 64, np.random.default_rng(1), augment=False, jitter_px=0)
    assert plain.shape == images.shape
    # the brightest pixel of a bright composed cluster sits at the centre plus its shift
    c = WINDOW // 2
    bright = np.flatnonzero(table["is_cluster"] & (table["visibility"] > 20))
    assert bright.size >= 5
    exact = 0
    for i in bright:
        band = int(np.argmax(data.mocks[table["mock_index"][i]].sum(axis=(1, 2))))
        peak = np.unravel_index(np.argmax(images[i, band]), (WINDOW, WINDOW))
        expected = (c + table["shift_y_px"][i], c + table["shift_x_px"][i])
        assert max(abs(peak[0] - expected[0]), abs(peak[1] - expected[1])) <= 1  # noise
        exact += peak == expected
    assert exact >= 0.7 * bright.size  # a rotation about the wrong pixel would miss by 1


def test_short_training_lowers_the_loss(tmp_path, data, grids):
    settings = _settings(epochs=4, steps_per_epoch=4, lr_start=3e-3, lr_end=1e-3)
    result = train(SPEC, grids, data, settings, tmp_path / "ckpt.pt", seed=1)
    h = result.history
    assert list(h["epoch"]) == [1, 2, 3, 4]
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    assert h["val_loss"].min() < h["val_loss"].iloc[0]
    assert result.best_epoch == int(h.loc[h["val_loss"].idxmin(), "epoch"])
    assert h["lr"].iloc[-1] == pytest.approx(1e-3)
    for col in ("train_loss_class", "val_loss_age_av_mass", "val_accuracy", "seconds"):
        assert col in h


def test_resume_equals_uninterrupted_run(tmp_path, data, grids):
    settings = _settings()
    straight = train(SPEC, grids, data, settings, tmp_path / "a.pt", seed=7)
    # "killed" after epoch 1: a fresh call picks up the checkpoint and finishes epoch 2
    first = train(SPEC, grids, data, settings, tmp_path / "b.pt", seed=7, stop_after_epochs=1)
    assert list(first.history["epoch"]) == [1]
    resumed = train(SPEC, grids, data, settings, tmp_path / "b.pt", seed=7)
    cols = [c for c in straight.history if c != "seconds"]
    pd.testing.assert_frame_equal(straight.history[cols], resumed.history[cols])
    for (k, v), (k2, w) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, w), k
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert a["scheduler"] == b["scheduler"] and a["numpy_rng"] == b["numpy_rng"]
    # a finished run is not trained again
    again = train(SPEC, grids, data, settings, tmp_path / "b.pt", seed=7)
    pd.testing.assert_frame_equal(again.history, resumed.history)


def test_checkpoint_refuses_other_config(tmp_path, data, grids):
    path = tmp_path / "c.pt"
    settings = _settings(epochs=1, steps_per_epoch=1)
    train(SPEC, grids, data, settings, path, seed=3)
    with pytest.raises(ConfigError, match="train.lr_start"):
        train(SPEC, grids, data, _settings(epochs=1, steps_per_epoch=1, lr_start=0.5), path, 3)
    with pytest.raises(ConfigError, match="^seed"):
        train(SPEC, grids, data, settings, path, seed=4)

    model, loaded_grids, meta = load_model(path)
    assert not model.training and meta["best_epoch"] == 1 and len(meta["history"]) == 1
    check_checkpoint(meta, BANDS, WINDOW, loaded_grids, pixel_scale_arcsec=0.04)
    with pytest.raises(ConfigError, match="^bands"):
        check_checkpoint(meta, ("F336W", "F555W", "F814W"), WINDOW, grids)
    with pytest.raises(ConfigError, match="^window_px"):
        check_checkpoint(meta, BANDS, 64, grids)
    other = ParameterGrids.from_config({"av_mag": {"min": 0.0, "max": 4.0, "bins": 10}})
    with pytest.raises(ConfigError, match=r"^model\.grids\.av_mag"):
        check_checkpoint(meta, BANDS, WINDOW, other)
    with pytest.raises(ConfigError, match="^pixel_scale_arcsec"):
        check_checkpoint(meta, BANDS, WINDOW, grids, pixel_scale_arcsec=0.05)

    export_model(path, tmp_path / "model.pt")
    slim, _, slim_meta = load_model(tmp_path / "model.pt")
    x = torch.randn(2, 3, WINDOW, WINDOW)
    with torch.no_grad():
        assert torch.equal(slim(x)["class"], model(x)["class"])
    assert slim_meta["bands"] == list(BANDS)


def test_settings_errors_name_the_key():
    with pytest.raises(ConfigError, match="train.batch_size"):
        TrainSettings(batch_size=1)
    with pytest.raises(ConfigError, match="train.bogus"):
        TrainSettings.from_config({"bogus": 1})
    assert TrainSettings(epochs=2, steps_per_epoch=5).lr_factor(9) == pytest.approx(0.01)


def test_workflow_rerun_starts_over_after_a_config_change(tmp_path, data, grids):
    """After a config change the old checkpoint is set aside, not resumed and not an error."""
    path = tmp_path / "c.pt"
    train(SPEC, grids, data, _settings(epochs=1, steps_per_epoch=1), path, seed=3)
    changed = _settings(epochs=2, steps_per_epoch=1, lr_start=0.005)
    result = train(SPEC, grids, data, changed, path, seed=3, restart_on_mismatch=True)
    assert list(result.history["epoch"]) == [1, 2]
    straight = train(SPEC, grids, data, changed, tmp_path / "fresh.pt", seed=3)
    for a, b in zip(
        result.model.state_dict().values(), straight.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)
