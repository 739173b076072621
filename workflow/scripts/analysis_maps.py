"""Rule spatial_maps: unpack, call the library, write."""

from starclusters.analysis.stage import make_spatial_maps
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_spatial_maps(
    snakemake.input.candidates,
    snakemake.input.band,
    snakemake.params.band,
    snakemake.params.analysis,
    snakemake.params.arms,
    snakemake.params.geometry,
    snakemake.params.distance_mpc,
    snakemake.output[0],
    arms_path=snakemake.input.get("arms"),
)
