"""The injected mocks against what the search found (thesis §4.2.3, Fig. 4.2).

The thesis "cross-matched the potential objects with the inserted mock cluster catalog,
using a maximum distance of 3 pixels" and, for reference, 6 pixels. Here every mock is
matched one-to-one, closest pair first (:func:`starclusters.detect.matching.match_positions`):

* to the candidates (peaks above the class and visibility thresholds) within each radius
  — ``recovered_<r>px``, the recall of Fig. 4.3;
* to all peaks within the largest radius — the nearest peak's class and visibility, the
  points of Fig. 4.2 (whatever their class and visibility).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from starclusters.detect.catalog import DERIVED_COLUMNS
from starclusters.detect.matching import match_positions

#: Columns of the nearest peak copied to the matches (prefixed ``peak_``).
PEAK_COLUMNS = ("class", "class_smoothed", "visibility")


def radius_label(radius_px: float) -> str:
    """Column suffix of a match radius: 3.0 -> "3px", 2.5 -> "2.5px"."""
    return f"{float(radius_px):g}px"


def _take(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[index] as float64, NaN where index is −1."""
    out = np.full(len(index), np.nan)
    hit = index >= 0
    out[hit] = np.asarray(values, float)[index[hit]]
    return out


def _ids(table: pd.DataFrame, index: np.ndarray) -> np.ndarray:
    ids = np.full(len(index), -1, np.int64)
    hit = index >= 0
    ids[hit] = table["peak_id"].to_numpy(np.int64)[index[hit]]
    return ids


def match_artificial(
    truth: pd.DataFrame,
    candidates: pd.DataFrame,
    peaks: pd.DataFrame,
    radii_px: Sequence[float] = (3.0, 6.0),
) -> pd.DataFrame:
    """Every injected mock with its matches.

    truth: x_px, y_px (0-based mosaic pixels) and the true parameters (log_age_yr,
    log_mass_msun, av_mag, rh_arcsec, visibility, …); candidates, peaks: catalogs of
    :func:`starclusters.detect.candidates_stage.make_catalog` (x, y, peak_id and the
    derived columns); radii_px: match radii, px, the first the primary one.

    Adds, per radius r: recovered_<r>px (bool), candidate_id_<r>px (peak_id or −1),
    candidate_distance_<r>px (px, NaN if none). derived_<column> (and
    derived_log_visibility) of the candidate matched at the primary radius, else at the
    next larger radius that matched; derived_radius_px says which (NaN if none). The
    nearest peak within the largest radius (any class and visibility): peak_id,
    peak_distance_px, peak_class, peak_class_smoothed, peak_visibility.
    Also log_rh_arcsec and log_visibility (true) when missing.
    """
    radii = [float(r) for r in radii_px]
    if not radii or any(not r > 0 for r in radii):
        raise ValueError(f"match radii must be positive, got {radii}")
    out = truth.reset_index(drop=True).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        if "log_rh_arcsec" not in out:
            out["log_rh_arcsec"] = np.log10(out["rh_arcsec"].to_numpy(float))
        out["log_visibility"] = np.log10(out["visibility"].to_numpy(float))
    xy = out[["x_px", "y_px"]].to_numpy(float)
    cand_xy = candidates[["x", "y"]].to_numpy(float)
    indices = {}
    for r in radii:
        index, distance = match_positions(xy, cand_xy, r)
        label = radius_label(r)
        out[f"recovered_{label}"] = index >= 0
        out[f"candidate_id_{label}"] = _ids(candidates, index)
        out[f"candidate_distance_{label}"] = distance
        indices[r] = index
    # derived values: the primary radius first, then the others from small to large
    order = [radii[0], *sorted(r for r in radii[1:])]
    derived = candidates.reindex(columns=list(DERIVED_COLUMNS)).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        derived["log_visibility"] = np.log10(derived["visibility"])
    chosen = np.full(len(out), -1, np.int64)
    chosen_radius = np.full(len(out), np.nan)
    for r in order:
        free = (chosen < 0) & (indices[r] >= 0)
        chosen[free] = indices[r][free]
        chosen_radius[free] = r
    for column in derived.columns:
        out[f"derived_{column}"] = _take(derived[column].to_numpy(float), chosen)
    out["derived_radius_px"] = chosen_radius
    index, distance = match_positions(xy, peaks[["x", "y"]].to_numpy(float), max(radii))
    out["peak_id"] = _ids(peaks, index)
    out["peak_distance_px"] = distance
    for column in PEAK_COLUMNS:
        values = peaks[column].to_numpy(float) if column in peaks else np.full(len(peaks), np.nan)
        out[f"peak_{column}"] = _take(values, index)
    return out
