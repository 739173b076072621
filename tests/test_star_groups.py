"""Star groups (training's hard negatives): drawn, rendered and composed as class 0."""

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import gaussian_renderer, tiny_training_data

from starclusters.errors import ConfigError
from starclusters.io import write_cube, write_table
from starclusters.mocks.psf import write_psf
from starclusters.mocks.settings import StarGroupSettings
from starclusters.mocks.star_groups import (
    StarDraws,
    build_star_group_shard,
    draw_group,
    star_group_seed,
)
from starclusters.model.codec import ParameterGrids
from starclusters.model.data import TrainingData, load_training_data, star_groups_in
from starclusters.model.stage import training_data

SCALE = 0.04
LIMITS = {"F336W": 24.0, "F438W": 23.5, "F814W": 23.0}


@pytest.fixture(scope="module")
def renderer():
    return gaussian_renderer()


@pytest.fixture(scope="module")
def stars(small_population):
    return StarDraws(small_population, ("F336W", "F438W", "F814W"), 25.0)


def test_settings_name_the_bad_key():
    assert StarGroupSettings.from_config({}) == StarGroupSettings()
    with pytest.raises(ConfigError, match="star_groups.max_stars"):
        StarGroupSettings.from_config({"max_stars": 0})
    with pytest.raises(ConfigError, match="star_groups.group_radius_arcsec"):
        StarGroupSettings.from_config({"group_radius_arcsec": -0.1})
    with pytest.raises(ConfigError, match="star_groups.colour"):
        StarGroupSettings.from_config({"colour": 1})


def test_no_star_bright_enough_names_the_limit(small_population):
    with pytest.raises(ConfigError, match="star_groups.star_limit_mag"):
        StarDraws(small_population, ("F336W", "F438W", "F814W"), 5.0)


def test_every_drawn_star_beats_the_limit_before_extinction(stars, small_population):
    rng = np.random.default_rng(3)
    ages, counts = stars.draw(300, 0.0, rng)
    zp = small_population.zeropoints_mag
    mags = np.stack(
        [zp[b] - 2.5 * np.log10(counts[:, j]) for j, b in enumerate(stars.bands)], axis=1
    )
    # the bright bins end half-way to the next isochrone point: up to ~0.3 mag past the limit
    assert (mags.min(axis=1) < 25.3).all() and np.mean(mags.min(axis=1) < 25.0) > 0.9
    assert set(ages) <= set(small_population.log_ages_yr)
    # extinction dims them, most in the bluest band
    _, dimmed = stars.draw(300, 1.0, np.random.default_rng(3))
    assert (dimmed < counts).all()
    ratio = np.median(dimmed / counts, axis=0)
    assert ratio[0] < ratio[1] < ratio[2]


def test_a_group_is_centred_on_its_light_within_the_radius(stars):
    settings = StarGroupSettings(group_radius_arcsec=0.3)
    for n in (1, 2, 4):
        row, positions, counts = draw_group(11 + n, n, stars, settings, np.array([0.0, 1.0]))
        assert positions.shape == (n, 2) and counts.shape == (n, 3)
        weights = counts.sum(axis=1)
        assert np.allclose((weights[:, None] * positions).sum(axis=0), 0.0, atol=1e-12)
        assert row["n_stars"] == n and row["max_offset_arcsec"] <= 2 * 0.3 + 1e-12
        total = counts[:, 2].sum()
        assert row["mag_F814W"] == pytest.approx(
            stars.population.zeropoints_mag["F814W"] - 2.5 * np.log10(total)
        )
    # reproducible from its seed alone
    a = draw_group(5, 3, stars, settings, np.array([0.0, 1.0]))
    b = draw_group(5, 3, stars, settings, np.array([0.0, 1.0]))
    assert a[0] == b[0] and np.array_equal(a[1], b[1]) and np.array_equal(a[2], b[2])


def test_shard_balances_group_sizes_and_passes_the_cuts(stars, renderer):
    settings = StarGroupSettings(per_shard=12, max_stars=3)
    kw = dict(av_grid_mag=np.array([0.0, 1.0]), limits_mag=LIMITS, require="any", progress=False)
    stamps, table = build_star_group_shard(0, 7, stars, renderer, settings, **kw)
    assert stamps.shape == (12, 3, 32, 32) and stamps.dtype == np.float32
    assert table["n_stars"].value_counts().to_dict() == {1: 4, 2: 4, 3: 4}
    mags = table[[f"mag_{b}" for b in LIMITS]].to_numpy()
    assert (mags < np.array(list(LIMITS.values()))).any(axis=1).all()
    # the light in the stamp is the group's (a Gaussian PSF well inside 32 px)
    flux = stamps[:, 2].sum(axis=(1, 2))
    expected = 10 ** (-0.4 * (table["mag_F814W"] - stars.population.zeropoints_mag["F814W"]))
    assert np.allclose(flux, expected, rtol=0.02)
    assert table["seed"].tolist() == [star_group_seed(7, 0, d) for d in table["draw"]]
    again, _ = build_star_group_shard(0, 7, stars, renderer, settings, **kw)
    assert np.array_equal(stamps, again)
    with pytest.raises(ConfigError, match="star_groups.star_limit_mag"):
        build_star_group_shard(
            0, 7, stars, renderer, settings, **{**kw, "limits_mag": {"F814W": 5.0}}
        )


def test_star_groups_in_rounds_and_checks():
    assert star_groups_in(32, 0.0) == 0
    assert star_groups_in(32, 0.25) == 8
    assert star_groups_in(3, 0.01) == 1  # above 0 means at least one
    assert star_groups_in(4, 1.0) == 4
    with pytest.raises(ConfigError, match="train.star_group_fraction"):
        star_groups_in(8, 1.5)


def with_star_groups(data: TrainingData, n: int = 30, seed: int = 1) -> TrainingData:
    """``data`` plus ``n`` point-source 'star groups' (a bright pixel at the centre, 3 bands)."""
    rng = np.random.default_rng(seed)
    s = data.window_px
    groups = np.zeros((n, len(data.bands), s, s), np.float32)
    groups[:, :, s // 2, s // 2] = rng.uniform(5, 20, (n, len(data.bands)))
    params = pd.DataFrame({"seed": rng.integers(0, 2**62, n)})
    split = np.array(["train", "val", "test"] * (n // 3))
    return TrainingData(
        bands=data.bands,
        pixel_scale_arcsec=data.pixel_scale_arcsec,
        exptime_s=data.exptime_s,
        psf_rh_px=data.psf_rh_px,
        mocks=data.mocks,
        mock_params=data.mock_params,
        mock_split=data.mock_split,
        backgrounds=data.backgrounds,
        background_split=data.background_split,
        star_groups=groups,
        star_group_params=params,
        star_group_split=split,
    )


def test_star_groups_take_the_last_background_rows_as_class_0():
    plain = tiny_training_data()
    data = with_star_groups(plain)
    kw = dict(jitter_px=0, augment=False)
    images, table = data.draw("train", 16, np.random.default_rng(2), star_group_fraction=0.5, **kw)
    groups = table["star_group_index"].to_numpy()
    assert (groups[:4] == -1).all() and (groups[4:8] >= 0).all() and (groups[8:] == -1).all()
    assert not table["is_cluster"][:8].any() and table["is_cluster"][8:].all()
    assert (data.star_group_split[groups[4:8]] == "train").all()
    # the star's light sits on the centre pixel of its background; its visibility target is 0
    s = data.window_px
    centre = images[4:8, :, s // 2, s // 2]
    background = data.backgrounds[table["background_index"][4:8]][:, :, s // 2, s // 2]
    assert (centre - background > 2).all()
    assert (table["visibility"][:8] == 0).all()
    assert (table["star_group_visibility"][4:8] > 0).all()
    assert table["star_group_visibility"][:4].isna().all()
    # without star groups the batch is the one drawn before they existed, bit for bit
    a, ta = data.draw("train", 16, np.random.default_rng(2), **kw)
    b, tb = plain.draw("train", 16, np.random.default_rng(2), **kw)
    assert np.array_equal(a, b)
    pd.testing.assert_frame_equal(ta, tb)
    with pytest.raises(ConfigError, match="train.star_group_fraction"):
        plain.draw("train", 16, np.random.default_rng(2), star_group_fraction=0.5)


def test_star_group_batches_match_in_torch_and_numpy():
    data = with_star_groups(tiny_training_data())
    kw = dict(jitter_px=2, star_group_fraction=0.5)
    a, ta = data.draw("val", 12, np.random.default_rng(4), **kw)
    grids = ParameterGrids()
    x, targets = data.make_batch("val", 12, np.random.default_rng(4), grids, **kw)
    assert torch.equal(targets["class"][:6, 1], torch.zeros(6))
    assert not targets["cluster"][:6].any()
    b, tb = data.draw("val", 12, np.random.default_rng(4), device="cpu", **kw)
    # identical geometry and draws; Poisson noise differs between the two paths
    assert ta["star_group_index"].equals(tb["star_group_index"])
    assert ta["shift_y_px"].equals(tb["shift_y_px"])
    s = data.window_px
    assert np.allclose(
        a[:, :, s // 2 - 1 : s // 2 + 2].sum(), b.numpy()[:, :, s // 2 - 1 : s // 2 + 2].sum(), 0.05
    )


def test_loaded_star_groups_split_by_seed_and_change_the_fingerprint(tmp_path, default_config):
    data = tiny_training_data()
    groups = with_star_groups(data)
    paths = {}
    for kind, cube, table in (
        ("mocks", data.mocks, data.mock_params),
        ("backgrounds", data.backgrounds, pd.DataFrame({"split": data.background_split})),
        ("groups", groups.star_groups, groups.star_group_params),
    ):
        paths[kind] = str(tmp_path / f"{kind}.fits")
        write_cube(paths[kind], cube, {"BANDS": (",".join(data.bands), "")})
        meta = {"exptime_s": dict(zip(data.bands, map(float, data.exptime_s), strict=True))}
        write_table(str(tmp_path / f"{kind}.parquet"), table, meta)
    psfs = []
    for band in data.bands:
        o, x = 3, np.arange(-30, 31)
        epsf = np.exp(-0.5 * (x[:, None] ** 2 + x[None, :] ** 2) / 3.0**2)
        psfs.append(str(tmp_path / f"{band}.fits"))
        write_psf(
            psfs[-1],
            epsf / epsf.sum(),
            band=band,
            native_scale_arcsec=SCALE,
            oversampling=o,
            source="test Gaussian",
        )
    kw = dict(bands=data.bands, window_px=data.window_px, pixel_scale_arcsec=SCALE)
    loaded = load_training_data(
        [paths["mocks"]],
        [paths["backgrounds"]],
        psfs,
        psf_oversampling=3,
        star_group_paths=[paths["groups"]],
        **kw,
    )
    bare = load_training_data(
        [paths["mocks"]], [paths["backgrounds"]], psfs, psf_oversampling=3, **kw
    )
    assert np.array_equal(loaded.star_groups, groups.star_groups)
    assert loaded.counts()["star_groups"] == {
        s: int(np.sum(loaded.star_group_split == s)) for s in ("train", "val", "test")
    }
    assert "star_groups" not in bare.counts()
    assert loaded.fingerprint() != bare.fingerprint()
    config = {**default_config, "train": {**default_config["train"], "star_group_fraction": 0.2}}
    with pytest.raises(ConfigError, match="train.star_group_fraction"):
        training_data([paths["mocks"]], [paths["backgrounds"]], psfs, config)


def test_test_set_appends_star_groups_and_scores_them_apart(tmp_path):
    from conftest import TINY_NETWORK

    from starclusters.model.evaluate import EvaluateSettings, run_test_set, score_test_set
    from starclusters.model.network import ClusterNetwork, NetworkSpec
    from starclusters.model.plots import plot_class_visibility

    plain = tiny_training_data()
    data = with_star_groups(plain)
    torch.manual_seed(0)
    spec = NetworkSpec(**{**TINY_NETWORK, "fc_width": 32}, window_px=plain.window_px)
    model = ClusterNetwork(spec).eval()
    grids = ParameterGrids()
    settings = EvaluateSettings(12, 12, 8, n_star_groups=10)
    table = run_test_set(model, grids, data, settings, seed=3)
    bare = run_test_set(model, grids, plain, settings, seed=3)
    groups = table["is_star_group"].fillna(False).to_numpy(bool)
    assert groups.sum() == 10 and groups[-10:].all()
    assert not table["is_cluster"][groups].any()
    assert (data.star_group_split[table["star_group_index"][groups]] == "test").all()
    # the rows before the star groups are the test set without them
    pd.testing.assert_frame_equal(
        table[~groups][bare.columns].reset_index(drop=True), bare, check_dtype=False
    )
    metrics = score_test_set(table)
    without = score_test_set(bare)
    shared = metrics.merge(without, on=["quantity", "subset", "metric"], suffixes=("", "_bare"))
    assert len(shared) == len(without)
    assert np.allclose(shared["value"], shared["value_bare"], equal_nan=True)
    extra = metrics[metrics["subset"] == "star_groups"].set_index("metric")["value"]
    p = table.loc[groups, "p_cluster"].to_numpy()
    assert extra["n"] == 10 and extra["frac_above_0.5"] == pytest.approx(np.mean(p > 0.5))
    plot_class_visibility(table, metrics, tmp_path / "class.png")
    assert (tmp_path / "class.png").stat().st_size > 0
