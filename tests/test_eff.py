"""EFF profile: analytic half-number radius against sampled positions; parameter draws."""

import numpy as np
import pytest

from starclusters.errors import ConfigError
from starclusters.mocks.eff import enclosed_fraction, half_number_radius, sample_positions
from starclusters.mocks.params import check_rh_reachable, draw_parameters


@pytest.mark.parametrize(
    ("a", "gamma", "truncation"),
    [(0.1, 3.0, np.inf), (0.05, 2.05, 2.5), (0.5, 7.0, 2.5), (1.2, 2.2, 2.5), (0.04, 8.0, 2.5)],
)
def test_half_number_radius_matches_samples(a, gamma, truncation, rng):
    rh = half_number_radius(a, gamma, truncation)
    positions = sample_positions(
        200_000, a, gamma, truncation if np.isfinite(truncation) else 1e12, rng
    )
    radii = np.hypot(*positions.T)
    assert np.median(radii) == pytest.approx(rh, rel=0.01)
    assert enclosed_fraction(rh, a, gamma, truncation) == pytest.approx(0.5)
    assert radii.max() <= min(truncation, 1e12)
    # the whole cumulative profile, not just its median
    for q in (0.1, 0.25, 0.75, 0.9):
        r_q = np.quantile(radii, q)
        assert enclosed_fraction(r_q, a, gamma, truncation) == pytest.approx(q, abs=0.01)


def test_untruncated_formula():
    gamma, a = 4.0, 0.2
    assert half_number_radius(a, gamma) == pytest.approx(a * np.sqrt(2 ** (2 / (gamma - 2)) - 1))


def test_angles_are_isotropic(rng):
    p = sample_positions(100_000, 0.1, 3.0, 2.5, rng)
    assert abs(np.mean(p[:, 0])) < 0.01 and abs(np.mean(p[:, 1])) < 0.01
    assert np.std(p[:, 0]) == pytest.approx(np.std(p[:, 1]), rel=0.05)


def test_parameters_stay_in_their_ranges(default_config, rng):
    mocks = default_config["mocks"]
    ages = np.round(np.arange(6.6, 10.1001, 0.05), 4)
    avs = np.round(np.arange(0, 3.01, 0.1), 4)
    table = draw_parameters(5000, ages, avs, mocks, rng)
    assert table["rh_arcsec"].between(0.04, 0.4).all()
    assert (
        table["eff_a_arcsec"].between(0.04, 1.2).all()
        and table["eff_gamma"].between(2.05, 8.0).all()
    )
    assert set(table["log_age_yr"]) <= set(ages) and set(table["av_mag"]) <= set(avs)
    assert table["log_mass_msun"].between(3.5, 5.5).all()
    # log-uniform draws: log a is spread over its range
    assert np.log(table["eff_a_arcsec"]).std() > 0.3


def test_unreachable_rh_range(default_config):
    mocks = {**default_config["mocks"], "rh_arcsec": {"min": 5.0, "max": 6.0}}
    with pytest.raises(ConfigError, match="mocks.rh_arcsec"):
        check_rh_reachable(mocks)


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("n_shards", 0),
        ("per_shard", 1.5),
        ("log_mass_msun", {"min": 5.5, "max": 3.5}),
        ("eff_gamma", {"min": 2.5}),
        ("truncation_arcsec", 0),
        ("faint_limit_mag", "29"),
        ("faint_packets", True),
        ("max_draws_per_mock", 0),
        ("bogus", 1),
    ],
)
def test_mock_settings_name_the_bad_key(default_config, key, value):
    """The ``mocks`` section has one home: MockSettings' defaults and checks."""
    from starclusters.mocks.settings import MOCK_DEFAULTS, MockSettings

    section = dict(default_config["mocks"])
    assert MockSettings.from_config(section).to_config() == {**MOCK_DEFAULTS, **section}
    required = {k: v for k, v in section.items() if k not in MOCK_DEFAULTS}
    assert MockSettings.from_config(required).truncation_arcsec == 2.5
    with pytest.raises(ConfigError, match="^mocks.n_shards: missing"):
        MockSettings.from_config({k: v for k, v in required.items() if k != "n_shards"})
    with pytest.raises(ConfigError, match=f"^mocks.{key}"):
        MockSettings.from_config({**section, key: value})
