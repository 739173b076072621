"""The Kroupa (2001) initial mass function and sampling of stellar masses for a cluster.

xi(m) dm ∝ m^-alpha dm, with alpha = 0.3 (m < 0.08 Msun), 1.3 (0.08–0.5), 2.3 (> 0.5),
continuous at the break masses, truncated to [mass_min_msun, mass_max_msun].
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from starclusters.errors import ConfigError

#: Kroupa (2001) eq. 2: break masses (Msun) and slopes alpha (xi ∝ m^-alpha).
KROUPA_BREAKS_MSUN = (0.08, 0.5)
KROUPA_SLOPES = (0.3, 1.3, 2.3)


@dataclass(frozen=True)
class BrokenPowerLawIMF:
    """A continuous broken power-law IMF on [mass_min_msun, mass_max_msun].

    breaks_msun: the interior break masses; slopes: alpha for each of the
    len(breaks) + 1 segments (xi ∝ m^-alpha).
    """

    mass_min_msun: float = 0.08
    mass_max_msun: float = 100.0
    breaks_msun: tuple[float, ...] = KROUPA_BREAKS_MSUN
    slopes: tuple[float, ...] = KROUPA_SLOPES

    def __post_init__(self):
        if not 0 < self.mass_min_msun < self.mass_max_msun:
            raise ConfigError(
                "photometry.imf: need 0 < mass_min_msun < mass_max_msun, got "
                f"{self.mass_min_msun} and {self.mass_max_msun}"
            )
        if len(self.slopes) != len(self.breaks_msun) + 1:
            raise ConfigError("photometry.imf: need one more slope than break masses")

    def _segments(self) -> list[tuple[float, float, float, float]]:
        """(lo, hi, alpha, coefficient) per segment inside the mass range; xi = c m^-alpha."""
        edges = (0.0, *self.breaks_msun, np.inf)
        coeff, out = 1.0, []
        for k, alpha in enumerate(self.slopes):
            if k > 0:  # continuity at the break edges[k]
                coeff *= edges[k] ** (alpha - self.slopes[k - 1])
            lo, hi = max(edges[k], self.mass_min_msun), min(edges[k + 1], self.mass_max_msun)
            if lo < hi:
                out.append((lo, hi, alpha, coeff))
        return out

    @staticmethod
    def _power_integral(lo, hi, power):
        """∫_lo^hi m^power dm."""
        if np.isclose(power, -1.0):
            return np.log(hi / lo)
        return (hi ** (power + 1) - lo ** (power + 1)) / (power + 1)

    def number_between(self, lo_msun, hi_msun) -> np.ndarray:
        """Unnormalised ∫ xi(m) dm over [lo, hi] (arrays broadcast); see :meth:`mean_mass_msun`."""
        lo, hi = np.broadcast_arrays(np.asarray(lo_msun, float), np.asarray(hi_msun, float))
        total = np.zeros(lo.shape)
        for s_lo, s_hi, alpha, c in self._segments():
            a, b = np.clip(lo, s_lo, s_hi), np.clip(hi, s_lo, s_hi)
            total += c * self._power_integral(a, np.maximum(a, b), -alpha)
        return total

    def mass_between(self, lo_msun, hi_msun) -> np.ndarray:
        """Unnormalised ∫ m xi(m) dm over [lo, hi] (arrays broadcast)."""
        lo, hi = np.broadcast_arrays(np.asarray(lo_msun, float), np.asarray(hi_msun, float))
        total = np.zeros(lo.shape)
        for s_lo, s_hi, alpha, c in self._segments():
            a, b = np.clip(lo, s_lo, s_hi), np.clip(hi, s_lo, s_hi)
            total += c * self._power_integral(a, np.maximum(a, b), 1.0 - alpha)
        return total

    def mean_mass_msun(self) -> float:
        """Mean stellar mass over the whole range, Msun."""
        lo, hi = self.mass_min_msun, self.mass_max_msun
        return float(self.mass_between(lo, hi) / self.number_between(lo, hi))

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` independent stellar masses, Msun, by inverting the piecewise CDF: (n,)."""
        segments = self._segments()
        weights = np.array([c * self._power_integral(lo, hi, -a) for lo, hi, a, c in segments])
        which = rng.choice(len(segments), size=n, p=weights / weights.sum())
        u = rng.random(n)
        masses = np.empty(n)
        for k, (lo, hi, alpha, _) in enumerate(segments):
            sel = which == k
            p = 1.0 - alpha
            if np.isclose(p, 0.0):
                masses[sel] = lo * (hi / lo) ** u[sel]
            else:
                masses[sel] = (lo**p + u[sel] * (hi**p - lo**p)) ** (1.0 / p)
        return masses


def kroupa_imf(mass_min_msun: float = 0.08, mass_max_msun: float = 100.0) -> BrokenPowerLawIMF:
    """The Kroupa (2001) IMF on [mass_min_msun, mass_max_msun]."""
    return BrokenPowerLawIMF(mass_min_msun, mass_max_msun)


def sample_cluster_masses(
    cluster_mass_msun: float, imf: BrokenPowerLawIMF, rng: np.random.Generator
) -> np.ndarray:
    """Initial masses of the stars of a cluster of initial mass ``cluster_mass_msun``, Msun.

    Stars are drawn one after another until their total reaches the cluster
    mass; the star that crosses it is kept only if that leaves the total closer
    to the target ("stop-nearest", Haas & Anders 2010), so the total mass is
    unbiased and within half a star of the target. Returns (n_stars,) in draw order.
    """
    if not cluster_mass_msun > 0:
        raise ValueError(f"cluster mass must be positive, got {cluster_mass_msun}")
    expected = cluster_mass_msun / imf.mean_mass_msun()
    chunks, total = [], 0.0
    while True:
        draw = imf.sample(int(1.1 * expected) + 16, rng)
        cumulative = total + np.cumsum(draw)
        k = int(np.searchsorted(cumulative, cluster_mass_msun))
        if k < len(draw):
            before = cumulative[k - 1] if k > 0 else total
            keep = k + 1 if cumulative[k] - cluster_mass_msun < cluster_mass_msun - before else k
            chunks.append(draw[:keep])
            return np.concatenate(chunks)
        chunks.append(draw)
        total = cumulative[-1]
