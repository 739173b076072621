"""Selection function of the artificial-cluster test: P(detected | parameters).

The pooled injections (one row per artificial cluster, its true parameters and whether it
was recovered) are fitted with a gradient-boosted classifier that is monotone where the
physics says so (a heavier cluster is no harder to find, a more extinguished one no
easier), and the fit is written as a **gridded table** — one column per feature of
:data:`SELECTION_FEATURES` plus ``p_detected`` on the full Cartesian grid of nodes — that
:class:`SelectionFunction` interpolates. The table (Parquet, see
:func:`starclusters.io.write_table`) is the data contract: no model pickles leave this
module, so the analysis and users need neither scikit-learn nor its version.

Features and units (the columns of the injections table and of the grid):

- ``log_age_yr``: log10 of the age, yr;
- ``log_mass_msun``: log10 of the mass, M_sun;
- ``av_mag``: V-band extinction A_V, mag;
- ``log_rh_arcsec``: log10 of the half-light radius, arcsec;
- ``log_background_counts_s``: log10 of the local background, counts/s per pixel.

Honest calibration: every injection also gets a prediction from a model that did not see
it (stratified k-fold :func:`~sklearn.model_selection.cross_val_predict`), binned into a
reliability table with Wilson intervals (:func:`starclusters.stats.binomial_recall`)
and scored (Brier score, log loss) against a constant base-rate model scored the same way.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from starclusters.errors import ConfigError, InputFileError
from starclusters.io import read_table
from starclusters.stats import bin_index, binomial_recall

log = logging.getLogger(__name__)

#: The features of the selection function, in the order of the grid's axes.
SELECTION_FEATURES = (
    "log_age_yr",
    "log_mass_msun",
    "av_mag",
    "log_rh_arcsec",
    "log_background_counts_s",
)
#: Unit of each feature (for tables' meta, figures and messages).
FEATURE_UNITS = {
    "log_age_yr": "dex (yr)",
    "log_mass_msun": "dex (M_sun)",
    "av_mag": "mag",
    "log_rh_arcsec": "dex (arcsec)",
    "log_background_counts_s": "dex (counts/s per pixel)",
}
#: Default monotone constraints (+1 increasing, −1 decreasing, 0 free): detection cannot get
#: harder with mass nor easier with extinction; age, size and background may go either way.
DEFAULT_MONOTONE = {"log_mass_msun": 1, "av_mag": -1}
#: Default grid spacing, dex, of the features with a step (nodes from the data's min to max).
DEFAULT_GRID_STEP = {"log_age_yr": 0.1, "log_mass_msun": 0.1}
#: Default number of grid nodes of the other features.
DEFAULT_GRID_NODES = {"av_mag": 7, "log_rh_arcsec": 5, "log_background_counts_s": 5}
#: Quantiles spanned by the default grid of the continuous nuisances: a few outlying sites
#: (next to a bright star) would otherwise spread their 5 nodes over empty space.
NUISANCE_QUANTILES = {"log_rh_arcsec": (0.005, 0.995), "log_background_counts_s": (0.005, 0.995)}
#: Largest grid table :func:`fit_selection` writes, rows.
MAX_GRID_ROWS = 5_000_000
#: Hyper-parameters of the HistGradientBoostingClassifier. Chosen on simulated injections
#: (a logistic completeness in mass, age and A_V; 2k, 3k, 10k and 26k rows; held-out log
#: loss, expected calibration error and error against the truth on a grid): small trees
#: (8 leaves, ≥ 40 injections each) with mild L2 and early stopping on a 10 % validation
#: split beat sklearn's defaults — which at < 10k rows run 100 iterations of 31-leaf trees
#: without early stopping and come out over-confident (2k rows: held-out log loss 0.333 vs
#: 0.349, calibration error 0.016 vs 0.038) — and match them at 26k (0.307 vs 0.309).
#: Early stopping holds out 10 % of the rows a model is given to decide when to stop.
HGB_PARAMS = {
    "learning_rate": 0.1,
    "max_iter": 500,
    "max_leaf_nodes": 8,
    "min_samples_leaf": 40,
    "l2_regularization": 1.0,
    "early_stopping": True,
    "validation_fraction": 0.1,
    "n_iter_no_change": 20,
}
#: Bins of predicted probability of the calibration table.
CALIBRATION_BINS = 10
#: Columns of the calibration table: the bin [p_lo, p_hi) of the cross-validated prediction,
#: the injections in it, their mean prediction, the fraction detected with its binomial σ
#: and Wilson ±1σ interval.
CALIBRATION_COLUMNS = (
    "p_lo",
    "p_hi",
    "n",
    "n_detected",
    "mean_predicted",
    "observed_fraction",
    "observed_err",
    "observed_lo",
    "observed_hi",
)


def monotone_constraints(monotone: Mapping[str, int] | None = None) -> dict[str, int]:
    """feature -> constraint (+1, −1, 0) for every feature: :data:`DEFAULT_MONOTONE` updated
    with ``monotone``. ConfigError naming an unknown feature or a value not in {−1, 0, 1}."""
    out = {name: DEFAULT_MONOTONE.get(name, 0) for name in SELECTION_FEATURES}
    for name, value in (monotone or {}).items():
        if name not in out:
            raise ConfigError(
                f"monotone: {name!r} is not a feature of the selection function; use one of "
                f"{list(SELECTION_FEATURES)}"
            )
        if value not in (-1, 0, 1):
            raise ConfigError(
                f"monotone.{name}: {value!r}; use +1 (increasing), -1 (decreasing) or 0 (free)"
            )
        out[name] = int(value)
    return out


def selection_model(monotone: Mapping[str, int] | None = None, seed: int = 0):
    """An unfitted HistGradientBoostingClassifier with :data:`HGB_PARAMS` and the monotone
    constraints of :func:`monotone_constraints` (in :data:`SELECTION_FEATURES` order)."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    constraints = monotone_constraints(monotone)
    return HistGradientBoostingClassifier(
        **HGB_PARAMS,
        monotonic_cst=[constraints[name] for name in SELECTION_FEATURES],
        random_state=seed,
    )


def clean_injections(
    injections: pd.DataFrame, detected_column: str
) -> tuple[np.ndarray, np.ndarray, int]:
    """(X, detected, n_dropped): the injections with every feature finite.

    X: (N, 5) float64 in :data:`SELECTION_FEATURES` order; detected: (N,) bool; n_dropped:
    rows left out for a NaN (or infinite) feature or a missing detection flag.
    InputFileError when a column is missing or fewer than two injections of either outcome
    remain.
    """
    missing = [c for c in (*SELECTION_FEATURES, detected_column) if c not in injections]
    if missing:
        raise InputFileError(
            f"the injections table has no column(s) {missing}; it needs {list(SELECTION_FEATURES)}"
            f" and the detection flag {detected_column!r} (the pooled artificial-test matches)"
        )
    features = injections[list(SELECTION_FEATURES)].to_numpy(float)
    flag = injections[detected_column]
    keep = np.isfinite(features).all(axis=1) & flag.notna().to_numpy()
    n_dropped = int((~keep).sum())
    if n_dropped:
        log.info(
            "%d of %d injections left out: a feature or the detection flag is missing",
            n_dropped,
            len(injections),
        )
    detected = flag.to_numpy()[keep].astype(bool)
    if not detected.size:
        raise InputFileError(
            f"the injections: none of {len(injections)} has every feature and "
            f"{detected_column}; a selection function needs injections"
        )
    return features[keep], detected, n_dropped


def _nodes(lo: float, hi: float, *, step: float | None = None, n: int | None = None) -> np.ndarray:
    """Evenly spaced nodes from lo to hi: every ≤ ``step`` or ``n`` of them; [lo] if lo == hi."""
    if not hi > lo:
        return np.array([lo])
    if step is not None:
        n = math.ceil((hi - lo) / step - 1e-9) + 1
    return np.linspace(lo, hi, max(int(n), 2))


def default_grid_axes(features: np.ndarray) -> dict[str, np.ndarray]:
    """feature -> (n_nodes,) float64 nodes of the default grid over (N, 5) ``features``.

    Age and mass: every ≤ 0.1 dex from the data's minimum to maximum (:data:`DEFAULT_GRID_STEP`);
    A_V: 7 nodes from min to max; r_h and background: 5 nodes between their 0.5 and 99.5 %
    quantiles (:data:`DEFAULT_GRID_NODES`, :data:`NUISANCE_QUANTILES`). With the default
    ranges (log t 6.6–10.1, log M 3.5–5.5): 36 × 21 × 7 × 5 × 5 = 132,300 nodes.
    """
    axes = {}
    for i, name in enumerate(SELECTION_FEATURES):
        q_lo, q_hi = NUISANCE_QUANTILES.get(name, (0.0, 1.0))
        lo, hi = (float(v) for v in np.quantile(features[:, i], [q_lo, q_hi]))
        axes[name] = _nodes(
            lo, hi, step=DEFAULT_GRID_STEP.get(name), n=DEFAULT_GRID_NODES.get(name)
        )
    return axes


def check_grid_axes(
    grid_axes: Mapping[str, np.ndarray] | None, features: np.ndarray
) -> dict[str, np.ndarray]:
    """:func:`default_grid_axes` with the axes ``grid_axes`` gives replaced, checked.

    ConfigError naming the feature when one is unknown, not 1-D, not finite or not strictly
    increasing, or when the grid would exceed :data:`MAX_GRID_ROWS` rows.
    """
    axes = default_grid_axes(features)
    for name, nodes in (grid_axes or {}).items():
        if name not in axes:
            raise ConfigError(
                f"grid_axes: {name!r} is not a feature of the selection function; use one of "
                f"{list(SELECTION_FEATURES)}"
            )
        nodes = np.asarray(nodes, float)
        if nodes.ndim != 1 or nodes.size == 0 or not np.isfinite(nodes).all():
            raise ConfigError(f"grid_axes.{name}: expected a 1-D array of finite values")
        if np.any(np.diff(nodes) <= 0):
            raise ConfigError(f"grid_axes.{name}: nodes must be strictly increasing")
        axes[name] = nodes
    n_rows = math.prod(len(a) for a in axes.values())
    if n_rows > MAX_GRID_ROWS:
        raise ConfigError(
            f"grid_axes: {n_rows} grid nodes (more than {MAX_GRID_ROWS}); use fewer nodes"
        )
    return axes


def grid_points(axes: Mapping[str, np.ndarray]) -> np.ndarray:
    """(prod(n_nodes), 5) float64: every node of the grid, the last feature varying fastest."""
    mesh = np.meshgrid(*(np.asarray(axes[n], float) for n in SELECTION_FEATURES), indexing="ij")
    return np.stack([m.ravel() for m in mesh], axis=1)


def calibration_table(
    predicted: np.ndarray, detected: np.ndarray, n_bins: int = CALIBRATION_BINS
) -> pd.DataFrame:
    """Reliability table: one row per equal-width bin of predicted probability.

    predicted: (N,) probabilities in [0, 1] (cross-validated); detected: (N,) bool. Columns
    :data:`CALIBRATION_COLUMNS`; a bin without injections has NaN statistics. The interval is
    the Wilson ±1σ interval of :func:`~starclusters.stats.binomial_recall`.
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = bin_index(predicted, edges)  # the last bin closed: p = 1 counts
    n = np.bincount(index, minlength=n_bins)
    k = np.bincount(index, weights=detected.astype(float), minlength=n_bins).astype(np.int64)
    total = np.bincount(index, weights=predicted, minlength=n_bins)
    stats = binomial_recall(k, n)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, total / n, np.nan)
    return pd.DataFrame(
        {
            "p_lo": edges[:-1],
            "p_hi": edges[1:],
            "n": n.astype(np.int64),
            "n_detected": k,
            "mean_predicted": mean,
            "observed_fraction": stats["recall"],
            "observed_err": stats["recall_err"],
            "observed_lo": stats["recall_lo"],
            "observed_hi": stats["recall_hi"],
        }
    )


def fit_selection(
    injections: pd.DataFrame,
    detected_column: str,
    *,
    grid_axes: Mapping[str, np.ndarray] | None = None,
    monotone: Mapping[str, int] | None = None,
    seed: int = 0,
    n_folds: int = 5,
    n_threads: int | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Fit P(detected | features) to the injections: (grid_table, calibration_table, meta).

    injections: one row per artificial cluster with the columns of :data:`SELECTION_FEATURES`
    (units in the module docstring) and the bool ``detected_column`` (e.g. ``recovered_3px``);
    rows with a NaN feature are left out (counted in meta). grid_axes: feature -> (n,)
    nodes replacing those of :func:`default_grid_axes`; monotone: feature -> +1/−1/0
    replacing :data:`DEFAULT_MONOTONE`; seed: of the folds and the model's early-stopping
    split; n_folds: folds of the cross-validated calibration; n_threads: OpenMP threads of
    the boosting (default: all cores; give the job's share — threads spin-wait, and two on a
    busy 2-core machine made a 3k-row fit 20–50× slower than one).

    Model: :func:`selection_model` (monotone HistGradientBoostingClassifier, log loss), no
    post-hoc calibration: on simulated injections :class:`~sklearn.calibration.CalibratedClassifierCV`
    (sigmoid) without its 5-model ensemble did not improve held-out calibration at 2k–3k rows
    (expected calibration error 0.014 → 0.018, log loss unchanged), and its ensembled form
    helped no more than averaging 5 models (bagging) does, at 5× the cost.

    grid_table: every node of the grid (last feature fastest), the features (float64) and
    p_detected (float32) of the model fitted on all rows. calibration_table:
    :func:`calibration_table` of the n_folds-fold stratified cross-validated predictions.
    meta (JSON-able; write it with the table): detected_column, features, units,
    n_injections, n_detected, n_dropped_nan, base_rate, medians and ranges ([min, max]) of
    the features, monotonic_cst, model (its parameters and n_iter), n_folds, seed, the
    Brier score and log loss of the CV predictions (brier_cv, log_loss_cv) and of a
    constant base-rate model scored the same way (brier_base_rate, log_loss_base_rate),
    calibration ("none") and sklearn_version.
    """
    import sklearn
    from sklearn.dummy import DummyClassifier
    from sklearn.metrics import brier_score_loss, log_loss
    from sklearn.model_selection import StratifiedKFold, cross_val_predict
    from threadpoolctl import threadpool_limits

    features, detected, n_dropped = clean_injections(injections, detected_column)
    n_minority = int(min(detected.sum(), (~detected).sum()))
    axes = check_grid_axes(grid_axes, features)
    constraints = monotone_constraints(monotone)
    # the reference: the base rate of each training fold, scored on its held-out fold
    constant = DummyClassifier(strategy="prior")
    if n_minority < n_folds:
        # too few of one outcome to fit or cross-validate: the base rate everywhere, said
        log.warning(
            "only %d %s injections (fewer than the %d folds): the selection function is the "
            "base rate %.3f everywhere; inject more mocks (artificial.n_layers)",
            n_minority,
            "detected" if detected.mean() < 0.5 else "missed",
            n_folds,
            detected.mean(),
        )
        n_folds = 0
        model = constant
        folds = None
    else:
        folds = StratifiedKFold(n_splits=n_folds, shuffle=True, random_state=seed)
        model = selection_model(constraints, seed)
    # limits the OpenMP runtime that selection_model's import of scikit-learn loaded
    with threadpool_limits(n_threads, user_api="openmp"):
        if folds is None:
            predicted = base = np.full(detected.size, detected.mean())
        else:
            cv = {"cv": folds, "method": "predict_proba"}
            predicted = cross_val_predict(model, features, detected, **cv)[:, 1]
            base = cross_val_predict(constant, features, detected, **cv)[:, 1]
        calibration = calibration_table(predicted, detected)

        model.fit(features, detected)
        points = grid_points(axes)
        grid = pd.DataFrame(points, columns=list(SELECTION_FEATURES))
        # predict_proba has one column when the injections hold one outcome only
        proba = model.predict_proba(points)
        p = proba[:, 1] if proba.shape[1] == 2 else np.full(len(points), float(detected.mean()))
        grid["p_detected"] = p.astype(np.float32)

    scores = {
        "brier_cv": float(brier_score_loss(detected, predicted)),
        "log_loss_cv": float(log_loss(detected, predicted, labels=[False, True])),
        "brier_base_rate": float(brier_score_loss(detected, base)),
        "log_loss_base_rate": float(log_loss(detected, base, labels=[False, True])),
    }
    meta = {
        "what": "P(detected | features) of the artificial-cluster test on a regular grid "
        "(monotone gradient boosting; interpolate with SelectionFunction)",
        "detected_column": detected_column,
        "features": list(SELECTION_FEATURES),
        "units": dict(FEATURE_UNITS),
        "n_injections": int(detected.size),
        "n_detected": int(detected.sum()),
        "n_dropped_nan": n_dropped,
        "base_rate": float(detected.mean()),
        "medians": {
            n: float(v) for n, v in zip(SELECTION_FEATURES, np.median(features, 0), strict=True)
        },
        "ranges": {
            n: [float(lo), float(hi)]
            for n, lo, hi in zip(SELECTION_FEATURES, features.min(0), features.max(0), strict=True)
        },
        "grid_nodes": {n: len(a) for n, a in axes.items()},
        "monotonic_cst": constraints,
        "model": {"estimator": "HistGradientBoostingClassifier", **HGB_PARAMS}
        if folds is not None
        else {"estimator": "constant base rate (too few detected or missed injections)"},
        "n_iter": int(getattr(model, "n_iter_", 0)),
        "calibration": "none",
        "n_folds": int(n_folds),
        "seed": int(seed),
        **scores,
        "sklearn_version": sklearn.__version__,
    }
    log.info(
        "selection function of %d injections (%d detected, %s): %d iterations; CV Brier %.4f "
        "(base rate %.4f), log loss %.4f (%.4f); grid of %d nodes",
        meta["n_injections"],
        meta["n_detected"],
        detected_column,
        meta["n_iter"],
        scores["brier_cv"],
        scores["brier_base_rate"],
        scores["log_loss_cv"],
        scores["log_loss_base_rate"],
        len(grid),
    )
    return grid, calibration, meta


class SelectionFunction:
    """P(detected | features), interpolated linearly in the gridded table of :func:`fit_selection`.

    axes: feature -> (n,) strictly increasing nodes; p_detected: array of shape
    (n_log_age_yr, n_log_mass_msun, n_av_mag, n_log_rh_arcsec, n_log_background_counts_s);
    medians: feature -> the value a query that omits it uses (the injections' medians);
    meta: the table's metadata.

    Queries outside the grid are **clipped** onto its edge in each feature: P at log M = 6
    is P at the grid's highest mass (a constant extrapolation, as the model's own beyond its
    data; ±inf included). A feature with a single node is ignored. NaN in a query gives NaN.
    """

    def __init__(
        self,
        axes: Mapping[str, np.ndarray],
        p_detected: np.ndarray,
        medians: Mapping[str, float],
        meta: Mapping | None = None,
    ) -> None:
        from scipy.interpolate import RegularGridInterpolator

        self.axes = {name: np.asarray(axes[name], float) for name in SELECTION_FEATURES}
        self.values = np.asarray(p_detected, float)
        self.medians = {name: float(medians[name]) for name in SELECTION_FEATURES}
        self.meta = dict(meta or {})
        # linear interpolation needs two nodes; a single-node axis is a constant
        self._varying = [i for i, n in enumerate(SELECTION_FEATURES) if len(self.axes[n]) > 1]
        squeezed = self.values.reshape([len(self.axes[n]) for n in SELECTION_FEATURES])
        squeezed = squeezed.reshape([squeezed.shape[i] for i in self._varying])
        self._interpolator = (
            RegularGridInterpolator(
                [self.axes[SELECTION_FEATURES[i]] for i in self._varying], squeezed
            )
            if self._varying
            else None
        )

    @property
    def ranges(self) -> dict[str, tuple[float, float]]:
        """feature -> (lowest, highest) node: the range queries are clipped to."""
        return {name: (float(a[0]), float(a[-1])) for name, a in self.axes.items()}

    @classmethod
    def from_table(
        cls, table: pd.DataFrame, source: str | os.PathLike | None = None
    ) -> SelectionFunction:
        """From a grid table (:func:`fit_selection`'s; ``table.attrs['meta']`` its metadata).

        The rows may come in any order but must cover the full Cartesian grid of their
        feature values once each. Medians from meta; a feature without one defaults to the
        middle of its axis. source: the file, named in errors. InputFileError when a column
        is missing, p_detected is not finite in [0, 1] or the rows are not a full grid.
        """
        where = f"{source}: " if source is not None else "the selection table: "
        remedy = (
            "rebuild it with fit_selection (the workflow's selection rule), which writes "
            "every node of a regular grid"
        )
        missing = [c for c in (*SELECTION_FEATURES, "p_detected") if c not in table]
        if missing:
            raise InputFileError(
                f"{where}no column(s) {missing}; a selection table has {list(SELECTION_FEATURES)}"
                f" and p_detected; {remedy}"
            )
        p = table["p_detected"].to_numpy(float)
        if len(table) == 0 or not (np.isfinite(p).all() and p.min() >= 0 and p.max() <= 1):
            raise InputFileError(f"{where}p_detected is empty or not finite in [0, 1]; {remedy}")
        ordered = table.sort_values(list(SELECTION_FEATURES), kind="stable")
        axes = {name: np.unique(ordered[name].to_numpy(float)) for name in SELECTION_FEATURES}
        shape = tuple(len(a) for a in axes.values())
        duplicated = ordered.duplicated(list(SELECTION_FEATURES)).any()
        finite = all(np.isfinite(a).all() for a in axes.values())
        if duplicated or not finite or math.prod(shape) != len(table):
            raise InputFileError(
                f"{where}{len(table)} rows are not a full grid of {' × '.join(map(str, shape))} "
                f"distinct finite nodes; {remedy}"
            )
        meta = table.attrs.get("meta", {}) or {}
        stored = meta.get("medians", {}) or {}
        medians = {
            name: float(stored.get(name, axes[name][len(axes[name]) // 2]))
            for name in SELECTION_FEATURES
        }
        values = ordered["p_detected"].to_numpy(float).reshape(shape)
        return cls(axes, values, medians, meta)

    @classmethod
    def read(cls, path: str | os.PathLike) -> SelectionFunction:
        """From a grid table written with :func:`starclusters.io.write_table`; errors name ``path``."""
        return cls.from_table(read_table(path), source=Path(path))

    def _arrays(self, values: Mapping[str, object]) -> list[np.ndarray]:
        """The five features broadcast together, omitted ones (None) at their medians."""
        arrays = [
            np.asarray(self.medians[n] if values[n] is None else values[n], float)
            for n in SELECTION_FEATURES
        ]
        return list(np.broadcast_arrays(*arrays))

    def _evaluate(self, arrays: list[np.ndarray]) -> np.ndarray:
        shape = arrays[0].shape
        if self._interpolator is None:
            return np.full(shape, float(self.values.ravel()[0]))
        columns = []
        for i in self._varying:
            lo, hi = self.ranges[SELECTION_FEATURES[i]]
            columns.append(np.clip(arrays[i], lo, hi).ravel())
        points = np.stack(columns, axis=1)
        out = np.full(points.shape[0], np.nan)
        # ±inf are clipped onto the edges like any value outside; NaN stays NaN
        known = ~np.any([np.isnan(a).ravel() for a in arrays], axis=0)
        out[known] = self._interpolator(points[known])
        return out.reshape(shape)

    def __call__(
        self,
        log_age_yr,
        log_mass_msun,
        av_mag=None,
        log_rh_arcsec=None,
        log_background_counts_s=None,
    ) -> np.ndarray:
        """P(detected) at the given features (units in the module docstring).

        Arrays broadcast together; the result has their broadcast shape (0-d for scalars),
        float64 in [0, 1]. An omitted (None) nuisance is its median; values outside the grid
        are clipped to its range (class docstring).
        """
        arrays = self._arrays(
            {
                "log_age_yr": log_age_yr,
                "log_mass_msun": log_mass_msun,
                "av_mag": av_mag,
                "log_rh_arcsec": log_rh_arcsec,
                "log_background_counts_s": log_background_counts_s,
            }
        )
        return self._evaluate(arrays)

    def log_mass_at(
        self,
        p,
        log_age_yr,
        av_mag=None,
        log_rh_arcsec=None,
        log_background_counts_s=None,
    ) -> np.ndarray:
        """log10(M / M_sun) at which P(detected) first reaches ``p`` going up the mass axis.

        p: probability in (0, 1]; the arguments broadcast together as in :meth:`__call__`,
        the result has their shape. Found by linear interpolation between the mass nodes,
        exact for the interpolated function. NaN where P stays below ``p`` over the whole
        mass axis, and where P ≥ p already at its lowest node (the crossing lies below the
        grid: only an upper limit is known), and for NaN inputs.
        """
        p_arr = np.asarray(p, float)
        if np.any((p_arr <= 0) | (p_arr > 1)):
            raise ValueError(f"p: probabilities in (0, 1] expected, got {p!r}")
        arrays = self._arrays(
            {
                "log_age_yr": log_age_yr,
                "log_mass_msun": 0.0,  # replaced by the mass axis
                "av_mag": av_mag,
                "log_rh_arcsec": log_rh_arcsec,
                "log_background_counts_s": log_background_counts_s,
            }
        )
        p_arr, *arrays = np.broadcast_arrays(p_arr, *arrays)
        masses = self.axes["log_mass_msun"]
        if masses.size < 2:
            return np.full(p_arr.shape, np.nan)
        # P at every mass node: (..., n_mass)
        expanded = [a[..., None] for a in arrays]
        expanded[1] = masses
        curve = self._evaluate(list(np.broadcast_arrays(*expanded)))
        above = curve >= p_arr[..., None]
        first = np.argmax(above, axis=-1)
        found = above.any(axis=-1) & (first > 0)
        upper = np.clip(first, 1, masses.size - 1)
        p_hi = np.take_along_axis(curve, upper[..., None], -1)[..., 0]
        p_lo = np.take_along_axis(curve, upper[..., None] - 1, -1)[..., 0]
        with np.errstate(invalid="ignore", divide="ignore"):
            fraction = (p_arr - p_lo) / (p_hi - p_lo)  # p_lo < p ≤ p_hi where found
        mass = masses[upper - 1] + fraction * (masses[upper] - masses[upper - 1])
        return np.where(found, mass, np.nan)
