"""Rule truth_match: unpack, call the library, write."""

from starclusters.detect.candidates_stage import make_truth_match
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_truth_match(
    snakemake.input.truth,
    snakemake.input.candidates,
    snakemake.input.peaks,
    snakemake.params.detect,
    snakemake.output.table,
    snakemake.output.figure,
)
