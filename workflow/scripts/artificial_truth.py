"""Rule artificial_truth: unpack, call the library, write."""

from starclusters.artificial.stage import make_truth
from starclusters.io import write_table
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
truth, meta = make_truth(
    snakemake.input.injected,
    snakemake.params.arms,
    snakemake.params.geometry,
    snakemake.params.distance_mpc,
    arms_path=snakemake.input.get("arms"),
)
write_table(snakemake.output.truth, truth, meta)
