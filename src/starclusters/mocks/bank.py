"""A shard of the mock-cluster bank: parameters drawn, stars sampled, stamps rendered."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping

import numpy as np
import pandas as pd
from tqdm import tqdm

from starclusters.errors import ConfigError
from starclusters.mocks.eff import sample_positions
from starclusters.mocks.params import draw_parameters
from starclusters.mocks.render import StampRenderer
from starclusters.mocks.settings import mock_section
from starclusters.photometry.population import (
    ClusterStars,
    StellarPopulation,
    passes_magnitude_cuts,
)

log = logging.getLogger(__name__)

#: Stage number mixed into seeds so that stages never share random streams.
MOCK_STAGE = 3


def hashed_seed(*keys: int) -> int:
    """One 63-bit seed hashed from the integers ``keys`` by numpy's SeedSequence: how every
    stream of the project (mock draws, galaxy streams, artificial layers) gets its seed."""
    state = np.random.SeedSequence([int(k) for k in keys]).generate_state(2, np.uint32)
    return int(state[0]) << 31 | int(state[1] >> 1)


def draw_seed(config_seed: int, stage: int, shard: int, draw: int) -> int:
    """Seed of the ``draw``-th attempt of shard ``shard`` of stage ``stage``: one 63-bit
    integer, reproducible alone (a stored seed redraws its stamp)."""
    return hashed_seed(config_seed, stage, shard, draw)


def mock_seed(config_seed: int, shard: int, draw: int) -> int:
    """Seed of the ``draw``-th attempt of mock shard ``shard`` (:func:`draw_seed`)."""
    return draw_seed(config_seed, MOCK_STAGE, shard, draw)


def draw_stars(
    population: StellarPopulation,
    log_age_yr: float,
    log_mass_msun: float,
    av_mag: float,
    mocks: Mapping,
    rng: np.random.Generator,
) -> ClusterStars:
    """The stars of a mock (faint ones aggregated as ``mocks`` says)."""
    return population.cluster_stars(
        log_age_yr,
        10.0**log_mass_msun,
        av_mag,
        rng,
        faint_limit_mag=mock_section(mocks)["faint_limit_mag"],
        faint_packets=mock_section(mocks)["faint_packets"],
    )


def render_stars(
    stars: ClusterStars,
    renderer: StampRenderer,
    eff_a_arcsec: float,
    eff_gamma: float,
    mocks: Mapping,
    rng: np.random.Generator,
) -> np.ndarray:
    """Noise-free stamp (B, S, S) of ``stars`` scattered on an EFF profile centred on the stamp."""
    lit = stars.luminous
    positions = sample_positions(
        int(lit.sum()), eff_a_arcsec, eff_gamma, mocks["truncation_arcsec"], rng
    )
    return renderer.render(positions, stars.counts_s[lit])


def render_mock(
    seed: int,
    population: StellarPopulation,
    renderer: StampRenderer,
    mocks: Mapping,
    log_ages_yr: np.ndarray,
    av_grid_mag: np.ndarray,
    limits_mag: Mapping[str, float],
    require: str = "all",
    keep: Callable[[Mapping], float] | None = None,
) -> tuple[dict, np.ndarray | None]:
    """One mock from its own seed: (parameter row, stamp (B, S, S) or None if it fails the cuts).

    keep: the probability of keeping a mock of the drawn parameters (log_age_yr,
    log_mass_msun, av_mag, ...), decided before any star is drawn, to reshape the parameter
    distribution (the artificial test's draw); None keeps every draw and uses no random
    number (the bank's draw).
    """
    rng = np.random.default_rng(seed)
    row = draw_parameters(1, log_ages_yr, av_grid_mag, mocks, rng).iloc[0].to_dict()
    if keep is not None and rng.uniform() >= keep(row):
        return row, None
    stars = draw_stars(
        population, row["log_age_yr"], row["log_mass_msun"], row["av_mag"], mocks, rng
    )
    mags = population.integrated_magnitudes(stars)
    row.update(
        log_rh_arcsec=float(np.log10(row.pop("rh_arcsec"))),
        n_stars=stars.n_stars,
        n_drawn=int(np.isfinite(stars.mini_msun).sum()),
        seed=seed,
        **{f"mag_{band}": mags[band] for band in population.bands},
    )
    if not passes_magnitude_cuts(mags, limits_mag, require):
        return row, None
    return row, render_stars(stars, renderer, row["eff_a_arcsec"], row["eff_gamma"], mocks, rng)


def build_shard(
    shard: int,
    config_seed: int,
    n_mocks: int,
    population: StellarPopulation,
    renderer: StampRenderer,
    mocks: Mapping,
    log_ages_yr: np.ndarray,
    av_grid_mag: np.ndarray,
    limits_mag: Mapping[str, float],
    progress: bool = True,
    require: str = "all",
    keep: Callable[[Mapping], float] | None = None,
) -> tuple[np.ndarray, pd.DataFrame]:
    """``n_mocks`` mocks that pass the magnitude cuts: stamps (N, B, S, S) float32 and their table.

    require: the limits must be passed in "all" bands (thesis) or in "any"
    (``photometry.magnitude_cut``), or not at all ("none"); keep: as :func:`render_mock`.

    Mocks failing the cuts are redrawn (thesis §3.1.2) up to
    ``mocks.max_draws_per_mock`` × n_mocks attempts; then ConfigError.
    """
    max_draws = int(mock_section(mocks)["max_draws_per_mock"]) * n_mocks
    stamps, rows = [], []
    draw = 0
    with tqdm(
        total=n_mocks, desc=f"mock shard {shard}", disable=not progress, mininterval=2
    ) as bar:
        while len(rows) < n_mocks:
            if draw >= max_draws:
                raise ConfigError(
                    f"photometry.magnitude_limits / mocks: only {len(rows)} of {draw} drawn mocks pass the "
                    f"magnitude cuts {dict(limits_mag)}"
                    + ("" if keep is None else " and the thinning far from the edge")
                    + "; raise mocks.log_mass_msun or relax the limits"
                    + ("" if keep is None else " or raise artificial.draw.far_keep")
                )
            row, stamp = render_mock(
                mock_seed(config_seed, shard, draw),
                population,
                renderer,
                mocks,
                log_ages_yr,
                av_grid_mag,
                limits_mag,
                require,
                keep,
            )
            draw += 1
            if stamp is None:
                continue
            row.update(shard=shard, draw=draw - 1)
            rows.append(row)
            stamps.append(stamp)
            bar.update(1)
    log.info(
        "shard %d: %d mocks kept of %d drawn (%.0f %%)", shard, n_mocks, draw, 100 * n_mocks / draw
    )
    return np.stack(stamps), pd.DataFrame(rows)
