"""Statistics of a cluster population (thesis §4.3): age groups, sliding-window counts with
Poisson bands, running means, and the count peak of a group across the spiral arms.

All windows are sliding: the value at a centre c uses the objects with c − w/2 ≤ x <
c + w/2 (the thesis' "binning window", Figs. 4.7 and 4.8), so neighbouring points are
correlated when the step is below the width.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from astropy.stats import poisson_conf_interval

#: The thesis' age cuts across the arms (Fig. 4.7a), log10(t/yr).
ARM_AGE_EDGES_LOG_YR = (7.0, 7.7)
#: The thesis' young and old samples against galactocentric distance (Fig. 4.8), log10(t/yr).
YOUNG_MAX_LOG_AGE_YR = 7.5
OLD_MIN_LOG_AGE_YR = 8.5


@dataclass(frozen=True)
class AgeGroup:
    """Clusters with lo ≤ log10(t/yr) < hi (either end may be infinite)."""

    lo: float
    hi: float

    @property
    def label(self) -> str:
        """Plot label, e.g. ``log t < 7``, ``7 ≤ log t < 7.7``, ``log t ≥ 7.7``."""
        if math.isinf(self.lo):
            return f"log t < {self.hi:g}"
        if math.isinf(self.hi):
            return f"log t ≥ {self.lo:g}"
        return f"{self.lo:g} ≤ log t < {self.hi:g}"

    def mask(self, log_age_yr) -> np.ndarray:
        """(n,) bool: which of the ages fall in the group (NaN never does)."""
        t = np.asarray(log_age_yr, float)
        return (t >= self.lo) & (t < self.hi)


def age_groups(edges_log_yr: Sequence[float]) -> list[AgeGroup]:
    """The len(edges) + 1 groups split at the ascending ``edges_log_yr`` (log10 yr):
    (−∞, e0), [e0, e1), …, [e_last, ∞)."""
    edges = [float(e) for e in edges_log_yr]
    if any(b <= a for a, b in zip(edges[:-1], edges[1:], strict=True)):
        raise ValueError(f"age group edges must increase, got {edges}")
    bounds = [-math.inf, *edges, math.inf]
    return [AgeGroup(a, b) for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def window_centres(lo: float, hi: float, step: float) -> np.ndarray:
    """Centres lo, lo + step, …, up to hi (inclusive within rounding), same unit as the inputs."""
    if not step > 0 or not hi >= lo:
        raise ValueError(f"need step > 0 and hi >= lo, got lo={lo}, hi={hi}, step={step}")
    return lo + step * np.arange(int(math.floor((hi - lo) / step + 1e-9)) + 1)


def sliding_counts(values, centres, width: float) -> np.ndarray:
    """(len(centres),) int: how many finite ``values`` lie in [c − width/2, c + width/2)."""
    x = np.sort(np.asarray(values, float)[np.isfinite(values)])
    c = np.asarray(centres, float)
    return np.searchsorted(x, c + 0.5 * width, "left") - np.searchsorted(x, c - 0.5 * width, "left")


def poisson_band(counts, interval: str = "frequentist-confidence") -> tuple[np.ndarray, np.ndarray]:
    """(lower, upper) 1σ (68.27 %) Poisson limits of observed counts (any shape).

    The default is Garwood's exact interval (astropy ``poisson_conf_interval``): for n = 0
    it is [0, 1.84], for large n close to n ± √n.
    """
    n = np.asarray(counts)
    lower, upper = poisson_conf_interval(n.ravel(), interval=interval)
    return lower.reshape(n.shape), upper.reshape(n.shape)


def running_statistics(x, y, centres, width: float, min_count: int = 2) -> pd.DataFrame:
    """Mean and standard deviation of ``y`` in sliding windows of ``x`` (thesis Fig. 4.8).

    x, y: (n,) (pairs with a NaN are left out); centres: (k,) window centres, width in the
    unit of x. Returns a table with centre, n, mean, std (sample, ddof = 1); mean and std
    are NaN where a window holds fewer than ``min_count`` points.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    c = np.asarray(centres, float)
    inside = (x[None, :] >= c[:, None] - 0.5 * width) & (x[None, :] < c[:, None] + 0.5 * width)
    n = inside.sum(axis=1)
    total = (inside * y).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = total / n
        sq = (inside * (y[None, :] - mean[:, None]) ** 2).sum(axis=1)
        std = np.sqrt(sq / (n - 1))
    enough = n >= max(min_count, 1)
    return pd.DataFrame(
        {
            "centre": c,
            "n": n,
            "mean": np.where(enough, mean, np.nan),
            "std": np.where(enough & (n > 1), std, np.nan),
        }
    )


def count_peak(values, centres, width: float) -> float:
    """Centre of the sliding window holding the most ``values`` (same unit; NaN if none).

    Ties: the middle of the first run of consecutive centres that share the maximum
    (a flat top between two points is its midpoint).
    """
    counts = sliding_counts(values, centres, width)
    if counts.size == 0 or counts.max() == 0:
        return math.nan
    top = np.flatnonzero(counts == counts.max())
    run = top[: np.argmax(np.diff(np.append(top, top[-1] + 2)) > 1) + 1]
    return float(np.mean(np.asarray(centres, float)[run]))


def count_peak_with_error(
    values, centres, width: float, rng: np.random.Generator, n_boot: int = 200
) -> tuple[float, float]:
    """(peak, error): :func:`count_peak` and the standard deviation of the peak over
    ``n_boot`` bootstrap resamples of ``values`` (NaN with fewer than 2 values)."""
    x = np.asarray(values, float)
    x = x[np.isfinite(x)]
    peak = count_peak(x, centres, width)
    if x.size < 2:
        return peak, math.nan
    boots = [count_peak(rng.choice(x, x.size), centres, width) for _ in range(n_boot)]
    return peak, float(np.nanstd(boots, ddof=1))


def group_count_profiles(
    distance_kpc, log_age_yr, groups: Sequence[AgeGroup], centres_kpc, width_kpc: float
) -> pd.DataFrame:
    """Sliding-window counts of each age group against a distance (thesis Fig. 4.7).

    Returns one row per (group, centre): group (label), centre_kpc, count, lower, upper
    (1σ Poisson band), per_kpc (count / width).
    """
    rows = []
    for group in groups:
        mask = group.mask(log_age_yr)
        counts = sliding_counts(np.asarray(distance_kpc, float)[mask], centres_kpc, width_kpc)
        lower, upper = poisson_band(counts)
        rows.append(
            pd.DataFrame(
                {
                    "group": group.label,
                    "centre_kpc": np.asarray(centres_kpc, float),
                    "count": counts,
                    "lower": lower,
                    "upper": upper,
                    "per_kpc": counts / width_kpc,
                }
            )
        )
    columns = ["group", "centre_kpc", "count", "lower", "upper", "per_kpc"]
    return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame(columns=columns)
