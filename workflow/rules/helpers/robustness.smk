"""The robustness matrix (robustness.smk): its score files and outputs.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""


def robustness_inputs(name):
    """The score files ``name`` (e.g. '{method}.parquet') of every base and factor galaxy
    for every scored method, in one order for scores and matched truths."""
    bases = list(dict.fromkeys(entry["base"] for entry in ROBUSTNESS.values()))
    return expand(
        f"results/{{{{galaxy}}}}/scorecard/{{field}}/{name}",
        field=bases + list(ROBUSTNESS),
        method=score_methods(),
    )


def robustness_outputs():
    """The robustness table and figure (none without factors or without a scored method)."""
    if not ROBUSTNESS or not score_methods():
        return []
    return expand(
        "results/{galaxy}/robustness/{name}",
        galaxy=GALAXY,
        name=["robustness.parquet", "robustness.png"],
    )
