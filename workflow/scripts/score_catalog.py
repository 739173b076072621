"""Rule score_catalog: unpack, call the library, write."""

from starclusters.logs import setup_logging
from starclusters.scorecard.stage import make_score, write_score

setup_logging(snakemake.log[0])
long, matched, meta = make_score(
    snakemake.input.truth,
    snakemake.input.catalog,
    snakemake.input.image,
    snakemake.input.mask,
    list(snakemake.input.benchmarks),
    snakemake.params.scorecard,
    snakemake.params.galaxy,
    snakemake.wildcards.method,
    snakemake.params.role,
)
write_score(long, matched, meta, snakemake.output.scores, snakemake.output.matched)
