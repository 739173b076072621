"""Rule arm_profiles: unpack, call the library, write."""

from starclusters.analysis.stage import make_arm_profiles
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
make_arm_profiles(
    snakemake.input.candidates,
    snakemake.params.analysis,
    snakemake.params.arms,
    snakemake.params.geometry,
    snakemake.params.distance_mpc,
    snakemake.params.seed,
    snakemake.output.figure,
    snakemake.output.profiles,
    snakemake.output.peaks,
    arms_path=snakemake.input.get("arms"),
    truth_path=snakemake.input.get("truth"),
    artificial_path=snakemake.input.get("artificial"),
)
