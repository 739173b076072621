"""Catalogue thresholds derived from the held-out mock test (issue 13).

The thesis cuts its candidates at class > 0.95 and visibility > 2.5 (§4.2.3, Fig. 4.2), the
values it chose for its own network. A network of another size or training may want
others. :func:`youden_thresholds` finds, on a scored test set, the pair (class threshold,
visibility threshold) that best separates *clusters with a true visibility above a
target* from everything else (bare backgrounds, star groups, fainter mocks), by Youden's
J = TPR − FPR (Youden 1950): the true-positive rate over those clusters minus the
false-positive rate over the rest, a window passing when its p_cluster and its estimated
visibility both exceed their thresholds.

J, not precision or F1: the test set is half clusters, a galaxy's windows are almost all
background, so precision on the test set says nothing about a catalogue's; J does not
depend on the mix. The search runs over a fixed grid of class thresholds
(:data:`CLASS_GRID`) and visibility thresholds (:data:`VISIBILITY_GRID`, log-spaced); ties
go to the highest class threshold, then the highest visibility threshold (the purer
catalogue).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: The thesis' catalogue cut (§4.2.3, Fig. 4.2): class and visibility thresholds. The one
#: definition; :mod:`starclusters.detect.catalog` applies it by default.
THESIS_CLASS_THRESHOLD = 0.95
THESIS_VISIBILITY_THRESHOLD = 2.5
#: Class thresholds searched: 0.5 to 0.995 in steps of 0.005.
CLASS_GRID = np.round(np.arange(0.5, 0.99501, 0.005), 3)
#: Visibility thresholds searched: 1 to 10, 40 per decade.
VISIBILITY_GRID = np.round(10.0 ** np.arange(0.0, 1.0001, 0.025), 4)


@dataclass(frozen=True)
class Thresholds:
    """The best pair on the grids and how it separates; rates are fractions of windows."""

    class_threshold: float
    visibility_threshold: float
    youden_j: float
    true_positive_rate: float
    false_positive_rate: float


def rates(p_cluster, visibility, positive, class_threshold, visibility_threshold):
    """(TPR, FPR) of the cut p_cluster > class_threshold and visibility > visibility_threshold.

    p_cluster, visibility (estimated), positive: (N,) arrays; NaN scores never pass. TPR or
    FPR is NaN without positives or negatives.
    """
    p = np.asarray(p_cluster, float)
    v = np.asarray(visibility, float)
    positive = np.asarray(positive, bool)
    passed = (p > class_threshold) & (v > visibility_threshold)
    tpr = passed[positive].mean() if positive.any() else np.nan
    fpr = passed[~positive].mean() if (~positive).any() else np.nan
    return float(tpr), float(fpr)


def youden_thresholds(
    p_cluster,
    visibility,
    positive,
    class_grid=CLASS_GRID,
    visibility_grid=VISIBILITY_GRID,
) -> Thresholds:
    """The (class, visibility) thresholds on the grids that maximise Youden's J.

    p_cluster, visibility: (N,) the network's class probability and estimated visibility
    per test window; positive: (N,) bool, the windows a catalogue should keep (e.g. mocks of
    true visibility > 2.5). ValueError without positives or without negatives.
    """
    p = np.asarray(p_cluster, float)
    v = np.asarray(visibility, float)
    positive = np.asarray(positive, bool)
    if not positive.any() or positive.all():
        raise ValueError("youden_thresholds needs both positive and negative windows")
    v = np.where(np.isfinite(v), v, -np.inf)
    p = np.where(np.isfinite(p), p, -np.inf)
    class_grid = np.sort(np.asarray(class_grid, float))
    visibility_grid = np.sort(np.asarray(visibility_grid, float))
    n_pos, n_neg = positive.sum(), (~positive).sum()
    best = None
    for c in class_grid:
        above = p > c
        # windows passing the class cut, by visibility: count those above each threshold
        pos_v = np.sort(v[above & positive])
        neg_v = np.sort(v[above & ~positive])
        tp = pos_v.size - np.searchsorted(pos_v, visibility_grid, side="right")
        fp = neg_v.size - np.searchsorted(neg_v, visibility_grid, side="right")
        j = tp / n_pos - fp / n_neg
        k = int(np.flatnonzero(j == j.max())[-1])  # ties: the highest visibility threshold
        key = (j[k], c, visibility_grid[k])
        if best is None or key >= best[0]:  # ties: the highest class threshold
            best = (key, tp[k] / n_pos, fp[k] / n_neg)
    (j, c, vis), tpr, fpr = best
    return Thresholds(float(c), float(vis), float(j), float(tpr), float(fpr))
