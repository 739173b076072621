"""The mock bank: shards are reproducible, magnitude cuts are redrawn, impossible cuts stop."""

import numpy as np
import pytest
from conftest import gaussian_renderer

from starclusters.errors import ConfigError
from starclusters.mocks.bank import build_shard, mock_seed, render_mock


@pytest.fixture(scope="module")
def renderer():
    return gaussian_renderer()


@pytest.fixture
def mocks(default_config):
    return {**default_config["mocks"], "log_mass_msun": {"min": 3.5, "max": 4.0}}


def shard(small_population, renderer, mocks, limits, n=6, shard_index=0, seed=7):
    return build_shard(
        shard_index,
        seed,
        n,
        small_population,
        renderer,
        mocks,
        small_population.log_ages_yr,
        np.array([0.0, 1.0]),
        limits,
        progress=False,
    )


def test_shard_is_reproducible_bit_for_bit(small_population, renderer, mocks):
    limits = {"F336W": 30.0, "F438W": 30.0, "F814W": 30.0}
    stamps_a, table_a = shard(small_population, renderer, mocks, limits)
    stamps_b, table_b = shard(small_population, renderer, mocks, limits)
    assert np.array_equal(stamps_a, stamps_b)
    assert table_a.equals(table_b)
    other, _ = shard(small_population, renderer, mocks, limits, shard_index=1)
    assert not np.array_equal(stamps_a, other)
    # one mock is reproduced alone from its stored seed
    row, stamp = render_mock(
        int(table_a["seed"].iloc[3]),
        small_population,
        renderer,
        mocks,
        small_population.log_ages_yr,
        np.array([0.0, 1.0]),
        limits,
    )
    assert np.array_equal(stamp, stamps_a[3])
    assert row["log_mass_msun"] == table_a["log_mass_msun"].iloc[3]


def test_magnitude_cuts_are_redrawn(small_population, renderer, mocks):
    limits = {"F336W": 30.0, "F438W": 30.0, "F814W": 21.0}
    stamps, table = shard(small_population, renderer, mocks, limits, n=8)
    assert len(table) == len(stamps) == 8
    assert (table["mag_F814W"] < 21.0).all()
    assert table["draw"].max() >= 8  # some draws were rejected and redrawn
    assert stamps.dtype == np.float32 and stamps.shape == (8, 3, 32, 32)


def test_flux_in_stamp_matches_the_integrated_magnitude(small_population, renderer, mocks):
    limits = {"F336W": 30.0, "F438W": 30.0, "F814W": 30.0}
    compact = {
        **mocks,
        "eff_a_arcsec": {"min": 0.04, "max": 0.05},
        "eff_gamma": {"min": 7.0, "max": 8.0},
        "rh_arcsec": {"min": 0.02, "max": 0.1},
    }
    stamps, table = shard(small_population, renderer, compact, limits, n=3)
    zp = small_population.zeropoints_mag["F814W"]
    total = 10 ** (-0.4 * (table["mag_F814W"].to_numpy() - zp))
    # compact clusters fall entirely inside the 1.28" stamp (Gaussian PSF, no far wings)
    np.testing.assert_allclose(stamps[:, 2].sum(axis=(1, 2)), total, rtol=0.02)


def test_impossible_cuts_stop_after_bounded_redraws(small_population, renderer, mocks):
    limits = {"F336W": 5.0, "F438W": 5.0, "F814W": 5.0}
    with pytest.raises(ConfigError, match="magnitude cuts"):
        shard(small_population, renderer, {**mocks, "max_draws_per_mock": 3}, limits, n=2)


def test_seeds_differ_between_shards_and_draws():
    seeds = {mock_seed(83, s, d) for s in range(3) for d in range(100)}
    assert len(seeds) == 300
    assert mock_seed(83, 1, 5) == mock_seed(83, 1, 5)
