"""Parameters of a synthetic M83-like galaxy (:class:`SyntheticGalaxySpec`), with sources.

Every length of the galaxy's *structure* (disk, bulge, arms, dust lanes, corotation,
drift of clusters away from the arms) is given in kpc of the model galaxy, which is
M83-sized. On the sky these lengths are multiplied by ``geometry_scale``: with the
default 0.1 a 1024 × 1024-px mosaic at 0.04″/px (41″ = 0.89 kpc at 4.5 Mpc) holds
the model galaxy out to ~4.5 kpc, i.e. a miniature M83 with its centre, both arms
and corotation in view. ``geometry_scale = 1`` gives M83 at its true size (a
~10,000²-px mosaic then reaches ~4.4 kpc, like the 7 WFC3 fields of the thesis,
§4.4). Everything *stellar* is never scaled: star and cluster magnitudes (distance),
cluster and association sizes in arcsec, stellar surface densities per pc² of sky
(so that surface brightness, crowding and noise per pixel are M83's at the same
model radius).

M83 numbers and their sources
-----------------------------
* centre RA 204.2538°, Dec −29.8658° (the nucleus, as in NED);
* distance: taken from the :class:`~starclusters.photometry.StellarPopulation`
  (4.5 Mpc, Thim et al. 2003, config ``photometry.distance_mpc``);
* inclination 24°, major-axis position angle 45° (N through E): the values usually
  adopted for M83's inner disk (Comte 1981; Lundgren et al. 2004). The thesis (§4.4)
  notes larger estimates (~40°, Heald et al. 2016) with a large uncertainty;
* rotation 160 km/s (flat; Heald et al. 2016 via thesis §4.3.3), rising as
  1 − exp(−R / 0.5 kpc) in the centre; pattern speed 44 km/s/kpc, from the thesis'
  "spiral pattern speed of ~110 km/s at ~2.5 kpc" (Zimmer et al. 2004). Corotation
  follows: 3.6 kpc (where v(R)/R = Ω_p), inside which clusters overtake the arms
  at (Ω − Ω_p) R ≈ 50 km/s ≈ 51 pc/Myr at 2.5 kpc (thesis §4.3.3). (Corotation
  estimates for M83 range up to ~5 kpc; ``pattern_speed_kms_kpc = 32`` puts it
  there, at the price of a drift of 82 pc/Myr at 2.5 kpc.) Azimuthal drift d(arc)
  moves a star only sin(pitch) ≈ 0.28 of it across the arm;
* two trailing logarithmic arms, pitch angle 16° (chosen, typical of Sc spirals),
  from 1.5 kpc (the ends of M83's bar) to 6 kpc; dust lanes on their inner
  (concave, upstream) edge (Roberts 1969; thesis §4.3.3 traces them);
* Galactic foreground A_V = 0.18 mag (E(B−V) = 0.059, Schlafly & Finkbeiner 2011;
  the thesis sees a floor at A_V ≈ 0.3, which includes M83's own diffuse dust);
* stellar mass: exponential disk Σ0 = 700 M☉/pc² face-on, h = 2.6 kpc (3 × 10^10 M☉
  in all), a Sérsic n = 2 bulge (r_e = 0.4 kpc, Σ_e = 1000 M☉/pc²); star formation
  0.1 M☉/yr/kpc² at the centre falling with h = 2.6 kpc (4 M☉/yr in all, M83's SFR
  is ~3–4 M☉/yr), 80 % of it in the arms (chosen);
* clusters: dN/dM ∝ M^−2 exp(−M/M_c), M_c = 10^5 M☉ (Adamo et al. 2015 find
  1.6 × 10^5 M☉ in M83's inner disk), log M = 3.5–5.5 as the mock bank; ages on the
  isochrone grid with dN/dt ∝ t^−0.9 (a disruption-shaped age distribution of the
  kind found for M83 by Chandar et al. 2014 and others; flat in log t would be
  −1); EFF a, γ, r_h, truncation as the mock bank (thesis Table 4.1);
* exposure times 1200 s (F336W), 1000 s (F438W, F814W), 3 exposures each, WFC3/UVIS
  read noise 3.1 e⁻, sky (zodiacal light and dark current) 0.004, 0.008 and
  0.06 e⁻/s/px: approximate, of the order of the Blair et al. (2014) mosaics and
  the WFC3 handbook's average sky; PHOTFLAM from the 2020 WFC3/UVIS calibration;
* ``observation: drizzled``: the exposures dithered, with cosmic rays, combined with
  ``drizzle`` as AstroDrizzle does (numbers and sources in :mod:`.observe`).

Numbers marked "chosen" have no M83 source; they make a plausible galaxy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from starclusters.errors import ConfigError
from starclusters.mocks.settings import PSF_DEFAULTS
from starclusters.sections import dataclass_from_config
from starclusters.synthetic.observe import DRIZZLE_KERNELS, OBSERVATIONS

#: Config section that :meth:`SyntheticGalaxySpec.from_config` reads (for error messages).
CONFIG_KEY = "mosaic.synthetic"


def _default_exptime_s() -> dict[str, float]:
    return {"F336W": 1200.0, "F438W": 1000.0, "F814W": 1000.0}


def _default_sky_e_s() -> dict[str, float]:
    return {"F336W": 0.004, "F438W": 0.008, "F814W": 0.06}


def _default_photflam() -> dict[str, float]:
    # WFC3/UVIS1, 2020 calibration (STScI zero-point tables), erg/s/cm²/Å per e⁻/s
    return {"F336W": 1.2848e-18, "F438W": 6.7475e-19, "F814W": 1.4994e-19}


def _default_galaxy_colours() -> dict[str, tuple[float, float]]:
    # band minus reference band (mag): mean and scatter of red, early-type galaxies at z ~ 0.3–0.5
    return {"F336W": (3.2, 0.4), "F438W": (2.0, 0.3), "F814W": (0.0, 0.0)}


@dataclass(frozen=True)
class SyntheticGalaxySpec:
    """Everything that shapes a synthetic galaxy except the stellar population and the PSFs.

    Units are in the names; ``(lo, hi)`` pairs are ranges drawn from. See the
    module docstring for the sources of the M83 numbers. Set a count or a surface
    density to 0 to leave that component out (tests build empty galaxies so).
    """

    # --- the mosaic
    name: str = "synthetic_m83"
    shape_px: tuple[int, int] = (1024, 1024)  # (ny, nx)
    pixel_scale_arcsec: float = 0.04  # thesis §3.1.1
    tile_px: int = 512  # tiles rendered one at a time (with the PSF's reach as halo)
    bands: tuple[str, ...] = ("F336W", "F438W", "F814W")
    reference_band: str = "F814W"  # the truth's x_px, y_px are on this band's grid
    band_shift_max_px: float = 3.0  # other bands: CRPIX shifted by up to this, per axis
    band_rotation_max_deg: float = 0.5  # ... and rotated by up to this
    field_offset_arcsec: tuple[float, float] = (0.0, 0.0)  # mosaic centre from the galaxy's (E, N)

    # --- orientation and scale of the galaxy
    centre_ra_deg: float = 204.2538
    centre_dec_deg: float = -29.8658
    inclination_deg: float = 24.0
    position_angle_deg: float = 45.0  # major axis, north through east
    geometry_scale: float = 0.1  # sky size of the structure / M83's

    # --- kinematics (density-wave drift of young stars and clusters)
    rotation_speed_kms: float = 160.0
    rotation_turnover_kpc: float = 0.5
    pattern_speed_kms_kpc: float = 44.0
    velocity_dispersion_kms: float = 6.0  # random walk away from the birth place
    birth_spread_kpc: float = 0.05  # azimuthal spread of birth places around the lane

    # --- spiral arms
    n_arms: int = 2
    pitch_angle_deg: float = 16.0
    arm_phase_deg: float = 0.0  # azimuth of arm 0's lane at arm_start_kpc, from the major axis
    arm_start_kpc: float = 1.5
    arm_end_kpc: float = 6.0
    arm_taper_kpc: float = 0.4  # arms fade in/out over this at both ends
    arm_trailing_kpc: float = 0.1  # the arm band: this far upstream of the lane ...
    arm_leading_kpc: float = 0.4  # ... to this far downstream (perpendicular, disk plane)

    # --- dust (A_V, mag; per band scaled with the extinction table's A_band/A_V)
    foreground_av_mag: float = 0.18
    disk_av_mag: float = 0.4  # diffuse, falling with the disk scale length
    arm_av_mag: float = 0.5  # diffuse, over the arm band
    lane_av_mag: float = 2.0  # peak of the dust lane
    lane_width_kpc: float = 0.05  # Gaussian sigma across the lane
    dust_behind_fraction: float = 0.5  # share of field light behind the screen
    natal_av_mag: float = 0.6  # mean extra A_V of clusters at birth, gone by log t = 7.2

    # --- unresolved and resolved field stars (surface densities face-on, M☉/pc²)
    bulge_sigma_e_msun_pc2: float = 1000.0
    bulge_re_kpc: float = 0.4
    bulge_sersic_n: float = 2.0
    bulge_log_age_yr: float = 10.0
    disk_sigma0_msun_pc2: float = 700.0
    disk_scale_kpc: float = 2.6
    disk_populations: tuple[tuple[float, float], ...] = (
        (10.0, 0.45),
        (9.6, 0.25),
        (9.2, 0.15),
        (8.8, 0.10),
        (8.4, 0.05),
    )  # (log age, mass fraction)
    sfr_msun_yr_kpc2: float = 0.1  # azimuthal mean at R = 0 (young field stars, t < young_max)
    sfr_scale_kpc: float = 2.6
    arm_sfr_fraction: float = 0.8  # of young stars (and young clusters) born on the arms
    young_max_log_age_yr: float = 8.0  # older clusters are spread evenly over the disk
    resolve_limit_mag: float = (
        27.5  # field stars brighter than this in any band are drawn one by one
    )
    density_block_px: int = 4  # field stars are Poisson-drawn on blocks of this size
    field_cell_px: int = 512  # ... in cells of this size, each from its own seed

    # --- star clusters (the truth)
    n_clusters: int = 150
    cluster_log_mass_msun: tuple[float, float] = (3.5, 5.5)
    mass_function_slope: float = -2.0  # dN/dM ∝ M^slope exp(-M / M_c)
    schechter_mass_msun: float = 1.0e5
    cluster_log_age_yr: tuple[float, float] = (6.6, 10.1)
    age_distribution_index: float = -0.9  # dN/dt ∝ t^index
    eff_a_arcsec: tuple[float, float] = (0.04, 1.2)
    eff_gamma: tuple[float, float] = (2.05, 8.0)
    rh_arcsec: tuple[float, float] = (0.04, 0.4)
    truncation_arcsec: float = 2.5
    faint_limit_mag: float = 29.0  # cluster stars fainter than this are light packets (mock bank)
    faint_packets: int = 2000

    # --- OB associations (young, loose, on the arms; not clusters)
    n_associations: int = 25
    association_log_mass_msun: tuple[float, float] = (3.0, 4.0)
    association_log_age_yr: tuple[float, float] = (6.6, 7.0)
    association_a_arcsec: tuple[float, float] = (0.5, 1.2)
    association_gamma: tuple[float, float] = (2.5, 4.0)
    association_truncation_arcsec: float = 4.0

    # --- background galaxies (red, extended; seen through the whole disk)
    n_background_galaxies: int = 15
    galaxy_ref_mag: tuple[float, float] = (20.5, 24.0)  # in the reference band
    galaxy_re_arcsec: tuple[float, float] = (0.15, 0.8)
    galaxy_sersic_n: tuple[float, float] = (0.8, 4.0)
    galaxy_axis_ratio: tuple[float, float] = (0.35, 1.0)
    galaxy_colours_mag: dict[str, tuple[float, float]] = field(
        default_factory=_default_galaxy_colours
    )

    # --- saturated Milky Way foreground stars
    n_foreground_stars: int = 3
    saturation_counts_s: float = 150.0  # ~63,000 e⁻ full well in one of 3 exposures of ~400 s
    foreground_peak_over_saturation: tuple[float, float] = (1.5, 10.0)  # reference band's peak

    # --- noise
    noise: bool = True
    exptime_s: dict[str, float] = field(default_factory=_default_exptime_s)
    sky_e_s: dict[str, float] = field(default_factory=_default_sky_e_s)  # per pixel
    read_noise_e: float = 3.1
    n_exposures: int = 3
    sky_subtracted: bool = True
    photflam: dict[str, float] = field(default_factory=_default_photflam)

    # --- how the images are made (starclusters.synthetic.observe has the sources)
    observation: str = "direct"  # direct: one noisy image per band; drizzled: exposures
    dither_step_px: float | None = None  # per axis between exposures; None: 2 + 1/n_exposures
    pixfrac: float = 1.0  # final drizzle drop size (AstroDrizzle default)
    drizzle_kernel: str = "square"  # final drizzle kernel (AstroDrizzle default)
    cosmic_ray_fraction_per_ks: float = 0.02  # pixels hit per 1000 s (ACS/WFC3 handbooks)
    reject_cosmic_rays: bool = True  # AstroDrizzle's driz_cr median/blot test
    chip_gap_rows: int = 0  # rows without data across each exposure (UVIS: ~31)
    # the galaxy's PSF where it differs from training's (the workflow picks the PSF files)
    psf_halo: bool | None = None  # None: as psf.halo; else the fitted WFC3/UVIS halo on/off
    psf_fwhm_scale: float = 1.0  # the optical model dilated by this factor
    # ... and its photometry where it differs from training's (robustness tests)
    distance_mpc: float | None = None  # None: photometry.distance_mpc
    metallicity_z: float | None = None  # None: photometry.isochrones.metallicity_z
    cluster_av_offset_mag: float = 0.0  # added to every cluster's A_V (a shifted A_V prior)

    @classmethod
    def from_config(cls, section: Mapping | None = None, **overrides) -> SyntheticGalaxySpec:
        """A spec from a config mapping (keys = field names; lists become tuples), then ``overrides``.

        ConfigError naming ``mosaic.synthetic.<key>`` for an unknown key.
        """
        return dataclass_from_config(cls, section, CONFIG_KEY, **overrides)

    def check(self, population_bands) -> None:
        """ConfigError (naming the key and what to do) for values that cannot make an image."""

        def bad(key, why):
            raise ConfigError(f"{CONFIG_KEY}.{key}: {why}")

        if len(self.shape_px) != 2 or min(self.shape_px) < 16:
            bad("shape_px", f"must be (ny, nx) of at least 16 pixels each, got {self.shape_px}")
        if not self.pixel_scale_arcsec > 0:
            bad("pixel_scale_arcsec", "must be positive")
        if self.tile_px < 64 or self.tile_px % 2:
            bad("tile_px", f"must be even and at least 64, got {self.tile_px}")
        if self.reference_band not in self.bands:
            bad("reference_band", f"{self.reference_band!r} is not one of bands {self.bands}")
        missing = [b for b in self.bands if b not in population_bands]
        if missing:
            bad("bands", f"{missing} have no photometry; rebuild the photometry stage with them")
        for key in ("exptime_s", "sky_e_s"):
            table = getattr(self, key)
            absent = [b for b in self.bands if b not in table]
            if absent:
                bad(key, f"give a value for bands {absent}")
            if any(not table[b] >= 0 for b in self.bands) or (
                key == "exptime_s" and any(not table[b] > 0 for b in self.bands)
            ):
                bad(key, "values must be positive")
        if not 0 <= self.inclination_deg < 85:
            bad("inclination_deg", "must be in [0, 85) degrees")
        if not self.geometry_scale > 0:
            bad("geometry_scale", "must be positive (1 = M83's true size)")
        if not 0 < self.pitch_angle_deg < 60:
            bad("pitch_angle_deg", "must be in (0, 60) degrees")
        if not 0 < self.arm_start_kpc < self.arm_end_kpc:
            bad("arm_end_kpc", "arms need 0 < arm_start_kpc < arm_end_kpc")
        if self.n_arms < 1:
            bad("n_arms", "must be at least 1")
        if not 0 <= self.dust_behind_fraction <= 1:
            bad("dust_behind_fraction", "must be in [0, 1]")
        if not 0 <= self.arm_sfr_fraction <= 1:
            bad("arm_sfr_fraction", "must be in [0, 1]")
        total = sum(f for _, f in self.disk_populations)
        if self.disk_populations and abs(total - 1.0) > 1e-6:
            bad("disk_populations", f"mass fractions must sum to 1, got {total:g}")
        lo, hi = self.cluster_log_mass_msun
        if not lo <= hi:
            bad("cluster_log_mass_msun", "needs min <= max")
        if self.n_clusters < 0 or self.n_associations < 0 or self.n_background_galaxies < 0:
            bad("n_clusters", "counts must be >= 0")
        if not self.saturation_counts_s > 0:
            bad("saturation_counts_s", "must be positive")
        self._check_observation(bad)
        if (
            self.density_block_px < 1
            or self.tile_px % self.density_block_px
            or self.field_cell_px % self.density_block_px
        ):
            bad("density_block_px", "must divide tile_px and field_cell_px")

    def _check_observation(self, bad) -> None:
        if not 0.5 <= self.psf_fwhm_scale <= 2.0:
            bad("psf_fwhm_scale", f"must be in [0.5, 2], got {self.psf_fwhm_scale}")
        if self.distance_mpc is not None and not self.distance_mpc > 0:
            bad("distance_mpc", "must be positive (or null for photometry.distance_mpc)")
        if self.metallicity_z is not None and not 0 < self.metallicity_z < 0.1:
            bad("metallicity_z", "must be in (0, 0.1) (or null for the photometry's)")
        if self.observation not in OBSERVATIONS:
            bad("observation", f"must be one of {list(OBSERVATIONS)}, got {self.observation!r}")
        if self.n_exposures < 1:
            bad("n_exposures", f"must be at least 1, got {self.n_exposures}")
        if self.observation != "drizzled":
            return
        if self.n_exposures < 2 and self.reject_cosmic_rays:
            bad(
                "n_exposures",
                "drizzled observations reject cosmic rays between exposures, so they need at "
                "least 2 (or set reject_cosmic_rays: false)",
            )
        if self.dither_step_px is not None and not self.dither_step_px >= 0:
            bad("dither_step_px", "must be >= 0 px (or null for 2 + 1/n_exposures)")
        if not 0 < self.pixfrac <= 1:
            bad("pixfrac", f"must be in (0, 1], got {self.pixfrac}")
        if self.drizzle_kernel not in DRIZZLE_KERNELS:
            bad("drizzle_kernel", f"must be one of {list(DRIZZLE_KERNELS)}")
        if not self.cosmic_ray_fraction_per_ks >= 0:
            bad("cosmic_ray_fraction_per_ks", "must be >= 0 (0: no cosmic rays)")
        if not 0 <= self.chip_gap_rows < self.shape_px[0] // 2:
            bad("chip_gap_rows", f"must be in [0, {self.shape_px[0] // 2})")


def check_synthetic_config(config: Mapping) -> None:
    """ConfigError naming the ``mosaic.synthetic`` key (with ``mosaic.source: synthetic``):
    every value the generator needs, and a mosaic at least one window across."""
    bands = config["bands"]
    mosaic = config["mosaic"]
    if mosaic["source"] != "synthetic":
        return
    spec = SyntheticGalaxySpec.from_config(  # names unknown keys
        mosaic["synthetic"],
        bands=tuple(bands),
        pixel_scale_arcsec=config["pixel_scale_arcsec"],
    )
    spec.check(bands)  # every value the generator needs (shape_px, exptime_s...)
    check_galaxy_psf(spec, config["psf"])
    window = config["window_px"]
    if min(spec.shape_px) < window:
        raise ConfigError(
            f"mosaic.synthetic.shape_px: {list(spec.shape_px)} px is smaller than the "
            f"{window}-px window (window_px); make the mosaic larger or window_px smaller"
        )


def check_galaxy_psf(spec: SyntheticGalaxySpec, psf: Mapping, key: str = CONFIG_KEY) -> None:
    """ConfigError naming ``<key>.psf_halo``/``psf_fwhm_scale``: a galaxy PSF other than
    training's needs the GalSim model (``psf.source: galsim``)."""
    differs = spec.psf_halo is not None and bool(spec.psf_halo) != bool(
        psf.get("halo", PSF_DEFAULTS["halo"])
    )
    if psf["source"] == "files" and (differs or spec.psf_fwhm_scale != 1.0):
        name = "psf_halo" if differs else "psf_fwhm_scale"
        raise ConfigError(
            f"{key}.{name}: the galaxy's own PSF is made from the GalSim model, but psf.source "
            "is files; remove it or use psf.source: galsim"
        )
