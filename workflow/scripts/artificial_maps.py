"""Rule artificial_maps: the detection stage's own merge of the injected mosaic's tiles."""

from starclusters.detect.stage import merge_maps
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
merge_maps(
    list(snakemake.input.tiles),
    snakemake.input.plan,
    snakemake.input.mask,
    snakemake.output.maps,
    tile_px=snakemake.params.tile_px,
)
