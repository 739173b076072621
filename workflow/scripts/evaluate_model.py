"""Rule evaluate_model: unpack, call the library, write."""

from starclusters.io import write_table
from starclusters.logs import setup_torch_job
from starclusters.model.plots import (
    plot_calibration,
    plot_class_visibility,
    plot_parameter_recovery,
)
from starclusters.model.stage import evaluate_model

setup_torch_job(snakemake.log[0], snakemake.threads)
config = snakemake.params.config
table, metrics = evaluate_model(
    snakemake.input.model,
    list(snakemake.input.mocks),
    list(snakemake.input.backgrounds),
    list(snakemake.input.psfs),
    config,
    snakemake.params.seed,
    device=config["train"]["device"],
    star_group_paths=list(snakemake.input.star_groups),
)
write_table(snakemake.output.predictions, table)
write_table(snakemake.output.metrics, metrics)
plot_parameter_recovery(table, metrics, snakemake.output.parameters)
plot_class_visibility(table, metrics, snakemake.output.class_visibility)
plot_calibration(table, snakemake.output.calibration)
