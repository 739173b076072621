"""The network's diagnosis (starclusters.scorecard.diagnose): hand-made fields, one cluster per
miss reason and one candidate per false kind, with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from starclusters.errors import ConfigError, InputFileError
from starclusters.scorecard.diagnose import (
    FALSE_KINDS,
    MISS_REASONS,
    DiagnosisSettings,
    aperture_snr,
    false_candidate_kinds,
    miss_reasons,
    summarise,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SHAPE = (160, 160)
THRESHOLDS = {"class_threshold": 0.95, "visibility_threshold": 2.5}
RADII = {"match_radius_px": 3.0, "blend_radius_px": 8.0, "offset_factor": 2.0}

# name -> truth (x, y); every case at least 20 px from every other one
CLUSTERS = {
    "detected": (50.0, 50.0),
    "masked": (20.0, 140.0),
    "edge": (4.0, 80.0),
    "blended_taken": (72.0, 20.0),  # its only peak within r is nearer to "taker"
    "taker": (70.0, 20.0),
    "blended_near": (30.0, 30.0),  # its nearest peak (6 px) sits on "neighbour"
    "neighbour": (37.0, 30.0),
    "blended_association": (110.0, 60.0),
    "offset": (50.0, 110.0),
    "no_peak": (20.0, 60.0),
    "class_below": (90.0, 35.0),
    "class_below_off_centre": (130.0, 130.0),
    "visibility_below": (40.0, 85.0),
    "other": (130.0, 95.0),
}
#: (x, y, class, visibility, candidate?) of the peaks.
PEAKS = [
    (51.0, 50.0, 0.99, 6.0, True),  # detected
    (70.0, 20.0, 0.99, 6.0, True),  # taker's
    (37.0, 30.0, 0.99, 6.0, True),  # neighbour's
    (116.0, 60.0, 0.50, 1.0, False),  # on the association
    (54.5, 110.0, 0.99, 4.0, True),  # the offset candidate (4.5 px)
    (90.0, 36.0, 0.50, 5.0, False),  # class_below
    (130.0, 134.5, 0.30, 5.0, False),  # class_below, off centre (4.5 px)
    (41.0, 85.0, 0.99, 1.0, False),  # visibility_below
    (130.0, 96.0, 0.99, 5.0, False),  # passes, yet missing from the candidates: other
    (140.0, 10.0, 0.01, 0.1, False),  # a noise peak far from everything
]


def field():
    """(truth, peaks, candidates, usable, class_map, contaminants) of the hand-made field."""
    truth = pd.DataFrame(
        {
            "name": list(CLUSTERS),
            "x_px": [xy[0] for xy in CLUSTERS.values()],
            "y_px": [xy[1] for xy in CLUSTERS.values()],
            "visibility": np.full(len(CLUSTERS), 4.0),
            "rh_arcsec": np.full(len(CLUSTERS), 0.1),
        }
    )
    peaks = pd.DataFrame(PEAKS, columns=["x", "y", "class", "visibility", "candidate"])
    peaks.insert(0, "peak_id", np.arange(len(peaks)))
    candidates = peaks[peaks.pop("candidate")].reset_index(drop=True)
    usable = np.ones(SHAPE, bool)
    usable[130:150, 10:30] = False
    class_map = np.full(SHAPE, 0.01)
    class_map[:, :8] = np.nan  # the window is incomplete near the left border
    class_map[~usable] = np.nan
    contaminants = pd.DataFrame(
        {
            "kind": ["ob_association"],
            "x_px": [115.0],
            "y_px": [60.0],
            "eff_a_arcsec": [0.4],
        }
    )
    return truth, peaks, candidates, usable, class_map, contaminants


def diagnosed():
    truth, peaks, candidates, usable, class_map, contaminants = field()
    return miss_reasons(
        truth, peaks, candidates, usable, class_map, contaminants, **THRESHOLDS, **RADII
    )


def test_each_miss_reason_on_a_hand_made_field():
    table = diagnosed().set_index("name")
    expected = {
        "detected": "detected",
        "taker": "detected",
        "neighbour": "detected",
        "masked": "masked",
        "edge": "edge",
        "blended_taken": "blended",
        "blended_near": "blended",
        "blended_association": "blended",
        "offset": "offset",
        "no_peak": "no_peak",
        "class_below": "class_below",
        "class_below_off_centre": "class_below",
        "visibility_below": "visibility_below",
        "other": "other",
    }
    assert table["reason"].to_dict() == expected
    assert set(expected.values()) == {"detected", *MISS_REASONS}
    assert table.loc["blended_association", "blend_owner"] == "ob_association"
    assert table.loc["blended_near", "blend_owner"] == "cluster"
    assert table.loc["blended_near", "blend_owner_distance_px"] == pytest.approx(7.0)
    assert table.loc["offset", "offset_distance_px"] == pytest.approx(4.5)
    assert table.loc["class_below_off_centre", "peak_distance_px"] == pytest.approx(4.5)
    assert table.loc["class_below", "peak_class"] == pytest.approx(0.5)
    assert table.loc["visibility_below", "peak_visibility"] == pytest.approx(1.0)
    assert table.loc["detected", "candidate_distance_px"] == pytest.approx(1.0)
    assert table.loc["masked", "mask_bits"] == 1 and np.isnan(table.loc["edge", "class_at_truth"])
    assert table.loc["no_peak", "peak_row"] == -1


def test_earlier_reasons_win_and_masked_clusters_still_pair_with_offset_candidates():
    truth, peaks, candidates, usable, class_map, contaminants = field()
    # a free candidate 4 px from the masked cluster: the cluster stays masked, the
    # candidate is its offset detection (not a false detection of anything else)
    extra = pd.DataFrame({"peak_id": [99], "x": [24.0], "y": [140.0], "class": [0.99],
                          "visibility": [5.0]})  # fmt: skip
    peaks = pd.concat([peaks, extra], ignore_index=True)
    candidates = pd.concat([candidates, extra], ignore_index=True)
    table = miss_reasons(
        truth, peaks, candidates, usable, class_map, contaminants, **THRESHOLDS, **RADII
    ).set_index("name")
    assert table.loc["masked", "reason"] == "masked"
    assert table.loc["masked", "offset_candidate_row"] == len(candidates) - 1
    # a cluster on the border of the mask is masked, not edge, though its map is NaN
    usable[60, 20] = False
    class_map[60, 20] = np.nan
    table = miss_reasons(
        truth, peaks, candidates, usable, class_map, contaminants, **THRESHOLDS, **RADII
    ).set_index("name")
    assert table.loc["no_peak", "reason"] == "masked"


def test_detection_is_the_scorers_match(rng):
    from starclusters.scorecard.score import match

    n = 200
    truth = pd.DataFrame(
        {
            "x_px": rng.uniform(0, 300, n),
            "y_px": rng.uniform(0, 300, n),
            "log_age_yr": 7.0,
            "log_mass_msun": 4.0,
            "av_mag": 0.5,
            "rh_arcsec": 0.1,
            "visibility": rng.uniform(0, 10, n),
        }
    )
    m = 150
    peaks = pd.DataFrame(
        {
            "peak_id": np.arange(m),
            "x": rng.uniform(0, 300, m).round(),
            "y": rng.uniform(0, 300, m).round(),
            "class": rng.uniform(0, 1, m),
            "visibility": rng.uniform(0, 10, m),
            "log_age_yr": 7.0,
            "log_mass_msun": 4.0,
            "av_mag": 0.5,
            "log_rh_arcsec": -1.0,
        }
    )
    candidates = peaks[(peaks["class"] > 0.5) & (peaks["visibility"] > 2.5)]
    candidates = candidates.reset_index(drop=True)
    table = miss_reasons(
        truth,
        peaks,
        candidates,
        np.ones((300, 300), bool),
        np.zeros((300, 300)),
        class_threshold=0.5,
        visibility_threshold=2.5,
        match_radius_px=8.0,
        blend_radius_px=10.0,
    )
    scored = match(truth, candidates, 8.0)
    assert table["detected"].sum() > 5
    assert (table["detected"] == scored["detected"]).all()
    assert (table["candidate_row"] == scored["catalog_row"]).all()
    # on consistent peaks and candidates every miss has a reason
    assert "other" not in set(table["reason"])


def gaussian_image(rng, sources, sigma_noise=1.0, sigma_px=1.2, amplitude=20.0):
    """(H, W) Gaussian noise of σ sigma_noise with Gaussian point sources at ``sources``."""
    y, x = np.mgrid[: SHAPE[0], : SHAPE[1]]
    image = rng.normal(0.0, sigma_noise, SHAPE)
    for sx, sy in sources:
        image += amplitude * np.exp(-((x - sx) ** 2 + (y - sy) ** 2) / (2 * sigma_px**2))
    return image


def test_aperture_snr_tells_a_point_source_from_noise(rng):
    red = gaussian_image(rng, [(40.0, 40.0)])
    blue = gaussian_image(rng, [(40.0, 40.0)], amplitude=4.0)
    x = y = [40.0, 120.0]
    snr = aperture_snr({"B": blue, "R": red}, None, x, y, 2.0, (7.0, 9.0))
    assert list(snr.columns) == ["snr_B", "snr_R", "snr_max", "snr_band"]
    assert snr.loc[0, "snr_R"] > 20 and snr.loc[0, "snr_band"] == "R"
    assert snr.loc[0, "snr_max"] == snr.loc[0, "snr_R"] > snr.loc[0, "snr_B"] > 3
    assert abs(snr.loc[1, "snr_max"]) < 5
    # counts/s units cancel: the same image ten times fainter has the same S/N
    scaled = aperture_snr({"R": red * 0.1}, None, x, y, 2.0, (7.0, 9.0))
    assert scaled["snr_R"].to_numpy() == pytest.approx(snr["snr_R"].to_numpy(), rel=1e-9)
    # an aperture on an unusable pixel has no S/N
    bad = np.zeros(SHAPE, bool)
    bad[40, 41] = True
    masked = aperture_snr({"R": red}, bad, x, y, 2.0, (7.0, 9.0))
    assert np.isnan(masked.loc[0, "snr_max"]) and masked.loc[0, "snr_band"] == ""


def test_each_false_kind_on_a_hand_made_field(rng):
    truth = pd.DataFrame(
        {
            "x_px": [20.0, 100.0, 140.0],
            "y_px": [20.0, 20.0, 20.0],
            "visibility": [5.0, 5.0, 5.0],
            "rh_arcsec": [0.1, 0.4, 0.1],  # 2.5 px, 10 px at 0.04"/px
        }
    )
    # name -> candidate position
    where = {
        "detects_0": (21.0, 20.0),
        "detects_1": (100.0, 21.0),
        "offset_detection": (144.0, 20.0),  # 4 px from the missed cluster 2
        "cluster_fragment": (100.0, 45.0),  # 25 px < 3 r_h = 30 px of cluster 1
        "nucleus": (80.0, 80.0),
        "foreground_star": (10.0, 70.0),  # 60 px from the star
        "background_galaxy": (140.0, 80.0),  # 8 px; reach 2 x 5 px + 3
        "ob_association": (80.0, 135.0),  # 22 px from its centre
        "field_star": (130.0, 140.0),
        "noise": (50.0, 100.0),
    }
    candidates = pd.DataFrame(
        {
            "peak_id": np.arange(len(where)),
            "x": [p[0] for p in where.values()],
            "y": [p[1] for p in where.values()],
            "class": 0.99,
            "visibility": 5.0,
        }
    )
    contaminants = pd.DataFrame(
        {
            "kind": ["nucleus", "foreground_star", "background_galaxy", "ob_association"],
            "x_px": [81.0, 10.0, 140.0, 80.0],
            "y_px": [80.0, 10.0, 88.0, 113.0],
            "re_arcsec": [np.nan, np.nan, 0.2, np.nan],
            "eff_a_arcsec": [np.nan, np.nan, np.nan, 0.5],  # 12.5 px: reach 28 px
        }
    )
    image = gaussian_image(rng, [where["field_star"]])
    usable = np.ones(SHAPE, bool)
    class_map = np.zeros(SHAPE)
    peaks = candidates.copy()
    diagnosis = miss_reasons(
        truth, peaks, candidates, usable, class_map, contaminants, **THRESHOLDS, **RADII
    )
    assert list(diagnosis["reason"]) == ["detected", "detected", "offset"]
    snr = aperture_snr({"R": image}, ~usable, candidates["x"], candidates["y"], 2.0, (7.0, 9.0))
    false = false_candidate_kinds(
        candidates,
        diagnosis,
        contaminants,
        snr,
        match_radius_px=3.0,
        blend_radius_px=8.0,
        fragment_rh=3.0,
        star_radius_px=70.0,
        galaxy_re=2.0,
        association_a=2.0,
        field_star_snr=5.0,
        pixel_scale_arcsec=0.04,
    )
    names = np.array(list(where))[false["candidate_row"]]
    assert dict(zip(names, false["kind"], strict=True)) == {name: name for name in list(where)[2:]}
    assert set(false["kind"]) == set(FALSE_KINDS)
    row = false.set_index("kind")
    assert row.loc["offset_detection", "offset_truth_row"] == 2
    assert row.loc["cluster_fragment", "fragment_truth_row"] == 1
    assert row.loc["foreground_star", "foreground_star_distance_px"] == pytest.approx(60.0)
    assert row.loc["ob_association", "ob_association_reach_px"] == pytest.approx(28.0)
    assert row.loc["field_star", "snr_max"] > 20 and abs(row.loc["noise", "snr_max"]) < 5

    # the compact before the extended: a candidate on a galaxy inside an association
    contaminants.loc[3, ["x_px", "y_px"]] = (140.0, 95.0)
    again = false_candidate_kinds(
        candidates, diagnosis, contaminants, snr, match_radius_px=3.0, blend_radius_px=8.0,
        fragment_rh=3.0, star_radius_px=70.0, galaxy_re=2.0, association_a=2.0,
        field_star_snr=5.0, pixel_scale_arcsec=0.04,
    )  # fmt: skip
    assert again.set_index("candidate_row").loc[6, "kind"] == "background_galaxy"


def test_summary_counts_and_fractions():
    diagnosis = pd.DataFrame(
        {
            "visibility": [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 9.0, np.nan],
            "reason": ["no_peak", "detected", "class_below", "detected", "blended",
                       "class_below", "detected", "edge"],
        }
    )  # fmt: skip
    false = pd.DataFrame({"kind": ["field_star", "field_star", "noise"]})
    table = summarise(diagnosis, false, n_candidates=6, galaxy="g", role="validation")
    assert set(table["galaxy"]) == {"g"} and set(table["role"]) == {"validation"}
    misses = table[table["table"] == "miss_reasons"].set_index(["selection", "category"])
    assert misses.loc[("all", "class_below"), "count"] == 2
    assert misses.loc[("all", "class_below"), "n_missed"] == 5
    assert misses.loc[("all", "class_below"), "fraction"] == pytest.approx(0.4)
    assert misses.loc[("all", "detected"), "fraction_of_selection"] == pytest.approx(3 / 8)
    assert np.isnan(misses.loc[("all", "detected"), "fraction"])
    low = misses.loc["2.5 < visibility <= 5"]
    assert low.loc["class_below", "count"] == 1 and low.loc["class_below", "n_selection"] == 2
    high = misses.loc["visibility > 5"]
    assert high.loc["blended", "count"] == 1 and high.loc["class_below", "count"] == 1
    assert high.loc["detected", "count"] == 1 and high.loc["no_peak", "count"] == 0
    assert misses.loc[("visibility unknown", "edge"), "count"] == 1
    assert misses.loc[("visibility <= 2.5", "no_peak"), "fraction"] == pytest.approx(1.0)
    # every reason is listed, even at zero, per selection
    assert len(misses.loc["all"]) == len(MISS_REASONS) + 1
    kinds = table[table["table"] == "false_kinds"].set_index("category")
    assert kinds.loc["field_star", "count"] == 2 and kinds.loc["ob_association", "count"] == 0
    assert kinds.loc["field_star", "fraction"] == pytest.approx(2 / 3)
    assert kinds.loc["noise", "fraction_of_selection"] == pytest.approx(1 / 6)


def test_no_truth_and_no_candidates_give_empty_tables_and_a_figure(tmp_path):
    from starclusters.scorecard.plots import plot_diagnosis

    truth, peaks, candidates, usable, class_map, _ = field()
    none = candidates.iloc[:0]
    # no peak passes a class threshold of 1: no candidates, and no miss left unexplained
    strict = {"class_threshold": 1.0, "visibility_threshold": 2.5}
    table = miss_reasons(truth, peaks, none, usable, class_map, **strict, **RADII)
    assert not table["detected"].any() and "other" not in set(table["reason"])
    # with the usual thresholds the peaks that pass but are no candidates are flagged
    flagged = miss_reasons(truth, peaks, none, usable, class_map, **THRESHOLDS, **RADII)
    assert set(flagged.loc[flagged["reason"] == "other", "name"]) == {
        "detected", "taker", "neighbour", "offset", "other"
    }  # fmt: skip
    snr = aperture_snr({"R": np.zeros(SHAPE)}, None, none["x"], none["y"], 2.0, (7.0, 9.0))
    kwargs = dict(
        match_radius_px=3.0, blend_radius_px=8.0, fragment_rh=3.0, star_radius_px=40.0,
        galaxy_re=2.0, association_a=2.0, field_star_snr=5.0, pixel_scale_arcsec=0.04,
    )  # fmt: skip
    assert len(false_candidate_kinds(none, table, None, snr, **kwargs)) == 0
    empty = miss_reasons(truth.iloc[:0], peaks, candidates, usable, class_map, **THRESHOLDS,
                         **RADII)  # fmt: skip
    snr = aperture_snr({"R": np.zeros(SHAPE)}, None, candidates["x"], candidates["y"], 2.0,
                       (7.0, 9.0))  # fmt: skip
    false = false_candidate_kinds(candidates, empty, None, snr, **kwargs)
    assert len(false) == len(candidates) and set(false["kind"]) == {"noise"}
    summary = summarise(empty, false, len(candidates), "g", "validation")
    assert summary.loc[summary["table"] == "miss_reasons", "count"].sum() == 0
    rows = empty.assign(galaxy="g", role="validation", log_age_yr=7.0, log_mass_msun=4.0)
    plot_diagnosis(summary, rows, tmp_path / "a.png")
    plot_diagnosis(summary.iloc[:0], empty, tmp_path / "b.png")
    for name in ("a.png", "b.png"):
        assert (tmp_path / name).read_bytes()[:8] == PNG_MAGIC


@pytest.mark.parametrize(
    ("section", "key"),
    [
        ({"annulus_px": [1.0, 9.0]}, "annulus_px"),
        ({"offset_factor": 1.0}, "offset_factor"),
        ({"blend_radius_px": -1.0}, "blend_radius_px"),
        ({"blend_radius": 8.0}, "blend_radius"),
    ],
)
def test_bad_settings_name_the_key(section, key):
    with pytest.raises(ConfigError, match=rf"scorecard\.diagnosis\.{key}\b"):
        DiagnosisSettings.from_config(section)
    assert DiagnosisSettings.from_config({"annulus_px": [6.0, 8.0]}).annulus_px == (6.0, 8.0)


# --------------------------------------------------------------------------- stage


def write_galaxy(root, rng, thresholds=THRESHOLDS):
    """The hand-made field as a scored galaxy's files: mosaic/ and detect/ under ``root``."""
    from astropy.io import fits
    from astropy.wcs import WCS

    from starclusters.detect.maps import MAPS
    from starclusters.io import write_table

    truth, peaks, candidates, usable, class_map, contaminants = field()
    wcs = WCS(naxis=2)
    wcs.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    wcs.wcs.crval = [204.25, -29.87]
    wcs.wcs.crpix = [80.0, 80.0]
    wcs.wcs.cdelt = [-0.04 / 3600, 0.04 / 3600]
    sky = wcs.pixel_to_world_values(contaminants["x_px"], contaminants["y_px"])
    contaminants = contaminants.drop(columns=["x_px", "y_px"]).assign(ra_deg=sky[0], dec_deg=sky[1])
    (root / "mosaic").mkdir(parents=True)
    truth = truth.assign(log_age_yr=7.0, log_mass_msun=4.0, av_mag=0.5)
    write_table(root / "mosaic" / "truth.parquet", truth)
    centre = wcs.pixel_to_world_values(150.0, 150.0)
    write_table(
        root / "mosaic" / "contaminants.parquet",
        contaminants,
        {"geometry": {"centre_ra_deg": float(centre[0]), "centre_dec_deg": float(centre[1])}},
    )
    fits.writeto(root / "mosaic" / "mask.fits", (~usable).astype(np.uint8))
    for band in ("B", "R"):
        image = gaussian_image(rng, []).astype(np.float32)
        fits.writeto(root / "mosaic" / f"{band}.fits", image, wcs.to_header())
    (root / "detect").mkdir()
    meta = {"settings": dict(thresholds)}
    write_table(root / "detect" / "peaks.parquet", peaks, meta)
    write_table(root / "detect" / "candidates.parquet", candidates, meta)
    hdus = [fits.PrimaryHDU()]
    for name in MAPS:
        data = class_map if name == "CLASS" else np.zeros(SHAPE)
        hdus.append(fits.ImageHDU(data.astype(np.float32), wcs.to_header(), name=name))
    fits.HDUList(hdus).writeto(root / "detect" / "maps.fits")
    return root


def stage_args(root):
    return (
        root / "mosaic" / "truth.parquet",
        root / "mosaic" / "contaminants.parquet",
        root / "mosaic" / "mask.fits",
        root / "detect" / "maps.fits",
        root / "detect" / "peaks.parquet",
        root / "detect" / "candidates.parquet",
        {band: root / "mosaic" / f"{band}.fits" for band in ("B", "R")},
    )


SCORECARD = {"match_radius_px": 3.0, "min_visibility": 2.5, "diagnosis": {"blend_radius_px": 8.0}}


def test_stage_writes_the_tables_and_the_figure(tmp_path, rng):
    from starclusters.io import read_table
    from starclusters.scorecard.stage import (
        make_diagnosis,
        make_diagnosis_summary,
        write_diagnosis,
    )

    paths = []
    for name, role in (("train", "training"), ("other", "validation")):
        root = write_galaxy(tmp_path / name, rng)
        diagnosis, false, meta = make_diagnosis(
            *stage_args(root), SCORECARD, THRESHOLDS, name, role
        )
        paths.append((root / "cnn_diagnosis.parquet", root / "cnn_false.parquet"))
        write_diagnosis(diagnosis, false, meta, *paths[-1])
    diagnosis = read_table(paths[0][0])
    assert diagnosis.attrs["meta"]["settings"]["diagnosis"]["blend_radius_px"] == 8.0
    assert (diagnosis["galaxy"] == "train").all() and (diagnosis["role"] == "training").all()
    reasons = diagnosis.set_index("name")["reason"]
    assert reasons["offset"] == "offset" and reasons["blended_association"] == "blended"
    false = read_table(paths[0][1])
    assert list(false["kind"]) == ["offset_detection"]
    assert false.attrs["meta"]["n_candidates"] == 4
    # the association came back to its pixel from RA, Dec
    assert diagnosis.set_index("name").loc["blended_association", "blend_owner_distance_px"] == (
        pytest.approx(5.0, abs=1e-6)
    )

    summary = make_diagnosis_summary(
        [p[0] for p in paths], [p[1] for p in paths], tmp_path / "d.parquet", tmp_path / "d.png"
    )
    assert set(summary["galaxy"]) == {"train", "other"}
    assert read_table(tmp_path / "d.parquet").equals(summary)
    assert (tmp_path / "d.png").read_bytes()[:8] == PNG_MAGIC


def test_stage_refuses_candidates_of_other_thresholds(tmp_path, rng):
    from starclusters.scorecard.stage import make_diagnosis

    root = write_galaxy(tmp_path / "g", rng, {"class_threshold": 0.5, "visibility_threshold": 2.5})
    with pytest.raises(InputFileError, match=r"candidates\.parquet: made with detect\.class_thr"):
        make_diagnosis(*stage_args(root), SCORECARD, THRESHOLDS, "g", "validation")


def test_stage_applies_the_derived_cut_the_candidates_were_made_with(tmp_path, rng):
    """detect.derived_thresholds: the config's numbers are not the cut; the diagnosis takes
    the candidates' own (their metadata) and refuses candidates made the other way."""
    from starclusters.scorecard.stage import make_diagnosis

    derived = {"class_threshold": 0.9, "visibility_threshold": 2.0, "derived_thresholds": True}
    root = write_galaxy(tmp_path / "g", rng, derived)
    asked = {**THRESHOLDS, "derived_thresholds": True}
    _, _, meta = make_diagnosis(*stage_args(root), SCORECARD, asked, "g", "validation")
    assert meta["settings"]["class_threshold"] == 0.9
    assert meta["settings"]["visibility_threshold"] == 2.0
    with pytest.raises(InputFileError, match=r"made with detect\.derived_thresholds = True"):
        make_diagnosis(*stage_args(root), SCORECARD, THRESHOLDS, "g", "validation")
    fixed = write_galaxy(tmp_path / "f", rng)
    with pytest.raises(InputFileError, match=r"made with detect\.derived_thresholds = False"):
        make_diagnosis(*stage_args(fixed), SCORECARD, asked, "g", "validation")
