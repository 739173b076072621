"""Rule detect_plan: unpack, call the library, write."""

from starclusters.detect.stage import write_plan
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
write_plan(snakemake.input.mask, snakemake.params.tile_px, snakemake.output.plan)
