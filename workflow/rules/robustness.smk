"""The robustness matrix (docs/robustness.md): the network and the classical peer scored on
a validation galaxy observed with one factor changed at a time. The factors' galaxies are
built, detected and scored by the validation galaxies' rules (validation.smk, scorecard.smk)
under the names <base>-<factor>; this rule takes the differences."""


rule robustness:
    """Each factor's scores minus its base's, per method: the table and the figure."""
    input:
        scores=robustness_inputs("{method}.parquet"),
        matched=robustness_inputs("{method}_matched.parquet"),
    output:
        table="results/{galaxy}/robustness/robustness.parquet",
        figure=report(
            "results/{galaxy}/robustness/robustness.png",
            caption="../report/robustness.rst",
            category="Scorecard",
            subcategory="Robustness",
        ),
    log:
        "results/{galaxy}/logs/robustness.log",
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        factors={
            name: {key: entry[key] for key in ("base", "factor")}
            for name, entry in ROBUSTNESS.items()
        },
    script:
        "../scripts/robustness.py"
