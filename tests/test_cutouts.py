"""Background windows: disjoint spatial splits, masks respected, reproducible."""

import numpy as np
import pytest

from starclusters.backgrounds.cutouts import SPLITS, block_splits, draw_windows, valid_centres
from starclusters.errors import ConfigError

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def mosaic(shape=(400, 500), seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(1.0, 0.1, (3, *shape)).astype(np.float32)
    mask = np.zeros(shape, bool)
    mask[100:140, 200:260] = True  # a masked star
    return images, mask


def test_splits_are_spatially_disjoint():
    images, mask = mosaic()
    window, block = 32, 100
    blocks = block_splits(mask.shape, block, FRACTIONS, np.random.default_rng(1))
    centres = valid_centres(mask, blocks, block, window)
    _, table = draw_windows(images, ["a", "b", "c"], centres, 600, window, np.random.default_rng(2))
    footprint = {name: np.zeros(mask.shape, bool) for name in SPLITS}
    lo = window // 2
    for row, col, split in table[["row_px", "col_px", "split"]].itertuples(index=False):
        footprint[split][row - lo : row - lo + window, col - lo : col - lo + window] = True
    for a in SPLITS:
        for b in SPLITS:
            if a < b:
                assert not (footprint[a] & footprint[b]).any(), (a, b)
    assert set(table["split"]) == set(SPLITS)
    # no window touches the masked star
    assert not any(f[100:140, 200:260].any() for f in footprint.values())


def test_windows_hold_the_mosaic_pixels():
    images, mask = mosaic()
    blocks = block_splits(mask.shape, 100, FRACTIONS, np.random.default_rng(1))
    centres = valid_centres(mask, blocks, 100, 32)
    cube, table = draw_windows(images, ["a", "b", "c"], centres, 5, 32, np.random.default_rng(3))
    row, col = table.loc[0, ["row_px", "col_px"]]
    np.testing.assert_array_equal(cube[0], images[:, row - 16 : row + 16, col - 16 : col + 16])
    assert cube.shape == (5, 3, 32, 32) and cube.dtype == np.float32
    np.testing.assert_allclose(table["median_counts_s_b"], np.median(cube[:, 1], axis=(1, 2)))


def test_block_fractions_and_reproducibility():
    blocks = block_splits((1000, 1000), 50, FRACTIONS, np.random.default_rng(7))
    share = np.bincount(blocks.ravel(), minlength=3) / blocks.size
    np.testing.assert_allclose(share, [0.7, 0.15, 0.15], atol=0.01)
    again = block_splits((1000, 1000), 50, FRACTIONS, np.random.default_rng(7))
    np.testing.assert_array_equal(blocks, again)


def test_allowing_some_masked_pixels():
    images, mask = mosaic()
    blocks = block_splits(mask.shape, 100, FRACTIONS, np.random.default_rng(1))
    strict = (valid_centres(mask, blocks, 100, 32) >= 0).sum()
    loose = (valid_centres(mask, blocks, 100, 32, max_masked_fraction=0.5) >= 0).sum()
    assert loose > strict


def test_bad_settings():
    with pytest.raises(ConfigError, match="split_fractions"):
        block_splits(
            (100, 100), 10, {"train": 0.5, "val": 0.1, "test": 0.1}, np.random.default_rng(0)
        )
    with pytest.raises(ConfigError, match="block_px"):
        block_splits((100, 100), 100, FRACTIONS, np.random.default_rng(0))
    images, mask = mosaic((100, 100))
    mask[:] = True
    blocks = block_splits(mask.shape, 50, FRACTIONS, np.random.default_rng(0))
    with pytest.raises(ConfigError, match="no window fits"):
        draw_windows(
            images,
            ["a", "b", "c"],
            valid_centres(mask, blocks, 50, 32),
            3,
            32,
            np.random.default_rng(0),
        )
