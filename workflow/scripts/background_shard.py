"""Rule background_shard: unpack, call the library, write."""

from starclusters.backgrounds.stage import build_background_shard
from starclusters.io import write_cube, write_table
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
cube, table, header = build_background_shard(
    list(snakemake.input.bands),
    snakemake.input.mask,
    snakemake.params.bands,
    snakemake.params.window_px,
    snakemake.params.backgrounds,
    snakemake.params.seed,
    int(snakemake.wildcards.shard),
)
write_cube(snakemake.output.cutouts, cube, header)
write_table(
    snakemake.output.table,
    table,
    {"units": {"median_counts_s_*": "counts/s"}, "exptime_s": table.attrs["exptime_s"]},
)
