"""Rule synthetic_galaxy: unpack, call the library, write."""

from starclusters.logs import setup_logging
from starclusters.synthetic.stage import make_synthetic_galaxy

setup_logging(snakemake.log[0])
config = snakemake.params.config
make_synthetic_galaxy(
    snakemake.input.isochrones,
    snakemake.input.extinction,
    list(snakemake.input.psfs),
    config,
    snakemake.params.seed,
    dict(zip(config["bands"], snakemake.output.bands, strict=True)),
    snakemake.output.truth,
    snakemake.output.arms,
    snakemake.output.contaminants,
    snakemake.output.preview,
    snakemake.output.zoom,
)
