"""Rule artificial_selection: unpack, call the library."""

from starclusters.artificial.stage import make_selection
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_selection(
    snakemake.input.matches,
    snakemake.params.radius_px,
    snakemake.params.seed,
    snakemake.output.selection,
    snakemake.output.calibration,
    snakemake.output.calibration_png,
    snakemake.output.contours_png,
    n_threads=snakemake.threads,
)
