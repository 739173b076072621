"""Statistics shared by every scorer — parameter errors (the held-out mock test, the truth
match of a catalog, the scorecard), binomial recall with Wilson intervals and binning (the
artificial test, the selection function, the scorecard, the population analysis). Below the stage packages (numpy only), so that each of them
can use it without importing another stage.
"""

from __future__ import annotations

import numpy as np


def error_statistics(error) -> dict:
    """Median bias, 68 % half-width ((p84 − p16) / 2) and 95 % bound of |error| of the
    finite values of ``error`` (derived − true, any unit), with their number n; NaN
    statistics when there are none. The one definition of the project's parameter errors."""
    error = np.asarray(error, float)
    error = error[np.isfinite(error)]
    if not error.size:
        return {"n": 0, "median_bias": np.nan, "scatter68": np.nan, "bound95_abs": np.nan}
    p16, p84 = np.percentile(error, [16.0, 84.0])
    return {
        "n": int(error.size),
        "median_bias": float(np.median(error)),
        "scatter68": float((p84 - p16) / 2.0),
        "bound95_abs": float(np.percentile(np.abs(error), 95.0)),
    }


def binomial_recall(n_recovered, n_injected, z: float = 1.0) -> dict[str, np.ndarray]:
    """recall, recall_err (binomial σ), recall_lo, recall_hi (Wilson interval at ±z σ).

    Arrays (or scalars) of counts; NaN everywhere where nothing was injected.
    """
    k = np.asarray(n_recovered, float)
    n = np.asarray(n_injected, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = np.where(n > 0, k / n, np.nan)
        err = np.sqrt(p * (1.0 - p) / n)
        centre = (p + z * z / (2 * n)) / (1 + z * z / n)
        half = z / (1 + z * z / n) * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return {
        "recall": p,
        "recall_err": np.where(n > 0, err, np.nan),
        "recall_lo": np.where(n > 0, np.clip(centre - half, 0.0, 1.0), np.nan),
        "recall_hi": np.where(n > 0, np.clip(centre + half, 0.0, 1.0), np.nan),
    }


def bin_index(values, edges) -> np.ndarray:
    """(N,) int64 bin of each value in ``edges`` (see the module docstring), −1 outside."""
    v = np.asarray(values, float)
    e = np.asarray(edges, float)
    index = np.searchsorted(e, v, side="right") - 1
    index[v == e[-1]] = len(e) - 2
    index[~((v >= e[0]) & (v <= e[-1]))] = -1
    return index.astype(np.int64)
