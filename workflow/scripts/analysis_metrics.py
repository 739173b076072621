"""Rule analysis_metrics: unpack, call the library, write."""

from starclusters.analysis.stage import make_metrics
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_metrics(
    snakemake.input.mass_function,
    snakemake.input.arm_peaks,
    snakemake.input.candidates,
    snakemake.params.analysis,
    snakemake.params.log_mass_hi_msun,
    snakemake.params.log_age_grid_yr,
    snakemake.params.seed,
    snakemake.output[0],
    truth_path=snakemake.input.get("truth"),
    arms_path=snakemake.input.get("arms"),
    comparison_path=snakemake.input.get("comparison"),
    population_fit_paths=list(snakemake.input.population_fits),
)
