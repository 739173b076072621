"""Effective PSFs (ePSFs) of HST/WFC3-UVIS and ACS/WFC for drawing mock clusters star by star.

Convention
----------
An **ePSF** is the optical PSF already convolved with the detector's charge
diffusion and the native pixel response (a box one native pixel wide), sampled
at points ``oversampling`` times closer than the native pixels:

* a float64 array (n, n), n odd; element (c, c) with c = n // 2 is the centre
  (row = y, column = x, both increasing with the array index);
* fine pixel scale ``native_scale_arcsec / oversampling``;
* normalised so the array sums to 1 (the light beyond the array, 0.4–0.9 % of a
  6″ model PSF, is thereby put back inside it);
* a unit-flux star centred on a native pixel puts into the native pixel (k, l)
  pixels away the fraction ``oversampling**2 * epsf[c + k*oversampling, c + l*oversampling]``
  of its flux; a star at sub-pixel offset (dx, dy) native pixels samples the same
  grid shifted by (dx, dy) * oversampling fine elements.

The native pixel is the pixel of the image the mocks are drawn for (e.g. a mosaic
resampled to 0.05″), which need not be the detector's: charge diffusion is defined
per *detector* pixel and is converted to arcsec with the detector pixel (0.0395″
WFC3/UVIS, 0.0495″ ACS/WFC) before the ePSF is drawn on the native grid.

ePSFs come from the GalSim model of this module (the default) or from a FITS file
that follows the convention (:func:`read_psf` checks it).

The GalSim model (:func:`hst_optical_psf`)
------------------------------------------
Monochromatic at the filter's pivot wavelength, for the camera named by the
filter curve (:func:`camera_for_filter_curve`: ``HST_WFC3_*`` → WFC3/UVIS,
``HST_ACS_WFC_*`` → ACS/WFC):

* pupil: 2.4 m primary, secondary obscuration 0.33 of the diameter, four spiders
  0.011 of the diameter wide (TinyTim's HST pupil tables: secondary radius 0.330
  and spider width 0.022 in units of the pupil radius, the same in the WFC3/UVIS
  and ACS/WFC tables; neither camera adds obscurations of its own). TinyTim draws
  the spiders along the V2 and V3 axes and rotates the pupil into the detector
  frame; four spiders repeat every 90°, so only the rotation modulo 90° matters:

  - WFC3/UVIS: ``wfc3_uvis1.pup`` rotates by 135°, so the spiders (and the
    diffraction spikes) lie at 45° to the detector axes;
  - ACS/WFC: ``acswfc1.pup``/``acswfc2.pup`` rotate by −90°, so the spiders lie
    along the detector axes (0°). TinyTim's detector X,Y → V2,V3 coefficients in
    the same files agree: X is 2.7° (WFC1) or 2.2° (WFC2) from V3 and Y 2.5° or
    1.7° from V2, in opposite senses, i.e. the skew of the WFC pixel grid with a
    mean rotation below 0.3°; the model has square pixels and ignores the ±2°.

* CCD charge diffusion: a Gaussian with the second moment (per-axis variance) of
  the kernels TinyTim applies, interpolated linearly in wavelength as TinyTim
  does, in detector pixels converted to arcsec with the detector pixel:

  - WFC3/UVIS: the thermal-vacuum 3×3 kernels at 400, 600 and 800 nm (Hartig,
    WFC3 ISR 2008-40, as tabulated in ``wfc3_uvis1.pup``/``wfc3_uvis2.pup``):
    sigma = 0.53, 0.51, 0.40 native pixels at F336W, F438W, F814W
    (:func:`uvis_charge_diffusion_sigma_px`);
  - ACS/WFC: the ground-test 3×3 kernels at 400, 600 and 800 nm plus the
    field-dependent in-flight blur (Krist, ACS ISR 2003-06) averaged over both
    chips, both from ``acswfc1.pup``/``acswfc2.pup``: sigma = 0.64, 0.61, 0.55,
    0.48 ACS pixels at F435W, F475W, F550M, F814W
    (:func:`acs_wfc_charge_diffusion_sigma_px`).

Not modelled: the three primary-mirror pads, field-dependent aberrations and
focus breathing, the mid-frequency wavefront error of the telescope (which
scatters light from the core into a halo, strongest in the UV), pointing jitter,
geometric distortion (pixels are square), the blur that resampling (drizzling)
onto a mosaic adds, and the spread of wavelengths within a filter.

WFC3/UVIS, measured at 0.04″/px (``oversampling`` 4, 6″) against the WFC3
Instrument Handbook: FWHM of its model PSF core before pixelation (Table 6.7,
approximate: ~0.07″ at 300–400 nm, 0.067″ at 500–600 nm, 0.074″ at 800 nm) and
encircled energy within 0.4″ (UVIS2 aperture-correction table, normalised at
r = 6″, 2016):

=====  ==============  ===============  ============  =============  ==============
band   FWHM w/o pixel  FWHM (handbook)  FWHM of ePSF  EE(0.4″) here  EE(0.4″) hbook
=====  ==============  ===============  ============  =============  ==============
F336W  0.059″          ~0.073″          0.068″        0.968          0.894
F438W  0.059″          ~0.069″          0.068″        0.962          0.909
F814W  0.076″          ~0.075″          0.080″        0.941          0.902
=====  ==============  ===============  ============  =============  ==============

ACS/WFC, measured at 0.05″/px (``oversampling`` 5, 6″) against the encircled
energy within 0.4″ = 8 pixels of Bohlin (2016, AJ 152, 60; Table 8, hot stars,
normalised at r = 5.5″; the ACS aperture-correction table ``bohlin2016_wfc_ee``).
The ACS Instrument Handbook gives no FWHM per filter; it quotes 0.10–0.13″ for
F550M over the WFC field (Cycle 14 edition, §5.6.6 Residual Aberrations; the
spread is charge diffusion varying with CCD thickness) and 0.100–0.140″ for
well-dithered data (§5.3):

=====  ==============  ============  =============  ===============
band   FWHM w/o pixel  FWHM of ePSF  EE(0.4″) here  EE(0.4″) Bohlin
=====  ==============  ============  =============  ===============
F475W  0.086″          0.095″        0.959          0.901
F550M  0.080″          0.090″        0.955          0.904
F814W  0.084″          0.091″        0.944          0.901
=====  ==============  ============  =============  ===============

The UVIS core is right to a few per cent in the red and ~20 % too narrow in the
UV; the ACS/WFC core is ~10 % narrower than the narrowest the handbook quotes.
4–7 % of the light that the real PSF scatters beyond 0.4″ stays inside it here,
in both cameras; the core holds too much light as well (ACS/WFC within 0.1″:
0.82 and 0.70 here against 0.67 and 0.61 in Bohlin's table, F475W and F814W).
Both come mostly from the missing mid-frequency wavefront error, jitter and focus
breathing; on a drizzled mosaic the resampling kernel widens the real PSF
further (drizzling onto the same 0.05″ grid with pixfrac 1 adds two more 0.05″
boxes: ACS F814W 0.091″ → 0.105″). Use FITS PSFs where that matters.

User-supplied PSFs (e.g. TinyTim)
---------------------------------
A FITS PSF must already follow the convention above; :func:`read_psf` refuses
anything else rather than guess. To convert TinyTim output:

1. run ``tiny3`` with ``SUB=oversampling`` so that the PSF is sampled at
   ``native_scale_arcsec / oversampling`` (TinyTim's subsampled PSFs are *not*
   convolved with charge diffusion; ``tiny3`` writes the 3×3 kernel to use into
   the header comments);
2. convolve with the native pixel response: a box ``oversampling`` fine pixels
   wide (for even ``oversampling`` a box ``oversampling + 1`` wide whose edge rows
   and columns have weight 1/2, so that it stays centred);
3. convolve with the charge-diffusion kernel placed on the fine grid with its
   taps ``oversampling`` fine pixels apart (one native pixel);
4. cut an odd square centred on the PSF centre, at least the size the pipeline
   draws (6″ by default);
5. divide by its sum, and write it with :func:`write_psf` (or set the header keys
   PIXSCALE, NATSCALE, OVERSAMP and BAND yourself).

TinyTim's subsampled pixels integrate over the fine pixel instead of sampling at
its centre; that extra blur (a box 1/oversampling of a native pixel wide) is
negligible for ``oversampling`` >= 3.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from starclusters.errors import ConfigError, InputFileError
from starclusters.io import atomic_path
from starclusters.mocks.halo import add_halo, halo_params

#: HST primary mirror diameter, m.
HST_DIAMETER_M = 2.4
#: Secondary-mirror obscuration, fraction of the primary diameter (TinyTim: 0.330).
HST_OBSCURATION = 0.33
#: Width of each of the four spiders, fraction of the primary diameter
#: (TinyTim: 0.022 of the pupil radius).
HST_STRUT_THICKNESS = 0.011
#: Spider angle from the detector y axis, degrees (WFC3/UVIS pupil rotated by 135°).
UVIS_STRUT_ANGLE_DEG = 45.0
#: WFC3/UVIS detector pixel on the sky, arcsec (Instrument Handbook §6.4: 0.0395″
#: per side); converts the charge-diffusion kernels from pixels to arcsec.
UVIS_PIXEL_SCALE_ARCSEC = 0.0395
#: Wavelength range over which the UVIS charge-diffusion default is defined, nm
#: (TinyTim's UVIS detector range).
UVIS_WAVELENGTH_RANGE_NM = (200.0, 1000.0)

#: TinyTim's WFC3/UVIS charge-diffusion kernels (WFC3 ISR 2008-40): wavelength (nm)
#: -> (centre, edge, corner) weights of the 3×3 kernel in native pixels.
_UVIS_CD_KERNELS = {
    400.0: (0.544, 0.097, 0.017),
    600.0: (0.616, 0.084, 0.012),
    800.0: (0.696, 0.069, 0.007),
}

#: Spider angle from the detector y axis, degrees (ACS/WFC pupil rotated by −90°, so
#: the spiders stay along the detector axes; see the module docstring).
ACS_WFC_STRUT_ANGLE_DEG = 0.0
#: ACS/WFC detector pixel on the sky, arcsec (TinyTim's acswfc1.pup/acswfc2.pup:
#: 0.0495″ nominal); converts the charge-diffusion kernels from pixels to arcsec.
ACS_WFC_PIXEL_SCALE_ARCSEC = 0.0495
#: Wavelength range over which the ACS/WFC charge-diffusion default is defined, nm:
#: the WFC CCDs respond from ~350 nm; beyond 1000 nm the linear extrapolation of the
#: kernels runs towards zero (and below it past ~1090 nm). Every ACS/WFC broad-band
#: pivot (F435W 432 nm … F850LP 906 nm) is inside.
ACS_WFC_WAVELENGTH_RANGE_NM = (350.0, 1000.0)

#: TinyTim's ACS/WFC CCD pixel-scattering kernels from ground tests (SITe CCDs,
#: pinhole grids), identical in acswfc1.pup and acswfc2.pup: wavelength (nm) ->
#: (centre, edge, corner) weights of the 3×3 kernel in native pixels. (The comment in
#: TinyTim's acs.c says 400, 550 and 800 nm; the tables say 400, 600, 800.)
_ACS_WFC_CD_KERNELS = {
    400.0: (0.484621, 0.0965193, 0.0323256),
    600.0: (0.605382, 0.0755252, 0.0231293),
    800.0: (0.764459, 0.0455935, 0.0132919),
}
#: ACS/WFC in-flight field-dependent charge diffusion (Krist, ACS ISR 2003-06), as
#: TinyTim applies it on top of the kernels above: at wavelength (nm), a Gaussian whose
#: sigma is a 5th-order polynomial in detector x, y (acswfc1.pup/acswfc2.pup; 0.27–0.50
#: px over the field), sampled at the centres of a 3×3 grid and normalised. Value: the
#: per-axis variance of that 3×3 kernel (px²), averaged over a 129 × 129 grid of
#: positions covering both chips. (The polynomials' constant terms, 0.487, 0.417 and
#: 0.404 px, are sigma at an off-detector point, not typical values.)
_ACS_WFC_IN_FLIGHT_VARIANCE_PX2 = {
    435.0: 0.0992,
    550.0: 0.0418,
    814.0: 0.0857,
}

#: Side of the square over which the optical PSF is computed by default, arcsec:
#: twice the 6″ the pipeline draws, so that light folded back from beyond it by
#: the FFT lands outside the drawn area.
DEFAULT_FIELD_ARCSEC = 12.0

#: read_psf tolerances: pixel scales (relative), normalisation (absolute), centring
#: (native pixels), negative values (relative to the peak; total relative to 1).
SCALE_RTOL = 1e-3
SUM_ATOL = 1e-3
CENTROID_TOL_NATIVE_PX = 0.1
NEGATIVE_PEAK_RTOL = 1e-4
NEGATIVE_TOTAL_TOL = 1e-4

_ARCSEC_PER_RAD = 180.0 / np.pi * 3600.0
#: Pupil-plane samples across a spider (see hst_optical_psf).
_SAMPLES_PER_STRUT = 5.0


def _gsparams():
    """GalSim accuracy settings for the ePSF: GalSim's defaults, stated on purpose.

    ``folding_threshold`` 5e-3 is enough because aliasing is controlled
    explicitly instead (the optical PSF is computed over ``field_arcsec`` and the
    ePSF is drawn on a twice larger grid and cut), so it only sets the size of
    intermediate FFTs. ``maximum_fft_size`` 8192 is far above the largest FFTs
    used (~3072²: the pupil at 200 nm, or drawing with ``oversampling`` 8) and
    bounds memory (an 8192² complex FFT takes 1 GB).
    """
    import galsim

    return galsim.GSParams(folding_threshold=5e-3, maximum_fft_size=8192)


def _kernel_variance_px2(
    kernels: Mapping[float, tuple[float, float, float]], wavelength_nm: float
) -> float:
    """Per-axis variance (px²) of 3×3 (centre, edge, corner) ``kernels`` at ``wavelength_nm``.

    Linear in wavelength between the tabulated kernels and extrapolated linearly
    from the nearest pair beyond them, as TinyTim interpolates the kernel weights
    (the variance of normalised kernels is linear in their weights).
    """
    waves = np.array(sorted(kernels))
    var = np.array(
        [2.0 * (e + 2.0 * k) / (c + 4.0 * e + 4.0 * k) for c, e, k in (kernels[w] for w in waves)]
    )
    i = int(np.clip(np.searchsorted(waves, wavelength_nm) - 1, 0, len(waves) - 2))
    slope = (var[i + 1] - var[i]) / (waves[i + 1] - waves[i])
    return float(var[i] + slope * (wavelength_nm - waves[i]))


def _check_wavelength(wavelength_nm: float, range_nm: tuple[float, float], camera: str) -> None:
    lo, hi = range_nm
    if not lo <= wavelength_nm <= hi:
        raise ValueError(
            f"wavelength_nm={wavelength_nm:g} is outside {lo:g}–{hi:g} nm, where the {camera} "
            "charge-diffusion default is defined; pass charge_diffusion_sigma_arcsec explicitly"
        )


def uvis_charge_diffusion_sigma_px(wavelength_nm: float) -> float:
    """Gaussian sigma (native UVIS pixels) of WFC3/UVIS charge diffusion at ``wavelength_nm``.

    The per-axis variance of TinyTim's 3×3 kernels (WFC3 ISR 2008-40; 0.262,
    0.216, 0.166 px² at 400, 600, 800 nm), interpolated linearly in wavelength
    and extrapolated linearly beyond 400–800 nm as TinyTim does; defined for
    200–1000 nm. (TinyTim also convolves with an in-flight Gaussian of sigma
    0.458 px; that widens the F814W core to 0.084″ FWHM, 12 % more than the
    handbook, so it is left out.)
    """
    _check_wavelength(wavelength_nm, UVIS_WAVELENGTH_RANGE_NM, "WFC3/UVIS")
    return float(np.sqrt(_kernel_variance_px2(_UVIS_CD_KERNELS, wavelength_nm)))


def acs_wfc_charge_diffusion_sigma_px(wavelength_nm: float, *, in_flight: bool = True) -> float:
    """Gaussian sigma (native ACS/WFC pixels) of ACS/WFC charge diffusion at ``wavelength_nm``.

    The square root of the summed per-axis variances of the two kernels TinyTim's
    ``tiny3`` convolves ACS/WFC PSFs with (both tabulated in ``acswfc1.pup`` and
    ``acswfc2.pup``):

    * the ground-test 3×3 kernels (0.322, 0.244, 0.144 px² at 400, 600, 800 nm),
      interpolated linearly in wavelength and extrapolated linearly beyond
      400–800 nm, as TinyTim's ``Compute_acs_kernel`` does;
    * with ``in_flight`` (the default), the field-dependent in-flight blur of
      ACS ISR 2003-06 averaged over both chips (0.099, 0.042, 0.086 px² at 435,
      550, 814 nm; see ``_ACS_WFC_IN_FLIGHT_VARIANCE_PX2``), linear in wavelength
      between these and held constant beyond. (TinyTim's own look-up for it is
      off by one interval: between 435 and 550 nm it extrapolates the 550–814 nm
      line, and from 550 nm on it takes the 814 nm value, which makes sigma jump
      at 550 nm; it also uses the bluest wavelength of the spectrum rather than
      a mean. The evident intent, used here, gives 0.610 px instead of 0.572 at
      F475W, 0.551 instead of 0.588 at F550M and 0.475 instead of 0.477 at F814W.)

    Defined for 350–1000 nm. The in-flight term is kept (unlike for WFC3/UVIS)
    because the Instrument Handbook's kernel for the centre of the WFC field at
    400 nm (variance 0.38 px²) includes such a blur (ground kernel alone 0.32,
    with the in-flight term 0.40–0.45 at the two chip centres), and because the
    model core is narrower than the handbook's FWHM even with it.
    """
    _check_wavelength(wavelength_nm, ACS_WFC_WAVELENGTH_RANGE_NM, "ACS/WFC")
    var = _kernel_variance_px2(_ACS_WFC_CD_KERNELS, wavelength_nm)
    if in_flight:
        waves = sorted(_ACS_WFC_IN_FLIGHT_VARIANCE_PX2)
        var += float(
            np.interp(wavelength_nm, waves, [_ACS_WFC_IN_FLIGHT_VARIANCE_PX2[w] for w in waves])
        )
    return float(np.sqrt(var))


@dataclass(frozen=True)
class HstCamera:
    """What the GalSim model needs to know of an HST camera (see :data:`CAMERAS`)."""

    #: Name used in messages, e.g. ``"ACS/WFC"``.
    name: str
    #: pyphot filter curves of this camera start with this, e.g. ``"HST_ACS_WFC_"``.
    filter_curve_prefix: str
    #: Detector pixel on the sky, arcsec (charge diffusion is defined per detector pixel).
    pixel_scale_arcsec: float
    #: Spider angle from the detector y axis, degrees.
    strut_angle_deg: float
    #: Pivot wavelengths the model (its charge-diffusion default) covers, nm.
    wavelength_range_nm: tuple[float, float]
    #: Charge-diffusion sigma in detector pixels at a wavelength in nm.
    charge_diffusion_sigma_px: Callable[[float], float]


#: Cameras of the GalSim model, by key (the ``camera`` argument of :func:`hst_optical_psf`).
CAMERAS: dict[str, HstCamera] = {
    "wfc3_uvis": HstCamera(
        name="WFC3/UVIS",
        filter_curve_prefix="HST_WFC3_",
        pixel_scale_arcsec=UVIS_PIXEL_SCALE_ARCSEC,
        strut_angle_deg=UVIS_STRUT_ANGLE_DEG,
        wavelength_range_nm=UVIS_WAVELENGTH_RANGE_NM,
        charge_diffusion_sigma_px=uvis_charge_diffusion_sigma_px,
    ),
    "acs_wfc": HstCamera(
        name="ACS/WFC",
        filter_curve_prefix="HST_ACS_WFC_",
        pixel_scale_arcsec=ACS_WFC_PIXEL_SCALE_ARCSEC,
        strut_angle_deg=ACS_WFC_STRUT_ANGLE_DEG,
        wavelength_range_nm=ACS_WFC_WAVELENGTH_RANGE_NM,
        charge_diffusion_sigma_px=acs_wfc_charge_diffusion_sigma_px,
    ),
}


def camera_for_filter_curve(filter_curve: str) -> str | None:
    """Key in :data:`CAMERAS` of the camera of pyphot curve ``filter_curve``, or None.

    ``HST_WFC3_*`` → ``"wfc3_uvis"`` (WFC3/IR curves have pivots beyond the UVIS
    range), ``HST_ACS_WFC_*`` → ``"acs_wfc"``; anything else (ACS/HRC, WFPC2,
    ground-based curves) → None.
    """
    for key, camera in CAMERAS.items():
        if filter_curve.startswith(camera.filter_curve_prefix):
            return key
    return None


def hst_optical_psf(
    wavelength_nm: float,
    *,
    camera: str = "wfc3_uvis",
    diameter_m: float = HST_DIAMETER_M,
    obscuration: float = HST_OBSCURATION,
    n_struts: int = 4,
    strut_thickness: float = HST_STRUT_THICKNESS,
    strut_angle_deg: float | None = None,
    charge_diffusion_sigma_arcsec: float | None = None,
    field_arcsec: float = DEFAULT_FIELD_ARCSEC,
):
    """HST PSF at ``wavelength_nm`` without the pixel response, as a GalSim GSObject.

    A diffraction-limited ``galsim.OpticalPSF`` (circular pupil of ``diameter_m``
    with a central obscuration of ``obscuration`` × the diameter and
    ``n_struts`` spiders ``strut_thickness`` × the diameter wide, rotated by
    ``strut_angle_deg`` counter-clockwise from the y axis) convolved with a
    Gaussian of sigma ``charge_diffusion_sigma_arcsec`` for CCD charge diffusion.
    ``camera`` (a key of :data:`CAMERAS`: ``"wfc3_uvis"`` or ``"acs_wfc"``) sets
    the defaults: the spider angle (45° WFC3/UVIS, 0° ACS/WFC) and the charge
    diffusion (:func:`uvis_charge_diffusion_sigma_px` × 0.0395″ or
    :func:`acs_wfc_charge_diffusion_sigma_px` × 0.0495″: the detector pixel,
    whatever the pixel of the image drawn later). Unit flux, centred at the
    origin, sizes in arcsec.

    The optical PSF is computed by FFT over a square ``field_arcsec`` on a side
    (at least GalSim's own choice); light beyond half of it folds back from the
    opposite side, so keep ``field_arcsec`` at least twice the ePSF size.
    """
    import galsim

    if not wavelength_nm > 0:
        raise ValueError(f"wavelength_nm must be > 0, got {wavelength_nm}")
    if camera not in CAMERAS:
        raise ValueError(f"camera must be one of {', '.join(CAMERAS)}, got {camera!r}")
    cam = CAMERAS[camera]
    if strut_angle_deg is None:
        strut_angle_deg = cam.strut_angle_deg
    if charge_diffusion_sigma_arcsec is None:
        sigma_arcsec = cam.charge_diffusion_sigma_px(wavelength_nm) * cam.pixel_scale_arcsec
    else:
        sigma_arcsec = float(charge_diffusion_sigma_arcsec)
        if sigma_arcsec < 0:
            raise ValueError(f"charge_diffusion_sigma_arcsec must be >= 0, got {sigma_arcsec}")
    gsparams = _gsparams()
    pupil = dict(
        diam=diameter_m,
        lam=wavelength_nm,
        obscuration=obscuration,
        nstruts=n_struts,
        strut_thick=strut_thickness,
        strut_angle=strut_angle_deg * galsim.degrees,
        oversampling=1.5,
        pad_factor=1.5,
        gsparams=gsparams,
    )
    # Pupil-plane spacing: fine enough that the FFT covers field_arcsec (spacing =
    # wavelength / field in radians) and resolves the spiders (5 samples across, so
    # that their blocked area, 2.1 % of the pupil, is right to ~0.1 %), and never
    # coarser than GalSim's own choice for these gsparams.
    scales_m = [
        galsim.Aperture(**pupil).good_pupil_scale,
        wavelength_nm * 1e-9 / (field_arcsec / _ARCSEC_PER_RAD),
    ]
    if n_struts > 0:
        scales_m.append(strut_thickness * diameter_m / _SAMPLES_PER_STRUT)
    aperture = galsim.Aperture(**pupil, pupil_plane_scale=min(scales_m))
    optics = galsim.OpticalPSF(lam=wavelength_nm, diam=diameter_m, aper=aperture, gsparams=gsparams)
    if sigma_arcsec == 0:
        return optics
    return galsim.Convolve(optics, galsim.Gaussian(sigma=sigma_arcsec), gsparams=gsparams)


def _odd_size(size_arcsec: float, fine_scale_arcsec: float) -> int:
    n = int(round(size_arcsec / fine_scale_arcsec))
    return n if n % 2 == 1 else n + 1


def _check_grid(native_scale_arcsec: float, oversampling: int, size_arcsec: float) -> None:
    if not native_scale_arcsec > 0:
        raise ValueError(f"native_scale_arcsec must be > 0, got {native_scale_arcsec}")
    if int(oversampling) != oversampling or oversampling < 1:
        raise ValueError(f"oversampling must be a positive integer, got {oversampling}")
    if not size_arcsec >= 3 * native_scale_arcsec:
        raise ValueError(
            f"size_arcsec={size_arcsec} is too small: use at least 3 native pixels "
            f"({3 * native_scale_arcsec:g}″); 6″ covers the PSF wings"
        )


def effective_psf(
    psf,
    native_scale_arcsec: float,
    oversampling: int,
    size_arcsec: float = 6.0,
    *,
    with_enclosed_fraction: bool = False,
):
    """ePSF (n, n) float64 of the GalSim profile ``psf``: ``psf`` ⊗ native pixel, finely sampled.

    ``psf`` (arcsec units, no pixel response) is convolved with a
    ``galsim.Pixel(native_scale_arcsec)`` and sampled (``method="no_pixel"``) at
    spacing ``native_scale_arcsec / oversampling`` on an odd n × n grid about
    ``size_arcsec`` on a side, centred on element (n // 2, n // 2); values below
    zero (FFT round-off, < 1e-8 of the peak) are set to 0 and the array is
    normalised to sum 1. A unit-flux star at the centre of a native pixel then
    yields native pixel values
    ``oversampling**2 * epsf[c + k*oversampling, c + l*oversampling]`` (c = n // 2)
    for the native pixel (k, l) pixels away, which sum to 1 within ~1e-4.

    To keep light folded back by the FFT out of the result, the profile is drawn
    on a grid twice as large and the centre cut out.

    With ``with_enclosed_fraction`` it returns ``(epsf, fraction)``, ``fraction``
    being the share of the star's light that falls inside the array (0.99–0.996
    for 6″); renderers multiply by it so that stars are not made brighter by the
    normalisation.

    Cost, measured with the default model at 0.04″/px, 6″, ``oversampling`` 4
    (n = 601) or 5 (n = 751), one CPU core: 0.6–0.7 s per band for F336W–F814W,
    0.8 s for F275W (the pupil is sampled finely enough to resolve the spiders,
    and in the UV also to cover a 12″ field); ACS/WFC F814W at 0.05″/px, 6″,
    ``oversampling`` 7 (n = 841): 0.7 s.
    """
    import galsim

    _check_grid(native_scale_arcsec, oversampling, size_arcsec)
    fine = native_scale_arcsec / oversampling
    n = _odd_size(size_arcsec, fine)
    big = 2 * n + 1
    gsparams = _gsparams()
    epsf_obj = galsim.Convolve(psf, galsim.Pixel(native_scale_arcsec), gsparams=gsparams)
    image = epsf_obj.drawImage(nx=big, ny=big, scale=fine, method="no_pixel").array
    c, h = big // 2, n // 2
    out = np.array(image[c - h : c + h + 1, c - h : c + h + 1], dtype=np.float64)
    np.clip(out, 0.0, None, out=out)
    total = out.sum()
    if not total > 0:
        raise ValueError("the PSF has no flux on the requested grid; check its units (arcsec)")
    return (out / total, float(total)) if with_enclosed_fraction else out / total


def psf_for_band(
    band: str,
    filter_curve: str,
    native_scale_arcsec: float,
    oversampling: int,
    size_arcsec: float = 6.0,
    *,
    with_enclosed_fraction: bool = False,
    halo: bool = False,
    fwhm_scale: float = 1.0,
):
    """ePSF (n, n) of the GalSim model for ``band`` at the pivot wavelength of ``filter_curve``.

    With ``with_enclosed_fraction``: ``(epsf, fraction of the light inside it)``.
    halo: convolve with the halo fitted to the WFC3/UVIS encircled energies
    (:mod:`starclusters.mocks.halo`; WFC3/UVIS bands only); fwhm_scale: the optical
    PSF dilated by this factor before the pixel (a PSF wider or narrower than the
    model's, for robustness tests).

    ``filter_curve`` is the pyphot curve name of the band (config key
    ``photometry.filter_curves``); it picks the camera
    (:func:`camera_for_filter_curve`): ``HST_WFC3_*`` (WFC3/UVIS, pivots
    200–1000 nm) or ``HST_ACS_WFC_*`` (ACS/WFC, 350–1000 nm). ConfigError for any
    other curve or a pivot outside the camera's range. ``native_scale_arcsec`` is
    the pixel of the image drawn (e.g. a 0.05″ mosaic), not necessarily the
    detector's.
    """
    from starclusters.photometry.synphot import pivot_wavelength_aa

    remedy = (
        f"set psf.source to files and give psf.files.{band} a FITS PSF for this band "
        "(see starclusters.mocks.psf for the convention)"
    )
    key = camera_for_filter_curve(filter_curve)
    if key is None:
        cameras = " and ".join(f"{c.name} ({c.filter_curve_prefix}*)" for c in CAMERAS.values())
        raise ConfigError(
            f"photometry.filter_curves.{band}: the model PSF covers {cameras} filter curves "
            f"only, but {band} uses {filter_curve!r}; {remedy}"
        )
    camera = CAMERAS[key]
    wavelength_nm = pivot_wavelength_aa(filter_curve) / 10.0
    lo, hi = camera.wavelength_range_nm
    if not lo <= wavelength_nm <= hi:
        raise ConfigError(
            f"photometry.filter_curves.{band}: the {camera.name} model PSF covers pivot "
            f"wavelengths {lo:g}–{hi:g} nm, but {filter_curve!r} has its pivot at "
            f"{wavelength_nm:.0f} nm; {remedy}"
        )
    psf = hst_optical_psf(wavelength_nm, camera=key)
    if not 0.5 <= fwhm_scale <= 2.0:
        raise ValueError(f"fwhm_scale must be in [0.5, 2], got {fwhm_scale}")
    if fwhm_scale != 1.0:
        psf = psf.dilate(fwhm_scale)
    epsf, fraction = effective_psf(
        psf, native_scale_arcsec, oversampling, size_arcsec, with_enclosed_fraction=True
    )
    if halo:
        epsf, kept = add_halo(epsf, native_scale_arcsec / oversampling, halo_params(filter_curve))
        fraction *= kept
    return (epsf, fraction) if with_enclosed_fraction else epsf


def write_psf(
    path: str | os.PathLike,
    epsf: np.ndarray,
    *,
    band: str,
    native_scale_arcsec: float,
    oversampling: int,
    source: str,
    enclosed_fraction: float = 1.0,
) -> None:
    """Write the ePSF ``epsf`` (n, n), n odd, atomically as the float64 primary HDU of a FITS file.

    Header: BAND, PIXSCALE (fine pixel scale, arcsec), NATSCALE (native pixel,
    arcsec), OVERSAMP, PSFSRC (``source``: how it was made) and EEFRAC (the
    share of a star's light inside the array, ``enclosed_fraction``).
    """
    if not 0.0 < enclosed_fraction <= 1.0:
        raise ValueError(f"enclosed_fraction must be in (0, 1], got {enclosed_fraction}")
    from astropy.io import fits

    data = np.asarray(epsf, dtype=np.float64)
    if data.ndim != 2 or data.shape[0] != data.shape[1] or data.shape[0] % 2 != 1:
        raise ValueError(f"epsf must be (n, n) with n odd, got shape {data.shape}")
    if not np.all(np.isfinite(data)):
        raise ValueError("epsf has NaN or infinite values")
    _check_grid(native_scale_arcsec, oversampling, 3 * native_scale_arcsec)
    header = fits.Header()
    header["BAND"] = (str(band), "band this PSF belongs to")
    header["PIXSCALE"] = (native_scale_arcsec / oversampling, "[arcsec] ePSF sample spacing")
    header["NATSCALE"] = (float(native_scale_arcsec), "[arcsec] native pixel (in the ePSF)")
    header["OVERSAMP"] = (int(oversampling), "ePSF samples per native pixel")
    header["PSFSRC"] = (str(source), "how the PSF was made")
    header["EEFRAC"] = (float(enclosed_fraction), "share of a star's light inside the array")
    header["COMMENT"] = "Effective PSF: optics x charge diffusion x native pixel, sampled"
    header["COMMENT"] = "at PIXSCALE, centred on the central element, summing to 1."
    with atomic_path(path) as tmp:
        fits.PrimaryHDU(data=data, header=header).writeto(tmp, overwrite=True)


def psf_enclosed_fraction(path: str | os.PathLike) -> float:
    """EEFRAC of a PSF file: the share of a star's light inside the array (1 when absent).

    The array itself sums to 1; renderers scale it by this share.
    """
    from astropy.io import fits

    path = Path(path)
    try:
        header = fits.getheader(path)
    except (OSError, ValueError) as err:
        raise InputFileError(f"{path}: not a readable FITS file ({err})") from err
    value = _header_float(path, header, "EEFRAC", "the share of the light inside the PSF (0–1]")
    if value is None:
        return 1.0
    if not 0.0 < value <= 1.0:
        raise InputFileError(f"{path}: EEFRAC = {value} must be in (0, 1]")
    return value


def _header_float(path: Path, header, key: str, what: str) -> float | None:
    if key not in header:
        return None
    try:
        return float(header[key])
    except (TypeError, ValueError) as err:
        raise InputFileError(
            f"{path}: header {key}={header[key]!r} is not a number; set it to {what}"
        ) from err


def read_psf(
    path: str | os.PathLike,
    *,
    band: str,
    native_scale_arcsec: float,
    oversampling: int,
    size_arcsec: float | None = None,
) -> np.ndarray:
    """Read and check an ePSF FITS file (see the module docstring); returns (n, n) float64.

    InputFileError (naming the file) if it is missing or not FITS; if the
    primary image is not 2-D, square and odd-sized; if PIXSCALE is absent or
    differs from ``native_scale_arcsec / oversampling`` by more than 0.1 % (also
    NATSCALE and OVERSAMP when present); if BAND is present and is not
    ``band``; if it has NaN/infinite values, or negative values beyond round-off
    (below -1e-4 of the peak or -1e-4 in total; smaller ones are set to 0); if it
    does not sum to 1 within 1e-3 (it is never renormalised silently); or if its
    centroid is more than 0.1 native pixel from the central element.

    With ``size_arcsec``, the file must cover at least that size; a larger PSF is
    cut to the odd size :func:`effective_psf` would make and renormalised to 1
    (what :func:`effective_psf` does with the light beyond its grid).
    """
    from astropy.io import fits

    path = Path(path)
    _check_grid(native_scale_arcsec, oversampling, size_arcsec or 3 * native_scale_arcsec)
    fine = native_scale_arcsec / oversampling
    if not path.exists():
        raise InputFileError(
            f"{path}: no such PSF file; check the path in the config or use the model PSF"
        )
    try:
        with fits.open(path, memmap=False) as hdul:
            header = hdul[0].header.copy()
            raw = hdul[0].data
            data = None if raw is None else np.array(raw, dtype=np.float64)
    except (OSError, ValueError, TypeError) as err:
        raise InputFileError(
            f"{path}: not a readable FITS file ({err}); write the PSF as a FITS primary image"
        ) from err
    if data is None or data.ndim != 2:
        shape = None if data is None else data.shape
        raise InputFileError(
            f"{path}: the primary HDU must hold a 2-D PSF image, found shape {shape}; "
            "put the PSF in the primary HDU"
        )
    ny, nx = data.shape
    if ny != nx or nx % 2 != 1:
        raise InputFileError(
            f"{path}: PSF image is {ny}×{nx}; it must be square with an odd size so that "
            "the PSF centre is the central element; cut it to an odd square around the centre"
        )

    pixscale = _header_float(path, header, "PIXSCALE", f"the sample spacing in arcsec ({fine:g})")
    if pixscale is None:
        raise InputFileError(
            f"{path}: header keyword PIXSCALE (sample spacing, arcsec per pixel) is missing; "
            f"add PIXSCALE = {fine:g} if the PSF is sampled at native_scale/oversampling = "
            f"{native_scale_arcsec:g}/{oversampling}, otherwise resample it first"
        )
    if abs(pixscale - fine) > SCALE_RTOL * fine:
        raise InputFileError(
            f"{path}: PIXSCALE = {pixscale:g}″ but the pipeline needs {fine:g}″ "
            f"(native {native_scale_arcsec:g}″ / oversampling {oversampling}); resample the PSF "
            "to that spacing or change the configured pixel scale/oversampling"
        )
    natscale = _header_float(path, header, "NATSCALE", "the native pixel in arcsec")
    if (
        natscale is not None
        and abs(natscale - native_scale_arcsec) > SCALE_RTOL * native_scale_arcsec
    ):
        raise InputFileError(
            f"{path}: NATSCALE = {natscale:g}″: this ePSF includes the response of a "
            f"{natscale:g}″ pixel, but the native pixel is {native_scale_arcsec:g}″; rebuild it "
            "with the right pixel response"
        )
    oversamp = _header_float(path, header, "OVERSAMP", "the oversampling factor")
    if oversamp is not None and oversamp != oversampling:
        raise InputFileError(
            f"{path}: OVERSAMP = {oversamp:g} but the pipeline uses oversampling {oversampling}; "
            "rebuild the PSF for that oversampling"
        )
    if "BAND" in header and str(header["BAND"]).strip().upper() != str(band).strip().upper():
        raise InputFileError(
            f"{path}: header BAND = {header['BAND']!r} but it is configured as the PSF of band "
            f"{band!r}; point the config at the right file or fix BAND"
        )

    if not np.all(np.isfinite(data)):
        bad = int(np.count_nonzero(~np.isfinite(data)))
        raise InputFileError(
            f"{path}: {bad} PSF values are NaN or infinite; replace them (e.g. by 0) and "
            "renormalise the PSF to sum 1"
        )
    peak = float(data.max())
    negative = data[data < 0]
    if peak <= 0 or (
        negative.size
        and (negative.min() < -NEGATIVE_PEAK_RTOL * peak or -negative.sum() > NEGATIVE_TOTAL_TOL)
    ):
        low = float(negative.min()) if negative.size else 0.0
        raise InputFileError(
            f"{path}: the PSF has negative values (minimum {low:.3g}, peak {peak:.3g}, "
            f"total {float(negative.sum()):.3g}); a PSF must be >= 0: clip interpolation "
            "ringing to 0 and renormalise to sum 1"
        )
    total = float(data.sum())
    if abs(total - 1.0) > SUM_ATOL:
        raise InputFileError(
            f"{path}: the PSF sums to {total:.6g}, not 1 (tolerance {SUM_ATOL:g}); normalise it "
            "(divide by its sum) after checking it covers the whole PSF"
        )
    data = np.clip(data, 0.0, None)

    c = nx // 2
    offsets = np.arange(nx) - c
    cy = float((data.sum(axis=1) * offsets).sum() / data.sum()) / oversampling
    cx = float((data.sum(axis=0) * offsets).sum() / data.sum()) / oversampling
    if np.hypot(cx, cy) > CENTROID_TOL_NATIVE_PX:
        raise InputFileError(
            f"{path}: the PSF centroid is ({cx:+.3f}, {cy:+.3f}) native pixels (x, y) from the "
            f"central element (tolerance {CENTROID_TOL_NATIVE_PX}); recentre it"
        )

    if size_arcsec is not None:
        n = _odd_size(size_arcsec, fine)
        if nx < n:
            raise InputFileError(
                f"{path}: the PSF is {nx} samples ({nx * fine:.2f}″) across but the pipeline "
                f"draws {n} ({size_arcsec:g}″); make it at least that large"
            )
        if nx > n:
            h = n // 2
            data = data[c - h : c + h + 1, c - h : c + h + 1]
            data = data / data.sum()
    return data


def half_light_radius_px(epsf: np.ndarray, oversampling: int) -> float:
    """Radius (native px) of the circle, centred on the central element, holding half
    of the ePSF's light: the PSF term of a cluster's observed r_h (see
    :func:`starclusters.mocks.compose.observed_rh_px`)."""
    epsf = np.asarray(epsf, dtype=np.float64)
    c = epsf.shape[0] // 2
    y, x = np.mgrid[-c : c + 1, -c : c + 1]
    radius = np.hypot(x, y).ravel() / oversampling
    order = np.argsort(radius)
    weights = epsf.ravel()[order]
    # each sample counts half inside its own radius, so the curve is not a staircase
    cumulative = np.cumsum(weights) - 0.5 * weights
    return float(np.interp(0.5 * weights.sum(), cumulative, radius[order]))


def read_psfs(
    paths, bands, native_scale_arcsec: float, oversampling: int
) -> tuple[np.ndarray, np.ndarray]:
    """The ePSF files of the bands (in ``bands`` order), checked by :func:`read_psf`:
    (epsfs (B, n, n), share of the light inside each (B,))."""
    epsfs = [
        read_psf(p, band=b, native_scale_arcsec=native_scale_arcsec, oversampling=oversampling)
        for p, b in zip(paths, bands, strict=True)
    ]
    if len({e.shape for e in epsfs}) != 1:
        raise InputFileError(
            f"{', '.join(map(str, paths))}: the bands' PSFs differ in size "
            f"{[e.shape for e in epsfs]}; give them all the same size_arcsec"
        )
    return np.stack(epsfs), np.array([psf_enclosed_fraction(p) for p in paths])
