"""Rule download_band: unpack, call the library."""

from starclusters.logs import setup_logging
from starclusters.mosaic.download import download

setup_logging(snakemake.log[0])
download(snakemake.params.url, snakemake.output[0], sha256=snakemake.params.sha256)
