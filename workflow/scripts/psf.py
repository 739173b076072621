"""Rules psf and observed_psf: unpack, call the library, write."""

from starclusters.logs import setup_logging
from starclusters.mocks.psf import write_psf
from starclusters.mocks.stage import make_psf

setup_logging(snakemake.log[0])
p = snakemake.params
# observed_psf (a synthetic galaxy's own PSF) passes halo and fwhm_scale; psf takes them
# from the psf section
epsf, fraction, source = make_psf(
    snakemake.wildcards.band,
    p.psf,
    p.filter_curve,
    p.pixel_scale_arcsec,
    halo=getattr(p, "halo", None),
    fwhm_scale=getattr(p, "fwhm_scale", 1.0),
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
