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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

from starclusters.photometry.population import StellarPopulation

#: ``artificial.draw.magnitude_cut``: none (the whole grid) or the bank's cut.
DRAW_CUTS = ("none", "bank")


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
