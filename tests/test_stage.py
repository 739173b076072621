"""The photometry stage's table builders, from the config section."""

import copy

import numpy as np
import pytest
from test_parsec import write_cmd

from starclusters.config import grid
from starclusters.errors import ConfigError, InputFileError
from starclusters.photometry import build_isochrone_table


def cmd_photometry(default_config, files):
    phot = copy.deepcopy(default_config["photometry"])
    phot["isochrones"].update(
        source="cmd",
        cmd_files=[str(f) for f in files],
        metallicity_z=0.0152,
        log_age_yr={"min": 7.0, "max": 7.5, "step": 0.1},
    )
    return phot


def test_cmd_source_uses_native_columns_and_interpolates_ages(tmp_path, default_config):
    phot = cmd_photometry(default_config, [write_cmd(tmp_path / "iso.dat", ages=(7.0, 7.5))])
    table, meta = build_isochrone_table(phot, ["F336W", "F438W", "F814W"])
    assert meta["band_method"] == {
        b: "native isochrone column" for b in ("F336W", "F438W", "F814W")
    }
    assert sorted(table["log_age_yr"].unique()) == [7.0, 7.1, 7.2, 7.3, 7.4, 7.5]
    # the fixture's magnitudes fall by 0.1 mag per dex of age: the interpolation is linear in log t
    first = table.groupby("log_age_yr")["abs_mag_F336W"].first()
    np.testing.assert_allclose(np.diff(first.to_numpy()), -0.01, atol=1e-9)


def test_cmd_file_without_the_band_or_anchors(tmp_path, default_config):
    phot = cmd_photometry(default_config, [write_cmd(tmp_path / "iso.dat", ages=(7.0, 7.5))])
    phot["filter_curves"]["F555W"] = "HST_WFC3_F555W"
    with pytest.raises(InputFileError, match=r"iso\.dat.*no F555W column"):
        build_isochrone_table(phot, ["F336W", "F555W"])


def test_grid_from_config_range():
    np.testing.assert_allclose(
        grid({"min": 6.6, "max": 10.1, "step": 0.05}, "k"), np.arange(6.6, 10.1001, 0.05)
    )
    assert len(grid({"min": 0.0, "max": 3.0, "step": 0.1}, "k")) == 31
    with pytest.raises(ConfigError, match="photometry.x: max"):
        grid({"min": 2.0, "max": 1.0, "step": 0.1}, "photometry.x")
    with pytest.raises(ConfigError, match="whole number of steps"):
        grid({"min": 0.0, "max": 1.0, "step": 0.3}, "photometry.x")


def test_metallicity_clamp_is_logged_once_per_process(default_config, monkeypatch, caplog):
    from starclusters.photometry import stage

    monkeypatch.setattr(stage, "_WARNED", set())
    phot = copy.deepcopy(default_config["photometry"])
    assert phot["isochrones"]["metallicity_z"] == 0.03  # above the grid's 0.0278
    with caplog.at_level("WARNING", logger=stage.__name__):
        for ages in ([8.0], [8.5], [9.0]):
            build_isochrone_table(phot, ["F814W"], log_ages_yr=ages)
    clamps = [r for r in caplog.records if "outside the isochrone grid" in r.getMessage()]
    assert len(clamps) == 1
