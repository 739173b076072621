"""Isochrone interpolation along evolutionary phase, and integrated SSP colours."""

import numpy as np
import pytest

from starclusters.errors import ConfigError
from starclusters.photometry.imf import kroupa_imf
from starclusters.photometry.isochrones import (
    interpolate_isochrones,
    isochrones_on_grid,
    ssp_magnitudes,
)

BANDS = ["johnson_u", "johnson_b", "johnson_v", "johnson_i"]


def colours(mags):
    """V and the U-B, B-V, V-I colours of an SSP."""
    return np.array(
        [
            mags["johnson_v"],
            mags["johnson_u"] - mags["johnson_b"],
            mags["johnson_b"] - mags["johnson_v"],
            mags["johnson_v"] - mags["johnson_i"],
        ]
    )


def solar_metallicity(grid):
    z = sorted(grid["metallicity_z"].unique())[-2]  # Z = 0.0164
    return grid[grid["metallicity_z"] == z]


def test_phase_interpolation_beats_snapping(parsec_grid):
    """Leave each interior grid age out, rebuild it from its neighbours (0.24 dex apart)."""
    imf = kroupa_imf()
    sub = solar_metallicity(parsec_grid)
    ages = np.sort(sub["log_age_yr"].unique())
    interp_err, snap_err = [], []
    for i in range(1, len(ages) - 1):
        younger, truth, older = (sub[sub["log_age_yr"] == ages[k]] for k in (i - 1, i, i + 1))
        target = colours(ssp_magnitudes(truth, imf, BANDS))
        rebuilt = interpolate_isochrones(younger, older, 0.5)
        interp_err.append(colours(ssp_magnitudes(rebuilt, imf, BANDS)) - target)
        snap_err.append(colours(ssp_magnitudes(younger, imf, BANDS)) - target)
    interp_med = np.median(np.abs(interp_err), axis=0)
    snap_med = np.median(np.abs(snap_err), axis=0)
    assert np.all(interp_med < snap_med)
    assert interp_med[0] < 0.05  # V per unit mass
    assert np.all(interp_med[1:] < 0.03)  # colours


def test_interpolated_isochrone_has_increasing_masses(parsec_grid):
    sub = solar_metallicity(parsec_grid)
    iso = isochrones_on_grid(sub, np.array([7.03, 8.51, 9.99]), float(sub["metallicity_z"].iloc[0]))
    for _, one in iso.groupby("log_age_yr"):
        assert np.all(np.diff(one["mini_msun"].to_numpy()) > 0)
        assert set(one["phase_label"]) >= {1}


def test_on_grid_age_returns_the_grid_isochrone(parsec_grid):
    z = sorted(parsec_grid["metallicity_z"].unique())[-1]
    sub = parsec_grid[parsec_grid["metallicity_z"] == z]
    iso = isochrones_on_grid(sub, np.array([8.04]), float(z))
    truth = sub[sub["log_age_yr"] == 8.04]
    np.testing.assert_allclose(iso["abs_mag_johnson_v"], truth["abs_mag_johnson_v"])


def test_metallicity_between_grid_values(parsec_grid):
    """Z = 0.009 (M31) lies between 0.0054 and 0.0095; the result lies between its neighbours."""
    imf = kroupa_imf()
    metal = {
        z: isochrones_on_grid(parsec_grid, np.array([9.0]), z)
        for z in (0.0054091, 0.009, 0.0094713)
    }
    v_i = {z: colours(ssp_magnitudes(iso, imf, BANDS))[3] for z, iso in metal.items()}
    assert min(v_i[0.0054091], v_i[0.0094713]) <= v_i[0.009] <= max(v_i[0.0054091], v_i[0.0094713])
    assert metal[0.009]["metallicity_z"].iloc[0] == pytest.approx(0.009, rel=1e-6)


def test_age_outside_grid_names_the_key(parsec_grid):
    with pytest.raises(ConfigError, match="photometry.isochrones.log_age_yr"):
        isochrones_on_grid(parsec_grid, np.array([10.5]), 0.0164)


def test_metallicity_outside_grid_names_the_key(parsec_grid):
    with pytest.raises(ConfigError, match="photometry.isochrones.metallicity_z"):
        isochrones_on_grid(parsec_grid, np.array([8.0]), 0.06, z_tolerance_dex=0.05)
    # within the tolerance the edge metallicity is used
    iso = isochrones_on_grid(parsec_grid, np.array([8.0]), 0.03, z_tolerance_dex=0.05)
    assert iso["metallicity_z"].iloc[0] == pytest.approx(parsec_grid["metallicity_z"].max())


def test_ssp_colours_redden_with_age(small_population):
    """A known SSP trend: younger populations are bluer in both colours (red supergiants
    make 10–30 Myr populations temporarily redder in B - I, so compare widely spaced ages)."""
    ages = [6.6, 7.4, 8.2, 9.0, 9.8]
    mags = [
        ssp_magnitudes(
            small_population.isochrone(a), small_population.imf, ["F336W", "F438W", "F814W"]
        )
        for a in ages
    ]
    u_b = [m["F336W"] - m["F438W"] for m in mags]
    b_i = [m["F438W"] - m["F814W"] for m in mags]
    assert u_b[0] < u_b[2] < u_b[-1]
    assert b_i[0] < b_i[2] < b_i[-1]
    # and fainter per unit mass as they age
    assert mags[0]["F814W"] < mags[2]["F814W"] < mags[-1]["F814W"]


@pytest.mark.parametrize("metallicity_z", [0.008, 0.0278])
def test_colours_change_continuously_with_age(parsec_grid, metallicity_z):
    """No jumps where the interpolation switches inputs: at grid ages and mid-interval.

    (A run present in one isochrone only used to be copied from the nearer one,
    which made colours jump by up to 0.8 mag at interval mid-points.)
    """
    imf = kroupa_imf()
    pairs = [
        (7.0799, 7.08),
        (7.08, 7.0801),
        (7.019, 7.021),
        (7.979, 7.981),
        (8.699, 8.701),
        (9.539, 9.541),
    ]
    for younger, older in pairs:
        iso = isochrones_on_grid(parsec_grid, np.array([younger, older]), metallicity_z, 0.05)
        b_i = [
            colours(ssp_magnitudes(one, imf, BANDS))[2]
            + colours(ssp_magnitudes(one, imf, BANDS))[3]
            for _, one in iso.groupby("log_age_yr")
        ]
        assert abs(b_i[1] - b_i[0]) < 0.05, (younger, older, b_i)


def test_phases_stay_in_mass_order_after_interpolation(parsec_grid):
    """Interpolated isochrones keep the TP-AGB above core helium burning in initial mass.

    (Copying a phase without moving it once put the TP-AGB at 5.21 Msun inside the
    5.09–5.30 Msun core-He-burning range at Z = 0.008, log t = 7.98–8.03.)
    """
    ages = np.round(np.arange(7.5, 8.6, 0.01), 4)
    iso = isochrones_on_grid(parsec_grid, ages, 0.008)
    checked = 0
    for _, one in iso.groupby("log_age_yr"):
        tpagb = one.loc[one["phase_label"] == 8, "mini_msun"]
        cheb = one.loc[one["phase_label"].isin([4, 5, 6]), "mini_msun"]
        if len(tpagb) and len(cheb):
            assert tpagb.min() >= cheb.max()
            checked += 1
    assert checked > 50
