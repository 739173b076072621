"""Rule merge_maps: unpack, call the library, write."""

from starclusters.detect.map_plots import plot_maps
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
plot_maps(snakemake.output.maps, snakemake.output.figure)
