"""The cluster CNN: shapes, softmax heads, thesis size, learning, rotation averaging, config."""

import pytest
import torch
from conftest import TINY_NETWORK

from starclusters.errors import ConfigError
from starclusters.model.network import (
    ClusterNetwork,
    NetworkSpec,
    build_network,
    count_parameters,
    probabilities,
    rotation_average,
)

#: A network that runs in milliseconds: one bottleneck per stage, 32 × 32 px windows.
TINY = {**TINY_NETWORK, "window_px": 32}


@pytest.fixture
def tiny():
    torch.manual_seed(0)
    return ClusterNetwork(NetworkSpec(**TINY))


def batch(n=4, seed=1):
    """(n, 3, 32, 32) standard-normal inputs for the tiny network."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, TINY["window_px"], TINY["window_px"], generator=generator)


def test_output_shapes(tiny):
    out = tiny(batch(5))
    assert {k: tuple(v.shape) for k, v in out.items()} == {
        "age_av_mass": (5, 20, 10, 14),
        "rh": (5, 14),
        "class": (5, 2),
        "visibility": (5, 20),
    }


def test_probabilities_sum_to_one(tiny):
    tiny.eval()
    with torch.no_grad():
        probs = probabilities(tiny(batch(3)))
    grid = probs["age_av_mass"]
    assert grid.shape == (3, 20, 10, 14)
    # one distribution over the whole 3-D grid, not one per axis
    torch.testing.assert_close(grid.sum(dim=(1, 2, 3)), torch.ones(3))
    assert not torch.allclose(grid.sum(dim=-1), torch.ones(3, 20, 10))
    for key in ("rh", "class", "visibility"):
        torch.testing.assert_close(probs[key].sum(-1), torch.ones(3))
        assert (probs[key] > 0).all()


def test_thesis_size_network():
    """ResNet-50 with halved outputs: ~6 M in the convolutions, ~10 M with fc1024 and heads."""
    torch.manual_seed(0)
    model = ClusterNetwork().eval()
    trunk = sum(
        p.numel() for k, p in model.named_parameters() if k.startswith(("conv", "bn", "st"))
    )
    assert 5.5e6 < trunk < 6.5e6
    assert 9.5e6 < count_parameters(model) < 10.5e6  # the 2800-way grid alone is 2.9 M
    assert len([m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]) == 1 + 16 * 3 + 4
    with torch.no_grad():
        out = model(torch.randn(2, 3, 64, 64))
    assert out["age_av_mass"].shape == (2, 20, 10, 14)
    # the ch. 2 regression network: "~7 million parameters" (thesis §2.3.2)
    regression = ClusterNetwork(NetworkSpec.thesis(head="regression", window_px=80))
    assert 6.5e6 < count_parameters(regression) < 7.5e6


def test_stem_keeps_resolution(tiny):
    """conv1 has stride 1; only max_pool and conv3_1, conv4_1, conv5_1 halve the image."""
    sizes = []
    hooks = [
        m.register_forward_hook(lambda _m, _i, o: sizes.append(o.shape[-1]))
        for m in (tiny.conv1, tiny.maxpool, *tiny.stages)
    ]
    tiny(batch(2))
    for hook in hooks:
        hook.remove()
    assert sizes == [32, 16, 16, 8, 4, 2]


def test_tiny_model_overfits_a_tiny_batch(tiny):
    x = batch(8, seed=2)
    labels = torch.tensor([0, 1] * 4)
    optimizer = torch.optim.Adam(tiny.parameters(), lr=1e-3)
    for _ in range(40):
        loss = torch.nn.functional.cross_entropy(tiny(x)["class"], labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    assert loss.item() < 0.05


def test_rotation_average_is_rotation_invariant():
    torch.manual_seed(0)
    model = ClusterNetwork(NetworkSpec(**TINY, head="regression")).double().eval()
    x = batch(3).double()
    rotated = torch.rot90(x, 1, dims=(-2, -1))
    with torch.no_grad():
        plain, plain_rotated = model(x), model(rotated)
        averaged, averaged_rotated = rotation_average(model, x), rotation_average(model, rotated)
    assert set(averaged) == {"age", "mass", "rh"} and averaged["age"].shape == (3,)
    assert not torch.allclose(plain["age"], plain_rotated["age"])
    for key in averaged:
        torch.testing.assert_close(averaged[key], averaged_rotated[key], rtol=0, atol=1e-12)
    # the average of the four single passes
    turns = [model(torch.rot90(x, k, dims=(-2, -1)))["mass"] for k in range(4)]
    torch.testing.assert_close(averaged["mass"], torch.stack(turns).mean(0))


def test_regression_outputs_have_no_probabilities():
    model = ClusterNetwork(NetworkSpec(**TINY, head="regression"))
    out = model(batch(2))
    assert {k: tuple(v.shape) for k, v in out.items()} == {"age": (2,), "mass": (2,), "rh": (2,)}
    with pytest.raises(ValueError, match="regression"):
        probabilities(out)


def test_channels_last_gives_the_same_outputs(tiny):
    tiny.eval()
    x = batch(2)
    with torch.no_grad():
        reference = tiny(x)
        tiny.to(memory_format=torch.channels_last)
        out = tiny(x.contiguous(memory_format=torch.channels_last))
    for key in reference:
        torch.testing.assert_close(out[key], reference[key], rtol=1e-4, atol=1e-5)


def test_wrong_input_shape_says_what_is_expected(tiny):
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\)"):
        tiny(torch.zeros(2, 3, 64, 64))


def test_from_config_lists_and_widths():
    spec = NetworkSpec.from_config({**TINY, "stage_blocks": [1, 1, 1, 1]}, head="regression")
    assert spec.stage_blocks == (1, 1, 1, 1) and spec.head == "regression"
    assert NetworkSpec().widths == (32, 64, 128, 256)
    assert NetworkSpec.thesis().widths == (64, 64, 128, 256)
    model = build_network({**TINY, "stage_widths": [8, 8, 16, 32]})
    assert model.stages[0][0].conv2.out_channels == 8


@pytest.mark.parametrize(
    "values, key",
    [
        ({"depth": 50}, "model.depth"),
        ({"stage_channels": (128, 256, 512, 1022)}, "model.stage_channels"),
        ({"stage_channels": (128, 256, 512)}, "model.stage_channels"),
        ({"stage_widths": (64, 64)}, "model.stage_widths"),
        ({"stage_blocks": ()}, "model.stage_blocks"),
        ({"stage_blocks": (3, 0, 6, 3)}, "model.stage_blocks"),
        ({"head": "gaussian"}, "model.head"),
        ({"n_age": 0}, "model.n_age"),
        ({"in_bands": 2.5}, "model.in_bands"),
        ({"fc_dropout": 1.0}, "model.fc_dropout"),
        ({"window_px": 8}, "model.window_px"),
    ],
)
def test_from_config_errors_name_the_key(values, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        NetworkSpec.from_config(values)
