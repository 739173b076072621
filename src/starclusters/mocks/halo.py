"""A halo for the model PSF, fitted to the WFC3/UVIS encircled-energy table (issue 16).

The GalSim model of :mod:`starclusters.mocks.psf` is a diffraction PSF: it lacks the
telescope's mid-frequency wavefront error, jitter and focus breathing, which blur the
core and scatter light into a halo. Measured against the handbook it keeps 4–7 % too
much light within 0.4″ and its UV core is ~20 % too narrow. Real mosaics have that
halo; a network trained without it meets clusters whose light is spread wider than
any mock's. With ``halo`` the ePSF is convolved with

    K = (1 − f) G(σ_core) + f G(σ_core) ⊗ M(FWHM_halo, β = 2),

a Gaussian core blur G and a Moffat halo M holding the fraction f of the light,
whose three parameters per filter are fitted (:func:`fit_halo`) to the shape of the
STScI WFC3/UVIS2 encircled-energy curve (``resources/psf/wfc3uvis2_aper_007_syn.csv``,
the 2016 filter-based table, normalised at 6″) between 0.04″ and 1.98″, the curve
divided by its value at 1.98″ on both sides (the model box is 6″ wide, so only
shapes inside ~2″ compare). The fitted values ship in ``resources/psf/uvis_halo.csv``
(``docs/scripts/fit_psf_halo.py`` remakes them; resources/psf/README.md).

Convolution commutes with the pixel response, so the kernel is applied to the ePSF
(which already holds the pixel) on its fine grid. Light the kernel moves out of the
6″ box is lost and lowers the file's enclosed fraction (EEFRAC) accordingly.

Only WFC3/UVIS filters in the table are covered; ACS/WFC has no such table here
(its handbook gives EE at 0.4″ only), so a halo for an ACS band is a ConfigError.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import optimize, signal

from starclusters.errors import ConfigError

_RESOURCES = Path(__file__).resolve().parents[3] / "resources" / "psf"
#: STScI's WFC3/UVIS2 encircled-energy table (2016): FILTER, WAVELENGTH, APER#<r arcsec>.
EE_TABLE = _RESOURCES / "wfc3uvis2_aper_007_syn.csv"
#: The fitted halo parameters per filter (docs/scripts/fit_psf_halo.py).
HALO_TABLE = _RESOURCES / "uvis_halo.csv"
#: Moffat index of the halo: wings falling as r^-4, like the measured UVIS halo beyond 0.5″.
HALO_MOFFAT_BETA = 2.0
#: Radii (arcsec) of the fit: from one pixel to the table's last radius inside the 6″ box.
FIT_RADII_ARCSEC = (0.04, 1.98)

_UVIS_CURVE = re.compile(r"^HST_WFC3_(F\d{3,4}[A-Z]{1,2})$")


@dataclass(frozen=True)
class HaloParams:
    """Core blur σ (arcsec), halo light fraction f and halo Moffat FWHM (arcsec)."""

    core_sigma_arcsec: float
    halo_fraction: float
    halo_fwhm_arcsec: float


def read_ee_table(path: str | Path = EE_TABLE) -> tuple[np.ndarray, pd.DataFrame]:
    """(radii_arcsec (R,), table indexed by FILTER with WAVELENGTH and R EE columns)."""
    table = pd.read_csv(path)
    columns = [c for c in table.columns if c.startswith("APER#")]
    radii = np.array([float(c.split("#")[1]) for c in columns])
    table = table[table["FILTER"].str.match(r"^F\d")].set_index("FILTER")
    return radii, table[["WAVELENGTH", *columns]]


def uvis_filter(filter_curve: str) -> str:
    """The WFC3/UVIS filter name of a pyphot curve (``HST_WFC3_F336W`` -> ``F336W``);
    ConfigError for any other camera."""
    match = _UVIS_CURVE.match(filter_curve)
    if match is None:
        raise ConfigError(
            f"psf.halo: the fitted halo covers WFC3/UVIS filters only (encircled-energy table "
            f"of STScI), not {filter_curve!r}; set psf.halo: false or give FITS PSFs"
        )
    return match.group(1)


def halo_params(filter_curve: str, path: str | Path = HALO_TABLE) -> HaloParams:
    """The shipped fit for the band of ``filter_curve``; ConfigError naming the fitted ones."""
    name = uvis_filter(filter_curve)
    table = pd.read_csv(path, comment="#").set_index("filter")
    if name not in table.index:
        raise ConfigError(
            f"psf.halo: no halo fitted for {name}; fitted: {', '.join(table.index)} "
            "(docs/scripts/fit_psf_halo.py fits more)"
        )
    row = table.loc[name]
    return HaloParams(
        float(row["core_sigma_arcsec"]), float(row["halo_fraction"]), float(row["halo_fwhm_arcsec"])
    )


def _radius_grid(n: int, fine_scale_arcsec: float) -> np.ndarray:
    c = n // 2
    yy, xx = np.mgrid[:n, :n]
    return np.hypot(xx - c, yy - c) * fine_scale_arcsec


def encircled_energy(
    epsf: np.ndarray, fine_scale_arcsec: float, radii_arcsec: np.ndarray
) -> np.ndarray:
    """Share of ``epsf``'s (n, n) sum within each radius (arcsec) of its centre element,
    counting fine elements by their centres (fine enough at 5–7 samples per pixel)."""
    r = _radius_grid(epsf.shape[0], fine_scale_arcsec).ravel()
    order = np.argsort(r, kind="stable")
    cumulative = np.cumsum(epsf.ravel()[order])
    return np.interp(np.asarray(radii_arcsec, float), r[order], cumulative)


def halo_kernel(params: HaloParams, n: int, fine_scale_arcsec: float) -> np.ndarray:
    """The kernel K (n, n) of the module docstring on the fine grid; it sums to 1 less the
    halo light that falls beyond the grid (a few 10⁻⁴ for the fitted halos on 6″)."""
    r = _radius_grid(n, fine_scale_arcsec)
    sigma = max(params.core_sigma_arcsec, 1e-3 * fine_scale_arcsec)
    core = np.exp(-0.5 * (r / sigma) ** 2)
    core /= core.sum()
    beta = HALO_MOFFAT_BETA
    alpha = params.halo_fwhm_arcsec / (2.0 * np.sqrt(2.0 ** (1.0 / beta) - 1.0))
    moffat = (1.0 + (r / alpha) ** 2) ** (-beta)
    moffat /= moffat.sum()
    halo = signal.fftconvolve(core, moffat, mode="same")
    return (1.0 - params.halo_fraction) * core + params.halo_fraction * halo


def add_halo(
    epsf: np.ndarray, fine_scale_arcsec: float, params: HaloParams
) -> tuple[np.ndarray, float]:
    """(ePSF ⊗ K normalised to 1, the share of its light kept inside the box)."""
    kernel = halo_kernel(params, epsf.shape[0], fine_scale_arcsec)
    out = signal.fftconvolve(epsf, kernel, mode="same")
    np.clip(out, 0.0, None, out=out)
    kept = float(out.sum())
    return out / kept, kept


def _ee_shape(epsf, fine_scale_arcsec, radii):
    ee = encircled_energy(epsf, fine_scale_arcsec, radii)
    return ee / ee[-1]


def fit_halo(
    epsf: np.ndarray,
    fine_scale_arcsec: float,
    radii_arcsec: np.ndarray,
    ee_table: np.ndarray,
) -> tuple[HaloParams, float]:
    """Fit :class:`HaloParams` so that EE(r)/EE(r_max) of ``epsf`` ⊗ K matches the table's.

    radii_arcsec, ee_table: the table's radii and EE of one filter, restricted to
    :data:`FIT_RADII_ARCSEC` by the caller or here. Returns (params, max |ΔEE| after).
    """
    radii = np.asarray(radii_arcsec, float)
    ee = np.asarray(ee_table, float)
    keep = (radii >= FIT_RADII_ARCSEC[0] - 1e-9) & (radii <= FIT_RADII_ARCSEC[1] + 1e-9)
    radii, target = radii[keep], ee[keep] / ee[keep][-1]

    def residual(p):
        model, _ = add_halo(epsf, fine_scale_arcsec, HaloParams(*p))
        return _ee_shape(model, fine_scale_arcsec, radii) - target

    fit = optimize.least_squares(
        residual,
        [0.02, 0.1, 0.8],
        bounds=([1e-4, 0.0, 0.1], [0.1, 0.6, 3.0]),
        diff_step=1e-2,
    )
    return HaloParams(*map(float, fit.x)), float(np.abs(fit.fun).max())


def ee_shape_error(
    epsf: np.ndarray, fine_scale_arcsec: float, filter_name: str, path: str | Path = EE_TABLE
) -> pd.Series:
    """EE(r)/EE(1.98″) of ``epsf`` minus the table's, per fit radius (arcsec index)."""
    radii, table = read_ee_table(path)
    ee = table.loc[filter_name].to_numpy()[1:].astype(float)
    keep = (radii >= FIT_RADII_ARCSEC[0] - 1e-9) & (radii <= FIT_RADII_ARCSEC[1] + 1e-9)
    model = _ee_shape(epsf, fine_scale_arcsec, radii[keep])
    return pd.Series(model - ee[keep] / ee[keep][-1], index=radii[keep])
