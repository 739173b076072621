"""The training stage's products, built from config sections (used by the workflow scripts)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
import pandas as pd

from starclusters.errors import ConfigError
from starclusters.model.checkpoint import check_checkpoint, export_model, load_model
from starclusters.model.codec import ParameterGrids
from starclusters.model.data import TrainingData, load_training_data
from starclusters.model.evaluate import EvaluateSettings, run_test_set, score_test_set
from starclusters.model.network import NetworkSpec
from starclusters.model.settings import RUN_DEFAULTS, train_settings
from starclusters.model.train import check_gpus, rank_and_world, train
from starclusters.plotting import save_figure

log = logging.getLogger(__name__)


def network_spec(
    model: Mapping, window_px: int, n_bands: int, grids: ParameterGrids
) -> NetworkSpec:
    """The network of the ``model`` config section; head sizes come from the grids (defined once)."""
    age, av, mass = grids.shape_3d
    section = {k: v for k, v in model.items() if k != "grids"}
    return NetworkSpec.from_config(
        section,
        in_bands=n_bands,
        window_px=window_px,
        n_age=age,
        n_av=av,
        n_mass=mass,
        n_rh=len(grids.log_rh_arcsec),
        n_visibility=len(grids.visibility),
    )


def train_model(
    mock_paths: Sequence[str],
    background_paths: Sequence[str],
    psf_paths: Sequence[str],
    config: Mapping,
    seed: int,
    checkpoint_path: str,
    model_path: str,
    device: str = "cpu",
    star_group_paths: Sequence[str] = (),
) -> pd.DataFrame:
    """Train the network of ``config`` (resuming from ``checkpoint_path`` if it exists) and
    export the best model to ``model_path``; returns the history.

    device: this process's device ("cpu", "cuda" or, one process per GPU under torchrun,
    "cuda:<LOCAL_RANK>"). The GPU request (``train.gpus`` against the visible GPUs, the
    batch split) is checked before any data are read; under torchrun only rank 0 writes
    ``model_path``. star_group_paths: the star-group shards (hard negatives), needed when
    ``train.star_group_fraction`` is above 0.
    """
    grids = ParameterGrids.from_config(config["model"].get("grids"))
    settings = train_settings(config["train"])
    check_gpus(device, config["train"].get("gpus", RUN_DEFAULTS["gpus"]), settings.batch_size)
    data = training_data(mock_paths, background_paths, psf_paths, config, star_group_paths)
    spec = network_spec(config["model"], config["window_px"], len(config["bands"]), grids)
    result = train(
        spec,
        grids,
        data,
        settings,
        checkpoint_path,
        seed,
        device,
        restart_on_mismatch=True,  # the workflow reran us because config or data changed
    )
    rank, _ = rank_and_world()
    if rank == 0:
        export_model(checkpoint_path, model_path)
    log.info("best epoch %d, validation loss %.4f", result.best_epoch, result.best_val_loss)
    return result.history


def plot_history(history: pd.DataFrame, path: str) -> None:
    """Training and validation loss and class accuracy per epoch."""
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    ax_loss.plot(history["epoch"], history["train_loss"], "o-", label="train")
    ax_loss.plot(history["epoch"], history["val_loss"], "s-", label="validation")
    best = (
        history[history["best"]]
        if "best" in history
        else history.iloc[[history["val_loss"].idxmin()]]
    )
    ax_loss.plot(best["epoch"], best["val_loss"], "k*", ms=12, label="best (kept)")
    ax_loss.set_xlabel("epoch")
    ax_loss.set_ylabel("loss (sum of the four heads)")
    ax_loss.legend()
    ax_acc.plot(history["epoch"], history["train_accuracy"], "o-", label="train")
    ax_acc.plot(history["epoch"], history["val_accuracy"], "s-", label="validation")
    ax_acc.set_xlabel("epoch")
    ax_acc.set_ylabel("cluster/background accuracy")
    ax_acc.legend()
    save_figure(fig, path)


def training_data(
    mock_paths: Sequence[str],
    background_paths: Sequence[str],
    psf_paths: Sequence[str],
    config: Mapping,
    star_group_paths: Sequence[str] = (),
) -> TrainingData:
    """The bank, backgrounds and star groups of ``config`` with their splits, as training
    saw them. ConfigError naming ``train.star_group_fraction`` when the share is above 0
    and no star-group shards are given."""
    if not star_group_paths and train_settings(config["train"]).star_group_fraction > 0:
        raise ConfigError(
            "train.star_group_fraction: above 0 but no star-group shards given; build them "
            "(rule star_group_shard) and pass them, or set the share to 0"
        )
    return load_training_data(
        mock_paths,
        background_paths,
        psf_paths,
        bands=config["bands"],
        window_px=config["window_px"],
        pixel_scale_arcsec=config["pixel_scale_arcsec"],
        psf_oversampling=config["psf"]["oversampling"],
        mock_split_fractions=config["train"].get("mock_split_fractions"),
        star_group_paths=star_group_paths,
    )


def evaluate_model(
    model_path: str,
    mock_paths: Sequence[str],
    background_paths: Sequence[str],
    psf_paths: Sequence[str],
    config: Mapping,
    seed: int,
    device: str = "cpu",
    star_group_paths: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-window test table, metrics table) of the trained model on held-out mocks.

    The model must match the config (bands, window, grids, pixel scale) and have been
    trained on exactly these shards and splits (else its test mocks could be training
    mocks): ConfigError before any window is composed.
    """
    settings = EvaluateSettings.from_config(config.get("evaluate"))
    model, grids, meta = load_model(model_path, device)
    check_checkpoint(
        meta,
        config["bands"],
        config["window_px"],
        ParameterGrids.from_config(config["model"].get("grids")),
        config["pixel_scale_arcsec"],
    )
    data = training_data(mock_paths, background_paths, psf_paths, config, star_group_paths)
    if meta.get("data_fingerprint") != data.fingerprint():
        raise ConfigError(
            f"{model_path}: the model was trained on another bank, other backgrounds or other "
            "splits (train.mock_split_fractions) than these, so its test mocks may have been "
            "training mocks; retrain it on these shards"
        )
    table = run_test_set(model, grids, data, settings, seed, device)
    return table, score_test_set(table)
