"""Rule diagnosis: unpack, call the library, write."""

from starclusters.logs import setup_logging
from starclusters.scorecard.stage import make_diagnosis_summary

setup_logging(snakemake.log[0])
make_diagnosis_summary(
    list(snakemake.input.diagnosis),
    list(snakemake.input.false),
    snakemake.output.table,
    snakemake.output.figure,
)
