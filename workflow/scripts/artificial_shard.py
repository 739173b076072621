"""Rule artificial_shard: unpack, call the library, write."""

from starclusters.artificial.stage import build_artificial_shard
from starclusters.io import write_cube, write_table
from starclusters.logs import setup_logging

setup_logging(snakemake.log[0])
stamps, table, header = build_artificial_shard(
    int(snakemake.wildcards.shard),
    snakemake.input.grid,
    snakemake.params.seed,
    snakemake.params.seed_offset,
    snakemake.input.isochrones,
    snakemake.input.extinction,
    list(snakemake.input.psfs),
    snakemake.params.config,
    layer=int(snakemake.wildcards.layer),
    draw=snakemake.params.draw,
    reference=snakemake.params.reference,
)
write_cube(snakemake.output.stamps, stamps, header)
write_table(
    snakemake.output.params,
    table,
    {"units": {"eff_a_arcsec": "arcsec", "mag_*": "Vega mag"}, "what": "artificial mocks"},
)
