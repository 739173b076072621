"""Rules detect_tile and artificial_tile: unpack, call the library, write."""

import torch

from starclusters.detect.stage import detect_tile
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
detect_tile(
    list(snakemake.input.bands),
    snakemake.input.mask,
    snakemake.input.model,
    snakemake.input.plan,
    int(snakemake.wildcards.t),
    snakemake.output.tile,
    snakemake.params.config,
)
