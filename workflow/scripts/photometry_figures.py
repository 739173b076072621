"""Rule photometry_figures: unpack, call the library, write."""

import numpy as np

from starclusters.io import read_table
from starclusters.logs import setup_logging
from starclusters.photometry import population_from_config
from starclusters.photometry.plots import plot_cluster_colours, plot_isochrones

setup_logging(snakemake.log[0])
population = population_from_config(
    read_table(snakemake.input.isochrones),
    read_table(snakemake.input.extinction),
    snakemake.params.photometry,
    snakemake.params.bands,
)
plot_isochrones(population, snakemake.output.cmd)
plot_cluster_colours(
    population,
    snakemake.params.photometry["magnitude_limits"],
    np.random.default_rng(snakemake.params.seed),
    snakemake.output.colours,
)
