"""Cross-matching detections with known positions (thesis §4.2.3: ≤ 3 px, and ≤ 6 px).

:func:`match_positions` is the one positional match of the project: the synthetic
galaxy's truth against its candidates here, the artificial-cluster test later.
:func:`match_truth` and :func:`match_summary` score a candidate catalog against the
synthetic galaxy's truth.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from scipy.spatial import cKDTree

from starclusters.detect.catalog import DERIVED_COLUMNS
from starclusters.stats import error_statistics

#: The thesis' matching radius, px (§4.2.3).
MATCH_RADIUS_PX = 3.0
#: Parameters compared between matched truth and derived values: truth column -> derived column.
COMPARED = {
    "log_age_yr": "log_age_yr",
    "log_mass_msun": "log_mass_msun",
    "av_mag": "av_mag",
    "log_rh_arcsec": "log_rh_arcsec",
    "log_visibility": "log_visibility",
    "galactocentric_radius_kpc": "galactocentric_kpc",
}
#: Units of the errors in :data:`COMPARED`.
ERROR_UNITS = {
    "log_age_yr": "dex",
    "log_mass_msun": "dex",
    "av_mag": "mag",
    "log_rh_arcsec": "dex",
    "log_visibility": "dex",
    "galactocentric_radius_kpc": "kpc",
}


def match_positions(xy_a, xy_b, max_px: float) -> tuple[np.ndarray, np.ndarray]:
    """One-to-one match of points ``xy_a`` (N, 2) to ``xy_b`` (M, 2) within ``max_px``.

    Pairs are taken closest first: the closest pair of all is matched, both points are
    removed, and so on, until no pair within max_px (inclusive) is left; equal
    distances go to the lower index of a, then of b. Coordinates in pixels (any common
    frame); NaN positions never match.

    Returns (index, distance): index (N,) int64 into xy_b, −1 where unmatched; distance
    (N,) float64 px, NaN where unmatched.
    """
    a = np.asarray(xy_a, float).reshape(-1, 2)
    b = np.asarray(xy_b, float).reshape(-1, 2)
    if not max_px >= 0:
        raise ValueError(f"max_px must be >= 0, got {max_px}")
    index = np.full(len(a), -1, np.int64)
    distance = np.full(len(a), np.nan)
    ok_a = np.flatnonzero(np.isfinite(a).all(axis=1))
    ok_b = np.flatnonzero(np.isfinite(b).all(axis=1))
    if len(ok_a) == 0 or len(ok_b) == 0:
        return index, distance
    # every pair within max_px (distance 0 included: the ndarray output keeps it)
    pairs = cKDTree(a[ok_a]).sparse_distance_matrix(cKDTree(b[ok_b]), max_px, output_type="ndarray")
    ia, ib, dist = pairs["i"].astype(np.int64), pairs["j"].astype(np.int64), pairs["v"]
    order = np.lexsort((ib, ia, dist))
    taken_a = np.zeros(len(ok_a), bool)
    taken_b = np.zeros(len(ok_b), bool)
    for k in order:
        i, j = ia[k], ib[k]
        if taken_a[i] or taken_b[j]:
            continue
        taken_a[i] = taken_b[j] = True
        index[ok_a[i]] = ok_b[j]
        distance[ok_a[i]] = dist[k]
    return index, distance


def _ids(found: pd.DataFrame, index: np.ndarray) -> np.ndarray:
    """peak_id of ``found`` at ``index`` (N,) int64, −1 where index is −1."""
    ids = np.full(len(index), -1, np.int64)
    hit = index >= 0
    ids[hit] = found["peak_id"].to_numpy(np.int64)[index[hit]]
    return ids


def _derived(truth: pd.DataFrame, found: pd.DataFrame, index: np.ndarray, prefix: str) -> dict:
    """Columns of ``found`` at ``index`` (−1 -> NaN), named ``prefix + column``."""
    hit = index >= 0
    out = {}
    for column in found.columns:
        values = np.full(len(truth), np.nan)
        values[hit] = found[column].to_numpy(float)[index[hit]]
        out[prefix + column] = values
    return out


def match_truth(
    truth: pd.DataFrame,
    candidates: pd.DataFrame,
    peaks: pd.DataFrame,
    max_px: float = MATCH_RADIUS_PX,
) -> pd.DataFrame:
    """The truth table with its matches among the candidates and among all peaks.

    truth: x_px, y_px on the maps' grid (0-based) and the true parameters (log_age_yr,
    log_mass_msun, av_mag, rh_arcsec, visibility, galactocentric_radius_kpc);
    candidates, peaks: catalogs with x, y, peak_id and the derived columns. Each is
    matched one-to-one within max_px (:func:`match_positions`).

    Adds: log_rh_arcsec and log_visibility (true); detected (matched to a candidate),
    candidate_id (its peak_id, −1 if none), candidate_distance_px; peak_id,
    peak_distance_px (the match among all peaks, whatever their class and visibility);
    derived_<column> of the matched candidate, or else of the matched peak, for class,
    visibility, log_age_yr, log_mass_msun, av_mag, log_rh_arcsec, log_visibility,
    rh_pc, log_density_msun_pc3, galactocentric_kpc.
    """
    out = truth.reset_index(drop=True).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        out["log_rh_arcsec"] = np.log10(out["rh_arcsec"].to_numpy(float))
        out["log_visibility"] = np.log10(out["visibility"].to_numpy(float))
    xy = out[["x_px", "y_px"]].to_numpy(float)
    c_index, c_dist = match_positions(xy, candidates[["x", "y"]].to_numpy(float), max_px)
    p_index, p_dist = match_positions(xy, peaks[["x", "y"]].to_numpy(float), max_px)
    out["detected"] = c_index >= 0
    out["candidate_id"] = _ids(candidates, c_index)
    out["candidate_distance_px"] = c_dist
    out["peak_id"] = _ids(peaks, p_index)
    out["peak_distance_px"] = p_dist
    columns = list(DERIVED_COLUMNS)

    def derived_table(found):
        table = found.reindex(columns=columns).astype(float)
        with np.errstate(divide="ignore", invalid="ignore"):
            table["log_visibility"] = np.log10(table["visibility"])
        return table

    from_candidates = _derived(out, derived_table(candidates), c_index, "derived_")
    from_peaks = _derived(out, derived_table(peaks), p_index, "derived_")
    for name, values in from_candidates.items():
        out[name] = np.where(c_index >= 0, values, from_peaks[name])
    return out


def precision_recall(
    truth_visibility,
    detected,
    candidate_visibility,
    candidate_matched,
    bins: Sequence[float],
) -> pd.DataFrame:
    """Recall per bin of true visibility and precision per bin of derived visibility.

    truth_visibility, detected: (N,) the truth's visibility and whether a candidate
    matched it; candidate_visibility, candidate_matched: (M,) each candidate's derived
    visibility and whether it matched a truth cluster; bins: visibility bin edges.
    Returns one row per bin: lo, hi, n_truth, n_detected, recall, n_candidates,
    n_matched, precision (NaN for empty bins).
    """
    edges = np.asarray(bins, float)
    tv = np.asarray(truth_visibility, float)
    det = np.asarray(detected, bool)
    cv = np.asarray(candidate_visibility, float)
    cm = np.asarray(candidate_matched, bool)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        in_t = (tv >= lo) & (tv < hi)
        in_c = (cv >= lo) & (cv < hi)
        n_t, n_d = int(in_t.sum()), int((in_t & det).sum())
        n_c, n_m = int(in_c.sum()), int((in_c & cm).sum())
        rows.append(
            (lo, hi, n_t, n_d, n_d / n_t if n_t else np.nan, n_c, n_m, n_m / n_c if n_c else np.nan)
        )
    return pd.DataFrame(
        rows,
        columns=[
            "lo",
            "hi",
            "n_truth",
            "n_detected",
            "recall",
            "n_candidates",
            "n_matched",
            "precision",
        ],
    )


def match_summary(matched: pd.DataFrame, n_candidates: int) -> dict:
    """Overall numbers of a :func:`match_truth` table: n_truth, n_detected, recall,
    n_candidates, precision (matched candidates / candidates), and per compared parameter
    (:data:`COMPARED`) the n, median bias and 95 % bound of |derived − true| of the
    detected clusters, with units."""
    detected = matched["detected"].to_numpy(bool)
    n_truth, n_detected = len(matched), int(detected.sum())
    summary = {
        "n_truth": n_truth,
        "n_detected": n_detected,
        "recall": n_detected / n_truth if n_truth else float("nan"),
        "n_candidates": int(n_candidates),
        "precision": n_detected / n_candidates if n_candidates else float("nan"),
        "errors": {},
    }
    for true_col, derived_col in COMPARED.items():
        if true_col not in matched:
            continue
        err = matched.loc[detected, f"derived_{derived_col}"].to_numpy(float) - matched.loc[
            detected, true_col
        ].to_numpy(float)
        stats = error_statistics(err)
        summary["errors"][true_col] = {
            "n": stats["n"],
            "median_bias": stats["median_bias"],
            "bound95_abs": stats["bound95_abs"],
            "unit": ERROR_UNITS[true_col],
        }
    return summary
