"""The galaxy's A_V prior from its candidates (starclusters.detect.population_prior)."""

import numpy as np
import pytest

from starclusters.detect.population_prior import (
    av_prior_weights,
    peak_posteriors,
    reweight,
)
from starclusters.model.codec import decode
from starclusters.model.targets import training_marginals

AV = np.linspace(0.0, 3.0, 10)


def _posteriors(true_bins, training, sigma_bins, rng, n_age=3, n_mass=2):
    """(N, A, E, M) posteriors under ``training`` (E,) of noisy Gaussian likelihoods in A_V."""
    observed = true_bins + rng.normal(0.0, sigma_bins, len(true_bins))
    k = np.arange(len(training))
    like = np.exp(-0.5 * ((k[None] - observed[:, None]) / sigma_bins) ** 2)
    post_av = like * training[None]
    post_av /= post_av.sum(axis=1, keepdims=True)
    joint = post_av[:, None, :, None] * np.ones((1, n_age, 1, n_mass)) / (n_age * n_mass)
    return joint


def test_em_recovers_a_known_prior_and_removes_the_pull():
    rng = np.random.default_rng(1)
    training = np.full(10, 0.1)  # the bank: flat in A_V
    galaxy = np.array([0.05, 0.6, 0.25, 0.05, 0.05, 0, 0, 0, 0, 0])  # mostly A_V 0.33 mag
    true_bins = rng.choice(10, 3000, p=galaxy)
    post = _posteriors(true_bins, training, 2.5, rng)  # broad, as the network's
    weights, estimated, iterations = av_prior_weights(post, training, shrink=0.05)
    assert 1 < iterations < 500  # converged
    # broad likelihoods and a shrink blur the estimate, but its mean is the galaxy's
    assert abs((estimated * AV).sum() - (galaxy * AV).sum()) < 0.2
    assert estimated[:3].sum() > 0.75
    grids = [np.arange(3.0), AV, np.arange(2.0)]
    before = decode(post, grids)[:, 1] - AV[true_bins]
    after = decode(reweight(post, weights), grids)[:, 1] - AV[true_bins]
    assert np.median(before) > 0.1  # the flat prior pulls towards 1.5 mag
    assert abs(np.median(after)) < 0.05
    assert np.quantile(np.abs(after), 0.95) < np.quantile(np.abs(before), 0.95)


def test_shrink_keeps_few_candidates_near_the_training_prior():
    rng = np.random.default_rng(2)
    training = np.linspace(2.0, 1.0, 10)
    training /= training.sum()
    post = _posteriors(np.array([1, 1, 2]), training, 1.5, rng)
    _, free, _ = av_prior_weights(post, training, shrink=0.0)
    _, shrunk, _ = av_prior_weights(post, training, shrink=10.0)
    assert np.abs(shrunk - training).sum() < np.abs(free - training).sum()
    assert np.abs(shrunk - training).max() < 0.05


def test_smoothed_em_spreads_the_estimate_by_its_kernel():
    """EMS: the estimate is the smoothed mean posterior. Posteriors that put everything in
    one A_V bin give EM that bin alone and EMS the kernel around it (¼, ½, ¼); at the grid's
    edge the kernel sees the edge bin repeated, so no mass leaves the grid."""
    training = np.full(10, 0.1)
    for peak, expected in ((4, {3: 0.25, 4: 0.5, 5: 0.25}), (0, {0: 0.75, 1: 0.25})):
        post = np.zeros((20, 3, 10, 2))
        post[:, :, peak, :] = 1.0 / 6
        _, em, _ = av_prior_weights(post, training, shrink=0.0)
        _, ems, _ = av_prior_weights(post, training, shrink=0.0, smooth=True)
        assert em[peak] == pytest.approx(1.0, abs=1e-4)
        want = np.zeros(10)
        for k, v in expected.items():
            want[k] = v
        np.testing.assert_allclose(ems, want, atol=1e-4)
    # smoothing off is the plain EM, step for step
    rng = np.random.default_rng(3)
    post = _posteriors(rng.choice(10, 200), training, 2.0, rng)
    plain = av_prior_weights(post, training)
    assert all(
        np.array_equal(a, b)
        for a, b in zip(plain, av_prior_weights(post, training, smooth=False), strict=True)
    )
    assert not np.allclose(plain[1], av_prior_weights(post, training, smooth=True)[1])


def test_no_candidates_and_bad_inputs():
    training = np.full(10, 0.1)
    weights, estimated, iterations = av_prior_weights(np.zeros((0, 3, 10, 2)), training)
    assert iterations == 0 and np.all(weights == 1) and np.allclose(estimated, training)
    with pytest.raises(ValueError, match="A_V bins"):
        av_prior_weights(np.ones((4, 3, 9, 2)), training)
    with pytest.raises(ValueError, match="shrink"):
        av_prior_weights(np.ones((4, 3, 10, 2)), training, shrink=-1)


def test_reweight_is_normalised_and_changes_only_av():
    rng = np.random.default_rng(3)
    post = rng.random((5, 3, 10, 2))
    post /= post.sum(axis=(1, 2, 3), keepdims=True)
    w = np.linspace(1.0, 0.1, 10)
    out = reweight(post, w)
    assert np.allclose(out.sum(axis=(1, 2, 3)), 1.0)
    # the conditional of age and mass given A_V is unchanged
    cond_before = post / post.sum(axis=(1, 3), keepdims=True)
    cond_after = out / out.sum(axis=(1, 3), keepdims=True)
    assert np.allclose(cond_before, cond_after)


def test_peak_posterior_weights_class_and_distance():
    window = 3
    grids = np.zeros((1, 9, 1, 2, 1))
    grids[0, :, 0, 0, 0] = 1.0  # every window says A_V bin 0 ...
    grids[0, 4, 0, 0, 0], grids[0, 4, 0, 1, 0] = 0.0, 1.0  # ... but the centre says bin 1
    p_cluster = np.full((1, 9), 1.0)
    post = peak_posteriors(grids, p_cluster, window, sigma_px=0.3)
    assert post[0, 0, 1, 0] > 0.98  # a narrow kernel: the centre dominates
    p_cluster[0, 4] = 0.0  # the centre is not a cluster window: only the neighbours count
    post = peak_posteriors(grids, p_cluster, window, sigma_px=0.3)
    assert post[0, 0, 0, 0] == pytest.approx(1.0)
    post = peak_posteriors(grids, np.zeros((1, 9)), window, sigma_px=1.0)
    assert np.allclose(post, 0.5)  # no weight: uniform


def test_training_marginals():
    total = np.zeros((2, 3, 4))
    total[1, 2, 0] = 3.0
    total[0, 0, 3] = 1.0
    m = training_marginals(total)
    assert m["log_age_yr"] == pytest.approx([0.25, 0.75])
    assert m["av_mag"] == pytest.approx([0.25, 0.0, 0.75])
    assert m["log_mass_msun"] == pytest.approx([0.75, 0.0, 0.0, 0.25])
    with pytest.raises(ValueError):
        training_marginals(np.zeros((2, 3, 4)))
