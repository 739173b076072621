"""Rules find_peaks, validation_peaks and artificial_peaks: unpack, call the library, write."""

from starclusters.detect.candidates_stage import make_catalog, write_catalog
from starclusters.logs import setup_torch_job

setup_torch_job(snakemake.log[0], snakemake.threads)
peaks, candidates, meta = make_catalog(
    snakemake.input.maps,
    snakemake.params.detect,
    snakemake.params.geometry,
    snakemake.params.distance_mpc,
    arms_path=snakemake.input.get("arms"),
    model_path=snakemake.input.get("model"),
    band_paths=dict(zip(snakemake.config["bands"], snakemake.input.get("bands", []), strict=False)),
    test_metrics_path=snakemake.input.get("test_metrics"),
    mask_path=snakemake.input.get("mask"),
)
write_catalog(
    peaks,
    candidates,
    meta,
    snakemake.output.peaks,
    snakemake.output.candidates,
    snakemake.output.regions,
)
