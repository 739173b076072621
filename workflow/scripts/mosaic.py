"""Rule mosaic: unpack, call the library, write."""

from starclusters.logs import setup_logging
from starclusters.mosaic.stage import make_mosaic

setup_logging(snakemake.log[0])
bands = snakemake.params.bands
make_mosaic(
    {band: snakemake.input[f"raw_{band}"] for band in bands},
    dict(zip(bands, snakemake.output.bands, strict=True)),
    snakemake.output.mask,
    snakemake.params.pixel_scale_arcsec,
    snakemake.params.mosaic,
)
