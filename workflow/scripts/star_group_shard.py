"""Rule star_group_shard: unpack, call the library, write."""

from starclusters.io import write_cube, write_table
from starclusters.logs import setup_logging
from starclusters.mocks.stage import build_star_groups

setup_logging(snakemake.log[0])
stamps, table, header = build_star_groups(
    int(snakemake.wildcards.shard),
    snakemake.params.seed,
    snakemake.input.isochrones,
    snakemake.input.extinction,
    list(snakemake.input.psfs),
    snakemake.params.config,
)
write_cube(snakemake.output.stamps, stamps, header)
write_table(
    snakemake.output.params,
    table,
    {"units": {"av_mag": "mag", "max_offset_arcsec": "arcsec", "mag_*": "Vega mag"}},
)
