"""Rules detect_tile and artificial_tile: unpack, call the library, write."""

from starclusters.detect.stage import detect_tile
from starclusters.logs import setup_logging, tune_allocator, use_threads

setup_logging(snakemake.log[0])
tune_allocator()
use_threads(snakemake.threads)
detect_tile(
    list(snakemake.input.bands),
    snakemake.input.mask,
    snakemake.input.model,
    snakemake.input.plan,
    int(snakemake.wildcards.t),
    snakemake.output.tile,
    snakemake.params.config,
)
