"""The candidate catalog against the synthetic galaxy's truth: one figure.

Panels: recall per bin of true visibility and precision per bin of derived visibility;
class vs visibility of every peak with the truth-matched ones highlighted and the
thresholds (as thesis Fig. 4.2); derived vs true age, mass, A_V, r_h, visibility and
galactocentric distance of the detected clusters, with the median bias and the 95 %
bound of the absolute error.
"""

from __future__ import annotations

import os

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from starclusters.detect.matching import COMPARED, precision_recall
from starclusters.plotting import save_figure

_LABELS = {
    "log_age_yr": r"log$_{10}$(t / yr)",
    "log_mass_msun": r"log$_{10}$(M / M$_\odot$)",
    "av_mag": r"$A_V$ (mag)",
    "log_rh_arcsec": r"log$_{10}$($r_h$ / arcsec)",
    "log_visibility": r"log$_{10}$ visibility",
    "galactocentric_radius_kpc": "galactocentric distance (kpc)",
}


#: Visibility axis of the class–visibility panel (the network's grid: 0.1–1000).
VISIBILITY_RANGE = (0.1, 1000.0)


def visibility_bins(values, per_decade: int = 3) -> np.ndarray:
    """Log-spaced bin edges covering the positive ``values`` (at least one decade)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v) & (v > 0)]
    lo = np.floor(np.log10(v.min()) * per_decade) / per_decade if v.size else -1.0
    hi = np.ceil(np.log10(v.max()) * per_decade) / per_decade if v.size else 3.0
    hi = max(hi, lo + 1.0)
    return 10.0 ** np.arange(lo, hi + 0.5 / per_decade, 1.0 / per_decade)


def plot_truth_match(
    matched: pd.DataFrame,
    candidates: pd.DataFrame,
    peaks: pd.DataFrame,
    summary: dict,
    thresholds: tuple[float, float],
    path: str | os.PathLike,
) -> None:
    """Write the truth-match figure.

    matched: :func:`~starclusters.detect.matching.match_truth`'s table; candidates,
    peaks: the catalogs; summary: :func:`~starclusters.detect.matching.match_summary`;
    thresholds: (class, visibility) of the candidate selection.
    """
    detected = matched["detected"].to_numpy(bool)
    matched_ids = set(matched.loc[detected, "candidate_id"].astype(int))
    cand_matched = candidates["peak_id"].astype(int).isin(matched_ids).to_numpy()
    edges = visibility_bins(
        np.concatenate([matched["visibility"].to_numpy(float), candidates["visibility"]])
    )
    table = precision_recall(
        matched["visibility"], detected, candidates["visibility"], cand_matched, edges
    )
    fig, axes = plt.subplots(2, 4, figsize=(17, 8.5))
    ax = axes[0, 0]
    centres = np.sqrt(table["lo"] * table["hi"])
    ax.plot(centres, table["recall"], "o-", c="tab:blue", label="recall (true visibility)")
    ax.plot(centres, table["precision"], "s-", c="tab:red", label="precision (derived visibility)")
    for x, r, n_t in zip(centres, table["recall"], table["n_truth"], strict=True):
        if n_t:
            ax.annotate(
                str(n_t),
                (x, r),
                fontsize=6,
                color="tab:blue",
                xytext=(2, 3),
                textcoords="offset points",
            )
    ax.axvline(thresholds[1], color="0.5", ls="--", lw=0.8)
    ax.set(xscale="log", xlim=(edges[0], edges[-1]), ylim=(-0.03, 1.05))
    ax.set(xlabel="visibility", ylabel="fraction")
    ax.set_title(
        f"recall {summary['recall']:.2f} ({summary['n_detected']}/{summary['n_truth']}), "
        f"precision {summary['precision']:.2f} ({summary['n_candidates']} cand.)",
        fontsize=9,
    )
    ax.legend(fontsize=7, loc="lower right")

    ax = axes[0, 1]
    on_truth = peaks["peak_id"].astype(int).isin(set(matched["peak_id"][matched["peak_id"] >= 0]))
    vis = np.clip(peaks["visibility"].to_numpy(float), *VISIBILITY_RANGE)
    ax.scatter(vis[~on_truth], peaks["class"][~on_truth], s=2, c="0.6", label="other peaks")
    ax.scatter(vis[on_truth], peaks["class"][on_truth], s=8, c="tab:blue", label="true clusters")
    ax.axhline(thresholds[0], color="tab:red", ls="--", lw=0.8)
    ax.axvline(thresholds[1], color="tab:red", ls="--", lw=0.8)
    ax.set(xscale="log", xlim=VISIBILITY_RANGE, ylim=(-0.03, 1.03))
    ax.set(xlabel="derived visibility (clipped to the axis)", ylabel="derived class")
    ax.set_title(f"{len(peaks)} peaks (thesis Fig. 4.2)", fontsize=9)
    ax.legend(fontsize=7, loc="lower right")

    on_peak = ~detected & (matched["peak_id"].to_numpy(int) >= 0)
    for ax, (true_col, derived_col) in zip(axes.flat[2:], COMPARED.items(), strict=False):
        true_all = matched[true_col].to_numpy(float)
        derived_all = matched[f"derived_{derived_col}"].to_numpy(float)
        finite = np.isfinite(true_all) & np.isfinite(derived_all)
        for rows, colour, label in (
            (on_peak, "0.65", "on a peak below the thresholds"),
            (detected, "tab:blue", "detected (a candidate)"),
        ):
            ax.scatter(
                true_all[rows & finite], derived_all[rows & finite], s=10, c=colour, label=label
            )
        shown = (on_peak | detected) & finite
        if shown.any():
            lo = float(min(true_all[shown].min(), derived_all[shown].min()))
            hi = float(max(true_all[shown].max(), derived_all[shown].max()))
            pad = 0.05 * (hi - lo) + 1e-3
            line = np.array([lo - pad, hi + pad])
            ax.plot(line, line, "k-", lw=0.8)
            ax.set(xlim=tuple(line), ylim=tuple(line))
        err = summary["errors"].get(true_col, {})
        bound = err.get("bound95_abs", np.nan)
        if shown.any() and np.isfinite(bound):
            for sign in (-1, 1):
                ax.plot(line, line + sign * bound, "k--", lw=0.8)
        if err.get("n", 0):
            title = (
                f"{err['n']} detected: bias {err['median_bias']:+.2f}, "
                f"95 % within ±{bound:.2f} {err['unit']}"
            )
        else:
            title = "no detected cluster (grey: on a peak below the thresholds)"
        ax.set_title(title, fontsize=9)
        ax.set(xlabel=f"true {_LABELS[true_col]}", ylabel=f"derived {_LABELS[true_col]}")
    axes.flat[2].legend(fontsize=7, loc="upper left")
    for ax in axes.flat[2 + len(COMPARED) :]:
        ax.axis("off")
    fig.suptitle(
        f"Candidates (class > {thresholds[0]:g}, visibility > {thresholds[1]:g}) against the "
        "synthetic galaxy's clusters, matched one-to-one within "
        f"{summary.get('max_px', 3):g} px",
        fontsize=11,
    )
    fig.tight_layout(rect=(0, 0, 1, 0.96))
    save_figure(fig, path)
