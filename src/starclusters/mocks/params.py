"""Drawing the parameters of mock clusters (thesis §3.1.2, Table 4.1)."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from starclusters.errors import ConfigError
from starclusters.mocks.eff import half_number_radius


def check_rh_reachable(mocks: Mapping) -> None:
    """ConfigError when no (a, gamma) in the configured box gives r_h in the configured range.

    r_h grows with a and falls with gamma, so its extremes are at the box corners.
    """
    a, g, rh, rt = (
        mocks["eff_a_arcsec"],
        mocks["eff_gamma"],
        mocks["rh_arcsec"],
        mocks["truncation_arcsec"],
    )
    smallest = half_number_radius(a["min"], g["max"], rt)
    largest = half_number_radius(a["max"], g["min"], rt)
    if largest < rh["min"] or smallest > rh["max"]:
        raise ConfigError(
            f"mocks.rh_arcsec: [{rh['min']}, {rh['max']}] cannot be reached: EFF a in "
            f"[{a['min']}, {a['max']}]″ and gamma in [{g['min']}, {g['max']}] give r_h between "
            f"{smallest:.3g} and {largest:.3g}″ (truncated at {rt}″); widen one of these ranges"
        )


def draw_eff(
    n: int, mocks: Mapping, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(a_arcsec, gamma, rh_arcsec), each (n,): a and gamma log-uniform, kept where r_h is in range."""
    check_rh_reachable(mocks)
    a_lim, g_lim, rh_lim = mocks["eff_a_arcsec"], mocks["eff_gamma"], mocks["rh_arcsec"]
    out_a, out_g, out_rh = [], [], []
    kept = 0
    for _ in range(10_000):
        m = max(4 * (n - kept), 64)
        a = np.exp(rng.uniform(np.log(a_lim["min"]), np.log(a_lim["max"]), m))
        g = np.exp(rng.uniform(np.log(g_lim["min"]), np.log(g_lim["max"]), m))
        rh = half_number_radius(a, g, mocks["truncation_arcsec"])
        ok = (rh >= rh_lim["min"]) & (rh <= rh_lim["max"])
        out_a.append(a[ok]), out_g.append(g[ok]), out_rh.append(rh[ok])
        kept += int(ok.sum())
        if kept >= n:
            break
    else:
        raise ConfigError("mocks.rh_arcsec: the r_h range is reachable but too rarely; widen it")
    return (np.concatenate(out_a)[:n], np.concatenate(out_g)[:n], np.concatenate(out_rh)[:n])


def draw_parameters(
    n: int,
    log_ages_yr: np.ndarray,
    av_grid_mag: np.ndarray,
    mocks: Mapping,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Parameters of ``n`` mocks: log_age_yr (on the isochrone grid), log_mass_msun (uniform),
    av_mag (on its grid), eff_a_arcsec, eff_gamma (log-uniform, r_h in range), rh_arcsec."""
    mass = mocks["log_mass_msun"]
    a, g, rh = draw_eff(n, mocks, rng)
    return pd.DataFrame(
        {
            "log_age_yr": rng.choice(np.asarray(log_ages_yr), n),
            "log_mass_msun": rng.uniform(mass["min"], mass["max"], n),
            "av_mag": rng.choice(np.asarray(av_grid_mag), n),
            "eff_a_arcsec": a,
            "eff_gamma": g,
            "rh_arcsec": rh,
        }
    )
