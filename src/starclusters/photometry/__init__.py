"""Stellar photometry stage (thesis §2.1, §3.1.2): isochrones in the HST bands on the
configured age grid, extinction per band, the Kroupa IMF and cluster star counts.

``build_isochrone_table`` and ``build_extinction_table`` make the stage's two
tables from the ``photometry`` config section; ``StellarPopulation`` turns them
into stars of clusters for the later stages.
"""

from starclusters.photometry.extinction import ExtinctionGrid, extinction_table
from starclusters.photometry.imf import BrokenPowerLawIMF, kroupa_imf, sample_cluster_masses
from starclusters.photometry.population import (
    ClusterStars,
    StellarPopulation,
    counts_per_second,
    distance_modulus,
    magnitude_from_counts,
    passes_magnitude_cuts,
)
from starclusters.photometry.stage import (
    build_extinction_table,
    build_isochrone_table,
    population_from_config,
)

#: Version of the photometric model (filter curves, SED reconstruction): part of the
#: photometry rules' params, so that results made with an older model are rebuilt.
#: Change it whenever a change of the code changes the tables' numbers.
MODEL_VERSION = (
    "2026-12-06b: total-throughput HST curves, Balmer-jump SED reconstruction, "
    "PARSEC UBVRI read with Vega = 0.03"
)

__all__ = [
    "MODEL_VERSION",
    "ExtinctionGrid",
    "BrokenPowerLawIMF",
    "ClusterStars",
    "StellarPopulation",
    "build_extinction_table",
    "build_isochrone_table",
    "counts_per_second",
    "distance_modulus",
    "extinction_table",
    "kroupa_imf",
    "magnitude_from_counts",
    "passes_magnitude_cuts",
    "population_from_config",
    "sample_cluster_masses",
]
