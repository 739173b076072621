"""Catalogues of a synthetic galaxy: star clusters (the truth), OB associations, background
galaxies and saturated foreground stars.

Clusters (thesis §4.3.3 for the picture, the mock bank for the stars):

* mass: dN/dM ∝ M^slope exp(−M / M_c) between the configured limits (rejection from
  the truncated power law);
* age: on the isochrone grid within the configured range, dN/dt ∝ t^index, i.e.
  weights ∝ t^(index + 1) per step in log t;
* place: clusters younger than ``young_max_log_age_yr`` are born where young field
  stars are (radius ∝ R × SFR(R)); a share ``arm_sfr_fraction`` × arm strength is born
  on a dust lane and has since drifted by (Ω(R) − Ω_p) t in azimuth, spread by the
  birth spread ⊕ velocity dispersion × t — inside corotation young clusters lead the
  arm by an offset growing with age, beyond it they trail; the rest, and every older
  cluster, is spread evenly in azimuth (older ones following the old disk);
* extinction: Galactic foreground + a uniform(0, 1) share of the galaxy's dust screen
  at the cluster (its depth in the dust layer; lanes and arm bands make arm clusters
  redder) + natal dust of mean ``natal_av_mag`` (exponential) that fades linearly
  from log t = 6.6 to 7.2; clipped to the extinction table;
* size: EFF a and γ as the mock bank (:func:`starclusters.mocks.params.draw_eff`);
* stars: :func:`starclusters.mocks.bank.draw_stars` and EFF positions from each
  cluster's own seed (:func:`cluster_light`), so a cluster's stars are the same
  whichever tile or band draws them, and the truth magnitudes are those stars' sums.

Positions outside the mosaic are redrawn, so every catalogue object lies on the
reference grid.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from starclusters.errors import ConfigError
from starclusters.mocks.bank import draw_stars, hashed_seed
from starclusters.mocks.eff import sample_positions
from starclusters.mocks.params import draw_eff
from starclusters.photometry.population import StellarPopulation, magnitude_from_counts
from starclusters.synthetic.field import nearest_grid_age
from starclusters.synthetic.geometry import GalaxyGeometry, SkyFrame
from starclusters.synthetic.spec import CONFIG_KEY, SyntheticGalaxySpec

#: Random streams of a synthetic galaxy (mixed into per-object seeds).
CLUSTER_STREAM, ASSOCIATION_STREAM, FIELD_STREAM, NOISE_STREAM = 1, 2, 3, 4

#: Natal dust fades linearly between these log ages (yr).
NATAL_FADE_LOG_AGE_YR = (6.6, 7.2)


def stream_seed(base_seed: int, *keys: int) -> int:
    """A 63-bit seed for stream ``keys`` of a galaxy seeded with ``base_seed`` (reproducible alone)."""
    return hashed_seed(base_seed, *keys)


def sample_radius(
    pdf: Callable[[np.ndarray], np.ndarray], r_max_kpc: float, n: int, rng: np.random.Generator
) -> np.ndarray:
    """Radii (n,) kpc from an unnormalised density ``pdf(R)`` on [0, r_max] (tabulated inverse CDF)."""
    r = np.linspace(0.0, r_max_kpc, 4097)
    density = np.clip(pdf(r), 0.0, None)
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(r))])
    if not cdf[-1] > 0:
        raise ConfigError(
            f"{CONFIG_KEY}: no stellar density within {r_max_kpc:.2f} kpc of the centre; "
            "check the surface densities and field_offset_arcsec"
        )
    return np.interp(rng.random(n) * cdf[-1], cdf, r)


def sample_schechter_masses(
    n: int,
    slope: float,
    mass_min_msun: float,
    mass_max_msun: float,
    schechter_msun: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Masses (n,) M☉ with dN/dM ∝ M^slope exp(−M / M_c) on [min, max] (M_c = inf: pure power law)."""
    out = np.empty(0)
    p = slope + 1.0
    lo, hi = mass_min_msun, mass_max_msun
    for _ in range(10_000):
        m = max(4 * (n - out.size), 64)
        u = rng.random(m)
        if lo == hi:
            draw = np.full(m, lo)
        elif abs(p) < 1e-12:
            draw = lo * (hi / lo) ** u
        else:
            draw = (lo**p + u * (hi**p - lo**p)) ** (1.0 / p)
        keep = rng.random(m) < np.exp(-(draw - lo) / schechter_msun)
        out = np.concatenate([out, draw[keep]])
        if out.size >= n:
            return out[:n]
    raise ConfigError(f"{CONFIG_KEY}.schechter_mass_msun: too small for the mass range")


def draw_log_ages(
    n: int,
    population: StellarPopulation,
    log_age_range_yr: tuple[float, float],
    index: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Ages (n,) on the isochrone grid within the range, dN/dt ∝ t^index."""
    grid = population.log_ages_yr
    ages = grid[(grid >= log_age_range_yr[0] - 1e-9) & (grid <= log_age_range_yr[1] + 1e-9)]
    if ages.size == 0:
        raise ConfigError(
            f"{CONFIG_KEY}: no isochrone age in {tuple(log_age_range_yr)}; the grid spans "
            f"{grid[0]}–{grid[-1]}"
        )
    step = np.gradient(ages) if ages.size > 1 else np.ones(1)
    weights = 10.0 ** ((index + 1.0) * (ages - ages[0])) * step
    return rng.choice(ages, size=n, p=weights / weights.sum())


def _max_radius_kpc(geometry: GalaxyGeometry, frame: SkyFrame) -> float:
    ny, nx = geometry.spec.shape_px
    x = np.array([0, nx - 1, 0, nx - 1, (nx - 1) / 2], float)
    y = np.array([0, 0, ny - 1, ny - 1, (ny - 1) / 2], float)
    xk, yk = geometry.sky_to_disk(*frame.pixel_to_sky(geometry.spec.reference_band, x, y))
    return float(np.hypot(xk, yk).max() * 1.05 + 0.1)


def place_objects(
    log_age_yr: np.ndarray,
    geometry: GalaxyGeometry,
    frame: SkyFrame,
    rng: np.random.Generator,
    always_young: bool = False,
) -> pd.DataFrame:
    """Positions for objects of ages ``log_age_yr`` (n,): the density-wave recipe of the module.

    Returns x_kpc, y_kpc (disk plane), ra_deg, dec_deg, x_px, y_px (reference
    grid, 0-based), born_on_arm. ``always_young`` treats every object as young.
    """
    spec = geometry.spec
    n = len(log_age_yr)
    age_yr = 10.0 ** np.asarray(log_age_yr, float)
    young = np.full(n, True) if always_young else log_age_yr <= spec.young_max_log_age_yr + 1e-9
    r_max = _max_radius_kpc(geometry, frame)
    x_kpc, y_kpc, arm_born = np.zeros(n), np.zeros(n), np.zeros(n, bool)
    old_profile = geometry.disk_density if spec.disk_sigma0_msun_pc2 > 0 else None
    ny, nx = spec.shape_px
    pending = np.arange(n)
    for _ in range(1000):
        if pending.size == 0:
            break
        k = pending.size
        is_young = young[pending]
        radius = np.where(
            is_young,
            sample_radius(lambda r: r * geometry.sfr_density(r), r_max, k, rng)
            if spec.sfr_msun_yr_kpc2 > 0
            else sample_radius(lambda r: r * np.exp(-r / spec.disk_scale_kpc), r_max, k, rng),
            sample_radius(
                (lambda r: r * old_profile(r, 0.0))
                if old_profile
                else (lambda r: r * np.exp(-r / spec.disk_scale_kpc)),
                r_max,
                k,
                rng,
            ),
        )
        on = is_young & (rng.random(k) < spec.arm_sfr_fraction * geometry.arm_taper(radius))
        arm = rng.integers(0, spec.n_arms, k)
        drift = geometry.drift_rad(radius, age_yr[pending])
        spread = geometry.spread_kpc(age_yr[pending]) / np.maximum(radius, 1e-6)
        phi_arm = geometry.lane_azimuth_rad(radius, 0) + 2 * np.pi * arm / spec.n_arms
        phi = np.where(
            on,
            phi_arm + drift + rng.normal(0.0, 1.0, k) * spread,
            rng.uniform(0.0, 2 * np.pi, k),
        )
        xk, yk = radius * np.cos(phi), radius * np.sin(phi)
        xp, yp = frame.sky_to_pixel(spec.reference_band, *geometry.disk_to_sky(xk, yk))
        inside = (xp >= 0) & (xp <= nx - 1) & (yp >= 0) & (yp <= ny - 1)
        done = pending[inside]
        x_kpc[done], y_kpc[done], arm_born[done] = xk[inside], yk[inside], on[inside]
        pending = pending[~inside]
    else:
        raise ConfigError(
            f"{CONFIG_KEY}.field_offset_arcsec: the mosaic hardly overlaps the galaxy "
            f"({pending.size} objects could not be placed on it); move it towards the centre"
        )
    xi, eta = geometry.disk_to_sky(x_kpc, y_kpc)
    ra, dec = frame.sky_to_world(xi, eta)
    xp, yp = frame.world_to_pixel(spec.reference_band, ra, dec)
    return pd.DataFrame(
        {
            "x_kpc": x_kpc,
            "y_kpc": y_kpc,
            "ra_deg": ra,
            "dec_deg": dec,
            "x_px": xp,
            "y_px": yp,
            "born_on_arm": arm_born,
        }
    )


def draw_extinction(
    x_kpc: np.ndarray,
    y_kpc: np.ndarray,
    log_age_yr: np.ndarray,
    geometry: GalaxyGeometry,
    av_max_mag: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """A_V (n,) mag of clusters: foreground + depth × screen + fading natal dust, clipped."""
    spec = geometry.spec
    n = len(x_kpc)
    screen = geometry.screen_av_mag(x_kpc, y_kpc)
    lo, hi = NATAL_FADE_LOG_AGE_YR
    fade = np.clip((hi - np.asarray(log_age_yr, float)) / (hi - lo), 0.0, 1.0)
    natal = rng.exponential(1.0, n) * spec.natal_av_mag * fade
    av = spec.foreground_av_mag + spec.cluster_av_offset_mag + rng.random(n) * screen + natal
    return np.clip(av, 0.0, av_max_mag)


def _mocks_mapping(spec: SyntheticGalaxySpec, a, gamma, truncation) -> dict:
    return {
        "eff_a_arcsec": {"min": a[0], "max": a[1]},
        "eff_gamma": {"min": gamma[0], "max": gamma[1]},
        "rh_arcsec": {"min": spec.rh_arcsec[0], "max": spec.rh_arcsec[1]},
        "truncation_arcsec": truncation,
        "faint_limit_mag": spec.faint_limit_mag,
        "faint_packets": spec.faint_packets,
    }


def cluster_light(
    row, population: StellarPopulation, spec: SyntheticGalaxySpec, bands: Sequence[str]
) -> tuple[np.ndarray, np.ndarray]:
    """Stars of one cluster (or association) from its own ``seed``: sky-plane offsets (n, 2)
    arcsec (ξ, η) from its centre and count rates (n, B) in ``bands`` order.

    row: needs seed, log_age_yr, log_mass_msun, av_mag, eff_a_arcsec, eff_gamma,
    truncation_arcsec. The stars (with faint light packets) are the mock bank's
    (:func:`starclusters.mocks.bank.draw_stars`), positions on the truncated EFF profile.
    """
    rng = np.random.default_rng(int(row["seed"]))
    mocks = {"faint_limit_mag": spec.faint_limit_mag, "faint_packets": spec.faint_packets}
    stars = draw_stars(
        population,
        float(row["log_age_yr"]),
        float(row["log_mass_msun"]),
        float(row["av_mag"]),
        mocks,
        rng,
    )
    lit = stars.luminous
    offsets = sample_positions(
        int(lit.sum()),
        float(row["eff_a_arcsec"]),
        float(row["eff_gamma"]),
        float(row["truncation_arcsec"]),
        rng,
    )
    columns = [population.bands.index(b) for b in bands]
    return offsets, stars.counts_s[lit][:, columns]


def add_magnitudes(
    table: pd.DataFrame,
    population: StellarPopulation,
    spec: SyntheticGalaxySpec,
    bands: Sequence[str],
) -> pd.DataFrame:
    """``table`` with mag_<band> (apparent Vega, extinction included) of each row's stars and n_lit."""
    mags = {b: np.zeros(len(table)) for b in bands}
    n_lit = np.zeros(len(table), int)
    for i, (_, row) in enumerate(table.iterrows()):
        offsets, counts = cluster_light(row, population, spec, bands)
        totals = counts.sum(axis=0)
        for j, band in enumerate(bands):
            mags[band][i] = magnitude_from_counts(totals[j], population.zeropoints_mag[band])
        n_lit[i] = len(offsets)
    out = table.copy()
    for band in bands:
        out[f"mag_{band}"] = mags[band]
    out["n_lit"] = n_lit
    return out


def _position_columns(places: pd.DataFrame, geometry: GalaxyGeometry) -> dict:
    coords = geometry.arm_coordinates(places["x_kpc"], places["y_kpc"])
    return {
        "x_px": places["x_px"].to_numpy(),
        "y_px": places["y_px"].to_numpy(),
        "ra_deg": places["ra_deg"].to_numpy(),
        "dec_deg": places["dec_deg"].to_numpy(),
        "galactocentric_radius_kpc": coords["radius_kpc"],
        "arm_distance_kpc": coords["distance_kpc"],
        "arm": coords["arm"],
        "on_arm": geometry.on_arm(places["x_kpc"], places["y_kpc"]),
        "born_on_arm": places["born_on_arm"].to_numpy(),
    }


def draw_clusters(
    spec: SyntheticGalaxySpec,
    geometry: GalaxyGeometry,
    frame: SkyFrame,
    population: StellarPopulation,
    base_seed: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """The cluster truth table (without magnitudes; see :func:`add_magnitudes`).

    Columns: cluster_id, x_px, y_px (reference grid, 0-based), ra_deg, dec_deg,
    galactocentric_radius_kpc (disk plane, model kpc), arm_distance_kpc, arm,
    on_arm, born_on_arm, log_age_yr, log_mass_msun, av_mag, rh_arcsec,
    eff_a_arcsec, eff_gamma, truncation_arcsec, seed.
    """
    n = spec.n_clusters
    log_age = draw_log_ages(
        n, population, spec.cluster_log_age_yr, spec.age_distribution_index, rng
    )
    lo, hi = spec.cluster_log_mass_msun
    mass = sample_schechter_masses(
        n, spec.mass_function_slope, 10**lo, 10**hi, spec.schechter_mass_msun, rng
    )
    a, gamma, rh = draw_eff(
        n,
        _mocks_mapping(spec, spec.eff_a_arcsec, spec.eff_gamma, spec.truncation_arcsec),
        rng,
    )
    places = place_objects(log_age, geometry, frame, rng)
    av_max = float(population.extinction["av_mag"].max())
    av = draw_extinction(places["x_kpc"], places["y_kpc"], log_age, geometry, av_max, rng)
    return pd.DataFrame(
        {
            "cluster_id": np.arange(n),
            **_position_columns(places, geometry),
            "log_age_yr": log_age,
            "log_mass_msun": np.log10(mass),
            "av_mag": av,
            "rh_arcsec": rh,
            "eff_a_arcsec": a,
            "eff_gamma": gamma,
            "truncation_arcsec": np.full(n, spec.truncation_arcsec),
            "seed": [stream_seed(base_seed, CLUSTER_STREAM, i) for i in range(n)],
        }
    )


def complete_clusters(
    clusters: pd.DataFrame,
    spec: SyntheticGalaxySpec,
    geometry: GalaxyGeometry,
    frame: SkyFrame,
    population: StellarPopulation,
    base_seed: int,
) -> pd.DataFrame:
    """A user-given cluster table completed to the truth's columns.

    clusters: x_px, y_px (reference grid) or ra_deg, dec_deg; log_age_yr (on the
    isochrone grid), log_mass_msun, av_mag, eff_a_arcsec, eff_gamma; optional
    truncation_arcsec (default the spec's) and seed.
    """
    from starclusters.mocks.eff import half_number_radius

    need = ["log_age_yr", "log_mass_msun", "av_mag", "eff_a_arcsec", "eff_gamma"]
    missing = [c for c in need if c not in clusters.columns]
    if missing:
        raise ConfigError(f"clusters: columns {missing} are missing; give them for every cluster")
    t = clusters.reset_index(drop=True).copy()
    if "ra_deg" in t.columns and "dec_deg" in t.columns:
        ra, dec = t["ra_deg"].to_numpy(float), t["dec_deg"].to_numpy(float)
    elif "x_px" in t.columns and "y_px" in t.columns:
        ra, dec = frame.reference.wcs_pix2world(t["x_px"].to_numpy(float), t["y_px"], 0)
    else:
        raise ConfigError("clusters: give x_px, y_px (reference grid) or ra_deg, dec_deg")
    xp, yp = frame.world_to_pixel(spec.reference_band, ra, dec)
    xk, yk = geometry.sky_to_disk(*frame.world_to_sky(ra, dec))
    places = pd.DataFrame(
        {
            "x_kpc": xk,
            "y_kpc": yk,
            "ra_deg": ra,
            "dec_deg": dec,
            "x_px": xp,
            "y_px": yp,
            "born_on_arm": np.zeros(len(t), bool),
        }
    )
    if "truncation_arcsec" not in t.columns:
        t["truncation_arcsec"] = spec.truncation_arcsec
    if "seed" not in t.columns:
        t["seed"] = [stream_seed(base_seed, CLUSTER_STREAM, i) for i in range(len(t))]
    n = len(t)
    out = pd.DataFrame({"cluster_id": np.arange(n), **_position_columns(places, geometry)})
    for column in [*need, "truncation_arcsec", "seed"]:
        out[column] = t[column].to_numpy()
    out["rh_arcsec"] = half_number_radius(
        out["eff_a_arcsec"], out["eff_gamma"], out["truncation_arcsec"]
    )
    return out


def draw_associations(
    spec: SyntheticGalaxySpec,
    geometry: GalaxyGeometry,
    frame: SkyFrame,
    population: StellarPopulation,
    base_seed: int,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """OB associations: young, loose (EFF a ~ 0.5–1.2″), on the arms like young clusters."""
    n = spec.n_associations
    grid = population.log_ages_yr
    lo, hi = spec.association_log_age_yr
    ages = grid[(grid >= lo - 1e-9) & (grid <= hi + 1e-9)]
    if n and ages.size == 0:
        raise ConfigError(f"{CONFIG_KEY}.association_log_age_yr: no isochrone age in {lo}–{hi}")
    log_age = rng.choice(ages, n) if n else np.zeros(0)
    mlo, mhi = spec.association_log_mass_msun
    log_mass = rng.uniform(mlo, mhi, n)
    a = np.exp(rng.uniform(*np.log(spec.association_a_arcsec), n))
    gamma = rng.uniform(*spec.association_gamma, n)
    places = place_objects(log_age, geometry, frame, rng, always_young=True)
    av_max = float(population.extinction["av_mag"].max())
    av = draw_extinction(places["x_kpc"], places["y_kpc"], log_age, geometry, av_max, rng)
    return pd.DataFrame(
        {
            "kind": ["ob_association"] * n,
            **_position_columns(places, geometry),
            "log_age_yr": log_age,
            "log_mass_msun": log_mass,
            "av_mag": av,
            "eff_a_arcsec": a,
            "eff_gamma": gamma,
            "truncation_arcsec": np.full(n, spec.association_truncation_arcsec),
            "seed": [stream_seed(base_seed, ASSOCIATION_STREAM, i) for i in range(n)],
        }
    )


def _uniform_on_image(n: int, spec: SyntheticGalaxySpec, margin_px: float, rng):
    ny, nx = spec.shape_px
    margin = min(margin_px, 0.25 * min(nx, ny))
    return rng.uniform(margin, nx - 1 - margin, n), rng.uniform(margin, ny - 1 - margin, n)


def draw_background_galaxies(
    spec: SyntheticGalaxySpec,
    geometry: GalaxyGeometry,
    frame: SkyFrame,
    population: StellarPopulation,
    extinction_ratio: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Red Sérsic galaxies behind the disk, uniform on the image.

    Magnitudes: reference band uniform in galaxy_ref_mag; other bands by the colours
    in galaxy_colours_mag (band − reference, mean and scatter); then dimmed by the
    Galactic foreground and the whole dust screen at their place (they lie behind
    the disk). Shapes: Sérsic n, r_e (log-uniform), axis ratio, position angle on
    the sky (deg, north through east).
    """
    n = spec.n_background_galaxies
    bands = spec.bands
    xp, yp = _uniform_on_image(n, spec, 10.0, rng)
    ra, dec = frame.reference.wcs_pix2world(xp, yp, 0)
    xk, yk = geometry.sky_to_disk(*frame.world_to_sky(ra, dec))
    screen = geometry.screen_av_mag(xk, yk) + spec.foreground_av_mag
    ref_mag = rng.uniform(*spec.galaxy_ref_mag, n)
    table = {
        "kind": ["background_galaxy"] * n,
        "x_px": xp,
        "y_px": yp,
        "ra_deg": np.asarray(ra),
        "dec_deg": np.asarray(dec),
        "av_mag": screen,
        "sersic_n": rng.uniform(*spec.galaxy_sersic_n, n),
        "re_arcsec": np.exp(rng.uniform(*np.log(spec.galaxy_re_arcsec), n)),
        "axis_ratio": rng.uniform(*spec.galaxy_axis_ratio, n),
        "pa_deg": rng.uniform(0.0, 180.0, n),
    }
    for j, band in enumerate(bands):
        mean, sigma = spec.galaxy_colours_mag.get(band, (0.0, 0.0))
        colour = 0.0 if band == spec.reference_band else mean + sigma * rng.normal(size=n)
        table[f"mag_{band}"] = ref_mag + colour + extinction_ratio[j] * screen
    return pd.DataFrame(table)


def draw_foreground_stars(
    spec: SyntheticGalaxySpec,
    frame: SkyFrame,
    population: StellarPopulation,
    peak_fraction: np.ndarray,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Milky Way stars bright enough to saturate: the reference band's peak pixel is
    foreground_peak_over_saturation (log-uniform) × saturation_counts_s wherever the
    star falls within a pixel; the other bands follow the star's colours (a red
    band saturates more, F336W may not).

    peak_fraction: (B,) smallest share of a star's light in its brightest pixel over
    sub-pixel positions (from the ePSFs). Colours of F–G dwarfs (initial mass
    0.8–1.1 M☉ on the 1 Gyr isochrone); no extinction.
    """
    n = spec.n_foreground_stars
    bands = spec.bands
    xp, yp = _uniform_on_image(n, spec, 20.0, rng)
    ra, dec = frame.reference.wcs_pix2world(xp, yp, 0)
    age = nearest_grid_age(population, 9.0)
    columns = [population.bands.index(b) for b in bands]
    colours = population.star_counts(age, rng.uniform(0.8, 1.1, n), 0.0)[:, columns]
    colours = np.where(colours > 0, colours, 1.0)
    factor = np.exp(rng.uniform(*np.log(spec.foreground_peak_over_saturation), n))
    ref = list(bands).index(spec.reference_band)
    scale = factor * spec.saturation_counts_s / (colours[:, ref] * peak_fraction[ref])
    counts = colours * scale[:, None]
    table = {
        "kind": ["foreground_star"] * n,
        "x_px": xp,
        "y_px": yp,
        "ra_deg": np.asarray(ra),
        "dec_deg": np.asarray(dec),
        "peak_over_saturation": factor,
    }
    for j, band in enumerate(bands):
        table[f"mag_{band}"] = magnitude_from_counts(counts[:, j], population.zeropoints_mag[band])
    return pd.DataFrame(table)
