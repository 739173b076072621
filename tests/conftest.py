"""Shared fixtures: small photometry configs and tables built once per session."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def default_config() -> dict:
    """The embedded default config, validated (schema defaults filled in)."""
    from starclusters.config import load_config

    return load_config(REPO / "config" / "config.yaml")


@pytest.fixture
def config(default_config) -> dict:
    """A private deep copy of the default config that a test may change."""
    return copy.deepcopy(default_config)


@pytest.fixture(scope="session")
def parsec_grid():
    from starclusters.photometry.parsec import read_parsec_grid

    return read_parsec_grid()


@pytest.fixture(scope="session")
def small_population(default_config):
    """A StellarPopulation on a coarse age grid (log t = 6.6, 7.0, ..., 10.2 minus the tail)."""
    from starclusters.photometry import (
        build_extinction_table,
        build_isochrone_table,
        population_from_config,
    )

    phot = copy.deepcopy(default_config["photometry"])
    phot["isochrones"]["log_age_yr"] = {"min": 6.6, "max": 10.0, "step": 0.2}
    phot["extinction"]["av_mag"] = {"min": 0.0, "max": 2.0, "step": 1.0}
    bands = default_config["bands"]
    iso, _ = build_isochrone_table(phot, bands)
    ext, _ = build_extinction_table(phot, bands)
    return population_from_config(iso, ext, phot, bands)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(12345)


def write_yaml(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


#: Window (px) and bands of the tiny synthetic training data below.
TINY_WINDOW_PX = 32
TINY_BANDS = ("F336W", "F438W", "F814W")
#: A ClusterNetwork size that runs in milliseconds: one bottleneck per stage (NetworkSpec keys).
TINY_NETWORK = {
    "stage_blocks": (1, 1, 1, 1),
    "stage_channels": (16, 32, 64, 128),
    "stem_channels": 16,
    "fc_width": 64,
}


def gaussian_renderer():
    """A StampRenderer of a Gaussian ePSF (sigma = 1 native px, oversampling 3), 3 bands,
    0.04″ pixels, 32-px stamps: fast, for the bank's and the star groups' tests."""
    from starclusters.mocks.render import StampRenderer

    o = 3
    x = np.arange(-45, 46)
    epsf = np.exp(-0.5 * (x[:, None] ** 2 + x[None, :] ** 2) / (1.0 * o) ** 2)
    epsf /= epsf.sum()
    return StampRenderer(np.stack([epsf] * 3), o, 0.04, 32, core_radius_px=4)


def tiny_training_data(seed: int = 5, n_mocks: int = 40, n_backgrounds: int = 40):
    """A TrainingData of Gaussian blobs on Gaussian-noise backgrounds, every split populated."""
    from starclusters.model.data import blob_training_data

    return blob_training_data(n_mocks, n_backgrounds, window_px=TINY_WINDOW_PX, seed=seed)


@pytest.fixture(scope="session")
def tiny_data():
    """Session-wide :func:`tiny_training_data` (do not modify)."""
    return tiny_training_data()
