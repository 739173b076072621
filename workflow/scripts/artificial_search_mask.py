"""Rule artificial_search_mask: unpack, call the library, write."""

from starclusters.artificial.stage import write_search_mask
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
write_search_mask(
    snakemake.input.mask, snakemake.input.grid, snakemake.params.radius_px, snakemake.output.mask
)
