"""Field stars of a synthetic galaxy: unresolved light and the brightest stars drawn one by one.

Each stellar component (bulge, old/intermediate disk, young stars in and between the
arms) is a surface density of *initial* stellar mass (M☉/pc² face-on, from
:class:`~starclusters.synthetic.geometry.GalaxyGeometry`) times a population
of one isochrone age. A population of 1 M☉ is split on its isochrone
(:class:`ResolvedSplit`, with the IMF binning of ``photometry.isochrones.ssp_magnitudes``):

* stars brighter than ``resolve_limit_mag`` (apparent, unextincted) in any band are
  drawn one by one — a Poisson number per block of ``density_block_px`` pixels, placed
  uniformly inside it, masses drawn within the bright isochrone bins — so that their
  graininess makes the surface-brightness fluctuations, crowding and bright young
  field stars of a real image;
* the rest is smooth light, evaluated on a grid every ``density_block_px`` pixels
  and interpolated bilinearly (the densities vary over ≳ 10 px).

Extinction of field light by the galaxy's dust screen: a share
``dust_behind_fraction`` of the light lies behind the screen (each drawn star
independently), the rest in front; all of it is behind the Galactic foreground. The
band's A_band/A_V is the extinction table's at T_eff = 10^4 K (hot and cool stars
differ by a few per cent). Not modelled: the PSF blur of the smooth light (it varies
slowly), stars of initial mass below the isochrone (< 10^-4 of the light).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from starclusters.photometry.extinction import ExtinctionGrid
from starclusters.photometry.population import StellarPopulation
from starclusters.photometry.resolved import ResolvedSplit
from starclusters.synthetic.geometry import GalaxyGeometry

#: T_eff (log10 K) at which a band's A_band/A_V is taken for the dust screen.
SCREEN_LOG_TEFF_K = 4.0


def nearest_grid_age(population: StellarPopulation, log_age_yr: float) -> float:
    """The isochrone grid's age closest to ``log_age_yr`` (log10 yr)."""
    ages = population.log_ages_yr
    return float(ages[np.argmin(np.abs(ages - log_age_yr))])


def band_extinction_ratios(population: StellarPopulation, bands: Sequence[str]) -> np.ndarray:
    """A_band / A_V (B,) of ``bands`` from the population's extinction table, at T_eff = 10^4 K."""
    grid = ExtinctionGrid.from_table(population.extinction, list(bands))
    av = min(1.0, float(grid.av_mag[-1]))
    if not av > 0:
        raise ValueError("the extinction table has no A_V > 0; rebuild it with an A_V range")
    return np.array([float(grid.for_stars(b, av, np.array(SCREEN_LOG_TEFF_K))) / av for b in bands])


@dataclass(frozen=True)
class FieldComponent:
    """One age of one stellar component: density (x_kpc, y_kpc) -> face-on M☉/pc², and its split."""

    name: str
    density: Callable[[np.ndarray, np.ndarray], np.ndarray]
    split: ResolvedSplit


@dataclass
class FieldStars:
    """Drawn field stars: RA/Dec (n,), count rates (n, B) after extinction, in ``bands`` order."""

    ra_deg: np.ndarray
    dec_deg: np.ndarray
    counts_s: np.ndarray

    @classmethod
    def empty(cls, n_bands: int) -> FieldStars:
        return cls(np.zeros(0), np.zeros(0), np.zeros((0, n_bands)))


class FieldModel:
    """All field components of a galaxy with the dust screen: smooth light and star draws.

    population: the galaxy's stars; geometry: its disk; bands: the image's bands (the
    order of every (B, ...) array here).
    """

    def __init__(
        self, population: StellarPopulation, geometry: GalaxyGeometry, bands: Sequence[str]
    ):
        self.population = population
        self.geometry = geometry
        self.bands = tuple(bands)
        spec = geometry.spec
        self.extinction_ratio = band_extinction_ratios(population, self.bands)
        self.components = self._components(spec)
        self._cos_i = float(np.cos(np.radians(spec.inclination_deg)))

    def _split(self, log_age_yr: float) -> ResolvedSplit:
        return ResolvedSplit.build(
            self.population, log_age_yr, self.geometry.spec.resolve_limit_mag, self.bands
        )

    def _components(self, spec) -> list[FieldComponent]:
        geo, pop = self.geometry, self.population
        out = []
        if spec.bulge_sigma_e_msun_pc2 > 0:
            age = nearest_grid_age(pop, spec.bulge_log_age_yr)
            out.append(FieldComponent("bulge", geo.bulge_density, self._split(age)))
        if spec.disk_sigma0_msun_pc2 > 0:
            fractions: dict[float, float] = {}
            for log_age, fraction in spec.disk_populations:
                age = nearest_grid_age(pop, log_age)
                fractions[age] = fractions.get(age, 0.0) + fraction
            for age, fraction in fractions.items():
                out.append(
                    FieldComponent(
                        f"disk {age:.2f}",
                        lambda x, y, f=fraction: f * geo.disk_density(x, y),
                        self._split(age),
                    )
                )
        if spec.sfr_msun_yr_kpc2 > 0:
            grid = pop.log_ages_yr
            young = grid[grid <= spec.young_max_log_age_yr + 1e-9]
            if young.size:
                edges = np.concatenate([[-np.inf], 0.5 * (young[1:] + young[:-1])])
                upper = young[-1] + (0.5 * (young[-1] - young[-2]) if young.size > 1 else 0.1)
                edges = np.append(edges, upper)
                duration = 10.0 ** edges[1:] - 10.0 ** edges[:-1]  # the first bin starts at t = 0
                for age, dt in zip(young, duration, strict=True):
                    out.append(
                        FieldComponent(
                            f"young {age:.2f}",
                            lambda x, y, a=10.0**age, d=dt: geo.young_density(x, y, a, d),
                            self._split(age),
                        )
                    )
        return out

    # --- dust
    def screen_av_mag(self, x_kpc, y_kpc) -> np.ndarray:
        """The galaxy's dust screen A_V (mag) at disk positions (no foreground)."""
        return self.geometry.screen_av_mag(x_kpc, y_kpc)

    def smooth_attenuation(self, screen_av_mag: np.ndarray, band_index: int) -> np.ndarray:
        """Transmission of smooth field light in band ``band_index`` behind a screen of A_V:
        foreground × (1 − f + f 10^(−0.4 A_band)), f = dust_behind_fraction."""
        spec = self.geometry.spec
        ratio = self.extinction_ratio[band_index]
        f = spec.dust_behind_fraction
        screen = 10.0 ** (-0.4 * ratio * np.asarray(screen_av_mag))
        return 10.0 ** (-0.4 * ratio * spec.foreground_av_mag) * (1.0 - f + f * screen)

    # --- smooth light
    def smooth_counts(self, x_kpc, y_kpc, band_index: int) -> np.ndarray:
        """Count rate per pixel (counts/s) of the unresolved light at disk positions in one band,
        extinction included; shaped like ``x_kpc``."""
        x, y = np.asarray(x_kpc, float), np.asarray(y_kpc, float)
        per_pixel = self.geometry.pc2_per_pixel / self._cos_i  # face-on M☉/pc² -> M☉ per pixel
        total = np.zeros_like(x)
        for comp in self.components:
            rate = comp.split.smooth_counts_s_per_msun[band_index]
            if rate > 0:
                total += comp.density(x, y) * (per_pixel * rate)
        return total * self.smooth_attenuation(self.screen_av_mag(x, y), band_index)

    # --- resolved stars
    def draw_stars(
        self,
        block_x_px: np.ndarray,
        block_y_px: np.ndarray,
        block_px: int,
        block_x_kpc: np.ndarray,
        block_y_kpc: np.ndarray,
        to_world: Callable,
        to_disk: Callable,
        rng: np.random.Generator,
    ) -> FieldStars:
        """Bright field stars in square blocks of ``block_px`` pixels (of the reference grid).

        block_x_px, block_y_px: (k,) lower-left corners (0-based pixel coordinates of
        the pixel edge, i.e. centre − 0.5); block_x_kpc, block_y_kpc: (k,) the
        blocks' centres in the disk plane; to_world(x_px, y_px) -> (ra, dec) and
        to_disk(ra, dec) -> (x_kpc, y_kpc) for the drawn stars. Per block and
        component, a Poisson number with mean density × area × bright_per_msun.
        """
        area = block_px * block_px * self.geometry.pc2_per_pixel / self._cos_i
        xs, ys, counts = [], [], []
        for comp in self.components:
            split = comp.split
            if split.bright_per_msun == 0:
                continue
            mean = comp.density(block_x_kpc, block_y_kpc) * (area * split.bright_per_msun)
            n = rng.poisson(mean)
            total = int(n.sum())
            if total == 0:
                continue
            block = np.repeat(np.arange(len(n)), n)
            xs.append(block_x_px[block] + rng.random(total) * block_px)
            ys.append(block_y_px[block] + rng.random(total) * block_px)
            masses = split.draw_masses(total, rng)
            columns = [self.population.bands.index(b) for b in self.bands]
            counts.append(self.population.star_counts(split.log_age_yr, masses, 0.0)[:, columns])
        if not xs:
            return FieldStars.empty(len(self.bands))
        x, y, c = np.concatenate(xs), np.concatenate(ys), np.concatenate(counts)
        lit = c.sum(axis=1) > 0
        x, y, c = x[lit], y[lit], c[lit]
        ra, dec = to_world(x, y)
        xk, yk = to_disk(ra, dec)
        spec = self.geometry.spec
        behind = rng.random(len(x)) < spec.dust_behind_fraction
        av = spec.foreground_av_mag + behind * self.screen_av_mag(xk, yk)
        c = c * 10.0 ** (-0.4 * av[:, None] * self.extinction_ratio[None, :])
        return FieldStars(np.asarray(ra), np.asarray(dec), c)
