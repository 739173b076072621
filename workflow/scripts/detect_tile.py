"""Rules detect_tile and artificial_tile: unpack, call the library, write."""

from starclusters.detect.stage import detect_tile
from starclusters.logs import setup_torch_job

setup_torch_job(snakemake.log[0], snakemake.threads)
detect_tile(
    list(snakemake.input.bands),
    snakemake.input.mask,
    snakemake.input.model,
    snakemake.input.plan,
    int(snakemake.wildcards.t),
    snakemake.output.tile,
    snakemake.params.config,
)
