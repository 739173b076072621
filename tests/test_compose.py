"""compose(): photon noise statistics and visibility on hand-computable cases."""

import numpy as np
import pytest

from starclusters.mocks.compose import compose, observed_rh_px, visibility


def flat(value, shape=(3, 64, 64)):
    return np.full(shape, value, dtype=np.float64)


def test_added_noise_has_the_poisson_variance(rng):
    """Image minus background is Poisson(s t)/t: the cluster's own shot noise, nothing else."""
    exptime = np.array([1000.0, 500.0, 200.0])
    stamp = flat(0.0)
    stamp[:, 10:54, 10:54] = 0.3  # a flat cluster, 0.3 counts/s per pixel
    background = rng.normal(0.05, 0.01, (3, 64, 64))  # a sky of median 0.05 counts/s
    diffs = []
    for _ in range(20):
        image, _, _ = compose(stamp, background, exptime, rng, rh_obs_px=3.0)
        diffs.append(image - background)
    diffs = np.array(diffs)
    inside = diffs[:, :, 10:54, 10:54]
    for b, t in enumerate(exptime):
        pix = inside[:, b].ravel()
        assert pix.mean() == pytest.approx(0.3, rel=0.01)
        assert pix.var() == pytest.approx(0.3 / t, rel=0.03)
    # outside the cluster the window is the background: no second draw of the sky's noise
    # (thesis §3.1.3's added median would give variance 0.05 / t there)
    assert np.abs(diffs[:, :, :5, :5]).max() < 1e-6


def test_empty_stamp_leaves_the_background(rng):
    """A composed window without cluster light is its background: nothing tells it apart."""
    background = rng.normal(1.0, 0.1, (4, 3, 64, 64)).astype(np.float32)
    image, vis, _ = compose(np.zeros(background.shape), background, 1000.0, rng, rh_obs_px=2.0)
    np.testing.assert_allclose(image, background, rtol=0, atol=1e-6)
    assert np.all(vis == 0)


def test_background_structure_is_kept(rng):
    background = rng.normal(1.0, 0.1, (3, 64, 64))
    stamp = np.zeros_like(background)
    image, _, _ = compose(stamp, background, 1e13, rng, rh_obs_px=2.0)
    # with an enormous exposure the Poisson noise vanishes and the background comes back
    np.testing.assert_allclose(image, background, atol=1e-4)


def test_visibility_hand_computed():
    """A cluster of 1 count/s in each of the 5 pixels within r = 1 px on a ±0.5 checkerboard."""
    stamp = np.zeros((1, 64, 64))
    c = 32
    for dy, dx in ((0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)):
        stamp[0, c + dy, c + dx] = 1.0
    yy, xx = np.mgrid[0:64, 0:64]
    background = np.where((yy + xx) % 2 == 0, 0.5, -0.5)[None]  # sigma exactly 0.5
    v = visibility(stamp, background, rh_obs_px=1.0)
    assert v[0] == pytest.approx(
        5.0 / (5 * 0.5), rel=1e-3
    )  # the aperture holds one more + than - pixel


def test_visibility_is_the_most_visible_band(rng):
    stamp = np.zeros((3, 64, 64))
    stamp[1, 32, 32] = 10.0
    background = rng.normal(0.0, 1.0, (3, 64, 64))
    _, vis, per_band = compose(stamp, background, 1e6, rng, rh_obs_px=0.5)
    assert per_band[0] == 0.0 and per_band[2] == 0.0
    assert vis == per_band[1] > 0


def test_observed_rh():
    np.testing.assert_allclose(observed_rh_px(3.0, [4.0, 0.0]), [5.0, 3.0])


def test_shapes_must_agree(rng):
    with pytest.raises(ValueError, match="differ in shape"):
        compose(np.zeros((3, 64, 64)), np.zeros((3, 32, 32)), 100.0, rng, 1.0)


# ----------------------------------------------------------------------- batches and torch


def _scene(rng, lead=(2, 3), bands=3, size=32):
    """Blob stamps and noisy skies (*lead, bands, size, size) counts/s, and r_h,obs (*lead, bands)."""
    y, x = np.mgrid[0:size, 0:size] - size // 2
    sigma = rng.uniform(0.8, 3.0, (*lead, 1, 1, 1))
    flux = 10 ** rng.uniform(-1.0, 2.0, (*lead, bands, 1, 1))
    stamp = flux * np.exp(-0.5 * (x**2 + y**2) / sigma**2) / (2 * np.pi * sigma**2)
    background = rng.normal(0.05, 0.01, (*lead, bands, size, size))
    background[0, 0, 1] -= 0.2  # one over-subtracted sky: nothing depends on its level
    rh_obs = rng.uniform(0.2, 6.0, (*lead, bands))
    return stamp, background, rh_obs


def test_batch_equals_window_by_window(rng):
    """A batch (2, 3, B, S, S) gives exactly what composing its windows one by one gives."""
    stamp, background, rh_obs = _scene(rng)
    exptime = np.array([1200.0, 1000.0, 500.0])
    images, vis, per_band = compose(stamp, background, exptime, np.random.default_rng(4), rh_obs)
    assert images.shape == stamp.shape and images.dtype == np.float32
    assert vis.shape == (2, 3) and per_band.shape == (2, 3, 3)
    one_by_one = np.random.default_rng(4)  # the same Poisson draws, in C order
    for i, j in np.ndindex(2, 3):
        image, v, pb = compose(stamp[i, j], background[i, j], exptime, one_by_one, rh_obs[i, j])
        assert isinstance(v, float) and pb.shape == (3,)
        assert np.array_equal(images[i, j], image)
        assert np.array_equal(per_band[i, j], pb) and vis[i, j] == v == pb.max()
        assert np.array_equal(pb, visibility(stamp[i, j], background[i, j], rh_obs[i, j]))
    assert np.array_equal(per_band, visibility(stamp, background, rh_obs))
    # per-window exposure times (..., B) broadcast like (B,)
    again, _, _ = compose(
        stamp, background, np.broadcast_to(exptime, (2, 3, 3)), np.random.default_rng(4), rh_obs
    )
    assert np.array_equal(again, images)


def test_batch_noise_free_part(rng):
    """With an enormous exposure the batch is background + stamp, window by window."""
    stamp, background, rh_obs = _scene(rng)
    images, _, _ = compose(stamp, background, 1e13, rng, rh_obs)
    np.testing.assert_allclose(images, background + stamp, atol=1e-4)


def test_torch_path_matches_numpy(rng):
    """Tensors (on the CPU here; the same code runs on CUDA) give numpy's visibility and sky."""
    torch = pytest.importorskip("torch")
    stamp, background, rh_obs = _scene(rng)
    exptime = np.array([1200.0, 1000.0, 500.0])
    t_stamp, t_bg = torch.from_numpy(stamp).float(), torch.from_numpy(background)
    images, vis, per_band = compose(
        t_stamp, t_bg, torch.tensor(exptime), torch.Generator().manual_seed(0), rh_obs
    )
    assert isinstance(images, torch.Tensor) and images.dtype == torch.float32
    assert images.shape == stamp.shape and vis.shape == (2, 3) and per_band.shape == (2, 3, 3)
    assert per_band.dtype == torch.float64 and images.device == t_stamp.device
    np_stamp = t_stamp.double().numpy()  # the same float32-rounded stamp
    _, np_vis, np_per_band = compose(np_stamp, background, exptime, rng, rh_obs)
    np.testing.assert_allclose(per_band.numpy(), np_per_band, rtol=1e-12)
    np.testing.assert_allclose(vis.numpy(), np_vis, rtol=1e-12)
    np.testing.assert_allclose(
        visibility(t_stamp, t_bg, torch.from_numpy(rh_obs)).numpy(), np_per_band, rtol=1e-12
    )
    # noise-free limit: the same images as numpy's
    huge, _, _ = compose(t_stamp, t_bg, 1e13, torch.Generator().manual_seed(0), rh_obs)
    ref, _, _ = compose(np_stamp, background, 1e13, rng, rh_obs)
    np.testing.assert_allclose(huge.numpy(), ref, atol=1e-4)
    # one window: a 0-d visibility tensor and (B,) per band
    image, v, pb = compose(t_stamp[0, 0], t_bg[0, 0], exptime, torch.Generator(), rh_obs[0, 0])
    assert image.shape == (3, 32, 32) and v.ndim == 0 and v.item() == pb.max().item()
    with pytest.raises(TypeError, match="Generator"):
        compose(t_stamp, t_bg, exptime, 7, rh_obs)


def test_torch_poisson_statistics_and_seeding():
    """torch.poisson noise: mean and variance of Poisson(s t)/t; seeding reproducible."""
    torch = pytest.importorskip("torch")
    exptime = torch.tensor([1000.0, 500.0, 200.0])
    stamp = torch.zeros(20, 3, 64, 64)
    stamp[..., 10:54, 10:54] = 0.3
    background = torch.full((20, 3, 64, 64), 0.05, dtype=torch.float64)
    gen = torch.Generator().manual_seed(11)
    images, _, _ = compose(stamp, background, exptime, gen, 3.0)
    diffs = (images.double() - background).numpy()
    inside = diffs[..., 10:54, 10:54]
    for b, t in enumerate(exptime.tolist()):
        pix = inside[:, b].ravel()
        assert pix.mean() == pytest.approx(0.3, rel=0.01)
        assert pix.var() == pytest.approx(0.3 / t, rel=0.03)
    assert np.abs(diffs[..., :5, :5]).max() < 1e-6  # the background alone where s = 0
    # a numpy Generator seeds the torch one with a single draw: reproducible from its seed
    a, _, _ = compose(stamp, background, exptime, np.random.default_rng(2), 3.0)
    b, _, _ = compose(stamp, background, exptime, np.random.default_rng(2), 3.0)
    c, _, _ = compose(stamp, background, exptime, np.random.default_rng(3), 3.0)
    assert torch.equal(a, b) and not torch.equal(a, c)
    used = np.random.default_rng(2)
    compose(stamp, background, exptime, used, 3.0)
    after = np.random.default_rng(2)
    after.integers(0, 2**63)
    assert used.integers(0, 2**63) == after.integers(0, 2**63)
