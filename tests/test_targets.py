"""Output grids, preprocessing, soft targets, masked loss and decoding (thesis §3.1.4, §3.2)."""

import io

import numpy as np
import pandas as pd
import pytest
import torch

from starclusters.errors import ConfigError
from starclusters.model.codec import (
    GRID_NAMES,
    ParameterGrids,
    decode,
    decode_outputs,
    preprocess,
)
from starclusters.model.network import probabilities
from starclusters.model.targets import batch_targets, loss, soft_target_1d, soft_target_3d

GRIDS = ParameterGrids()
AXES_3D = [GRIDS.log_age_yr, GRIDS.av_mag, GRIDS.log_mass_msun]


def bin_width(centres):
    return float(np.diff(centres).mean())


# ------------------------------------------------------------------------------------- grids


def test_default_grids_are_the_thesis_m83_grids():
    assert GRIDS.shape_3d == (20, 10, 14)
    assert np.prod(GRIDS.shape_3d) == 2800  # "a softmax layer with K = 2800 neurons"
    assert GRIDS.head_shapes["rh"] == (14,) and GRIDS.head_shapes["visibility"] == (20,)
    assert GRIDS.log_age_yr[[0, -1]] == pytest.approx([6.6, 10.1])
    assert GRIDS.av_mag[[0, -1]] == pytest.approx([0.0, 3.0])
    assert GRIDS.log_mass_msun[[0, -1]] == pytest.approx([3.5, 5.5])
    assert 10 ** GRIDS.log_rh_arcsec[[0, -1]] == pytest.approx([0.04, 0.4])
    assert GRIDS.visibility[[0, -1]] == pytest.approx([0.1, 1000.0])
    np.testing.assert_allclose(np.diff(np.log10(GRIDS.visibility)), 4 / 19)


def test_grids_round_trip_through_a_dict():
    grids = ParameterGrids.from_config({"log_age_yr": {"min": 6.0, "max": 9.5, "bins": 15}})
    back = ParameterGrids.from_dict(grids.to_dict())
    for name in GRID_NAMES:
        np.testing.assert_array_equal(getattr(back, name), getattr(grids, name))
    assert back.log_age_yr.size == 15
    buf = io.BytesIO()
    torch.save(grids.to_dict(), buf)
    buf.seek(0)
    assert ParameterGrids.from_dict(torch.load(buf, weights_only=True)).shape_3d == (15, 10, 14)


@pytest.mark.parametrize(
    ("grids", "key"),
    [
        ({"log_age": {"min": 1, "max": 2, "bins": 3}}, "model.grids.log_age"),
        ({"av_mag": {"min": 3.0, "max": 0.0}}, "model.grids.av_mag"),
        ({"log_mass_msun": {"bins": 1}}, "model.grids.log_mass_msun.bins"),
        ({"log_rh_arcsec": {"min": "small"}}, "model.grids.log_rh_arcsec.min"),
        ({"visibility": {"min": 0.0}}, "model.grids.visibility.min"),
        ({"visibility": {"step": 0.1}}, "model.grids.visibility.step"),
        ({"rh": 14}, "model.grids.rh"),
        ([1, 2], "model.grids"),
    ],
)
def test_config_errors_name_the_key(grids, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ParameterGrids.from_config(grids)


# ----------------------------------------------------------------------------- preprocessing


def test_preprocess_normalises_each_band_of_each_window(rng):
    images = rng.lognormal(0.0, 1.0, (5, 3, 64, 64)) * np.array([1.0, 30.0, 0.01])[:, None, None]
    out = preprocess(images)
    assert out.shape == images.shape and out.dtype == images.dtype
    z = np.sinh(out)  # invert the arcsinh: what remains is the normalised window
    np.testing.assert_allclose(z.mean(axis=(-2, -1)), 0.0, atol=1e-12)
    np.testing.assert_allclose(z.std(axis=(-2, -1)), 1.0, rtol=1e-12)


def test_preprocess_gives_zeros_for_constant_windows(rng):
    images = rng.normal(1.0, 0.1, (2, 3, 16, 16)).astype(np.float32)
    images[0, 1] = 0.1  # a constant band: std 0 up to rounding
    images[1] = 0.0
    out = preprocess(images)
    assert np.all(np.isfinite(out))
    np.testing.assert_array_equal(out[0, 1], 0.0)
    np.testing.assert_array_equal(out[1], 0.0)
    assert np.sinh(out[0, 0]).std() == pytest.approx(1.0, rel=1e-5)


def test_preprocess_numpy_and_torch_agree(rng):
    images = rng.normal(2.0, 0.5, (4, 3, 32, 32)).astype(np.float32)
    tensor_out = preprocess(torch.from_numpy(images))
    assert isinstance(tensor_out, torch.Tensor) and tensor_out.dtype == torch.float32
    np.testing.assert_allclose(preprocess(images), tensor_out.numpy(), rtol=0, atol=1e-6)
    assert preprocess(images[0]).shape == (3, 32, 32)  # a single window works too
    assert preprocess(np.ones((3, 8, 8), dtype=np.int16)).dtype == np.float32


# ------------------------------------------------------------------------------ soft targets


@pytest.mark.parametrize("sigma", [0.25, 0.5])
def test_soft_1d_sums_to_one_peaks_at_and_is_centred_on_the_value(sigma):
    centres = GRIDS.log_age_yr
    values = np.array([7.0, 7.33, 8.51, 9.02, centres[5]])  # interior, between and on centres
    target = soft_target_1d(values, centres, sigma_bins=sigma)
    assert target.shape == (5, 20)
    np.testing.assert_allclose(target.sum(axis=1), 1.0, rtol=1e-6)
    nearest = np.abs(values[:, None] - centres[None, :]).argmin(axis=1)
    np.testing.assert_array_equal(target.argmax(axis=1), nearest)
    mean = target @ centres
    assert np.all(np.abs(mean - values) < 0.05 * bin_width(centres))
    # on a centre it is exactly the thesis' Gaussian
    k = np.arange(20)
    gauss = np.exp(-0.5 * ((k - 5) / sigma) ** 2)
    np.testing.assert_allclose(target[4], gauss / gauss.sum(), atol=1e-7)


def test_soft_1d_clips_values_outside_the_grid_to_the_edge_bins():
    centres = GRIDS.log_mass_msun
    target = soft_target_1d(np.array([2.0, 3.5, 6.0, 5.5]), centres)
    np.testing.assert_allclose(target[0], target[1])
    np.testing.assert_allclose(target[2], target[3])
    assert target[0].argmax() == 0 and target[2].argmax() == 13


def test_soft_1d_on_a_log_grid_centres_visibility_in_log10():
    values = np.array([0.5, 3.7, 42.0])
    target = soft_target_1d(values, GRIDS.visibility, log_spacing=True)
    mean_log = target @ np.log10(GRIDS.visibility)
    assert np.all(np.abs(mean_log - np.log10(values)) < 0.05 * 4 / 19)
    background = soft_target_1d(np.array([0.0]), GRIDS.visibility, log_spacing=True)
    assert background[0].argmax() == 0


def test_soft_3d_is_a_normalised_gaussian_centred_on_the_truth():
    age, av, mass = np.array([7.33, 8.0]), np.array([1.05, 0.4]), np.array([4.21, 5.0])
    target = soft_target_3d(age, av, mass, GRIDS)
    assert target.shape == (2, 20, 10, 14) and target.dtype == np.float32
    np.testing.assert_allclose(target.sum(axis=(1, 2, 3)), 1.0, rtol=1e-6)
    for truth, centres, axes in [(age, AXES_3D[0], (2, 3)), (av, AXES_3D[1], (1, 3))]:
        marginal = target.sum(axis=axes)
        assert np.all(np.abs(marginal @ centres - truth) < 0.05 * bin_width(centres))
    peak = np.unravel_index(target[0].argmax(), GRIDS.shape_3d)
    nearest = [np.abs(c - v).argmin() for c, v in zip(AXES_3D, (7.33, 1.05, 4.21), strict=True)]
    assert list(peak) == nearest


def test_soft_targets_in_torch_stay_float32_on_the_device():
    values = torch.tensor([7.33, 8.0], dtype=torch.float64)
    target = soft_target_3d(values, torch.tensor([1.0, 2.0]), torch.tensor([4.0, 5.0]), GRIDS)
    assert isinstance(target, torch.Tensor) and target.dtype == torch.float32
    np.testing.assert_allclose(
        target.numpy(), soft_target_3d([7.33, 8.0], [1.0, 2.0], [4.0, 5.0], GRIDS), atol=1e-7
    )


# ---------------------------------------------------------------------- batch targets, loss


def batch(n=8):
    rng = np.random.default_rng(3)
    is_cluster = np.arange(n) % 2 == 1
    params = pd.DataFrame(
        {
            "log_age_yr": rng.uniform(6.6, 10.1, n),
            "av_mag": rng.uniform(0, 3, n),
            "log_mass_msun": rng.uniform(3.5, 5.5, n),
            "rh_arcsec": rng.uniform(0.04, 0.4, n),
            "visibility": rng.uniform(1.0, 100.0, n),
        }
    )
    params.loc[~is_cluster, :] = np.nan  # bare backgrounds have no parameters
    return params, is_cluster


def random_logits(n, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {head: torch.randn(n, *shape, generator=g) for head, shape in GRIDS.head_shapes.items()}


def test_batch_targets_for_half_backgrounds():
    params, is_cluster = batch()
    t = batch_targets(params, is_cluster, GRIDS)
    assert t["age_av_mass"].shape == (8, 20, 10, 14) and t["rh"].shape == (8, 14)
    np.testing.assert_array_equal(t["cluster"].numpy(), is_cluster)
    np.testing.assert_array_equal(t["class"][:, 1].numpy(), is_cluster)
    assert torch.all(t["age_av_mass"][~t["cluster"]] == 0) and torch.all(
        t["rh"][~t["cluster"]] == 0
    )
    np.testing.assert_allclose(t["age_av_mass"][t["cluster"]].sum(dim=(1, 2, 3)), 1.0, rtol=1e-6)
    assert torch.all(t["visibility"][~t["cluster"]].argmax(dim=1) == 0)  # "set to 0"
    for target in t.values():
        assert not torch.isnan(target.float()).any()
    rh = decode(t["rh"][t["cluster"]].numpy(), GRIDS.log_rh_arcsec)
    np.testing.assert_allclose(rh, np.log10(params["rh_arcsec"][is_cluster]), atol=1e-4)
    with pytest.raises(ValueError, match="log_age_yr"):
        batch_targets(params.assign(log_age_yr=np.nan), is_cluster, GRIDS)


def test_the_loss_ignores_cluster_heads_of_backgrounds():
    params, is_cluster = batch()
    t = batch_targets(params, is_cluster, GRIDS)
    logits = random_logits(8)
    total, per_head = loss(logits, t)
    assert set(per_head) == {"age_av_mass", "rh", "class", "visibility"}
    changed = {k: v.clone() for k, v in logits.items()}
    changed["age_av_mass"][0] += 50 * torch.randn(20, 10, 14)  # row 0 is a background
    changed["rh"][2] = torch.linspace(-30, 30, 14)
    t_changed = dict(t, age_av_mass=t["age_av_mass"].clone())
    t_changed["age_av_mass"][0] = 1.0 / 2800
    total_changed, per_head_changed = loss(changed, t_changed)
    assert total_changed.item() == pytest.approx(total.item(), rel=1e-6)
    assert per_head_changed["age_av_mass"].item() == pytest.approx(per_head["age_av_mass"].item())
    # a cluster's age logits do count, and average over the 4 clusters only
    changed["age_av_mass"][1] += 5 * torch.randn(20, 10, 14)
    assert loss(changed, t)[1]["age_av_mass"].item() != pytest.approx(
        per_head["age_av_mass"].item()
    )
    ce = -(t["rh"] * torch.log_softmax(logits["rh"], dim=1)).sum(dim=1)
    assert per_head["rh"].item() == pytest.approx(ce[t["cluster"]].mean().item(), rel=1e-6)


def test_a_batch_of_backgrounds_only_gives_finite_loss_and_no_cluster_gradient():
    params, _ = batch()
    t = batch_targets(params, np.zeros(8, bool), GRIDS)
    logits = {k: v.requires_grad_() for k, v in random_logits(8).items()}
    total, per_head = loss(logits, t)
    total.backward()
    assert torch.isfinite(total) and per_head["age_av_mass"].item() == 0.0
    assert torch.all(logits["age_av_mass"].grad == 0) and torch.all(logits["rh"].grad == 0)


def test_the_loss_is_smallest_at_the_log_of_the_targets():
    params, is_cluster = batch()
    t = batch_targets(params, is_cluster, GRIDS)
    best = {
        head: torch.log(t[head].clamp_min(1e-30)).reshape(8, -1).requires_grad_()
        for head in ("age_av_mass", "rh", "class", "visibility")
    }
    total, _ = loss(best, t)
    total.backward()
    for head, z in best.items():
        assert z.grad.abs().max() < 1e-6, head
    g = torch.Generator().manual_seed(1)
    for _ in range(5):
        worse = {k: v.detach() + 0.3 * torch.randn(v.shape, generator=g) for k, v in best.items()}
        assert loss(worse, t)[0].item() > total.item()


# ---------------------------------------------------------------------------------- decoding


def test_decode_recovers_a_value_between_bins_from_a_bump():
    centres = GRIDS.log_age_yr
    position = 7.3  # bins; a value between the centres 7 and 8
    k = np.arange(20)
    bump = np.exp(-0.5 * ((k - position) / 1.0) ** 2) + 0.02 * (k > 15)  # far bins ignored
    truth = np.interp(position, k, centres)
    assert abs(decode(bump, centres) - truth) < 0.1 * bin_width(centres)
    batched = decode(torch.tensor(np.stack([bump, bump[::-1]]), dtype=torch.float32), centres)
    assert batched.shape == (2,)
    mirrored = np.interp(19 - position, k, centres)
    np.testing.assert_allclose(batched.numpy(), [truth, mirrored], atol=0.1 * bin_width(centres))


def test_decode_of_a_soft_target_returns_the_truth():
    age, av, mass = np.array([7.33, 9.9]), np.array([1.05, 2.2]), np.array([4.21, 3.77])
    est = decode(soft_target_3d(age, av, mass, GRIDS), AXES_3D)
    assert est.shape == (2, 3)
    np.testing.assert_allclose(est, np.stack([age, av, mass], axis=1), atol=1e-4)
    vis = np.array([0.7, 12.0, 300.0])
    target = soft_target_1d(vis, GRIDS.visibility, log_spacing=True)
    np.testing.assert_allclose(decode(target, GRIDS.visibility, log_spacing=True), vis, rtol=1e-4)


def test_decode_equals_the_weighted_mean_over_the_whole_grid_by_brute_force():
    """The window gather (only bins near the peak are read) against the definition."""
    rng = np.random.default_rng(2)
    grid = rng.random((50, *GRIDS.shape_3d)) ** 8  # peaky, peaks anywhere incl. edges
    grid[0] = 0.0
    grid[0, 0, 0, 0] = 1.0  # a peak in a corner: most of the window outside the grid
    idx = np.stack(np.meshgrid(*[np.arange(k) for k in GRIDS.shape_3d], indexing="ij"), -1)
    expected = []
    for g in grid:
        peak = np.array(np.unravel_index(g.argmax(), g.shape))
        w = np.where(((idx - peak) ** 2).sum(-1) <= 9, g, 0.0)
        expected.append([(w * c).sum() / w.sum() for c in np.meshgrid(*AXES_3D, indexing="ij")])
    np.testing.assert_allclose(decode(grid, AXES_3D), expected, rtol=1e-10)
    one_d = rng.random((30, GRIDS.log_rh_arcsec.size)) ** 8
    k = np.arange(GRIDS.log_rh_arcsec.size)
    w = np.where(np.abs(k - one_d.argmax(1)[:, None]) <= 3, one_d, 0.0)
    np.testing.assert_allclose(
        decode(one_d, GRIDS.log_rh_arcsec), (w * GRIDS.log_rh_arcsec).sum(1) / w.sum(1)
    )


def test_decode_3d_uses_the_joint_peak_not_the_marginals():
    """Young + dusty vs old + clear (thesis §3.2.1): the estimate stays on one mode."""
    young_dusty = soft_target_3d([7.0], [2.5], [4.0], GRIDS)[0]
    old_clear = soft_target_3d([9.5], [0.2], [4.0], GRIDS)[0]
    grid = 0.55 * young_dusty + 0.45 * old_clear
    est = decode(grid, AXES_3D)
    np.testing.assert_allclose(est, [7.0, 2.5, 4.0], atol=1e-3)


def test_decode_outputs_keeps_the_grids():
    logits = random_logits(3)
    probs = probabilities(logits)
    out = decode_outputs(probs, GRIDS)
    for name in ("log_age_yr", "av_mag", "log_mass_msun", "log_rh_arcsec", "visibility"):
        assert out[name].shape == (3,)
    assert out["grids"]["age_av_mass"].shape == (3, 20, 10, 14)
    torch.testing.assert_close(out["p_cluster"], torch.softmax(logits["class"], 1)[:, 1])
    assert torch.all((out["visibility"] >= 0.1) & (out["visibility"] <= 1000.0))
