"""Bad files get a clear message, and a rerun repairs them (issue 18; docs/reliability.md).

One test per defect: damaged shards and images (truncated, not FITS, failing their
checksum) as one InputFileError naming the file and what to do; bands off the first
one's grid or without usable pixels refused by ``detect``; config mistakes stopped at load
time with the key named; a stale Snakemake lock removed when no Snakemake runs.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml
from astropy.wcs import WCS

from starclusters.cli import main as cli
from starclusters.config import load_config
from starclusters.errors import ConfigError, InputFileError
from starclusters.io import read_cube, read_table, write_cube, write_table
from starclusters.mosaic.prepare import write_image

REPO = Path(__file__).resolve().parents[1]
BANDS = ["F336W", "F438W", "F814W"]
SCALE = 0.04
SHAPE = (48, 56)


def truncate(path: Path, keep: float = 0.5) -> Path:
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.truncate(int(size * keep))
    return path


# ------------------------------------------------------------- 1. damaged files


def mock_shard(folder: Path, n: int = 3, shard: int = 0) -> Path:
    """A mock shard as the bank writes it (cube + table) under results/<galaxy>/mocks/."""
    path = folder / "results" / "g" / "mocks" / f"shard_{shard}.fits"
    cube = np.random.default_rng(shard).random((n, len(BANDS), 64, 64)).astype(np.float32)
    write_cube(path, cube, {"BANDS": ",".join(BANDS)})
    write_table(path.with_suffix(".parquet"), __import__("pandas").DataFrame({"i": range(n)}))
    return path


def test_truncated_mock_shard_names_the_file_and_the_command_that_rebuilds_it(tmp_path):
    from starclusters.model.data import load_training_data

    shard = truncate(mock_shard(tmp_path))  # was: ValueError "cannot reshape array ..."
    with pytest.raises(InputFileError) as err:
        load_training_data(
            [shard], [shard], [], bands=BANDS, window_px=64, pixel_scale_arcsec=SCALE,
            psf_oversampling=3,
        )  # fmt: skip
    message = str(err.value)
    assert message.startswith(f"{shard}: ")
    assert "truncated" in message
    assert f"`rm {shard}`" in message and "rerun" in message


def test_damaged_shard_fails_its_checksum(tmp_path):
    shard = mock_shard(tmp_path)
    data, header = read_cube(shard, ndim=4)
    assert data.shape == (3, 3, 64, 64) and "DATASUM" in header
    with open(shard, "r+b") as handle:  # flip a byte inside the pixels
        handle.seek(shard.stat().st_size - 5000)
        byte = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(InputFileError, match=re.escape(f"{shard}: ") + ".*DATASUM.*`rm "):
        read_cube(shard)


def test_cube_of_the_wrong_dimension_is_refused(tmp_path):
    path = tmp_path / "results" / "cube.fits"
    write_cube(path, np.zeros((4, 4), np.float32))
    with pytest.raises(InputFileError, match="expected a 4-D cube.*found shape \\(4, 4\\)"):
        read_cube(path, ndim=4)


def test_truncated_or_foreign_file_as_a_files_band_is_named(tmp_path):
    from starclusters.mosaic.prepare import read_band

    image = tmp_path / "F336W.fits"
    write_image(image, np.ones(SHAPE, np.float32), grid_wcs(), {"BUNIT": "ELECTRONS/S"})
    truncate(image)  # was: TypeError "buffer is too small for requested array"
    with pytest.raises(InputFileError, match=re.escape(f"{image}: ") + ".*truncated.*replace"):
        read_band(image, "F336W")
    text = tmp_path / "notes.fits"
    text.write_text("not an image\n")
    with pytest.raises(InputFileError, match=re.escape(f"{text}: not a readable FITS file")):
        read_band(text, "F336W")


def test_truncated_parquet_table_names_the_command(tmp_path):
    path = tmp_path / "results" / "t.parquet"
    write_table(path, __import__("pandas").DataFrame({"a": np.arange(1000.0)}))
    truncate(path)
    with pytest.raises(InputFileError, match=re.escape(f"`rm {path}`")):
        read_table(path)


# ------------------------------------------------------ detect: the user's images


def grid_wcs(scale: float = SCALE, shift_px: float = 0.0) -> WCS:
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [204.25, -29.87]
    wcs.wcs.crpix = [SHAPE[1] / 2 + shift_px, SHAPE[0] / 2]
    wcs.wcs.cdelt = [-scale / 3600, scale / 3600]
    return wcs


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    import torch
    from test_detect import save_model

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield save_model(tmp_path_factory.mktemp("model") / "model.pt")
    torch.set_num_threads(threads)


def user_images(folder: Path, change=None) -> list[Path]:
    """Three good bands on one grid; ``change(b, image, wcs)`` may alter band b."""
    rng = np.random.default_rng(2)
    paths = []
    for b, band in enumerate(BANDS):
        image, wcs = rng.gamma(2.0, 0.05, SHAPE).astype(np.float32), grid_wcs()
        if change:
            image, wcs = change(b, image, wcs)
        paths.append(folder / f"{band}.fits")
        write_image(paths[-1], image, wcs, {"BAND": band})
    return paths


def detect(model, images, out, capsys) -> tuple[int, str]:
    """``starclusters detect`` on the images: (exit status, what it wrote to stderr)."""
    argv = ["detect", "--model", str(model), "--images", *map(str, images)]
    rc = cli([*argv, "--output", str(out), "--tile-px", "64", "--threads", "1"])
    return rc, capsys.readouterr().err


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda p: truncate(p), "truncated"),  # was: TypeError "buffer is too small"
        (lambda p: p.write_text("SIMPLE? no\n"), "not a readable FITS file"),  # was: OSError
    ],
)
def test_detect_names_a_truncated_or_foreign_image(model, tmp_path, capsys, damage, message):
    images = user_images(tmp_path)
    damage(images[1])
    rc, log = detect(model, images, tmp_path / "maps.fits", capsys)
    assert rc == 1
    assert f"{images[1]}: " in log and message in log and "replace it" in log
    assert not (tmp_path / "maps.fits").exists()


def test_detect_checks_every_band_against_the_first_and_the_model(model, tmp_path):
    from starclusters.detect.stage import detect_images

    def coarser(b, image, wcs):  # was: accepted, only band 0's WCS was read
        return image, grid_wcs(0.05) if b == 2 else wcs

    images = user_images(tmp_path, coarser)
    with pytest.raises(ConfigError, match=re.escape(str(images[2])) + r".*0\.05″ pixels"):
        detect_images(model, images, tmp_path / "maps.fits")

    def shifted(b, image, wcs):
        return image, grid_wcs(shift_px=3.0) if b == 1 else wcs

    images = user_images(tmp_path, shifted)
    with pytest.raises(InputFileError, match=re.escape(str(images[1])) + ".*3 px off"):
        detect_images(model, images, tmp_path / "maps.fits")

    def no_wcs(b, image, wcs):
        return image, WCS(naxis=2) if b == 2 else wcs

    images = user_images(tmp_path, no_wcs)
    with pytest.raises(InputFileError, match=re.escape(str(images[2])) + ": no celestial WCS"):
        detect_images(model, images, tmp_path / "maps.fits")
    assert not (tmp_path / "maps.fits").exists()


@pytest.mark.parametrize(
    ("fill", "why"),
    [(np.nan, "every pixel is NaN"), (0.0, "every pixel is zero"), (-1.0, "no pixel is positive")],
)
def test_detect_refuses_a_band_without_usable_pixels(model, tmp_path, fill, why):
    from starclusters.detect.stage import detect_images

    images = user_images(tmp_path, lambda b, im, w: (np.full_like(im, fill) if b == 1 else im, w))
    with pytest.raises(InputFileError, match=re.escape(f"{images[1]}: band F438W") + f".*{why}"):
        detect_images(model, images, tmp_path / "maps.fits")  # was: rc 0, no warning


def test_detect_warns_about_a_mostly_negative_band(tmp_path, caplog):
    from starclusters.detect.stage import check_band_values

    path = user_images(tmp_path, lambda b, im, w: (im - 0.15 if b == 0 else im, w))[0]
    with caplog.at_level(logging.WARNING):
        check_band_values(path, "F336W")
    assert "F336W" in caplog.text and "negative" in caplog.text


# ----------------------------------------------------------- 4. config at load time


def write_config(tmp_path: Path, change) -> Path:
    """config/config.yaml with ``change`` applied, as a file for load_config."""
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    change(config)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: c["mosaic"]["synthetic"].update(shape_px=[-5, 512]),
            r"^mosaic\.synthetic\.shape_px: .*\(-5, 512\)",
        ),
        (
            lambda c: c["backgrounds"].update(
                split_fractions={"train": 0.9, "val": 0.9, "test": 0.9}
            ),
            r"^backgrounds\.split_fractions: .*sum 2\.7",
        ),
        (lambda c: c.update(window_px=63), r"^window_px: must be even.*63"),
        (lambda c: c.update(galaxy=".."), r"^galaxy: '\.\.' is not a plain name"),
        (lambda c: c.update(galaxy="."), r"^galaxy: '\.' is not a plain name"),
        (lambda c: c.update(galaxy="a/b"), r"^galaxy: 'a/b' does not match"),
        (
            lambda c: c["mosaic"]["synthetic"].update(shape_px=[48, 48]),
            r"^mosaic\.synthetic\.shape_px: \[48, 48\] px is smaller than the 64-px window "
            r"\(window_px\)",
        ),
        (
            lambda c: c["backgrounds"].update(block_px=32),
            r"^backgrounds\.block_px: 32 px is smaller than the 64-px window",
        ),
    ],
)
def test_config_mistakes_stop_at_load_time_with_the_key_named(tmp_path, change, message):
    with pytest.raises(ConfigError, match=message):  # were: passed load, failed in a job
        load_config(write_config(tmp_path, change))


def test_unknown_key_message_is_short_and_lists_the_allowed_keys(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(write_config(tmp_path, lambda c: c.update(windw_px=64)))
    message = str(err.value)  # was: ~2,900 lines, the schema dumped after the message
    assert message.startswith("windw_px: unknown key; allowed keys are ")
    assert "window_px" in message and len(message) < 400 and "\n" not in message
    with pytest.raises(ConfigError, match=r"^mocks\.per_shrd: unknown key; allowed keys in mocks"):
        load_config(write_config(tmp_path, lambda c: c["mocks"].update(per_shrd=1)))


def test_yaml_error_names_file_and_line(tmp_path, capsys):
    from starclusters.config import main as check_config_main

    path = tmp_path / "broken.yaml"
    path.write_text("galaxy: g\nbands: [F336W, F438W\nwindow_px: 64\n")
    with pytest.raises(ConfigError, match=re.escape(f"{path}, line 3, column 10: not valid YAML")):
        load_config(path)  # was: "not valid JSON or YAML", no file, no line
    assert check_config_main([str(path)]) == 1  # make run's check before Snakemake
    assert f"{path}, line 3" in capsys.readouterr().err
    assert check_config_main([str(REPO / "config" / "config.yaml")]) == 0


def test_the_workflow_stops_with_the_short_message(tmp_path):
    """The Snakefile's own check (common.smk): the key, not the schema (no job starts)."""
    config = tmp_path / "unknown.yaml"
    config.write_text("windw_px: 64\n")
    run = subprocess.run(
        [Path(sys.executable).with_name("snakemake"), "-n", "--cores", "1", "--configfile",
         str(config)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    out = run.stdout + run.stderr
    assert run.returncode != 0
    assert "windw_px: unknown key; allowed keys are" in out
    assert "Failed validating" not in out and len(out.splitlines()) < 20


# -------------------------------------------------------- 6. resuming after kill -9


def locked(folder: Path) -> Path:
    locks = folder / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.output.lock").write_text("a\n")  # as Snakemake writes it: relative paths
    return locks


def test_stale_lock_is_unlocked_only_when_no_snakemake_runs(tmp_path):
    from starclusters.locks import unlock_stale

    calls = []

    def run(command, **kwargs):
        calls.append(command)

    assert unlock_stale(tmp_path, run=run) == "not locked"
    locked(tmp_path)
    busy = unlock_stale(tmp_path, processes=lambda d: [4242], run=run)
    assert busy == "busy" and not calls  # another Snakemake works here: left alone
    assert unlock_stale(tmp_path, processes=lambda d: None, run=run) == "unknown"
    done = unlock_stale(tmp_path, ["--configfile", "c.yaml"], processes=lambda d: [], run=run)
    assert done == "unlocked" and calls[0][-3:] == ["--unlock", "--configfile", "c.yaml"]


def test_killed_run_lock_is_removed_by_a_real_unlock(tmp_path):
    """A lock left by a killed Snakemake in a tiny workflow: `python -m starclusters.locks`
    unlocks it (no Snakemake runs in tmp_path), and the workflow then runs."""
    (tmp_path / "Snakefile").write_text('rule all:\n    output: "a"\n    shell: "touch {output}"\n')
    locks = locked(tmp_path)
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    snakemake = str(Path(sys.executable).with_name("snakemake"))
    run = subprocess.run([snakemake, "--cores", "1"], cwd=tmp_path, capture_output=True, env=env)
    assert run.returncode != 0  # the stale lock stops it
    subprocess.run([sys.executable, "-m", "starclusters.locks"], cwd=tmp_path, env=env, check=True)
    assert not list(locks.glob("*.lock"))
    run = subprocess.run(
        [snakemake, "--cores", "1", "--rerun-incomplete"],
        cwd=tmp_path,
        capture_output=True,
        env=env,
    )
    assert run.returncode == 0 and (tmp_path / "a").exists()


def test_make_run_checks_the_config_unlocks_and_reruns_incomplete_jobs():
    run = subprocess.run(
        ["make", "-n", "run"], cwd=REPO, capture_output=True, text=True, timeout=60, check=True
    )
    lines = run.stdout.splitlines()
    config = next(i for i, line in enumerate(lines) if "-m starclusters.config" in line)
    unlock = next(i for i, line in enumerate(lines) if "-m starclusters.locks" in line)
    main = next(i for i, line in enumerate(lines) if "--rerun-incomplete" in line)
    assert config < unlock < main and "snakemake --cores" in lines[main]


def test_background_stage_names_a_mosaic_smaller_than_the_window(tmp_path):
    """With mosaic.source: files the mosaic's size is known only when the background stage
    reads it: a mosaic smaller than the window names window_px and the mosaic's size
    (it used to advise a larger backgrounds.block_px, which could not help)."""
    from astropy.io import fits

    from starclusters.backgrounds.stage import build_background_shard
    from starclusters.errors import ConfigError

    image = tmp_path / "F438W.fits"
    header = fits.Header({"EXPTIME": 100.0})
    fits.PrimaryHDU(np.ones((40, 50), np.float32), header=header).writeto(image)
    mask = tmp_path / "mask.fits"
    fits.PrimaryHDU(np.zeros((40, 50), np.uint8)).writeto(mask)
    settings = {
        "block_px": 128,
        "split_fractions": {"train": 0.8, "val": 0.1, "test": 0.1},
        "max_masked_fraction": 0.0,
        "per_shard": 4,
    }
    with pytest.raises(ConfigError, match=r"^window_px: the mosaic .* is 40 x 50 px, smaller"):
        build_background_shard([str(image)], str(mask), ["F438W"], 64, settings, 1, 0)
