"""Stars of a cluster in detector units: IMF sampling, isochrone magnitudes, extinction,
distance and the HST count rate; integrated cluster magnitudes and magnitude cuts.

This is what the mock bank and the synthetic galaxy call to turn (age, mass, A_V)
into stars with counts/s per band.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from starclusters.errors import ConfigError
from starclusters.photometry.extinction import ExtinctionGrid
from starclusters.photometry.imf import BrokenPowerLawIMF, sample_cluster_masses


def distance_modulus(distance_mpc: float) -> float:
    """m - M for a distance in Mpc (no extinction)."""
    if not distance_mpc > 0:
        raise ConfigError(f"photometry.distance_mpc must be positive, got {distance_mpc}")
    return 5.0 * np.log10(distance_mpc * 1e6) - 5.0


def counts_per_second(vega_mag: np.ndarray, zeropoint_mag: float) -> np.ndarray:
    """Count rate (e-/s) of a source of apparent Vega magnitude ``vega_mag``.

    zeropoint_mag: the band's Vega zero point, the magnitude giving 1 count/s.
    """
    return 10.0 ** (-0.4 * (np.asarray(vega_mag, dtype=float) - zeropoint_mag))


def magnitude_from_counts(counts_s: np.ndarray, zeropoint_mag: float) -> np.ndarray:
    """Apparent Vega magnitude of a count rate (inverse of :func:`counts_per_second`)."""
    with np.errstate(divide="ignore"):
        return zeropoint_mag - 2.5 * np.log10(np.asarray(counts_s, dtype=float))


#: How the per-band magnitude limits combine (``photometry.magnitude_cut``): "all" — brighter
#: than every band's limit (the thesis' cuts, §3.1.2); "any" — brighter than at least one;
#: "none" — no cut (the artificial test's mocks that map the completeness, artificial.draw).
MAGNITUDE_CUTS = ("all", "any", "none")


def passes_magnitude_cuts(
    app_mag: Mapping[str, float | np.ndarray],
    limits_mag: Mapping[str, float],
    require: str = "all",
) -> bool | np.ndarray:
    """Whether clusters pass the magnitude cuts (mag < limit) in all bands or in any.

    app_mag: band -> apparent Vega magnitude, a number or an array (N,); limits_mag: band ->
    limit; require: one of :data:`MAGNITUDE_CUTS`. Returns a bool, or an array (N,) of
    them for array magnitudes; NaN magnitudes fail their band. No limits: everything passes.
    """
    if require not in MAGNITUDE_CUTS:
        raise ValueError(f"require must be one of {MAGNITUDE_CUTS}, got {require!r}")
    if require == "none":
        shape = np.shape(next(iter(app_mag.values()))) if app_mag else ()
        return True if shape == () else np.ones(shape, bool)
    if not limits_mag:
        return True
    bright = [np.asarray(app_mag[band], float) < limit for band, limit in limits_mag.items()]
    passed = np.logical_and.reduce(bright) if require == "all" else np.logical_or.reduce(bright)
    return bool(passed) if np.ndim(passed) == 0 else passed


@dataclass
class ClusterStars:
    """The stars of one cluster.

    mini_msun: (n,) initial masses (NaN for light packets); counts_s: (n, n_bands)
    count rates (0 for dark stars: remnants and stars below the isochrone's lowest
    mass); bands: band names of the columns of counts_s; n_aggregated: how many
    faint stars the light packets stand for (see
    :meth:`StellarPopulation.cluster_stars`).
    """

    mini_msun: np.ndarray
    counts_s: np.ndarray
    bands: tuple[str, ...]
    n_aggregated: int = 0

    @property
    def luminous(self) -> np.ndarray:
        """Boolean mask of stars (and packets) that emit light: (n,)."""
        return self.counts_s.sum(axis=1) > 0

    @property
    def n_stars(self) -> int:
        """Number of stars of the cluster, individually drawn or aggregated."""
        return int(np.isfinite(self.mini_msun).sum()) + self.n_aggregated


@dataclass
class StellarPopulation:
    """Isochrones, extinction, distance and calibration for one galaxy.

    isochrones: the photometry stage's ``isochrones.parquet`` table (absolute Vega
    magnitudes ``abs_mag_<band>`` on the configured age grid); extinction: its
    ``extinction.parquet``; zeropoints_mag: band -> Vega zero point (mag for 1 count/s).
    """

    isochrones: pd.DataFrame
    extinction: pd.DataFrame
    bands: Sequence[str]
    distance_mpc: float
    zeropoints_mag: Mapping[str, float]
    imf: BrokenPowerLawIMF
    _by_age: dict = field(default_factory=dict, repr=False)

    def __post_init__(self):
        for band in self.bands:
            if band not in self.zeropoints_mag:
                raise ConfigError(
                    f"photometry.vega_zeropoint_mag.{band}: no zero point for band {band}"
                )
            if f"abs_mag_{band}" not in self.isochrones.columns:
                raise ConfigError(
                    f"band {band} is not in the isochrone table; rerun the photometry stage"
                )
        self._by_age = {round(float(a), 4): g for a, g in self.isochrones.groupby("log_age_yr")}
        self.distance_modulus_mag = distance_modulus(self.distance_mpc)
        # Arrays for the per-star hot path: per age (mini, log_teff, abs mags).
        columns = ["mini_msun", "log_teff_k"] + [f"abs_mag_{b}" for b in self.bands]
        self._arrays = {age: iso[columns].to_numpy(float).T for age, iso in self._by_age.items()}
        self._extinction = ExtinctionGrid.from_table(self.extinction, self.bands)

    @property
    def log_ages_yr(self) -> np.ndarray:
        """The tabulated ages, log10 yr."""
        return np.array(sorted(self._by_age))

    def isochrone(self, log_age_yr: float) -> pd.DataFrame:
        """The isochrone of age ``log_age_yr`` (must be on the grid to 1e-4 dex)."""
        key = round(float(log_age_yr), 4)
        if key not in self._by_age:
            raise ValueError(
                f"log age {log_age_yr} is not on the isochrone grid of this table "
                f"({len(self._by_age)} ages, {self.log_ages_yr[0]}–{self.log_ages_yr[-1]}); "
                "draw ages from the configured grid (photometry.isochrones.log_age_yr), or "
                "build a table at the ages you need with "
                "build_isochrone_table(photometry, bands, log_ages_yr=[...])"
            )
        return self._by_age[key]

    def star_counts(self, log_age_yr: float, mini_msun: np.ndarray, av_mag: float) -> np.ndarray:
        """Count rates (n_stars, n_bands) of stars of initial masses ``mini_msun`` (Msun).

        Apparent magnitudes (with each isochrone point's extinction for its T_eff)
        are interpolated linearly in initial mass along the isochrone; stars
        outside its mass range are dark. ValueError for an age not in the table;
        ConfigError (naming ``photometry.extinction.av_mag``) for an A_V beyond the
        extinction table.
        """
        self.isochrone(log_age_yr)  # checks the age
        self._extinction.check_av(av_mag)
        grid_mass, grid_log_teff, *grid_mags = self._arrays[round(float(log_age_yr), 4)]
        app_mag = np.array(grid_mags) + self.distance_modulus_mag  # (B, points)
        if av_mag > 0:
            for j, band in enumerate(self.bands):
                app_mag[j] += self._extinction.for_stars(band, av_mag, grid_log_teff)
        mini = np.asarray(mini_msun, dtype=float)
        alive = (mini >= grid_mass[0]) & (mini <= grid_mass[-1])
        m = mini[alive]
        # one search for all bands: linear interpolation between points k-1 and k
        k = np.clip(np.searchsorted(grid_mass, m), 1, len(grid_mass) - 1)
        w = (m - grid_mass[k - 1]) / (grid_mass[k] - grid_mass[k - 1])
        counts = np.zeros((mini.size, len(self.bands)))
        for j, band in enumerate(self.bands):
            mag = app_mag[j, k - 1] + w * (app_mag[j, k] - app_mag[j, k - 1])
            counts[alive, j] = counts_per_second(mag, self.zeropoints_mag[band])
        return counts

    def faint_mass_limit_msun(self, log_age_yr: float, faint_limit_mag: float) -> float:
        """Initial mass below which every star of the isochrone is a main-sequence or
        pre-main-sequence star fainter than ``faint_limit_mag`` (apparent, unextincted)
        in every band, and below 80 % of the turn-off mass."""
        iso = self.isochrone(log_age_yr)
        mini = iso["mini_msun"].to_numpy()
        evolved = iso["phase_label"].to_numpy() >= 2
        turnoff = mini[evolved].min() if evolved.any() else mini[-1]
        brightest = (
            iso[[f"abs_mag_{b}" for b in self.bands]].to_numpy().min(axis=1)
            + self.distance_modulus_mag
        )
        bright = (brightest < faint_limit_mag) | evolved
        first_bright = mini[bright].min() if bright.any() else mini[-1]
        return float(min(first_bright, 0.8 * turnoff))

    def cluster_stars(
        self,
        log_age_yr: float,
        mass_msun: float,
        av_mag: float,
        rng: np.random.Generator,
        faint_limit_mag: float | None = None,
        faint_packets: int = 2000,
    ) -> ClusterStars:
        """IMF-sampled stars of a cluster of initial mass ``mass_msun`` (Msun), age and A_V (mag).

        With ``faint_limit_mag`` (apparent Vega magnitude), stars below
        :meth:`faint_mass_limit_msun` — main-sequence stars each fainter than that in
        every band — are not drawn one by one: their expected number, mass and light
        (IMF-weighted along the isochrone) are given to ``faint_packets`` equal
        light packets (mini_msun NaN) for the caller to scatter like the stars.
        Their individual graininess is far below any image's noise, and drawing
        them is what makes massive clusters slow (≈ 98 % of the stars of a 100 Myr
        cluster at 4.5 Mpc, < 1 % of its light). The brighter stars are drawn
        from the IMF above that mass until they hold the rest of the mass.
        """
        # age and A_V are checked before any star is drawn
        self.isochrone(log_age_yr)
        self._extinction.check_av(av_mag)
        if faint_limit_mag is None:
            mini = sample_cluster_masses(mass_msun, self.imf, rng)
            return ClusterStars(mini, self.star_counts(log_age_yr, mini, av_mag), tuple(self.bands))
        imf = self.imf
        split = max(self.faint_mass_limit_msun(log_age_yr, faint_limit_mag), imf.mass_min_msun)
        low_mass_fraction = float(
            imf.mass_between(imf.mass_min_msun, split)
            / imf.mass_between(imf.mass_min_msun, imf.mass_max_msun)
        )
        bright_imf = BrokenPowerLawIMF(split, imf.mass_max_msun, imf.breaks_msun, imf.slopes)
        bright_mass = mass_msun * (1.0 - low_mass_fraction)
        mini = (
            sample_cluster_masses(bright_mass, bright_imf, rng) if bright_mass > 0 else np.zeros(0)
        )
        n_faint = (
            mass_msun
            * low_mass_fraction
            / float(
                imf.mass_between(imf.mass_min_msun, split)
                / imf.number_between(imf.mass_min_msun, split)
            )
        )
        faint_counts = n_faint * self._mean_counts_below(log_age_yr, split, av_mag)
        packets = np.tile(faint_counts / faint_packets, (faint_packets, 1))
        return ClusterStars(
            np.concatenate([mini, np.full(faint_packets, np.nan)]),
            np.vstack([self.star_counts(log_age_yr, mini, av_mag), packets]),
            tuple(self.bands),
            n_aggregated=int(round(n_faint)),
        )

    def _mean_counts_below(self, log_age_yr: float, split_msun: float, av_mag: float) -> np.ndarray:
        """IMF-weighted mean count rate (B,) of the stars between the IMF's lower end and ``split_msun``."""
        grid_mass = self._arrays[round(float(log_age_yr), 4)][0]
        imf = self.imf
        nodes = np.concatenate([grid_mass[grid_mass < split_msun], [split_msun]])
        edges = np.concatenate([[nodes[0]], 0.5 * (nodes[1:] + nodes[:-1]), [split_msun]])
        number = imf.number_between(edges[:-1], edges[1:])
        total = imf.number_between(
            imf.mass_min_msun, split_msun
        )  # stars below the isochrone are dark
        return (number[:, None] * self.star_counts(log_age_yr, nodes, av_mag)).sum(axis=0) / total

    def expected_magnitudes(
        self, log_age_yr: float, mass_msun: float, av_mag: float
    ) -> dict[str, float]:
        """Apparent Vega magnitude per band of a cluster's mean light: the IMF-weighted mean
        count rate of its stars times their expected number, i.e. the mean over stochastic
        draws of the flux (bright draws lie above it, most draws of a small cluster below)."""
        self.isochrone(log_age_yr)  # checks the age
        imf = self.imf
        lo, hi = imf.mass_min_msun, imf.mass_max_msun
        # stars above the isochrone's last point are remnants: the mean light is that of the
        # stars up to it, shared among all the stars the IMF draws
        top = min(float(self._arrays[round(float(log_age_yr), 4)][0][-1]), hi)
        living = float(imf.number_between(lo, top) / imf.number_between(lo, hi))
        per_star = living * self._mean_counts_below(log_age_yr, top, av_mag)  # (B,)
        n_stars = mass_msun * float(imf.number_between(lo, hi) / imf.mass_between(lo, hi))
        return {
            band: float(magnitude_from_counts(n_stars * per_star[j], self.zeropoints_mag[band]))
            for j, band in enumerate(self.bands)
        }

    def integrated_magnitudes(self, stars: ClusterStars) -> dict[str, float]:
        """Apparent Vega magnitude of the whole cluster per band (inf if it has no light)."""
        totals = stars.counts_s.sum(axis=0)  # stars and light packets
        return {
            band: float(magnitude_from_counts(totals[j], self.zeropoints_mag[band]))
            for j, band in enumerate(self.bands)
        }
