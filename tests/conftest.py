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


def gaussian_blobs(rng, n: int, window_px: int = TINY_WINDOW_PX) -> np.ndarray:
    """n Gaussian-blob 'clusters' (n, 3, S, S) counts/s, centred on pixel (S//2, S//2)."""
    y, x = np.mgrid[0:window_px, 0:window_px] - window_px // 2
    sigma = rng.uniform(1.0, 3.0, n)
    flux = 10 ** rng.uniform(0.0, 1.5, (n, 3))
    profile = np.exp(-0.5 * (x**2 + y**2)[None] / sigma[:, None, None] ** 2)
    profile /= profile.sum(axis=(1, 2), keepdims=True)
    return (flux[:, :, None, None] * profile[:, None]).astype(np.float32)


def tiny_training_data(seed: int = 5, n_mocks: int = 40, n_backgrounds: int = 40):
    """A TrainingData of Gaussian blobs on Gaussian-noise backgrounds, every split populated."""
    import pandas as pd

    from starclusters.model.data import TrainingData

    rng = np.random.default_rng(seed)
    params = pd.DataFrame(
        {
            "log_age_yr": rng.uniform(6.6, 10.1, n_mocks),
            "log_mass_msun": rng.uniform(3.5, 5.5, n_mocks),
            "av_mag": rng.uniform(0.0, 3.0, n_mocks),
            "log_rh_arcsec": rng.uniform(-1.4, -0.4, n_mocks),
            "seed": rng.integers(0, 2**63, n_mocks),
        }
    )

    def splits(n):  # 3/4 train, 1/8 val, 1/8 test (a hash split of few seeds may leave one empty)
        return np.array(["train"] * (n - 2 * (n // 8)) + ["val"] * (n // 8) + ["test"] * (n // 8))

    backgrounds = rng.normal(0.05, 0.01, (n_backgrounds, 3, TINY_WINDOW_PX, TINY_WINDOW_PX))
    return TrainingData(
        bands=TINY_BANDS,
        pixel_scale_arcsec=0.04,
        exptime_s=[1200.0, 1000.0, 1000.0],
        psf_rh_px=[1.0, 1.0, 1.3],
        mocks=gaussian_blobs(rng, n_mocks),
        mock_params=params,
        mock_split=splits(n_mocks),
        backgrounds=backgrounds.astype(np.float32),
        background_split=splits(n_backgrounds),
    )


@pytest.fixture(scope="session")
def tiny_data():
    """Session-wide :func:`tiny_training_data` (do not modify)."""
    return tiny_training_data()
