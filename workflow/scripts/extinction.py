"""Rule extinction: unpack, call the library, write."""

from starclusters.io import write_table
from starclusters.logs import setup_logging
from starclusters.photometry import build_extinction_table

setup_logging(snakemake.log[0])
table, meta = build_extinction_table(snakemake.params.photometry, snakemake.params.bands)
write_table(snakemake.output[0], table, meta)
