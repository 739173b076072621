"""Rule artificial_class_visibility: unpack, call the library, write."""

from starclusters.artificial.stage import make_class_visibility
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_class_visibility(
    snakemake.input.matches,
    snakemake.input.peaks,
    snakemake.input.candidates,
    snakemake.params.radii_px,
    snakemake.output[0],
)
