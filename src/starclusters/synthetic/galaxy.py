"""A synthetic M83-like galaxy with a ground-truth cluster catalogue, standing in for HST mosaics.

:func:`build_synthetic_galaxy` writes, for a :class:`SyntheticGalaxySpec`, a
:class:`~starclusters.photometry.StellarPopulation` and one ePSF per band:

* one FITS image per band (counts/s; BUNIT, EXPTIME, PHOTFLAM, SATURATE, ... in the
  header), each with its **own** celestial TAN WCS — the reference band north up,
  the others shifted by a few pixels and rotated by a fraction of a degree, as
  separate HST visits are — so that the mosaic stage's reprojection is exercised;
* ``truth.parquet``: the injected clusters (x_px, y_px on the reference band's grid,
  0-based; exact RA/Dec; age, mass, A_V, EFF a, γ, r_h, magnitudes of their stars,
  arm membership, galactocentric radius and distance across the arm);
* an arm table: the dust-lane polylines in the disk plane, pixels and RA/Dec, with
  centre, inclination, PA, corotation radius etc. in its metadata;
* optionally the contaminants (OB associations, background galaxies, saturated
  foreground stars) and preview PNGs.

What is in the images (see the other modules of :mod:`starclusters.synthetic` for each recipe):

* unresolved light of a Sérsic bulge, an exponential disk of old and intermediate
  populations and young stars born on (and drifting away from) two logarithmic
  arms; their brightest stars drawn one by one (:mod:`.field`);
* dust: Galactic foreground, a diffuse disk, the arm bands and the lanes on the
  arms' inner edges, per band with the extinction table's A_band/A_V;
* star clusters (the truth), OB associations, red background Sérsic galaxies and
  saturated foreground stars (:mod:`.catalogs`);
* sky, Poisson noise in electrons and read noise of ``n_exposures`` exposures,
  back to counts/s (sky subtracted by default, like drizzled mosaics).

Point sources (field stars, cluster stars and light packets, associations,
foreground stars) are drawn with the mock bank's
:class:`~starclusters.mocks.render.StampRenderer` on tiles of ``tile_px`` pixels:
every star within the PSF's half-width of a tile is rendered into it, so tiles join
without seams and no tile needs more than its own pixels in memory. Field stars are
drawn per cell of ``field_cell_px`` pixels of the reference grid from the cell's
own seed (so they do not depend on the tiling) and kept in a small cache while
neighbouring tiles need them; clusters are drawn from their
own seeds the same way. Images are written through a memory map of the output FITS
file (:func:`band_writer`), so an M83-sized mosaic (~10^8 px) needs memory for a few
tiles and the catalogues, not for the images.

Cost (one core of the development machine, GalSim ePSFs with oversampling 7 read
from the mock stage): the default 1024² × 3 bands, 150 clusters, takes ~10 s
(6 s of it the tiles) and 0.9 GB peak; 4096² with 2400 clusters takes 130 s and 2 GB
(1 GB of it the renderers' FFT buffers and the memory-mapped output pages); time
grows with the pixel count, so an M83-sized 10^8-px mosaic takes ~15 min.

Light lost by construction: each star's light beyond the ePSF array (its
``flux_fraction``, e.g. 0.4–0.9 % beyond 6″ for the GalSim model) and light that
falls outside the image.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import time
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from starclusters.errors import ConfigError
from starclusters.io import atomic_path, write_table
from starclusters.mocks.render import StampRenderer
from starclusters.photometry.population import StellarPopulation, counts_per_second
from starclusters.synthetic.catalogs import (
    FIELD_STREAM,
    NOISE_STREAM,
    add_magnitudes,
    cluster_light,
    complete_clusters,
    draw_associations,
    draw_background_galaxies,
    draw_clusters,
    draw_foreground_stars,
)
from starclusters.synthetic.catalogs import stream_seed as stream_seed
from starclusters.synthetic.field import FieldModel, FieldStars
from starclusters.synthetic.geometry import GalaxyGeometry, SkyFrame
from starclusters.synthetic.observe import dither_offsets_px, exposure_wcs, observe_band
from starclusters.synthetic.spec import SyntheticGalaxySpec

__all__ = [
    "SyntheticGalaxy",
    "SyntheticGalaxySpec",
    "arms_table",
    "band_header",
    "band_writer",
    "build_synthetic_galaxy",
    "psf_peak_fraction",
    "write_band",
]

log = logging.getLogger(__name__)

#: Truth-table columns, in order (mag_<band> follow av_mag).
TRUTH_COLUMNS = [
    "cluster_id",
    "x_px",
    "y_px",
    "ra_deg",
    "dec_deg",
    "log_age_yr",
    "log_mass_msun",
    "av_mag",
    "rh_arcsec",
    "eff_a_arcsec",
    "eff_gamma",
    "truncation_arcsec",
    "on_arm",
    "born_on_arm",
    "arm",
    "arm_distance_kpc",
    "galactocentric_radius_kpc",
    "n_lit",
    "seed",
]

# ----------------------------------------------------------------------------- FITS


def band_header(
    wcs,
    band: str,
    exptime_s: float,
    shape: tuple[int, int],
    *,
    saturation_counts_s: float | None = None,
    sky_counts_s: float | None = None,
    sky_subtracted: bool | None = None,
    read_noise_e: float | None = None,
    n_exposures: int | None = None,
    zeropoint_mag: float | None = None,
    photflam: float | None = None,
    extra_cards: Mapping | None = None,
):
    """FITS header of a band image: float32 (ny, nx) = ``shape``, counts/s, with ``wcs``'s cards.

    extra_cards: key -> value or (value, comment).
    """
    from astropy.io import fits

    ny, nx = shape
    header = fits.Header()
    header["SIMPLE"] = True
    header["BITPIX"] = -32
    header["NAXIS"] = 2
    header["NAXIS1"] = int(nx)
    header["NAXIS2"] = int(ny)
    header.extend(wcs.to_header(relax=False).cards)
    header["BUNIT"] = ("counts/s", "e-/s per pixel (gain 1)")
    header["FILTER"] = (band, "band")
    header["EXPTIME"] = (float(exptime_s), "[s] total exposure time")
    optional = {
        "SATURATE": (saturation_counts_s, "[counts/s] pixels above this are saturated"),
        "SKYLEVEL": (sky_counts_s, "[counts/s] sky per pixel"),
        "SKYSUB": (sky_subtracted, "sky subtracted from the image"),
        "RDNOISE": (read_noise_e, "[e-] read noise per exposure"),
        "NCOMBINE": (n_exposures, "exposures combined"),
        "ZPVEGA": (zeropoint_mag, "[mag] Vega magnitude of 1 count/s"),
        "PHOTFLAM": (photflam, "[erg/s/cm2/A per e-/s] inverse sensitivity"),
    }
    for key, (value, comment) in optional.items():
        if value is not None:
            header[key] = (value.item() if hasattr(value, "item") else value, comment)
    for key, value in (extra_cards or {}).items():
        header[key] = value
    return header


def write_band(
    path: str | os.PathLike, image: np.ndarray, wcs, band: str, exptime_s: float, **cards
) -> None:
    """Write one band's image (ny, nx) counts/s as float32 FITS with its WCS, atomically.

    cards: the keyword arguments of :func:`band_header` (saturation_counts_s,
    sky_counts_s, read_noise_e, n_exposures, zeropoint_mag, photflam, extra_cards).
    """
    image = np.asarray(image, dtype=np.float32)
    if image.ndim != 2:
        raise ValueError(f"a band image must be 2-D (ny, nx), got shape {image.shape}")
    with band_writer(path, image.shape, wcs, band, exptime_s, **cards) as out:
        out[:] = image


def write_drizzled_band(
    path: str | os.PathLike,
    sci: np.ndarray,
    wht: np.ndarray,
    wcs,
    band: str,
    exptime_s: float,
    **cards,
) -> None:
    """Write a drizzled band as the archive does, atomically: an empty primary HDU with
    FILTER, EXPTIME and PHOTFLAM, a SCI extension (ny, nx) float32 counts/s with the WCS
    and every card of :func:`band_header`, and a WHT extension (ny, nx) float32 s
    (exposure-time weight, 0 = no data)."""
    from astropy.io import fits

    header = band_header(wcs, band, exptime_s, sci.shape, **cards)
    header["BUNIT"] = ("ELECTRONS/S", "per pixel (gain 1)")
    for key in ("SIMPLE", "BITPIX", "NAXIS", "NAXIS1", "NAXIS2"):
        header.remove(key, ignore_missing=True)
    primary = fits.PrimaryHDU()
    for key in ("FILTER", "EXPTIME", "PHOTFLAM"):
        if key in header:
            primary.header[key] = (header[key], header.comments[key])
    weight_header = wcs.to_header(relax=False)
    weight_header["BUNIT"] = ("SECONDS", "exposure-time weight (EXP)")
    hdul = fits.HDUList(
        [
            primary,
            fits.ImageHDU(np.asarray(sci, np.float32), header=header, name="SCI"),
            fits.ImageHDU(np.asarray(wht, np.float32), header=weight_header, name="WHT"),
        ]
    )
    with atomic_path(path) as tmp:
        hdul.writeto(tmp, overwrite=True)


@contextmanager
def band_writer(
    path: str | os.PathLike, shape: tuple[int, int], wcs, band: str, exptime_s: float, **cards
) -> Iterator[np.ndarray]:
    """Yield a writable (ny, nx) float32 memory map of a new band FITS file; rename it into
    place when the block ends without error (atomic, like :func:`starclusters.io.atomic_path`).

    The file is created at full size (header, then the data area, zero-filled and
    padded to 2880 bytes) and filled through ``numpy.memmap``, so only what the
    caller writes at a time is in memory. cards: as :func:`write_band`.
    """
    header = band_header(wcs, band, exptime_s, shape, **cards)
    raw = header.tostring(padding=True).encode("ascii")
    ny, nx = int(shape[0]), int(shape[1])
    data_bytes = ny * nx * 4
    padded = -(-data_bytes // 2880) * 2880
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(raw)
            handle.truncate(len(raw) + padded)
        data = np.memmap(tmp, dtype=">f4", mode="r+", offset=len(raw), shape=(ny, nx))
        try:
            yield data
            data.flush()
        finally:
            del data


# ----------------------------------------------------------------------------- helpers


def psf_peak_fraction(epsf: np.ndarray, oversampling: int, flux_fraction: float = 1.0) -> float:
    """Smallest share of a star's light in its brightest native pixel over sub-pixel positions.

    epsf: (n, n) ePSF (sums to 1, see :mod:`starclusters.mocks.psf`).
    """
    o = int(oversampling)
    peaks = [np.asarray(epsf)[py::o, px::o].max() * o * o for py in range(o) for px in range(o)]
    return float(min(peaks) * flux_fraction)


def native_psf(epsf: np.ndarray, oversampling: int, flux_fraction: float = 1.0) -> np.ndarray:
    """The ePSF at native spacing for a source centred on a pixel: (2h+1, 2h+1), sums to
    ``flux_fraction`` (the pixel response is already in the ePSF)."""
    o = int(oversampling)
    c = epsf.shape[0] // 2
    h = c // o
    native = np.asarray(epsf)[c - o * h : c + o * h + 1 : o, c - o * h : c + o * h + 1 : o]
    return native / native.sum() * flux_fraction


def arms_table(geometry: GalaxyGeometry, frame: SkyFrame, points_per_arm: int = 400):
    """Dust-lane polylines: arm, point, radius_kpc, x_kpc, y_kpc (disk plane), x_px, y_px
    (reference grid, 0-based; may lie outside the image), ra_deg, dec_deg."""
    rows = []
    for arm, (x, y) in enumerate(geometry.lane_polylines(points_per_arm)):
        ra, dec = frame.sky_to_world(*geometry.disk_to_sky(x, y))
        xp, yp = frame.world_to_pixel(geometry.spec.reference_band, ra, dec)
        rows.append(
            pd.DataFrame(
                {
                    "arm": arm,
                    "point": np.arange(len(x)),
                    "radius_kpc": np.hypot(x, y),
                    "x_kpc": x,
                    "y_kpc": y,
                    "x_px": xp,
                    "y_px": yp,
                    "ra_deg": ra,
                    "dec_deg": dec,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def _spec_meta(spec: SyntheticGalaxySpec) -> dict:
    return {
        k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(spec).items()
    }


class _LRU:
    """A small least-recently-used cache: key -> value made by ``make(key)``."""

    def __init__(self, make, capacity: int):
        self.make, self.capacity, self.data = make, capacity, OrderedDict()
        self.misses = 0

    def __call__(self, key):
        if key in self.data:
            self.data.move_to_end(key)
            return self.data[key]
        self.misses += 1
        value = self.make(key)
        self.data[key] = value
        if len(self.data) > self.capacity:
            self.data.popitem(last=False)
        return value


# ----------------------------------------------------------------------------- result


@dataclass
class SyntheticGalaxy:
    """What :func:`build_synthetic_galaxy` made: the WCS of every band (``frame.wcs``),
    the tables it wrote and the time spent per step (s)."""

    spec: SyntheticGalaxySpec
    geometry: GalaxyGeometry
    frame: SkyFrame
    truth: pd.DataFrame
    arms: pd.DataFrame
    contaminants: pd.DataFrame
    timings_s: dict


# ----------------------------------------------------------------------------- tiles


class _TileRenderer:
    """Renders band tiles: smooth light, point sources, galaxies, noise (see the module)."""

    def __init__(
        self,
        spec: SyntheticGalaxySpec,
        population: StellarPopulation,
        geometry: GalaxyGeometry,
        frame: SkyFrame,
        field: FieldModel,
        renderers: Mapping[str, StampRenderer],
        half_native_px: int,
        clusters: pd.DataFrame,
        associations: pd.DataFrame,
        foreground: pd.DataFrame,
        galaxy_stamps: Mapping[str, list],
        base_seed: int,
        extra_margin_px: float = 0.0,
    ):
        self.spec, self.population, self.geometry, self.frame = spec, population, geometry, frame
        # the bands' own grids: field cells and the truth live there even while
        # self.frame is an exposure's (see observe_through)
        self.band_frame = frame
        self.field, self.renderers, self.galaxy_stamps = field, renderers, galaxy_stamps
        self.base_seed = base_seed
        self.reach = half_native_px + 1
        ny, nx = spec.shape_px
        t = spec.tile_px
        self.n_tiles = (math.ceil(ny / t), math.ceil(nx / t))
        # Field stars exist where some band's tile can see them: the image, its PSF
        # reach, and the other bands' grids (shift, and rotation about the centre).
        turn = math.radians(spec.band_rotation_max_deg) * 0.5 * math.hypot(nx, ny)
        margin = self.reach + spec.band_shift_max_px * math.sqrt(2) + turn + 2 + extra_margin_px
        self.domain = (-0.5 - margin, nx - 0.5 + margin, -0.5 - margin, ny - 0.5 + margin)
        # cache: the cell rows one row of tiles needs, over the whole width
        c = spec.field_cell_px
        rows = math.ceil((t + 2 * margin) / c) + 2
        self.cells = _LRU(self._field_cell, capacity=rows * (math.ceil(nx / c) + 4))
        # extended sources: table, seeds and centres in the sky plane
        self.sources = [s for s in (clusters, associations) if len(s)]
        self._centres = []
        for table in self.sources:
            xi, eta = frame.world_to_sky(table["ra_deg"], table["dec_deg"])
            self._centres.append((xi, eta))
        self.light = _LRU(self._light, capacity=1024)
        self.foreground = foreground
        self._foreground_counts = (
            np.stack(
                [
                    counts_per_second(
                        foreground[f"mag_{b}"].to_numpy(float), population.zeropoints_mag[b]
                    )
                    for b in spec.bands
                ],
                axis=1,
            )
            if len(foreground)
            else np.zeros((0, len(spec.bands)))
        )

    # --- field stars of one reference cell
    def _field_cell(self, key) -> FieldStars:
        ci, cj = key  # row, column of the cell on the reference grid
        spec, t, b = self.spec, self.spec.field_cell_px, self.spec.density_block_px
        x_lo, x_hi, y_lo, y_hi = self.domain
        corners = np.arange(0, t, b, dtype=float) - 0.5
        bx = cj * t + corners
        by = ci * t + corners
        bx = bx[(bx + b > x_lo) & (bx < x_hi)]
        by = by[(by + b > y_lo) & (by < y_hi)]
        if bx.size == 0 or by.size == 0:
            return FieldStars.empty(len(spec.bands))
        gx, gy = np.meshgrid(bx, by)
        gx, gy = gx.ravel(), gy.ravel()
        xk, yk = self._ref_to_disk(gx + 0.5 * b, gy + 0.5 * b)
        rng = np.random.default_rng(
            stream_seed(self.base_seed, FIELD_STREAM, ci + 2**20, cj + 2**20)
        )
        return self.field.draw_stars(
            gx,
            gy,
            b,
            xk,
            yk,
            lambda x, y: self.band_frame.reference.wcs_pix2world(x, y, 0),
            lambda ra, dec: self.geometry.sky_to_disk(*self.band_frame.world_to_sky(ra, dec)),
            rng,
        )

    def _ref_to_disk(self, x_px, y_px):
        return self.geometry.sky_to_disk(
            *self.band_frame.pixel_to_sky(self.spec.reference_band, x_px, y_px)
        )

    def _light(self, key):
        k, i = key
        row = self.sources[k].iloc[i]
        return cluster_light(row, self.population, self.spec, self.spec.bands)

    # --- one tile of one band
    def _box(self, band: str, ti: int, tj: int):
        t = self.spec.tile_px
        x0, y0 = tj * t, ti * t
        r = self.reach
        return x0 - r, x0 + t - 1 + r, y0 - r, y0 + t - 1 + r

    def _cells_for(self, band: str, box) -> list[tuple[int, int]]:
        x_lo, x_hi, y_lo, y_hi = box
        ra, dec = self.frame.wcs[band].wcs_pix2world(
            np.array([x_lo, x_hi, x_lo, x_hi]), np.array([y_lo, y_lo, y_hi, y_hi]), 0
        )
        xr, yr = self.band_frame.world_to_pixel(self.spec.reference_band, ra, dec)
        t = self.spec.field_cell_px
        cj = range(math.floor((xr.min() + 0.5) / t), math.floor((xr.max() + 0.5) / t) + 1)
        ci = range(math.floor((yr.min() + 0.5) / t), math.floor((yr.max() + 0.5) / t) + 1)
        return [(i, j) for i in ci for j in cj]

    def points(self, band: str, band_index: int, box) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x_px, y_px, counts_s) of every point source whose light can reach ``box``."""
        x_lo, x_hi, y_lo, y_hi = box
        xs, ys, cs = [], [], []

        def keep(x, y, c):
            inside = (x >= x_lo) & (x <= x_hi) & (y >= y_lo) & (y <= y_hi) & (c > 0)
            xs.append(x[inside]), ys.append(y[inside]), cs.append(c[inside])

        for key in self._cells_for(band, box):
            stars = self.cells(key)
            if len(stars.ra_deg):
                x, y = self.frame.world_to_pixel(band, stars.ra_deg, stars.dec_deg)
                keep(x, y, stars.counts_s[:, band_index])
        scale = self.spec.pixel_scale_arcsec
        for k, table in enumerate(self.sources):
            xi, eta = self._centres[k]
            cx, cy = self.frame.sky_to_pixel(band, xi, eta)
            pad = table["truncation_arcsec"].to_numpy(float) / scale + 2
            near = (cx >= x_lo - pad) & (cx <= x_hi + pad) & (cy >= y_lo - pad) & (cy <= y_hi + pad)
            for i in np.flatnonzero(near):
                offsets, counts = self.light((k, int(i)))
                x, y = self.frame.sky_to_pixel(band, xi[i] + offsets[:, 0], eta[i] + offsets[:, 1])
                keep(x, y, counts[:, band_index])
        if len(self.foreground):
            x, y = self.frame.world_to_pixel(
                band, self.foreground["ra_deg"], self.foreground["dec_deg"]
            )
            keep(x, y, self._foreground_counts[:, band_index])
        if not xs:
            return np.zeros(0), np.zeros(0), np.zeros(0)
        return np.concatenate(xs), np.concatenate(ys), np.concatenate(cs)

    def smooth(self, band: str, band_index: int, ti: int, tj: int) -> np.ndarray:
        """Unresolved light (T, T) counts/s: on a grid every density_block_px, bilinear between."""
        spec = self.spec
        t, step = spec.tile_px, spec.density_block_px
        if not self.field.components:
            return np.zeros((t, t))
        x0, y0 = tj * t, ti * t
        g = np.arange(0, t + step, step, dtype=float)
        gx, gy = np.meshgrid(x0 + g, y0 + g)
        xk, yk = self.geometry.sky_to_disk(*self.frame.pixel_to_sky(band, gx.ravel(), gy.ravel()))
        grid = self.field.smooth_counts(xk, yk, band_index).reshape(gx.shape)
        # separable bilinear interpolation to the tile's pixel centres
        u = np.arange(t) / step
        i0 = np.minimum(u.astype(int), len(g) - 2)
        f = u - i0
        rows = grid[:, i0] * (1 - f) + grid[:, i0 + 1] * f
        return rows[i0, :] * (1 - f)[:, None] + rows[i0 + 1, :] * f[:, None]

    def galaxies(self, band: str, image: np.ndarray, ti: int, tj: int) -> None:
        """Add the overlapping parts of the background-galaxy stamps to the tile ``image``."""
        t = self.spec.tile_px
        x0, y0 = tj * t, ti * t
        for gx0, gy0, stamp in self.galaxy_stamps.get(band, []):
            h, w = stamp.shape
            xa, xb = max(gx0, x0), min(gx0 + w, x0 + t)
            ya, yb = max(gy0, y0), min(gy0 + h, y0 + t)
            if xa < xb and ya < yb:
                image[ya - y0 : yb - y0, xa - x0 : xb - x0] += stamp[
                    ya - gy0 : yb - gy0, xa - gx0 : xb - gx0
                ]

    def noise(self, image: np.ndarray, band: str, band_index: int, ti: int, tj: int) -> np.ndarray:
        """Sky + Poisson (electrons) + read noise, back to counts/s; sky removed if sky_subtracted."""
        spec = self.spec
        exptime = float(spec.exptime_s[band])
        sky = float(spec.sky_e_s[band])
        if not spec.noise:
            return image if spec.sky_subtracted else image + sky
        rng = np.random.default_rng(stream_seed(self.base_seed, NOISE_STREAM, band_index, ti, tj))
        expected = (np.clip(image, 0.0, None) + sky) * exptime
        electrons = rng.poisson(expected).astype(np.float64)
        electrons += rng.normal(0.0, spec.read_noise_e * math.sqrt(spec.n_exposures), image.shape)
        if spec.sky_subtracted:
            electrons -= sky * exptime
        return electrons / exptime

    def observe_through(self, frame: SkyFrame, galaxy_stamps: Mapping[str, list]) -> None:
        """Render on ``frame``'s pixel grids from now on (an exposure's), with the background
        galaxies' stamps made for it; the stars, clusters and their caches stay the same."""
        self.frame, self.galaxy_stamps = frame, galaxy_stamps

    def tile(self, band: str, band_index: int, ti: int, tj: int) -> np.ndarray:
        """The finished tile (T, T) float32 counts/s of ``band`` at tile row ``ti``, column ``tj``."""
        image = self.scene(band, band_index, ti, tj)
        return self.noise(image, band, band_index, ti, tj).astype(np.float32)

    def scene(self, band: str, band_index: int, ti: int, tj: int) -> np.ndarray:
        """The noise-free tile (T, T) counts/s (no sky) of ``band`` on ``self.frame``'s grid."""
        t = self.spec.tile_px
        image = self.smooth(band, band_index, ti, tj)
        box = self._box(band, ti, tj)
        x, y, counts = self.points(band, band_index, box)
        if len(x):
            centre_x, centre_y = tj * t + t // 2, ti * t + t // 2
            scale = self.spec.pixel_scale_arcsec
            positions = np.stack([(x - centre_x) * scale, (y - centre_y) * scale], axis=1)
            image = image + self.renderers[band].render(positions, counts[:, None])[0]
        self.galaxies(band, image, ti, tj)
        return image


def _galaxy_stamps(
    galaxies: pd.DataFrame,
    spec: SyntheticGalaxySpec,
    frame: SkyFrame,
    population: StellarPopulation,
    psfs: Mapping[str, np.ndarray],
) -> dict[str, list]:
    """Per band, [(x0, y0, stamp)] of PSF-convolved Sérsic galaxies (counts/s; x0, y0: the
    stamp's first pixel on the band grid). The Sérsic profile is sampled at pixel
    centres (GalSim, no pixel: the ePSF holds the pixel response), rescaled to its
    flux (cusps), then convolved with the native-spacing ePSF."""
    import galsim
    import scipy.signal

    out: dict[str, list] = {band: [] for band in spec.bands}
    scale = spec.pixel_scale_arcsec
    for _, row in galaxies.iterrows():
        re = float(row["re_arcsec"])
        trunc = 8.0 * re
        half = int(math.ceil(trunc / scale)) + 2
        pa = math.radians(float(row["pa_deg"]))
        xi, eta = frame.world_to_sky([row["ra_deg"]], [row["dec_deg"]])
        for band in spec.bands:
            flux = float(counts_per_second(row[f"mag_{band}"], population.zeropoints_mag[band]))
            # major-axis direction on this band's pixel grid
            ends = frame.sky_to_pixel(
                band,
                xi[0] + np.array([-0.5, 0.5]) * math.sin(pa),
                eta[0] + np.array([-0.5, 0.5]) * math.cos(pa),
            )
            beta = math.degrees(math.atan2(ends[1][1] - ends[1][0], ends[0][1] - ends[0][0]))
            cx, cy = frame.sky_to_pixel(band, xi, eta)
            ix, iy = int(round(float(cx[0]))), int(round(float(cy[0])))
            profile = galsim.Sersic(
                n=float(np.clip(row["sersic_n"], 0.3, 6.2)), half_light_radius=re, trunc=trunc
            ).shear(q=float(row["axis_ratio"]), beta=beta * galsim.degrees)
            drawn = profile.drawImage(
                nx=2 * half + 1,
                ny=2 * half + 1,
                scale=scale,
                method="no_pixel",
                offset=(float(cx[0]) - ix, float(cy[0]) - iy),
            ).array.astype(np.float64)
            drawn *= flux / drawn.sum()
            stamp = scipy.signal.fftconvolve(drawn, psfs[band], mode="full")
            h = (stamp.shape[0] - 1) // 2
            out[band].append((ix - h, iy - h, stamp))
    return out


# ----------------------------------------------------------------------------- entry point


def build_synthetic_galaxy(
    spec: SyntheticGalaxySpec,
    population: StellarPopulation,
    epsfs: np.ndarray,
    oversampling: int,
    band_paths: Mapping[str, str | os.PathLike],
    truth_path: str | os.PathLike,
    arms_path: str | os.PathLike,
    rng: np.random.Generator,
    *,
    flux_fraction: np.ndarray | None = None,
    core_radius_px: int = 6,
    contaminants_path: str | os.PathLike | None = None,
    preview_png: str | os.PathLike | None = None,
    zoom_png: str | os.PathLike | None = None,
    clusters: pd.DataFrame | None = None,
    progress: bool = False,
) -> SyntheticGalaxy:
    """Build a synthetic galaxy (see the module docstring) and write its files.

    spec: what to make; population: stars, distance, zero points (its bands must
    include spec.bands); epsfs: (B, n, n) ePSFs in ``spec.bands`` order (n odd,
    each summing to 1; :mod:`starclusters.mocks.psf`) at ``spec.pixel_scale_arcsec``
    native pixels, sampled ``oversampling`` times finer; flux_fraction: (B,) share
    of a star's light inside each ePSF (default 1); band_paths: band -> FITS path;
    truth_path, arms_path, contaminants_path: Parquet outputs; preview_png,
    zoom_png: optional figures; clusters: optional cluster table to inject instead
    of drawing them (see :func:`~starclusters.synthetic.catalogs.complete_clusters`);
    rng: the only source of randomness (per-object, per-cell and per-tile seeds are
    derived from one draw of it, so a seed reproduces the files bit for bit).
    """
    timings: dict[str, float] = {}
    start = time.perf_counter()
    spec.check(population.bands)
    bands = list(spec.bands)
    epsfs = np.asarray(epsfs, dtype=np.float64)
    if epsfs.ndim != 3 or epsfs.shape[0] != len(bands):
        raise ValueError(
            f"epsfs must be ({len(bands)}, n, n) in band order {bands}, got {epsfs.shape}"
        )
    fraction = np.ones(len(bands)) if flux_fraction is None else np.asarray(flux_fraction, float)
    missing = [b for b in bands if b not in band_paths]
    if missing:
        raise ConfigError(f"band_paths: no output path for bands {missing}")
    half_native = (epsfs.shape[-1] // 2) // int(oversampling)
    if half_native < 1:
        raise ValueError("the ePSF is smaller than one native pixel; check oversampling")

    geometry = GalaxyGeometry.from_spec(spec, population.distance_mpc)
    frame = SkyFrame.from_spec(spec, rng)
    base_seed = int(rng.integers(0, 2**62))
    field = FieldModel(population, geometry, bands)

    # catalogues
    if clusters is None:
        truth = draw_clusters(spec, geometry, frame, population, base_seed, rng)
    else:
        truth = complete_clusters(clusters, spec, geometry, frame, population, base_seed)
    truth = add_magnitudes(truth, population, spec, bands)
    mag_columns = [f"mag_{b}" for b in bands]
    order = TRUTH_COLUMNS[:8] + mag_columns + TRUTH_COLUMNS[8:]
    truth = truth[order]
    associations = draw_associations(spec, geometry, frame, population, base_seed, rng)
    if len(associations):
        associations = add_magnitudes(associations, population, spec, bands)
    galaxies = draw_background_galaxies(
        spec, geometry, frame, population, field.extinction_ratio, rng
    )
    peak = np.array(
        [psf_peak_fraction(e, oversampling, f) for e, f in zip(epsfs, fraction, strict=True)]
    )
    foreground = draw_foreground_stars(spec, frame, population, peak, rng)
    arms = arms_table(geometry, frame)
    timings["catalogues"] = time.perf_counter() - start

    meta = {
        "reference_band": spec.reference_band,
        "pixels": "0-based pixel coordinates (FITS pixel - 1) on the reference band's WCS",
        "geometry": geometry.metadata(),
        "spec": _spec_meta(spec),
    }
    write_table(
        truth_path,
        truth,
        {
            **meta,
            "units": {
                "mag_<band>": "apparent Vega magnitude of all the cluster's stars (extinction included)",
                "av_mag": "total A_V: Galactic foreground + M83 screen share + natal",
                "arm_distance_kpc": "disk plane, model kpc, positive downstream (leading)",
                "galactocentric_radius_kpc": "deprojected, model kpc (sky size / geometry_scale)",
                "n_lit": "stars and light packets drawn",
            },
        },
    )
    write_table(arms_path, arms, {**meta, "what": "dust-lane polylines on the arms' inner edges"})
    contaminants = pd.concat(
        [t for t in (associations, galaxies, foreground) if len(t)] or [pd.DataFrame()],
        ignore_index=True,
    )
    if contaminants_path is not None:
        write_table(
            contaminants_path,
            contaminants,
            {
                **meta,
                "what": "non-cluster sources: OB associations, background galaxies, "
                "saturated foreground stars",
            },
        )

    # renderers and tiles
    t0 = time.perf_counter()
    renderers = {
        band: StampRenderer(
            epsfs[j : j + 1],
            int(oversampling),
            spec.pixel_scale_arcsec,
            spec.tile_px,
            core_radius_px,
            flux_fraction=fraction[j : j + 1],
        )
        for j, band in enumerate(bands)
    }
    psfs = {band: native_psf(epsfs[j], oversampling, fraction[j]) for j, band in enumerate(bands)}
    stamps = _galaxy_stamps(galaxies, spec, frame, population, psfs)
    drizzled = spec.observation == "drizzled"
    offsets = dither_offsets_px(spec.n_exposures, spec.dither_step_px) if drizzled else None
    tiles = _TileRenderer(
        spec,
        population,
        geometry,
        frame,
        field,
        renderers,
        half_native,
        truth,
        associations,
        foreground,
        stamps,
        base_seed,
        extra_margin_px=0.0 if offsets is None else float(np.abs(offsets).max()) * math.sqrt(2),
    )
    timings["setup"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ny, nx = spec.shape_px
    cards = {
        band: {
            "saturation_counts_s": spec.saturation_counts_s,
            "sky_counts_s": float(spec.sky_e_s[band]),
            "sky_subtracted": bool(spec.sky_subtracted),
            "read_noise_e": float(spec.read_noise_e),
            "n_exposures": int(spec.n_exposures),
            "zeropoint_mag": float(population.zeropoints_mag[band]),
            "photflam": spec.photflam.get(band),
            "extra_cards": {
                "SYNTHETC": (True, "synthetic galaxy, starclusters.mosaic"),
                "GALAXY": (spec.name, "galaxy"),
                "REFBAND": (spec.reference_band, "band of the truth catalogue's pixel grid"),
                "NOISE": (bool(spec.noise), "photon and read noise added"),
            },
        }
        for band in bands
    }
    if drizzled:
        exposure_frames = [
            SkyFrame(spec, {b: exposure_wcs(frame.wcs[b], offset) for b in bands}, frame.model)
            for offset in offsets
        ]
        exposure_stamps = [
            _galaxy_stamps(galaxies, spec, f, population, psfs) for f in exposure_frames
        ]
        scenes = _exposure_scenes(tiles, exposure_frames, exposure_stamps, progress)
        for j, band in enumerate(bands):
            # exposures' noise: its own streams, apart from the direct mode's tile keys
            rng_band = np.random.default_rng(stream_seed(base_seed, NOISE_STREAM, 1000 + j))
            sci, wht, n_flagged = observe_band(
                [scenes.pop((band, k)) for k in range(len(offsets))],
                [f.wcs[band] for f in exposure_frames],
                frame.wcs[band],
                (ny, nx),
                float(spec.exptime_s[band]),
                float(spec.sky_e_s[band]),
                spec.read_noise_e,
                rng_band,
                sky_subtracted=spec.sky_subtracted,
                cosmic_ray_fraction_per_ks=spec.cosmic_ray_fraction_per_ks,
                chip_gap_rows=spec.chip_gap_rows,
                kernel=spec.drizzle_kernel,
                pixfrac=spec.pixfrac,
                reject_cosmic_rays=spec.reject_cosmic_rays,
            )
            drizzle_cards = {
                "DRIZKERN": (spec.drizzle_kernel, "final drizzle kernel"),
                "DRIZPIXF": (spec.pixfrac, "final drizzle pixfrac"),
                "NCRFLAG": (n_flagged, "exposure pixels flagged as cosmic rays"),
            }
            write_drizzled_band(
                band_paths[band],
                sci,
                wht,
                frame.wcs[band],
                band,
                spec.exptime_s[band],
                **{**cards[band], "extra_cards": {**cards[band]["extra_cards"], **drizzle_cards}},
            )
        timings["tiles"] = time.perf_counter() - t0
    else:
        _write_direct(tiles, band_paths, bands, frame, spec, cards, progress)
        timings["tiles"] = time.perf_counter() - t0
    log.info(
        "%s: %d×%d px, %d bands, %d clusters; field cells drawn %d times, cluster stars %d times",
        spec.name,
        ny,
        nx,
        len(bands),
        len(truth),
        tiles.cells.misses,
        tiles.light.misses,
    )

    if preview_png is not None or zoom_png is not None:
        from starclusters.synthetic.plots import plot_synthetic_galaxy

        t0 = time.perf_counter()
        plot_synthetic_galaxy(
            {b: band_paths[b] for b in bands}, spec, frame, truth, arms, preview_png, zoom_png
        )
        timings["figures"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - start
    return SyntheticGalaxy(spec, geometry, frame, truth, arms, contaminants, timings)


def _write_direct(tiles, band_paths, bands, frame, spec, cards, progress) -> None:
    """Every band's noisy image, tile by tile, through the memory-mapped output files."""
    ny, nx = spec.shape_px
    t = spec.tile_px
    with _band_writers(band_paths, bands, (ny, nx), frame, spec, cards) as outputs:
        n_ti, n_tj = tiles.n_tiles
        for ti in range(n_ti):
            for tj in range(n_tj):
                h, w = min(t, ny - ti * t), min(t, nx - tj * t)
                for j, band in enumerate(bands):
                    outputs[band][ti * t : ti * t + h, tj * t : tj * t + w] = tiles.tile(
                        band, j, ti, tj
                    )[:h, :w]
                if progress:
                    log.info("tile %d/%d done", ti * n_tj + tj + 1, n_ti * n_tj)


def _exposure_scenes(tiles, frames, stamps, progress) -> dict:
    """(band, exposure) -> noise-free (ny, nx) float32 counts/s on that exposure's grid.

    Tiles outermost, so each field cell and cluster is drawn once for all exposures."""
    spec = tiles.spec
    ny, nx = spec.shape_px
    t = spec.tile_px
    bands = list(spec.bands)
    scenes = {(b, k): np.zeros((ny, nx), np.float32) for b in bands for k in range(len(frames))}
    band_frame, band_stamps = tiles.frame, tiles.galaxy_stamps
    n_ti, n_tj = tiles.n_tiles
    try:
        for ti in range(n_ti):
            for tj in range(n_tj):
                h, w = min(t, ny - ti * t), min(t, nx - tj * t)
                for k, (frame, stamp) in enumerate(zip(frames, stamps, strict=True)):
                    tiles.observe_through(frame, stamp)
                    for j, band in enumerate(bands):
                        scenes[band, k][ti * t : ti * t + h, tj * t : tj * t + w] = tiles.scene(
                            band, j, ti, tj
                        )[:h, :w]
                if progress:
                    log.info("tile %d/%d of every exposure done", ti * n_tj + tj + 1, n_ti * n_tj)
    finally:
        tiles.observe_through(band_frame, band_stamps)
    return scenes


@contextmanager
def _band_writers(band_paths, bands, shape, frame, spec, cards):
    """All bands' :func:`band_writer` memory maps at once (tiles are made band by band)."""
    from contextlib import ExitStack

    with ExitStack() as stack:
        outputs = {
            band: stack.enter_context(
                band_writer(
                    Path(band_paths[band]),
                    shape,
                    frame.wcs[band],
                    band,
                    spec.exptime_s[band],
                    **cards[band],
                )
            )
            for band in bands
        }
        yield outputs
