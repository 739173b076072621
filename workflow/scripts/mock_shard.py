"""Rule mock_shard: unpack, call the library, write."""

from starclusters.io import write_cube, write_table
from starclusters.logs import setup_logging
from starclusters.mocks.stage import build_mock_shard

setup_logging(snakemake.log[0])
stamps, table, header = build_mock_shard(
    int(snakemake.wildcards.shard),
    snakemake.params.seed,
    snakemake.input.isochrones,
    snakemake.input.extinction,
    list(snakemake.input.psfs),
    snakemake.params.config,
)
write_cube(snakemake.output.stamps, stamps, header)
write_table(
    snakemake.output.params, table, {"units": {"eff_a_arcsec": "arcsec", "mag_*": "Vega mag"}}
)
