"""The bright stars of a population, drawn one by one: the split of an isochrone at a magnitude.

Used where single stars must be drawn rather than a whole cluster: the synthetic galaxy's
resolved field stars (:mod:`starclusters.synthetic.field`) and the star-group negatives of
training (:mod:`starclusters.mocks.star_groups`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from starclusters.photometry.population import StellarPopulation, counts_per_second


@dataclass(frozen=True)
class ResolvedSplit:
    """A fully sampled population of one age, per M☉ of initial mass, split at a magnitude.

    bright_per_msun: expected number of stars brighter than the limit per M☉;
    bin_lo_msun, bin_hi_msun, bin_probability: (k,) initial-mass bins of those
    stars and the chance a bright star falls in each; smooth_counts_s_per_msun:
    (B,) count rate of all the fainter stars of 1 M☉ at A_V = 0, in ``bands`` order.
    """

    log_age_yr: float
    bands: tuple[str, ...]
    bright_per_msun: float
    bin_lo_msun: np.ndarray
    bin_hi_msun: np.ndarray
    bin_probability: np.ndarray
    smooth_counts_s_per_msun: np.ndarray

    @classmethod
    def build(
        cls,
        population: StellarPopulation,
        log_age_yr: float,
        limit_mag: float,
        bands: Sequence[str],
    ) -> ResolvedSplit:
        """Split the isochrone of ``log_age_yr`` (on the grid) at ``limit_mag`` in any of ``bands``."""
        imf = population.imf
        iso = population.isochrone(log_age_yr)
        mini = iso["mini_msun"].to_numpy()
        edges = np.concatenate([[mini[0]], 0.5 * (mini[1:] + mini[:-1]), [mini[-1]]])
        edges = np.clip(edges, imf.mass_min_msun, imf.mass_max_msun)
        per_msun = imf.number_between(edges[:-1], edges[1:]) / imf.mass_between(
            imf.mass_min_msun, imf.mass_max_msun
        )
        columns = [population.bands.index(b) for b in bands]
        counts = population.star_counts(log_age_yr, mini, 0.0)[:, columns]
        threshold = np.array(
            [counts_per_second(limit_mag, population.zeropoints_mag[b]) for b in bands]
        )
        bright = (counts >= threshold).any(axis=1) & (per_msun > 0)
        smooth = (per_msun[~bright, None] * counts[~bright]).sum(axis=0)
        number = per_msun[bright]
        total = float(number.sum())
        return cls(
            log_age_yr=float(log_age_yr),
            bands=tuple(bands),
            bright_per_msun=total,
            bin_lo_msun=edges[:-1][bright],
            bin_hi_msun=edges[1:][bright],
            bin_probability=number / total if total > 0 else number,
            smooth_counts_s_per_msun=smooth,
        )

    def draw_masses(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Initial masses (n,) M☉ of ``n`` bright stars: a bin by its weight, uniform inside it."""
        if n == 0 or self.bright_per_msun == 0:
            return np.zeros(0)
        k = rng.choice(len(self.bin_probability), size=n, p=self.bin_probability)
        return self.bin_lo_msun[k] + rng.random(n) * (self.bin_hi_msun[k] - self.bin_lo_msun[k])
