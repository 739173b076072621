"""Rule train: unpack, call the library, write."""

import torch

from starclusters.io import write_table
from starclusters.logs import setup_logging
from starclusters.model.stage import plot_history, train_model

setup_logging(snakemake.log[0])
torch.set_num_threads(snakemake.threads)
config = snakemake.params.config
history = train_model(
    list(snakemake.input.mocks),
    list(snakemake.input.backgrounds),
    list(snakemake.input.psfs),
    config,
    snakemake.params.seed,
    snakemake.params.checkpoint,
    snakemake.output.model,
    device=config["train"]["device"],
)
write_table(snakemake.output.history, history)
plot_history(history, snakemake.output.plot)
