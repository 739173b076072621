"""Synthetic HST photometry from broadband magnitudes, checked on real spectra."""

import numpy as np
import pytest

from starclusters.photometry.synphot import (
    PARSEC_SED,
    _vega,
    blackbody_magnitude,
    planck_flam,
    synthetic_magnitude,
)

# Largest errors measured on the Sun and Vega (docs/photometry.md), with margin.
TOLERANCE_MAG = {
    "HST_WFC3_F336W": 0.12,
    "HST_WFC3_F438W": 0.03,
    "HST_WFC3_F814W": 0.01,
    "HST_ACS_WFC_F475W": 0.02,
    "HST_ACS_WFC_F814W": 0.01,
}


def spectra():
    from pyphot import Sun

    sun = Sun(flavor="observed")
    yield "vega", *_vega(), np.log10(9550.0)
    yield (
        "sun",
        np.asarray(sun.wavelength.to("AA").value),
        np.asarray(sun.flux.to("flam").value),
        np.log10(5772.0),
    )


@pytest.mark.parametrize("curve", sorted(TOLERANCE_MAG))
def test_reconstruction_matches_real_spectra(curve):
    for name, wave, flam, log_teff in spectra():
        predicted = PARSEC_SED.predict(PARSEC_SED.anchor_table(wave, flam, log_teff), curve)[0]
        truth = float(synthetic_magnitude(curve, wave, flam, "vega"))
        assert predicted == pytest.approx(truth, abs=TOLERANCE_MAG[curve]), name


def test_vega_is_zero_in_every_vega_band():
    wave, flam = _vega()
    for curve in TOLERANCE_MAG:
        assert synthetic_magnitude(curve, wave, flam, "vega") == pytest.approx(0.0, abs=1e-9)


def test_black_body_is_reproduced_exactly():
    # A pure black body needs no correction: delta = 0 at every knot.
    wave = np.geomspace(1000, 30000, 3000)
    for teff in (4000.0, 10000.0, 30000.0):
        flam = planck_flam(wave, np.array([teff]))[0]
        table = PARSEC_SED.anchor_table(wave, flam, np.log10(teff))
        assert np.abs(PARSEC_SED.fit_delta(table)).max() < 0.02
        for curve in ("HST_WFC3_F336W", "HST_WFC3_F814W"):
            bb = blackbody_magnitude(curve, np.log10(teff))
            assert PARSEC_SED.predict(table, curve)[0] == pytest.approx(bb, abs=0.02)


def test_hotter_is_bluer():
    hot = blackbody_magnitude("HST_WFC3_F336W", 4.3) - blackbody_magnitude("HST_WFC3_F814W", 4.3)
    cool = blackbody_magnitude("HST_WFC3_F336W", 3.6) - blackbody_magnitude("HST_WFC3_F814W", 3.6)
    assert hot < cool
