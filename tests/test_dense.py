"""The dense-ready network: valid padding, fixed input scaling, and its fully convolutional
evaluation against the per-window network (the fast detection mode rests on this)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import TINY_WINDOW_PX, tiny_training_data

from starclusters.errors import ConfigError
from starclusters.model.checkpoint import load_model
from starclusters.model.codec import ParameterGrids, preprocess
from starclusters.model.dense import dense_pooled, total_stride
from starclusters.model.network import ClusterNetwork, NetworkSpec
from starclusters.model.spec import valid_feature_px
from starclusters.model.train import TrainSettings, train

DENSE = {"padding": "valid", "input_norm": "fixed"}


def random_network(seed: int = 0, **spec_keys) -> ClusterNetwork:
    """A dense-ready network in eval mode with non-trivial BatchNorm statistics."""
    torch.manual_seed(seed)
    model = ClusterNetwork(NetworkSpec(**{**DENSE, **spec_keys}))
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm2d):
                module.running_mean.uniform_(-0.5, 0.5)
                module.running_var.uniform_(0.5, 2.0)
                module.weight.uniform_(0.5, 1.5)
                module.bias.uniform_(-0.2, 0.2)
    return model.eval()


def window_pooled(model: ClusterNetwork, windows: torch.Tensor) -> torch.Tensor:
    """(N, C) the per-window network's features before fc (its own forward path)."""
    x = model.maxpool(model.relu(model.bn1(model.conv1(windows))))
    return model.avgpool(model.stages(x)).flatten(1)


@pytest.mark.parametrize(
    "spec",
    [
        dict(window_px=32, stage_blocks=(1, 1, 1), stage_channels=(8, 16, 32), stem_channels=4),
        dict(window_px=64, stage_blocks=(1, 1, 1, 1), stage_channels=(8, 16, 16, 32)),
        dict(window_px=45, stage_blocks=(2, 1), stage_channels=(8, 16), stage_widths=(4, 2)),
    ],
)
def test_dense_features_equal_the_per_window_network_at_every_offset(spec):
    model = random_network(1, stem_channels=spec.pop("stem_channels", 8), fc_width=8, **spec)
    window = model.spec.window_px
    x = torch.randn(2, 3, window + 13, window + 10)  # odd extents: every stride offset
    with torch.no_grad():
        dense = dense_pooled(model, x)
        assert dense.shape == (2, model.spec.stage_channels[-1], 14, 11)
        tops = [(0, 0), (13, 10), (1, 0), (0, 1), (5, 7), (3, 3), (12, 9), (7, 2)]
        windows = torch.stack([x[1, :, i : i + window, j : j + window] for i, j in tops])
        expected = window_pooled(model, windows)
    got = torch.stack([dense[1, :, i, j] for i, j in tops])
    assert expected.abs().max() > 0.1  # features that are not all zero
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_dense_evaluation_refuses_other_networks_and_small_images():
    same = ClusterNetwork(NetworkSpec(window_px=32, stage_blocks=(1,), stage_channels=(8,)))
    with pytest.raises(ValueError, match="padding: same .*input_norm: window"):
        dense_pooled(same.eval(), torch.zeros(1, 3, 40, 40))
    model = random_network(window_px=32, stage_blocks=(1,), stage_channels=(8,), fc_width=8)
    with pytest.raises(ValueError, match="smaller than the 32-px window"):
        dense_pooled(model, torch.zeros(1, 3, 31, 40))
    with pytest.raises(ValueError, match="eval mode"):
        dense_pooled(model.train(), torch.zeros(1, 3, 40, 40))
    assert total_stride(model) == 2


def test_valid_padding_needs_a_large_enough_window():
    assert valid_feature_px(64, (1, 1, 1, 1)) == (28, 26, 12, 5, 2)
    assert valid_feature_px(64, (2, 2, 2)) == (28, 24, 9, 2)
    NetworkSpec(window_px=64, stage_blocks=(2, 2, 2), stage_channels=(8, 16, 32), **DENSE)
    with pytest.raises(ConfigError, match=r"model\.window_px: .*64-px window .*conv5_x"):
        NetworkSpec(
            window_px=64, stage_blocks=(2, 2, 2, 2), stage_channels=(8, 16, 32, 64), **DENSE
        )
    for key, value in (("padding", "reflect"), ("input_norm", "batch")):
        with pytest.raises(ConfigError, match=f"model.{key}: must be one of"):
            NetworkSpec(**{key: value})


def test_fixed_preprocessing_does_not_depend_on_the_window():
    rng = np.random.default_rng(0)
    image = rng.gamma(2.0, 0.3, (3, 50, 60)).astype(np.float32)
    scale = np.array([0.5, 1.0, 2.0], np.float32)
    whole = preprocess(image, scale)
    cut = preprocess(image[:, 10:42, 20:52], scale)
    np.testing.assert_allclose(whole[:, 10:42, 20:52], cut, rtol=1e-6)
    np.testing.assert_allclose(whole, np.arcsinh(image / scale[:, None, None]), rtol=1e-6)
    # the thesis' per-window normalisation does depend on it
    assert not np.allclose(preprocess(image)[:, 10:42, 20:52], preprocess(image[:, 10:42, 20:52]))


def test_training_sets_the_input_scales_from_the_backgrounds_and_saves_them(tmp_path):
    data = tiny_training_data()
    spec = NetworkSpec(
        window_px=TINY_WINDOW_PX,
        stage_blocks=(1, 1, 1),
        stage_channels=(8, 16, 32),
        stem_channels=4,
        fc_width=8,
        **DENSE,
    )
    settings = TrainSettings(
        epochs=1, steps_per_epoch=2, batch_size=8, lr_start=1e-3, lr_end=1e-3, val_size=8
    )
    result = train(spec, ParameterGrids(), data, settings, tmp_path / "ckpt.pt", seed=3)
    train_bg = data.backgrounds[data.background_split == "train"]
    expected = np.median(train_bg.reshape(len(train_bg), 3, -1).std(axis=2), axis=0)
    np.testing.assert_allclose(data.band_scale(), expected, rtol=1e-5)
    np.testing.assert_allclose(result.model.input_scale.numpy(), expected, rtol=1e-5)
    loaded, _, meta = load_model(tmp_path / "ckpt.pt")
    assert meta["spec"]["padding"] == "valid" and meta["spec"]["input_norm"] == "fixed"
    np.testing.assert_allclose(loaded.band_scale().numpy(), expected, rtol=1e-5)
