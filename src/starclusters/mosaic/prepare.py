"""Put one image per band on a common north-up TAN grid and build the mosaic's mask.

Separate HST visits give each band its own WCS: shifted, slightly rotated, perhaps
at a different pixel scale. Detection and the background cutouts need all bands
pixel for pixel on one grid, so this module

1. reads each band (:func:`read_band`): its image HDU and weight map by the HST archive
   conventions (SCI and WHT extensions of a ``_drz`` file, or ``_sci``/``_wht`` files;
   weight <= 0 is blank), converted to counts/s (e⁻/s, the unit of the drizzled HST
   products and of the photometry's zero points) from BUNIT with EXPTIME or PHOTFLAM;
2. builds one north-up TAN grid at the configured pixel scale over the region the
   bands have in common (:func:`common_grid`);
3. resamples each band onto it, tile by tile, conserving flux
   (:func:`reproject_band`);
4. flags pixels that detection must not use (:func:`build_mask`);
5. writes images and mask as FITS with the grid's WCS, atomically
   (:func:`write_image`, :func:`write_mask`).

:func:`prepare_mosaic` runs all of it for the mosaic stage.

Units and conventions
---------------------
Images are float32 arrays (ny, nx), row = y = Dec-ish, column = x, counts/s **per
pixel** of the grid they are on; NaN marks a blank pixel (no data, zero weight,
outside the band's footprint). Resampling conserves each source's total counts/s;
surface brightness per pixel therefore scales with the pixel area.

Resampling method (:func:`reproject_band`)
------------------------------------------
The thesis resampled with "bicubic interpolation with flux conservation". Here:
``reproject_interp(order="bicubic")`` (a cubic B-spline through the input pixel
values) multiplied by the ratio of pixel areas, |det J| of the output → input
pixel mapping (input pixels per output pixel). Compared with the alternatives
``reproject`` offers on a synthetic field of 576 isolated pixel-integrated
Gaussians of known flux (input 1024² at 0.0396″/px, rotated 0.7°, shifted;
output 0.04″/px north-up; per-source flux in a 7.5 px aperture; 2-core VM;
``benchmarks/bench_prepare.py``, bilinear from ``reproject_interp`` directly):

=================================  =========  ==================  ============  ========
method                             µs/out px  max |ΔF|/F          max centroid  σ_out
                                              (σ_in 1.0, 0.75 px)  offset (px)   (σ_in 1)
=================================  =========  ==================  ============  ========
interp bicubic × area (chosen)     0.45–0.51  0.000 %, 0.001 %    < 0.001       1.030 px
interp bilinear × area             0.28–0.31  0.36 %, 0.41 %      0.013         1.107 px
adaptive, conserve_flux, gaussian  1.7        0.47 %, 0.74 %      0.012         1.215 px
exact (spherical polygons) × area  3.8–4.2    0.000 %, 0.000 %    0.007         1.110 px
=================================  =========  ==================  ============  ========

σ_out is the sources' second-moment width; 1.03 px means no added blur (the
Gaussian plus the pixel box). Bicubic conserves each source's flux to 10⁻⁵ at
these nearly equal scales, adds no blur (the network is trained on mocks rendered
at the grid's scale, without a resampling blur), keeps centroids and is 3–9 times
faster than the flux-exact or flux-conserving alternatives; ``exact`` convolves
with one more pixel box, ``adaptive`` (an anti-aliasing kernel) blurs most. When
the output pixel is much *larger* than the input's (e.g. 0.04″ WFC3 data onto a
0.05″ M31 grid, σ_in = 0.8 px), point sampling aliases: per-source errors reach
1.1 % (bicubic; median 0.4 %) against 0 % (exact) and 0.26 % (adaptive); there
``method="exact"`` is the better choice and a warning says so (when the output
pixel is > 1.1 × the input's in linear size). All three go through the same tiles.

Blank pixels are filled with their nearest valid neighbour before interpolating
(NaN would spread through the spline's prefilter over whole rows), and every
output pixel whose interpolation stencil (input pixels within ±2 px of its nearest
input pixel) touches a blank input pixel or the edge of the input array is set to
NaN.

Memory and time
---------------
:func:`reproject_band` works in target tiles of ``tile_px``² pixels; for each it
slices the input over the tile's footprint (plus a 12 px margin) and resamples
that. Beyond the output array (4 bytes per target pixel, or a memmap the caller
passes) and the input array, it holds one tile's work per thread: 137 bytes per
tile pixel measured (float64 coordinate arrays inside ``reproject``, the float64
tile, the sliced input, the nearest-fill indices), 0.55 GiB at ``tile_px=2048``,
independent of the mosaic's size. The WCS transforms take half the time; on the
2-core VM 3-band mosaics of 16 and 66 Mpx per band cost 0.52–0.60 µs per output
pixel per band with 1 thread and 0.29–0.44 µs with 2 (``n_threads``; the VM was
shared): 2.6–3.0 min (1 thread) for 3 × 10^8 px, an M83-sized mosaic.
:func:`build_mask` works in tiles too and adds 1 byte per target pixel.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from astropy.io import fits
from astropy.wcs import WCS
from astropy.wcs.utils import pixel_to_pixel, proj_plane_pixel_area, proj_plane_pixel_scales
from scipy import ndimage

from starclusters.errors import ConfigError, InputFileError
from starclusters.io import atomic_path, open_fits
from starclusters.mosaic.settings import BAND_FILE_KEYS, NO_WEIGHT, sci_weight_path

log = logging.getLogger(__name__)

#: Mask bit values (OR-ed into the uint8 mask written by :func:`write_mask`).
MASK_BLANK = 1  # no data in at least one band: NaN, zero weight, outside its footprint
MASK_SATURATED = 2  # within the grow radius of a pixel above a band's saturation level
MASK_CATALOG = 4  # inside an object of a user catalog (radius from the catalog)
#: bit → (name, meaning), written to the mask's header as MASKB<n> cards.
MASK_BITS = {
    MASK_BLANK: ("BLANK", "no data in a band"),
    MASK_SATURATED: ("SATURATED", "near a saturated pixel"),
    MASK_CATALOG: ("CATALOG", "in a user-catalog object"),
}

#: Resampling methods of :func:`reproject_band`.
METHODS = ("bicubic", "exact", "adaptive")

#: Input pixels kept around a tile's footprint: the cubic spline's prefilter
#: reaches ~0.27**k of a jump k pixels away, 3e-7 at 12 px.
_MARGIN_PX = 12
#: Spacing of the coarse grid on which a tile's footprint and pixel-area ratio are computed, px.
_COARSE_STEP_PX = 64
#: Linear scale ratio (output/input pixel) above which bicubic sampling aliases enough to warn.
_ALIAS_WARN_RATIO = 1.1

_RATE = r"(?:/s|/sec|/second|s-1|s\^-1|s\*\*-1)"
_CHARGE = r"(?:electrons?|e-?|counts?|cnts?|cts?)"
_PER_SECOND_UNIT = re.compile(rf"^{_CHARGE}{_RATE}$|^cps$")
_TOTAL_UNIT = re.compile(rf"^{_CHARGE}$")
#: Spellings of the factors of a flux density per wavelength in BUNIT (lower case).
_FACTOR_NAMES = {
    "erg": "erg",
    "ergs": "erg",
    "s": "s",
    "sec": "s",
    "second": "s",
    "seconds": "s",
    "cm": "cm",
    "a": "angstrom",
    "aa": "angstrom",
    "ang": "angstrom",
    "angstrom": "angstrom",
    "angstroms": "angstrom",
}
#: erg s⁻¹ cm⁻² Å⁻¹: the unit of HST flux-calibrated images and of PHOTFLAM (per e⁻/s).
_FLAM_POWERS = {"erg": 1, "s": -1, "cm": -2, "angstrom": -1}


@dataclass
class BandImage:
    """One band as read by :func:`read_band`.

    image: float32 (ny, nx), counts/s per input pixel, NaN where blank;
    wcs: its 2-D celestial WCS; exptime_s: EXPTIME from the header (None if absent);
    unit_note: what was done to reach counts/s (for logs and headers);
    weight_source: the weight map used, as ``file[EXTNAME]`` (None: no weight map).
    """

    band: str
    path: Path
    image: np.ndarray
    wcs: WCS
    exptime_s: float | None
    unit_note: str
    weight_source: str | None = None

    @property
    def pixel_scale_arcsec(self) -> float:
        """Geometric-mean pixel scale of the input, arcsec."""
        return float(np.sqrt(proj_plane_pixel_area(self.wcs)) * 3600.0)


def _header_value(headers: Sequence[fits.Header], key: str):
    for header in headers:
        if key in header:
            return header[key]
    return None


def _hdu_label(hdul: fits.HDUList, hdu) -> str:
    """How messages name an HDU (``file[label]``): its EXTNAME (with EXTVER > 1), else its index."""
    if hdu.name:
        return hdu.name if hdu.ver in (None, 1) else f"{hdu.name},{hdu.ver}"
    return str(next(i for i, h in enumerate(hdul) if h is hdu))


def _hdu_list(hdul: fits.HDUList) -> str:
    """The HDUs of a file for messages: 'PRIMARY, SCI, WHT, CTX'."""
    return ", ".join(_hdu_label(hdul, h) for h in hdul)


def _named_hdu(hdul: fits.HDUList, path: Path, hdu: int | str, key: str):
    """``hdul[hdu]``; InputFileError naming the file, the HDU, those it has and the config key."""
    try:
        return hdul[hdu]
    except (KeyError, IndexError) as err:
        raise InputFileError(
            f"{path}[{hdu}]: no such HDU (the file has {_hdu_list(hdul)}); set the band's "
            f"`{key}` in mosaic.files to one of them"
        ) from err


def _first_image_hdu(hdul: fits.HDUList):
    """The first HDU with a 2-D image (length-1 axes ignored), or None."""
    for candidate in hdul:
        if candidate.data is not None and np.squeeze(candidate.data).ndim == 2:
            return candidate
    return None


def _image_hdu(hdul: fits.HDUList, path: Path, hdu: int | str | None):
    """The HDU holding the image: ``hdu`` if given, else 'SCI', else the first with 2-D data."""
    if hdu is not None:
        return _named_hdu(hdul, path, hdu, "hdu")
    if "SCI" in hdul:
        return hdul["SCI"]
    found = _first_image_hdu(hdul)
    if found is None:
        raise InputFileError(f"{path}: no HDU holds a 2-D image (the file has {_hdu_list(hdul)})")
    return found


def _weight_blank(weight_hdu, where: str, shape: tuple[int, int], image_where: str) -> np.ndarray:
    """Pixels a weight map marks as blank: bool (ny, nx), True where weight <= 0 or NaN.

    InputFileError naming ``where`` (the weight map's ``file[HDU]``) when it holds no 2-D
    array or differs from the image (``image_where``, ``shape``) in shape.
    """
    weight = weight_hdu.data
    if weight is None or np.squeeze(weight).ndim != 2:
        held = "no data" if weight is None else f"an array of shape {weight.shape}"
        raise InputFileError(f"{where}: holds {held}, not a 2-D weight map")
    weight = np.squeeze(weight)
    if weight.shape != shape:
        raise InputFileError(
            f"{where}: the weight map is {weight.shape[1]} x {weight.shape[0]} px but the image "
            f"{image_where} is {shape[1]} x {shape[0]} px; give the weight map drizzled with "
            "this image (mosaic.files.<band>.weight, weight_hdu)"
        )
    return ~(weight > 0)  # comparisons with NaN are False: NaN weight is blank too


def _unit_powers(bunit: str) -> dict[str, int] | None:
    """BUNIT as base unit -> power, e.g. 'erg/s/cm^2/A' -> {erg: 1, s: -1, cm: -2, angstrom: -1};
    None if it holds anything but the factors of a flux density per wavelength."""
    text = str(bunit).strip().lower().replace("**", "").replace("^", "")
    # erg/(s cm2 A): each factor in the brackets is a divisor
    text = re.sub(r"/\s*\(([^()]*)\)", lambda m: "/" + "/".join(m.group(1).split()), text)
    powers: dict[str, int] = {}
    for i, part in enumerate(text.split("/")):
        factors = [f for f in re.split(r"[\s.]+", part) if f]
        if not factors:
            return None
        for factor in factors:
            match = re.fullmatch(r"([a-z]+)([+-]?\d+)?", factor)
            name = _FACTOR_NAMES.get(match.group(1)) if match else None
            if name is None:
                return None
            power = int(match.group(2) or 1) * (1 if i == 0 else -1)
            powers[name] = powers.get(name, 0) + power
    return {name: power for name, power in powers.items() if power}


def _to_counts_per_s(
    data: np.ndarray, where: str, headers: Sequence[fits.Header]
) -> tuple[np.ndarray, float | None, str]:
    """Convert ``data`` to counts/s from its BUNIT (and EXPTIME or PHOTFLAM); returns (data,
    exptime, note). ``where``: the image's ``file[HDU]`` for messages; ``headers``: the image's
    header, then the primary header (the first holding a keyword wins)."""
    try:
        exptime = float(_header_value(headers, "EXPTIME"))
    except (TypeError, ValueError):  # absent or not a number
        exptime = None
    bunit = _header_value(headers, "BUNIT")
    if bunit is None or not str(bunit).strip():
        if _header_value(headers, "PHOTFLAM") is not None:
            note = "no BUNIT; PHOTFLAM present, so taken as counts/s (HST convention)"
            log.warning("%s: %s", where, note)
            return data, exptime, note
        raise InputFileError(
            f"{where}: no BUNIT (and no PHOTFLAM) in the header, so its unit is unknown; "
            "add BUNIT = 'ELECTRONS/S' (or 'ELECTRONS' with EXPTIME) to the header"
        )
    key = re.sub(r"[\s*]", "", str(bunit).strip().lower())
    if _PER_SECOND_UNIT.match(key):
        note = f"BUNIT {bunit!r} taken as counts/s"
        log.info("%s: %s", where, note)
        return data, exptime, note
    if _TOTAL_UNIT.match(key):
        if exptime is None or not np.isfinite(exptime) or exptime <= 0:
            raise InputFileError(
                f"{where}: BUNIT {bunit!r} is a total count but EXPTIME is "
                f"{'missing' if exptime is None else exptime}; add the exposure time in "
                "seconds as EXPTIME or give the image in counts/s"
            )
        note = f"BUNIT {bunit!r} divided by EXPTIME = {exptime:g} s to counts/s"
        log.info("%s: %s", where, note)
        return data / np.float32(exptime), exptime, note
    if _unit_powers(bunit) == _FLAM_POWERS:
        # PHOTFLAM is the flux density of 1 e-/s: dividing by it undoes the calibration
        raw = _header_value(headers, "PHOTFLAM")
        try:
            photflam = float(raw)
        except (TypeError, ValueError):
            photflam = math.nan
        if not np.isfinite(photflam) or photflam <= 0:
            found = "there is no PHOTFLAM" if raw is None else f"PHOTFLAM is {raw!r}"
            raise InputFileError(
                f"{where}: BUNIT {bunit!r} is a flux density (erg/s/cm2/A) but {found} in the "
                "image or primary header; add PHOTFLAM (erg/s/cm2/A per e-/s, the band's "
                "inverse sensitivity) or give the image in counts/s"
            )
        note = f"BUNIT {bunit!r} divided by PHOTFLAM = {photflam:.4g} to counts/s"
        log.info("%s: %s", where, note)
        return data / np.float32(photflam), exptime, note
    raise InputFileError(
        f"{where}: BUNIT {bunit!r} cannot be converted to counts/s; give the image in "
        "ELECTRONS/S or counts/s, in ELECTRONS or COUNTS with EXPTIME, or in erg/s/cm2/A with "
        "PHOTFLAM (DN need the gain; per-steradian and Jy units are not read)"
    )


def read_band(
    path: str | os.PathLike,
    band: str,
    *,
    hdu: int | str | None = None,
    weight_path: str | os.PathLike | None = None,
    weight_hdu: int | str | None = None,
    zero_is_blank: bool = True,
) -> BandImage:
    """Read one band's image in counts/s with its celestial WCS.

    hdu: the HDU with the image (default: 'SCI' if present, else the first 2-D HDU).
    weight_path: the weight map's file; None finds it: ``weight_hdu`` or a 'WHT' extension
    of the image's file, else (a name with a ``_sci`` part, the HLSP/HLA convention) the
    file with ``_sci`` -> ``_wht`` beside it, which must then exist; :data:`NO_WEIGHT`
    ('none'): no weight map. weight_hdu: the weight map's HDU (default 'WHT', in a separate
    file else its first 2-D HDU). The weight map must have the image's shape.

    Blank pixels (returned as NaN): non-finite values; exact zeros when ``zero_is_blank``
    (the fill value of HST drizzled products outside the data); weight <= 0 or NaN.

    Units (BUNIT, case and spacing ignored): ELECTRONS/S, e-/s, counts/s, cps …
    are kept; ELECTRONS or COUNTS are divided by EXPTIME; flux densities in
    erg s⁻¹ cm⁻² Å⁻¹ (ERG/S/CM2/A, erg/s/cm^2/Angstrom, …) by PHOTFLAM (image or primary
    header); without BUNIT but with PHOTFLAM the image is taken as counts/s (and a warning
    logged). Anything else, a missing HDU or weight map, shapes that differ, no celestial
    WCS, or no valid pixel raises InputFileError naming the file and, where one is at
    fault, the HDU (``file[EXTNAME]``).
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file (band {band}); check the band's image path")
    no_weight = isinstance(weight_path, str) and weight_path.strip().lower() == NO_WEIGHT
    if no_weight and weight_hdu is not None:
        raise ConfigError(
            f"band {band}: weight_hdu {weight_hdu!r} given with weight 'none' (no weight map)"
        )
    # the weight map in the image's own file: named by weight_hdu, the image path, or found
    weight_in_file = not no_weight and (weight_path is None or Path(weight_path) == path)
    blank = weight_source = None
    with open_fits(path, memmap=True) as hdul:  # not FITS, truncated: InputFileError
        image_hdu = _image_hdu(hdul, path, hdu)
        where = f"{path}[{_hdu_label(hdul, image_hdu)}]"
        headers = [image_hdu.header, hdul[0].header]
        data = image_hdu.data
        if data is None or np.squeeze(data).ndim != 2:
            held = "no data" if data is None else f"an array of shape {data.shape}"
            raise InputFileError(
                f"{where}: holds {held}, not a 2-D image; set the band's `hdu` in mosaic.files "
                f"(the file has {_hdu_list(hdul)})"
            )
        data = np.array(np.squeeze(data), dtype=np.float32)  # native-endian copy
        try:
            wcs = WCS(image_hdu.header, fobj=hdul)
        except Exception as err:  # astropy raises several kinds for broken headers
            raise InputFileError(f"{where}: the WCS in the header is unreadable ({err})") from err
        if weight_in_file:
            weight = None
            if weight_hdu is not None:
                weight = _named_hdu(hdul, path, weight_hdu, "weight_hdu")
            elif "WHT" in hdul:
                weight = hdul["WHT"]
            elif weight_path is not None:
                raise InputFileError(
                    f"{path}[WHT]: no such HDU for the weight map (the file has "
                    f"{_hdu_list(hdul)}); set the band's `weight_hdu` in mosaic.files"
                )
            if weight is image_hdu:
                raise InputFileError(
                    f"{where}: the weight map would be the image itself; set the band's "
                    "`weight_hdu` to the weight extension or `weight: none`"
                )
            if weight is not None:
                weight_source = f"{path}[{_hdu_label(hdul, weight)}]"
                blank = _weight_blank(weight, weight_source, data.shape, where)
    if not wcs.has_celestial or wcs.celestial.pixel_n_dim != 2:
        raise InputFileError(
            f"{where}: no celestial WCS (RA/Dec CTYPEs with CRVAL, CRPIX, CD or CDELT) in the "
            "image header; the band cannot be aligned with the others without one"
        )
    wcs = wcs.celestial
    if abs(np.linalg.det(wcs.pixel_scale_matrix)) == 0:
        raise InputFileError(f"{where}: the WCS's CD/CDELT matrix is singular")
    separate = None
    if not no_weight and not weight_in_file:
        separate = Path(weight_path)
    elif weight_path is None and weight_hdu is None and blank is None:
        sibling = sci_weight_path(path)
        if sibling is not None:
            separate = Path(sibling)
            if not separate.exists():
                raise InputFileError(
                    f"{path}: the name marks a science image (_sci) without a WHT extension, "
                    f"but its weight map {separate} does not exist; put the weight map there, "
                    "give its path as `weight:` in the band's mosaic.files entry, or set "
                    "`weight: none` to use no weight map"
                )
    if separate is not None:
        if not separate.exists():
            raise InputFileError(
                f"{separate}[{'WHT' if weight_hdu is None else weight_hdu}]: no such weight "
                f"file (band {band}, the weight map of {where}); fix the band's `weight` path "
                "in mosaic.files or set `weight: none` to use no weight map"
            )
        with open_fits(separate, memmap=True) as whdul:
            if weight_hdu is not None:
                weight = _named_hdu(whdul, separate, weight_hdu, "weight_hdu")
            else:
                weight = whdul["WHT"] if "WHT" in whdul else _first_image_hdu(whdul)
            if weight is None:
                raise InputFileError(
                    f"{separate}: no HDU holds a 2-D weight map (the file has {_hdu_list(whdul)})"
                )
            weight_source = f"{separate}[{_hdu_label(whdul, weight)}]"
            blank = _weight_blank(weight, weight_source, data.shape, where)
    if blank is not None:
        data[blank] = np.nan
        log.info("%s: weight map %s, %.1f %% zero weight", where, weight_source, 100 * blank.mean())
        del blank
    data[~np.isfinite(data)] = np.nan
    if zero_is_blank:
        data[data == 0] = np.nan
    if not np.isfinite(data).any():
        raise InputFileError(
            f"{where}: band {band} has no valid pixel (all NaN, zero or zero weight); "
            "check the file or give the right HDU"
        )
    data, exptime, note = _to_counts_per_s(data, where, headers)
    blank_fraction = float(np.isnan(data).mean())
    log.info(
        "%s: band %s, %d x %d px at %.4f arcsec/px, %.1f %% blank",
        where,
        band,
        data.shape[1],
        data.shape[0],
        np.sqrt(proj_plane_pixel_area(wcs)) * 3600,
        100 * blank_fraction,
    )
    return BandImage(
        band, path, data.astype(np.float32, copy=False), wcs, exptime, note, weight_source
    )


# --------------------------------------------------------------------------- grid


def _footprint_polygon(wcs: WCS, shape: tuple[int, int], frame_wcs: WCS, n_side: int = 16):
    """The outline of an image (pixel edges) in ``frame_wcs`` pixel coordinates, (2, 4·n_side)."""
    ny, nx = shape
    t = np.linspace(0.0, 1.0, n_side, endpoint=False)
    x = np.concatenate(
        [-0.5 + t * nx, np.full(n_side, nx - 0.5), nx - 0.5 - t * nx, np.full(n_side, -0.5)]
    )
    y = np.concatenate(
        [np.full(n_side, -0.5), -0.5 + t * ny, np.full(n_side, ny - 0.5), ny - 0.5 - t * ny]
    )
    px, py = pixel_to_pixel(wcs, frame_wcs, x, y)
    poly = np.stack([px, py])
    if _polygon_area(poly) < 0:  # make it counter-clockwise
        poly = poly[:, ::-1]
    return poly


def _polygon_area(poly: np.ndarray) -> float:
    x, y = poly
    return 0.5 * float(np.sum(x * np.roll(y, -1) - np.roll(x, -1) * y))


def _clip_polygon(subject: np.ndarray, clip: np.ndarray) -> np.ndarray:
    """Sutherland–Hodgman: ``subject`` ∩ ``clip`` (convex, counter-clockwise); (2, n) arrays."""
    out = [tuple(p) for p in subject.T]
    cx, cy = clip
    for i in range(cx.size):
        ax, ay, bx, by = cx[i - 1], cy[i - 1], cx[i], cy[i]
        inp, out = out, []
        if not inp:
            break

        def side(p, ax=ax, ay=ay, bx=bx, by=by):
            return (bx - ax) * (p[1] - ay) - (by - ay) * (p[0] - ax)

        for j in range(len(inp)):
            cur, prev = inp[j], inp[j - 1]
            s_cur, s_prev = side(cur), side(prev)
            if s_cur >= 0:
                if s_prev < 0:
                    f = s_prev / (s_prev - s_cur)
                    out.append((prev[0] + f * (cur[0] - prev[0]), prev[1] + f * (cur[1] - prev[1])))
                out.append(cur)
            elif s_prev >= 0:
                f = s_prev / (s_prev - s_cur)
                out.append((prev[0] + f * (cur[0] - prev[0]), prev[1] + f * (cur[1] - prev[1])))
    return np.array(out, dtype=float).T.reshape(2, -1)


def tan_wcs(
    shape_px: int | tuple[int, int],
    pixel_scale_arcsec: float,
    centre_deg: tuple[float, float],
    rot_deg: float = 0.0,
    shift_px: tuple[float, float] = (0.0, 0.0),
) -> WCS:
    """A TAN WCS for an image of ``shape_px`` (n, or (ny, nx)) whose middle is at
    ``centre_deg`` (RA, Dec): east left, north up turned by ``rot_deg``, the reference pixel
    moved by ``shift_px`` (x, y) — e.g. one visit's grid, or a test image."""
    ny, nx = (shape_px, shape_px) if np.ndim(shape_px) == 0 else shape_px
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = list(centre_deg)
    wcs.wcs.crpix = [(nx + 1) / 2 + shift_px[0], (ny + 1) / 2 + shift_px[1]]
    s, t = pixel_scale_arcsec / 3600, np.radians(rot_deg)
    wcs.wcs.cd = [[-s * np.cos(t), s * np.sin(t)], [s * np.sin(t), s * np.cos(t)]]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.set()
    return wcs


def _tan_wcs(ra_deg: float, dec_deg: float, pixel_scale_arcsec: float) -> WCS:
    """A north-up (east left) TAN WCS at (ra, dec) with pixel 0-based (0, 0) on it."""
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.cunit = ["deg", "deg"]
    wcs.wcs.crval = [ra_deg, dec_deg]
    wcs.wcs.crpix = [1.0, 1.0]
    scale = pixel_scale_arcsec / 3600.0
    wcs.wcs.cdelt = [-scale, scale]
    wcs.wcs.radesys = "ICRS"
    wcs.wcs.set()
    return wcs


def common_grid(
    wcs_list: Sequence[WCS],
    shapes: Sequence[tuple[int, int]],
    pixel_scale_arcsec: float,
    *,
    extent: str = "intersection",
    names: Sequence[str] | None = None,
) -> tuple[WCS, tuple[int, int]]:
    """A north-up TAN grid at ``pixel_scale_arcsec`` over the bands' common footprint.

    wcs_list, shapes: each band's celestial WCS and image shape (ny, nx); names:
    labels for messages (band names or paths).
    extent: "intersection" (default) — the bounding box of the region every band
    covers: detection and the background cutouts need all bands, so pixels outside
    it would only ever be masked; pixels inside the box but outside a band's
    (rotated) footprint are flagged BLANK by :func:`build_mask`. "union" — the
    bounding box of all footprints (keeps every input pixel; more of it masked).

    Footprints are the images' outer pixel edges (a band's blank border still
    counts as covered; the mask flags it). Returns (WCS, (ny, nx)); the reference
    point (CRVAL) is the centre of the covered region, ICRS.
    InputFileError when two bands do not overlap on the sky at all.
    """
    if not pixel_scale_arcsec or pixel_scale_arcsec <= 0:
        raise ConfigError(f"pixel_scale_arcsec: must be positive, got {pixel_scale_arcsec}")
    if extent not in ("intersection", "union"):
        raise ConfigError(f"extent: must be 'intersection' or 'union', got {extent!r}")
    if len(wcs_list) == 0 or len(wcs_list) != len(shapes):
        raise ValueError("common_grid needs one shape per WCS and at least one band")
    names = list(names) if names is not None else [f"band {i}" for i in range(len(wcs_list))]

    # A provisional plane at the mean of the image centres, in grid pixels.
    centres = [
        w.pixel_to_world((s[1] - 1) / 2, (s[0] - 1) / 2).icrs
        for w, s in zip(wcs_list, shapes, strict=True)
    ]
    vec = np.mean([c.cartesian.xyz.value for c in centres], axis=0)
    ra0 = math.degrees(math.atan2(vec[1], vec[0])) % 360.0
    dec0 = math.degrees(math.atan2(vec[2], math.hypot(vec[0], vec[1])))
    plane = _tan_wcs(ra0, dec0, pixel_scale_arcsec)
    polys = [_footprint_polygon(w, s, plane) for w, s in zip(wcs_list, shapes, strict=True)]

    for i in range(len(polys)):
        for j in range(i + 1, len(polys)):
            if _polygon_area(_clip_polygon(polys[i], polys[j])) <= 0:
                raise InputFileError(
                    f"{names[i]} and {names[j]} do not overlap on the sky; check that all "
                    "bands' images show the same field and that their WCS are right"
                )
    if extent == "intersection":
        region = polys[0]
        for poly in polys[1:]:
            region = _clip_polygon(region, poly)
        if region.size == 0 or _polygon_area(region) <= 0:
            raise InputFileError(
                f"{', '.join(names)}: the bands overlap pairwise but no region is covered by "
                "all of them; check the images' footprints"
            )
    else:
        region = np.concatenate(polys, axis=1)

    # The grid: centred on the region's bounding box, as many pixels as fit inside it
    # (intersection) or as cover it (union).
    cx = 0.5 * (region[0].min() + region[0].max())
    cy = 0.5 * (region[1].min() + region[1].max())
    centre = plane.pixel_to_world(cx, cy)
    grid = _tan_wcs(centre.ra.deg, centre.dec.deg, pixel_scale_arcsec)
    vx, vy = pixel_to_pixel(plane, grid, region[0], region[1])
    widths = (np.ptp(vy), np.ptp(vx))
    if extent == "intersection":
        shape = tuple(max(1, math.floor(w + 1e-6)) for w in widths)
    else:
        shape = tuple(math.ceil(w - 1e-6) for w in widths)
    if shape[0] * shape[1] > 4e9:
        raise ConfigError(
            f"pixel_scale_arcsec: {pixel_scale_arcsec} gives a {shape[1]} x {shape[0]} px grid; "
            "is the pixel scale in arcsec?"
        )
    grid.wcs.crpix = [(shape[1] + 1) / 2, (shape[0] + 1) / 2]  # centre pixel on CRVAL
    grid.wcs.set()
    grid.pixel_shape = (shape[1], shape[0])
    log.info(
        "common grid (%s of %d bands): %d x %d px at %.4f arcsec/px, centre RA %.6f Dec %.6f",
        extent,
        len(wcs_list),
        shape[1],
        shape[0],
        pixel_scale_arcsec,
        centre.ra.deg,
        centre.dec.deg,
    )
    return grid, shape


# --------------------------------------------------------------------------- resampling


def _coarse_axis(n: int) -> np.ndarray:
    """Coarse sample positions along a tile axis of n pixels: the edges and every 64 px."""
    return np.unique(np.concatenate([np.arange(-0.5, n - 0.5, _COARSE_STEP_PX), [n - 0.5]]))


def _upsample(coarse: np.ndarray, xc: np.ndarray, yc: np.ndarray, shape) -> np.ndarray:
    """Bilinear interpolation of values on the coarse tile grid (yc, xc) to every pixel, float32."""
    fy = np.interp(np.arange(shape[0]), yc, np.arange(yc.size))
    fx = np.interp(np.arange(shape[1]), xc, np.arange(xc.size))
    gy, gx = np.meshgrid(fy.astype(np.float32), fx.astype(np.float32), indexing="ij")
    return ndimage.map_coordinates(coarse, [gy, gx], order=1, mode="nearest", output=np.float32)


def _area_ratio(xc, yc, in_x, in_y, shape) -> np.ndarray | float:
    """|det J| of output → input pixels on the tile, from coarse samples: scalar if constant."""
    dxdx = np.gradient(in_x, xc, axis=1)
    dxdy = np.gradient(in_x, yc, axis=0)
    dydx = np.gradient(in_y, xc, axis=1)
    dydy = np.gradient(in_y, yc, axis=0)
    det = np.abs(dxdx * dydy - dxdy * dydx)
    if np.ptp(det) <= 1e-7 * np.max(det):
        return float(np.mean(det))
    return _upsample(det, xc, yc, shape)


def _touches_bad(bad, reach, xc, yc, in_x, in_y, shape) -> np.ndarray:
    """Tile pixels whose interpolation stencil meets a blank input pixel or the input's edge.

    bad: (h, w) blank pixels of the sliced input; in_x, in_y: coarse-grid positions
    in that slice's pixels. A pixel is flagged when its nearest input pixel lies
    within ``reach`` px (a (2·reach+1)² box) of a blank one or beyond the slice.
    Positions come from bilinear interpolation of the coarse grid (64 px spacing;
    errors ≪ 0.01 px for TAN grids, ~0.005 px for HST-sized SIP terms), which
    costs a tenth of a full WCS transform per pixel.
    """
    padded = np.pad(bad, reach, constant_values=True)
    padded = ndimage.maximum_filter(padded, size=2 * reach + 1)  # dilation by the box
    x = np.rint(_upsample(in_x, xc, yc, shape)).astype(np.int32) + reach
    y = np.rint(_upsample(in_y, xc, yc, shape)).astype(np.int32) + reach
    outside = (x < 0) | (y < 0) | (x >= padded.shape[1]) | (y >= padded.shape[0])
    np.clip(x, 0, padded.shape[1] - 1, out=x)
    np.clip(y, 0, padded.shape[0] - 1, out=y)
    return padded[y, x] | outside


def _resample_tile(sub, sub_wcs, tile_wcs, tile_shape, method):
    """Resample ``sub`` (no NaN) onto the tile; surface-brightness-like for bicubic/exact."""
    from reproject import reproject_adaptive, reproject_exact, reproject_interp

    if method == "bicubic":
        return reproject_interp(
            (sub, sub_wcs),
            tile_wcs,
            shape_out=tile_shape,
            order="bicubic",
            return_footprint=False,
            roundtrip_coords=False,
        )
    if method == "exact":
        return reproject_exact(
            (sub, sub_wcs), tile_wcs, shape_out=tile_shape, return_footprint=False
        )
    return reproject_adaptive(
        (sub, sub_wcs),
        tile_wcs,
        shape_out=tile_shape,
        conserve_flux=True,
        return_footprint=False,
        roundtrip_coords=False,
    )


def _tiles(shape: tuple[int, int], tile_px: int):
    for y0 in range(0, shape[0], tile_px):
        for x0 in range(0, shape[1], tile_px):
            yield y0, min(y0 + tile_px, shape[0]), x0, min(x0 + tile_px, shape[1])


def _reproject_tile(image, wcs, target_wcs, bounds, method, reach):
    """One target tile of :func:`reproject_band`: float64 (ty1-ty0, tx1-tx0) or None (no data)."""
    ty0, ty1, tx0, tx1 = bounds
    wcs = wcs.deepcopy()  # astropy's WCS is not thread-safe
    tile_shape = (ty1 - ty0, tx1 - tx0)
    tile_wcs = target_wcs.deepcopy()[ty0:ty1, tx0:tx1]
    ny_in, nx_in = image.shape
    xc, yc = _coarse_axis(tile_shape[1]), _coarse_axis(tile_shape[0])
    gx, gy = np.meshgrid(xc, yc)
    in_x, in_y = pixel_to_pixel(tile_wcs, wcs, gx, gy)
    if not (np.isfinite(in_x).all() and np.isfinite(in_y).all()):
        return None  # (part of) the tile is beyond the input projection's horizon
    ix0 = max(0, math.floor(in_x.min()) - _MARGIN_PX)
    ix1 = min(nx_in, math.ceil(in_x.max()) + _MARGIN_PX + 1)
    iy0 = max(0, math.floor(in_y.min()) - _MARGIN_PX)
    iy1 = min(ny_in, math.ceil(in_y.max()) + _MARGIN_PX + 1)
    if ix1 - ix0 < 4 or iy1 - iy0 < 4:
        return None  # no overlap (or too thin to interpolate)
    sub = np.array(image[iy0:iy1, ix0:ix1], dtype=np.float32)
    bad = ~np.isfinite(sub)
    if bad.all():
        return None
    if bad.any():  # nearest valid neighbour: no NaN through the prefilter, small jumps
        idx = ndimage.distance_transform_edt(bad, return_distances=False, return_indices=True)
        sub = sub[tuple(idx)]
        del idx
    sub_wcs = wcs[iy0:iy1, ix0:ix1]
    values = _resample_tile(sub, sub_wcs, tile_wcs, tile_shape, method)
    del sub
    if method != "adaptive":
        values *= _area_ratio(xc, yc, in_x, in_y, tile_shape)
    # Blank where the stencil meets a blank pixel or the edge of the input array.
    # Padding marks all four sides of `sub` as edges: its cut sides lie _MARGIN_PX
    # beyond the tile's footprint, out of reach of the stencils.
    at_edge = ix0 == 0 or iy0 == 0 or ix1 == nx_in or iy1 == ny_in
    if bad.any() or at_edge:
        values[_touches_bad(bad, reach, xc, yc, in_x - ix0, in_y - iy0, tile_shape)] = np.nan
    return values


def reproject_band(
    image: np.ndarray,
    wcs: WCS,
    target_wcs: WCS,
    target_shape: tuple[int, int],
    tile_px: int = 2048,
    *,
    method: str = "bicubic",
    n_threads: int = 1,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """Resample ``image`` onto the target grid, conserving flux (counts/s per pixel).

    image: (ny, nx) counts/s per input pixel, NaN = blank (may be a memmap); wcs:
    its celestial WCS; target_wcs, target_shape: the grid from :func:`common_grid`.
    method: "bicubic" (default: ``reproject_interp`` cubic spline × pixel-area
    ratio, as the thesis; see the module docstring for the comparison), "exact"
    (``reproject_exact`` × area ratio) or "adaptive" (``reproject_adaptive`` with
    ``conserve_flux``).
    n_threads: tiles resampled at once (WCS transforms and spline interpolation
    release the GIL: 2 threads ≈ 1.6× faster on 2 cores); out: optional float32
    array of ``target_shape`` (e.g. a memmap) to fill.

    Returns float32 (ny_t, nx_t), counts/s per target pixel, NaN where the band
    has no data (outside its footprint, or the interpolation touches a blank
    input pixel or the input's edge). The total counts/s of a source is
    preserved; the WCS of the result is ``target_wcs``.

    Works tile by tile (``tile_px``² target pixels): memory beyond ``image`` and
    the output is bounded by ``n_threads`` tiles' work, 137 bytes per tile pixel
    each (0.55 GiB per thread at ``tile_px=2048``).
    """
    if method not in METHODS:
        raise ConfigError(f"method: must be one of {METHODS}, got {method!r}")
    if tile_px < 16:
        raise ConfigError(f"tile_px: must be at least 16, got {tile_px}")
    if n_threads < 1:
        raise ConfigError(f"n_threads: must be at least 1, got {n_threads}")
    target_shape = tuple(int(n) for n in target_shape)
    if out is None:
        out = np.full(target_shape, np.nan, dtype=np.float32)
    else:
        if out.shape != target_shape:
            raise ValueError(f"out has shape {out.shape}, the target grid {target_shape}")
        out[...] = np.nan
    ratio_lin = math.sqrt(proj_plane_pixel_area(target_wcs) / proj_plane_pixel_area(wcs))
    if method == "bicubic" and ratio_lin > _ALIAS_WARN_RATIO:
        log.warning(
            "target pixels are %.2f x the input's: bicubic point sampling aliases "
            "(per-source flux errors ~1 %% at 1.25 x); consider method='exact'",
            ratio_lin,
        )
    # Output pixels within `reach` input pixels of a blank one (or of the edge) are blanked.
    reach = 2 * max(1, math.ceil(ratio_lin)) if method == "adaptive" else 2

    def run(bounds):
        values = _reproject_tile(image, wcs, target_wcs, bounds, method, reach)
        if values is not None:
            ty0, ty1, tx0, tx1 = bounds
            out[ty0:ty1, tx0:tx1] = values  # tiles are disjoint: safe from threads

    tiles = list(_tiles(target_shape, tile_px))
    if n_threads == 1:
        for bounds in tiles:
            run(bounds)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(n_threads) as pool:
            for _ in pool.map(run, tiles):
                pass
    return out


# --------------------------------------------------------------------------- mask


def read_catalog(
    path: str | os.PathLike,
    *,
    ra_column: str = "ra",
    dec_column: str = "dec",
    radius_column: str = "radius_arcsec",
) -> pd.DataFrame:
    """Objects to mask from a CSV or FITS table: DataFrame (ra_deg, dec_deg, radius_arcsec).

    RA and Dec in degrees (ICRS), radius in arcsec; column names are matched
    exactly, then case-insensitively. InputFileError naming the file and the
    column when one is missing or holds non-numeric or negative values.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such catalog file; fix the path in the config")
    try:
        if path.suffix.lower() in (".csv", ".txt") or path.name.lower().endswith(".csv.gz"):
            table = pd.read_csv(path, comment="#")
        else:
            from astropy.table import Table

            table = Table.read(path).to_pandas()
    except Exception as err:  # pandas and astropy raise many kinds for malformed files
        raise InputFileError(f"{path}: not a readable CSV or FITS table ({err})") from err
    lower = {str(c).lower(): c for c in table.columns}
    picked = {}
    for role, name in (
        ("ra_deg", ra_column),
        ("dec_deg", dec_column),
        ("radius_arcsec", radius_column),
    ):
        column = name if name in table.columns else lower.get(str(name).lower())
        if column is None:
            raise InputFileError(
                f"{path}: no column {name!r} ({role.replace('_', ' in ')}); the table has "
                f"{list(table.columns)}; set the catalog's column names in the config"
            )
        values = pd.to_numeric(table[column], errors="coerce").to_numpy(dtype=float)
        if not np.isfinite(values).all():
            row = int(np.flatnonzero(~np.isfinite(values))[0])
            raise InputFileError(f"{path}: column {column!r} row {row} is not a number")
        picked[role] = values
    if (picked["radius_arcsec"] < 0).any():
        raise InputFileError(f"{path}: column {radius_column!r} has negative radii")
    log.info("%s: %d objects to mask", path, len(table))
    return pd.DataFrame(picked)


def build_mask(
    images: Mapping[str, np.ndarray],
    wcs: WCS,
    *,
    blank: bool = True,
    saturation_cps: Mapping[str, float] | None = None,
    saturation_grow_arcsec: float = 0.5,
    catalog: pd.DataFrame | Sequence[pd.DataFrame] | None = None,
    tile_px: int = 2048,
) -> np.ndarray:
    """The mosaic's mask, uint8 (ny, nx) on the common grid, bits OR-ed together.

    images: band → reprojected image (ny, nx), counts/s per grid pixel, NaN = blank;
    wcs: the grid's WCS. Each source of flags can be switched off:

    * ``MASK_BLANK`` (1), if ``blank``: NaN in any band (no data, zero weight,
      outside the band's footprint);
    * ``MASK_SATURATED`` (2), for the bands in ``saturation_cps`` (band →
      threshold in counts/s per grid pixel; None or {} = off): every pixel within
      ``saturation_grow_arcsec`` of a pixel above the threshold, i.e. each
      saturated blob (core, bleed trail) grown by a disk of that radius;
    * ``MASK_CATALOG`` (4), for ``catalog`` (one or more tables from
      :func:`read_catalog`; None = off): the pixels whose centres lie within each
      object's ``radius_arcsec`` of its position.

    Works in tiles of ``tile_px``² with halos, so memory beyond the images is the
    mask (1 byte per pixel) and one tile's work.
    """
    if not images:
        raise ValueError("build_mask needs at least one image")
    shape = next(iter(images.values())).shape
    for band, image in images.items():
        if image.shape != shape:
            raise ValueError(f"band {band}: image {image.shape} is not on the grid {shape}")
    mask = np.zeros(shape, dtype=np.uint8)
    scale_arcsec = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)

    if blank:
        for image in images.values():
            for y0 in range(0, shape[0], tile_px):
                rows = slice(y0, min(y0 + tile_px, shape[0]))
                mask[rows][np.isnan(image[rows])] |= MASK_BLANK

    saturation_cps = dict(saturation_cps or {})
    unknown = set(saturation_cps) - set(images)
    if unknown:
        raise ConfigError(
            f"saturation_cps: bands {sorted(unknown)} are not among the images {list(images)}"
        )
    if saturation_cps:
        if saturation_grow_arcsec < 0:
            raise ConfigError(
                f"saturation_grow_arcsec: must not be negative, got {saturation_grow_arcsec}"
            )
        grow_px = saturation_grow_arcsec / scale_arcsec
        halo = math.ceil(grow_px) + 1
        for ty0, ty1, tx0, tx1 in _tiles(shape, tile_px):
            hy0, hy1 = max(0, ty0 - halo), min(shape[0], ty1 + halo)
            hx0, hx1 = max(0, tx0 - halo), min(shape[1], tx1 + halo)
            saturated = np.zeros((hy1 - hy0, hx1 - hx0), bool)
            for band, threshold in saturation_cps.items():
                saturated |= images[band][hy0:hy1, hx0:hx1] > threshold
            if not saturated.any():
                continue
            distance = ndimage.distance_transform_edt(~saturated)
            near = distance[ty0 - hy0 : ty1 - hy0, tx0 - hx0 : tx1 - hx0] <= grow_px
            mask[ty0:ty1, tx0:tx1][near] |= MASK_SATURATED

    if catalog is not None:
        tables = [catalog] if isinstance(catalog, pd.DataFrame) else list(catalog)
        objects = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
        if len(objects):
            from astropy.coordinates import SkyCoord

            coords = SkyCoord(
                objects["ra_deg"].to_numpy(), objects["dec_deg"].to_numpy(), unit="deg"
            )
            xs, ys = wcs.world_to_pixel(coords)
            radii = objects["radius_arcsec"].to_numpy() / scale_arcsec
            inside = 0
            for x, y, r in zip(xs, ys, radii, strict=True):
                x0, x1 = max(0, math.ceil(x - r)), min(shape[1], math.floor(x + r) + 1)
                y0, y1 = max(0, math.ceil(y - r)), min(shape[0], math.floor(y + r) + 1)
                if x0 >= x1 or y0 >= y1:
                    continue
                yy, xx = np.ogrid[y0:y1, x0:x1]
                disk = (xx - x) ** 2 + (yy - y) ** 2 <= r * r
                mask[y0:y1, x0:x1][disk] |= MASK_CATALOG
                inside += 1
            log.info("catalog masking: %d of %d objects on the grid", inside, len(objects))

    for bit, (name, _) in MASK_BITS.items():
        log.info("mask %s: %.3f %% of pixels", name, 100 * np.mean(mask & bit > 0))
    return mask


# --------------------------------------------------------------------------- writing


def _header(wcs: WCS, header_cards: Mapping | None) -> fits.Header:
    header = wcs.to_header()
    for key, value in (header_cards or {}).items():
        header[key] = value
    return header


def write_image(
    path: str | os.PathLike,
    image: np.ndarray,
    wcs: WCS,
    header_cards: Mapping | None = None,
) -> None:
    """Write a float32 image on the grid of ``wcs`` to FITS atomically, WCS in the header.

    header_cards: key -> value or (value, comment), e.g. ``{"BUNIT": "counts/s"}``.
    """
    header = _header(wcs, {"BUNIT": ("counts/s", "per pixel of this grid"), **(header_cards or {})})
    hdu = fits.PrimaryHDU(np.asarray(image, dtype=np.float32), header=header)
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, overwrite=True)


def write_mask(
    path: str | os.PathLike,
    mask: np.ndarray,
    wcs: WCS,
    header_cards: Mapping | None = None,
) -> None:
    """Write the uint8 mask of :func:`build_mask` to FITS atomically, with WCS and bit meanings."""
    cards = {
        f"MASKB{bit.bit_length() - 1}": (bit, f"{name}: {text}")
        for bit, (name, text) in MASK_BITS.items()
    }
    header = _header(wcs, {**cards, **(header_cards or {})})
    hdu = fits.PrimaryHDU(np.asarray(mask, dtype=np.uint8), header=header)
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, overwrite=True)


def read_image(path: str | os.PathLike) -> tuple[np.ndarray, WCS, fits.Header]:
    """Read an image or mask written by :func:`write_image`/:func:`write_mask`: (data, WCS, header)."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file; run the mosaic stage first")
    with open_fits(path) as hdul:  # not FITS, truncated: InputFileError, delete and rerun
        data, header = hdul[0].data, hdul[0].header
    return data, WCS(header), header


# --------------------------------------------------------------------------- stage


def _band_file(source: str | os.PathLike | Mapping) -> dict:
    """A band's files as {image, hdu, weight, weight_hdu} (a bare path is the image)."""
    if isinstance(source, Mapping):
        unknown = set(source) - set(BAND_FILE_KEYS)
        if unknown or not source.get("image"):
            raise ValueError(
                f"a band's files need 'image' and at most {BAND_FILE_KEYS}, got {dict(source)}"
            )
        return {key: source.get(key) for key in BAND_FILE_KEYS}
    return {"image": source, "hdu": None, "weight": None, "weight_hdu": None}


def _read(band: str, source: Mapping) -> BandImage:
    return read_band(
        source["image"],
        band,
        hdu=source["hdu"],
        weight_path=source["weight"],
        weight_hdu=source["weight_hdu"],
    )


def prepare_mosaic(
    band_paths: Mapping[str, str | os.PathLike | Mapping],
    image_paths: Mapping[str, str | os.PathLike],
    mask_path: str | os.PathLike,
    pixel_scale_arcsec: float,
    *,
    extent: str = "intersection",
    method: str = "bicubic",
    tile_px: int = 2048,
    n_threads: int = 1,
    blank: bool = True,
    saturation_cps: Mapping[str, float] | None = None,
    saturation_grow_arcsec: float = 0.5,
    catalogs: Sequence[pd.DataFrame] | None = None,
) -> tuple[WCS, tuple[int, int]]:
    """Read every band, build the common grid, resample, mask and write (the mosaic stage).

    band_paths: band → input FITS, or band → {image, hdu, weight, weight_hdu} (the
    arguments of :func:`read_band`: path, hdu, weight_path, weight_hdu; the shape of
    :func:`starclusters.mosaic.settings.band_file`); image_paths: band → output FITS;
    mask_path: the mask FITS. Other arguments as in :func:`common_grid`, :func:`reproject_band`
    and :func:`build_mask`. Holds all resampled bands in memory (4 bytes per grid
    pixel each) and one input band at a time. Returns the grid (WCS, shape).
    """
    missing = set(band_paths) - set(image_paths)
    if missing:
        raise ValueError(f"no output path for bands {sorted(missing)}")
    # First pass: check every band (fails early, before any resampling) and keep its geometry;
    # the second pass reads one band at a time, so one input image is in memory at once.
    sources = {band: _band_file(source) for band, source in band_paths.items()}
    geometry = {}
    for band, source in sources.items():
        item = _read(band, source)  # every file, HDU, weight map and unit checked here
        geometry[band] = (item.wcs, item.image.shape, f"{item.path} ({band})")
        del item
    grid, shape = common_grid(
        [g[0] for g in geometry.values()],
        [g[1] for g in geometry.values()],
        pixel_scale_arcsec,
        extent=extent,
        names=[g[2] for g in geometry.values()],
    )
    images = {}
    for band, source in sources.items():
        item = _read(band, source)
        images[band] = reproject_band(
            item.image, item.wcs, grid, shape, tile_px, method=method, n_threads=n_threads
        )
        cards = {
            "BAND": band,
            "SRCFILE": item.path.name[:68],
            "UNITNOTE": item.unit_note[:68],
            "RESAMPLE": (method, "flux-conserving, starclusters.mosaic"),
            "PIXSCALE": (pixel_scale_arcsec, "arcsec/px"),
        }
        if item.exptime_s is not None:
            cards["EXPTIME"] = (item.exptime_s, "s, from the input")
        if item.weight_source is not None:
            cards["WHTSRC"] = Path(item.weight_source).name[:68]  # weight <= 0: blank
        write_image(image_paths[band], images[band], grid, cards)
        del item
    mask = build_mask(
        images,
        grid,
        blank=blank,
        saturation_cps=saturation_cps,
        saturation_grow_arcsec=saturation_grow_arcsec,
        catalog=catalogs,
        tile_px=tile_px,
    )
    write_mask(mask_path, mask, grid, {"SATGROW": (saturation_grow_arcsec, "arcsec")})
    return grid, shape
