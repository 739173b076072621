"""Rule artificial_inject: unpack, call the library, write."""

from starclusters.artificial.stage import inject_artificial
from starclusters.io import write_table
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
injected, meta = inject_artificial(
    list(snakemake.input.bands),
    snakemake.params.bands,
    snakemake.input.grid,
    list(snakemake.input.shards),
    list(snakemake.input.psfs),
    snakemake.params.pixel_scale_arcsec,
    snakemake.params.psf_oversampling,
    snakemake.params.seed,
    snakemake.params.seed_offset,
    list(snakemake.output.bands),
    layer=int(snakemake.wildcards.layer),
)
write_table(snakemake.output.injected, injected, meta)
