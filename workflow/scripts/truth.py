"""Rule truth: unpack, call the library, write."""

from starclusters.io import write_table
from starclusters.logs import setup_logging
from starclusters.synthetic.stage import make_truth

setup_logging(snakemake.log[0])
truth = make_truth(
    snakemake.input.raw,
    list(snakemake.input.bands),
    snakemake.input.isochrones,
    snakemake.input.extinction,
    list(snakemake.input.psfs),
    snakemake.params.config,
)
write_table(
    snakemake.output[0],
    truth,
    {
        "positions": "x_px, y_px: 0-based pixels of the prepared mosaic grid",
        "visibility": "thesis eq. 3.2, as compose() defines it; max over bands",
    },
)
