"""Settings of the classical peer (the ``baseline`` config section), with their sources.

Every number below is either taken from the classical cluster surveys this peer imitates,
or chosen here and measured (``docs`` numbers are in :mod:`starclusters.baseline`):

* LEGUS: Adamo et al. (2017, ApJ 841, 131), §3 — WFC3/UVIS at 0.04″/px like this
  project: photometry in a 4 px radius aperture, sky in an annulus from 7 px (1 px wide
  in LEGUS; 2 px here for a less noisy median), concentration index CI = m(1 px) − m(3 px)
  in V, photometric error ≤ 0.3 mag in every band fitted, SED fit with errors floored.
* PHANGS-HST: Thilker et al. (2022, MNRAS 509, 4094) — the same CI and apertures, CI cut
  calibrated per galaxy on the PSF and on synthetic clusters.
* SExtractor: Bertin & Arnouts (1996, A&AS 117, 393) defaults DETECT_MINAREA 5,
  DEBLEND_NTHRESH 32 and DEBLEND_MINCONT 0.005 (its manual's default.sex); photutils
  3.0 ``deblend_sources`` defaults n_levels 32, contrast 0.001; windowed
  centroids (XWIN) with σ = d50 / 2.355, d50 the half-light diameter (SExtractor manual).
* cluster_slug: Krumholz et al. (2015, MNRAS 452, 1447) — kernel density over a library
  of stochastically sampled clusters, bandwidth 0.1 mag (their §2.2 default h).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass

from starclusters.errors import ConfigError
from starclusters.sections import dataclass_from_config, is_integer

CONFIG_KEY = "baseline"
#: Rules that set the CI cut from the calibration (see :mod:`starclusters.baseline.classify`).
CI_CUT_RULES = ("youden", "star_percentile")
#: SED-fit methods of :func:`starclusters.baseline.catalog.fit_catalog`.
FIT_METHODS = ("grid", "library")


@dataclass(frozen=True)
class BaselineSettings:
    """Every tunable of the classical peer; units in the names, sources in the module docstring.

    Detection (:mod:`.detection`)
      detection_bands: bands summed into the detection image (empty: all);
      detection_sigma: threshold of the matched-filter S/N image, in its own noise units
      (chosen 4: measured on 1024² px of white noise in 3 bands, 0 false sources at 4, 20
      at 3); npixels: least connected pixels of a segment and of a deblended source
      (SExtractor's DETECT_MINAREA 5); smooth_fwhm_px: FWHM of the Gaussian matched
      filter, px (chosen 2 px ≈ the ePSF FWHM 0.068–0.080″ = 1.7–2.0 px);
      deblend_nlevels: thresholds of photutils' deblend_sources (SExtractor's
      DEBLEND_NTHRESH 32); deblend_contrast: least share of a segment's summed S a branch
      must hold to be a source of its own (photutils' default 0.001, the lower of the
      two library defaults; SExtractor's DEBLEND_MINCONT is 0.005. The share is of the
      whole segment, and on the synthetic M83 the arm and centre blends hold ~10⁶ summed
      S against ~60 for a typical single-peak segment, so the lower one; measured there:
      6,741 sources at 0.005, 7,000 at 0.001, and 7,034 at 0 (every peak split));
      background_box_px: mesh of photutils Background2D, px (chosen 64 px = 2.6″, 7× the
      sky annulus' radius, so that clusters do not pull the sky up). The CI calibration
      (:mod:`.classify`) segments its windows with the same detection_sigma, npixels and
      deblending.
    Photometry (:mod:`.aperture`)
      aperture_radius_px: 4 (LEGUS); sky_annulus_px: (inner, outer) radii, px (LEGUS 7–8,
      here 7–9); ci_radii_px: (1, 3) (LEGUS); ci_band: band of the CI (LEGUS V; F438W is
      the nearest here); max_mag_err: largest error in every band of a cluster (LEGUS
      0.3 mag); sky_clip_sigma: σ-clipping of the annulus (3σ, photutils' default).
    Aperture correction (:mod:`.apcorr`)
      eff_gamma: EFF γ of the CI → r_h and aperture-correction model (chosen 4.0, the
      middle of the bank's log-uniform γ range 2.05–8, √(2.05·8) = 4.05; effect
      measured in :mod:`.apcorr`); eff_truncation_arcsec: the mocks' truncation (2.5″);
      apcorr_rh_max_arcsec: largest r_h of the model grid (the bank's 0.4″; the CI
      saturates beyond); apcorr_n_rh: r_h grid nodes; apcorr_phases: sub-pixel centre offsets per
      axis the model averages over.
    CI cut (:mod:`.classify`)
      ci_cut_rule: "youden" (maximise TPR(mocks) − FPR(stars)) or "star_percentile"
      (the ci_star_percentile-th percentile of the stars' CI, default 99); ci_cut_mag: a
      fixed cut instead of the calibration (null: calibrate); calibration_n: stars and
      mocks (each) composed for the calibration.
    SED fits (:mod:`.sedfit`, :mod:`.slug`)
      min_mag_err: error floor added in quadrature, mag (0.05: the LEGUS/Adamo et al.
      2017 floor for model and calibration uncertainties); log_mass_msun_range: prior
      on the grid fit's analytic mass (the bank's 3.5–5.5 widened to 2.0–7.0 so that
      it rarely binds); library_bandwidth_mag: cluster_slug kernel h (0.1 mag);
      library_extra: IMF-sampled clusters drawn in addition to the bank's (default 0: the
      bank alone. Measured: 7.2 ms per kept cluster on one core, 115 s for 16,000; on the
      synthetic M83's 1,700 CI-selected sources it raised the median n_eff from 2.6 to 3.7
      only, as most of them are fainter than the bank's magnitude cuts and lie outside
      any such library).
    """

    detection_bands: tuple[str, ...] = ()
    detection_sigma: float = 4.0
    npixels: int = 5
    smooth_fwhm_px: float = 2.0
    deblend_nlevels: int = 32
    deblend_contrast: float = 0.001
    background_box_px: int = 64
    aperture_radius_px: float = 4.0
    sky_annulus_px: tuple[float, float] = (7.0, 9.0)
    ci_radii_px: tuple[float, float] = (1.0, 3.0)
    ci_band: str = "F438W"
    max_mag_err: float = 0.3
    sky_clip_sigma: float = 3.0
    eff_gamma: float = 4.0
    eff_truncation_arcsec: float = 2.5
    apcorr_rh_max_arcsec: float = 0.4
    apcorr_n_rh: int = 24
    apcorr_phases: int = 3
    ci_cut_rule: str = "youden"
    ci_cut_mag: float | None = None
    ci_star_percentile: float = 99.0
    calibration_n: int = 400
    min_mag_err: float = 0.05
    log_mass_msun_range: tuple[float, float] = (2.0, 7.0)
    library_bandwidth_mag: float = 0.1
    library_extra: int = 0

    def __post_init__(self):
        self.check()

    def _bad(self, key: str, why: str):
        raise ConfigError(f"{CONFIG_KEY}.{key}: {why}, got {getattr(self, key)!r}")

    def check(self) -> None:
        """ConfigError naming ``baseline.<key>`` for any value out of its range."""
        positive = (
            "detection_sigma",
            "smooth_fwhm_px",
            "aperture_radius_px",
            "sky_clip_sigma",
            "eff_truncation_arcsec",
            "apcorr_rh_max_arcsec",
            "max_mag_err",
            "library_bandwidth_mag",
        )
        for key in positive:
            value = getattr(self, key)
            if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
                self._bad(key, "must be a positive number")
        for key in ("npixels", "deblend_nlevels", "background_box_px", "apcorr_phases"):
            value = getattr(self, key)
            if not is_integer(value, 1):
                self._bad(key, "must be a positive integer")
        for key in ("calibration_n", "library_extra"):
            value = getattr(self, key)
            if not is_integer(value, 0):
                self._bad(key, "must be a non-negative integer")
        if not isinstance(self.apcorr_n_rh, int) or self.apcorr_n_rh < 4:
            self._bad("apcorr_n_rh", "must be an integer >= 4")
        if self.calibration_n and self.calibration_n < 20:
            self._bad("calibration_n", "must be 0 (no calibration) or at least 20")
        if not 0 < self.deblend_contrast < 1:
            self._bad("deblend_contrast", "must be in (0, 1)")
        if not self.eff_gamma > 2:
            self._bad("eff_gamma", "must exceed 2 (an EFF profile with finite light)")
        if not 0 <= self.min_mag_err < 1:
            self._bad("min_mag_err", "must be in [0, 1) mag")
        if not 0 < self.ci_star_percentile < 100:
            self._bad("ci_star_percentile", "must be in (0, 100)")
        if self.ci_cut_mag is not None and not (
            isinstance(self.ci_cut_mag, int | float) and math.isfinite(self.ci_cut_mag)
        ):
            self._bad("ci_cut_mag", "must be a number (mag) or null (calibrate)")
        if self.ci_cut_rule not in CI_CUT_RULES:
            self._bad("ci_cut_rule", f"must be one of {', '.join(CI_CUT_RULES)}")
        for key in ("sky_annulus_px", "ci_radii_px", "log_mass_msun_range"):
            value = getattr(self, key)
            if len(value) != 2 or not value[0] < value[1]:
                self._bad(key, "must be two increasing numbers [low, high]")
        if not self.sky_annulus_px[0] > self.aperture_radius_px:
            self._bad("sky_annulus_px", "the inner radius must exceed aperture_radius_px")
        if not (0 < self.ci_radii_px[0] and self.ci_radii_px[1] < self.sky_annulus_px[0]):
            self._bad("ci_radii_px", "radii must be > 0 and inside the sky annulus")
        if not isinstance(self.detection_bands, tuple) or not all(
            isinstance(b, str) for b in self.detection_bands
        ):
            self._bad("detection_bands", "must be a list of band names")

    def check_bands(self, bands) -> None:
        """ConfigError when ci_band or a detection band is not one of ``bands``."""
        bands = list(bands)
        if self.ci_band not in bands:
            self._bad("ci_band", f"must be one of the bands {bands}")
        unknown = [b for b in self.detection_bands if b not in bands]
        if unknown:
            self._bad("detection_bands", f"{unknown} are not among the bands {bands}")

    def detection_band_list(self, bands) -> list[str]:
        """The detection bands in ``bands`` order (all of them when none are set)."""
        self.check_bands(bands)
        return [b for b in bands if not self.detection_bands or b in self.detection_bands]

    @classmethod
    def from_config(cls, section: Mapping | None = None, **overrides) -> BaselineSettings:
        """From the ``baseline`` config section; ConfigError names ``baseline.<key>`` for an
        unknown key or a bad value."""
        return dataclass_from_config(cls, section, CONFIG_KEY, **overrides)

    def to_config(self) -> dict:
        """A plain mapping (lists for tuples), for Parquet metadata and logs."""
        return {
            k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()
        }
