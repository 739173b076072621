"""Training data batches and the resumable training loop, on tiny synthetic arrays."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import TINY_BANDS, TINY_NETWORK, TINY_WINDOW_PX, tiny_training_data

from starclusters.errors import ConfigError
from starclusters.model.checkpoint import check_checkpoint, export_model, load_model
from starclusters.model.codec import ParameterGrids
from starclusters.model.data import SPLITS, TrainingData, orient_centred, split_by_seed
from starclusters.model.network import NetworkSpec
from starclusters.model.settings import TrainSettings, batch_share
from starclusters.model.train import check_gpus, train

WINDOW = TINY_WINDOW_PX
BANDS = TINY_BANDS
SPEC = NetworkSpec(**TINY_NETWORK, window_px=WINDOW)


def make_data() -> TrainingData:
    """40 blob mocks and 40 noise backgrounds of WINDOW px in 3 bands (also for ddp_train.py)."""
    return tiny_training_data()


@pytest.fixture(scope="module")
def data():
    return make_data()


@pytest.fixture(scope="module")
def grids():
    return ParameterGrids()


def _settings(**overrides):
    values = dict(
        epochs=2,
        steps_per_epoch=3,
        batch_size=16,
        lr_start=1e-3,
        lr_end=1e-4,
        val_size=16,
        eval_batch_size=8,
    )
    return TrainSettings(**{**values, **overrides})


def test_split_by_seed_is_deterministic_and_near_fractions():
    seeds = np.arange(4000) * 7919
    split = split_by_seed(seeds)
    assert np.array_equal(split, split_by_seed(seeds[::-1])[::-1])  # order-independent
    shares = {s: np.mean(split == s) for s in SPLITS}
    assert abs(shares["train"] - 0.8) < 0.03 and abs(shares["val"] - 0.1) < 0.02
    with pytest.raises(ConfigError, match="train.mock_split_fractions"):
        split_by_seed(seeds, {"train": 0.8, "val": 0.3, "test": 0.1})


def test_batch_is_half_backgrounds_with_masked_cluster_heads(data, grids):
    x, targets = data.make_batch("train", 10, np.random.default_rng(0), grids)
    assert x.shape == (10, 3, WINDOW, WINDOW) and x.dtype == torch.float32
    assert torch.isfinite(x).all()
    bg = ~targets["cluster"]
    assert bg.tolist() == [True] * 5 + [False] * 5
    assert torch.equal(targets["class"][bg], torch.tensor([[1.0, 0.0]] * 5))
    assert torch.equal(targets["class"][~bg], torch.tensor([[0.0, 1.0]] * 5))
    assert (targets["age_av_mass"][bg] == 0).all() and (targets["rh"][bg] == 0).all()
    assert torch.allclose(targets["age_av_mass"][~bg].sum(dim=(1, 2, 3)), torch.ones(5))
    # backgrounds: visibility 0 → the peak of the target is bin 0
    assert (targets["visibility"][bg].argmax(dim=1) == 0).all()


def test_draw_uses_only_its_split_and_rng(data):
    a, ta = data.draw("val", 8, np.random.default_rng(3), jitter_px=2, calibration_jitter=0.2)
    b, tb = data.draw("val", 8, np.random.default_rng(3), jitter_px=2, calibration_jitter=0.2)
    assert np.array_equal(a, b) and ta.equals(tb)
    assert set(data.background_split[ta["background_index"]]) == {"val"}
    assert set(data.mock_split[ta["mock_index"][ta["is_cluster"]]]) == {"val"}
    assert (ta["visibility"][ta["is_cluster"]] > 0).all()
    assert (ta.loc[~ta["is_cluster"], "visibility"] == 0).all()
    assert ta[["shift_y_px", "shift_x_px"]].abs().to_numpy().max() <= 2


@pytest.mark.parametrize("size", [8, 9])
def test_orientation_keeps_the_centre_pixel(size):
    stamp = np.zeros((2, size, size))
    stamp[:, size // 2, size // 2] = 1.0
    stamp[0, size // 2, size // 2 + 1] = 0.5  # marks the orientation
    seen = set()
    for k in range(4):
        for flip in (False, True):
            out = orient_centred(stamp, k, flip)
            assert out.shape == stamp.shape and out[:, size // 2, size // 2].tolist() == [1, 1]
            seen.add(tuple(np.argwhere(out[0] == 0.5)[0]))
    assert len(seen) == 4  # the marker visits all four neighbours


def test_augmentation_keeps_shapes_and_moves_the_cluster(data):
    kwargs = dict(augment=True, jitter_px=3, calibration_jitter=0.2)
    images, table = data.draw("train", 64, np.random.default_rng(1), **kwargs)
    assert images.shape == (64, 3, WINDOW, WINDOW) and images.dtype == np.float32
    plain, _ = data.draw("train", 64, np.random.default_rng(1), augment=False, jitter_px=0)
    assert plain.shape == images.shape
    # the brightest pixel of a bright composed cluster sits at the centre plus its shift
    c = WINDOW // 2
    bright = np.flatnonzero(table["is_cluster"] & (table["visibility"] > 20))
    assert bright.size >= 5
    exact = 0
    for i in bright:
        band = int(np.argmax(data.mocks[table["mock_index"][i]].sum(axis=(1, 2))))
        peak = np.unravel_index(np.argmax(images[i, band]), (WINDOW, WINDOW))
        expected = (c + table["shift_y_px"][i], c + table["shift_x_px"][i])
        assert max(abs(peak[0] - expected[0]), abs(peak[1] - expected[1])) <= 1  # noise
        exact += peak == expected
    assert exact >= 0.7 * bright.size  # a rotation about the wrong pixel would miss by 1


def test_short_training_lowers_the_loss(tmp_path, data, grids):
    settings = _settings(epochs=4, steps_per_epoch=4, lr_start=3e-3, lr_end=1e-3)
    result = train(SPEC, grids, data, settings, tmp_path / "ckpt.pt", seed=1)
    h = result.history
    assert list(h["epoch"]) == [1, 2, 3, 4]
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    assert h["val_loss"].min() < h["val_loss"].iloc[0]
    assert result.best_epoch == int(h.loc[h["val_loss"].idxmin(), "epoch"])
    assert h["lr"].iloc[-1] == pytest.approx(1e-3)
    for col in ("train_loss_class", "val_loss_age_av_mass", "val_accuracy", "seconds"):
        assert col in h


def test_resume_equals_uninterrupted_run(tmp_path, data, grids):
    settings = _settings()
    straight = train(SPEC, grids, data, settings, tmp_path / "a.pt", seed=7)
    # "killed" after epoch 1: a fresh call picks up the checkpoint and finishes epoch 2
    first = train(SPEC, grids, data, settings, tmp_path / "b.pt", seed=7, stop_after_epochs=1)
    assert list(first.history["epoch"]) == [1]
    resumed = train(SPEC, grids, data, settings, tmp_path / "b.pt", seed=7)
    cols = [c for c in straight.history if c != "seconds"]
    pd.testing.assert_frame_equal(straight.history[cols], resumed.history[cols])
    for (k, v), (k2, w) in zip(
        straight.model.state_dict().items(), resumed.model.state_dict().items(), strict=True
    ):
        assert k == k2 and torch.equal(v, w), k
    a = torch.load(tmp_path / "a.pt", weights_only=True)
    b = torch.load(tmp_path / "b.pt", weights_only=True)
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    assert a["scheduler"] == b["scheduler"] and a["numpy_rng"] == b["numpy_rng"]
    # a finished run is not trained again
    again = train(SPEC, grids, data, settings, tmp_path / "b.pt", seed=7)
    pd.testing.assert_frame_equal(again.history, resumed.history)


def test_checkpoint_refuses_other_config(tmp_path, data, grids):
    path = tmp_path / "c.pt"
    settings = _settings(epochs=1, steps_per_epoch=1)
    train(SPEC, grids, data, settings, path, seed=3)
    with pytest.raises(ConfigError, match="train.lr_start"):
        train(SPEC, grids, data, _settings(epochs=1, steps_per_epoch=1, lr_start=0.5), path, 3)
    with pytest.raises(ConfigError, match="^seed"):
        train(SPEC, grids, data, settings, path, seed=4)

    model, loaded_grids, meta = load_model(path)
    assert not model.training and meta["best_epoch"] == 1 and len(meta["history"]) == 1
    check_checkpoint(meta, BANDS, WINDOW, loaded_grids, pixel_scale_arcsec=0.04)
    with pytest.raises(ConfigError, match="^bands"):
        check_checkpoint(meta, ("F336W", "F555W", "F814W"), WINDOW, grids)
    with pytest.raises(ConfigError, match="^window_px"):
        check_checkpoint(meta, BANDS, 64, grids)
    other = ParameterGrids.from_config({"av_mag": {"min": 0.0, "max": 4.0, "bins": 10}})
    with pytest.raises(ConfigError, match=r"^model\.grids\.av_mag"):
        check_checkpoint(meta, BANDS, WINDOW, other)
    with pytest.raises(ConfigError, match="^pixel_scale_arcsec"):
        check_checkpoint(meta, BANDS, WINDOW, grids, pixel_scale_arcsec=0.05)

    export_model(path, tmp_path / "model.pt")
    slim, _, slim_meta = load_model(tmp_path / "model.pt")
    x = torch.randn(2, 3, WINDOW, WINDOW)
    with torch.no_grad():
        assert torch.equal(slim(x)["class"], model(x)["class"])
    assert slim_meta["bands"] == list(BANDS)


def test_seed_offset_trains_another_network_of_the_same_data(tmp_path, data, grids):
    from starclusters.model import train as train_module

    settings = _settings(epochs=1, steps_per_epoch=2)
    base = train(SPEC, grids, data, settings, tmp_path / "a.pt", seed=5)
    offset = _settings(epochs=1, steps_per_epoch=2, seed_offset=1)
    other = train(SPEC, grids, data, offset, tmp_path / "b.pt", seed=5)
    again = train(SPEC, grids, data, offset, tmp_path / "c.pt", seed=5)
    first = next(iter(base.model.state_dict()))
    assert not torch.equal(base.model.state_dict()[first], other.model.state_dict()[first])
    for k, v in other.model.state_dict().items():
        assert torch.equal(v, again.model.state_dict()[k]), k
    assert other.meta["settings"]["seed_offset"] == 1
    # offset 0 keeps the streams of the trainings made before the offset existed
    run = dataclasses.make_dataclass("R", ["seed", "settings"])
    assert train_module._entropy(run(5, settings), 1, 2, 0) == [5, 1, 2]
    assert train_module._entropy(run(5, offset), 1, 2, 0) != [5, 1, 2]
    with pytest.raises(ConfigError, match="train.seed_offset"):
        train(SPEC, grids, data, settings, tmp_path / "b.pt", seed=5)
    # a checkpoint written before the offset existed resumes as offset 0
    old = torch.load(tmp_path / "a.pt", weights_only=True)
    del old["meta"]["settings"]["seed_offset"]
    torch.save(old, tmp_path / "old.pt")
    resumed = train(SPEC, grids, data, settings, tmp_path / "old.pt", seed=5)
    pd.testing.assert_frame_equal(resumed.history, base.history)
    with pytest.raises(ConfigError, match="train.seed_offset"):
        TrainSettings(seed_offset=-1)


def test_precision_picks_bf16_autocast_of_the_training_steps(tmp_path, data, grids, monkeypatch):
    from starclusters.model import train as train_module
    from starclusters.model.train import uses_bf16

    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert uses_bf16("bf16", cpu) and not uses_bf16("fp32", cuda)
    assert uses_bf16("auto", cuda)  # as before the key existed
    for native in (True, False):
        monkeypatch.setattr(train_module, "cpu_has_bf16", lambda native=native: native)
        assert uses_bf16("auto", cpu) is native
    monkeypatch.undo()
    with pytest.raises(ConfigError, match="train.precision"):
        TrainSettings(precision="fp16")
    # the steps really run in bf16: other weights than float32 after the same two steps,
    # the same weights again for the same precision; recorded in the checkpoint's meta
    fits = {
        p: train(
            SPEC,
            grids,
            data,
            _settings(epochs=1, steps_per_epoch=2, precision=p),
            tmp_path / f"{p}.pt",
            seed=5,
        )
        for p in ("fp32", "bf16")
    }
    again = train(
        SPEC,
        grids,
        data,
        _settings(epochs=1, steps_per_epoch=2, precision="bf16"),
        tmp_path / "again.pt",
        seed=5,
    )
    first = next(iter(fits["fp32"].model.state_dict()))
    weights = {p: f.model.state_dict()[first] for p, f in fits.items()}
    assert not torch.equal(weights["fp32"], weights["bf16"])
    assert torch.equal(weights["bf16"], again.model.state_dict()[first])
    assert weights["bf16"].dtype == torch.float32  # autocast leaves the weights float32
    assert fits["bf16"].meta["settings"]["precision"] == "bf16"
    assert np.isfinite(fits["bf16"].history["val_loss"]).all()


def test_settings_errors_name_the_key():
    with pytest.raises(ConfigError, match="train.batch_size"):
        TrainSettings(batch_size=1)
    with pytest.raises(ConfigError, match="train.bogus"):
        TrainSettings.from_config({"bogus": 1})
    assert TrainSettings(epochs=2, steps_per_epoch=5).lr_factor(9) == pytest.approx(0.01)


def test_workflow_rerun_starts_over_after_a_config_change(tmp_path, data, grids):
    """After a config change the old checkpoint is set aside, not resumed and not an error."""
    path = tmp_path / "c.pt"
    train(SPEC, grids, data, _settings(epochs=1, steps_per_epoch=1), path, seed=3)
    changed = _settings(epochs=2, steps_per_epoch=1, lr_start=0.005)
    result = train(SPEC, grids, data, changed, path, seed=3, restart_on_mismatch=True)
    assert list(result.history["epoch"]) == [1, 2]
    straight = train(SPEC, grids, data, changed, tmp_path / "fresh.pt", seed=3)
    for a, b in zip(
        result.model.state_dict().values(), straight.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


# ------------------------------------------------------------- several processes (DDP, gloo)

DDP_SCRIPT = Path(__file__).with_name("ddp_train.py")


def _torchrun(checkpoint, out, *args):
    """Two CPU ranks of tests/ddp_train.py under torchrun; (exit status, output, per-rank report)."""
    out.mkdir(exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "torch.distributed.run",
            "--standalone",
            "--nproc_per_node=2",
            str(DDP_SCRIPT),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(out),
            *map(str, args),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,  # a deadlocked rank fails the test instead of hanging it
    )
    reports = [json.loads((out / f"rank{r}.json").read_text()) for r in range(2)]
    return run.returncode, run.stdout + run.stderr, reports


def test_ddp_on_two_processes_trains_and_resumes(tmp_path):
    code, output, (first, _) = _torchrun(
        tmp_path / "ddp.pt", tmp_path / "a", "--stop-after", "2", "--straight", tmp_path / "s.pt"
    )
    assert code == 0, output
    assert [row["epoch"] for row in first["history"]] == [1, 2]
    state = torch.load(tmp_path / "ddp.pt", weights_only=True)
    assert state["epoch"] == 2 and state["world_size"] == 2
    # killed after epoch 2: the rerun picks up the checkpoint on both ranks
    code, output, (rank0, rank1) = _torchrun(tmp_path / "ddp.pt", tmp_path / "b")
    assert code == 0, output
    h = pd.DataFrame(rank0["history"])
    assert list(h["epoch"]) == [1, 2, 3, 4]
    assert rank0["history"][:2] == first["history"]  # resumed, not retrained
    assert rank1["history"] == rank0["history"] and rank1["weights"] == rank0["weights"]
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    assert h["val_loss"].min() < h["val_loss"].iloc[0]
    # ... and ends as an uninterrupted 2-process run does, bit for bit (gloo on CPU)
    straight = first["straight"]
    assert straight["weights"] == rank0["weights"]
    assert [{**r, "seconds": 0} for r in straight["history"]] == [
        {**r, "seconds": 0} for r in rank0["history"]
    ]

    model, _, meta = load_model(tmp_path / "ddp.pt")
    assert meta["epochs_done"] == 4 and meta["best_epoch"] == rank0["best_epoch"]
    export_model(tmp_path / "ddp.pt", tmp_path / "model.pt")
    slim, _, _ = load_model(tmp_path / "model.pt")
    x = torch.randn(2, 3, WINDOW, WINDOW)
    with torch.no_grad():
        assert torch.equal(slim(x)["class"], model(x)["class"])


def test_ddp_ranks_stop_together_on_a_non_finite_loss(tmp_path):
    code, output, reports = _torchrun(tmp_path / "ddp.pt", tmp_path / "nan", "--nan-on-rank", "1")
    assert code != 0
    for report in reports:  # rank 0's own loss was finite: it stops because rank 1's was not
        assert report["error"].startswith("training loss is nan at epoch 1"), output


# ---------------------------------------------------------------------- the GPU request


def _fake_gpus(monkeypatch, n):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: n > 0)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: n)


def test_more_gpus_than_visible_stop_before_data_are_read(tmp_path, monkeypatch):
    from starclusters.model.stage import train_model

    config = {"model": {}, "train": {"device": "cuda", "gpus": 4, "batch_size": 32}}
    missing = [str(tmp_path / "nowhere.fits")]  # reading them would be an InputFileError

    def run():
        train_model(missing, missing, missing, config, 1, "c.pt", "m.pt", device="cuda")

    _fake_gpus(monkeypatch, 2)
    with pytest.raises(ConfigError, match=r"^train\.gpus: 4 GPUs asked for, but 2 visible"):
        run()
    _fake_gpus(monkeypatch, 0)
    with pytest.raises(ConfigError, match="CUDA is not available"):
        run()


def test_batch_must_split_evenly_over_the_gpus(monkeypatch, config):
    from starclusters.config import check_config

    _fake_gpus(monkeypatch, 4)
    check_gpus("cuda", 4, 32)
    check_gpus("cpu", 3, 32)  # gpus mean nothing on CPU
    with pytest.raises(ConfigError, match=r"^train\.batch_size: 32 .* 3 equal shares.* e\.g\. 33"):
        check_gpus("cuda", 3, 32)
    with pytest.raises(ConfigError, match=r"^train\.batch_size"):
        check_gpus("cuda", 4, 4)  # one image per GPU: no half backgrounds
    with pytest.raises(ConfigError, match=r"^train\.gpus"):
        check_gpus("cuda", 0)
    # the workflow's config check says so before any job runs (no GPU needed there)
    assert config["train"]["gpus"] == 1  # the schema default
    config["train"].update(device="cuda", gpus=3, batch_size=32)
    with pytest.raises(ConfigError, match=r"^train\.batch_size: 32 .* e\.g\. 33"):
        check_config(config)
    # one rule everywhere (batch_share), with TrainSettings' batch when the config has none
    del config["train"]["batch_size"]
    with pytest.raises(ConfigError, match=r"^train\.batch_size: 512 .* 3 equal shares"):
        check_config(config)
    assert batch_share(512, 4) == 128
    # the training settings themselves are checked with the config, not only when training
    config["train"].update(gpus=1, bogus=1)
    with pytest.raises(ConfigError, match=r"^train\.bogus: unknown key"):
        check_config(config)


def test_cli_wants_one_process_per_gpu(tmp_path, monkeypatch, capsys):
    from starclusters.cli import check_launch, main, read_config_json

    check_launch({"device": "cuda", "gpus": 2}, 2)
    check_launch({"device": "cpu", "gpus": 1}, 2)  # gloo on CPU, any number
    with pytest.raises(ConfigError, match=r"^train\.gpus: .* 4 GPU\(s\), but 1 .*torchrun"):
        check_launch({"device": "cuda", "gpus": 4}, 1)
    config = {"train": {"device": "cuda", "gpus": 4}}
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    assert read_config_json(str(path)) == read_config_json(json.dumps(config)) == config
    with pytest.raises(ConfigError, match="--config-json"):
        read_config_json(str(tmp_path / "missing.json"))

    _fake_gpus(monkeypatch, 4)
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setattr(logging.root, "handlers", [])  # the CLI sets up logging
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    missing = str(tmp_path / "nowhere.fits")
    args = ["--mocks", missing, "--backgrounds", missing, "--psfs", missing]
    args += ["--config-json", json.dumps(config), "--seed", "1", "--checkpoint", "c.pt"]
    args += ["--model", "m.pt", "--history", "h.parquet", "--plot", "p.png"]
    assert main(["train", *args, "--log-file", str(tmp_path / "train.log")]) == 1
    assert "WORLD_SIZE=2" in capsys.readouterr().err
    assert "train.gpus" in (tmp_path / "train.log").read_text()


def test_cli_options_pass_through_torchrun():
    """torchrun parses the whole command line, abbreviations included: no option of ours may
    start one of its options (``--log`` would: --log-dir, --logs-specs)."""
    from torch.distributed.run import get_args_parser

    from starclusters.cli import _parser

    theirs = [s for a in get_args_parser()._actions for s in a.option_strings]
    train = _parser()._subparsers._group_actions[0].choices["train"]
    ours = [s for a in train._actions for s in a.option_strings if s.startswith("--")]
    ours.remove("--help")  # torchrun's own, harmless
    assert "--log-file" in ours
    for option in ours:
        assert not [t for t in theirs if t.startswith(option)], option


# ------------------------------------------------------------ batch composition, vectorised


VIS_COLUMNS = [f"visibility_{b}" for b in BANDS]


@pytest.mark.parametrize("calibration_jitter", [0.0, 0.2])
def test_vectorised_draw_equals_the_per_image_loop(data, calibration_jitter):
    """numpy path: bit for bit the images and visibilities of one compose() per window."""
    kw = dict(jitter_px=3, calibration_jitter=calibration_jitter)
    # the reference is the composition benchmark's per-image loop (draw as it was)
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    from bench_batches import loop_draw

    images, table = data.draw("train", 24, np.random.default_rng(8), **kw)
    reference, ref_table = loop_draw(data, 24, np.random.default_rng(8), **kw)
    vis = ref_table[VIS_COLUMNS].to_numpy()
    assert np.array_equal(images, reference)
    assert np.array_equal(table[VIS_COLUMNS].to_numpy(), vis)
    assert np.array_equal(table["visibility"].to_numpy(), vis.max(axis=1))


def _marked(data):
    """``data`` with ~no photon noise (t = 10¹² s) and an orientation mark on every stamp."""
    import dataclasses

    mocks = data.mocks.copy()
    mocks[:, 0, WINDOW // 2 - 1, WINDOW // 2 + 3] += 5.0  # band 0 only: not rotation-symmetric
    return dataclasses.replace(data, mocks=mocks, exptime_s=[1e12] * 3)


@pytest.mark.parametrize("device", [None, "cpu"])
def test_vectorised_draw_geometry(data, device):
    """Backgrounds stay in place, stamps turn about their centre pixel and move by their shift,
    and each visibility is visibility() of that stamp on the background rolled under it."""
    from starclusters.mocks.compose import visibility
    from starclusters.model.data import _orient

    quiet = _marked(data)
    n, c = 32, WINDOW // 2
    images, table = quiet.draw(
        "train", n, np.random.default_rng(2), jitter_px=3, calibration_jitter=0.0, device=device
    )
    assert isinstance(images, np.ndarray if device is None else torch.Tensor)
    images = np.asarray(images)
    assert images.shape == (n, 3, WINDOW, WINDOW) and images.dtype == np.float32
    orientations = [(k, flip) for flip in (False, True) for k in range(4)]
    for i in range(n):
        bgs = [_orient(quiet.backgrounds[table["background_index"][i]], *o) for o in orientations]
        if i < n // 2:  # bare backgrounds, only turned
            assert table["mock_index"][i] == -1 and table["visibility"][i] == 0
            assert sum(np.array_equal(images[i], bg) for bg in bgs) == 1
            continue
        m, dy, dx = table.loc[i, ["mock_index", "shift_y_px", "shift_x_px"]].astype(int)
        stamps = [orient_centred(quiet.mocks[m], *o) for o in orientations]
        found = [
            (a, s)
            for a in range(8)
            for s in range(8)
            if np.allclose(
                images[i], bgs[a] + np.roll(stamps[s], (dy, dx), axis=(-2, -1)), rtol=0, atol=1e-4
            )
        ]
        assert len(found) == 1, found  # one orientation of each, the background unmoved
        a, s = found[0]
        residual = (images[i] - bgs[a])[1:].sum(axis=0)  # the blob, without the mark
        assert np.unravel_index(np.argmax(residual), residual.shape) == (c + dy, c + dx)
        expected = visibility(
            stamps[s].astype(float),
            np.roll(bgs[a], (-dy, -dx), axis=(-2, -1)).astype(float),
            quiet.rh_obs_px[m],
        )
        got = table.loc[i, VIS_COLUMNS].to_numpy(float)
        if device is None:
            assert np.array_equal(got, expected)
        else:
            np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("device", [None, "cpu"])
def test_a_dark_mock_leaves_its_background_untouched(data, device):
    """A positive differs from a negative by the cluster's light and its shot noise only: with
    stamps of zero flux every composed window is one orientation of its background, bit for
    bit, so the class head has no cue but the cluster (thesis §3.1.3's second draw of the sky
    noise was one; docs/mocks.md)."""
    from starclusters.model.data import _orient

    dark = dataclasses.replace(data, mocks=np.zeros_like(data.mocks))
    n = 32
    images, table = dark.draw("train", n, np.random.default_rng(5), jitter_px=3, device=device)
    images = np.asarray(images)
    orientations = [(k, flip) for flip in (False, True) for k in range(4)]
    for i in range(n // 2, n):
        background = dark.backgrounds[table["background_index"][i]]
        assert any(np.array_equal(images[i], _orient(background, *o)) for o in orientations), i
        assert table["visibility"][i] == 0


@pytest.mark.parametrize("device", [None, "cpu"])
def test_vectorised_draw_is_deterministic_given_the_rng(data, device):
    kw = dict(jitter_px=2, calibration_jitter=0.2, device=device)
    a, ta = data.draw("val", 16, np.random.default_rng(9), **kw)
    b, tb = data.draw("val", 16, np.random.default_rng(9), **kw)
    c, _ = data.draw("val", 16, np.random.default_rng(10), **kw)
    assert np.array_equal(np.asarray(a), np.asarray(b)) and ta.equals(tb)
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_torch_draw_matches_the_numpy_draw(data):
    """Same rng: the same windows, orientations, shifts and factors; only the noise differs."""
    quiet = _marked(data)
    kw = dict(jitter_px=2, calibration_jitter=0.2)
    a, ta = quiet.draw("train", 20, np.random.default_rng(4), **kw)
    b, tb = quiet.draw("train", 20, np.random.default_rng(4), device="cpu", **kw)
    assert isinstance(b, torch.Tensor) and b.dtype == torch.float32 and b.device.type == "cpu"
    vis = ["visibility", *VIS_COLUMNS]
    pd.testing.assert_frame_equal(ta.drop(columns=vis), tb.drop(columns=vis))
    np.testing.assert_allclose(tb[vis].to_numpy(), ta[vis].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.numpy(), a, rtol=0, atol=1e-4)


def test_make_batch_composes_on_cpu_in_numpy_and_pickles_without_device_copies(data, grids):
    import pickle

    x, targets = data.make_batch("train", 8, np.random.default_rng(1), grids)
    y, _ = data.make_batch("train", 8, np.random.default_rng(1), grids, device="cpu")
    assert torch.equal(x, y) and x.device.type == "cpu"
    data.draw("train", 4, np.random.default_rng(0), device="cpu")  # makes the CPU torch copies
    clone = pickle.loads(pickle.dumps(data))
    assert clone._kits == {} and clone.fingerprint() == data.fingerprint()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_make_batch_on_the_gpu(data, grids):
    quiet = _marked(data)
    kw = dict(jitter_px=2, calibration_jitter=0.2)
    x, targets = quiet.make_batch("train", 16, np.random.default_rng(3), grids, device="cuda", **kw)
    assert x.device.type == "cuda" and x.dtype == torch.float32 and x.shape == (16, 3, 32, 32)
    assert all(t.device.type == "cuda" for t in targets.values())
    a, ta = quiet.draw("train", 16, np.random.default_rng(3), **kw)
    b, tb = quiet.draw("train", 16, np.random.default_rng(3), device="cuda", **kw)
    vis = ["visibility", *VIS_COLUMNS]
    pd.testing.assert_frame_equal(ta.drop(columns=vis), tb.drop(columns=vis))
    np.testing.assert_allclose(tb[vis].to_numpy(), ta[vis].to_numpy(), rtol=1e-12)
    np.testing.assert_allclose(b.cpu().numpy(), a, rtol=0, atol=1e-4)


# ------------------------------------------------------------------ regression network (ch. 2)

REGRESSION_SPEC = dataclasses.replace(SPEC, head="regression", fc_dropout=0.5)


def test_regression_batches_hold_clusters_only(data, grids):
    x, targets = data.make_batch("train", 8, np.random.default_rng(0), grids, head="regression")
    assert x.shape == (8, 3, WINDOW, WINDOW)
    assert targets["cluster"].all() and set(targets) == {"cluster", "age", "mass", "rh"}
    assert torch.all((targets["age"] >= 6.6) & (targets["age"] <= 10.1))


def test_regression_loss_is_smooth_l1_summed_over_parameters():
    from starclusters.model.targets import regression_loss

    outputs = {
        "age": torch.tensor([7.0, 9.0]),
        "mass": torch.tensor([4.0, 4.0]),
        "rh": torch.tensor([-1.0, -1.0]),
    }
    targets = {
        "age": torch.tensor([7.5, 6.0]),
        "mass": torch.tensor([4.0, 9.0]),
        "rh": torch.tensor([-1.0, 0.0]),
        "cluster": torch.tensor([True, False]),
    }
    total, parts = regression_loss(outputs, targets)
    # cluster 0 only: age error 0.5 -> 0.5 * 0.5**2; the background's errors do not count
    assert float(parts["age"]) == pytest.approx(0.125)
    assert float(parts["mass"]) == 0 and float(parts["rh"]) == 0
    targets["cluster"] = torch.tensor([True, True])
    total, parts = regression_loss(outputs, targets)
    assert float(parts["age"]) == pytest.approx((0.125 + 2.5) / 2)  # |3| - 0.5 above 1
    assert float(total) == pytest.approx(sum(float(v) for v in parts.values()))


def test_regression_network_trains_and_predicts_rotation_invariantly(tmp_path, data, grids):
    from starclusters.model.inference import predict

    settings = _settings(epochs=3, steps_per_epoch=4, lr_start=3e-3, lr_end=1e-3)
    result = train(REGRESSION_SPEC, grids, data, settings, tmp_path / "r.pt", seed=2)
    h = result.history
    assert h["train_loss"].iloc[-1] < h["train_loss"].iloc[0]
    assert {"train_loss_age", "val_loss_mass", "val_loss_rh"} <= set(h)
    assert h["val_accuracy"].isna().all()
    model, loaded_grids, meta = load_model(tmp_path / "r.pt")
    assert model.spec.head == "regression"
    images, _ = data.draw("test", 4, np.random.default_rng(1), n_backgrounds=0)
    out = predict(model, images, loaded_grids)
    turned = predict(model, np.rot90(images, 1, axes=(-2, -1)).copy(), loaded_grids)
    for name in ("log_age_yr", "log_mass_msun", "log_rh_arcsec"):
        assert np.isfinite(out[name]).all()
        np.testing.assert_allclose(out[name], turned[name], rtol=1e-4, atol=1e-4)
    assert np.isnan(out["p_cluster"]).all() and np.isnan(out["av_mag"]).all()


def test_a_bank_shard_with_nan_pixels_is_refused_before_training(tmp_path):
    from starclusters.errors import InputFileError
    from starclusters.io import write_cube, write_table
    from starclusters.model.data import load_training_data

    data = make_data()
    mocks = data.mocks[:6].copy()
    mocks[4, 1, 3, 3] = np.nan
    write_cube(tmp_path / "mocks.fits", mocks, {"BANDS": ",".join(BANDS)})
    write_table(tmp_path / "mocks.parquet", data.mock_params.iloc[:6])
    write_cube(tmp_path / "bg.fits", data.backgrounds[:4], {"BANDS": ",".join(BANDS)})
    with pytest.raises(InputFileError, match=r"mocks.fits: 1 of 6 mock images hold NaN.*image 4"):
        load_training_data(
            [tmp_path / "mocks.fits"],
            [tmp_path / "bg.fits"],
            [],
            bands=BANDS,
            window_px=WINDOW,
            pixel_scale_arcsec=0.04,
            psf_oversampling=3,
        )
