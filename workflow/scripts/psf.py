"""Rule psf: unpack, call the library, write."""

from starclusters.logs import setup_logging
from starclusters.mocks.psf import write_psf
from starclusters.mocks.stage import make_psf

setup_logging(snakemake.log[0])
p = snakemake.params
epsf, fraction, source = make_psf(
    snakemake.wildcards.band, p.psf, p.filter_curve, p.pixel_scale_arcsec
)
write_psf(
    snakemake.output[0],
    epsf,
    band=snakemake.wildcards.band,
    native_scale_arcsec=p.pixel_scale_arcsec,
    oversampling=p.psf["oversampling"],
    source=source,
    enclosed_fraction=fraction,
)
