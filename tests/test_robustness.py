"""The robustness matrix (issue 16): factor galaxies from the config, the paired differences
of the one scorer's tables, the figure."""

import numpy as np
import pandas as pd
import pytest

from starclusters.errors import ConfigError
from starclusters.scorecard.robustness import (
    largest_sensitivities,
    paired_recall,
    plot_robustness,
    robustness_table,
)
from starclusters.scorecard.score import score, to_long
from starclusters.synthetic.validation import robustness_galaxies


def truth_table(n: int = 40, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "cluster_id": np.arange(n),
            "x_px": rng.uniform(10, 490, n),
            "y_px": rng.uniform(10, 490, n),
            "log_age_yr": rng.uniform(6.6, 10, n),
            "log_mass_msun": rng.uniform(3.5, 5.5, n),
            "av_mag": rng.uniform(0, 2, n),
            "visibility": np.linspace(0.5, 20, n),
            "rh_arcsec": np.full(n, 0.1),
        }
    )


def catalog_of(truth: pd.DataFrame, found: np.ndarray, av_shift: float = 0.0, false: int = 0):
    rows = truth[found]
    catalog = pd.DataFrame(
        {
            "x": rows["x_px"].to_numpy() + 0.3,
            "y": rows["y_px"].to_numpy() - 0.2,
            "log_age_yr": rows["log_age_yr"].to_numpy(),
            "log_mass_msun": rows["log_mass_msun"].to_numpy() + 0.05,
            "av_mag": rows["av_mag"].to_numpy() + av_shift,
            "log_rh_arcsec": np.full(len(rows), -1.2),
        }
    )
    extra = pd.DataFrame(
        {"x": 5.0 + 3 * np.arange(false), "y": np.full(false, 5.0)}
        | {c: np.zeros(false) for c in ("log_age_yr", "log_mass_msun", "av_mag")}
        | {"log_rh_arcsec": np.full(false, -1.2)}
    )
    return pd.concat([catalog, extra], ignore_index=True)


def scored(truth, catalog, galaxy, method):
    card = score(truth, catalog)
    return to_long(card, galaxy, method, "validation"), card.matched


def test_the_table_takes_paired_differences():
    truth = truth_table()
    visible = truth["visibility"].to_numpy() > 2.5
    base_found = visible.copy()
    factor_found = visible.copy()
    lost = np.flatnonzero(visible)[:3]  # three visible clusters lost with the factor
    factor_found[lost] = False
    scores, matched = {}, {}
    scores["nw", "cnn"], matched["nw", "cnn"] = scored(
        truth, catalog_of(truth, base_found), "nw", "cnn"
    )
    scores["nw-x", "cnn"], matched["nw-x", "cnn"] = scored(
        truth, catalog_of(truth, factor_found, av_shift=0.3, false=2), "nw-x", "cnn"
    )
    factors = {"nw-x": {"base": "nw", "factor": "x"}}
    table = robustness_table(scores, matched, factors).set_index("metric")
    n_visible = int(visible.sum())
    assert table.loc["recall_base_visible", "base_value"] == pytest.approx(1.0)
    assert table.loc["recall_base_visible", "delta"] == pytest.approx(-3 / n_visible)
    assert table.loc["recall_base_visible", "n_lost"] == 3
    assert table.loc["recall_base_visible", "n_gained"] == 0
    assert table.loc["recall_visible", "delta"] == pytest.approx(-3 / n_visible)
    assert table.loc["n_false", "delta"] == 2
    assert table.loc["bias_av", "delta"] == pytest.approx(0.3, abs=1e-6)
    assert table.loc["bias_log_mass", "delta"] == pytest.approx(0.0, abs=1e-9)
    assert table.loc["precision", "delta"] < 0
    worst = largest_sensitivities(table.reset_index())
    assert list(worst["factor"]) == ["x"]


def test_paired_recall_counts_gains_and_losses():
    base = pd.DataFrame(
        {"cluster_id": [0, 1, 2, 3], "visibility": [5, 5, 5, 1], "detected": [1, 1, 0, 0]}
    )
    factor = pd.DataFrame({"cluster_id": [0, 1, 2, 3], "detected": [0, 1, 1, 1]})
    out = paired_recall(base, factor)
    assert out == {
        "recall_base": pytest.approx(2 / 3),
        "recall_factor": pytest.approx(2 / 3),
        "n": 3,
        "n_lost": 1,
        "n_gained": 1,
    }


def test_the_figure_is_written(tmp_path):
    truth = truth_table()
    found = truth["visibility"].to_numpy() > 2.5
    scores, matched = {}, {}
    for name in ("nw", "nw-a", "nw-b"):
        for method in ("cnn", "classical_grid"):
            scores[name, method], matched[name, method] = scored(
                truth, catalog_of(truth, found), name, method
            )
    factors = {f"nw-{f}": {"base": "nw", "factor": f} for f in ("a", "b")}
    table = robustness_table(scores, matched, factors)
    assert len(table) == 2 * 2 * 7
    plot_robustness(table, tmp_path / "r.png")
    assert (tmp_path / "r.png").stat().st_size > 10_000


def test_factor_galaxies_from_the_config(default_config):
    config = dict(default_config)
    config["robustness"] = {
        "base": "north_west",
        "factors": {"drizzled": {"observation": "drizzled"}, "far": {"distance_mpc": 4.95}},
    }
    galaxies = robustness_galaxies(config)
    assert list(galaxies) == ["north_west-drizzled", "north_west-far"]
    base_seed = default_config["validation"]["galaxies"]["north_west"]["seed"]
    assert all(g["seed"] == base_seed for g in galaxies.values())
    assert galaxies["north_west-far"]["synthetic"]["distance_mpc"] == 4.95
    assert galaxies["north_west-far"]["synthetic"]["arm_phase_deg"] == 45.0  # the base's
    bad = dict(config, robustness={"base": "nowhere", "factors": {"x": {"pixfrac": 0.5}}})
    with pytest.raises(ConfigError, match="robustness.base"):
        robustness_galaxies(bad)
    bad = dict(config, robustness={"base": "north_west", "factors": {"x": {"pixfrac": 0}}})
    with pytest.raises(ConfigError, match="robustness.factors.x.pixfrac"):
        robustness_galaxies(
            dict(
                bad,
                robustness={
                    "base": "north_west",
                    "factors": {"x": {"observation": "drizzled", "pixfrac": 0}},
                },
            )
        )
    with pytest.raises(ConfigError, match="robustness.factors.x.psf_wide"):
        robustness_galaxies(
            dict(config, robustness={"base": "north_west", "factors": {"x": {"psf_wide": 1}}})
        )
    assert robustness_galaxies(dict(config, robustness={"base": None, "factors": {}})) == {}
