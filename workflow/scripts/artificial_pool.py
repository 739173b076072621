"""Rule artificial_pool: unpack, call the library, write."""

from starclusters.artificial.stage import pool_matches
from starclusters.io import write_table
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
matches, meta = pool_matches(
    list(snakemake.input.matches),
    list(snakemake.input.bands),
    snakemake.params.background_annulus_px,
    snakemake.params.arms,
    snakemake.params.geometry,
    snakemake.params.distance_mpc,
    arms_path=snakemake.input.get("arms"),
)
write_table(snakemake.output.matches, matches, meta)
