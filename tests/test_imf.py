"""Kroupa IMF sampling: slopes, normalisation, mass conservation."""

import numpy as np
import pytest
from scipy import optimize

from starclusters.errors import ConfigError
from starclusters.photometry.imf import kroupa_imf, sample_cluster_masses


def fitted_slope(masses, lo, hi):
    """Maximum-likelihood alpha of a power law m^-alpha truncated to [lo, hi]."""
    m = masses[(masses >= lo) & (masses < hi)]
    log_sum = np.log(m).sum()

    def neg_log_like(alpha):
        p = 1.0 - alpha
        norm = (hi**p - lo**p) / p
        return alpha * log_sum + len(m) * np.log(norm)

    return optimize.minimize_scalar(neg_log_like, bounds=(0.1, 4.0), method="bounded").x


def test_slopes_recovered_from_a_large_sample(rng):
    imf = kroupa_imf(0.08, 100.0)
    masses = imf.sample(400_000, rng)
    assert fitted_slope(masses, 0.5, 100.0) == pytest.approx(2.3, abs=0.05)
    assert fitted_slope(masses, 0.08, 0.5) == pytest.approx(1.3, abs=0.05)
    assert masses.min() >= 0.08 and masses.max() <= 100.0


def test_segments_are_continuous_at_the_breaks():
    imf = kroupa_imf(0.01, 100.0)
    eps = 1e-6
    for m in (0.08, 0.5):
        below = imf.number_between(m - eps, m) / eps
        above = imf.number_between(m, m + eps) / eps
        assert below == pytest.approx(above, rel=1e-4)


def test_mean_mass_matches_samples(rng):
    imf = kroupa_imf(0.08, 100.0)
    assert imf.sample(300_000, rng).mean() == pytest.approx(imf.mean_mass_msun(), rel=0.01)


@pytest.mark.parametrize("cluster_mass", [50.0, 3.0e3, 3.0e5])
def test_cluster_mass_is_conserved(cluster_mass, rng):
    imf = kroupa_imf(0.08, 100.0)
    totals = []
    for _ in range(40):
        stars = sample_cluster_masses(cluster_mass, imf, rng)
        total = stars.sum()
        totals.append(total)
        if total >= cluster_mass:
            # the crossing star was kept because it left the total closer to the target
            assert total - cluster_mass <= 0.5 * stars[-1] + 1e-9
        # either way the total is within half of the largest possible star
        assert abs(total - cluster_mass) <= 0.5 * imf.mass_max_msun
    # stop-nearest is unbiased: the mean total is the target
    spread = np.std(totals) / np.sqrt(len(totals))
    assert abs(np.mean(totals) - cluster_mass) < 4 * spread + 1e-6 * cluster_mass


def test_bad_mass_range_names_the_key():
    with pytest.raises(ConfigError, match="photometry.imf"):
        kroupa_imf(1.0, 0.5)
