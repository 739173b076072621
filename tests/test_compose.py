"""compose(): photon noise statistics and visibility on hand-computable cases."""

import numpy as np
import pytest

from starclusters.mocks.compose import compose, observed_rh_px, visibility


def flat(value, shape=(3, 64, 64)):
    return np.full(shape, value, dtype=np.float64)


def test_added_noise_has_the_poisson_variance(rng):
    """On a flat background of median m the image minus background is Poisson((s + m) t)/t - m."""
    exptime = np.array([1000.0, 500.0, 200.0])
    stamp = flat(0.0)
    stamp[:, 10:54, 10:54] = 0.3  # a flat cluster, 0.3 counts/s per pixel
    background = flat(0.05)
    diffs = []
    for _ in range(20):
        image, _, _ = compose(stamp, background, exptime, rng, rh_obs_px=3.0)
        diffs.append(image - background)
    diffs = np.array(diffs)
    inside = diffs[:, :, 10:54, 10:54]
    for b, t in enumerate(exptime):
        pix = inside[:, b].ravel()
        assert pix.mean() == pytest.approx(0.3, rel=0.01)
        assert pix.var() == pytest.approx((0.3 + 0.05) / t, rel=0.03)
    # outside the cluster only the background median's shot noise is added
    outside = diffs[:, 0, :5, :5].ravel()
    assert outside.var() == pytest.approx(0.05 / exptime[0], rel=0.15)


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
