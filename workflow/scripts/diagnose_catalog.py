"""Rule diagnose_catalog: unpack, call the library, write."""

from starclusters.logs import setup_logging
from starclusters.scorecard.stage import make_diagnosis, write_diagnosis

setup_logging(snakemake.log[0])
diagnosis, false, meta = make_diagnosis(
    snakemake.input.truth,
    snakemake.input.contaminants,
    snakemake.input.mask,
    snakemake.input.maps,
    snakemake.input.peaks,
    snakemake.input.candidates,
    dict(zip(snakemake.params.bands, snakemake.input.bands, strict=True)),
    snakemake.params.scorecard,
    snakemake.params.detect,
    snakemake.params.galaxy,
    snakemake.params.role,
)
write_diagnosis(diagnosis, false, meta, snakemake.output.diagnosis, snakemake.output.false)
