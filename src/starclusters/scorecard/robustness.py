"""The robustness matrix (issue 16, docs/robustness.md): how much each method's catalog
changes when the observation departs from what training assumed, one factor at a time.

Each factor's galaxy is its base validation galaxy with one set of synthetic keys
changed and the same seed (:func:`starclusters.synthetic.validation.robustness_galaxies`),
so the same clusters sit on the same field wherever the factor leaves them. Both are
scored by the one scorer (:mod:`.score`); :func:`robustness_table` takes the differences:

* ``precision``, ``recall_visible`` (visibility > 2.5 in each galaxy's own truth), the
  median biases of log mass, log age and A_V of matched visible clusters, and the
  number of false candidates, factor minus base;
* ``recall_base_visible``: recall of the clusters visible *in the base*, matched by
  cluster id (a paired test: ``n_lost`` of them found in the base and missed with the
  factor, ``n_gained`` the reverse). Where the factor dims the clusters (shorter
  exposures, more distance) this one falls with the physics; ``recall_visible``
  follows each galaxy's own visibility and so isolates the method.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from starclusters.scorecard.score import MIN_VISIBILITY

#: (metric name, parameter) of the long score tables' median biases reported per factor.
BIAS_METRICS = {
    "bias_log_mass": "log_mass_msun",
    "bias_log_age": "log_age_yr",
    "bias_av": "av_mag",
}
#: Metrics of the table in the order of the figure's panels.
METRICS = (
    "precision",
    "recall_visible",
    "recall_base_visible",
    "n_false",
    *BIAS_METRICS,
)


def _summary(scores: pd.DataFrame, metric: str) -> float:
    rows = scores[(scores["table"] == "summary") & (scores["metric"] == metric)]
    return float(rows["value"].iloc[0]) if len(rows) else float("nan")


def _bias(scores: pd.DataFrame, parameter: str) -> float:
    rows = scores[
        (scores["table"] == "parameters")
        & (scores["metric"] == "median_bias")
        & (scores["parameter"] == parameter)
        & (scores["selection"] == "visible")
    ]
    return float(rows["value"].iloc[0]) if len(rows) else float("nan")


def galaxy_metrics(scores: pd.DataFrame) -> dict[str, float]:
    """The table's per-galaxy metrics of one method's long score table."""
    out = {
        "precision": _summary(scores, "precision"),
        "recall_visible": _summary(scores, "recall_visible"),
        "n_false": _summary(scores, "n_catalog") - _summary(scores, "n_matched"),
    }
    out.update({name: _bias(scores, p) for name, p in BIAS_METRICS.items()})
    return out


def paired_recall(base_matched: pd.DataFrame, factor_matched: pd.DataFrame) -> dict[str, float]:
    """Recall of the base's visible clusters in the base and with the factor, by cluster id:
    {recall_base, recall_factor, n, n_lost, n_gained}."""
    visible = base_matched.loc[base_matched["visibility"] > MIN_VISIBILITY]
    found_base = visible.set_index("cluster_id")["detected"].astype(bool)
    found = factor_matched.set_index("cluster_id")["detected"].astype(bool)
    found_factor = found.reindex(found_base.index, fill_value=False)
    n = len(found_base)
    return {
        "recall_base": float(found_base.mean()) if n else float("nan"),
        "recall_factor": float(found_factor.mean()) if n else float("nan"),
        "n": n,
        "n_lost": int((found_base & ~found_factor).sum()),
        "n_gained": int((~found_base & found_factor).sum()),
    }


def robustness_table(
    scores: Mapping[tuple[str, str], pd.DataFrame],
    matched: Mapping[tuple[str, str], pd.DataFrame],
    factors: Mapping[str, Mapping],
) -> pd.DataFrame:
    """One row per factor × method × metric: base, value (with the factor), delta.

    scores, matched: (galaxy name, method) -> long score table / matched truth of
    :mod:`.score`, for every base and factor galaxy; factors: galaxy name ->
    {"base", "factor", "synthetic"} (:func:`robustness_galaxies`). Paired rows carry
    n (the base's visible clusters), n_lost and n_gained.
    """
    rows = []
    methods = sorted({method for _, method in scores})
    for name, entry in factors.items():
        base = entry["base"]
        for method in methods:
            if (name, method) not in scores or (base, method) not in scores:
                continue
            before = galaxy_metrics(scores[base, method])
            after = galaxy_metrics(scores[name, method])
            common = {"factor": entry["factor"], "galaxy": name, "base": base, "method": method}
            for metric in before:
                rows.append(
                    common
                    | {
                        "metric": metric,
                        "base_value": before[metric],
                        "value": after[metric],
                        "delta": after[metric] - before[metric],
                    }
                )
            paired = paired_recall(matched[base, method], matched[name, method])
            rows.append(
                common
                | {
                    "metric": "recall_base_visible",
                    "base_value": paired["recall_base"],
                    "value": paired["recall_factor"],
                    "delta": paired["recall_factor"] - paired["recall_base"],
                    "n": paired["n"],
                    "n_lost": paired["n_lost"],
                    "n_gained": paired["n_gained"],
                }
            )
    table = pd.DataFrame(rows)
    for column in ("n", "n_lost", "n_gained"):
        if column not in table:
            table[column] = np.nan
        table[column] = table[column].astype("Int64")
    return table


def largest_sensitivities(table: pd.DataFrame, method: str = "cnn", k: int = 2) -> pd.DataFrame:
    """The ``k`` factors that cost ``method`` the most recall of the clusters visible in
    each factor's own galaxy (``recall_visible``; the paired recall is in the table)."""
    rows = table[(table["method"] == method) & (table["metric"] == "recall_visible")]
    return rows.nsmallest(k, "delta")[["factor", "base_value", "value", "delta"]]


def plot_robustness(table: pd.DataFrame, path) -> None:
    """Δ of each metric per factor (rows), the network and the classical peer side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from starclusters.io import atomic_path

    factors = list(dict.fromkeys(table["factor"]))
    methods = list(dict.fromkeys(table["method"]))
    fig, axes = plt.subplots(
        1, len(METRICS), figsize=(2.3 * len(METRICS), 0.45 * len(factors) + 1.8), sharey=True
    )
    y = np.arange(len(factors))
    palette = ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple"]
    colours = {m: palette[k % len(palette)] for k, m in enumerate(methods)}
    for ax, metric in zip(np.atleast_1d(axes), METRICS, strict=True):
        for k, method in enumerate(methods):
            rows = table[(table["metric"] == metric) & (table["method"] == method)]
            delta = rows.set_index("factor")["delta"].reindex(factors)
            offset = (k - (len(methods) - 1) / 2) * 0.25
            ax.barh(y + offset, delta, height=0.25, color=colours[method], label=method)
        ax.axvline(0, color="k", lw=0.8)
        ax.set_title(f"Δ {metric}", fontsize=9)
        ax.tick_params(labelsize=8)
    ax0 = np.atleast_1d(axes)[0]
    ax0.set_yticks(y, factors)
    ax0.invert_yaxis()
    ax0.legend(fontsize=7, loc="lower left")
    fig.suptitle(
        f"One factor at a time on {table['base'].iloc[0]}: factor − base "
        "(recall, precision; bias in dex or mag; n_false count)",
        fontsize=9,
    )
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
