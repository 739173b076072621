"""Rule robustness: unpack, call the library, write."""

from starclusters.logs import setup_logging
from starclusters.scorecard.stage import make_robustness

setup_logging(snakemake.log[0])
make_robustness(
    list(snakemake.input.scores),
    list(snakemake.input.matched),
    snakemake.params.factors,
    snakemake.output.table,
    snakemake.output.figure,
)
