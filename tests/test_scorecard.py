"""The one scorer (starclusters.scorecard): hand-made truth and catalogs with known answers."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from starclusters.errors import InputFileError
from starclusters.io import read_table, write_table
from starclusters.scorecard import (
    LONG_COLUMNS,
    check_catalog,
    check_truth,
    local_background,
    match,
    matched_rows,
    score,
    summarise,
    to_long,
)
from starclusters.scorecard.plots import (
    plot_age_mass_recall,
    plot_parameters,
    plot_recall_visibility,
    plot_summary,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def make_truth(n: int = 10, **columns) -> pd.DataFrame:
    """n clusters 50 px apart on a row, log t 7.2, log M 4.2, A_V 0.5, r_h 0.1", visibility 5."""
    table = pd.DataFrame(
        {
            "x_px": 100.0 + 50.0 * np.arange(n),
            "y_px": np.full(n, 200.0),
            "log_age_yr": np.full(n, 7.2),
            "log_mass_msun": np.full(n, 4.2),
            "av_mag": np.full(n, 0.5),
            "rh_arcsec": np.full(n, 0.1),
            "visibility": np.full(n, 5.0),
            "cluster_id": np.arange(n),
        }
    )
    for name, values in columns.items():
        table[name] = values
    return table


def found(truth: pd.DataFrame, rows, dx: float = 1.0, **offsets) -> pd.DataFrame:
    """Catalog entries at the truth ``rows`` shifted by dx px, with the true parameters
    plus ``offsets`` (parameter -> added value)."""
    part = truth.iloc[list(rows)]
    cat = pd.DataFrame(
        {
            "x": part["x_px"].to_numpy() + dx,
            "y": part["y_px"].to_numpy(),
            "log_age_yr": part["log_age_yr"].to_numpy(),
            "log_mass_msun": part["log_mass_msun"].to_numpy(),
            "av_mag": part["av_mag"].to_numpy(),
            "log_rh_arcsec": np.log10(part["rh_arcsec"].to_numpy()),
        }
    )
    for name, value in offsets.items():
        cat[name] = cat[name] + value
    return cat


def false_entries(positions) -> pd.DataFrame:
    xy = np.asarray(positions, float).reshape(-1, 2)
    nan = np.full(len(xy), np.nan)
    return pd.DataFrame(
        {"x": xy[:, 0], "y": xy[:, 1], "log_age_yr": nan, "log_mass_msun": nan}
        | {"av_mag": nan, "log_rh_arcsec": nan}
    )


def the_example():
    """10 truth clusters; 6 found 1 px off with A_V + 0.2; 2 false entries 20 px away."""
    truth = make_truth(10)
    catalog = pd.concat(
        [found(truth, range(6), av_mag=0.2), false_entries([[100.0, 220.0], [150.0, 180.0]])],
        ignore_index=True,
    )
    return truth, catalog


def test_known_precision_recall_and_bias():
    truth, catalog = the_example()
    card = score(truth, catalog)
    s = card.summary.iloc[0]
    assert (s["n_truth"], s["n_catalog"], s["n_matched"]) == (10, 8, 6)
    assert s["precision"] == pytest.approx(0.75)
    assert s["recall"] == pytest.approx(0.6)
    assert s["recall_visible"] == pytest.approx(0.6)
    assert s["precision_lo"] < 0.75 < s["precision_hi"]
    assert s["note"] == ""
    p = card.parameters.set_index(["selection", "parameter"])
    assert p.loc[("visible", "av_mag"), "median_bias"] == pytest.approx(0.2)
    assert p.loc[("visible", "av_mag"), "bound95_abs"] == pytest.approx(0.2)
    assert p.loc[("visible", "av_mag"), "unit"] == "mag"
    assert p.loc[("all", "log_age_yr"), "median_bias"] == pytest.approx(0.0)
    assert (p["n"] == 6).all()
    m = card.matched
    assert m["detected"].tolist() == [True] * 6 + [False] * 4
    assert m["catalog_row"].tolist() == [0, 1, 2, 3, 4, 5] + [-1] * 4
    np.testing.assert_allclose(m["distance_px"][:6], 1.0)
    assert m["distance_px"][6:].isna().all()
    np.testing.assert_allclose(m["derived_av_mag"][:6], 0.7)
    assert matched_rows(m, len(catalog)).tolist() == [True] * 6 + [False] * 2
    assert card.calibration.empty


def test_match_radius_is_inclusive_at_3px():
    truth = make_truth(2)
    at_3 = found(truth, [0], dx=3.0)
    beyond = found(truth, [1], dx=3.01)
    m = match(truth, pd.concat([at_3, beyond], ignore_index=True))
    assert m["detected"].tolist() == [True, False]
    assert m["distance_px"][0] == pytest.approx(3.0)
    assert match(truth, beyond, max_px=3.1)["detected"].tolist() == [False, True]


def test_match_is_one_to_one():
    truth = make_truth(1)
    catalog = pd.concat(
        [found(truth, [0], dx=1.5, av_mag=1.0), found(truth, [0], dx=-0.5)], ignore_index=True
    )
    card = score(truth, catalog)
    s = card.summary.iloc[0]
    assert (s["n_matched"], s["precision"], s["recall"]) == (1, 0.5, 1.0)
    assert card.matched["catalog_row"][0] == 1  # the closer one
    assert card.matched["derived_av_mag"][0] == pytest.approx(0.5)


def test_recall_per_visibility_bin_and_headline():
    visibility = [0.5, 0.7, 2.0, 2.5, 3.0, 3.0, 7.0, 20.0, 50.0, np.nan]
    truth = make_truth(10, visibility=visibility)
    card = score(truth, found(truth, [0, 2, 3, 4, 7, 9]))
    table = card.recall_visibility
    assert table[["bin_lo", "bin_hi"]].to_numpy().tolist() == [
        [0, 1],
        [1, 2.5],
        [2.5, 5],
        [5, 10],
        [10, 1e9],
    ]
    assert table["n"].tolist() == [2, 1, 3, 1, 2]  # NaN visibility counts in no bin
    assert table["n_detected"].tolist() == [1, 1, 2, 0, 1]
    np.testing.assert_allclose(table["recall"], [0.5, 1.0, 2 / 3, 0.0, 0.5])
    assert ((table["recall_lo"] <= table["recall"]) & (table["recall"] <= table["recall_hi"])).all()
    # headline: visibility strictly above 2.5 (3, 3, 7, 20, 50), of which 3.0 and 20 found
    s = card.summary.iloc[0]
    assert (s["n_visible"], s["n_visible_detected"]) == (5, 2)
    assert s["recall_visible"] == pytest.approx(0.4)
    assert s["recall"] == pytest.approx(0.6)


def test_recall_per_age_mass_bin():
    age = [7.2, 7.2, 7.3, 9.5, 10.1, 6.0]
    mass = [4.2, 4.3, 4.4, 5.2, 5.5, 4.0]
    truth = make_truth(6, log_age_yr=age, log_mass_msun=mass)
    card = score(truth, found(truth, [0, 2, 4, 5]))
    t = card.recall_age_mass.set_index(["age_lo", "mass_lo"])
    assert len(t) == 6 * 4 and t["n"].sum() == 5  # log t = 6.0 is off the grid
    assert (t.loc[(7.0, 4.0), "n"], t.loc[(7.0, 4.0), "n_detected"]) == (3, 2)
    assert t.loc[(9.0, 5.0), "n"] == 2 and t.loc[(9.0, 5.0), "n_detected"] == 1  # top edge closed
    assert np.isnan(t.loc[(6.6, 3.5), "recall"])


def test_parameter_errors_visible_versus_all():
    truth = make_truth(7, visibility=[5.0] * 6 + [1.0])
    catalog = pd.concat(
        [found(truth, range(6), av_mag=0.2, log_rh_arcsec=0.05), found(truth, [6], av_mag=1.0)],
        ignore_index=True,
    )
    p = score(truth, catalog).parameters.set_index(["selection", "parameter"])
    assert p.loc[("visible", "av_mag"), "n"] == 6
    assert p.loc[("all", "av_mag"), "n"] == 7
    assert p.loc[("visible", "av_mag"), "bound95_abs"] == pytest.approx(0.2)
    # 95th percentile of [0.2] * 6 + [1.0], linear interpolation: 0.2 + 0.7 * 0.8
    assert p.loc[("all", "av_mag"), "bound95_abs"] == pytest.approx(0.76)
    assert p.loc[("all", "av_mag"), "median_bias"] == pytest.approx(0.2)
    assert p.loc[("visible", "av_mag"), "scatter68"] == pytest.approx(0.0, abs=1e-12)
    assert p.loc[("visible", "log_rh_arcsec"), "median_bias"] == pytest.approx(0.05)
    assert p.loc[("visible", "log_rh_arcsec"), "unit"] == "dex"


def test_calibration_fraction_inside_intervals():
    truth = make_truth(4)
    catalog = found(truth, range(4))
    catalog["av_mag_p16"] = [0.4, 0.4, 0.6, 0.0]  # true 0.5: inside, inside, above p16, inside
    catalog["av_mag_p84"] = [0.6, 0.5, 0.9, np.nan]  # the last one has no interval
    catalog["av_mag_p2p5"] = 0.0
    catalog["av_mag_p97p5"] = 1.0
    c = score(truth, catalog).calibration
    assert set(c["parameter"]) == {"av_mag"}
    c = c.set_index(["interval", "selection"])
    assert c.loc[("68", "all"), "nominal"] == 0.68
    assert (c.loc[("68", "all"), "n"], c.loc[("68", "all"), "n_inside"]) == (3, 2)
    assert c.loc[("68", "all"), "fraction"] == pytest.approx(2 / 3)
    assert c.loc[("95", "visible"), "fraction"] == pytest.approx(1.0)
    assert c.loc[("95", "visible"), "nominal"] == 0.95


def test_zero_truth_scores_as_no_truth_without_warnings(tmp_path):
    truth, catalog = the_example()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for empty in (truth.iloc[:0], pd.DataFrame()):
            card = score(empty, catalog)
            s = card.summary.iloc[0]
            assert s["n_truth"] == 0 and np.isnan(s["recall"]) and s["note"] == "no truth"
            assert s["precision"] == 0.0
            assert (card.recall_visibility["n"] == 0).all()
            assert card.recall_visibility["recall"].isna().all()
            assert (card.parameters["n"] == 0).all()
            assert (card.parameters["note"] == "no truth").all()
            long = to_long(card, "empty", "cnn", "validation")
            assert (long["note"] == "no truth").all()
        both = score(truth.iloc[:0], catalog.iloc[:0]).summary.iloc[0]
        assert both["note"] == "no truth; empty catalog"


def test_empty_catalog_has_nan_precision_and_zero_recall():
    truth, catalog = the_example()
    for empty in (catalog.iloc[:0], pd.DataFrame()):
        s = score(truth, empty).summary.iloc[0]
        assert s["n_catalog"] == 0 and np.isnan(s["precision"])
        assert s["recall"] == 0.0 and s["recall_visible"] == 0.0
        assert s["note"] == "empty catalog"


def test_missing_columns_name_the_file_and_columns():
    truth, catalog = the_example()
    with pytest.raises(InputFileError, match=r"baseline/catalog\.parquet.*x, y"):
        check_catalog(catalog.drop(columns=["x"]), "results/g/baseline/catalog.parquet")
    with pytest.raises(ValueError, match=r"cat\.parquet.*av_mag.*NaN"):
        score(truth, catalog.drop(columns=["av_mag"]), catalog_source="cat.parquet")
    with pytest.raises(InputFileError, match=r"mosaic/truth\.parquet.*visibility"):
        check_truth(truth.drop(columns=["visibility"]), "mosaic/truth.parquet")
    with pytest.raises(InputFileError, match=r"truth\.parquet.*rh_arcsec"):
        check_truth(truth.drop(columns=["rh_arcsec"]), "truth.parquet")
    with pytest.raises(InputFileError, match="not numeric"):
        check_catalog(catalog.assign(x="a"), "cat.parquet")
    check_truth(truth.drop(columns=["rh_arcsec"]).assign(log_rh_arcsec=-1.0), "ok")


def test_recall_per_background_tercile():
    background = [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0]
    truth = make_truth(9, background_counts_s=background, visibility=[1.0] + [5.0] * 8)
    card = score(truth, found(truth, [0, 1, 2, 3, 6]))
    b = card.recall_background
    everything = b[b["selection"] == "all"]
    assert everything["n"].tolist() == [3, 3, 3]
    assert everything["n_detected"].tolist() == [3, 1, 1]
    assert b.loc[b["selection"] == "visible", "n"].tolist() == [2, 3, 3]
    edges = score(truth, found(truth, [0]), background_bins=[0.0, 2.5, 10.0]).recall_background
    assert edges.loc[edges["selection"] == "all", "n"].tolist() == [6, 3]
    assert score(make_truth(3), found(make_truth(3), [0])).recall_background.empty


def test_wall_time_per_megapixel():
    truth, catalog = the_example()
    s = score(truth, catalog, wall_s=30.0, area_mpx=4.0).summary.iloc[0]
    assert s["wall_s_per_mpx"] == pytest.approx(7.5)
    assert np.isnan(score(truth, catalog).summary.iloc[0]["wall_s_per_mpx"])


def two_galaxies_and_training():
    """Validation galaxies with recall 0.6 and 0.8 (all visible), training with 1.0;
    a classical method finds nothing on v2."""
    truth = make_truth(10)
    tables = []
    for galaxy, role, found_rows in (
        ("v1", "validation", range(6)),
        ("v2", "validation", range(8)),
        ("train", "training", range(10)),
    ):
        card = score(truth, found(truth, found_rows, av_mag=0.1), wall_s=10.0, area_mpx=1.0)
        tables.append(to_long(card, galaxy, "cnn", role))
        classical = found(truth, [0, 1]) if galaxy != "v2" else found(truth, [])
        tables.append(to_long(score(truth, classical), galaxy, "classical", role))
    return tables


def test_to_long_and_summarise_mean_and_spread(tmp_path):
    tables = two_galaxies_and_training()
    long = pd.concat(tables, ignore_index=True)
    assert list(long.columns) == list(LONG_COLUMNS)
    write_table(tmp_path / "scorecard.parquet", long, {"units": "see LONG_COLUMNS"})
    long = read_table(tmp_path / "scorecard.parquet")
    summary = summarise(long)
    assert summarise(tables).equals(summary)
    recall = summary[(summary["metric"] == "recall") & (summary["method"] == "cnn")]
    valid = recall[recall["role"] == "validation"].iloc[0]
    assert valid["galaxy"] == "validation" and valid["n_galaxies"] == 2
    assert valid["mean"] == pytest.approx(0.7)
    assert valid["std"] == pytest.approx(np.std([0.6, 0.8], ddof=1))
    training = recall[recall["role"] == "training"].iloc[0]
    assert (training["galaxy"], training["mean"]) == ("train", 1.0)
    assert np.isnan(training["std"])
    bias = summary[
        (summary["metric"] == "median_bias")
        & (summary["parameter"] == "av_mag")
        & (summary["method"] == "cnn")
        & (summary["role"] == "validation")
    ]
    assert bias["mean"].iloc[0] == pytest.approx(0.1) and bias["unit"].iloc[0] == "mag"
    classical = summary[(summary["method"] == "classical") & (summary["metric"] == "precision")]
    # v2's empty catalog has NaN precision and drops out of the mean
    assert classical.loc[classical["role"] == "validation", "n_galaxies"].iloc[0] == 1
    with pytest.raises(ValueError, match="role"):
        to_long(score(*the_example()), "g", "cnn", "test")


PLOTS = (plot_recall_visibility, plot_parameters, plot_age_mass_recall, plot_summary)


def assert_png(path):
    data = path.read_bytes()
    assert len(data) > 1000 and data.startswith(PNG_MAGIC)


@pytest.mark.parametrize("plot", PLOTS, ids=lambda f: f.__name__)
def test_plots_write_pngs_for_normal_and_degenerate_inputs(plot, tmp_path):
    truth, catalog = the_example()
    normal = pd.concat(two_galaxies_and_training(), ignore_index=True)
    plot(normal, tmp_path / "normal.png")
    assert_png(tmp_path / "normal.png")
    degenerate = pd.concat(
        [
            to_long(score(truth.iloc[:0], catalog), "no_truth", "cnn", "validation"),
            to_long(score(truth, catalog.iloc[:0]), "nothing_found", "cnn", "training"),
        ],
        ignore_index=True,
    )
    plot(degenerate, tmp_path / "degenerate.png")
    assert_png(tmp_path / "degenerate.png")
    plot(normal.iloc[:0], tmp_path / "empty.png")
    assert_png(tmp_path / "empty.png")


def test_local_background_on_a_known_image():
    yy, xx = np.mgrid[0:80, 0:80]
    r = np.hypot(xx - 40, yy - 40)
    image = np.where(r < 8, 100.0, np.where(r < 16, 5.0, -3.0))
    mask = np.zeros(image.shape, bool)
    image[40, 50] = 1e6  # in the annulus, but masked
    mask[40, 50] = True
    image[41, 52] = np.nan  # in the annulus, not finite
    got = local_background(image, mask, [40.0, 40.0, 200.0], [40.0, 40.0, 200.0])
    assert got[0] == pytest.approx(5.0) and got[1] == pytest.approx(5.0)
    assert np.isnan(got[2])  # off the image
    ramp = np.tile(np.arange(100.0), (100, 1))  # value = x: median over a symmetric ring = x0
    assert local_background(ramp, None, [50.0], [50.0])[0] == pytest.approx(50.0)
    # near the edges only part of the ring is on the image: the median of those pixels
    for x0, y0 in ((0.0, 50.0), (99.0, 50.0), (3.4, 96.7)):
        r = np.hypot(np.arange(100.0)[None, :] - x0, np.arange(100.0)[:, None] - y0)
        expected = np.median(ramp[(r >= 8) & (r < 16)])
        assert local_background(ramp, None, [x0], [y0])[0] == pytest.approx(expected)
    assert local_background(ramp, None, [0.0], [50.0])[0] > 5.0


# --------------------------------------------------------------------------- stage (files)


def write_field(tmp_path, name: str, truth: pd.DataFrame, catalog: pd.DataFrame):
    """A galaxy's truth, catalog, reference band (flat 0.2 counts/s), mask and a benchmark."""
    from astropy.io import fits

    root = tmp_path / name
    root.mkdir()
    write_table(root / "truth.parquet", truth)
    write_table(root / "catalog.parquet", catalog)
    fits.writeto(root / "band.fits", np.full((400, 700), 0.2, np.float32))
    fits.writeto(root / "mask.fits", np.zeros((400, 700), np.uint8))
    (root / "bench.tsv").write_text("s\th:m:s\tmax_rss\n14.0\t0:00:14\t100\n")
    return root


SETTINGS = {"match_radius_px": 3.0, "min_visibility": 2.5, "background_annulus_px": [8.0, 16.0]}


def test_stage_scores_files_and_gathers_galaxies(tmp_path):
    from starclusters.scorecard.stage import make_score, make_scorecard, write_score

    truth = make_truth()
    paths = []
    for name, role, rows in (("train", "training", range(8)), ("a", "validation", range(6))):
        root = write_field(tmp_path, name, truth, found(truth, rows))
        long, matched, meta = make_score(
            root / "truth.parquet",
            root / "catalog.parquet",
            root / "band.fits",
            root / "mask.fits",
            [root / "bench.tsv", root / "bench.tsv"],
            SETTINGS,
            name,
            "cnn",
            role,
        )
        assert np.allclose(matched["background_counts_s"], 0.2)
        paths.append(root / "scores.parquet")
        write_score(long, matched, meta, paths[-1], root / "matched.parquet")
    # a validation galaxy without clusters scores "no truth"
    root = write_field(tmp_path, "empty", truth.iloc[:0], found(truth, range(2)))
    long, matched, meta = make_score(
        root / "truth.parquet", root / "catalog.parquet", root / "band.fits",
        root / "mask.fits", [], SETTINGS, "empty", "cnn", "validation",
    )  # fmt: skip
    summary = long[long["table"] == "summary"].set_index("metric")
    assert summary.loc["n_truth", "value"] == 0 and np.isnan(summary.loc["recall", "value"])
    assert "no truth" in set(long["note"])
    paths.append(root / "scores.parquet")
    write_score(long, matched, meta, paths[-1], root / "matched.parquet")

    figures = {
        k: tmp_path / f"{k}.png" for k in ("recall_visibility", "parameters", "age_mass", "summary")
    }
    table = make_scorecard(paths, tmp_path / "all.parquet", tmp_path / "summary.parquet", figures)
    recall = table[(table["table"] == "summary") & (table["metric"] == "recall")]
    assert recall.set_index("galaxy").loc["train", "mean"] == pytest.approx(0.8)
    validation = recall.set_index("galaxy").loc["validation"]
    assert validation["mean"] == pytest.approx(0.6) and validation["n_galaxies"] == 1
    per_mpx = read_table(tmp_path / "all.parquet")
    per_mpx = per_mpx[(per_mpx["metric"] == "wall_s_per_mpx") & (per_mpx["galaxy"] == "train")]
    assert per_mpx["value"].iloc[0] == pytest.approx(28.0 / 0.28)  # two 14 s jobs, 0.28 Mpx
    for path in figures.values():
        assert path.read_bytes()[:8] == PNG_MAGIC


def test_stage_names_bad_files(tmp_path):
    from starclusters.scorecard.stage import benchmark_seconds, make_score

    truth = make_truth()
    root = write_field(tmp_path, "g", truth, found(truth, range(3)).drop(columns=["x"]))
    with pytest.raises(InputFileError, match=r"catalog\.parquet.*\bx\b"):
        make_score(
            root / "truth.parquet", root / "catalog.parquet", root / "band.fits",
            root / "mask.fits", [], SETTINGS, "g", "cnn", "validation",
        )  # fmt: skip
    (root / "bad.tsv").write_text("seconds\n3\n")
    with pytest.raises(InputFileError, match=r"bad\.tsv: no column 's'"):
        benchmark_seconds([root / "bad.tsv"])
