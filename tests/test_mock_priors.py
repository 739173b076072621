"""The helpers that compare the mock bank's priors with real clusters (mocks/priors.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from starclusters.errors import InputFileError
from starclusters.mocks.eff import half_number_radius
from starclusters.mocks.priors import (
    bank_support,
    eff_scale_from_core_radius,
    mock_magnitudes,
    passes_cuts,
    pc_per_arcsec,
    read_mass_cdf,
    read_ryon2015,
)
from starclusters.photometry.population import passes_magnitude_cuts

MOCKS = {
    "eff_a_arcsec": {"min": 0.04, "max": 1.2},
    "eff_gamma": {"min": 2.05, "max": 8.0},
    "rh_arcsec": {"min": 0.04, "max": 0.4},
    "truncation_arcsec": 2.5,
}


def ryon_row(cluster_id, a_pc, eta, log_age=8.0, log_mass=4.2):
    """A Ryon-like table row built from (a, eta) with Ryon's formulas."""
    core = a_pc * np.sqrt(2.0 ** (1.0 / eta) - 1.0)
    reff = a_pc * np.sqrt(2.0 ** (1.0 / (eta - 1.0)) - 1.0) if eta > 1 else 1e15
    return {
        "ID": cluster_id,
        "Eta": eta,
        "e_Eta": 0.1,
        "logReff": np.log10(reff),
        "logRcore": np.log10(core),
        "logAge": log_age,
        "logMass": log_mass,
    }


def test_pc_per_arcsec_at_m83():
    assert pc_per_arcsec(4.5) == pytest.approx(21.817, abs=1e-3)
    assert 0.04 * pc_per_arcsec(4.5) == pytest.approx(0.873, abs=1e-3)


def test_ryon_eta_is_half_the_bank_gamma():
    """Ryon's R_eff = a sqrt(2^(1/(eta-1)) - 1) is the bank's untruncated r_h at gamma = 2 eta."""
    a, eta = 2.0, np.array([1.2, 1.5, 2.5, 4.0])
    ryon_reff = a * np.sqrt(2.0 ** (1.0 / (eta - 1.0)) - 1.0)
    np.testing.assert_allclose(half_number_radius(a, 2.0 * eta), ryon_reff, rtol=1e-12)
    core = a * np.sqrt(2.0 ** (1.0 / eta) - 1.0)
    np.testing.assert_allclose(eff_scale_from_core_radius(core, eta), a, rtol=1e-12)


def test_read_ryon2015(tmp_path):
    rows = [ryon_row(1, 2.0, 1.8), ryon_row(2, 3.0, 1.2), ryon_row(3, 1.0, 0.9)]
    path = tmp_path / "ryon.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    table = read_ryon2015(path)
    np.testing.assert_allclose(table["gamma"], [3.6, 2.4, 1.8])
    np.testing.assert_allclose(table["eff_a_pc"], [2.0, 3.0, 1.0], rtol=1e-10)
    assert table["reliable"].tolist() == [True, False, False]
    assert np.isnan(table["reff_pc"].iloc[2])
    np.testing.assert_allclose(table["reff_pc"].iloc[0], half_number_radius(2.0, 3.6))
    np.testing.assert_allclose(table["eta_err"], 0.1)


def test_read_ryon2015_rejects_other_tables(tmp_path):
    path = tmp_path / "other.csv"
    pd.DataFrame({"ID": [1], "Eta": [2.0]}).to_csv(path, index=False)
    with pytest.raises(InputFileError, match="logReff"):
        read_ryon2015(path)


def test_read_mass_cdf_sorts_by_mass(tmp_path):
    path = tmp_path / "cdf.csv"
    path.write_text("4.5, 0.1\n3.7, 0.95\n4.0, 0.5\n")
    table = read_mass_cdf(path)
    assert table["log_mass_msun"].tolist() == [3.7, 4.0, 4.5]
    assert table["fraction"].tolist() == [0.95, 0.5, 0.1]
    bad = tmp_path / "bad.csv"
    bad.write_text("1, 2, 3\n")
    with pytest.raises(InputFileError, match="two columns"):
        read_mass_cdf(bad)


def test_bank_support_reasons():
    a = np.array([0.1, 0.01, 0.1, 1.2, 0.1])
    gamma = np.array([4.0, 4.0, 12.0, 2.05, 2.0])
    sup = bank_support(a, gamma, MOCKS)
    assert sup["inside"].tolist() == [True, False, False, False, False]
    assert sup["a_in"].tolist() == [True, False, True, True, True]
    assert sup["gamma_in"].tolist() == [True, True, False, True, False]
    assert not sup["rh_in"][3]  # a = 1.2", gamma = 2.05: r_h far above 0.4"
    assert np.isnan(sup["rh_arcsec"][4]) and not sup["rh_in"][4]
    assert sup["rh_arcsec"][0] == pytest.approx(half_number_radius(0.1, 4.0, 2.5))


def test_mock_magnitudes_match_the_bank_recipe(small_population):
    params = pd.DataFrame(
        {
            "log_age_yr": [7.0, 8.0, 9.0],
            "log_mass_msun": [3.5, 4.5, 5.0],
            "av_mag": [0.0, 1.0, 2.0],
        },
        index=[10, 11, 12],
    )
    mags = mock_magnitudes(small_population, params, np.random.default_rng(7))
    assert list(mags.index) == [10, 11, 12]
    assert list(mags.columns) == [f"mag_{b}" for b in small_population.bands]
    rng = np.random.default_rng(7)
    for k, row in enumerate(params.itertuples()):
        stars = small_population.cluster_stars(
            row.log_age_yr, 10.0**row.log_mass_msun, row.av_mag, rng
        )
        expected = small_population.integrated_magnitudes(stars)
        for band in small_population.bands:
            assert mags[f"mag_{band}"].iloc[k] == pytest.approx(expected[band])
        limits = {b: 23.0 for b in small_population.bands}
        assert passes_cuts(mags.iloc[[k]], limits)[0] == passes_magnitude_cuts(expected, limits)
