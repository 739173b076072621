"""How the artificial mocks are drawn: over the whole parameter grid, denser near the edge.

The bank keeps only mocks brighter than ``photometry.magnitude_limits`` (thesis §3.1.2).
A completeness function needs the clusters the network cannot see as well, so the
artificial mocks are drawn from the bank's grid (ages and A_V on their grids, log M
uniform, EFF parameters as the bank's) without that cut (``artificial.draw.magnitude_cut:
none``; ``bank`` keeps the bank's cut, as the thesis' test). Far from the detection edge
the answer is 0 or 1 for almost every mock, so draws there are thinned: a mock is kept
with probability

    far_keep + (1 − far_keep) · exp(−d² / 2w²),

d the margin of its *expected* magnitude (:meth:`~starclusters.photometry.population.
StellarPopulation.expected_magnitudes`) beyond the magnitude limits — the faintest band's
for the ``all`` cut, the brightest band's for ``any`` — and w = ``edge_width_mag``. The
limits are the edge of what the network was trained on, so the density peaks where
detection turns from likely to unlikely. Keeping depends on the parameters only, never on
a mock's stochastic stars, so P(detected | parameters) measured from these mocks is that
of every cluster with those parameters (a cut on the realised magnitude would pick bright
draws and overstate it).

The thesis reports the recall at one node (log t = 7, log M = 4: ~90 %), and the issue's
target is stated there; a uniform draw puts only ~3 % of the mocks within ±0.25 dex of it
(~30 of 850). ``artificial.draw.reference_fraction`` of the sites therefore get a mock
drawn in that box instead (:func:`reference_sites`,
:func:`~starclusters.artificial.settings.reference_box`): ages on the
grid and log M uniform within it, A_V and size as every mock, no thinning. This changes
where the mocks lie in parameter space, not P(detected | parameters): the selection
function and the binned recall are conditional on the parameters and stay unbiased; the
overall recall (a mean over the draw) is reported over the other mocks only.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd

from starclusters.artificial.inject import REFERENCE_STREAM, reference_seed
from starclusters.artificial.settings import reference_box
from starclusters.errors import ConfigError
from starclusters.photometry.population import StellarPopulation


def edge_margin_mag(
    expected_mag: Mapping[str, float], limits_mag: Mapping[str, float], require: str
) -> float:
    """Margin (mag) of expected magnitudes beyond the limits: > 0 fainter than the cut.

    require "all" (a mock must be brighter than every limit): the largest band margin;
    "any": the smallest. 0 without limits.
    """
    margins = [expected_mag[band] - limit for band, limit in limits_mag.items()]
    if not margins:
        return 0.0
    return max(margins) if require == "all" else min(margins)


def edge_keep(
    limits_mag: Mapping[str, float], require: str, edge_width_mag: float, far_keep: float
) -> Callable[[StellarPopulation], Callable[[Mapping], float]]:
    """A function of the population that gives the keep probability of a drawn row.

    For :func:`starclusters.mocks.stage.build_mock_shard`'s ``keep``; rows need
    log_age_yr, log_mass_msun, av_mag. far_keep = 1 keeps everything (uniform draw).
    """
    if not 0.0 < far_keep <= 1.0:
        raise ValueError(f"artificial.draw.far_keep: must be in (0, 1], got {far_keep}")
    if not edge_width_mag > 0:
        raise ValueError(f"artificial.draw.edge_width_mag: must be > 0, got {edge_width_mag}")

    def for_population(population: StellarPopulation) -> Callable[[Mapping], float]:
        def keep(row: Mapping) -> float:
            if far_keep >= 1.0:
                return 1.0
            expected = population.expected_magnitudes(
                float(row["log_age_yr"]), 10.0 ** float(row["log_mass_msun"]), float(row["av_mag"])
            )
            d = edge_margin_mag(expected, limits_mag, require)
            return far_keep + (1.0 - far_keep) * math.exp(-0.5 * (d / edge_width_mag) ** 2)

        return keep

    return for_population


def reference_sites(seed: int, shard: int, n_sites: int, fraction: float) -> np.ndarray:
    """(n_sites,) bool: the sites of a shard whose mock is drawn at the reference node.

    Each site independently with probability ``fraction``, from the layer's mock ``seed``,
    the shard and :data:`~starclusters.artificial.inject.REFERENCE_STREAM` (so the choice
    does not depend on how the other mocks are drawn). fraction 0: none.
    """
    if not 0.0 <= fraction < 1.0:
        raise ConfigError(f"artificial.draw.reference_fraction: must be in [0, 1), got {fraction}")
    if fraction == 0.0 or n_sites == 0:
        return np.zeros(n_sites, bool)
    rng = np.random.default_rng([int(seed), int(shard), REFERENCE_STREAM])
    return rng.uniform(size=n_sites) < fraction


def render_artificial_mocks(
    shard: int,
    seed: int,
    n_sites: int,
    population: StellarPopulation,
    renderer,
    mocks: Mapping,
    av_grid_mag: np.ndarray,
    limits_mag: Mapping[str, float],
    require: str,
    keep: Callable[[Mapping], float] | None,
    reference_fraction: float = 0.0,
    reference: Mapping | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """One shard's artificial mocks, site by site: (stamps (N, B, S, S), table) for
    ``n_sites`` sites.

    The sites of :func:`reference_sites` get mocks drawn in
    :func:`~starclusters.artificial.settings.reference_box` from
    :func:`~starclusters.artificial.inject.reference_seed` (no thinning), the others the
    grid draw from ``seed`` (``keep``, as :func:`starclusters.mocks.bank.build_shard`).
    The grid draw's mocks are the first ones fraction 0 would give, so a fraction changes no
    other mock. With reference_fraction > 0 the table has ``reference_draw`` (bool).
    """
    from starclusters.mocks.bank import build_shard

    at_node = reference_sites(seed, shard, n_sites, reference_fraction)
    parts = [(~at_node, seed, mocks, population.log_ages_yr, keep)]
    if at_node.any():
        if reference is None:
            raise ConfigError(
                "artificial.draw.reference_fraction: > 0 needs the artificial.reference node"
            )
        node_ages, node_mocks = reference_box(reference, population.log_ages_yr, mocks)
        parts.append((at_node, reference_seed(seed), node_mocks, node_ages, None))
    stamps, rows = None, [None] * n_sites
    for selected, part_seed, part_mocks, ages, part_keep in parts:
        if not selected.any():
            continue
        part_stamps, part_table = build_shard(
            shard,
            part_seed,
            int(selected.sum()),
            population,
            renderer,
            part_mocks,
            ages,
            av_grid_mag,
            limits_mag,
            progress=False,
            require=require,
            keep=part_keep,
        )
        if stamps is None:
            stamps = np.zeros((n_sites, *part_stamps.shape[1:]), part_stamps.dtype)
        stamps[selected] = part_stamps
        for i, row in zip(np.flatnonzero(selected), part_table.to_dict("records"), strict=True):
            rows[i] = row
    table = pd.DataFrame(rows)
    if reference_fraction > 0:
        table["reference_draw"] = at_node
    return stamps, table
