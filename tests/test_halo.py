"""The model PSF's halo (issue 16): the shipped fit reproduces STScI's WFC3/UVIS encircled
energies where the diffraction model does not; the FWHM scale widens the PSF; bad
combinations say which key."""

import numpy as np
import pytest

from starclusters.errors import ConfigError
from starclusters.mocks.halo import (
    HaloParams,
    add_halo,
    ee_shape_error,
    encircled_energy,
    halo_kernel,
    halo_params,
    read_ee_table,
)
from starclusters.mocks.psf import half_light_radius_px, psf_for_band
from starclusters.mocks.stage import make_psf

SCALE_ARCSEC = 0.04
OVERSAMPLING = 5  # the fit's (docs/scripts/fit_psf_halo.py)


def test_the_encircled_energy_table_is_stscis():
    radii, table = read_ee_table()
    assert radii[0] == pytest.approx(0.04) and radii[-1] == pytest.approx(6.0)
    assert table.loc["F336W", "APER#0.40"] == pytest.approx(0.8944)
    assert table.loc["F814W", "WAVELENGTH"] == pytest.approx(8029.3, abs=0.1)


@pytest.mark.parametrize("band", ["F336W", "F814W"])
def test_the_fitted_halo_matches_the_handbook_encircled_energy(band):
    """EE(r)/EE(1.98″): the diffraction model is off by up to ~0.2; with the shipped halo
    within 0.035 everywhere and 0.015 beyond 0.2″ (apertures of cluster photometry)."""
    curve = f"HST_WFC3_{band}"
    fine = SCALE_ARCSEC / OVERSAMPLING
    bare = psf_for_band(band, curve, SCALE_ARCSEC, OVERSAMPLING, 6.0)
    with_halo, fraction = psf_for_band(
        band, curve, SCALE_ARCSEC, OVERSAMPLING, 6.0, halo=True, with_enclosed_fraction=True
    )
    before = ee_shape_error(bare, fine, band)
    after = ee_shape_error(with_halo, fine, band)
    assert before.abs().max() > 0.15
    assert after.abs().max() < 0.035
    assert after[after.index > 0.2].abs().max() < 0.015
    assert 0.98 < fraction < 1.0 and with_halo.sum() == pytest.approx(1.0)


def test_halo_kernel_and_fraction():
    kernel = halo_kernel(HaloParams(0.02, 0.1, 0.8), 201, 0.008)
    assert kernel.sum() == pytest.approx(1.0, abs=2e-3)  # less the far halo beyond the grid
    point = np.zeros((201, 201))
    point[100, 100] = 1.0
    spread, kept = add_halo(point, 0.008, HaloParams(0.02, 0.3, 0.8))
    assert kept < 1.0 and spread.sum() == pytest.approx(1.0)
    ee = encircled_energy(spread, 0.008, [0.05, 0.4])
    assert ee[0] < 0.75 < ee[1]  # the halo takes light far out of the core


def test_fwhm_scale_widens_the_psf():
    base = psf_for_band("F438W", "HST_WFC3_F438W", SCALE_ARCSEC, 3, 3.0)
    wide = psf_for_band("F438W", "HST_WFC3_F438W", SCALE_ARCSEC, 3, 3.0, fwhm_scale=1.2)
    ratio = half_light_radius_px(wide, 3) / half_light_radius_px(base, 3)
    assert 1.1 < ratio < 1.25  # the pixel and charge diffusion are not dilated


def test_halo_only_where_it_was_fitted(default_config):
    with pytest.raises(ConfigError, match="psf.halo.*WFC3/UVIS"):
        halo_params("HST_ACS_WFC_F814W")
    with pytest.raises(ConfigError, match="no halo fitted for F218W"):
        halo_params("HST_WFC3_F218W")
    psf = dict(default_config["psf"], source="files", files={"F336W": "x.fits"})
    with pytest.raises(ConfigError, match="psf.files.F336W.*GalSim model only"):
        make_psf("F336W", psf, "HST_WFC3_F336W", SCALE_ARCSEC, halo=True)


def test_config_checks_the_halo(default_config):
    from starclusters.config import check_config

    config = {**default_config, "psf": dict(default_config["psf"], halo=True)}
    check_config(config)  # the default's three WFC3/UVIS bands are fitted
    acs = {
        **config,
        "photometry": dict(
            config["photometry"],
            filter_curves={**config["photometry"]["filter_curves"], "F814W": "HST_ACS_WFC_F814W"},
        ),
    }
    with pytest.raises(ConfigError, match="psf.halo"):
        check_config(acs)
    files = {
        **default_config,
        "psf": dict(default_config["psf"], source="files"),
        "mosaic": dict(
            default_config["mosaic"],
            synthetic=dict(default_config["mosaic"]["synthetic"], psf_fwhm_scale=1.1),
        ),
    }
    with pytest.raises(ConfigError, match=r"mosaic.synthetic.psf_fwhm_scale|psf.files"):
        check_config(files)
