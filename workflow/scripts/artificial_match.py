"""Rule artificial_match: unpack, call the library, write."""

from starclusters.artificial.stage import make_matches
from starclusters.io import write_table
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
matches, meta = make_matches(
    snakemake.input.injected,
    snakemake.input.candidates,
    snakemake.input.peaks,
    snakemake.params.radii_px,
)
write_table(snakemake.output.matches, matches, meta)
