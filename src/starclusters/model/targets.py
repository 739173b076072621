"""Training targets and losses of the CNN (thesis §3.2.2), on the grids of the codec.

The network's grids, :func:`~starclusters.model.codec.preprocess` and
:func:`~starclusters.model.codec.decode` are in :mod:`starclusters.model.codec`, shared by
training, evaluation and detection; this module holds what only training needs, once each:

- :func:`soft_target_1d`, :func:`soft_target_3d`: Gaussian targets centred on the true value;
- :func:`batch_targets` and :func:`loss`: the four heads' targets for a half-background
  batch and the masked soft cross-entropy;
- :func:`regression_targets` and :func:`regression_loss`: the regression network of thesis
  ch. 2 (log age, log mass, log r_h; smooth-L1).

Everything works on torch tensors (any device, float32 on GPUs); the functions that say so
also take and return numpy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch

from starclusters.model.codec import (
    HEADS,
    REGRESSION_TARGETS,
    ParameterGrids,
    _as_tensor,
    _back,
)

#: Heads whose loss counts for images with a cluster only (thesis §3.2.2).
CLUSTER_HEADS = ("age_av_mass", "rh")
#: Standard deviation of the 3-D (age, A_V, mass) soft target, bins (thesis §3.2.2).
SIGMA_3D_BINS = 0.25
#: Standard deviation of the 1-D (r_h, visibility) soft targets, bins (thesis §3.2.2).
SIGMA_1D_BINS = 0.5


# -------------------------------------------------------------------------------- soft targets


def _fractional_bin(values: torch.Tensor, centres: torch.Tensor):
    """(j, f): value lies at continuous bin position j + f, 0 ≤ f ≤ 1, j in [0, K-2].

    Piecewise linear between neighbouring centres; values outside the grid are clipped to
    the edge centres (j = 0, f = 0 below; j = K-2, f = 1 above).
    """
    k = centres.numel()
    j = (torch.searchsorted(centres, values.contiguous(), right=True) - 1).clamp(0, k - 2)
    lo, hi = centres[j], centres[j + 1]
    f = ((values - lo) / (hi - lo)).clamp(0.0, 1.0)
    return j, f


def _soft_1d(values: torch.Tensor, centres, sigma_bins: float, log_spacing: bool) -> torch.Tensor:
    """(N, K) float32 target on ``values``' device; see :func:`soft_target_1d`."""
    if torch.isnan(values).any():
        raise ValueError("soft targets: values contain NaN; give finite parameters")
    if sigma_bins <= 0:
        raise ValueError(f"sigma_bins must be > 0, got {sigma_bins}")
    device = values.device
    c = torch.as_tensor(np.array(centres, dtype=np.float64), device=device)
    v = values.to(torch.float64 if device.type == "cpu" else torch.float32)
    c = c.to(v.dtype)
    if log_spacing:
        v, c = torch.log10(v.clamp_min(torch.finfo(v.dtype).tiny)), torch.log10(c)
    j, f = _fractional_bin(v.reshape(-1), c)
    k = torch.arange(c.numel(), device=device, dtype=torch.float32)
    gauss = torch.exp(-0.5 * ((k[None, :] - k[:, None]) / sigma_bins) ** 2)
    gauss = gauss / gauss.sum(dim=1, keepdim=True)  # (K, K): row j = Gaussian on bin j
    f = f.to(torch.float32)[:, None]
    return (1.0 - f) * gauss[j] + f * gauss[j + 1]


def soft_target_1d(values, centres, sigma_bins: float = SIGMA_1D_BINS, log_spacing: bool = False):
    """Soft 1-D targets (N, K) for ``values`` (N,) on a grid of bin ``centres`` (K,).

    A Gaussian of standard deviation ``sigma_bins`` (in bins; thesis: 0.5 for r_h and
    visibility) centred on the value's continuous bin position j + f. Made as the mixture
    (1 - f)·G_j + f·G_{j+1} of the thesis Gaussian placed on the two neighbouring centres:
    identical to the thesis target for a value on a centre, and — unlike a Gaussian merely
    sampled at the centres, whose probability-weighted mean snaps toward the nearest
    centre by up to 0.27 bin at σ = 0.25 (0.02 bin at σ = 0.5) — its weighted mean of
    centres is the true value, so :func:`~starclusters.model.codec.decode` of a perfect
    output returns the truth. Its peak is the nearest bin.

    Each row sums to 1 (the Gaussians are renormalised where the grid cuts them). Values
    outside the grid are clipped to the edge bins (an edge value's target is the Gaussian
    on the edge bin, whose weighted mean lies slightly inside). ``log_spacing``: the grid is
    even in log10 (visibility); positions are then taken in log10, and values ≤ 0 (a
    background's visibility 0) fall in bin 0. numpy in → numpy out; torch in → float32 on
    the same device.
    """
    v, was_numpy = _as_tensor(values)
    return _back(_soft_1d(v, centres, sigma_bins, log_spacing), was_numpy)


def soft_target_3d(
    log_age_yr, av_mag, log_mass_msun, grids: ParameterGrids, sigma_bins: float = SIGMA_3D_BINS
):
    """Soft joint targets (N, A, E, M) for N clusters' (log age, A_V, log mass), each (N,).

    The 3-D Gaussian of the thesis (σ = 0.25 bin on each axis) is separable, so it is the
    outer product of three :func:`soft_target_1d` targets; it sums to 1 per cluster and its
    marginals are those 1-D targets (same construction, clipping and mean as there).
    numpy in → numpy out; torch in → float32 on the device of ``log_age_yr``.
    """
    age, was_numpy = _as_tensor(log_age_yr)
    av, _ = _as_tensor(av_mag, device=age.device)
    mass, _ = _as_tensor(log_mass_msun, device=age.device)
    if not (age.numel() == av.numel() == mass.numel()):
        raise ValueError(
            f"age, A_V and mass differ in length: {age.numel()}, {av.numel()}, {mass.numel()}"
        )
    ta = _soft_1d(age, grids.log_age_yr, sigma_bins, False)
    te = _soft_1d(av, grids.av_mag, sigma_bins, False)
    tm = _soft_1d(mass, grids.log_mass_msun, sigma_bins, False)
    return _back(torch.einsum("na,ne,nm->naem", ta, te, tm), was_numpy)


# ------------------------------------------------------------------------ batch targets, loss


def _column(params, name: str) -> np.ndarray | torch.Tensor:
    """One parameter column; log_rh_arcsec falls back to log10 of an ``rh_arcsec`` column."""
    if name in params:
        return params[name]
    if name == "log_rh_arcsec" and "rh_arcsec" in params:
        rh, _ = _as_tensor(params["rh_arcsec"], dtype=torch.float64)
        return torch.log10(rh)
    raise ValueError(
        f"parameters lack {name!r}; give log_age_yr, av_mag, log_mass_msun, "
        "log_rh_arcsec (or rh_arcsec) and visibility"
    )


def batch_targets(
    params, is_cluster, grids: ParameterGrids, device=None
) -> dict[str, torch.Tensor]:
    """Targets of one training batch (thesis §3.2.2: half the images are bare backgrounds).

    params: table (pandas DataFrame or mapping of (N,) arrays/tensors) with log_age_yr,
    av_mag, log_mass_msun, log_rh_arcsec (or rh_arcsec, arcsec) and visibility; the rows of
    backgrounds are ignored and may be NaN. is_cluster: (N,) bool. Returns float32 tensors
    on ``device`` (default: is_cluster's device, else CPU):

    - "age_av_mass" (N, A, E, M) and "rh" (N, R): soft targets for clusters, zero rows for
      backgrounds (their loss is masked out anyway);
    - "class" (N, 2): one-hot, [1, 0] background, [0, 1] cluster;
    - "visibility" (N, V): soft target of the cluster's visibility; backgrounds get
      visibility 0, i.e. the target on bin 0;
    - "cluster" (N,) bool: the mask of images whose cluster-parameter losses count.
    """
    mask, _ = _as_tensor(is_cluster, device=device)
    mask = mask.to(torch.bool).reshape(-1)
    dev = mask.device
    n = mask.numel()

    def values(name: str) -> torch.Tensor:
        column = _column(params, name)
        if not isinstance(column, torch.Tensor):
            column = np.asarray(column, dtype=np.float64)
        t, _ = _as_tensor(
            column, dtype=torch.float64 if dev.type == "cpu" else torch.float32, device=dev
        )
        t = t.reshape(-1)
        if t.numel() != n:
            raise ValueError(f"parameter {name!r} has {t.numel()} rows, is_cluster has {n}")
        bad = int(torch.isnan(t[mask]).sum())
        if bad:
            raise ValueError(f"parameter {name!r} is NaN for {bad} clusters; give finite values")
        return torch.where(mask, t, torch.zeros_like(t))  # backgrounds: any finite value

    keep = mask.to(torch.float32)
    age_av_mass = (
        soft_target_3d(values("log_age_yr"), values("av_mag"), values("log_mass_msun"), grids)
        * keep[:, None, None, None]
    )
    rh = (
        _soft_1d(values("log_rh_arcsec"), grids.log_rh_arcsec, SIGMA_1D_BINS, False) * keep[:, None]
    )
    vis = _soft_1d(values("visibility"), grids.visibility, SIGMA_1D_BINS, True)
    return {
        "age_av_mass": age_av_mass,
        "rh": rh,
        "class": torch.stack([1.0 - keep, keep], dim=1),
        "visibility": vis,
        "cluster": mask,
    }


def _cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per-image soft categorical cross-entropy −Σ y log softmax(z) (thesis eq. 3.4), (N,).

    Bins with y = 0 contribute nothing, even where a logit is −inf.
    """
    logp = torch.log_softmax(logits.flatten(1), dim=1)
    y = target.flatten(1).to(logp.dtype)
    return -torch.where(y > 0, y * logp, torch.zeros_like(logp)).sum(dim=1)


def loss(outputs_logits: Mapping, targets: Mapping) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(total, per-head) loss of one batch: soft cross-entropy per head, summed with weight 1.

    outputs_logits: {head: logits}, "age_av_mass" (N, A, E, M) or flattened (N, A·E·M) —
    its softmax runs over the whole 3-D grid — and (N, K) for the others. targets: from
    :func:`batch_targets`. "class" and "visibility" are averaged over all N images;
    "age_av_mass" and "rh" over the clusters only (thesis §3.2.2: "for background images
    we zero out the training loss gradients for all cluster parameters"); with no cluster
    in the batch they are 0 and carry no gradient to those heads' logits.
    """
    mask = targets["cluster"].to(torch.bool)
    n_clusters = mask.sum().clamp_min(1)
    per_head = {}
    for head in HEADS:
        ce = _cross_entropy(outputs_logits[head], targets[head])
        if head in CLUSTER_HEADS:
            per_head[head] = torch.where(mask, ce, torch.zeros_like(ce)).sum() / n_clusters
        else:
            per_head[head] = ce.mean()
    return sum(per_head.values()), per_head


# --------------------------------------------------------------- regression heads (thesis ch. 2)


def regression_targets(params, is_cluster, device=None) -> dict[str, torch.Tensor]:
    """Targets of the regression network (thesis ch. 2): log age, log mass, log r_h.

    params, is_cluster: as for :func:`batch_targets`. Returns float32 tensors (N,) "age"
    (log10 yr), "mass" (log10 M☉), "rh" (log10 arcsec), zero for backgrounds, and the mask
    "cluster" (N,) bool.
    """
    mask, _ = _as_tensor(is_cluster, device=device)
    mask = mask.to(torch.bool).reshape(-1)
    out: dict[str, torch.Tensor] = {"cluster": mask}
    for key, name in REGRESSION_TARGETS.items():
        column = _column(params, name)
        if not isinstance(column, torch.Tensor):
            column = np.asarray(column, dtype=np.float64)
        t, _ = _as_tensor(column, dtype=torch.float32, device=mask.device)
        t = t.reshape(-1)
        if t.numel() != mask.numel():
            raise ValueError(
                f"parameter {name!r} has {t.numel()} rows, is_cluster has {mask.numel()}"
            )
        if bool(torch.isnan(t[mask]).any()):
            raise ValueError(f"parameter {name!r} is NaN for clusters; give finite values")
        out[key] = torch.where(mask, t, torch.zeros_like(t))
    return out


def regression_loss(
    outputs: Mapping, targets: Mapping
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """(total, per-output) loss of the regression network (thesis eq. 2.1–2.2).

    Σ over age, mass and r_h of smooth-L1(target − output) (quadratic below 1, linear
    above: robust to outliers), averaged over the images with a cluster (backgrounds, if
    any, carry no loss); 0 without clusters.
    """
    mask = targets["cluster"].to(torch.bool)
    n_clusters = mask.sum().clamp_min(1)
    per_head = {}
    for key in REGRESSION_TARGETS:
        value = torch.nn.functional.smooth_l1_loss(
            outputs[key].float(), targets[key].float(), reduction="none", beta=1.0
        )
        per_head[key] = torch.where(mask, value, torch.zeros_like(value)).sum() / n_clusters
    return sum(per_head.values()), per_head


def training_marginals(soft_target_sum: np.ndarray) -> dict[str, list[float]]:
    """Per-axis marginals of the training prior from the summed soft targets.

    soft_target_sum: (A, E, M) the sum over the training mocks of the age × A_V × mass
    targets the network was trained on (:func:`starclusters.model.targets.soft_target_3d`).
    Returns {"log_age_yr": (A,), "av_mag": (E,), "log_mass_msun": (M,)} as plain lists,
    each summing to 1 (what a checkpoint's ``training_prior`` holds).
    """
    total = np.asarray(soft_target_sum, np.float64)
    if total.ndim != 3 or not total.sum() > 0:
        raise ValueError(f"need a positive (A, E, M) sum of soft targets, got shape {total.shape}")
    total = total / total.sum()
    names = ("log_age_yr", "av_mag", "log_mass_msun")
    axes = [(1, 2), (0, 2), (0, 1)]
    return {name: total.sum(axis=ax).tolist() for name, ax in zip(names, axes, strict=True)}
