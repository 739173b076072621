"""Star groups: the hard negatives of training — single stars, pairs and small groups.

A bank of only clusters and bare backgrounds never shows the network a bright source that
is *not* a cluster centred in its window. Field stars then become candidates wherever the
bank holds clusters that look like a few stars: with old low-mass mocks in the bank
(``photometry.magnitude_cut: any``) the bench network called 20 field stars of its training
galaxy clusters (docs/detection.md). A star group is what such a false candidate is made
of — one to ``max_stars`` single stars, without the unresolved light of a cluster's many
faint members — rendered like the bank's mocks and composed onto real backgrounds as
class 0 (:meth:`starclusters.model.data.TrainingData.draw`).

Each group, from its own seed (reproducible alone, as a mock):

* the number of stars n: the shard's k-th kept group has n = 1 + (k mod ``max_stars``),
  so that every n is equally common among the kept groups (drawn freely, the magnitude cuts
  below would keep mostly the groups of many stars: 9 single stars of 200 kept, measured);
* each star independently (chance alignments of field stars, not a co-eval association):
  an isochrone age uniform on the grid (among the ages that have such stars), an initial
  mass from the stars brighter than ``star_limit_mag`` (apparent, unextincted, in any band;
  the bins end half-way to the next isochrone point, so a few are up to ~0.3 mag fainter)
  with the IMF's weights (:class:`~starclusters.photometry.resolved.ResolvedSplit`), so
  that faint stars outnumber bright ones as in a luminosity function;
* one A_V for the group, on the extinction grid, uniform (the bank's prior);
* positions: the first star at the origin, the others uniform in a disc of radius
  ``group_radius_arcsec``; then all moved so that the flux-weighted centroid (summed over
  bands) lies on the stamp's centre pixel, where the detector would put its peak;
* kept only if the group passes the bank's magnitude cuts (``photometry.magnitude_limits``
  with ``photometry.magnitude_cut``): negatives as bright as the positives, so that
  brightness alone does not separate them; else redrawn.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from tqdm import tqdm

from starclusters.errors import ConfigError
from starclusters.mocks.bank import draw_seed
from starclusters.mocks.render import StampRenderer
from starclusters.mocks.settings import STAR_GROUPS_KEY, StarGroupSettings
from starclusters.photometry.population import (
    StellarPopulation,
    magnitude_from_counts,
    passes_magnitude_cuts,
)
from starclusters.photometry.resolved import ResolvedSplit

log = logging.getLogger(__name__)

#: Stage number mixed into seeds so that stages never share random streams.
STAR_GROUP_STAGE = 12


def star_group_seed(config_seed: int, shard: int, draw: int) -> int:
    """Seed of the ``draw``-th attempt of star-group shard ``shard`` (:func:`draw_seed`)."""
    return draw_seed(config_seed, STAR_GROUP_STAGE, shard, draw)


class StarDraws:
    """Single stars of a population: per isochrone age, the split at ``star_limit_mag``.

    population: the stars; bands: their order in every (…, B) array; star_limit_mag:
    apparent Vega magnitude a star must beat in some band (unextincted). ConfigError naming
    ``star_groups.star_limit_mag`` if no age has such a star.
    """

    def __init__(self, population: StellarPopulation, bands: Sequence[str], star_limit_mag: float):
        self.population = population
        self.bands = tuple(bands)
        self._columns = [population.bands.index(b) for b in self.bands]
        splits = [
            ResolvedSplit.build(population, age, star_limit_mag, self.bands)
            for age in population.log_ages_yr
        ]
        self.splits = [s for s in splits if s.bright_per_msun > 0]
        if not self.splits:
            raise ConfigError(
                f"{STAR_GROUPS_KEY}.star_limit_mag: no star of any isochrone age is brighter than "
                f"{star_limit_mag} mag in any of {list(self.bands)}; raise the limit"
            )

    def draw(self, n: int, av_mag: float, rng: np.random.Generator):
        """(log ages (n,), count rates (n, B) counts/s after A_V) of ``n`` stars."""
        pick = rng.integers(0, len(self.splits), n)
        ages = np.array([self.splits[k].log_age_yr for k in pick])
        counts = np.empty((n, len(self.bands)))
        for i, k in enumerate(pick):
            mass = self.splits[k].draw_masses(1, rng)
            counts[i] = self.population.star_counts(ages[i], mass, av_mag)[0, self._columns]
        return ages, counts


def draw_group(
    seed: int,
    n_stars: int,
    stars: StarDraws,
    settings: StarGroupSettings,
    av_grid_mag: np.ndarray,
) -> tuple[dict, np.ndarray, np.ndarray]:
    """A group of ``n_stars`` stars from its own seed: (table row, positions (n, 2) arcsec x, y from the
    stamp centre, count rates (n, B) counts/s).

    The row holds seed, n_stars, av_mag, log_age_yr_brightest (the isochrone age of the star
    brightest summed over bands), max_offset_arcsec (the farthest star from the centroid)
    and mag_<band> (the group's apparent Vega magnitude after extinction).
    """
    rng = np.random.default_rng(seed)
    n = int(n_stars)
    av = float(rng.choice(np.asarray(av_grid_mag)))
    ages, counts = stars.draw(n, av, rng)
    radius = settings.group_radius_arcsec * np.sqrt(rng.uniform(size=n))
    angle = rng.uniform(0.0, 2 * np.pi, n)
    positions = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    positions[0] = 0.0
    total = counts.sum(axis=1)
    if total.sum() > 0:
        positions -= (total[:, None] * positions).sum(axis=0) / total.sum()
    population = stars.population
    row = {
        "seed": seed,
        "n_stars": n,
        "av_mag": av,
        "log_age_yr_brightest": float(ages[int(np.argmax(total))]),
        "max_offset_arcsec": float(np.hypot(*positions.T).max()),
    }
    for j, band in enumerate(stars.bands):
        row[f"mag_{band}"] = float(
            magnitude_from_counts(counts[:, j].sum(), population.zeropoints_mag[band])
        )
    return row, positions, counts


def build_star_group_shard(
    shard: int,
    config_seed: int,
    stars: StarDraws,
    renderer: StampRenderer,
    settings: StarGroupSettings,
    av_grid_mag: np.ndarray,
    limits_mag: Mapping[str, float],
    require: str = "all",
    progress: bool = True,
) -> tuple[np.ndarray, pd.DataFrame]:
    """``settings.per_shard`` groups that pass the magnitude cuts: stamps (N, B, S, S) float32
    counts/s centred on pixel (S//2, S//2), and their table (:func:`draw_group`'s rows with
    shard and draw). Groups failing the cuts are redrawn up to ``max_draws_per_group`` ×
    per_shard attempts; then ConfigError."""
    n_groups = settings.per_shard
    max_draws = settings.max_draws_per_group * n_groups
    stamps, rows = [], []
    draw = 0
    with tqdm(
        total=n_groups, desc=f"star groups {shard}", disable=not progress, mininterval=2
    ) as bar:
        while len(rows) < n_groups:
            if draw >= max_draws:
                raise ConfigError(
                    f"{STAR_GROUPS_KEY}.star_limit_mag: only {len(rows)} of {draw} drawn star groups "
                    f"pass the magnitude cuts {dict(limits_mag)} ({require}); lower "
                    f"star_limit_mag (brighter stars) or raise {STAR_GROUPS_KEY}.max_stars"
                )
            seed = star_group_seed(config_seed, shard, draw)
            n_stars = 1 + len(rows) % settings.max_stars
            row, positions, counts = draw_group(seed, n_stars, stars, settings, av_grid_mag)
            draw += 1
            mags = {b: row[f"mag_{b}"] for b in stars.bands}
            if not passes_magnitude_cuts(mags, limits_mag, require):
                continue
            row.update(shard=shard, draw=draw - 1)
            rows.append(row)
            stamps.append(renderer.render(positions, counts))
            bar.update(1)
    log.info(
        "star-group shard %d: %d kept of %d drawn (%.0f %%)",
        shard,
        n_groups,
        draw,
        100 * n_groups / draw,
    )
    return np.stack(stamps), pd.DataFrame(rows)
