"""The scorecard's products, from files (used by the workflow scripts).

:func:`make_score` scores one catalog of one galaxy (the training galaxy or a validation
galaxy) against its truth and writes the long table and the matched truth;
:func:`make_scorecard` gathers every galaxy × method into one table, the summary over
the validation galaxies and the figures. :func:`make_diagnosis` says why each truth
cluster of one galaxy was missed and what each false candidate of the network is
(:mod:`starclusters.scorecard.diagnose`); :func:`make_diagnosis_summary` counts them over
all galaxies and draws the figure.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from astropy.io import fits

from starclusters.errors import InputFileError
from starclusters.io import read_table, write_table
from starclusters.scorecard import diagnose, plots
from starclusters.scorecard.score import (
    check_catalog,
    check_truth,
    local_background,
    score,
    summarise,
    to_long,
)

log = logging.getLogger(__name__)

#: Units of the long table's columns whose names do not carry them (Parquet metadata).
LONG_UNITS = {
    "value": "the metric (recall, precision: fraction; bias, bounds: `unit`; wall time: s/Mpx)",
    "lower, upper": "68 % Wilson interval of fractions; NaN where not a fraction",
    "bin_lo, bin_hi": "visibility (eq. 3.2), log10(t/yr) or background (counts/s), by table",
    "bin2_lo, bin2_hi": "log10(M/Msun) of the age-mass recall",
}


def benchmark_seconds(paths: Sequence[str | os.PathLike]) -> float | None:
    """Summed wall time, s, of Snakemake benchmark files (column ``s``); None without any.

    The jobs ran side by side with others, so this is the time a user waits for the
    method on a loaded machine, not its time alone.
    """
    if not paths:
        return None
    total = 0.0
    for path in paths:
        try:
            table = pd.read_csv(path, sep="\t")
        except (OSError, pd.errors.ParserError) as error:
            raise InputFileError(f"{path}: not a Snakemake benchmark file ({error})") from None
        if "s" not in table:
            raise InputFileError(f"{path}: no column 's'; not a Snakemake benchmark file")
        total += float(table["s"].sum())
    return total


def make_score(
    truth_path: str | os.PathLike,
    catalog_path: str | os.PathLike,
    image_path: str | os.PathLike,
    mask_path: str | os.PathLike,
    benchmark_paths: Sequence[str | os.PathLike],
    settings: Mapping,
    galaxy: str,
    method: str,
    role: str,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """One catalog against one galaxy's truth: (long table, matched truth, metadata).

    image_path: the band whose annulus median around each truth cluster (counts/s,
    ``settings["background_annulus_px"]``) is its local background; mask_path: the
    mosaic's uint8 mask (any bit set: unusable); benchmark_paths: the Snakemake
    benchmark files of the jobs that made the catalog from the mosaic (their wall time
    per Mpx of mosaic is scored); settings: the ``scorecard`` config section.
    """
    truth = read_table(truth_path)
    catalog = read_table(catalog_path)
    check_truth(truth, truth_path)
    check_catalog(catalog, catalog_path)
    image = fits.getdata(image_path).astype(np.float64)
    mask = fits.getdata(mask_path) != 0
    if image.shape != mask.shape:
        raise InputFileError(
            f"{image_path}: shape {image.shape} differs from the mask {mask_path} {mask.shape}; "
            "rerun the mosaic stage"
        )
    inner, outer = settings["background_annulus_px"]
    truth = truth.assign(
        background_counts_s=local_background(
            image, mask, truth["x_px"].to_numpy(float), truth["y_px"].to_numpy(float), inner, outer
        )
    )
    card = score(
        truth,
        catalog,
        max_px=settings["match_radius_px"],
        min_visibility=settings["min_visibility"],
        wall_s=benchmark_seconds(benchmark_paths),
        area_mpx=image.size / 1e6,
        truth_source=truth_path,
        catalog_source=catalog_path,
    )
    summary = card.summary.iloc[0]
    log.info(
        "%s, %s: %d truth clusters, %d in the catalog, precision %.3f, recall %.3f "
        "(visibility > %g: %.3f of %d)",
        galaxy,
        method,
        summary["n_truth"],
        summary["n_catalog"],
        summary["precision"],
        summary["recall"],
        settings["min_visibility"],
        summary["recall_visible"],
        summary["n_visible"],
    )
    meta = {
        "galaxy": galaxy,
        "method": method,
        "role": role,
        "truth": str(truth_path),
        "catalog": str(catalog_path),
        "settings": dict(settings),
        "units": LONG_UNITS,
    }
    return to_long(card, galaxy, method, role), card.matched, meta


def write_score(
    long: pd.DataFrame,
    matched: pd.DataFrame,
    meta: Mapping,
    long_path: str | os.PathLike,
    matched_path: str | os.PathLike,
) -> None:
    """Write :func:`make_score`'s tables (atomically)."""
    write_table(long_path, long, meta)
    write_table(matched_path, matched, meta)


def make_scorecard(
    score_paths: Sequence[str | os.PathLike],
    table_path: str | os.PathLike,
    summary_path: str | os.PathLike,
    figure_paths: Mapping[str, str | os.PathLike],
) -> pd.DataFrame:
    """Every galaxy × method in one long table, the summary (validation mean ± spread; the
    training galaxy its own row) and the figures (keys recall_visibility, parameters,
    age_mass, summary). Returns the summary."""
    long = pd.concat([read_table(p) for p in score_paths], ignore_index=True)
    summary = summarise(long)
    meta = {"units": LONG_UNITS, "inputs": [str(p) for p in score_paths]}
    write_table(table_path, long, meta)
    write_table(
        summary_path,
        summary,
        {"spread": "std (ddof 1) over the validation galaxies; training galaxy alone"},
    )
    plots.plot_recall_visibility(long, figure_paths["recall_visibility"])
    plots.plot_parameters(long, figure_paths["parameters"])
    plots.plot_age_mass_recall(long, figure_paths["age_mass"])
    plots.plot_summary(long, figure_paths["summary"])
    headline = summary[(summary["table"] == "summary") & (summary["metric"] == "recall_visible")]
    for row in headline.itertuples(index=False):
        log.info(
            "%s on %s: recall (visibility > 2.5) %.3f ± %.3f",
            row.method,
            row.galaxy,
            row.mean,
            row.std,
        )
    return summary


# --------------------------------------------------------------------------- diagnosis

#: Peak and candidate columns the diagnosis needs.
PEAK_COLUMNS = ("peak_id", "x", "y", "class", "visibility")


def _catalogue_cut(candidates: pd.DataFrame, path, detect: Mapping) -> tuple[float, float]:
    """The (class, visibility) thresholds ``path`` was made with, checked against
    ``detect`` (class_threshold, visibility_threshold, derived_thresholds): the same
    derived_thresholds and, without it, the same numbers; InputFileError otherwise."""
    from starclusters.detect.candidates_stage import thresholds_of

    made = candidates.attrs.get("meta", {}).get("settings", {})
    derived = bool(detect.get("derived_thresholds", False))
    if bool(made.get("derived_thresholds", False)) != derived:
        raise InputFileError(
            f"{path}: made with detect.derived_thresholds = "
            f"{made.get('derived_thresholds', False)}, the diagnosis is asked for {derived}; "
            "rerun find_peaks (or validation_peaks) first"
        )
    cut = thresholds_of(candidates, path)
    if not derived:
        for key, value in zip(("class_threshold", "visibility_threshold"), cut, strict=True):
            if value != float(detect[key]):
                raise InputFileError(
                    f"{path}: made with detect.{key} = {value}, the diagnosis is asked for "
                    f"{detect[key]}; rerun find_peaks (or validation_peaks) first"
                )
    return cut


def _same_shape(path, shape, reference_path, reference_shape) -> None:
    if tuple(shape) != tuple(reference_shape):
        raise InputFileError(
            f"{path}: shape {tuple(shape)} differs from {reference_path} "
            f"{tuple(reference_shape)}; rerun the mosaic and detection stages"
        )


def make_diagnosis(
    truth_path: str | os.PathLike,
    contaminants_path: str | os.PathLike | None,
    mask_path: str | os.PathLike,
    maps_path: str | os.PathLike,
    peaks_path: str | os.PathLike,
    candidates_path: str | os.PathLike,
    image_paths: Mapping[str, str | os.PathLike],
    settings: Mapping,
    detect: Mapping,
    galaxy: str,
    role: str,
) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Why each truth cluster of one galaxy was missed and what each false candidate of the
    network is: (diagnosis, false candidates, metadata) (:mod:`.diagnose`).

    truth_path, contaminants_path (None: no contaminants), mask_path, image_paths (band
    -> the mosaic's image, counts/s): the galaxy's mosaic/ files; maps_path, peaks_path,
    candidates_path: its detect/ files; settings: the ``scorecard`` config section
    (match_radius_px and the ``diagnosis`` keys); detect: class_threshold,
    visibility_threshold and derived_thresholds of the ``detect`` section (checked against
    the candidates' metadata, whose thresholds are applied); role: "training" or "validation".
    """
    from astropy.wcs import WCS
    from astropy.wcs.utils import proj_plane_pixel_scales

    from starclusters.detect.maps import read_maps

    own = diagnose.DiagnosisSettings.from_config(settings.get("diagnosis"))
    r = float(settings["match_radius_px"])
    truth = read_table(truth_path)
    check_truth(truth, truth_path)
    peaks = read_table(peaks_path)
    candidates = read_table(candidates_path)
    for path, table in ((peaks_path, peaks), (candidates_path, candidates)):
        missing = [c for c in PEAK_COLUMNS if c not in table.columns]
        if missing and len(table):
            raise InputFileError(
                f"{path}: no column(s) {', '.join(missing)}; not a peaks table of find_peaks, "
                "rerun it"
            )
    class_threshold, visibility_threshold = _catalogue_cut(candidates, candidates_path, detect)
    mask = fits.getdata(mask_path)
    maps, _, _ = read_maps(maps_path)
    class_map = maps["CLASS"]
    _same_shape(maps_path, class_map.shape, mask_path, mask.shape)
    images, wcs = {}, None
    for band, path in image_paths.items():
        with fits.open(path, memmap=False) as hdul:
            images[band] = hdul[0].data.astype(np.float32)
            if wcs is None:
                wcs = WCS(hdul[0].header).celestial
        _same_shape(path, images[band].shape, mask_path, mask.shape)
    if wcs is None:
        raise InputFileError("no mosaic image given; the diagnosis needs the bands' images")
    pixel_scale_arcsec = float(np.mean(proj_plane_pixel_scales(wcs)) * 3600.0)
    contaminants = None
    if contaminants_path is not None:
        contaminants = read_table(contaminants_path)
        if len(contaminants) == 0:
            contaminants = None
        else:
            missing = [c for c in ("kind", "ra_deg", "dec_deg") if c not in contaminants]
            if missing:
                raise InputFileError(
                    f"{contaminants_path}: no column(s) {', '.join(missing)}; rerun the "
                    "synthetic galaxy"
                )
            geometry = contaminants.attrs.get("meta", {}).get("geometry")
            nucleus = diagnose.nucleus_row(geometry)
            contaminants = diagnose.on_grid(pd.concat([nucleus, contaminants]), wcs)

    diagnosis = diagnose.miss_reasons(
        truth,
        peaks,
        candidates,
        mask == 0,
        class_map,
        contaminants,
        class_threshold=class_threshold,
        visibility_threshold=visibility_threshold,
        match_radius_px=r,
        blend_radius_px=own.blend_radius_px,
        offset_factor=own.offset_factor,
        mask_bits=mask,
    )
    snr = diagnose.aperture_snr(
        images,
        mask != 0,
        candidates["x"].to_numpy(float),
        candidates["y"].to_numpy(float),
        own.aperture_radius_px,
        own.annulus_px,
    )
    false = diagnose.false_candidate_kinds(
        candidates,
        diagnosis,
        contaminants,
        snr,
        match_radius_px=r,
        blend_radius_px=own.blend_radius_px,
        fragment_rh=own.fragment_rh,
        star_radius_px=own.star_radius_px,
        galaxy_re=own.galaxy_re,
        association_a=own.association_a,
        field_star_snr=own.field_star_snr,
        pixel_scale_arcsec=pixel_scale_arcsec,
    )
    for table in (diagnosis, false):
        table.insert(0, "role", role)
        table.insert(0, "galaxy", galaxy)
    reasons = diagnosis["reason"].value_counts()
    kinds = false["kind"].value_counts()
    log.info(
        "%s: %d truth clusters, %d missed: %s; %d candidates, %d false: %s",
        galaxy,
        len(diagnosis),
        int((diagnosis["reason"] != diagnose.DETECTED).sum()),
        ", ".join(f"{k} {int(reasons.get(k, 0))}" for k in diagnose.MISS_REASONS),
        len(candidates),
        len(false),
        ", ".join(f"{k} {int(kinds.get(k, 0))}" for k in diagnose.FALSE_KINDS),
    )
    meta = {
        "galaxy": galaxy,
        "role": role,
        "method": "cnn",
        "truth": str(truth_path),
        "candidates": str(candidates_path),
        "peaks": str(peaks_path),
        "n_candidates": len(candidates),
        "settings": {
            "match_radius_px": r,
            "class_threshold": class_threshold,
            "visibility_threshold": visibility_threshold,
            "pixel_scale_arcsec": pixel_scale_arcsec,
            "diagnosis": own.to_config(),
        },
        "units": diagnose.UNITS,
    }
    return diagnosis, false, meta


def write_diagnosis(
    diagnosis: pd.DataFrame,
    false: pd.DataFrame,
    meta: Mapping,
    diagnosis_path: str | os.PathLike,
    false_path: str | os.PathLike,
) -> None:
    """Write :func:`make_diagnosis`'s tables (atomically)."""
    write_table(diagnosis_path, diagnosis, {**meta, "what": "truth clusters: detected, or why not"})
    write_table(false_path, false, {**meta, "what": "candidates matched to no truth cluster"})


def make_diagnosis_summary(
    diagnosis_paths: Sequence[str | os.PathLike],
    false_paths: Sequence[str | os.PathLike],
    table_path: str | os.PathLike,
    figure_path: str | os.PathLike,
) -> pd.DataFrame:
    """The counts of miss reasons and false-candidate kinds of every scored galaxy in one
    table (:func:`.diagnose.summarise`) and the figure (:func:`.plots.plot_diagnosis`);
    diagnosis_paths[i] and false_paths[i] belong to one galaxy. Returns the table."""
    if len(diagnosis_paths) != len(false_paths):
        raise ValueError(
            f"{len(diagnosis_paths)} diagnosis tables but {len(false_paths)} false-candidate tables"
        )
    summaries, misses = [], []
    for diagnosis_path, false_path in zip(diagnosis_paths, false_paths, strict=True):
        diagnosis, false = read_table(diagnosis_path), read_table(false_path)
        meta = false.attrs.get("meta", {})
        if "n_candidates" not in meta:
            raise InputFileError(f"{false_path}: no n_candidates in its metadata; rerun it")
        galaxy, role = meta["galaxy"], meta["role"]
        summaries.append(diagnose.summarise(diagnosis, false, meta["n_candidates"], galaxy, role))
        misses.append(diagnosis)
    summary = pd.concat(summaries, ignore_index=True)
    write_table(
        table_path,
        summary,
        {"inputs": [str(p) for p in (*diagnosis_paths, *false_paths)], "units": diagnose.UNITS},
    )
    plots.plot_diagnosis(summary, pd.concat(misses, ignore_index=True), figure_path)
    visible = summary[
        (summary["table"] == "miss_reasons")
        & summary["selection"].isin(["2.5 < visibility <= 5", "visibility > 5"])
        & (summary["category"] != diagnose.DETECTED)
    ]
    for galaxy, part in visible.groupby("galaxy", sort=False):
        counts = part.groupby("category", sort=False)["count"].sum()
        log.info(
            "%s: missed with visibility > 2.5: %s",
            galaxy,
            ", ".join(f"{k} {int(v)}" for k, v in counts.items() if v),
        )
    return summary


def make_robustness(
    score_paths: Sequence[str | os.PathLike],
    matched_paths: Sequence[str | os.PathLike],
    factors: Mapping[str, Mapping],
    table_path: str | os.PathLike,
    figure_path: str | os.PathLike,
) -> pd.DataFrame:
    """The robustness matrix from the score files of every base and factor galaxy
    (``<field>/<method>.parquet`` and ``<field>/<method>_matched.parquet``; the field
    and method come from the long table itself). Writes the table and the figure."""
    from starclusters.scorecard.robustness import (
        largest_sensitivities,
        plot_robustness,
        robustness_table,
    )

    scores, matched = {}, {}
    for score_path, matched_path in zip(score_paths, matched_paths, strict=True):
        long = read_table(score_path)
        key = (str(long["galaxy"].iloc[0]), str(long["method"].iloc[0]))
        scores[key] = long
        matched[key] = read_table(matched_path)
    table = robustness_table(scores, matched, factors)
    write_table(
        table_path,
        table,
        {
            "what": "factor - base per method and metric (docs/robustness.md)",
            "units": "recall, precision: fraction; bias_log_*: dex; bias_av: mag; n_*: count",
        },
    )
    plot_robustness(table, figure_path)
    for method in dict.fromkeys(table["method"]):
        worst = largest_sensitivities(table, method)
        log.info("%s: largest losses of recall\n%s", method, worst.to_string(index=False))
    return table
