"""Mosaic preparation: reading bands, the common grid, flux-conserving resampling, mask, writes."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
import yaml
from astropy.io import fits
from astropy.table import Table
from conftest import REPO, write_yaml
from scipy.special import erf

from starclusters.config import load_config
from starclusters.errors import ConfigError, InputFileError
from starclusters.mosaic.prepare import (
    MASK_BLANK,
    MASK_CATALOG,
    MASK_SATURATED,
    build_mask,
    common_grid,
    prepare_mosaic,
    read_band,
    read_catalog,
    read_image,
    reproject_band,
    write_image,
    write_mask,
)
from starclusters.mosaic.prepare import tan_wcs as prepare_tan_wcs
from starclusters.mosaic.settings import band_file, sci_weight_path
from starclusters.mosaic.stage import make_mosaic

CENTRE = (204.2538, -29.8658)  # M83


def tan_wcs(n, scale_arcsec, rot_deg=0.0, shift_px=(0.0, 0.0), centre=CENTRE):
    """An n×n image's TAN WCS centred on ``centre`` (M83 by default)."""
    return prepare_tan_wcs(n, scale_arcsec, centre, rot_deg, shift_px)


def gaussians(shape, xs, ys, fluxes, sigma_px):
    """Pixel-integrated circular Gaussians: each source's pixels sum to its flux."""
    image = np.zeros(shape)
    for x, y, flux in zip(xs, ys, fluxes, strict=True):
        x0, y0 = int(x) - 10, int(y) - 10
        ex, ey = np.arange(x0, x0 + 22) - 0.5, np.arange(y0, y0 + 22) - 0.5
        px = np.diff(0.5 * erf((ex - x) / (np.sqrt(2) * sigma_px)))
        py = np.diff(0.5 * erf((ey - y) / (np.sqrt(2) * sigma_px)))
        image[y0 : y0 + 21, x0 : x0 + 21] += flux * np.outer(py, px)
    return image


def write_band(path, data, wcs, **cards):
    header = wcs.to_header()
    for key, value in cards.items():
        header[key] = value
    fits.PrimaryHDU(np.asarray(data, dtype=np.float32), header=header).writeto(path)
    return path


@pytest.fixture(scope="module")
def field():
    """A band at 0.0396″/px rotated 0.7° and shifted, with 49 isolated sources, on a 0.04″ grid."""
    rng = np.random.default_rng(4)
    n = 360
    wcs = tan_wcs(n, 0.0396, rot_deg=0.7, shift_px=(7.3, -4.6))
    grid = np.arange(40, n - 39, 40.0)
    xs, ys = (a.ravel() + rng.uniform(-4, 4, a.size) for a in np.meshgrid(grid, grid))
    fluxes = 10 ** rng.uniform(0.5, 2.5, xs.size)
    image = gaussians((n, n), xs, ys, fluxes, sigma_px=1.0).astype(np.float32)
    target, shape = common_grid([wcs], [image.shape], 0.04)
    out = reproject_band(image, wcs, target, shape, tile_px=96)
    sky = wcs.pixel_to_world(xs, ys)
    tx, ty = target.world_to_pixel(sky)
    return dict(
        image=image, wcs=wcs, target=target, shape=shape, out=out, fluxes=fluxes, tx=tx, ty=ty
    )


def stamps(image, xs, ys, half=9):
    """Yield (index, stamp, x grid, y grid) for sources whose stamp is fully finite."""
    for i, (x, y) in enumerate(zip(xs, ys, strict=True)):
        xi, yi = round(x), round(y)
        cut = image[yi - half : yi + half + 1, xi - half : xi + half + 1]
        if cut.shape != (2 * half + 1,) * 2 or not np.isfinite(cut).all():
            continue
        gy, gx = np.mgrid[yi - half : yi + half + 1, xi - half : xi + half + 1]
        yield i, cut, gx, gy


def test_resampling_conserves_each_source_flux(field):
    errors = [
        cut.sum() / field["fluxes"][i] - 1
        for i, cut, _, _ in stamps(field["out"], field["tx"], field["ty"])
    ]
    assert len(errors) >= 40
    assert np.max(np.abs(errors)) < 0.005
    assert np.nansum(field["out"]) == pytest.approx(field["fluxes"].sum(), rel=0.005)
    assert field["out"].dtype == np.float32


@pytest.mark.parametrize(("method", "tolerance"), [("exact", 0.005), ("adaptive", 0.01)])
def test_other_methods_conserve_flux(field, method, tolerance):
    out = reproject_band(
        field["image"], field["wcs"], field["target"], field["shape"], 128, method=method
    )
    errors = [
        cut.sum() / field["fluxes"][i] - 1 for i, cut, _, _ in stamps(out, field["tx"], field["ty"])
    ]
    assert len(errors) >= 40
    assert np.max(np.abs(errors)) < tolerance


def test_source_lands_where_its_coordinates_say(field):
    offsets = []
    for i, cut, gx, gy in stamps(field["out"], field["tx"], field["ty"]):
        cx, cy = (cut * gx).sum() / cut.sum(), (cut * gy).sum() / cut.sum()
        offsets.append(np.hypot(cx - field["tx"][i], cy - field["ty"][i]))
    assert len(offsets) >= 40
    assert np.max(offsets) < 0.1


def test_grid_is_north_up_at_the_pixel_scale(field):
    target = field["target"]
    assert list(target.wcs.ctype) == ["RA---TAN", "DEC--TAN"]
    matrix = target.pixel_scale_matrix * 3600
    np.testing.assert_allclose(matrix, [[-0.04, 0], [0, 0.04]], atol=1e-12)


def test_tiles_do_not_leave_seams(field):
    whole = reproject_band(field["image"], field["wcs"], field["target"], field["shape"], 4096)
    np.testing.assert_array_equal(np.isnan(whole), np.isnan(field["out"]))
    np.testing.assert_allclose(field["out"], whole, atol=2e-6, equal_nan=True)
    threaded = reproject_band(
        field["image"], field["wcs"], field["target"], field["shape"], 96, n_threads=2
    )
    np.testing.assert_array_equal(threaded, field["out"])


def test_blank_input_pixels_and_the_edge_become_blank():
    n = 120
    wcs = tan_wcs(n, 0.04, rot_deg=0.7)
    image = np.ones((n, n), np.float32)
    image[50:60, 50:60] = np.nan
    target, shape = common_grid([wcs], [image.shape], 0.04, extent="union")
    out = reproject_band(image, wcs, target, shape, tile_px=64)
    hole_x, hole_y = np.round(target.world_to_pixel(wcs.pixel_to_world(54.5, 54.5))).astype(int)
    assert np.isnan(out[hole_y, hole_x])
    good_x, good_y = np.round(target.world_to_pixel(wcs.pixel_to_world(20, 90))).astype(int)
    assert out[good_y, good_x] == pytest.approx(1.0, abs=1e-4)
    assert np.isnan(out[0, 0]) and np.isnan(out[-1, -1])  # union box corners: outside the band
    finite = np.isfinite(out)
    assert 0.8 * n * n < finite.sum() < n * n  # blank near the hole and edge, not beyond


def test_intersection_and_union_grids():
    a = tan_wcs(200, 0.04)
    b = tan_wcs(200, 0.05, rot_deg=0.7, shift_px=(60.0, 0.0))  # 3″ off in RA, larger, rotated
    inter_wcs, inter = common_grid([a, b], [(200, 200), (200, 200)], 0.04)
    union_wcs, union = common_grid([a, b], [(200, 200), (200, 200)], 0.04, extent="union")
    assert inter == (200, 151)  # a's height; x from b's left edge (+0.7° slant) to a's right
    assert union[0] >= 250 and union[1] >= 300
    ys, xs = np.mgrid[0 : inter[0], 0 : inter[1]]
    ax, ay = a.world_to_pixel(inter_wcs.pixel_to_world(xs, ys))
    assert ax.min() > -0.5 and ax.max() < 199.5 and ay.min() > -0.5 and ay.max() < 199.5
    bx, by = b.world_to_pixel(inter_wcs.pixel_to_world(xs, ys))
    inside_b = (bx > -0.5) & (bx < 199.5) & (by > -0.5) & (by < 199.5)
    assert inside_b.mean() > 0.98  # only the slant's corners lie outside (masked as BLANK)
    for band in (a, b):  # every pixel of both bands is on the union grid
        edge = np.r_[-0.5, 199.5]
        ux, uy = union_wcs.world_to_pixel(band.pixel_to_world(*np.meshgrid(edge, edge)))
        assert ux.min() > -0.5 - 1e-6 and ux.max() < union[1] - 0.5 + 1e-6
        assert uy.min() > -0.5 - 1e-6 and uy.max() < union[0] - 0.5 + 1e-6


def test_bands_that_do_not_overlap_are_refused():
    far = tan_wcs(100, 0.04, centre=(CENTRE[0] + 0.1, CENTRE[1]))
    with pytest.raises(InputFileError, match="F336W.fits.*F814W.fits.*do not overlap"):
        common_grid(
            [tan_wcs(100, 0.04), far],
            [(100, 100), (100, 100)],
            0.04,
            names=["F336W.fits", "F814W.fits"],
        )
    with pytest.raises(ConfigError, match="pixel_scale_arcsec"):
        common_grid([tan_wcs(100, 0.04)], [(100, 100)], 0.0)


# --------------------------------------------------------------------------- reading


def test_read_band_units(tmp_path, caplog):
    wcs = tan_wcs(32, 0.04)
    data = np.full((32, 32), 2.0)
    per_s = read_band(write_band(tmp_path / "a.fits", data, wcs, BUNIT="ELECTRONS/S"), "F336W")
    assert np.allclose(per_s.image, 2.0) and per_s.image.dtype == np.float32
    for spelling in ("counts/s", "e-/s", "electrons s-1", "CPS"):
        path = write_band(
            tmp_path / f"{spelling.replace('/', '_')}.fits", data, wcs, BUNIT=spelling
        )
        assert np.allclose(read_band(path, "F336W").image, 2.0)
    total = read_band(
        write_band(tmp_path / "b.fits", data, wcs, BUNIT="ELECTRONS", EXPTIME=400.0), "F336W"
    )
    assert np.allclose(total.image, 2.0 / 400.0) and "EXPTIME" in total.unit_note
    with caplog.at_level(logging.WARNING, logger="starclusters.mosaic.prepare"):
        bare = read_band(write_band(tmp_path / "c.fits", data, wcs, PHOTFLAM=1e-18), "F336W")
    assert np.allclose(bare.image, 2.0)
    assert "PHOTFLAM" in caplog.text and "c.fits" in caplog.text


@pytest.mark.parametrize(
    ("cards", "message"),
    [
        (
            {"BUNIT": "MJy/sr"},
            r"bad.fits\[PRIMARY\]: BUNIT 'MJy/sr' cannot be converted to counts/s",
        ),
        (
            {"BUNIT": "ELECTRONS"},
            r"bad.fits\[PRIMARY\]: BUNIT 'ELECTRONS' is a total count but EXPTIME",
        ),
        ({}, r"bad.fits\[PRIMARY\]: no BUNIT"),
    ],
)
def test_unconvertible_units_are_refused(tmp_path, cards, message):
    path = write_band(tmp_path / "bad.fits", np.ones((16, 16)), tan_wcs(16, 0.04), **cards)
    with pytest.raises(InputFileError, match=message):
        read_band(path, "F336W")


def test_band_without_celestial_wcs_is_refused(tmp_path):
    path = tmp_path / "nowcs.fits"
    fits.PrimaryHDU(np.ones((16, 16), np.float32), header=fits.Header({"BUNIT": "e/s"})).writeto(
        path
    )
    with pytest.raises(InputFileError, match=r"nowcs.fits\[PRIMARY\]: no celestial WCS"):
        read_band(path, "F336W")


def test_all_blank_band_is_refused(tmp_path):
    path = write_band(
        tmp_path / "nan.fits", np.full((16, 16), np.nan), tan_wcs(16, 0.04), BUNIT="ELECTRONS/S"
    )
    with pytest.raises(InputFileError, match=r"nan.fits\[PRIMARY\]: band F438W has no valid pixel"):
        read_band(path, "F438W")
    with pytest.raises(InputFileError, match="missing.fits: no such file"):
        read_band(tmp_path / "missing.fits", "F438W")


def test_zero_weight_and_zero_fill_are_blank(tmp_path):
    wcs = tan_wcs(16, 0.04)
    data = np.full((16, 16), 3.0, np.float32)
    data[:, :4] = 0.0  # drizzle fill value
    weight = np.ones((16, 16), np.float32)
    weight[10:, 10:] = 0.0
    header = wcs.to_header()
    header["BUNIT"] = "ELECTRONS/S"
    hdul = fits.HDUList(
        [
            fits.PrimaryHDU(),
            fits.ImageHDU(data, header=header, name="SCI"),
            fits.ImageHDU(weight, name="WHT"),
        ]
    )
    hdul.writeto(tmp_path / "drc.fits")
    band = read_band(tmp_path / "drc.fits", "F814W")
    assert np.isnan(band.image[:, :4]).all() and np.isnan(band.image[10:, 10:]).all()
    assert np.isfinite(band.image).sum() == 16 * 12 - 6 * 6


# --------------------------------------------------------------------------- archive conventions


def write_drz(path, data, wcs, weight=None, *, sci=None, primary=None, weight_shape=None):
    """An HST drizzled product (``*_drz.fits``): empty primary with ``primary`` cards, SCI
    (image, WCS, ``sci`` cards; BUNIT ELECTRONS/S by default), WHT (``weight``; omitted when
    None) and CTX extensions."""
    header = wcs.to_header()
    for key, value in ({"BUNIT": "ELECTRONS/S"} | (sci or {})).items():
        header[key] = value
    hdus = [
        fits.PrimaryHDU(header=fits.Header(primary or {})),
        fits.ImageHDU(np.asarray(data, np.float32), header=header, name="SCI"),
    ]
    if weight is not None:
        hdus.append(fits.ImageHDU(np.asarray(weight, np.float32), name="WHT"))
    hdus.append(fits.ImageHDU(np.ones(np.shape(data), np.int32), name="CTX"))
    fits.HDUList(hdus).writeto(path)
    return path


def write_weight(path, weight):
    """A weight map of its own (``*_wht.fits``): the map in the primary HDU."""
    fits.PrimaryHDU(np.asarray(weight, np.float32)).writeto(path)
    return path


def holed_weight(n, hole=slice(10, 14)):
    """An n x n weight map with a zero-weight square, a negative and a NaN pixel."""
    weight = np.full((n, n), 500.0, np.float32)
    weight[hole, hole] = 0.0
    weight[0, 1], weight[1, 0] = -1.0, np.nan
    return weight


def blank_by_weight(image, hole=slice(10, 14)):
    """Whether exactly the zero, negative and NaN weights of holed_weight are blank."""
    expected = np.zeros(image.shape, bool)
    expected[hole, hole] = True
    expected[0, 1] = expected[1, 0] = True
    return np.array_equal(np.isnan(image), expected)


@pytest.mark.parametrize(
    "name",
    [
        "x_drz_sci.fits",
        "x_DRZ_SCI.fits",
        "hlsp_legus_hst_wfc3_ngc628-c_f336w_v1_sci.fits.gz",
        "m83_science.fits",
        "x.fits",
    ],
)
def test_the_sci_name_convention_gives_the_wht_file_beside_it(name):
    expected = {
        "x_drz_sci.fits": "data/x_drz_wht.fits",
        "x_DRZ_SCI.fits": "data/x_DRZ_WHT.fits",
        "hlsp_legus_hst_wfc3_ngc628-c_f336w_v1_sci.fits.gz": (
            "data/hlsp_legus_hst_wfc3_ngc628-c_f336w_v1_wht.fits.gz"
        ),
    }.get(name)  # 'science' is not a _sci part
    assert sci_weight_path(f"data/{name}") == expected


def test_drz_file_with_sci_wht_and_ctx_extensions(tmp_path):
    n = 24
    data = np.full((n, n), 3.0)
    path = write_drz(tmp_path / "hlsp_x_f336w_drz.fits", data, tan_wcs(n, 0.04), holed_weight(n))
    band = read_band(path, "F336W")  # default: SCI, and the WHT of the same file
    assert blank_by_weight(band.image) and np.nanmax(band.image) == pytest.approx(3.0)
    assert band.weight_source == f"{path}[WHT]"
    by_number = read_band(path, "F336W", hdu=1, weight_hdu=2)  # the same HDUs by index
    np.testing.assert_array_equal(by_number.image, band.image)
    unweighted = read_band(path, "F336W", weight_path="none")  # `weight: none`
    assert np.isfinite(unweighted.image).all() and unweighted.weight_source is None


def test_separate_sci_and_wht_files(tmp_path):
    n = 24
    image = write_drz(
        tmp_path / "hlsp_x_f438w_drz_sci.fits", np.full((n, n), 2.0), tan_wcs(n, 0.04)
    )
    weight = write_weight(tmp_path / "hlsp_x_f438w_drz_wht.fits", holed_weight(n))
    band = read_band(image, "F438W")  # the _wht file found by its name
    assert blank_by_weight(band.image) and band.weight_source == f"{weight}[PRIMARY]"
    elsewhere = tmp_path / "weights"
    elsewhere.mkdir()
    weight.rename(elsewhere / "f438w_weight.fits")
    given = read_band(image, "F438W", weight_path=elsewhere / "f438w_weight.fits")
    assert blank_by_weight(given.image)  # `weight: <path>`
    with pytest.raises(InputFileError) as err:  # the expected _wht file is missing
        read_band(image, "F438W")
    message = str(err.value)
    assert message.startswith(f"{image}: ") and str(weight) in message
    assert "`weight: none`" in message
    assert np.isfinite(read_band(image, "F438W", weight_path="none").image).all()


def test_images_without_archive_names_need_no_weight_map(tmp_path):
    """As before (and the synthetic galaxy's raw files): one HDU, no WHT, no _sci part."""
    path = write_band(
        tmp_path / "F336W.fits", np.full((16, 16), 2.0), tan_wcs(16, 0.04), BUNIT="counts/s"
    )
    band = read_band(path, "F336W")
    assert np.isfinite(band.image).all() and band.weight_source is None
    science = write_band(
        tmp_path / "m83_science.fits", np.ones((16, 16)), tan_wcs(16, 0.04), BUNIT="e/s"
    )
    assert read_band(science, "F336W").weight_source is None


@pytest.mark.parametrize(
    "bunit",
    [
        "ERG/S/CM2/A",
        "erg/s/cm^2/Angstrom",
        "erg/cm2/s/A",
        "ERG/CM**2/S/A",
        "erg s-1 cm-2 A-1",
        "erg / (s cm2 Angstrom)",
        "ergs/sec/cm2/Ang",
    ],
)
@pytest.mark.parametrize("where", ["sci", "primary"])
def test_flux_density_is_divided_by_photflam(tmp_path, bunit, where):
    photflam = 1.3e-19  # erg/s/cm2/A per e-/s (WFC3/UVIS F438W-like)
    data = np.full((16, 16), 2.6e-19)
    cards = {"sci": {"BUNIT": bunit}, "primary": {"EXPTIME": 900.0}}
    cards[where]["PHOTFLAM"] = photflam
    path = write_drz(tmp_path / "f438w_drz.fits", data, tan_wcs(16, 0.04), **cards)
    band = read_band(path, "F438W")
    np.testing.assert_allclose(band.image, 2.0, rtol=1e-6)
    assert "PHOTFLAM" in band.unit_note and band.exptime_s == 900.0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (  # flux density without PHOTFLAM
            {"sci": {"BUNIT": "ERG/S/CM2/A"}},
            r"x_drz.fits\[SCI\]: BUNIT 'ERG/S/CM2/A' is a flux density .*there is no PHOTFLAM",
        ),
        (
            {"sci": {"BUNIT": "erg/s/cm2/A", "PHOTFLAM": 0.0}},
            r"x_drz.fits\[SCI\]: BUNIT 'erg/s/cm2/A' is a flux density .*PHOTFLAM is 0.0",
        ),
        (  # per frequency and surface brightness are not counts/s with PHOTFLAM
            {"sci": {"BUNIT": "erg/s/cm2/Hz", "PHOTFLAM": 1e-19}},
            r"x_drz.fits\[SCI\]: BUNIT 'erg/s/cm2/Hz' cannot be converted to counts/s",
        ),
        (
            {"sci": {"BUNIT": "MJy/sr"}},
            r"x_drz.fits\[SCI\]: BUNIT 'MJy/sr' cannot be converted to counts/s",
        ),
        ({"hdu": "SCJ"}, r"x_drz.fits\[SCJ\]: no such HDU \(the file has PRIMARY, SCI, WHT, CTX\)"),
        ({"hdu": 7}, r"x_drz.fits\[7\]: no such HDU"),
        ({"hdu": 0}, r"x_drz.fits\[PRIMARY\]: holds no data, not a 2-D image"),
        ({"weight_hdu": "WGT"}, r"x_drz.fits\[WGT\]: no such HDU .*`weight_hdu`"),
        ({"weight_hdu": "SCI"}, r"x_drz.fits\[SCI\]: the weight map would be the image itself"),
        (  # the image file as the weight path, but it has no WHT
            {"weight": "self", "drop_wht": True},
            r"x_drz.fits\[WHT\]: no such HDU for the weight map",
        ),
        (
            {"weight_shape": (16, 8)},
            r"x_drz.fits\[WHT\]: the weight map is 8 x 16 px but the image .*x_drz.fits\[SCI\] is 16 x 16 px",
        ),
        (
            {"weight": "missing_wht.fits"},
            r"missing_wht.fits\[WHT\]: no such weight file \(band F336W",
        ),
        ({"weight": "other_wht.fits", "weight_hdu": 3}, r"other_wht.fits\[3\]: no such HDU"),
        (
            {"weight": "other_wht.fits", "weight_shape": (12, 16)},
            r"other_wht.fits\[PRIMARY\]: the weight map is 16 x 12 px but the image .*x_drz.fits\[SCI\] is 16 x 16",
        ),
    ],
)
def test_malformed_archive_files_are_refused_naming_file_and_extension(tmp_path, change, message):
    n = 16
    weight_shape = change.get("weight_shape", (n, n))
    weight = None if change.get("drop_wht") else np.ones(weight_shape)
    if change.get("weight") == "other_wht.fits":
        write_weight(tmp_path / "other_wht.fits", np.ones(weight_shape))
        weight = np.ones((n, n))
    path = write_drz(
        tmp_path / "x_drz.fits", np.ones((n, n)), tan_wcs(n, 0.04), weight, sci=change.get("sci")
    )
    weight_path = change.get("weight")
    if weight_path is not None:
        weight_path = path if weight_path == "self" else tmp_path / weight_path
    with pytest.raises(InputFileError, match=message):
        read_band(
            path,
            "F336W",
            hdu=change.get("hdu"),
            weight_path=weight_path,
            weight_hdu=change.get("weight_hdu"),
        )


# --------------------------------------------------------------------------- mask


def brute_force_near(saturated, radius_px):
    """Pixels within radius_px of any saturated pixel, by brute force."""
    ys, xs = np.nonzero(saturated)
    gy, gx = np.mgrid[0 : saturated.shape[0], 0 : saturated.shape[1]]
    near = np.zeros(saturated.shape, bool)
    for y, x in zip(ys, xs, strict=True):
        near |= (gx - x) ** 2 + (gy - y) ** 2 <= radius_px**2
    return near


@pytest.fixture
def mask_field():
    n = 200
    wcs = tan_wcs(n, 0.04)
    wcs.pixel_shape = (n, n)
    stars = gaussians((n, n), [50.3, 140.0], [60.0, 150.6], [4e4, 2e4], sigma_px=1.5)
    images = {"F336W": stars.astype(np.float32) + 0.1, "F814W": np.full((n, n), 0.2, np.float32)}
    images["F814W"][180:, :20] = np.nan
    return wcs, images


def test_mask_covers_saturated_stars_and_only_near_them(mask_field):
    wcs, images = mask_field
    mask = build_mask(images, wcs, saturation_cps={"F336W": 500.0}, saturation_grow_arcsec=0.3)
    expected = brute_force_near(images["F336W"] > 500.0, 0.3 / 0.04)
    np.testing.assert_array_equal((mask & MASK_SATURATED) > 0, expected)
    for x, y in ((50.3, 60.0), (140.0, 150.6)):
        assert mask[round(y), round(x)] & MASK_SATURATED
    assert expected.sum() < 2 * np.pi * (0.3 / 0.04 + 5) ** 2  # two disks, not more
    # Tiling does not change it.
    tiled = build_mask(
        images, wcs, saturation_cps={"F336W": 500.0}, saturation_grow_arcsec=0.3, tile_px=40
    )
    np.testing.assert_array_equal(tiled, mask)
    assert (mask & MASK_BLANK)[180:, :20].all() and (mask & MASK_BLANK).sum() == 20 * 20


def test_mask_covers_catalog_objects(mask_field, tmp_path):
    wcs, images = mask_field
    sky = wcs.pixel_to_world([30.0, 120.2], [150.0, 40.7])
    pd.DataFrame(
        {"RA": sky.ra.deg, "DEC": sky.dec.deg, "r_arcsec": [0.41, 0.21], "name": ["a", "b"]}
    ).to_csv(tmp_path / "objects.csv", index=False)
    catalog = read_catalog(
        tmp_path / "objects.csv", ra_column="ra", dec_column="dec", radius_column="r_arcsec"
    )
    mask = build_mask(images, wcs, blank=False, catalog=catalog)
    gy, gx = np.mgrid[0:200, 0:200]
    expected = ((gx - 30.0) ** 2 + (gy - 150.0) ** 2 <= 10.25**2) | (
        (gx - 120.2) ** 2 + (gy - 40.7) ** 2 <= 5.25**2
    )
    np.testing.assert_array_equal(mask == MASK_CATALOG, expected)  # nothing else flagged
    assert not (mask & MASK_BLANK).any() and not (mask & MASK_SATURATED).any()


def test_catalog_from_fits_and_missing_radius_column(tmp_path):
    Table({"ra": [204.25], "dec": [-29.86], "radius_arcsec": [1.0]}).write(tmp_path / "c.fits")
    assert read_catalog(tmp_path / "c.fits")["radius_arcsec"].tolist() == [1.0]
    pd.DataFrame({"ra": [204.25], "dec": [-29.86], "size": [1.0]}).to_csv(
        tmp_path / "noradius.csv", index=False
    )
    with pytest.raises(InputFileError, match="noradius.csv: no column 'radius_arcsec'"):
        read_catalog(tmp_path / "noradius.csv")


# --------------------------------------------------------------------------- writing


def test_written_image_and_mask_keep_the_wcs(tmp_path, mask_field):
    wcs, images = mask_field
    write_image(tmp_path / "F336W.fits", images["F336W"], wcs, {"BAND": "F336W"})
    data, back, header = read_image(tmp_path / "F336W.fits")
    np.testing.assert_array_equal(data, images["F336W"])
    assert header["BUNIT"] == "counts/s" and header["BAND"] == "F336W"
    np.testing.assert_allclose(back.wcs.crval, wcs.wcs.crval)
    np.testing.assert_allclose(back.pixel_scale_matrix, wcs.pixel_scale_matrix)
    write_mask(tmp_path / "mask.fits", build_mask(images, wcs), wcs)
    mask, _, header = read_image(tmp_path / "mask.fits")
    assert mask.dtype == np.uint8 and header["MASKB1"] == MASK_SATURATED


def test_killed_write_leaves_no_file(tmp_path, monkeypatch):
    wcs = tan_wcs(16, 0.04)

    def dies_half_way(self, name, *args, **kwargs):
        with open(name, "wb") as handle:
            handle.write(b"SIMPLE  =                    T")
        raise KeyboardInterrupt  # as when a job is killed

    monkeypatch.setattr(fits.PrimaryHDU, "writeto", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        write_image(tmp_path / "F336W.fits", np.ones((16, 16)), wcs)
    with pytest.raises(KeyboardInterrupt):
        write_mask(tmp_path / "mask.fits", np.zeros((16, 16), np.uint8), wcs)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- stage


def test_prepare_mosaic_end_to_end(tmp_path):
    rng = np.random.default_rng(7)
    bands = {"F336W": (0.0396, 0.0), "F438W": (0.0396, 0.7), "F814W": (0.05, -0.4)}
    paths = {}
    for i, (band, (scale, rot)) in enumerate(bands.items()):
        n = 140 if scale < 0.045 else 112
        wcs = tan_wcs(n, scale, rot_deg=rot, shift_px=(3.0 * i, -2.0 * i))
        data = 0.05 + 0.01 * rng.standard_normal((n, n))
        data[n // 2 - 2 : n // 2 + 2, n // 2 - 2 : n // 2 + 2] += 1e4  # a saturated star
        unit = {"BUNIT": "ELECTRONS", "EXPTIME": 100.0} if band == "F814W" else {"BUNIT": "e/s"}
        paths[band] = write_band(
            tmp_path / f"in_{band}.fits", data * (100 if i == 2 else 1), wcs, **unit
        )
    outs = {band: tmp_path / "mosaic" / f"{band}.fits" for band in bands}
    grid, shape = prepare_mosaic(
        paths,
        outs,
        tmp_path / "mosaic" / "mask.fits",
        0.04,
        saturation_cps={"F336W": 100.0},
        tile_px=64,
    )
    for band in bands:
        data, wcs, header = read_image(outs[band])
        assert data.shape == shape and header["BAND"] == band
        assert np.nanmedian(data) == pytest.approx(0.05 * (0.04 / bands[band][0]) ** 2, rel=0.05)
    mask, _, _ = read_image(tmp_path / "mosaic" / "mask.fits")
    assert (mask & MASK_SATURATED).any() and (mask & MASK_BLANK).any()
    assert (mask == 0).mean() > 0.5


def test_bands_from_different_programs_come_out_on_one_grid_in_counts_per_s(tmp_path):
    """F336W at 0.0396″ (e-/s, a drz file with SCI/WHT/CTX), F438W at 0.05″ (electrons with
    EXPTIME in the primary header, separate _sci/_wht files), F814W at 0.04″ (erg/s/cm2/A
    with PHOTFLAM, no weight map), read through the stage's settings as the workflow passes
    them: one grid, each source's counts/s kept, zero weights blank."""
    sky_cps, sigma_arcsec, exptime_s, photflam = 0.02, 0.07, 500.0, 1.5e-19
    flux_cps = np.array([40.0, 80.0, 20.0, 60.0])  # per source, the same in every band here
    reference = tan_wcs(140, 0.04)
    world = reference.pixel_to_world(np.array([40.0, 100.0, 45.0, 95.0]), [45.0, 40.0, 100, 95])
    bands = {"F336W": (0.0396, 0.5, 150), "F438W": (0.05, -0.3, 120), "F814W": (0.04, 0.2, 144)}
    raw, hole_world = {}, {}
    for i, (band, (scale, rot, n)) in enumerate(bands.items()):
        wcs = tan_wcs(n, scale, rot_deg=rot, shift_px=(1.5 * i, -1.0 * i))
        xs, ys = wcs.world_to_pixel(world)
        rate = sky_cps + gaussians((n, n), xs, ys, flux_cps, sigma_arcsec / scale)
        weight = np.full((n, n), 800.0)
        weight[n - 30 : n - 20, 20:30] = 0.0  # a zero-weight hole away from the sources
        hole_world[band] = wcs.pixel_to_world(24.5, n - 25.5)
        if band == "F336W":
            raw[band] = write_drz(tmp_path / "f336w_drz.fits", rate, wcs, weight)
        elif band == "F438W":
            raw[band] = write_drz(
                tmp_path / "hlsp_x_f438w_drz_sci.fits",
                rate * exptime_s,
                wcs,
                sci={"BUNIT": "ELECTRONS"},
                primary={"EXPTIME": exptime_s},
            )
            write_weight(tmp_path / "hlsp_x_f438w_drz_wht.fits", weight)
        else:
            raw[band] = write_drz(
                tmp_path / "f814w_drz.fits",
                rate * photflam,
                wcs,
                weight,  # ignored: `weight: none`
                sci={"BUNIT": "erg/s/cm^2/Angstrom", "PHOTFLAM": photflam},
            )
    settings = {
        "extent": "intersection",
        "method": "bicubic",
        "tile_px": 64,
        "mask": {
            "blank": True,
            "saturation_counts_s": {},
            "saturation_grow_arcsec": 0.5,
            "catalogs": [],
        },
        "files": {  # the shape of band_file without the image (params.mosaic)
            "F336W": {"hdu": "SCI", "weight": None, "weight_hdu": "WHT"},
            "F438W": {"hdu": None, "weight": None, "weight_hdu": None},
            "F814W": {"hdu": None, "weight": "none", "weight_hdu": None},
        },
    }
    outs = {band: tmp_path / "mosaic" / f"{band}.fits" for band in bands}
    make_mosaic(
        {band: str(path) for band, path in raw.items()},
        {band: str(path) for band, path in outs.items()},
        str(tmp_path / "mosaic" / "mask.fits"),
        0.04,
        settings,
    )
    mask, grid, _ = read_image(tmp_path / "mosaic" / "mask.fits")
    for band, (scale, _, _) in bands.items():
        image, wcs, header = read_image(outs[band])
        assert image.shape == mask.shape
        assert wcs.to_header_string() == grid.to_header_string()  # one grid
        sky_grid = sky_cps * (0.04 / scale) ** 2  # counts/s per grid pixel
        assert np.nanmedian(image) == pytest.approx(sky_grid, rel=1e-3)
        gx, gy = grid.world_to_pixel(world)
        yy, xx = np.mgrid[0 : image.shape[0], 0 : image.shape[1]]
        for x, y, flux in zip(gx, gy, flux_cps, strict=True):
            inside = np.hypot(xx - x, yy - y) <= 10
            measured = image[inside].sum() - sky_grid * inside.sum()
            assert measured == pytest.approx(flux, rel=0.005), band
        hx, hy = np.round(grid.world_to_pixel(hole_world[band])).astype(int)
        hole = image[hy - 2 : hy + 3, hx - 2 : hx + 3]
        if band == "F814W":
            assert np.isfinite(hole).all()  # weight: none
            assert "PHOTFLAM" in header["UNITNOTE"] and "WHTSRC" not in header
        else:
            assert (
                np.isnan(hole).all() and (mask[hy - 2 : hy + 3, hx - 2 : hx + 3] & MASK_BLANK).all()
            )
    assert read_image(outs["F438W"])[2]["WHTSRC"] == "hlsp_x_f438w_drz_wht.fits[PRIMARY]"
    assert read_image(outs["F336W"])[2]["WHTSRC"] == "f336w_drz.fits[WHT]"


def test_a_malformed_band_stops_the_stage_before_any_resampling(tmp_path, monkeypatch):
    import starclusters.mosaic.prepare as prepare

    resampled = []
    monkeypatch.setattr(prepare, "reproject_band", lambda *a, **k: resampled.append(a))
    good = write_drz(
        tmp_path / "f336w_drz.fits", np.ones((16, 16)), tan_wcs(16, 0.04), np.ones((16, 16))
    )
    bad = write_drz(
        tmp_path / "f438w_drz.fits", np.ones((16, 16)), tan_wcs(16, 0.04), np.ones((16, 12))
    )
    outs = {band: tmp_path / "mosaic" / f"{band}.fits" for band in ("F336W", "F438W")}
    with pytest.raises(
        InputFileError, match=r"f438w_drz.fits\[WHT\]: the weight map is 12 x 16 px"
    ):
        prepare_mosaic(
            {"F336W": good, "F438W": {"image": bad, "hdu": "SCI"}},
            outs,
            tmp_path / "mosaic" / "mask.fits",
            0.04,
        )
    assert resampled == [] and not (tmp_path / "mosaic").exists()


# --------------------------------------------------------------------------- config


def files_config(tmp_path, files, download=None):
    """config/config.yaml with mosaic.source files and these entries, as a file for load_config."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["mosaic"].update(source="files", files=files, download=download or {})
    config["galaxy_geometry"] = {"source": "none"}  # 'synthetic' needs the synthetic galaxy
    config["analysis"]["comparison"] = {"source": "none"}  # 'truth' likewise
    return write_yaml(tmp_path / "config.yaml", config)


def test_config_takes_a_path_or_an_archive_entry_per_band(tmp_path):
    files = {
        "F336W": "data/m83_f336w.fits",  # as before
        "F438W": {"image": "data/hlsp_x_f438w_drz_sci.fits"},
        "F814W": {
            "image": "data/f814w.fits",
            "hdu": 1,
            "weight": "data/f814w_weight.fits",
            "weight_hdu": "WHT",
        },
    }
    mosaic = load_config(files_config(tmp_path, files))["mosaic"]
    assert band_file(mosaic, "F336W") == {
        "image": "data/m83_f336w.fits",
        "hdu": None,
        "weight": None,
        "weight_hdu": None,
    }
    assert band_file(mosaic, "F438W")["image"] == "data/hlsp_x_f438w_drz_sci.fits"
    assert band_file(mosaic, "F814W") == files["F814W"]
    files["F814W"] = {"image": "data/f814w.fits", "weight": "None"}
    assert band_file(load_config(files_config(tmp_path, files))["mosaic"], "F814W")["weight"] == (
        "none"
    )
    # a downloaded band: a path is ignored as before, an object sets how to read the download
    download = {"F336W": {"url": "https://example.org/f336w.fits"}}
    files["F336W"] = "data/m83_f336w.fits"
    mosaic = load_config(files_config(tmp_path, files, download))["mosaic"]
    assert band_file(mosaic, "F336W")["image"] is None
    files["F336W"] = {"hdu": "SCI", "weight": "none"}
    mosaic = load_config(files_config(tmp_path, files, download))["mosaic"]
    assert band_file(mosaic, "F336W") == {
        "image": None,
        "hdu": "SCI",
        "weight": "none",
        "weight_hdu": None,
    }
    synthetic = {"source": "synthetic", "files": files}  # files unused
    assert band_file(synthetic, "F814W") == dict.fromkeys(("image", "hdu", "weight", "weight_hdu"))


@pytest.mark.parametrize(
    ("entry", "download", "message"),
    [
        (
            {"image": "a.fits", "wieght": "w.fits"},
            None,
            r"^mosaic\.files\.F336W\.wieght: unknown key",
        ),
        ({"image": "a.fits", "hdu": -1}, None, r"^mosaic\.files\.F336W\.hdu: -1 is less than"),
        ({"image": "a.fits", "hdu": 1.5}, None, r"^mosaic\.files\.F336W\.hdu: 1\.5 is not of type"),
        (7, None, r"^mosaic\.files\.F336W: 7 is not of type 'string', 'object'"),
        ({"hdu": "SCI"}, None, r"^mosaic\.files\.F336W\.image: no image path for F336W"),
        (
            {"image": "a_drz.fits", "weight": "none", "weight_hdu": "WHT"},
            None,
            r"^mosaic\.files\.F336W\.weight_hdu: `weight: none` uses no weight map",
        ),
        (
            {"image": "a_drz.fits", "hdu": "sci", "weight_hdu": "SCI"},
            None,
            r"^mosaic\.files\.F336W\.weight_hdu: 'SCI' is the image's own HDU",
        ),
        (
            {"image": "a_drz.fits", "weight": "a_drz.fits", "weight_hdu": "SCI"},
            None,
            r"^mosaic\.files\.F336W\.weight_hdu: 'SCI' is the image's own HDU",
        ),
        (
            {"image": "a.fits"},
            {"F336W": {"url": "https://example.org/a.fits"}},
            r"^mosaic\.files\.F336W\.image: F336W is downloaded \(mosaic\.download\.F336W\)",
        ),
    ],
)
def test_inconsistent_band_entries_stop_at_load_time_with_the_key_named(
    tmp_path, entry, download, message
):
    files = {"F336W": entry, "F438W": "b.fits", "F814W": "c.fits"}
    with pytest.raises(ConfigError, match=message):
        load_config(files_config(tmp_path, files, download))
