"""Isochrones on the configured age grid, interpolated along evolutionary phase.

PARSEC tabulates isochrones at a few ages (the shipped grid: log t = 6.0–10.2 in
0.12 dex steps); the thesis draws cluster ages in 0.05 dex steps. Snapping to the
nearest tabulated age would put all clusters of an age bin on one isochrone, so
we interpolate between the two bracketing isochrones *along evolutionary phase*:

1. Each isochrone is split into runs of one PARSEC phase label along initial mass
   (PMS, MS, SGB, RGB, CHeB, AGB…; labels recur on young isochrones), and the
   runs of the two isochrones are aligned by their label sequence.
2. Within a run, a point's position is its fraction of the phase's span in
   log initial mass (0 at the phase's first point, 1 at its last). Both
   isochrones are resampled at the same fractions (as many as the denser of the two
   has points in that phase).
3. Every quantity (log initial mass, current mass, log L, log T_eff, log g,
   magnitudes) is interpolated linearly in log age between the matched points.
   A run present in only one of the two isochrones keeps its magnitudes, and its
   span in log initial mass is scaled by that isochrone's weight, so the number
   of stars in the phase changes smoothly with age and phases stay in mass order.

Metallicity is interpolated the same way, linearly in log Z, between the two
bracketing grid metallicities. docs/photometry.md measures the error of the method
by leaving out each interior grid age and rebuilding it from its neighbours.
"""

from __future__ import annotations

from difflib import SequenceMatcher
from functools import cache

import numpy as np
import pandas as pd

from starclusters.errors import ConfigError
from starclusters.photometry.imf import BrokenPowerLawIMF

#: Columns interpolated between matched points (log initial mass is handled separately).
_INTERPOLATED = ("mass_msun", "log_l_lsun", "log_teff_k", "log_g_cgs")


def _bracket(values: np.ndarray, x: float, what: str, key: str, tolerance: float = 1e-6):
    """(i_lower, i_upper, fraction) of ``x`` between sorted grid ``values``; ConfigError outside."""
    if x < values[0] - tolerance or x > values[-1] + tolerance:
        raise ConfigError(
            f"{key}: {what} {x:g} is outside the isochrone grid "
            f"[{values[0]:g}, {values[-1]:g}]; narrow the range or supply CMD isochrones that cover it"
        )
    if len(values) == 1:
        return 0, 0, 0.0
    x = float(np.clip(x, values[0], values[-1]))
    j = int(np.clip(np.searchsorted(values, x), 1, len(values) - 1))
    return j - 1, j, float((x - values[j - 1]) / (values[j] - values[j - 1]))


def _phase_samples(segment: pd.DataFrame, fractions: np.ndarray, columns) -> dict[str, np.ndarray]:
    """Values of ``columns`` (and log initial mass) at phase ``fractions`` in [0, 1]."""
    log_mini = np.log10(segment["mini_msun"].to_numpy())
    span = log_mini[-1] - log_mini[0]
    if len(segment) == 1 or span <= 0:
        position = np.linspace(0.0, 1.0, len(segment))
    else:
        position = (log_mini - log_mini[0]) / span
    out = {"log_mini": np.interp(fractions, position, log_mini)}
    for column in columns:
        out[column] = np.interp(fractions, position, segment[column].to_numpy(float))
    return out


def _runs(iso: pd.DataFrame) -> list[tuple[int, int, int]]:
    """Contiguous runs of one phase label along initial mass: (label, start, stop) row ranges.

    PARSEC labels recur along an isochrone (young isochrones run PMS, MS, ...,
    CHeB and then MS, SGB, RGB again for the most massive stars), so phases are
    matched as runs, not as label values. PMS and MS count as one phase.
    """
    labels = iso["phase_label"].to_numpy()
    # PMS (0) and MS (1) alternate along young isochrones' lower main sequence;
    # both are "before the turn-off" and are matched as one phase.
    labels = np.where(labels == 0, 1, labels)
    edges = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], edges])
    stops = np.concatenate([edges, [len(labels)]])
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def interpolate_isochrones(iso_a: pd.DataFrame, iso_b: pd.DataFrame, frac: float) -> pd.DataFrame:
    """The isochrone a fraction ``frac`` of the way from ``iso_a`` to ``iso_b``, phase by phase.

    Both inputs are single isochrones (one age, one metallicity) sorted by
    initial mass, with the columns of :mod:`starclusters.photometry.parsec`.
    Their phase runs are aligned (longest common subsequence of the run labels).
    Aligned runs are interpolated point by point. A run found in only one
    isochrone keeps its stars' magnitudes but its span in log initial mass is
    scaled by that isochrone's weight (1 - frac or frac) and placed where the
    preceding run ends: the number of stars in the phase then changes smoothly
    with age, and phases stay in mass order. The ``log_age_yr`` and
    ``metallicity_z`` columns of the result are left to the caller.
    """
    columns = list(_INTERPOLATED) + [c for c in iso_a.columns if c.startswith("abs_mag_")]
    if frac <= 0.0 or frac >= 1.0:
        return (iso_a if frac <= 0.0 else iso_b)[
            ["mini_msun", "phase_label", *columns]
        ].reset_index(drop=True)
    runs_a, runs_b = _runs(iso_a), _runs(iso_b)
    matcher = SequenceMatcher(a=[r[0] for r in runs_a], b=[r[0] for r in runs_b], autojunk=False)
    pieces: list[pd.DataFrame] = []
    cursor = None  # log initial mass where the previous piece ends

    def unmatched(iso, run, weight):
        nonlocal cursor
        _, start, stop = run
        seg = iso.iloc[start:stop]
        log_mini = np.log10(seg["mini_msun"].to_numpy())
        if cursor is None:
            origin = log_mini[0]
        else:  # keep the (scaled) gap to the previous point: it carries stars too
            previous = np.log10(iso["mini_msun"].iloc[start - 1]) if start > 0 else log_mini[0]
            origin = cursor + weight * (log_mini[0] - previous)
        placed = origin + weight * (log_mini - log_mini[0])
        piece = seg[["phase_label", *columns]].copy()
        piece.insert(0, "mini_msun", 10.0**placed)
        pieces.append(piece)
        cursor = placed[-1]

    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag == "equal":
            for (_, a0, a1), (_, b0, b1) in zip(runs_a[i1:i2], runs_b[j1:j2], strict=True):
                seg_a, seg_b = iso_a.iloc[a0:a1], iso_b.iloc[b0:b1]
                fractions = np.linspace(0.0, 1.0, max(len(seg_a), len(seg_b)))
                a = _phase_samples(seg_a, fractions, [*columns, "phase_label"])
                b = _phase_samples(seg_b, fractions, [*columns, "phase_label"])
                mixed = {key: (1.0 - frac) * a[key] + frac * b[key] for key in a}
                piece = pd.DataFrame({c: mixed[c] for c in columns})
                nearer = a if frac < 0.5 else b
                piece.insert(0, "phase_label", np.rint(nearer["phase_label"]).astype(np.int16))
                piece.insert(0, "mini_msun", 10.0 ** mixed["log_mini"])
                pieces.append(piece)
                cursor = mixed["log_mini"][-1]
            continue
        for run in runs_a[i1:i2]:  # 'delete' and 'replace': runs only iso_a has here
            unmatched(iso_a, run, 1.0 - frac)
        for run in runs_b[j1:j2]:  # 'insert' and 'replace': runs only iso_b has here
            unmatched(iso_b, run, frac)
    out = pd.concat(pieces, ignore_index=True)
    # Initial mass must increase strictly along an isochrone so that stars can be
    # placed on it by mass; drop the rare points where two runs' ends overlap.
    mini = out["mini_msun"].to_numpy()
    keep = np.concatenate([[True], mini[1:] > np.maximum.accumulate(mini)[:-1]])
    return out[keep].reset_index(drop=True)


def isochrones_on_grid(
    grid: pd.DataFrame,
    log_ages_yr: np.ndarray,
    metallicity_z: float,
    z_tolerance_dex: float = 0.0,
) -> pd.DataFrame:
    """Isochrones at each of ``log_ages_yr`` for metallicity ``metallicity_z``.

    grid: isochrones at several ages/metallicities (:mod:`starclusters.photometry.parsec`).
    A metallicity up to ``z_tolerance_dex`` outside the grid uses the edge
    metallicity (the caller should log it); further out it is an error, as is
    an age outside the grid. Returns the stacked isochrones with ``log_age_yr``
    set to the requested ages and ``metallicity_z`` to the metallicity used.
    """
    grid_z = np.sort(grid["metallicity_z"].unique())
    log_z = np.log10(grid_z)
    target = np.log10(metallicity_z)
    if target < log_z[0] - z_tolerance_dex or target > log_z[-1] + z_tolerance_dex:
        raise ConfigError(
            f"photometry.isochrones.metallicity_z: Z = {metallicity_z:g} is outside the grid "
            f"[{grid_z[0]:.3g}, {grid_z[-1]:.3g}] by more than z_tolerance_dex = {z_tolerance_dex}; "
            "choose a Z inside it or supply CMD isochrones for that metallicity"
        )
    i_lo, i_hi, z_frac = _bracket(
        log_z,
        float(np.clip(target, log_z[0], log_z[-1])),
        "log Z",
        "photometry.isochrones.metallicity_z",
    )
    by_key = {key: part for key, part in grid.groupby(["metallicity_z", "log_age_yr"], sort=True)}
    z_lo, z_hi = grid_z[i_lo], grid_z[i_hi]
    ages = np.sort(
        np.intersect1d(
            grid.loc[grid["metallicity_z"] == z_lo, "log_age_yr"].unique(),
            grid.loc[grid["metallicity_z"] == z_hi, "log_age_yr"].unique(),
        )
    )

    # Metallicity first, at the grid ages (clean phase structure), then age: the
    # age interpolation then sees the same two inputs across a whole grid interval
    # and so varies continuously with age.
    @cache
    def at_grid_age(k: int) -> pd.DataFrame:
        return interpolate_isochrones(by_key[(z_lo, ages[k])], by_key[(z_hi, ages[k])], z_frac)

    pieces = []
    for log_age in np.atleast_1d(log_ages_yr):
        a_lo, a_hi, a_frac = _bracket(
            ages, float(log_age), "log age", "photometry.isochrones.log_age_yr", 1e-3
        )
        iso = interpolate_isochrones(at_grid_age(a_lo), at_grid_age(a_hi), a_frac)
        iso.insert(
            0, "metallicity_z", float(10 ** (log_z[i_lo] + z_frac * (log_z[i_hi] - log_z[i_lo])))
        )
        iso.insert(0, "log_age_yr", round(float(log_age), 4))
        pieces.append(iso)
    return pd.concat(pieces, ignore_index=True)


def ssp_weights(iso: pd.DataFrame, imf: BrokenPowerLawIMF) -> np.ndarray:
    """Number of stars each point of isochrone ``iso`` stands for, per Msun of initial mass.

    iso: one isochrone sorted by ``mini_msun``. Each point stands for the stars between
    the mid-points to its neighbours (clipped to the IMF's mass range); stars above the
    isochrone's largest initial mass are dark remnants, those below its smallest are
    neglected (their light is < 1e-4 of the total).
    """
    mini = iso["mini_msun"].to_numpy()
    edges = np.concatenate([[mini[0]], 0.5 * (mini[1:] + mini[:-1]), [mini[-1]]])
    edges = np.clip(edges, imf.mass_min_msun, imf.mass_max_msun)
    return imf.number_between(edges[:-1], edges[1:]) / imf.mass_between(
        imf.mass_min_msun, imf.mass_max_msun
    )


def ssp_magnitudes(iso: pd.DataFrame, imf: BrokenPowerLawIMF, bands: list[str]) -> dict[str, float]:
    """Integrated absolute magnitudes of a fully sampled population of 1 Msun initial mass.

    iso: one isochrone sorted by ``mini_msun``; bands: suffixes of its
    ``abs_mag_<band>`` columns. Points are weighted by :func:`ssp_weights`.
    Returns band -> magnitude.
    """
    per_msun = ssp_weights(iso, imf)
    out = {}
    for band in bands:
        flux = np.sum(per_msun * 10.0 ** (-0.4 * iso[f"abs_mag_{band}"].to_numpy()))
        out[band] = float(-2.5 * np.log10(flux))
    return out
