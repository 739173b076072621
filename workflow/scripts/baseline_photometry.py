"""Rules baseline_photometry and validation_baseline_photometry: unpack, call, write."""

from starclusters.baseline.stage import make_baseline_photometry
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
bands = snakemake.params.bands
make_baseline_photometry(
    dict(zip(bands, snakemake.input.bands, strict=True)),
    snakemake.input.mask,
    dict(zip(bands, snakemake.input.psfs, strict=True)),
    list(snakemake.input.bank_tables),
    list(snakemake.input.bank_stamps),
    snakemake.params.photometry,
    snakemake.params.baseline,
    snakemake.params.seed,
    snakemake.output[0],
)
