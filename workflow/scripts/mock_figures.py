"""Rule mock_figures: unpack, call the library, write."""

from starclusters.logs import setup_logging
from starclusters.mocks.stage import bank_figures

setup_logging(snakemake.log[0])
bank_figures(
    snakemake.input.isochrones,
    snakemake.input.extinction,
    list(snakemake.input.psfs),
    list(snakemake.input.tables),
    snakemake.params.config,
    snakemake.params.seed,
    snakemake.output.grid,
    snakemake.output.colours,
    snakemake.input.background,
    snakemake.input.background_table,
)
