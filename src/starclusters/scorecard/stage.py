"""The scorecard's products, from files (used by the workflow scripts).

:func:`make_score` scores one catalog of one galaxy (the training galaxy or a validation
galaxy) against its truth and writes the long table and the matched truth;
:func:`make_scorecard` gathers every galaxy × method into one table, the summary over
the validation galaxies and the figures.
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
from starclusters.scorecard import plots
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
