"""Rules baseline_catalog and validation_baseline_catalog: unpack, call, write."""

from starclusters.baseline.stage import make_baseline_catalog
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_baseline_catalog(
    snakemake.input.photometry,
    snakemake.wildcards.fit,
    snakemake.input.isochrones,
    snakemake.input.extinction,
    list(snakemake.input.bank_tables),
    snakemake.params.photometry,
    snakemake.params.bands,
    snakemake.params.baseline,
    snakemake.params.geometry,
    snakemake.params.seed,
    snakemake.output[0],
    mocks_config=snakemake.params.mocks,
    arms_path=snakemake.input.get("arms") or None,
)
