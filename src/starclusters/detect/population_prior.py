"""The galaxy's own A_V prior, estimated from its candidates, applied to their posteriors.

The network's age × A_V × mass output is a posterior under the *training* prior: the
bank's parameters after its magnitude cuts (A_V uniform on 0–3 mag before the cuts).
A galaxy whose clusters mostly have A_V ≈ 0.3 mag is then read with a pull towards the
bank's mean (≈ 1.2 mag): on the default network the matched clusters' A_V came out
+0.2…+0.45 mag too high on every scored galaxy (docs/detection.md). The correction is
the classic one for a classifier whose class priors differ between training and use
(Saerens, Latinne & Decaestecker 2002, Neural Computation 14, 21): with posteriors
p_i(θ) under the training prior π_t, the posteriors under a new prior π are
q_i(θ) ∝ p_i(θ) π(θ)/π_t(θ), and π itself is estimated by expectation–maximisation as
the mean of the q_i over the galaxy's own candidates — no truth is used, so it works
the same on a real galaxy.

Only the A_V axis is re-weighted: π(θ) = π_t(θ) w(A_V). Estimating the joint 2,800-bin
prior (or age and mass as well) from tens to hundreds of candidates was unstable on the
scored galaxies (weights running off to a few bins); one axis of 10 bins is not. The
estimated A_V marginal is shrunk towards the training one by ``shrink`` (a pseudo-count
in units of the number of candidates), so a galaxy with few candidates stays near the
training prior, and with ``smooth`` (the catalog's default, ``detect.population_prior_smoothing``)
smoothed over neighbouring bins after every step: the candidates' posteriors barely tell
neighbouring A_V bins apart, and plain EM then piles the estimate into whichever bin the
network's small shifts favour (docs/detection.md).

A peak's posterior is the class × Gaussian-distance weighted mean of the posteriors of
the windows around it — the same weights :func:`starclusters.detect.peaks.weighted_parameters`
gives the maps' point estimates (thesis §4.2.2) — decoded by THE decoding
(:func:`starclusters.model.codec.decode`).
"""

from __future__ import annotations

import numpy as np

#: Axis of A_V in the network's joint (age, A_V, mass) grid.
AV_AXIS = 1
#: Default pseudo-count of the training A_V marginal, as a fraction of the candidates.
SHRINK = 0.1
#: EM stops when no weight (max 1) changes by more than this (or after MAX_ITERATIONS).
TOLERANCE = 1e-6
MAX_ITERATIONS = 500
#: The smoothing step of EMS over the A_V bins (:func:`av_prior_weights` with smooth).
SMOOTHING_KERNEL = np.array([0.25, 0.5, 0.25])


def peak_posteriors(
    grids: np.ndarray, p_cluster: np.ndarray, window_px: int, sigma_px: float
) -> np.ndarray:
    """Posterior of each peak: the weighted mean of its windows' posteriors.

    grids: (P, window_px², A, E, M) the age × A_V × mass probabilities of the windows centred
    on the window_px × window_px pixels around each peak (row-major, the peak in the
    middle); p_cluster: (P, window_px²) their class probabilities. Weight: class ×
    exp(−d²/2σ²), d in px (as the maps' point estimates). Returns (P, A, E, M), each
    normalised to 1 (uniform where every weight is zero).
    """
    grids = np.asarray(grids, np.float64)
    half = window_px // 2
    dy, dx = np.mgrid[-half : half + 1, -half : half + 1]
    kernel = np.exp(-0.5 * (dy.ravel() ** 2 + dx.ravel() ** 2) / sigma_px**2)
    weight = np.nan_to_num(np.asarray(p_cluster, np.float64)) * kernel[None]
    if grids.shape[:2] != weight.shape:
        raise ValueError(f"grids {grids.shape[:2]} and p_cluster {weight.shape} do not match")
    post = np.einsum("pw,pw...->p...", weight, grids)
    return _normalised(post)


def _normalised(post: np.ndarray) -> np.ndarray:
    total = post.sum(axis=(1, 2, 3), keepdims=True)
    uniform = np.full_like(post, 1.0 / post[0].size) if len(post) else post
    return np.where(total > 0, post / np.where(total > 0, total, 1.0), uniform)


def reweight(posteriors: np.ndarray, av_weights: np.ndarray) -> np.ndarray:
    """Posteriors (P, A, E, M) under the training prior × ``av_weights`` (E,), normalised."""
    post = (
        np.asarray(posteriors, np.float64) * np.asarray(av_weights, np.float64)[None, None, :, None]
    )
    return _normalised(post)


def av_prior_weights(
    posteriors: np.ndarray,
    training_av: np.ndarray,
    shrink: float = SHRINK,
    tolerance: float = TOLERANCE,
    max_iterations: int = MAX_ITERATIONS,
    smooth: bool = False,
) -> tuple[np.ndarray, np.ndarray, int]:
    """EM estimate of the galaxy's A_V prior from its candidates' posteriors.

    posteriors: (P, A, E, M) under the training prior; training_av: (E,) its A_V marginal;
    shrink ≥ 0: weight of the training marginal added to the estimated one (0: pure EM);
    smooth: after every EM step the estimated marginal is smoothed over neighbouring A_V
    bins by :data:`SMOOTHING_KERNEL` (EMS: Silverman, Jones, Wilson & Nychka 1990, J. R.
    Stat. Soc. B 52, 271), which keeps the estimate from piling into one bin when the
    posteriors cannot tell neighbouring bins apart. Returns (weights (E,) with max 1, the
    estimated A_V marginal (E,), iterations run): the fixed point where the prior π_t·w
    has the A_V marginal of the mean re-weighted posterior (shrunk, smoothed). Bins where
    the training marginal is 0 keep weight 1 (no information). With no posteriors the
    weights are all 1.
    """
    post = np.asarray(posteriors, np.float64)
    train = np.asarray(training_av, np.float64)
    train = train / train.sum()
    if post.ndim != 4 or post.shape[2] != train.size:
        raise ValueError(f"posteriors {post.shape} do not have {train.size} A_V bins on axis 2")
    if shrink < 0:
        raise ValueError(f"shrink must be >= 0, got {shrink}")
    weights = np.ones(train.size)
    if len(post) == 0:
        return weights, train, 0
    marginal_av = post.sum(axis=(1, 3))  # (P, E): the A_V factor is all that changes
    iterations = 0
    while iterations < max_iterations:
        iterations += 1
        q = marginal_av * weights[None]
        q /= q.sum(axis=1, keepdims=True)
        target = (q.mean(axis=0) + shrink * train) / (1.0 + shrink)
        if smooth:  # edge bins keep their weight: the kernel sees them repeated
            target = np.convolve(np.pad(target, 1, mode="edge"), SMOOTHING_KERNEL, mode="valid")
            target /= target.sum()
        current = train * weights
        current /= current.sum()
        ratio = np.divide(target, current, out=np.ones_like(target), where=current > 0)
        new = weights * ratio
        new /= new.max()
        change = np.max(np.abs(new - weights))  # weights are ≤ 1: an absolute change
        weights = new
        if change < tolerance:
            break
    estimated = train * weights
    return weights, estimated / estimated.sum(), iterations
