"""Rule population_figures: unpack, call the library, write."""

from starclusters.analysis.stage import make_population_figures
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_population_figures(
    snakemake.input.candidates,
    snakemake.params.analysis,
    snakemake.params.log_mass_hi_msun,
    snakemake.output.pairs,
    snakemake.output.histograms,
    snakemake.output.radial,
    snakemake.output.fits,
)
