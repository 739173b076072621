"""The trained network on held-out mocks (thesis §3.3.1): accuracy, class, calibration.

The test set is what the thesis' was: mock clusters the network never saw (the bank's
``test`` split by seed, :func:`~starclusters.model.data.split_by_seed`) on backgrounds it
never saw (the ``test`` spatial blocks), composed with THE ``compose()``, plus as many bare
test backgrounds. Each window goes through :func:`~starclusters.model.inference.predict`,
the path detection uses.

Measured (:func:`score_test_set`, one long table):

- per parameter (log age, A_V, log mass, log r_h, and log visibility), for all mocks and
  for log t < 8: the 95 % bound of |derived − true| (thesis Fig. 3.10's dashed lines;
  M83: 0.9 dex, 1.4 mag, 0.4 dex, 0.2 dex), the median bias, and the scatter (half the
  16–84 % range of the error);
- the class: ROC AUC of p_cluster for mocks against backgrounds, and the fractions above
  0.5 of both (thesis Fig. 3.12);
- star groups (when the network trained on them, :mod:`starclusters.mocks.star_groups`):
  the fractions of test star groups on test backgrounds with p_cluster above 0.5 and above
  the thesis' class threshold 0.95 — how often a single star, a pair or a small group
  would pass as a cluster;
- calibration, which the thesis never measured: the output grids are meant as
  probabilities, so the true value should lie inside the 68 % (95 %) highest-probability
  region of the grid for 68 % (95 %) of the mocks. For every mock and grid,
  :func:`truth_hpd_level` gives the probability mass of the cells more probable than the
  truth's cell; the truth lies inside the α-HPD region iff that mass is < α, so the
  coverage at α is the fraction of mocks below α. Cells are bins, so the coverage of a
  well-calibrated grid is slightly above α (the truth's own bin is counted whole).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy.stats import rankdata
from tqdm import tqdm

from starclusters.errors import ConfigError, InputFileError
from starclusters.io import read_table
from starclusters.model.codec import ParameterGrids
from starclusters.model.data import TrainingData
from starclusters.model.inference import predict
from starclusters.model.network import ClusterNetwork
from starclusters.model.thresholds import (
    THESIS_CLASS_THRESHOLD,
    THESIS_VISIBILITY_THRESHOLD,
    rates,
    youden_thresholds,
)
from starclusters.sections import dataclass_from_config, is_integer
from starclusters.stats import error_statistics

log = logging.getLogger(__name__)

CONFIG_KEY = "evaluate"
#: SeedSequence tag of the test set (training uses 1–3, see starclusters.model.train).
TEST_TAG = 4
#: Cluster parameters of the 3-D grid, in its axis order.
GRID_3D = ("log_age_yr", "av_mag", "log_mass_msun")
#: Parameters scored against the truth, with units (visibility is scored in log10).
PARAMETERS = {
    "log_age_yr": "dex",
    "av_mag": "mag",
    "log_mass_msun": "dex",
    "log_rh_arcsec": "dex",
    "log_visibility": "dex",
}
#: Grids whose calibration is measured: the joint 3-D grid, its marginals, r_h, visibility.
CALIBRATED = ("age_av_mass", *GRID_3D, "log_rh_arcsec", "visibility")
#: Highest-probability-density levels reported in the metrics table.
HPD_LEVELS = (0.68, 0.95)
#: Age below which the thesis finds no systematic age errors (log10 yr, §3.3.1).
YOUNG_LOG_AGE_YR = 8.0
#: Thesis §3.3.1 95 % error bounds on M83 (for the figure and the docs).
THESIS_BOUND95 = {"log_age_yr": 0.9, "av_mag": 1.4, "log_mass_msun": 0.4, "log_rh_arcsec": 0.2}


@dataclass(frozen=True)
class EvaluateSettings:
    """The test set (the ``evaluate`` config section; keys = field names).

    n_mocks: test mock windows (thesis 5,000; drawn with replacement from the test split,
    each with its own background, orientation and photon noise); n_backgrounds: bare test
    backgrounds (thesis 5,000); batch_size: windows composed and inferred at once;
    jitter_px: centring jitter of the mocks, px (0: centred as in the thesis; detection
    peaks are within ~1 px); augment: random 90° rotation and flip of stamps and backgrounds;
    n_star_groups: test star-group windows, when the data hold star groups.
    """

    n_mocks: int = 5000
    n_backgrounds: int = 5000
    batch_size: int = 256
    jitter_px: int = 0
    augment: bool = True
    n_star_groups: int = 1000

    def __post_init__(self):
        for key in ("n_mocks", "n_backgrounds", "batch_size", "n_star_groups"):
            value = getattr(self, key)
            if not is_integer(value, 1):
                raise ConfigError(f"{CONFIG_KEY}.{key}: must be a positive integer, got {value!r}")
        if isinstance(self.jitter_px, bool) or not isinstance(self.jitter_px, int):
            raise ConfigError(f"{CONFIG_KEY}.jitter_px: must be an integer ≥ 0 (pixels)")
        if self.jitter_px < 0:
            raise ConfigError(f"{CONFIG_KEY}.jitter_px: must be ≥ 0, got {self.jitter_px}")
        if not isinstance(self.augment, bool):
            raise ConfigError(f"{CONFIG_KEY}.augment: must be true or false")

    @classmethod
    def from_config(cls, section: Mapping | None = None, **overrides) -> EvaluateSettings:
        """Settings from the ``evaluate`` config mapping, then ``overrides``; unknown keys fail."""
        return dataclass_from_config(cls, section, CONFIG_KEY, **overrides)


# ------------------------------------------------------------------------------- calibration


def nearest_bin(values, centres, log_spacing: bool = False) -> np.ndarray:
    """Index (N,) of the bin centre nearest each value (in log10 for log-spaced grids).

    values outside the grid get the edge bins; NaN values get -1.
    """
    v = np.asarray(values, dtype=float)
    c = np.asarray(centres, dtype=float)
    if log_spacing:
        with np.errstate(divide="ignore", invalid="ignore"):
            v = np.where(np.isnan(v), np.nan, np.log10(np.where(v > 0, v, c[0])))
        c = np.log10(c)
    idx = np.abs(v[:, None] - c[None, :]).argmin(axis=1)
    return np.where(np.isfinite(v), idx, -1)


def truth_hpd_level(probabilities, true_index) -> np.ndarray:
    """Probability mass of the cells more probable than the truth's cell, (N,).

    probabilities: (N, K1, …, Kn) grids (normalised over the grid axes); true_index: (N, n)
    or (N,) cell index of the truth per sample. The truth lies inside the α
    highest-probability region iff the result is < α (ties with the truth's cell are not
    counted as more probable). NaN where the index is -1 (no truth).
    """
    p = np.asarray(probabilities, dtype=np.float64)
    n = p.shape[0]
    flat = p.reshape(n, -1)
    idx = np.asarray(true_index).reshape(n, -1)
    valid = np.all(idx >= 0, axis=1)
    grid_shape = p.shape[1:]
    cell = np.ravel_multi_index(tuple(np.where(valid[:, None], idx, 0).T), grid_shape)
    p_true = flat[np.arange(n), cell]
    above = np.where(flat > p_true[:, None], flat, 0.0).sum(axis=1)
    return np.where(valid, above, np.nan)


def _hpd_levels(outputs: Mapping, truth: pd.DataFrame, grids: ParameterGrids) -> dict:
    """truth_hpd_level of every calibrated grid for one batch (NaN for backgrounds, and for
    the regression network, which has no grids)."""
    if "grid_age_av_mass" not in outputs:
        return {grid: np.full(len(truth), np.nan) for grid in CALIBRATED}
    idx3 = np.stack([nearest_bin(truth[name], getattr(grids, name)) for name in GRID_3D], 1)
    p3 = outputs["grid_age_av_mass"]
    levels = {"age_av_mass": truth_hpd_level(p3, idx3)}
    for axis, name in enumerate(GRID_3D):
        others = tuple(a + 1 for a in range(3) if a != axis)
        levels[name] = truth_hpd_level(p3.sum(axis=others), idx3[:, axis])
    rh_idx = nearest_bin(truth["log_rh_arcsec"], grids.log_rh_arcsec)
    levels["log_rh_arcsec"] = truth_hpd_level(outputs["grid_rh"], rh_idx)
    vis = truth["visibility"].to_numpy(float)
    vis_idx = nearest_bin(np.where(truth["is_cluster"], vis, np.nan), grids.visibility, True)
    levels["visibility"] = truth_hpd_level(outputs["grid_visibility"], vis_idx)
    return levels


# ---------------------------------------------------------------------------------- test set


def run_test_set(
    model: ClusterNetwork,
    grids: ParameterGrids,
    data: TrainingData,
    settings: EvaluateSettings,
    seed: int,
    device="cpu",
) -> pd.DataFrame:
    """Compose the test windows batch by batch, infer, and tabulate truth against output.

    model, grids: the trained network (eval mode) and its grids; data: the bank and
    backgrounds with their splits (only ``test`` is used); settings: the test set; seed: its
    randomness derives from (seed, TEST_TAG) alone.

    One row per window: is_cluster; true values log_age_yr_true, av_mag_true,
    log_mass_msun_true, log_rh_arcsec_true (NaN for backgrounds) and visibility_true (0 for
    backgrounds); derived values p_cluster, visibility, log_age_yr, av_mag, log_mass_msun,
    log_rh_arcsec (the point estimates of :func:`predict`); hpd_level_<grid> for each grid
    of CALIBRATED (mass of the cells more probable than the truth's; NaN for backgrounds);
    mock_index and background_index (rows of ``data``). When ``data`` holds star groups,
    settings.n_star_groups further rows follow (is_cluster False, is_star_group True,
    star_group_index, star_group_visibility), drawn after all the others so that the rows
    before them are the test set without star groups. Memory is bounded by batch_size.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), TEST_TAG]))
    need_bg, need_mock = settings.n_backgrounds, settings.n_mocks
    half = max(1, settings.batch_size // 2)
    rows = []
    total = need_bg + need_mock
    with tqdm(total=total, desc="test set", unit="window", disable=None) as bar:
        while need_bg > 0 or need_mock > 0:
            images, table = data.draw(
                "test", 2 * half, rng, augment=settings.augment, jitter_px=settings.jitter_px
            )
            keep = np.zeros(len(table), bool)
            n_bg, n_mock = min(half, need_bg), min(half, need_mock)
            keep[:n_bg] = True
            keep[half : half + n_mock] = True
            images, table = images[keep], table[keep].reset_index(drop=True)
            need_bg, need_mock = need_bg - n_bg, need_mock - n_mock
            out = predict(
                model, images, grids, batch_size=len(images), device=device, keep_grids=True
            )
            frame = pd.DataFrame({"is_cluster": table["is_cluster"].to_numpy(bool)})
            for name in (*GRID_3D, "log_rh_arcsec", "visibility"):
                frame[f"{name}_true"] = table[name].to_numpy(float)
            for name in ("p_cluster", "visibility", *GRID_3D, "log_rh_arcsec"):
                frame[name] = out[name]
            for grid, level in _hpd_levels(out, table, grids).items():
                frame[f"hpd_level_{grid}"] = level
            frame["mock_index"] = table["mock_index"].to_numpy(int)
            frame["background_index"] = table["background_index"].to_numpy(int)
            rows.append(frame)
            bar.update(n_bg + n_mock)
    if data.star_groups is not None:
        rows.append(_star_group_rows(model, grids, data, settings, rng, device))
    result = pd.concat(rows, ignore_index=True)
    if data.star_groups is not None:
        result["is_star_group"] = result["is_star_group"].fillna(False).astype(bool)
        result["star_group_index"] = result["star_group_index"].fillna(-1).astype(int)
    log.info(
        "test set: %d mocks (%d distinct) and %d backgrounds",
        int(result["is_cluster"].sum()),
        result.loc[result["is_cluster"], "mock_index"].nunique(),
        int((~result["is_cluster"]).sum()),
    )
    return result


def star_group_mask(table: pd.DataFrame) -> np.ndarray:
    """(N,) bool: the star-group rows of a :func:`run_test_set` table (none in a table of a
    network trained without star groups)."""
    if "is_star_group" not in table:
        return np.zeros(len(table), bool)
    return table["is_star_group"].fillna(False).to_numpy(bool)


def _star_group_rows(model, grids, data, settings, rng, device) -> pd.DataFrame:
    """settings.n_star_groups test star groups on test backgrounds through the network."""
    need = settings.n_star_groups
    half = max(1, settings.batch_size // 2)
    frames = []
    while need > 0:
        images, table = data.draw(
            "test",
            2 * half,
            rng,
            augment=settings.augment,
            jitter_px=settings.jitter_px,
            n_backgrounds=half,
            star_group_fraction=1.0,
        )
        keep = np.flatnonzero(table["star_group_index"].to_numpy() >= 0)[:need]
        images, table = images[keep], table.iloc[keep].reset_index(drop=True)
        out = predict(model, images, grids, batch_size=len(images), device=device)
        frame = pd.DataFrame({"is_cluster": np.zeros(len(keep), bool)})
        frame["is_star_group"] = True
        for name in ("p_cluster", "visibility", *GRID_3D, "log_rh_arcsec"):
            frame[name] = out[name]
        frame["visibility_true"] = 0.0
        frame["background_index"] = table["background_index"].to_numpy(int)
        frame["mock_index"] = -1
        frame["star_group_index"] = table["star_group_index"].to_numpy(int)
        frame["star_group_visibility"] = table["star_group_visibility"].to_numpy(float)
        frames.append(frame)
        need -= len(keep)
    return pd.concat(frames, ignore_index=True)


# ------------------------------------------------------------------------------------ metrics


def errors(table: pd.DataFrame, parameter: str) -> np.ndarray:
    """derived − true of ``parameter`` (a PARAMETERS key) for the table's rows, (N,)."""
    if parameter == "log_visibility":
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.log10(table["visibility"].to_numpy(float)) - np.log10(
                table["visibility_true"].to_numpy(float)
            )
    return table[parameter].to_numpy(float) - table[f"{parameter}_true"].to_numpy(float)


def roc_auc(scores, labels) -> float:
    """Area under the ROC curve of ``scores`` for boolean ``labels`` (Mann–Whitney, ties half)."""
    scores = np.asarray(scores, dtype=float)
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score_test_set(table: pd.DataFrame) -> pd.DataFrame:
    """The long metrics table of a :func:`run_test_set` table.

    Columns: quantity (a PARAMETERS key, "class", or a CALIBRATED grid name), subset ("all",
    "log_age_lt_8", "mocks", "backgrounds"), metric, value, unit. Metrics: n;
    bound95_abs, median_bias, scatter_68 (half the 16–84 % range) of derived − true;
    roc_auc, frac_above_0.5 (class); hpd68_coverage, hpd95_coverage (calibration). Star-group
    rows (``is_star_group``) count in none of these; with them, class/star_groups gets n,
    frac_above_0.5 and frac_above_0.95 (:data:`THESIS_CLASS_THRESHOLD`). Quantity
    "thresholds": subset "derived", the catalogue cut that best separates mocks of true
    visibility > 2.5 from all other windows, star groups included (class_threshold,
    visibility_threshold, youden_j, tpr, fpr; :func:`~.thresholds.youden_thresholds`), and
    subset "thesis", the same rates at the thesis' 0.95 and 2.5.
    """
    everything = table
    groups = star_group_mask(table)
    star_groups, table = table[groups], table[~groups]
    mocks = table[table["is_cluster"].to_numpy(bool)]
    rows = []

    def add(quantity, subset, metric, value, unit=""):
        rows.append((quantity, subset, metric, float(value), unit))

    young = mocks["log_age_yr_true"].to_numpy(float) < YOUNG_LOG_AGE_YR
    for subset, part in (("all", mocks), ("log_age_lt_8", mocks[young])):
        for name, unit in PARAMETERS.items():
            stats = error_statistics(errors(part, name))
            add(name, subset, "n", stats["n"])
            if stats["n"] == 0:
                continue
            add(name, subset, "bound95_abs", stats["bound95_abs"], unit)
            add(name, subset, "median_bias", stats["median_bias"], unit)
            add(name, subset, "scatter_68", stats["scatter68"], unit)
    labels = table["is_cluster"].to_numpy(bool)
    p = table["p_cluster"].to_numpy(float)
    if np.isnan(p).all():  # the regression network has no class head
        return pd.DataFrame(rows, columns=["quantity", "subset", "metric", "value", "unit"])
    add("class", "all", "roc_auc", roc_auc(p, labels))
    add("class", "mocks", "n", labels.sum())
    add("class", "backgrounds", "n", (~labels).sum())
    add("class", "mocks", "frac_above_0.5", np.mean(p[labels] > 0.5) if labels.any() else np.nan)
    fraction = np.mean(p[~labels] > 0.5) if (~labels).any() else np.nan
    add("class", "backgrounds", "frac_above_0.5", fraction)
    if len(star_groups):
        p_groups = star_groups["p_cluster"].to_numpy(float)
        add("class", "star_groups", "n", len(p_groups))
        add("class", "star_groups", "frac_above_0.5", np.mean(p_groups > 0.5))
        add("class", "star_groups", "frac_above_0.95", np.mean(p_groups > THESIS_CLASS_THRESHOLD))
    _add_thresholds(everything, add)
    for grid in CALIBRATED:
        level = mocks[f"hpd_level_{grid}"].to_numpy(float)
        level = level[np.isfinite(level)]
        for alpha in HPD_LEVELS:
            value = np.mean(level < alpha) if level.size else np.nan
            add(grid, "all", f"hpd{round(alpha * 100)}_coverage", value)
    return pd.DataFrame(rows, columns=["quantity", "subset", "metric", "value", "unit"])


def _add_thresholds(table: pd.DataFrame, add) -> None:
    """The thresholds rows of :func:`score_test_set`: the (class, visibility) pair that best
    keeps the mocks of true visibility above the thesis' 2.5 apart from every other window
    (backgrounds, star groups, fainter mocks), and the thesis' own pair's rates."""
    positive = table["is_cluster"].to_numpy(bool) & (
        table["visibility_true"].to_numpy(float) > THESIS_VISIBILITY_THRESHOLD
    )
    if not positive.any() or positive.all():
        return
    p = table["p_cluster"].to_numpy(float)
    visibility = table["visibility"].to_numpy(float)
    best = youden_thresholds(p, visibility, positive)
    add("thresholds", "derived", "class_threshold", best.class_threshold)
    add("thresholds", "derived", "visibility_threshold", best.visibility_threshold)
    add("thresholds", "derived", "youden_j", best.youden_j)
    add("thresholds", "derived", "tpr", best.true_positive_rate)
    add("thresholds", "derived", "fpr", best.false_positive_rate)
    tpr, fpr = rates(p, visibility, positive, THESIS_CLASS_THRESHOLD, THESIS_VISIBILITY_THRESHOLD)
    add("thresholds", "thesis", "class_threshold", THESIS_CLASS_THRESHOLD)
    add("thresholds", "thesis", "visibility_threshold", THESIS_VISIBILITY_THRESHOLD)
    add("thresholds", "thesis", "youden_j", tpr - fpr)
    add("thresholds", "thesis", "tpr", tpr)
    add("thresholds", "thesis", "fpr", fpr)


def metric(metrics: pd.DataFrame, quantity: str, metric_name: str, subset: str = "all") -> float:
    """One value of a :func:`score_test_set` table (NaN if absent)."""
    sel = metrics[
        (metrics["quantity"] == quantity)
        & (metrics["metric"] == metric_name)
        & (metrics["subset"] == subset)
    ]
    return float(sel["value"].iloc[0]) if len(sel) else float("nan")


def read_derived_thresholds(path: str | os.PathLike) -> tuple[float, float]:
    """(class, visibility) thresholds of the held-out test's derived cut, read with
    :func:`metric` from its ``test_metrics.parquet`` (quantity "thresholds", subset
    "derived": the rows :func:`score_test_set` writes). InputFileError naming the file if
    it is missing, damaged or has no such rows (a test of a network without a class
    output, or of an older version)."""
    remedy = "rerun the held-out test (rule evaluate_model, `starclusters evaluate`)"
    table = read_table(path, remedy)
    keys = ("class_threshold", "visibility_threshold")
    values = {}
    if {"quantity", "subset", "metric", "value"} <= set(table.columns):
        values = {k: metric(table, "thresholds", k, "derived") for k in keys}
    missing = [k for k in keys if not np.isfinite(values.get(k, np.nan))]
    if missing:
        raise InputFileError(
            f"{path}: no derived {' and '.join(missing)} (quantity thresholds, subset "
            f"derived); {remedy}, or set detect.derived_thresholds: false"
        )
    return float(values["class_threshold"]), float(values["visibility_threshold"])
