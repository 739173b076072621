"""Rule catalog_comparison: unpack, call the library, write."""

from starclusters.analysis.stage import make_comparison
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_comparison(
    snakemake.input.candidates,
    snakemake.params.comparison,
    snakemake.params.distance_mpc,
    snakemake.output.table,
    snakemake.output.summary,
    snakemake.output.figure,
    truth_path=snakemake.input.get("truth"),
    catalog_path=snakemake.input.get("catalog"),
)
