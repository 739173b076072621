"""Reading published cluster catalogs and predicting the model's colours for them."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from astropy.table import MaskedColumn, Table

from starclusters.errors import InputFileError
from starclusters.photometry import (
    build_extinction_table,
    build_isochrone_table,
    population_from_config,
)
from starclusters.photometry.reference import (
    colour_indices,
    colour_residuals,
    predict_colours,
    read_phat_m31_catalog,
    read_phatter_catalog,
    realisation_magnitudes,
    reddening_free_index,
    snap_to_grid,
    summarise_residuals,
)

BANDS = ["F336W", "F475W", "F814W"]


@pytest.fixture(scope="module")
def population():
    """F336W/F475W/F814W population on log t = 7, 8, 9 and A_V = 0, 1."""
    phot = {
        "isochrones": {
            "source": "parsec_grid",
            "metallicity_z": 0.008,
            "z_tolerance_dex": 0.05,
            "log_age_yr": {"min": 7.0, "max": 9.0, "step": 1.0},
        },
        "filter_curves": {
            "F336W": "HST_WFC3_F336W",
            "F475W": "HST_ACS_WFC_F475W",
            "F814W": "HST_ACS_WFC_F814W",
        },
        "vega_zeropoint_mag": {"F336W": 23.527, "F475W": 26.168, "F814W": 25.520},
        "distance_mpc": 0.85,
        "extinction": {"law": "ccm89", "r_v": 3.1, "av_mag": {"min": 0.0, "max": 1.0, "step": 1.0}},
        "imf": {"mass_min_msun": 0.08, "mass_max_msun": 100.0},
    }
    iso, _ = build_isochrone_table(phot, BANDS)
    ext, _ = build_extinction_table(phot, BANDS)
    return population_from_config(iso, ext, phot, BANDS)


def catalog(rows) -> pd.DataFrame:
    """A catalog table from (log_age_yr, log_mass_msun, av_mag) tuples."""
    df = pd.DataFrame(rows, columns=["log_age_yr", "log_mass_msun", "av_mag"])
    df.insert(0, "cluster_id", np.arange(1, len(df) + 1))
    return df


# --- reading catalogs -------------------------------------------------------------------


def write_phatter(path):
    t = Table()
    t["ID"] = MaskedColumn([11, 12, 13], dtype=np.int32)
    t["RA"] = [23.5, 23.6, 23.7]
    t["DEC"] = [30.5, 30.6, 30.7]
    t["RADIUS_ARCSEC"] = [1.1, 1.2, 1.3]
    for name, values in {
        "Age": ([7.9, 8.4, 1e20], [8.0, 8.5, 1e20], [8.1, 8.6, 1e20]),
        "Mass": ([3.4, 3.9, 1e20], [3.5, 4.0, 1e20], [3.6, 4.1, 1e20]),
        "AV": ([0.2, 0.6, 1e20], [0.3, 0.7, 1e20], [0.4, 0.8, 1e20]),
    }.items():
        for suffix, column in zip(("16", "Med", "84"), values, strict=True):
            t[f"{name}_{suffix}"] = column
    # MAG336 of row 2 has no uncertainty (SIG = -99, a limit); MAG814 of row 3 is masked.
    t["MAG336"] = MaskedColumn(np.array([19.0, 21.5, 20.0], dtype=np.float32))
    t["SIG336"] = np.array([0.05, -99.0, 0.1], dtype=np.float32)
    t["MAG475"] = MaskedColumn(np.array([19.5, 20.5, 20.2], dtype=np.float32))
    t["SIG475"] = np.array([0.03, 0.04, 0.05], dtype=np.float32)
    t["MAG814"] = MaskedColumn(
        np.array([18.5, 19.8, 0.0], dtype=np.float32), mask=[False, False, True]
    )
    t["SIG814"] = np.array([0.06, 0.07, -99.0], dtype=np.float32)
    t.write(path, format="fits")
    return path


def test_phatter_reader_maps_columns_and_sentinels(tmp_path):
    cat = read_phatter_catalog(write_phatter(tmp_path / "m33.fits"), bands=BANDS)
    assert list(cat["cluster_id"]) == [11, 12, 13]
    assert cat["log_age_yr"].tolist()[:2] == pytest.approx([8.0, 8.5])
    assert cat["log_age_yr_p16"].iloc[0] == pytest.approx(7.9)
    assert cat["log_age_yr_p84"].iloc[1] == pytest.approx(8.6)
    assert cat["log_mass_msun"].iloc[1] == pytest.approx(4.0)
    assert cat["av_mag"].tolist()[:2] == pytest.approx([0.3, 0.7])
    assert cat["radius_arcsec"].iloc[2] == pytest.approx(1.3)
    # the 1e20 sentinel row has no age, mass or extinction
    assert cat.loc[2, ["log_age_yr", "log_mass_msun", "av_mag", "av_mag_p84"]].isna().all()
    assert cat["mag_F336W"].iloc[0] == pytest.approx(19.0)
    assert cat["mag_err_F336W"].iloc[0] == pytest.approx(0.05)
    assert np.isnan(cat["mag_F336W"].iloc[1]) and np.isnan(cat["mag_err_F336W"].iloc[1])
    assert np.isnan(cat["mag_F814W"].iloc[2])
    assert cat["mag_F475W"].tolist() == pytest.approx([19.5, 20.5, 20.2])


def test_phatter_reader_rejects_other_tables(tmp_path):
    path = tmp_path / "other.fits"
    Table({"ID": [1], "RA": [1.0]}).write(path)
    with pytest.raises(InputFileError, match="missing"):
        read_phatter_catalog(path, bands=BANDS)


def test_m31_reader_joins_on_apid_and_drops_limits(tmp_path):
    phot = Table()
    phot["APID"] = np.array([1, 2, 3, 4], dtype=np.int32)
    phot["RAdeg"] = [10.1, 10.2, 10.3, 10.4]
    phot["DEdeg"] = [41.1, 41.2, 41.3, 41.4]
    phot["Rap"] = [1.5, 1.6, 1.7, 1.8]
    for band, mags, limits in (
        ("F336W", [20.0, 21.0, 22.0, 23.0], ["", ">", "", ""]),
        ("F475W", [20.5, 21.5, 22.5, 23.5], ["", "", "", ""]),
        ("F814W", [19.5, 20.5, 21.5, 22.5], ["", "", ">", ""]),
    ):
        phot[band] = mags
        phot[f"e_{band}"] = MaskedColumn(
            [0.01, 0.02, 0.03, 0.04], mask=[limit == ">" for limit in limits]
        )
        phot[f"l_{band}"] = MaskedColumn(limits, mask=[limit == "" for limit in limits])
    ages = Table()
    ages["APID"] = np.array([3, 1, 9], dtype=np.int16)  # 9 has no photometry
    ages["logAge"] = [8.3, 7.5, 8.0]
    ages["b_logAge"] = [8.2, 7.4, 7.9]
    ages["B_logAge"] = [8.4, 7.6, 8.1]
    ages["logMass"] = [3.2, 3.8, 3.0]
    ages["b_logMass"] = [3.1, 3.7, 2.9]
    ages["B_logMass"] = [3.3, 3.9, 3.1]
    phot.write(tmp_path / "t2.fits")
    ages.write(tmp_path / "t4.fits")

    cat = read_phat_m31_catalog(tmp_path / "t2.fits", tmp_path / "t4.fits", bands=BANDS)
    assert list(cat["cluster_id"]) == [3, 1]  # inner join, order of the ages table
    assert cat["log_age_yr"].tolist() == pytest.approx([8.3, 7.5])
    assert cat["log_mass_msun_p84"].tolist() == pytest.approx([3.3, 3.9])
    assert cat["ra_deg"].tolist() == pytest.approx([10.3, 10.1])
    assert cat["av_mag"].isna().all()
    assert np.isnan(cat["mag_F814W"].iloc[0])  # APID 3: F814W is a limit
    assert cat["mag_F336W"].tolist() == pytest.approx([22.0, 20.0])
    assert cat["mag_err_F475W"].tolist() == pytest.approx([0.03, 0.01])


# --- predicting colours -----------------------------------------------------------------


def test_snap_to_grid_nearest_and_outside():
    grid = np.array([7.0, 8.0, 9.0])
    snapped, inside = snap_to_grid([6.4, 6.6, 7.4, 7.6, 9.4, 9.6, np.nan], grid)
    assert snapped[1:5].tolist() == [7.0, 7.0, 8.0, 9.0]
    assert inside.tolist() == [False, True, True, True, True, False, False]
    fine = np.round(np.arange(6.6, 9.501, 0.05), 2)
    snapped, inside = snap_to_grid([6.574, 6.576, 8.123, 9.52, 9.53], fine)
    assert inside.tolist() == [False, True, True, True, False]
    assert snapped[2] == pytest.approx(8.10)


def test_realisations_match_cluster_stars(population):
    """The batched draw equals cluster_stars + integrated_magnitudes with the same stream."""
    batched = realisation_magnitudes(population, 8.0, 3e3, 0.5, 3, np.random.default_rng(7))
    rng = np.random.default_rng(7)
    for k in range(3):
        mags = population.integrated_magnitudes(population.cluster_stars(8.0, 3e3, 0.5, rng))
        assert batched[k] == pytest.approx([mags[b] for b in BANDS], abs=1e-9)


def test_young_cluster_is_bluer_in_f336w_f475w(population):
    cat = catalog([(7.0, 4.0, 0.0), (9.0, 4.0, 0.0)])
    pred, counts = predict_colours(population, cat, np.random.default_rng(1), n_realisations=10)
    assert counts["n_predicted"] == 2
    young, old = pred["model_F336W_F475W_p50"]
    assert old - young > 0.8  # SSP: about -1.3 at 10 Myr, +0.3 at 1 Gyr
    for colour in ("F336W_F475W", "F475W_F814W"):
        assert (pred[f"model_{colour}_p16"] <= pred[f"model_{colour}_p50"]).all()
        assert (pred[f"model_{colour}_p50"] <= pred[f"model_{colour}_p84"]).all()


def test_extinction_reddens_and_q_is_reddening_free(population):
    k, q_terms = reddening_free_index(population, *BANDS)
    assert 0.6 < k < 0.9
    indices = colour_indices([("F336W", "F475W"), ("F475W", "F814W")]) | {"Q": q_terms}
    cat = catalog([(8.0, 4.5, 0.0)])
    clear, _ = predict_colours(population, cat, np.random.default_rng(3), 5, indices)
    dusty, _ = predict_colours(
        population, cat.assign(av_mag=1.0), np.random.default_rng(3), 5, indices
    )
    # same random stream, so the same stars: only the extinction differs
    assert (dusty["model_F336W_F475W_p50"] - clear["model_F336W_F475W_p50"]).item() > 0.35
    assert (dusty["model_F475W_F814W_p50"] - clear["model_F475W_F814W_p50"]).item() > 0.45
    assert abs((dusty["model_Q_p50"] - clear["model_Q_p50"]).item()) < 0.05


def test_skipped_clusters_are_counted(population):
    cat = catalog(
        [
            (8.0, 3.0, 0.2),  # predicted
            (6.0, 3.0, 0.2),  # younger than the grid (7.0 - half a step)
            (9.6, 3.0, 0.2),  # older than the grid
            (8.0, np.nan, 0.2),  # no mass
            (np.nan, 3.0, 0.2),  # no age
            (8.0, 3.0, np.nan),  # no A_V
            (8.0, 3.0, 2.5),  # A_V beyond the extinction table (max 1.0)
            (7.4, 3.0, 0.0),  # snapped to 7.0, predicted
        ]
    )
    pred, counts = predict_colours(population, cat, np.random.default_rng(0), n_realisations=2)
    assert counts == {
        "n_catalog": 8,
        "missing_age_or_mass": 2,
        "missing_av": 1,
        "outside_age_grid": 2,
        "outside_av_table": 1,
        "n_predicted": 2,
    }
    assert pred["cluster_id"].tolist() == [1, 8]
    assert pred["log_age_grid_yr"].tolist() == [8.0, 7.0]
    # a default A_V fills in the missing one
    _, counts = predict_colours(
        population, cat, np.random.default_rng(0), n_realisations=2, default_av_mag=0.3
    )
    assert counts["missing_av"] == 0 and counts["n_predicted"] == 3


def test_prediction_is_reproducible(population):
    cat = catalog([(8.0, 3.5, 0.3), (9.0, 3.0, 0.0)])
    a, _ = predict_colours(population, cat, np.random.default_rng(42), n_realisations=4)
    b, _ = predict_colours(population, cat, np.random.default_rng(42), n_realisations=4)
    pd.testing.assert_frame_equal(a, b)


def test_no_realisations_is_an_error(population):
    with pytest.raises(ValueError, match="n_realisations"):
        predict_colours(population, catalog([(8.0, 3.0, 0.0)]), np.random.default_rng(0), 0)


# --- residuals ----------------------------------------------------------------------------


def test_residuals_and_summary():
    prediction = pd.DataFrame(
        {
            "cluster_id": [1, 2, 3],
            "log_age_yr": [7.2, 7.3, 8.2],
            "log_mass_msun": [3.0, 3.0, 4.0],
            "model_F336W_F475W_p16": [-1.2, -1.0, -0.6],
            "model_F336W_F475W_p50": [-1.0, -0.8, -0.5],
            "model_F336W_F475W_p84": [-0.8, -0.6, -0.4],
        }
    )
    cat = pd.DataFrame(
        {
            "cluster_id": [3, 2, 1],
            "mag_F336W": [20.0, 19.0, 18.0],
            "mag_err_F336W": [0.03, 0.0, 0.3],
            "mag_F475W": [20.3, 19.0, 18.5],
            "mag_err_F475W": [0.04, 0.0, 0.4],
        }
    )
    res = colour_residuals(cat, prediction, [("F336W", "F475W")])
    # observed colours: -0.5, 0.0, -0.3 for clusters 1, 2, 3
    assert res["obs_F336W_F475W"].tolist() == pytest.approx([-0.5, 0.0, -0.3])
    assert res["resid_F336W_F475W"].tolist() == pytest.approx([0.5, 0.8, 0.2])
    assert res["obs_err_F336W_F475W"].tolist() == pytest.approx([0.5, 0.0, 0.05])
    # 1: within 0.2 (+) 0.5 of the median; 2: 0.8 above with no error; 3: 0.2 > hypot(0.1, 0.05)
    assert res["consistent_F336W_F475W"].tolist() == [True, False, False]

    summary = summarise_residuals(res, ["F336W_F475W"], edges=(7.0, 8.0, 9.0))
    young, old = summary.itertuples()
    assert (young.n, old.n) == (2, 1)
    assert young.median_resid == pytest.approx(0.65)
    assert young.scatter == pytest.approx(0.5 * 0.68 * 0.3)  # 16-84 % of two points
    assert young.model_spread == pytest.approx(0.2)
    assert young.frac_consistent == pytest.approx(0.5)
    assert old.median_resid == pytest.approx(0.2) and old.frac_consistent == 0.0
