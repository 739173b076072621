"""Rule validation_maps: unpack, call the library, write."""

from starclusters.detect.settings import DetectSettings
from starclusters.detect.stage import detect_images
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
config = snakemake.params.config
detect_images(
    snakemake.input.model,
    list(snakemake.input.bands),
    snakemake.output.maps,
    mask_path=snakemake.input.mask,
    bands=config["bands"],
    settings=DetectSettings.from_config(config["detect"]),
)
