"""Rule star_group_figure: unpack, call the library."""

from starclusters.logs import setup_logging
from starclusters.mocks.stage import star_group_figure

setup_logging(snakemake.log[0])
star_group_figure(
    snakemake.input.stamps,
    snakemake.input.table,
    list(snakemake.input.bank),
    snakemake.input.background,
    snakemake.input.background_table,
    snakemake.params.bands,
    snakemake.params.seed,
    snakemake.output[0],
)
