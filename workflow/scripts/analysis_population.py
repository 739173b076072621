"""Rule population_figures: unpack, call the library, write."""

from starclusters.analysis.stage import make_population_figures
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_population_figures(
    snakemake.input.candidates,
    snakemake.params.analysis,
    tuple(snakemake.params.log_mass_range_msun),
    tuple(snakemake.params.log_age_range_yr),
    snakemake.output.pairs,
    snakemake.output.histograms,
    snakemake.output.radial,
    snakemake.output.fits,
    selection_path=snakemake.input.get("selection"),
    image_path=snakemake.input.get("image"),
    background_annulus_px=tuple(snakemake.params.background_annulus_px),
)
