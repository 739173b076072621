"""Rule detection_gallery: unpack, call the library, write."""

from starclusters.detect.candidates_stage import make_gallery
from starclusters.logs import setup_torch_job

setup_torch_job(snakemake.log[0], snakemake.threads)
make_gallery(
    snakemake.input.candidates,
    snakemake.input.model,
    dict(zip(snakemake.params.bands, snakemake.input.bands, strict=True)),
    snakemake.params.detect,
    snakemake.params.pixel_scale_arcsec,
    snakemake.params.zeropoints_mag,
    snakemake.output[0],
    truth_path=snakemake.input.get("truth"),
)
