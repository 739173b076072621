"""Rule artificial_grid: unpack, call the library, write."""

from starclusters.artificial.stage import make_grid
from starclusters.io import write_table
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
sites, meta = make_grid(
    snakemake.input.mask,
    snakemake.params.window_px,
    snakemake.params.spacing_px,
    snakemake.params.n_shards,
    layer=int(snakemake.wildcards.layer),
    config_seed=snakemake.params.seed,
    seed_offset=snakemake.params.seed_offset,
)
write_table(snakemake.output.grid, sites, meta)
