"""Extinction per band, integrated over the filter."""

import numpy as np
import pytest

from starclusters.errors import ConfigError
from starclusters.photometry.extinction import ExtinctionGrid, a_lambda_mag, extinction_table

# ../shared/reference/calib_and_extinction.csv: CCM89 A_lambda/A_V at the WFC3/UVIS
# pivot wavelengths, R_V = 3.1 (STScI zero-point tables, `extinction` 0.4.9).
REFERENCE_A_OVER_AV = {"F336W": 1.6347, "F438W": 1.3516, "F814W": 0.5919}
CURVES = {"F336W": "HST_WFC3_F336W", "F438W": "HST_WFC3_F438W", "F814W": "HST_WFC3_F814W"}


@pytest.fixture(scope="module")
def table():
    return extinction_table(CURVES, np.round(np.arange(0.0, 3.01, 0.1), 2))


def extinction_for_stars(table, band, av_mag, log_teff_k):
    return ExtinctionGrid.from_table(table, list(CURVES)).for_stars(band, av_mag, log_teff_k)


def test_matches_reference_at_pivot(table):
    for band, ref in REFERENCE_A_OVER_AV.items():
        # small A_V and an A0 star: the filter-integrated value approaches the pivot value
        a = extinction_for_stars(table, band, 0.1, np.array([np.log10(9600.0)]))[0]
        assert a / 0.1 == pytest.approx(ref, abs=0.03), band


def test_grid_shape_and_zero_point(table):
    assert len(table) == 3 * 31 * table["log_teff_k"].nunique()
    zero = table[table["av_mag"] == 0.0]["a_band_mag"]
    assert np.allclose(zero, 0.0)


def test_effective_extinction_per_av_drops_for_red_stars_and_large_av(table):
    # reddening shifts a band's effective wavelength redwards, where A_lambda is lower
    hot, cool = extinction_for_stars(table, "F814W", 1.0, np.array([4.5, 3.5]))
    assert cool < hot
    a1 = extinction_for_stars(table, "F336W", 1.0, np.array([4.0]))[0]
    a3 = extinction_for_stars(table, "F336W", 3.0, np.array([4.0]))[0]
    assert a3 / 3.0 < a1


def test_pivot_a_lambda_of_the_law():
    assert a_lambda_mag(np.array([3354.5]), 1.0)[0] == pytest.approx(1.6347, abs=1e-3)


def test_unknown_law_and_band(table):
    with pytest.raises(ConfigError, match="photometry.extinction.law"):
        a_lambda_mag(np.array([5000.0]), 1.0, law="calzetti")
    with pytest.raises(ConfigError, match="F555W"):
        extinction_for_stars(table, "F555W", 1.0, np.array([4.0]))
