"""Validation galaxies: synthetic galaxies that training never sees, for the scorecard.

Each entry of the config's ``validation.galaxies`` names a galaxy built by the same
generator as the training galaxy (:mod:`starclusters.synthetic.galaxy`), with the same
instrument, photometry and PSFs, but its own random seed and its own structure: the
training galaxy's ``mosaic.synthetic`` settings with the entry's ``synthetic`` keys on
top (e.g. another ``field_offset_arcsec``, ``arm_phase_deg``, ``n_clusters``, dust).
The network is trained only on the training galaxy's backgrounds and on mocks; the
validation galaxies' images, clusters and field populations are new to it.

Products live in ``results/<galaxy>/validation/<name>/`` (mosaic, truth, detection,
classical peer) and are scored in ``results/<galaxy>/scorecard/``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from starclusters.errors import ConfigError
from starclusters.synthetic.spec import SyntheticGalaxySpec, check_galaxy_psf

#: Config key of the section (for error messages).
CONFIG_KEY = "validation.galaxies"
#: Keys of one validation galaxy entry.
ENTRY_KEYS = ("seed", "synthetic")
#: A name must be usable as one path component and as a Snakemake wildcard value.
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
#: Names taken by the scorecard (the training galaxy's label).
RESERVED_NAMES = ("training",)
#: Synthetic keys that are the run's, not the galaxy's: set from the top-level config.
SHARED_KEYS = ("name", "bands", "pixel_scale_arcsec")


def check_galaxy_settings(synthetic: Mapping, config: Mapping, key: str) -> None:
    """ConfigError naming ``<key>.<field>`` for a galaxy's merged synthetic settings: unknown
    keys; with a whole config (bands, psf), every value the generator needs and its PSF."""
    try:
        spec = SyntheticGalaxySpec.from_config(synthetic)
        if "bands" in config:
            spec = SyntheticGalaxySpec.from_config(
                synthetic,
                bands=tuple(config["bands"]),
                pixel_scale_arcsec=config["pixel_scale_arcsec"],
            )
            spec.check(config["bands"])
        if "psf" in config:
            check_galaxy_psf(spec, config["psf"])
    except ConfigError as error:
        raise ConfigError(str(error).replace("mosaic.synthetic.", f"{key}.")) from None


def validation_galaxies(config: Mapping) -> dict[str, dict]:
    """The checked validation galaxies of ``config``: name -> {"seed", "synthetic"}.

    ``synthetic`` is the training galaxy's ``mosaic.synthetic`` section with the entry's
    keys on top. ConfigError naming ``validation.galaxies.<name>[.<key>]`` for a bad
    name, an unknown key, a missing or reused seed, or a synthetic key the generator
    does not know. An absent section or an empty mapping means no validation galaxies.
    """
    section = (config.get("validation") or {}).get("galaxies") or {}
    if not isinstance(section, Mapping):
        raise ConfigError(f"{CONFIG_KEY}: must map galaxy names to {{seed, synthetic}}")
    base = dict((config.get("mosaic") or {}).get("synthetic") or {})
    training_seed = config.get("seed")
    seeds: dict[int, str] = {}
    out = {}
    for name, entry in section.items():
        key = f"{CONFIG_KEY}.{name}"
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise ConfigError(
                f"{key}: a name must be letters, digits, '_' or '-' (it becomes a folder name)"
            )
        if name in RESERVED_NAMES:
            raise ConfigError(f"{key}: '{name}' labels the training galaxy; pick another name")
        if not isinstance(entry, Mapping):
            raise ConfigError(f"{key}: must be a mapping with keys {', '.join(ENTRY_KEYS)}")
        unknown = sorted(set(entry) - set(ENTRY_KEYS))
        if unknown:
            raise ConfigError(
                f"{key}.{unknown[0]}: unknown key; known keys are {', '.join(ENTRY_KEYS)}"
            )
        if "seed" not in entry or not isinstance(entry["seed"], int):
            raise ConfigError(f"{key}.seed: give an integer seed (its own random galaxy)")
        seed = int(entry["seed"])
        if seed == training_seed:
            raise ConfigError(
                f"{key}.seed: {seed} is the training galaxy's seed; a validation galaxy "
                "must be one the network never saw — pick another seed"
            )
        if seed in seeds:
            raise ConfigError(f"{key}.seed: {seed} is also the seed of {seeds[seed]}")
        seeds[seed] = name
        overrides = dict(entry.get("synthetic") or {})
        shared = sorted(set(overrides) & set(SHARED_KEYS))
        if shared:
            raise ConfigError(
                f"{key}.synthetic.{shared[0]}: set by the run (galaxy, bands, pixel_scale_arcsec), "
                "not per validation galaxy"
            )
        synthetic = base | overrides
        check_galaxy_settings(synthetic, config, f"{key}.synthetic")
        out[name] = {"seed": seed, "synthetic": synthetic}
    return out


#: Config key of the robustness matrix (docs/robustness.md).
ROBUSTNESS_KEY = "robustness"


def robustness_galaxies(config: Mapping) -> dict[str, dict]:
    """The robustness matrix's galaxies: name -> {"seed", "synthetic", "base", "factor"}.

    ``robustness.base`` names a validation galaxy; each ``robustness.factors.<factor>``
    is a mapping of synthetic keys that differ from it (one observing factor at a time:
    ``observation: drizzled``, ``psf_halo``, ``psf_fwhm_scale``, ``sky_e_s``,
    ``exptime_s``, ``distance_mpc``, ``metallicity_z``, ``cluster_av_offset_mag``...).
    Each becomes ``<base>-<factor>``: the base's seed (the same clusters, field and dust
    where the factor leaves them) with those keys on top, scored like a validation galaxy
    but kept out of the scorecard's mean. ConfigError naming ``robustness.<key>``.
    """
    section = config.get(ROBUSTNESS_KEY) or {}
    factors = section.get("factors") or {}
    if not factors:
        return {}
    validation = validation_galaxies(config)
    base = section.get("base")
    if base not in validation:
        raise ConfigError(
            f"{ROBUSTNESS_KEY}.base: {base!r} is not a validation galaxy "
            f"(validation.galaxies: {', '.join(validation) or 'none'})"
        )
    out = {}
    for factor, changes in factors.items():
        key = f"{ROBUSTNESS_KEY}.factors.{factor}"
        if not isinstance(factor, str) or not re.match(r"^[A-Za-z0-9_]+$", factor):
            raise ConfigError(f"{key}: a factor name is letters, digits and '_'")
        if not isinstance(changes, Mapping) or not changes:
            raise ConfigError(f"{key}: give the synthetic keys this factor changes")
        shared = sorted(set(changes) & set(SHARED_KEYS))
        if shared:
            raise ConfigError(f"{key}.{shared[0]}: set by the run, not per factor")
        synthetic = validation[base]["synthetic"] | dict(changes)
        check_galaxy_settings(synthetic, config, key)
        out[f"{base}-{factor}"] = {
            "seed": validation[base]["seed"],
            "synthetic": synthetic,
            "base": base,
            "factor": factor,
        }
    return out
