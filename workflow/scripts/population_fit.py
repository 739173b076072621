"""Rule population_fit: unpack, call the library."""

from starclusters.analysis.stage import make_population_fit
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_population_fit(
    snakemake.input.candidates,
    snakemake.input.selection,
    snakemake.input.image,
    snakemake.input.artificial_metrics,
    snakemake.params.analysis,
    tuple(snakemake.params.log_mass_range_msun),
    tuple(snakemake.params.log_age_range_yr),
    tuple(snakemake.params.background_annulus_px),
    snakemake.params.radius_px,
    snakemake.params.injected,
    snakemake.wildcards.field,
    snakemake.output.table,
    snakemake.output.figure,
    truth_matched_path=snakemake.input.get("truth_matched"),
)
