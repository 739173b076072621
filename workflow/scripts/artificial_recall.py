"""Rule artificial_recall: unpack, call the library, write."""

from starclusters.artificial.stage import make_recall
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_recall(
    snakemake.input.matches,
    snakemake.params.artificial,
    snakemake.output.recall,
    snakemake.output.metrics,
    snakemake.output.recall_map,
    snakemake.output.recall_parameters,
    bank_cut=snakemake.params.bank_cut,
)
