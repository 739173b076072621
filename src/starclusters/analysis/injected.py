"""What the synthetic galaxy injected, in the terms the analysis measures (thesis §4.3.3).

The generator (:mod:`starclusters.synthetic.catalogs`) gives clusters
dN/dM ∝ M^β exp(−M/M*) and puts a share of the young ones on a dust lane, drifted by
(Ω(R) − Ω_p) t in azimuth: the age gradient across the arms. Its spec travels in the
metadata of ``mosaic/arms.parquet``. This module turns the spec into the numbers the
analysis should recover:

* the mass function's β and log10 M*, and the slope a pure power law fitted over the
  analysed mass range converges to
  (:func:`~starclusters.analysis.mass_function.equivalent_power_law_slope`);
* for each age group, the count peak of the *injected* offsets from the lane — the
  drift R sin(pitch) (Ω(R) − Ω_p) t of the clusters born on a lane, without the
  random spread, positive on the leading side (the side the disk rotates towards, the
  sign of ``arms.ArmGeometry``) — measured with the same sliding window as the
  catalog's counts, on a large draw of the generator's own placement recipe.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from types import SimpleNamespace

import numpy as np
import pandas as pd

from starclusters.analysis.mass_function import equivalent_power_law_slope
from starclusters.analysis.population import AgeGroup, count_peak
from starclusters.errors import InputFileError

#: Objects drawn per age group for the injected offsets (a peak to ~0.01 kpc).
INJECTED_DRAWS = 20_000


def spec_from_arms_meta(meta: Mapping):
    """(SyntheticGalaxySpec, distance_mpc) from the metadata of ``mosaic/arms.parquet``."""
    from starclusters.synthetic.spec import SyntheticGalaxySpec

    if "spec" not in meta or "geometry" not in meta:
        raise InputFileError("mosaic/arms.parquet has no spec metadata; rerun the mosaic stage")
    spec = SyntheticGalaxySpec.from_config(meta["spec"])
    return spec, float(meta["geometry"]["distance_mpc"])


def injected_mass_function(
    spec, log_mass_lo_msun: float, log_mass_hi_msun: float
) -> dict[str, float]:
    """The injected slope β and log10 M* (M☉), and the power-law slope equivalent to them
    over [max(lo, injected lo), min(hi, injected hi)] (log10 M☉)."""
    lo = max(log_mass_lo_msun, spec.cluster_log_mass_msun[0])
    hi = min(log_mass_hi_msun, spec.cluster_log_mass_msun[1])
    mstar = float(spec.schechter_mass_msun)
    return {
        "slope": float(spec.mass_function_slope),
        "log_mstar_msun": math.log10(mstar) if math.isfinite(mstar) else math.inf,
        "power_law_slope": equivalent_power_law_slope(spec.mass_function_slope, mstar, lo, hi)
        if hi > lo
        else math.nan,
    }


def draw_group_ages(
    spec, log_age_grid_yr: np.ndarray, group: AgeGroup, n: int, rng: np.random.Generator
) -> np.ndarray:
    """(n,) log10 ages in ``group`` from the generator's age distribution on the grid."""
    from starclusters.synthetic.catalogs import draw_log_ages

    grid = np.asarray(log_age_grid_yr, float)
    grid = grid[group.mask(grid)]
    if grid.size == 0:
        return np.zeros(0)
    lo, hi = max(grid[0], spec.cluster_log_age_yr[0]), min(grid[-1], spec.cluster_log_age_yr[1])
    if lo > hi:
        return np.zeros(0)
    # draw_log_ages needs only the population's age grid
    population = SimpleNamespace(log_ages_yr=grid)
    return draw_log_ages(n, population, (lo, hi), spec.age_distribution_index, rng)


def injected_offsets_kpc(
    spec, distance_mpc: float, log_age_yr: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Injected offsets from the lane (kpc, + leading) of clusters of these ages that the
    generator puts on a lane (its placement recipe on its own mosaic); the others, placed
    evenly, are left out, so the result is shorter than ``log_age_yr``."""
    from starclusters.synthetic.catalogs import place_objects
    from starclusters.synthetic.geometry import GalaxyGeometry, SkyFrame

    geometry = GalaxyGeometry.from_spec(spec, distance_mpc)
    frame = SkyFrame.from_spec(spec, rng)
    places = place_objects(np.asarray(log_age_yr, float), geometry, frame, rng)
    born = places["born_on_arm"].to_numpy(bool)
    radius = np.hypot(places["x_kpc"], places["y_kpc"]).to_numpy(float)[born]
    drift = geometry.drift_rad(radius, 10.0 ** np.asarray(log_age_yr, float)[born])
    return radius * math.sin(math.radians(spec.pitch_angle_deg)) * drift


def injected_arm_peaks(
    spec,
    distance_mpc: float,
    groups: Sequence[AgeGroup],
    log_age_grid_yr: np.ndarray,
    centres_kpc: np.ndarray,
    window_kpc: float,
    rng: np.random.Generator,
    n: int = INJECTED_DRAWS,
) -> pd.DataFrame:
    """Per age group: the count peak (kpc, + leading) of the injected offsets of a draw of
    ``n`` clusters, and the median offset (kpc). NaN for a group with no clusters on the
    lanes (e.g. older than the spec's young_max_log_age_yr)."""
    rows = []
    for group in groups:
        ages = draw_group_ages(spec, log_age_grid_yr, group, n, rng)
        offsets = injected_offsets_kpc(spec, distance_mpc, ages, rng) if ages.size else []
        offsets = np.asarray(offsets, float)
        rows.append(
            {
                "group": group.label,
                "injected_peak_kpc": count_peak(offsets, centres_kpc, window_kpc)
                if offsets.size
                else math.nan,
                "injected_median_kpc": float(np.median(offsets)) if offsets.size else math.nan,
                "born_on_lane_fraction": offsets.size / ages.size if ages.size else math.nan,
            }
        )
    return pd.DataFrame(rows)
