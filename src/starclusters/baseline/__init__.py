"""The classical peer: what cluster surveys do without a CNN (LEGUS, Adamo et al. 2017,
ApJ 841, 131; PHANGS-HST, Thilker et al. 2022, MNRAS 509, 4094; Cook et al. 2019,
MNRAS 484, 4897), on the same mosaic, PSFs and mocks as the network.

- :mod:`.settings`: :class:`BaselineSettings`, the ``baseline`` config section;
- :mod:`.detection`: sky, noise-weighted detection image, matched filter, segments,
  peak deblending, windowed centroids;
- :mod:`.aperture`: aperture photometry with an annulus sky, errors, magnitudes, and the
  concentration index CI = m(1 px) − m(3 px);
- :mod:`.apcorr`: the CI → (r_h, aperture correction) model from the ePSF ⊗ EFF profiles;
- :mod:`.classify`: the CI cut between stars and clusters, calibrated on the PSF and mocks;
- :mod:`.sedfit`: χ² fit on the project's SSP grid (age × A_V, mass analytic);
- :mod:`.slug`: kernel-density fit on a library of IMF-sampled clusters (cluster_slug);
- :mod:`.catalog`: :func:`make_photometry` and :func:`fit_catalog`, what the workflow calls.

No Snakemake here; the functions take paths or arrays and return tables.
"""

from starclusters.baseline.catalog import fit_catalog, make_photometry
from starclusters.baseline.settings import BaselineSettings

__all__ = ["BaselineSettings", "fit_catalog", "make_photometry"]
