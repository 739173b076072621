"""Validation galaxies: the config section's checks and the merged synthetic settings."""

from __future__ import annotations

import pytest

from starclusters.errors import ConfigError
from starclusters.synthetic.spec import SyntheticGalaxySpec
from starclusters.synthetic.validation import validation_galaxies


def with_galaxies(config: dict, galaxies: dict) -> dict:
    config["validation"] = {"galaxies": galaxies}
    return config


def test_the_default_lists_at_least_three_unseen_galaxies(default_config):
    galaxies = validation_galaxies(default_config)
    assert len(galaxies) >= 3
    seeds = {entry["seed"] for entry in galaxies.values()}
    assert len(seeds) == len(galaxies) and default_config["seed"] not in seeds
    for entry in galaxies.values():
        spec = SyntheticGalaxySpec.from_config(entry["synthetic"])
        # another part of the disk or another arm phase than the training galaxy
        training = SyntheticGalaxySpec.from_config(default_config["mosaic"]["synthetic"])
        assert (spec.field_offset_arcsec, spec.arm_phase_deg) != (
            training.field_offset_arcsec,
            training.arm_phase_deg,
        )


def test_entries_go_over_the_training_galaxys_settings(config):
    config["mosaic"]["synthetic"] = {"shape_px": [1024, 1024], "n_clusters": 300, "noise": True}
    galaxies = validation_galaxies(
        with_galaxies(config, {"a": {"seed": 7, "synthetic": {"n_clusters": 40}}})
    )
    assert galaxies["a"]["seed"] == 7
    assert galaxies["a"]["synthetic"] == {"shape_px": [1024, 1024], "n_clusters": 40, "noise": True}


def test_no_section_means_no_validation_galaxies(config):
    config.pop("validation", None)
    assert validation_galaxies(config) == {}


def test_a_null_section_removes_the_defaults_galaxies(default_config):
    """A preset's ``validation: {galaxies: null}`` over the default (merged as Snakemake
    merges config files) passes the schema and leaves no validation galaxy."""
    from starclusters.config import merge, validate_config

    config = merge(default_config, {"validation": {"galaxies": None}})
    validate_config(config)
    assert validation_galaxies(config) == {}
    # an empty mapping merges into the default's and keeps them: why null is the switch
    assert validation_galaxies(merge(default_config, {"validation": {"galaxies": {}}}))


@pytest.mark.parametrize(
    ("galaxies", "message"),
    [
        ({"a": {"seed": 7, "colour": 1}}, r"validation\.galaxies\.a\.colour: unknown key"),
        ({"a": {"synthetic": {}}}, r"validation\.galaxies\.a\.seed"),
        ({"a": {"seed": 83}}, r"validation\.galaxies\.a\.seed: 83 is the training galaxy's seed"),
        ({"a": {"seed": 7}, "b": {"seed": 7}}, r"validation\.galaxies\.b\.seed: 7 is also"),
        (
            {"a": {"seed": 7, "synthetic": {"n_clustrs": 4}}},
            r"validation\.galaxies\.a\.synthetic\.n_clustrs: unknown key",
        ),
        (
            {"a": {"seed": 7, "synthetic": {"bands": ["F336W"]}}},
            r"validation\.galaxies\.a\.synthetic\.bands: set by the run",
        ),
        ({"a/b": {"seed": 7}}, r"validation\.galaxies\.a/b: a name must be"),
        ({"training": {"seed": 7}}, r"validation\.galaxies\.training: 'training' labels"),
    ],
)
def test_bad_entries_name_the_key(config, galaxies, message):
    with pytest.raises(ConfigError, match=message):
        validation_galaxies(with_galaxies(config, galaxies))
