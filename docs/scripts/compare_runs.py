"""Compare finished runs of the workflow: the numbers docs/detection.md's arms are judged by.

Each ARM is ``label=DIR[,DIR...]``: the results directories (``results/<galaxy>``) of one
recipe, one per training (e.g. ``train.seed_offset`` 0, 1, 2). Per arm it prints the
validation galaxies' scores (docs/scorecard.md) as the mean over the arm's runs ± their
standard deviation (the spread between trainings; with one run, the spread over the
galaxies), and per run the numbers behind them::

    .venv/bin/python docs/scripts/compare_runs.py \\
        default=results/synthetic_m83,/tmp/a1/results/synthetic_m83 \\
        star_groups=/tmp/s0/results/synthetic_m83,/tmp/s1/results/synthetic_m83

Scores: precision and recall of clusters with true visibility > 2.5 (the mean over the
galaxies, as `scorecard/summary.parquet`); recall at true visibility 2.5–5 and > 5 pooled
over the galaxies; the median biases and 95 % bounds of log age, log mass and A_V of the
matched visible clusters; the A_V bias of the maps' own estimate (``map_av_mag``, before
the population prior) and after the prior, per galaxy; the artificial test's recall over
its grid draw, at the reference node, and of the node's mocks with visibility > 5. Reads
only; seconds.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

#: The columns printed, in order: (key, header, decimals).
COLUMNS = (
    ("precision", "precision", 2),
    ("recall_visible", "recall vis>2.5", 2),
    ("recall_2.5_5", "vis 2.5-5", 2),
    ("recall_gt_5", "vis>5", 2),
    ("bias_log_age_yr", "age bias", 2),
    ("bias_log_mass_msun", "mass bias", 2),
    ("bias_av_mag", "A_V bias", 2),
    ("map_bias_av_mag", "A_V bias (maps)", 2),
    ("bound95_log_age_yr", "age 95%", 2),
    ("bound95_log_mass_msun", "mass 95%", 2),
    ("bound95_av_mag", "A_V 95%", 2),
    ("training_precision", "train prec", 2),
    ("training_recall_visible", "train rec", 2),
    ("artificial_recall", "artificial", 3),
    ("node_recall", "node", 3),
    ("node_recall_visible", "node vis>5", 3),
)
PARAMETERS = ("log_age_yr", "log_mass_msun", "av_mag")


def scores(results: Path) -> dict[str, float]:
    """The scores of one results directory (validation galaxies unless named training)."""
    summary = pd.read_parquet(results / "scorecard" / "summary.parquet")
    summary = summary[summary["method"] == "cnn"]

    def value(metric, role="validation", parameter=""):
        rows = summary[
            (summary["metric"] == metric)
            & (summary["role"] == role)
            & (summary["parameter"] == parameter)
        ]
        rows = rows[rows["table"] == "summary"] if not parameter else rows
        rows = rows[rows["selection"] == "visible"] if parameter else rows
        return float(rows["mean"].iloc[0])

    out = {
        "precision": value("precision"),
        "recall_visible": value("recall_visible"),
        "training_precision": value("precision", "training"),
        "training_recall_visible": value("recall_visible", "training"),
    }
    for parameter in PARAMETERS:
        out[f"bias_{parameter}"] = value("median_bias", parameter=parameter)
        out[f"bound95_{parameter}"] = value("bound95_abs", parameter=parameter)
    card = pd.read_parquet(results / "scorecard" / "scorecard.parquet")
    bins = card[
        (card["method"] == "cnn")
        & (card["role"] == "validation")
        & (card["table"] == "recall_visibility")
    ]
    for key, lo, hi in (("recall_2.5_5", 2.5, 5.0), ("recall_gt_5", 5.0, np.inf)):
        chosen = bins[(bins["bin_lo"] >= lo - 1e-9) & (bins["bin_hi"] <= hi + 1e-9)]
        out[key] = chosen["n_detected"].sum() / max(chosen["n"].sum(), 1)
    out["map_bias_av_mag"], out["map_bias_av_mag_per_galaxy"] = map_av_bias(results, card)
    artificial = results / "artificial" / "metrics.parquet"
    if artificial.exists():
        metrics = pd.read_parquet(artificial)
        for key, metric in (
            ("artificial_recall", "recall"),
            ("node_recall", "reference_recall"),
            ("node_recall_visible", "reference_recall_visible"),
        ):
            rows = metrics[
                (metrics["metric"] == metric)
                & (metrics["region"] == "all")
                & (metrics["radius_px"] == 3.0)
            ]
            out[key] = float(rows["value"].iloc[0]) if len(rows) else np.nan
    return out


def map_av_bias(results: Path, card: pd.DataFrame) -> tuple[float, list[float]]:
    """(mean over the validation galaxies, per galaxy) of the median map_av_mag − true A_V of
    the matched visible clusters: the network's own A_V before the population prior."""
    galaxies = sorted(card.loc[card["role"] == "validation", "galaxy"].unique())
    per_galaxy = []
    for galaxy in galaxies:
        matched = pd.read_parquet(results / "scorecard" / galaxy / "cnn_matched.parquet")
        candidates = pd.read_parquet(
            results / "validation" / galaxy / "detect" / "candidates.parquet"
        )
        if "map_av_mag" not in candidates:
            return np.nan, []
        matched = matched[matched["detected"] & (matched["visibility"] > 2.5)]
        rows = candidates.iloc[matched["catalog_row"].astype(int).to_numpy()]
        per_galaxy.append(float(np.median(rows["map_av_mag"].to_numpy() - matched["av_mag"])))
    return float(np.mean(per_galaxy)) if per_galaxy else np.nan, per_galaxy


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("arms", nargs="+", metavar="LABEL=DIR[,DIR...]")
    args = parser.parse_args()
    rows = []
    for arm in args.arms:
        label, _, dirs = arm.partition("=")
        if not dirs:
            parser.error(f"{arm}: expected LABEL=DIR[,DIR...]")
        for k, directory in enumerate(dirs.split(",")):
            rows.append({"arm": label, "run": k, **scores(Path(directory))})
    table = pd.DataFrame(rows)
    keys = [key for key, *_ in COLUMNS]
    headers = {key: header for key, header, _ in COLUMNS}
    decimals = {key: d for key, _, d in COLUMNS}
    pd.set_option("display.width", 250)
    print("per run:")
    shown = table[["arm", "run", *keys]].round(decimals).rename(columns=headers)
    print(shown.to_string(index=False))
    print("\nper arm, mean ± standard deviation over its runs:")
    for label, group in table.groupby("arm", sort=False):
        parts = []
        for key in keys:
            mean, std = group[key].mean(), group[key].std(ddof=1)
            d = decimals[key]
            parts.append(
                f"{headers[key]} {mean:.{d}f}" + (f" ± {std:.{d}f}" if len(group) > 1 else "")
            )
        print(f"{label} ({len(group)} runs): " + "; ".join(parts))
    print("\nA_V bias of the maps per validation galaxy:")
    for _, row in table.iterrows():
        print(row["arm"], row["run"], np.round(row["map_bias_av_mag_per_galaxy"], 2).tolist())


if __name__ == "__main__":
    main()
