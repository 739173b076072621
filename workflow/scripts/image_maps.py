"""Rules validation_maps and artificial_maps (maps_jobs: per_layer): the maps of a whole
image in one job. Unpack, call the library, write."""

from starclusters.detect.settings import DetectSettings
from starclusters.detect.stage import detect_images
from starclusters.logs import setup_torch_job

setup_torch_job(snakemake.log[0], snakemake.threads)
config = snakemake.params.config
detect_images(
    snakemake.input.model,
    list(snakemake.input.bands),
    snakemake.output.maps,
    mask_path=snakemake.input.mask,
    bands=config["bands"],
    settings=DetectSettings.from_config(config["detect"]),
)
