"""Interstellar extinction in each band, integrated over the filter.

A band's extinction depends on the star's spectrum and on A_V itself (the filter's
effective wavelength shifts as extinction reddens the light), so it is tabulated
on a grid of A_V and T_eff and integrated over the filter for a black body:

    A_band = -2.5 log10( ∫ B(T) 10^(-0.4 A_lambda) R dλ / ∫ B(T) R dλ ),

with A_lambda from the ``extinction`` package (Cardelli, Clayton & Mathis 1989
by default, R_V = 3.1) and R the band's total system throughput
(:mod:`starclusters.photometry.filters`, photon-counting). The table is applied per
star by :class:`ExtinctionGrid`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from starclusters.errors import ConfigError
from starclusters.photometry.filters import filter_curve
from starclusters.photometry.synphot import planck_flam

#: Extinction laws of the ``extinction`` package that accept (wave, a_v, r_v).
LAWS = ("ccm89", "odonnell94", "fitzpatrick99")

#: T_eff grid of the table, log10 K (cool giants to O stars).
LOG_TEFF_GRID_K = np.round(np.arange(3.4, 4.81, 0.1), 2)

_WAVELENGTH_AA = np.geomspace(1200.0, 12000.0, 3000)


def a_lambda_mag(
    wavelength_aa: np.ndarray, av_mag: float, law: str = "ccm89", r_v: float = 3.1
) -> np.ndarray:
    """Extinction A_lambda (mag) at ``wavelength_aa`` (Angstrom) for ``av_mag`` and ``r_v``."""
    import extinction

    if law not in LAWS:
        raise ConfigError(f"photometry.extinction.law: {law!r} is not one of {', '.join(LAWS)}")
    wave = np.asarray(wavelength_aa, dtype=np.float64)
    if law == "fitzpatrick99":
        return extinction.fitzpatrick99(wave, av_mag, r_v)
    return getattr(extinction, law)(wave, av_mag, r_v)


def extinction_table(
    filter_curves: dict[str, str],
    av_grid_mag: np.ndarray,
    law: str = "ccm89",
    r_v: float = 3.1,
    log_teff_grid_k: np.ndarray = LOG_TEFF_GRID_K,
) -> pd.DataFrame:
    """A_band for every band, A_V and T_eff: columns band, av_mag, log_teff_k, a_band_mag.

    filter_curves: band -> curve name (e.g. ``{"F336W": "HST_WFC3_F336W"}``), resolved by
    :func:`starclusters.photometry.filters.filter_curve`.
    """
    flam = planck_flam(_WAVELENGTH_AA, 10.0 ** np.asarray(log_teff_grid_k))
    rows = []
    for band, curve_name in filter_curves.items():
        curve = filter_curve(curve_name)
        unreddened = np.asarray(curve.get_flux(_WAVELENGTH_AA, flam).value)
        for av in np.asarray(av_grid_mag, dtype=float):
            screen = 10.0 ** (-0.4 * a_lambda_mag(_WAVELENGTH_AA, av, law, r_v))
            reddened = np.asarray(curve.get_flux(_WAVELENGTH_AA, flam * screen).value)
            a_band = -2.5 * np.log10(reddened / unreddened)
            for log_teff, a in zip(log_teff_grid_k, a_band, strict=True):
                rows.append((band, round(float(av), 4), float(log_teff), float(a)))
    return pd.DataFrame(rows, columns=["band", "av_mag", "log_teff_k", "a_band_mag"])


@dataclass(frozen=True)
class ExtinctionGrid:
    """The extinction table as an array for per-star look-ups.

    a_band_mag: (n_bands, n_av, n_teff) on the ``av_mag`` (mag) and ``log_teff_k`` grids.
    """

    bands: tuple[str, ...]
    av_mag: np.ndarray
    log_teff_k: np.ndarray
    a_band_mag: np.ndarray

    @classmethod
    def from_table(cls, table: pd.DataFrame, bands: Sequence[str]) -> ExtinctionGrid:
        """From the output of :func:`extinction_table`; ConfigError if a band is missing."""
        for band in bands:
            if not (table["band"] == band).any():
                raise ConfigError(
                    f"band {band!r} is not in the extinction table; rebuild it with this band"
                )
        sub = table[table["band"].isin(bands)]
        avs = np.sort(sub["av_mag"].unique())
        teffs = np.sort(sub["log_teff_k"].unique())
        index = pd.MultiIndex.from_product([list(bands), avs, teffs])
        cube = sub.set_index(["band", "av_mag", "log_teff_k"])["a_band_mag"].reindex(index)
        return cls(
            tuple(bands), avs, teffs, cube.to_numpy().reshape(len(bands), len(avs), len(teffs))
        )

    def check_av(self, av_mag: float) -> None:
        """ConfigError unless the table covers ``av_mag`` (mag); the message says what to change.

        A_V = 0 needs no table. Beyond the table the run stops rather than
        extrapolating: A_band/A_V of a broad band falls with A_V (the reddened
        light shifts the band's effective wavelength) by an amount that depends on
        the star's T_eff, which only the integral over the filter gives.
        """
        if not np.isfinite(av_mag) or av_mag < 0:
            raise ValueError(f"A_V = {av_mag} mag: extinction must be finite and >= 0")
        avs = self.av_mag
        if av_mag == 0 or avs[0] - 1e-9 <= av_mag <= avs[-1] + 1e-9:
            return
        step = float(np.min(np.diff(avs))) if len(avs) > 1 else 0.1
        # the smallest change of the config's range that covers av_mag, on the same steps
        lo = float(avs[0]) - step * max(0.0, np.ceil((avs[0] - av_mag) / step - 1e-9))
        hi = float(avs[-1]) + step * max(0.0, np.ceil((av_mag - avs[-1]) / step - 1e-9))
        raise ConfigError(
            f"A_V = {av_mag:g} mag is outside the extinction table, which covers "
            f"{avs[0]:g}–{avs[-1]:g} mag (photometry.extinction.av_mag); set "
            f"photometry.extinction.av_mag to {{min: {lo:g}, max: {hi:g}, step: {step:g}}} and "
            "rebuild the photometry stage's extinction.parquet (or build a table that covers "
            "it with build_extinction_table / extinction_table)"
        )

    def for_stars(self, band: str, av_mag: float, log_teff_k: np.ndarray) -> np.ndarray:
        """A_band (mag) of stars of ``log_teff_k`` behind ``av_mag``: linear in A_V, then in log T_eff.

        Returns an array shaped like ``log_teff_k``.
        """
        if band not in self.bands:
            raise ConfigError(
                f"band {band!r} is not in the extinction table; rebuild it with this band"
            )
        self.check_av(av_mag)
        avs = self.av_mag
        table = self.a_band_mag[self.bands.index(band)]
        per_teff = np.array([np.interp(av_mag, avs, table[:, k]) for k in range(table.shape[1])])
        return np.interp(log_teff_k, self.log_teff_k, per_teff)
