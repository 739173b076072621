"""Catalogue thresholds from the held-out mock test (starclusters.model.thresholds)."""

from __future__ import annotations

import numpy as np
import pytest

from starclusters.model.thresholds import rates, youden_thresholds


def test_known_optimum_of_overlapping_class_scores():
    """Clusters' p_cluster uniform on [0.6, 1], the others' on [0, 0.8], visibility no help:
    J(c) = c / 0.8 below 0.6 and 1.5 − 1.25 c above, so the optimum is c = 0.6, J = 0.75."""
    rng = np.random.default_rng(1)
    n = 40_000
    positive = np.arange(n) < n // 2
    p = np.where(positive, rng.uniform(0.6, 1.0, n), rng.uniform(0.0, 0.8, n))
    visibility = np.full(n, 20.0)
    best = youden_thresholds(p, visibility, positive)
    assert best.class_threshold == pytest.approx(0.6, abs=0.011)
    assert best.youden_j == pytest.approx(0.75, abs=0.01)
    assert best.true_positive_rate - best.false_positive_rate == pytest.approx(best.youden_j)
    # the thesis' 0.95 keeps an eighth of the clusters here: J = 0.125
    tpr, fpr = rates(p, visibility, positive, 0.95, 2.5)
    assert tpr - fpr == pytest.approx(0.125, abs=0.01)


def test_known_optimum_needs_both_cuts():
    """Stars (class high, visibility low), faint mocks (class low, visibility high) and
    clusters (both high): only class thresholds in [0.8, 0.9] with visibility thresholds
    in [2, 3] separate them all (J = 1); ties go to the purest corner on the grids."""
    rng = np.random.default_rng(2)
    n = 3_000
    clusters = (rng.uniform(0.9, 1.0, n), rng.uniform(3.0, 10.0, n))
    stars = (rng.uniform(0.9, 1.0, n), rng.uniform(0.5, 2.0, n))
    faint = (rng.uniform(0.0, 0.8, n), rng.uniform(3.0, 10.0, n))
    p = np.concatenate([clusters[0], stars[0], faint[0]])
    visibility = np.concatenate([clusters[1], stars[1], faint[1]])
    positive = np.arange(3 * n) < n
    best = youden_thresholds(p, visibility, positive)
    assert best.youden_j == 1.0
    lowest_cluster_p, lowest_cluster_v = clusters[0].min(), clusters[1].min()
    assert 0.8 <= best.class_threshold < lowest_cluster_p
    assert stars[1].max() <= best.visibility_threshold < lowest_cluster_v
    # the purest corner: the highest grid values that still keep every cluster
    assert best.class_threshold + 0.005 >= lowest_cluster_p


def test_nan_scores_never_pass_and_one_class_is_refused():
    p = np.array([0.99, np.nan, 0.1])
    visibility = np.array([5.0, 5.0, np.nan])
    positive = np.array([True, True, False])
    assert rates(p, visibility, positive, 0.95, 2.5) == (0.5, 0.0)
    with pytest.raises(ValueError, match="positive and negative"):
        youden_thresholds(p, visibility, np.ones(3, bool))
