"""Score any catalog against a truth table: one matching rule, the same metrics.

Inputs (pandas DataFrames; positions 0-based pixels of the mosaic grid):

* truth (e.g. the synthetic galaxy's ``mosaic/truth.parquet``): x_px, y_px, log_age_yr,
  log_mass_msun, av_mag, rh_arcsec (or log_rh_arcsec), visibility (thesis eq. 3.2; NaN
  near the edges is fine); optional background_counts_s (:func:`local_background`).
* catalog: x, y and the derived log_age_yr, log_mass_msun, av_mag, log_rh_arcsec (NaN
  where a method does not derive one — the column must still be there). Optional
  uncertainties per parameter, as percentiles of the method's posterior:
  ``<param>_p16`` and ``<param>_p84`` (the 68 % interval) and ``<param>_p2p5`` and
  ``<param>_p97p5`` (the 95 % interval); their calibration is scored only where both
  ends of an interval are given.

Matching: one-to-one, closest pair first, distance ≤ ``max_px`` (inclusive; thesis
§4.2.3: 3 px) — :func:`starclusters.detect.matching.match_positions`.

Metrics (:func:`score`, a :class:`Scorecard`):

* precision = matched catalog entries / catalog entries; recall = matched truth clusters
  / truth clusters, over all of them and over those with visibility > ``min_visibility``
  (2.5, the thesis' threshold: the headline). Binomial 68 % intervals are Wilson score
  intervals (:func:`starclusters.stats.binomial_recall`).
* recall per bin of visibility, of (log t, log M) and of the local background. Bins are
  [lo, hi), the last one closed; values outside the edges (or NaN) count in no bin
  (:func:`starclusters.stats.bin_index`).
* parameter errors (derived − true) of the matched clusters: median bias, scatter68
  (half the width of the central 68 % of the errors, (p84 − p16) / 2: σ for Gaussian
  errors) and bound95_abs (95th percentile of |error|); dex for log t, log M and log r_h,
  mag for A_V. Over the matched clusters with visibility > min_visibility (selection
  ``visible``) and over all matched clusters (selection ``all``).
* calibration: the fraction of matched true values inside the catalog's [p16, p84]
  (nominal 0.68) and [p2p5, p97p5] (nominal 0.95), with Wilson intervals.

A galaxy without truth clusters scores as "no truth" (n_truth = 0, NaN recall, the
``note`` column); an empty catalog gives NaN precision and zero recall.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields

import numpy as np
import pandas as pd

from starclusters.detect.matching import MATCH_RADIUS_PX, match_positions
from starclusters.errors import InputFileError
from starclusters.stats import bin_index, binomial_recall, error_statistics

#: Scored parameters (truth column == catalog column) and the unit of their errors.
PARAMETERS = {
    "log_age_yr": "dex",
    "log_mass_msun": "dex",
    "av_mag": "mag",
    "log_rh_arcsec": "dex",
}
#: Uncertainty intervals: name -> (lower suffix, upper suffix, nominal coverage).
INTERVALS = {
    "68": ("p16", "p84", 0.68),
    "95": ("p2p5", "p97p5", 0.95),
}
#: Truth columns every truth table needs (rh_arcsec may be given as log_rh_arcsec).
TRUTH_COLUMNS = ("x_px", "y_px", "log_age_yr", "log_mass_msun", "av_mag", "visibility")
#: Catalog columns every catalog needs.
CATALOG_COLUMNS = ("x", "y", *PARAMETERS)
#: Optional catalog columns copied to the match table as ``derived_<column>``.
EXTRA_DERIVED = ("class", "visibility")
#: The thesis' visibility threshold (§4.2.3): the headline recall counts clusters above it.
MIN_VISIBILITY = 2.5
#: Default bin edges: visibility (thesis eq. 3.2 scale), log10(t / yr), log10(M / Msun).
VISIBILITY_EDGES = (0.0, 1.0, 2.5, 5.0, 10.0, 1e9)
AGE_EDGES = (6.6, 7.0, 7.5, 8.0, 8.5, 9.0, 10.1)
MASS_EDGES = (3.5, 4.0, 4.5, 5.0, 5.5)
#: Notes of degenerate cases.
NO_TRUTH = "no truth"
EMPTY_CATALOG = "empty catalog"

RECALL_STATS = ("n", "n_detected", "recall", "recall_lo", "recall_hi")
SUMMARY_COLUMNS = (
    "n_truth",
    "n_catalog",
    "n_matched",
    "precision",
    "precision_lo",
    "precision_hi",
    "recall",
    "recall_lo",
    "recall_hi",
    "n_visible",
    "n_visible_detected",
    "recall_visible",
    "recall_visible_lo",
    "recall_visible_hi",
    "min_visibility",
    "max_px",
    "wall_s",
    "area_mpx",
    "wall_s_per_mpx",
    "note",
)
PARAMETER_COLUMNS = (
    "parameter",
    "selection",
    "n",
    "median_bias",
    "scatter68",
    "bound95_abs",
    "unit",
    "note",
)
CALIBRATION_COLUMNS = (
    "parameter",
    "interval",
    "nominal",
    "selection",
    "n",
    "n_inside",
    "fraction",
    "fraction_lo",
    "fraction_hi",
    "note",
)
#: Columns of the long table (:func:`to_long`). bin_lo/bin_hi: the bin of the table's
#: first binned quantity (visibility; log t; background counts/s), bin2_lo/bin2_hi the
#: second (log M); n: objects the value is computed over; n_detected: the successes of
#: a fraction (matched, detected, inside) — NA where meaningless.
LONG_COLUMNS = (
    "galaxy",
    "role",
    "method",
    "table",
    "metric",
    "parameter",
    "selection",
    "bin_lo",
    "bin_hi",
    "bin2_lo",
    "bin2_hi",
    "value",
    "lower",
    "upper",
    "n",
    "n_detected",
    "unit",
    "note",
)
ROLES = ("training", "validation")
#: Headline metrics of :func:`summarise`: (table, metric, selection).
HEADLINE = (
    ("summary", "precision", "all"),
    ("summary", "recall", "all"),
    ("summary", "recall_visible", "visible"),
    ("summary", "wall_s_per_mpx", "all"),
    ("parameters", "median_bias", "visible"),
    ("parameters", "scatter68", "visible"),
    ("parameters", "bound95_abs", "visible"),
    ("calibration", "coverage68", "visible"),
    ("calibration", "coverage95", "visible"),
)


@dataclass
class Scorecard:
    """The scores of one catalog against one truth table (module docstring).

    summary: one row, :data:`SUMMARY_COLUMNS`; recall_visibility: bin_lo, bin_hi and
    :data:`RECALL_STATS` per visibility bin; recall_age_mass: age_lo, age_hi, mass_lo,
    mass_hi (log10 yr, log10 Msun) and the stats per bin; recall_background: selection,
    bin_lo, bin_hi (counts/s) and the stats (empty without background_counts_s);
    parameters: :data:`PARAMETER_COLUMNS`; calibration: :data:`CALIBRATION_COLUMNS` (no
    rows without percentile columns); matched: :func:`match`'s table. Every table but
    matched has a ``note`` column ("no truth", "empty catalog" or "").
    """

    summary: pd.DataFrame
    recall_visibility: pd.DataFrame
    recall_age_mass: pd.DataFrame
    recall_background: pd.DataFrame
    parameters: pd.DataFrame
    calibration: pd.DataFrame
    matched: pd.DataFrame


# --------------------------------------------------------------------------- inputs


def _check(table: pd.DataFrame, required: Sequence[str], source, what: str, hint: str) -> None:
    if not isinstance(table, pd.DataFrame):
        raise InputFileError(f"{source}: {what} must be a table (DataFrame), got {type(table)}")
    missing = [c for c in required if c not in table.columns]
    if missing:
        raise InputFileError(
            f"{source}: {what} without column(s) {', '.join(missing)}; {hint} "
            f"(columns present: {', '.join(map(str, table.columns)) or 'none'})"
        )
    wrong = [c for c in required if not pd.api.types.is_numeric_dtype(table[c])]
    if wrong:
        raise InputFileError(
            f"{source}: {what} column(s) {', '.join(wrong)} are not numeric; write them as "
            "floats (NaN where unknown)"
        )


def check_truth(truth: pd.DataFrame, source: str | os.PathLike = "truth") -> None:
    """Raise :class:`~starclusters.errors.InputFileError` (a ValueError) naming ``source``
    and the missing columns when ``truth`` cannot be scored against.

    A table with zero rows always passes (a galaxy without clusters scores as "no truth").
    """
    if isinstance(truth, pd.DataFrame) and len(truth) == 0:
        return
    _check(
        truth,
        ("x_px", "y_px"),
        source,
        "a truth table",
        "a truth table without positions: give columns x_px, y_px (0-based mosaic pixels)",
    )
    _check(
        truth,
        TRUTH_COLUMNS[2:],
        source,
        "a truth table",
        "give the true parameters log_age_yr, log_mass_msun, av_mag and the visibility "
        "(thesis eq. 3.2, NaN where unknown), as mosaic/truth.parquet has them",
    )
    if "rh_arcsec" not in truth and "log_rh_arcsec" not in truth:
        raise InputFileError(
            f"{source}: a truth table without column rh_arcsec (or log_rh_arcsec); give the "
            "true half-light radius in arcsec"
        )


def check_catalog(catalog: pd.DataFrame, source: str | os.PathLike = "catalog") -> None:
    """Raise :class:`~starclusters.errors.InputFileError` (a ValueError) naming ``source``
    and the missing columns when ``catalog`` cannot be scored.

    A table with zero rows always passes (a method that found nothing).
    """
    if isinstance(catalog, pd.DataFrame) and len(catalog) == 0:
        return
    _check(
        catalog,
        ("x", "y"),
        source,
        "a catalog",
        "a catalog without positions: give columns x, y (0-based pixels of the mosaic grid)",
    )
    _check(
        catalog,
        tuple(PARAMETERS),
        source,
        "a catalog",
        "give the derived parameters as columns, filled with NaN where the method does "
        "not derive one",
    )


def _truth_frame(truth: pd.DataFrame) -> pd.DataFrame:
    """truth with a fresh index, float positions and log_rh_arcsec (log10 of rh_arcsec)."""
    out = truth.reset_index(drop=True).copy()
    for column in (*TRUTH_COLUMNS, "rh_arcsec"):
        if column not in out and (column != "rh_arcsec" or "log_rh_arcsec" not in out):
            out[column] = pd.Series(np.zeros(0), dtype=float)  # only for zero-row truth
    if "log_rh_arcsec" not in out:
        with np.errstate(divide="ignore", invalid="ignore"):
            out["log_rh_arcsec"] = np.log10(out["rh_arcsec"].to_numpy(float))
    return out


def _catalog_frame(catalog: pd.DataFrame) -> pd.DataFrame:
    """catalog with a fresh index and every required column (NaN for a zero-row table)."""
    out = catalog.reset_index(drop=True).copy()
    for column in CATALOG_COLUMNS:
        if column not in out:
            out[column] = pd.Series(np.zeros(len(out)), dtype=float) * np.nan
    return out


def uncertainty_columns(catalog: pd.DataFrame) -> list[str]:
    """The catalog's uncertainty columns (``<param>_<suffix>`` of :data:`INTERVALS`)."""
    names = [f"{p}_{s}" for p in PARAMETERS for lo, hi, _ in INTERVALS.values() for s in (lo, hi)]
    return [n for n in names if n in catalog.columns]


# --------------------------------------------------------------------------- matching


def match(
    truth: pd.DataFrame,
    catalog: pd.DataFrame,
    max_px: float = MATCH_RADIUS_PX,
    truth_source: str | os.PathLike = "truth",
    catalog_source: str | os.PathLike = "catalog",
) -> pd.DataFrame:
    """The truth matched one-to-one to the catalog within ``max_px`` (inclusive).

    truth, catalog: as in the module docstring (checked; the sources name them in
    errors). Returns the truth (fresh index, log_rh_arcsec added when missing) with
    detected (bool), catalog_row (int64 positional row of the matched catalog entry, −1
    if none), distance_px (NaN if none) and derived_<column> (NaN if none) of the matched
    entry for the parameters, their uncertainty columns and class, visibility when the
    catalog has them. Which catalog rows matched: :func:`matched_rows`.
    """
    check_truth(truth, truth_source)
    check_catalog(catalog, catalog_source)
    out = _truth_frame(truth)
    cat = _catalog_frame(catalog)
    index, distance = match_positions(
        out[["x_px", "y_px"]].to_numpy(float), cat[["x", "y"]].to_numpy(float), max_px
    )
    out["detected"] = index >= 0
    out["catalog_row"] = index
    out["distance_px"] = distance
    hit = index >= 0
    copied = [*PARAMETERS, *uncertainty_columns(cat), *(c for c in EXTRA_DERIVED if c in cat)]
    for column in copied:
        values = np.full(len(out), np.nan)
        values[hit] = cat[column].to_numpy(float)[index[hit]]
        out[f"derived_{column}"] = values
    return out


def matched_rows(matched: pd.DataFrame, n_catalog: int) -> np.ndarray:
    """(n_catalog,) bool: the catalog rows that :func:`match` paired with a truth cluster."""
    out = np.zeros(int(n_catalog), bool)
    rows = matched["catalog_row"].to_numpy(np.int64)
    out[rows[rows >= 0]] = True
    return out


# --------------------------------------------------------------------------- metrics


def _stats(n_detected, n) -> dict:
    """n, n_detected, recall and its Wilson 68 % interval (NaN when n == 0)."""
    st = binomial_recall(n_detected, n)
    return {
        "n": np.asarray(n, np.int64),
        "n_detected": np.asarray(n_detected, np.int64),
        "recall": st["recall"],
        "recall_lo": st["recall_lo"],
        "recall_hi": st["recall_hi"],
    }


def _recall_1d(values, detected, edges) -> pd.DataFrame:
    edges = np.asarray(edges, float)
    index = bin_index(values, edges) if len(values) else np.zeros(0, np.int64)
    nbins = len(edges) - 1
    ok = index >= 0
    n = np.bincount(index[ok], minlength=nbins)[:nbins]
    k = np.bincount(index[ok], weights=detected[ok], minlength=nbins)[:nbins].astype(np.int64)
    return pd.DataFrame({"bin_lo": edges[:-1], "bin_hi": edges[1:], **_stats(k, n)})


def _recall_2d(x, y, detected, x_edges, y_edges) -> pd.DataFrame:
    xe, ye = np.asarray(x_edges, float), np.asarray(y_edges, float)
    nx, ny = len(xe) - 1, len(ye) - 1
    ix = bin_index(x, xe) if len(x) else np.zeros(0, np.int64)
    iy = bin_index(y, ye) if len(y) else np.zeros(0, np.int64)
    ok = (ix >= 0) & (iy >= 0)
    flat = ix[ok] * ny + iy[ok]
    n = np.bincount(flat, minlength=nx * ny)
    k = np.bincount(flat, weights=detected[ok], minlength=nx * ny).astype(np.int64)
    i, j = np.divmod(np.arange(nx * ny), ny)
    return pd.DataFrame(
        {
            "age_lo": xe[i],
            "age_hi": xe[i + 1],
            "mass_lo": ye[j],
            "mass_hi": ye[j + 1],
            **_stats(k, n),
        }
    )


def _background_edges(values: np.ndarray, bins) -> np.ndarray | None:
    """Bin edges of the local background: quantile bins (None: terciles; int: that many)
    or the given edges; None when no value is finite."""
    finite = values[np.isfinite(values)]
    if bins is not None and not isinstance(bins, int | np.integer):
        return np.asarray(bins, float)
    if finite.size == 0:
        return None
    count = 3 if bins is None else int(bins)
    edges = np.unique(np.quantile(finite, np.linspace(0.0, 1.0, count + 1)))
    return edges if len(edges) > 1 else np.repeat(edges, 2)


def _errors(matched: pd.DataFrame, selected: np.ndarray, parameter: str) -> np.ndarray:
    error = matched[f"derived_{parameter}"].to_numpy(float) - matched[parameter].to_numpy(float)
    error = error[selected]
    return error[np.isfinite(error)]


def _parameter_rows(matched: pd.DataFrame, selections: dict) -> pd.DataFrame:
    rows = []
    for selection, selected in selections.items():
        for parameter, unit in PARAMETERS.items():
            stats = error_statistics(_errors(matched, selected, parameter))
            rows.append(
                (
                    parameter,
                    selection,
                    stats["n"],
                    stats["median_bias"],
                    stats["scatter68"],
                    stats["bound95_abs"],
                    unit,
                    "",
                )
            )
    return pd.DataFrame(rows, columns=list(PARAMETER_COLUMNS))


def _calibration_rows(matched: pd.DataFrame, selections: dict) -> pd.DataFrame:
    rows = []
    for parameter in PARAMETERS:
        for name, (lo_suffix, hi_suffix, nominal) in INTERVALS.items():
            lo_col = f"derived_{parameter}_{lo_suffix}"
            hi_col = f"derived_{parameter}_{hi_suffix}"
            if lo_col not in matched or hi_col not in matched:
                continue
            true = matched[parameter].to_numpy(float)
            lo, hi = matched[lo_col].to_numpy(float), matched[hi_col].to_numpy(float)
            usable = np.isfinite(true) & np.isfinite(lo) & np.isfinite(hi)
            inside = usable & (lo <= true) & (true <= hi)
            for selection, selected in selections.items():
                n, k = int((usable & selected).sum()), int((inside & selected).sum())
                st = binomial_recall(k, n)
                rows.append(
                    (
                        parameter,
                        name,
                        nominal,
                        selection,
                        n,
                        k,
                        float(st["recall"]),
                        float(st["recall_lo"]),
                        float(st["recall_hi"]),
                        "",
                    )
                )
    return pd.DataFrame(rows, columns=list(CALIBRATION_COLUMNS))


def score(
    truth: pd.DataFrame,
    catalog: pd.DataFrame,
    max_px: float = MATCH_RADIUS_PX,
    visibility_bins: Sequence[float] = VISIBILITY_EDGES,
    age_bins: Sequence[float] = AGE_EDGES,
    mass_bins: Sequence[float] = MASS_EDGES,
    background_bins: int | Sequence[float] | None = None,
    min_visibility: float = MIN_VISIBILITY,
    wall_s: float | None = None,
    area_mpx: float | None = None,
    truth_source: str | os.PathLike = "truth",
    catalog_source: str | os.PathLike = "catalog",
) -> Scorecard:
    """Score ``catalog`` against ``truth`` (module docstring; tables in :class:`Scorecard`).

    max_px: matching radius, px; visibility_bins, age_bins (log10 yr), mass_bins (log10
    Msun): bin edges; background_bins: bins of the truth's background_counts_s (counts/s)
    — None: terciles, an int: that many quantile bins, a sequence: edges; min_visibility:
    the headline recall and the ``visible`` selection count clusters with visibility
    strictly above it; wall_s: the method's wall-clock time, s; area_mpx: the searched
    area, megapixels (wall_s_per_mpx = wall_s / area_mpx). The sources name the inputs
    in error messages.
    """
    matched = match(truth, catalog, max_px, truth_source, catalog_source)
    n_truth, n_catalog = len(matched), len(catalog)
    detected = matched["detected"].to_numpy(bool)
    n_matched = int(detected.sum())
    visibility = matched["visibility"].to_numpy(float)
    with np.errstate(invalid="ignore"):
        visible = visibility > float(min_visibility)
    notes = [NO_TRUTH] * (n_truth == 0) + [EMPTY_CATALOG] * (n_catalog == 0)
    note = "; ".join(notes)

    precision = binomial_recall(n_matched, n_catalog)
    recall = binomial_recall(n_matched, n_truth)
    n_vis, n_vis_det = int(visible.sum()), int((visible & detected).sum())
    recall_vis = binomial_recall(n_vis_det, n_vis)
    wall = np.nan if wall_s is None else float(wall_s)
    area = np.nan if area_mpx is None else float(area_mpx)
    per_mpx = wall / area if np.isfinite(wall) and np.isfinite(area) and area > 0 else np.nan
    summary = pd.DataFrame(
        [
            (
                n_truth,
                n_catalog,
                n_matched,
                *(float(precision[c]) for c in ("recall", "recall_lo", "recall_hi")),
                *(float(recall[c]) for c in ("recall", "recall_lo", "recall_hi")),
                n_vis,
                n_vis_det,
                *(float(recall_vis[c]) for c in ("recall", "recall_lo", "recall_hi")),
                float(min_visibility),
                float(max_px),
                wall,
                area,
                per_mpx,
                note,
            )
        ],
        columns=list(SUMMARY_COLUMNS),
    )

    recall_visibility = _recall_1d(visibility, detected, visibility_bins)
    recall_age_mass = _recall_2d(
        matched["log_age_yr"].to_numpy(float),
        matched["log_mass_msun"].to_numpy(float),
        detected,
        age_bins,
        mass_bins,
    )
    selections = {"visible": visible & detected, "all": detected}
    background_tables = []
    if "background_counts_s" in matched:
        background = matched["background_counts_s"].to_numpy(float)
        edges = _background_edges(background, background_bins)
        if edges is not None:
            for selection, selected in {"all": np.ones(n_truth, bool), "visible": visible}.items():
                part = _recall_1d(background[selected], detected[selected], edges)
                background_tables.append(part.assign(selection=selection))
    columns = ["selection", "bin_lo", "bin_hi", *RECALL_STATS]
    recall_background = (
        pd.concat(background_tables, ignore_index=True)[columns]
        if background_tables
        else pd.DataFrame(
            {c: pd.Series(dtype=object if c == "selection" else float) for c in columns}
        )
    )
    card = Scorecard(
        summary=summary,
        recall_visibility=recall_visibility,
        recall_age_mass=recall_age_mass,
        recall_background=recall_background,
        parameters=_parameter_rows(matched, selections),
        calibration=_calibration_rows(matched, selections),
        matched=matched,
    )
    for field in fields(Scorecard):
        if field.name != "matched":
            getattr(card, field.name)["note"] = note
    return card


# --------------------------------------------------------------------------- background


def local_background(
    image,
    mask,
    x,
    y,
    inner_px: float = 8.0,
    outer_px: float = 16.0,
) -> np.ndarray:
    """Median of ``image`` in an annulus around each position: (N,) float64, counts/s.

    image: (H, W) counts/s (the reference band); mask: (H, W) bool, True where a pixel is
    unusable (or None); x, y: (N,) 0-based pixel positions (column, row; pixel centres at
    integers). A pixel counts when its centre lies at inner_px ≤ r < outer_px from the
    position, it is unmasked and finite. NaN where no pixel counts (off the image).
    """
    image = np.asarray(image, float)
    if image.ndim != 2:
        raise ValueError(f"image must be (H, W), got shape {image.shape}")
    bad = np.zeros(image.shape, bool) if mask is None else np.asarray(mask, bool)
    if bad.shape != image.shape:
        raise ValueError(f"mask shape {bad.shape} differs from image shape {image.shape}")
    if not 0 <= inner_px < outer_px:
        raise ValueError(f"need 0 <= inner_px < outer_px, got {inner_px}, {outer_px}")
    xs = np.atleast_1d(np.asarray(x, float))
    ys = np.atleast_1d(np.asarray(y, float))
    usable = ~bad & np.isfinite(image)
    height, width = image.shape
    out = np.full(len(xs), np.nan)
    reach = int(np.ceil(outer_px))
    for i, (xc, yc) in enumerate(zip(xs, ys, strict=True)):
        if not (np.isfinite(xc) and np.isfinite(yc)):
            continue
        x0, x1 = max(int(np.floor(xc)) - reach, 0), min(int(np.ceil(xc)) + reach + 1, width)
        y0, y1 = max(int(np.floor(yc)) - reach, 0), min(int(np.ceil(yc)) + reach + 1, height)
        if x0 >= x1 or y0 >= y1:
            continue
        gy, gx = np.mgrid[y0:y1, x0:x1]
        r = np.hypot(gx - xc, gy - yc)
        ring = (r >= inner_px) & (r < outer_px) & usable[y0:y1, x0:x1]
        if ring.any():
            out[i] = float(np.median(image[y0:y1, x0:x1][ring]))
    return out


# --------------------------------------------------------------------------- long tables


def _long(frame: pd.DataFrame, **columns) -> pd.DataFrame:
    """A block of long rows, one per row of ``frame``: ``columns`` are arrays of
    len(frame) or scalars; the other :data:`LONG_COLUMNS` are None."""
    n = len(frame)
    data = {}
    for column in LONG_COLUMNS:
        value = columns.get(column)
        if isinstance(value, pd.Series):
            value = value.to_numpy()
        data[column] = np.asarray(value, object) if np.ndim(value) else [value] * n
    return pd.DataFrame(data)


def to_long(card: Scorecard, galaxy: str, method: str, role: str) -> pd.DataFrame:
    """One long table of ``card`` (columns :data:`LONG_COLUMNS`) that concatenates over
    galaxies × methods into one Parquet file.

    role: "training" (the galaxy the network was trained on) or "validation". Tables:
    summary (metrics n_truth, n_catalog, n_matched, precision, recall, recall_visible,
    wall_s [s], area_mpx [Mpx], wall_s_per_mpx [s/Mpx]); recall_visibility,
    recall_age_mass, recall_background (metric recall per bin); parameters (metrics
    median_bias, scatter68, bound95_abs per parameter and selection, in dex or mag);
    calibration (metrics coverage68, coverage95). Selections: "all", "visible"
    (visibility > min_visibility).
    """
    if role not in ROLES:
        raise ValueError(f"role must be one of {ROLES}, got {role!r}")
    s = card.summary.iloc[0]
    note = str(s["note"])
    one = pd.DataFrame(index=[0])
    blocks = []

    def add(frame, **columns):
        if len(frame):
            blocks.append(_long(frame, **columns))

    counts = (("n_truth", "count"), ("n_catalog", "count"), ("n_matched", "count"))
    for metric, unit in counts:
        add(
            one,
            table="summary",
            metric=metric,
            selection="all",
            value=[float(s[metric])],
            n=[int(s[metric])],
            unit=unit,
        )
    fractions = (
        ("precision", "all", "n_catalog", "n_matched", "precision"),
        ("recall", "all", "n_truth", "n_matched", "recall"),
        ("recall_visible", "visible", "n_visible", "n_visible_detected", "recall_visible"),
    )
    for metric, selection, n_col, k_col, col in fractions:
        add(
            one,
            table="summary",
            metric=metric,
            selection=selection,
            value=[s[col]],
            lower=[s[f"{col}_lo"]],
            upper=[s[f"{col}_hi"]],
            n=[int(s[n_col])],
            n_detected=[int(s[k_col])],
            unit="",
        )
    for metric, unit in (("wall_s", "s"), ("area_mpx", "Mpx"), ("wall_s_per_mpx", "s/Mpx")):
        add(one, table="summary", metric=metric, selection="all", value=[s[metric]], unit=unit)

    def recall_block(table, frame, selection, lo, hi, lo2=None, hi2=None):
        add(
            frame,
            table=table,
            metric="recall",
            selection=selection,
            bin_lo=frame[lo],
            bin_hi=frame[hi],
            bin2_lo=None if lo2 is None else frame[lo2],
            bin2_hi=None if hi2 is None else frame[hi2],
            value=frame["recall"],
            lower=frame["recall_lo"],
            upper=frame["recall_hi"],
            n=frame["n"],
            n_detected=frame["n_detected"],
            unit="",
        )

    recall_block("recall_visibility", card.recall_visibility, "all", "bin_lo", "bin_hi")
    recall_block(
        "recall_age_mass", card.recall_age_mass, "all", "age_lo", "age_hi", "mass_lo", "mass_hi"
    )
    background = card.recall_background
    recall_block("recall_background", background, background["selection"], "bin_lo", "bin_hi")
    p = card.parameters
    for metric in ("median_bias", "scatter68", "bound95_abs"):
        add(
            p,
            table="parameters",
            metric=metric,
            parameter=p["parameter"],
            selection=p["selection"],
            value=p[metric],
            n=p["n"],
            unit=p["unit"],
        )
    c = card.calibration
    add(
        c,
        table="calibration",
        metric="coverage" + c["interval"].astype(str),
        parameter=c["parameter"],
        selection=c["selection"],
        value=c["fraction"],
        lower=c["fraction_lo"],
        upper=c["fraction_hi"],
        n=c["n"],
        n_detected=c["n_inside"],
        unit="",
    )
    out = pd.concat(blocks, ignore_index=True)
    out["galaxy"], out["role"], out["method"], out["note"] = str(galaxy), role, str(method), note
    for column in ("parameter", "unit"):
        out[column] = out[column].fillna("").astype(str)
    out["selection"] = out["selection"].astype(str)
    for column in ("bin_lo", "bin_hi", "bin2_lo", "bin2_hi", "value", "lower", "upper"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype(float)
    for column in ("n", "n_detected"):
        out[column] = pd.to_numeric(out[column], errors="coerce").astype("Int64")
    return out[list(LONG_COLUMNS)]


def _concat(long_tables) -> pd.DataFrame:
    if isinstance(long_tables, pd.DataFrame):
        return long_tables
    tables = [t for t in long_tables if len(t)]
    if not tables:
        return pd.DataFrame({c: [] for c in LONG_COLUMNS})
    return pd.concat(tables, ignore_index=True)


SUMMARISE_COLUMNS = (
    "method",
    "role",
    "galaxy",
    "table",
    "metric",
    "parameter",
    "selection",
    "mean",
    "std",
    "n_galaxies",
    "unit",
)


def summarise(long_tables: pd.DataFrame | Iterable[pd.DataFrame]) -> pd.DataFrame:
    """Mean ± spread of the headline metrics (:data:`HEADLINE`) per method.

    long_tables: :func:`to_long` tables (or their concatenation). Per method and metric:
    one row over the validation galaxies (galaxy "validation"): mean and std (the spread,
    ddof = 1; NaN with fewer than two finite values) of the per-galaxy values, n_galaxies
    with a finite value ("no truth" galaxies drop out of recall); and one row per training
    galaxy (its own value, std NaN). Columns :data:`SUMMARISE_COLUMNS`.
    """
    long = _concat(long_tables)
    keys = ["table", "metric", "selection"]
    wanted = pd.DataFrame(HEADLINE, columns=keys)
    part = long.merge(wanted, on=keys, how="inner")
    rows = []
    group = ["method", "table", "metric", "parameter", "selection"]
    for key, frame in part.groupby(group, sort=False, dropna=False):
        method, table, metric, parameter, selection = key
        unit = frame["unit"].iloc[0]
        base = {
            "method": method,
            "table": table,
            "metric": metric,
            "parameter": parameter,
            "selection": selection,
            "unit": unit,
        }
        valid = frame.loc[frame["role"] == "validation", "value"].to_numpy(float)
        valid = valid[np.isfinite(valid)]
        if (frame["role"] == "validation").any():
            rows.append(
                base
                | {
                    "role": "validation",
                    "galaxy": "validation",
                    "mean": float(valid.mean()) if valid.size else np.nan,
                    "std": float(valid.std(ddof=1)) if valid.size > 1 else np.nan,
                    "n_galaxies": int(valid.size),
                }
            )
        for row in frame[frame["role"] == "training"].itertuples(index=False):
            finite = bool(np.isfinite(row.value))
            rows.append(
                base
                | {
                    "role": "training",
                    "galaxy": row.galaxy,
                    "mean": float(row.value),
                    "std": np.nan,
                    "n_galaxies": int(finite),
                }
            )
    return pd.DataFrame(rows, columns=list(SUMMARISE_COLUMNS))
