"""Recall (completeness) of the artificial-cluster test (thesis §4.2.3, Fig. 4.3).

Recall in a bin is the number of mocks recovered (matched by a candidate within the match
radius) over the number injected. Its uncertainty is binomial: σ = √(p(1 − p)/n), and the
Wilson score interval at ±1σ (68.27 %), which stays inside [0, 1] and is not zero-width
when every mock or none was found.

Bins: [lo, hi) along each parameter, the last one closed ([lo, hi]) so that a value on the
top edge of the range (log t = 10.1, A_V = 3) counts. Values outside the edges count in
no bin.

:func:`recall_table` makes the long table ``artificial/recall.parquet``: one row per
(kind, region, radius, bin) with kind ``total`` (no bins; the grid draw's mocks only,
:func:`grid_draw`), ``age_mass``, ``age_av``,
``mass_av`` (2-D, as Figs. 4.3b–g) and ``spatial`` (mosaic pixels, the mocks of
log M below ``spatial_max_log_mass_msun``, Fig. 4.3a); region ``all``, ``on_arm``,
``off_arm``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from starclusters.artificial.matching import radius_label
from starclusters.stats import bin_index, binomial_recall

#: 2-D recall maps of Fig. 4.3: kind -> (x parameter, y parameter).
PAIRS = {
    "age_mass": ("log_age_yr", "log_mass_msun"),
    "age_av": ("log_age_yr", "av_mag"),
    "mass_av": ("log_mass_msun", "av_mag"),
}
#: Columns of the long recall table.
RECALL_COLUMNS = (
    "kind",
    "region",
    "radius_px",
    "x_param",
    "x_lo",
    "x_hi",
    "y_param",
    "y_lo",
    "y_hi",
    "n_injected",
    "n_recovered",
    "recall",
    "recall_err",
    "recall_lo",
    "recall_hi",
)
#: True visibility (thesis eq. 3.2) above which a mock is clearly visible: issue 13's upper
#: bin, the scorecard diagnosis' "visibility > 5".
CLEARLY_VISIBLE = 5.0
#: Columns of the metrics table (uncertainty: binomial σ; lower, upper: Wilson interval).
METRICS_COLUMNS = (
    "metric",
    "region",
    "radius_px",
    "value",
    "uncertainty",
    "lower",
    "upper",
    "n",
    "unit",
)
#: Parameters whose errors (derived − true) are reported for recovered mocks, with units.
ERROR_PARAMETERS = {
    "log_age_yr": "dex",
    "log_mass_msun": "dex",
    "av_mag": "mag",
    "log_rh_arcsec": "dex",
    "log_visibility": "dex",
}
#: Median absolute deviation -> σ of a Gaussian.
MAD_TO_SIGMA = 1.482602218505602


def recall_2d(
    x, y, recovered, x_edges, y_edges
) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """(n_injected, n_recovered, binomial_recall) on the (len(x_edges)−1, len(y_edges)−1) bins."""
    ix, iy = bin_index(x, x_edges), bin_index(y, y_edges)
    shape = (len(x_edges) - 1, len(y_edges) - 1)
    ok = (ix >= 0) & (iy >= 0)
    flat = ix[ok] * shape[1] + iy[ok]
    size = shape[0] * shape[1]
    n = np.bincount(flat, minlength=size).reshape(shape)
    k = np.bincount(flat, weights=np.asarray(recovered, bool)[ok], minlength=size)
    k = k.reshape(shape).astype(np.int64)
    return n, k, binomial_recall(k, n)


def _rows_2d(kind, region, radius, x_param, x_edges, y_param, y_edges, n, k, stats) -> list:
    rows = []
    for i in range(len(x_edges) - 1):
        for j in range(len(y_edges) - 1):
            rows.append(
                (
                    kind,
                    region,
                    radius,
                    x_param,
                    x_edges[i],
                    x_edges[i + 1],
                    y_param,
                    y_edges[j],
                    y_edges[j + 1],
                    int(n[i, j]),
                    int(k[i, j]),
                    *(float(stats[c][i, j]) for c in RECALL_COLUMNS[-4:]),
                )
            )
    return rows


def regions_of(matches: pd.DataFrame) -> dict[str, np.ndarray]:
    """region name -> (N,) bool: all; on_arm and off_arm when the table says where the arms are."""
    out = {"all": np.ones(len(matches), bool)}
    known = matches.attrs.get("meta", {}).get("arms") not in (None, {})
    if "on_arm" in matches and (known or matches["on_arm"].any()):
        on = matches["on_arm"].to_numpy(bool)
        out["on_arm"], out["off_arm"] = on, ~on
    return out


def grid_draw(matches: pd.DataFrame) -> np.ndarray:
    """(N,) bool: the mocks of the grid draw, i.e. not drawn at the reference node
    (``reference_draw``, :func:`starclusters.artificial.draw.reference_sites`). The overall
    recall and the parameter errors are means over the draw, so they count these only."""
    if "reference_draw" not in matches:
        return np.ones(len(matches), bool)
    return ~matches["reference_draw"].fillna(False).to_numpy(bool)


def recall_table(
    matches: pd.DataFrame,
    bins: Mapping[str, np.ndarray],
    radii_px: Sequence[float],
    spatial_edges: tuple[np.ndarray, np.ndarray],
    spatial_max_log_mass_msun: float,
) -> pd.DataFrame:
    """The long recall table (module docstring) of a :func:`match_artificial` table.

    bins: parameter -> bin edges (log_age_yr, log_mass_msun, av_mag); radii_px: the match
    radii (recovered_<r>px columns); spatial_edges: (x edges, y edges) in mosaic pixels.
    """
    rows = []
    drawn = grid_draw(matches)
    for region, selected in regions_of(matches).items():
        part = matches[selected]
        for radius in radii_px:
            recovered = part[f"recovered_{radius_label(radius)}"].to_numpy(bool)
            total = recovered[drawn[selected]]
            stats = binomial_recall(total.sum(), len(total))
            rows.append(
                (
                    "total",
                    region,
                    float(radius),
                    "",
                    np.nan,
                    np.nan,
                    "",
                    np.nan,
                    np.nan,
                    len(total),
                    int(total.sum()),
                    *(float(stats[c]) for c in RECALL_COLUMNS[-4:]),
                )
            )
            for kind, (xp, yp) in PAIRS.items():
                n, k, st = recall_2d(part[xp], part[yp], recovered, bins[xp], bins[yp])
                rows += _rows_2d(kind, region, float(radius), xp, bins[xp], yp, bins[yp], n, k, st)
            light = part["log_mass_msun"].to_numpy(float) < spatial_max_log_mass_msun
            xe, ye = spatial_edges
            n, k, st = recall_2d(
                part["x_px"].to_numpy(float)[light],
                part["y_px"].to_numpy(float)[light],
                recovered[light],
                xe,
                ye,
            )
            rows += _rows_2d("spatial", region, float(radius), "x_px", xe, "y_px", ye, n, k, st)
    return pd.DataFrame(rows, columns=list(RECALL_COLUMNS))


def reference_recall(
    matches: pd.DataFrame,
    reference: Mapping,
    radii_px: Sequence[float],
    subset: np.ndarray | None = None,
) -> pd.DataFrame:
    """Recall of the mocks near the reference node, per region and radius.

    reference: log_age_yr, log_mass_msun (the node; thesis abstract: log t = 7, log M = 4,
    recall ~90 %) and half_width_dex: mocks with |log t − node| ≤ half width and
    |log M − node| ≤ half width count. subset: (N,) bool, only these mocks (e.g.
    :func:`reference_subsets`); None: all. One row per (region, radius): n_injected,
    n_recovered and :func:`binomial_recall`.
    """
    half = float(reference["half_width_dex"])
    near = (
        np.abs(matches["log_age_yr"].to_numpy(float) - float(reference["log_age_yr"])) <= half
    ) & (
        np.abs(matches["log_mass_msun"].to_numpy(float) - float(reference["log_mass_msun"])) <= half
    )
    if subset is not None:
        near = near & np.asarray(subset, bool)
    rows = []
    for region, selected in regions_of(matches).items():
        part = matches[near & selected]
        for radius in radii_px:
            k = int(part[f"recovered_{radius_label(radius)}"].sum())
            stats = binomial_recall(k, len(part))
            rows.append(
                {
                    "region": region,
                    "radius_px": float(radius),
                    "n_injected": len(part),
                    "n_recovered": k,
                    **{c: float(stats[c]) for c in RECALL_COLUMNS[-4:]},
                }
            )
    return pd.DataFrame(rows)


def parameter_errors(matches: pd.DataFrame, radius_px: float) -> pd.DataFrame:
    """Errors (derived − true) of the mocks recovered within ``radius_px``.

    One row per parameter of :data:`ERROR_PARAMETERS`: n, median_bias, scatter (1.4826 ×
    the median absolute deviation from the median: σ for Gaussian errors), unit. Only the
    derived values of that radius's match count.
    """
    recovered = matches[f"recovered_{radius_label(radius_px)}"].to_numpy(bool)
    same = matches["derived_radius_px"].to_numpy(float) <= float(radius_px)
    chosen = matches[recovered & same]
    rows = []
    for name, unit in ERROR_PARAMETERS.items():
        error = chosen[f"derived_{name}"].to_numpy(float) - chosen[name].to_numpy(float)
        error = error[np.isfinite(error)]
        bias = float(np.median(error)) if error.size else np.nan
        scatter = float(MAD_TO_SIGMA * np.median(np.abs(error - bias))) if error.size else np.nan
        rows.append(
            {
                "parameter": name,
                "n": int(error.size),
                "median_bias": bias,
                "scatter": scatter,
                "unit": unit,
            }
        )
    return pd.DataFrame(rows)


def reference_subsets(matches: pd.DataFrame, bank_cut: Mapping | None = None) -> dict:
    """Subsets of the mocks whose recall at the reference node the metrics also give:
    metric name -> (N,) bool.

    ``reference_recall_visible``: true visibility above :data:`CLEARLY_VISIBLE` (issue 13's
    "clearly visible" bin). ``reference_recall_bank_cut``: the mocks the bank's magnitude
    cut keeps (their realised ``mag_<band>`` brighter than ``bank_cut["magnitude_limits"]``,
    combined by ``bank_cut["magnitude_cut"]``, :func:`~starclusters.mocks.priors.passes_cuts`):
    the thesis' test mocks were cut so (§4.1: F336W < 24, F438W < 23.5, F814W < 23), and
    its ~90 % at the node is their recall. Only with ``bank_cut``.
    """
    out = {"reference_recall_visible": matches["visibility"].to_numpy(float) > CLEARLY_VISIBLE}
    if bank_cut is not None:
        from starclusters.mocks.priors import passes_cuts
        from starclusters.photometry.settings import magnitude_cut_of

        out["reference_recall_bank_cut"] = passes_cuts(
            matches, bank_cut["magnitude_limits"], magnitude_cut_of(bank_cut)
        )
    return out


def metrics_table(
    matches: pd.DataFrame,
    reference: Mapping,
    radii_px: Sequence[float],
    bank_cut: Mapping | None = None,
) -> pd.DataFrame:
    """The small metrics table ``artificial/metrics.parquet``: long, one value per row.

    Columns :data:`METRICS_COLUMNS`. Metrics: recall (the mocks of the grid draw,
    :func:`grid_draw`), reference_recall (every mock at the node of
    :func:`reference_recall`) and the node's recall of the subsets of
    :func:`reference_subsets` (bank_cut: ``magnitude_limits`` and ``magnitude_cut`` of the
    ``photometry`` section), with the binomial σ as uncertainty and the Wilson interval
    (lower, upper); bias_<parameter> and scatter_<parameter> of the grid draw's mocks
    recovered within the primary radius (uncertainty, lower, upper NaN).
    """
    rows = []
    drawn = grid_draw(matches)
    for region, selected in regions_of(matches).items():
        selected = selected & drawn
        for radius in radii_px:
            recovered = matches.loc[selected, f"recovered_{radius_label(radius)}"]
            stats = binomial_recall(int(recovered.sum()), int(selected.sum()))
            interval = tuple(float(stats[c]) for c in RECALL_COLUMNS[-4:])
            rows.append(("recall", region, radius, *interval, int(selected.sum()), ""))
    subsets = {"reference_recall": None} | reference_subsets(matches, bank_cut)
    for name, subset in subsets.items():
        for row in reference_recall(matches, reference, radii_px, subset).itertuples(index=False):
            interval = (row.recall, row.recall_err, row.recall_lo, row.recall_hi)
            rows.append((name, row.region, row.radius_px, *interval, row.n_injected, ""))
    primary = float(radii_px[0])
    for row in parameter_errors(matches[drawn], primary).itertuples(index=False):
        for what, value in (("bias", row.median_bias), ("scatter", row.scatter)):
            name = f"{what}_{row.parameter}"
            rows.append((name, "all", primary, value, np.nan, np.nan, np.nan, row.n, row.unit))
    table = pd.DataFrame(rows, columns=list(METRICS_COLUMNS))
    floats = {c: float for c in ("radius_px", "value", "uncertainty", "lower", "upper")}
    return table.astype(floats | {"n": np.int64})
