"""The fast renderer against drawing every star separately with GalSim."""

import galsim
import numpy as np
import pytest

from starclusters.mocks.psf import effective_psf, hst_optical_psf
from starclusters.mocks.render import StampRenderer

SCALE, STAMP, OVERSAMPLING = 0.04, 64, 7
#: Total-flux tolerance. At 336 nm two GalSim drawings of the same model PSF differ
#: by 0.12 % in the light they put inside a 64-px stamp (drawImage at the native
#: scale vs the ePSF drawn 7× finer); the renderer reproduces its ePSF exactly.
TOTAL_TOLERANCE = {336.0: 1.5e-3, 806.0: 1e-3}


def per_star_galsim(model, positions_arcsec, fluxes):
    """Reference: each star drawn with drawImage (PSF ⊗ pixel), centre on pixel (32, 32)."""
    image = galsim.ImageD(STAMP, STAMP, scale=SCALE)
    for (x, y), flux in zip(positions_arcsec, fluxes, strict=True):
        # GalSim's true centre of an even image is a pixel corner; the stamp centre is the
        # centre of 0-based pixel 32, half a pixel further along both axes.
        model.withFlux(flux).drawImage(
            image=image, add_to_image=True, offset=(x / SCALE + 0.5, y / SCALE + 0.5), method="auto"
        )
    return image.array


@pytest.fixture(scope="module", params=[336.0, 806.0], ids=["F336W", "F814W"])
def band(request):
    model = hst_optical_psf(request.param)
    epsf, fraction = effective_psf(model, SCALE, OVERSAMPLING, 6.0, with_enclosed_fraction=True)
    renderer = StampRenderer(epsf[None], OVERSAMPLING, SCALE, STAMP, flux_fraction=[fraction])
    renderer.wavelength_nm = request.param
    return model, renderer


@pytest.fixture(scope="module")
def cluster():
    """80 stars: a concentrated cluster, a few bright ones, some outside the stamp.

    Stars outside the stamp stay within 1.7″ of its centre so that every pixel lies
    within the 6″ PSF box of every star (the PSF model ends there by definition).
    """
    rng = np.random.default_rng(5)
    positions = rng.normal(0.0, 0.25, (80, 2))
    positions[:6] = rng.uniform(1.3, 1.7, (6, 2)) * rng.choice(
        [-1, 1], (6, 2)
    )  # beyond the 1.28″ edge
    fluxes = 10 ** rng.uniform(-1.0, 1.5, 80)
    fluxes[6:9] = [400.0, 250.0, 120.0]  # bright stars near the centre at sub-pixel offsets
    positions[6:9] = [[0.013, -0.007], [0.05, 0.031], [-0.022, 0.061]]
    return positions, fluxes


def test_matches_per_star_galsim(band, cluster):
    model, renderer = band
    positions, fluxes = cluster
    fast = renderer.render(positions, fluxes[:, None])[0].astype(np.float64)
    reference = per_star_galsim(model, positions, fluxes)
    assert np.abs(fast - reference).max() < 0.01 * reference.max()
    assert fast.sum() == pytest.approx(reference.sum(), rel=TOTAL_TOLERANCE[renderer.wavelength_nm])


def test_single_star_flux_and_centre(band):
    model, renderer = band
    fast = renderer.render(np.array([[0.0, 0.0]]), np.array([[100.0]]))[0]
    assert np.unravel_index(np.argmax(fast), fast.shape) == (STAMP // 2, STAMP // 2)
    # the whole stamp (2.56″) holds what GalSim puts in it
    reference = per_star_galsim(model, np.zeros((1, 2)), np.array([100.0]))
    assert fast.sum() == pytest.approx(reference.sum(), rel=TOTAL_TOLERANCE[renderer.wavelength_nm])


def test_sub_pixel_shift_moves_the_light(band):
    _, renderer = band
    right = renderer.render(np.array([[0.3 * SCALE, 0.0]]), np.array([[1.0]]))[0]
    c = STAMP // 2
    assert right[c, c + 1] > right[c, c - 1]  # light moves to the +x (column) side
    up = renderer.render(np.array([[0.0, 0.3 * SCALE]]), np.array([[1.0]]))[0]
    assert up[c + 1, c] > up[c - 1, c]


def test_dark_and_empty():
    epsf = np.zeros((43, 43))
    epsf[21, 21] = 1.0
    renderer = StampRenderer(epsf[None], 3, SCALE, 16, core_radius_px=2)
    assert renderer.render(np.zeros((0, 2)), np.zeros((0, 1))).sum() == 0.0
    with pytest.raises(ValueError, match="odd"):
        StampRenderer(epsf[None], 4, SCALE, 16)


def test_a_grid_bounded_by_the_star_radius_changes_nothing(band, cluster):
    model, full = band
    positions, fluxes = cluster
    bounded = StampRenderer(
        full.epsfs,
        OVERSAMPLING,
        SCALE,
        STAMP,
        flux_fraction=full.flux_fraction,
        max_star_radius_arcsec=2.5,
    )
    np.testing.assert_allclose(
        bounded.render(positions, fluxes[:, None]),
        full.render(positions, fluxes[:, None]),
        rtol=1e-5,
        atol=1e-6,
    )
