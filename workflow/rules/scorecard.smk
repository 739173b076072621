"""The scorecard (docs/scorecard.md): every method's catalog (the network's candidates, the
classical peer's) against the truth of the training galaxy and of each validation galaxy,
with the one scorer (starclusters.scorecard); side by side in tables and figures. Then the
network's diagnosis (docs/detection.md): why each truth cluster was missed, what each
false candidate is."""


rule score_catalog:
    """One method's catalog of one galaxy against its truth: the long table of metrics and
    the matched truth."""
    input:
        unpack(score_inputs),
    output:
        scores="results/{galaxy}/scorecard/{field}/{method}.parquet",
        matched="results/{galaxy}/scorecard/{field}/{method}_matched.parquet",
    log:
        "results/{galaxy}/logs/score_catalog_{field}_{method}.log",
    wildcard_constraints:
        field="|".join(["training", *SYNTHETIC_FIELDS]),
        method="|".join(SCORE_METHODS),
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        scorecard=score_settings(),
        role=lambda w: "training" if w.field == "training" else "validation",
        galaxy=lambda w: w.galaxy if w.field == "training" else w.field,
    script:
        "../scripts/score_catalog.py"


rule scorecard:
    """All galaxies × methods in one table, the validation mean ± spread, and the figures."""
    input:
        expand(
            "results/{{galaxy}}/scorecard/{field}/{method}.parquet",
            field=score_fields(),
            method=score_methods(),
        ),
    output:
        table="results/{galaxy}/scorecard/scorecard.parquet",
        summary="results/{galaxy}/scorecard/summary.parquet",
        recall_visibility=report(
            "results/{galaxy}/scorecard/recall_visibility.png",
            caption="../report/scorecard_recall_visibility.rst",
            category="Scorecard",
        ),
        parameters=report(
            "results/{galaxy}/scorecard/parameters.png",
            caption="../report/scorecard_parameters.rst",
            category="Scorecard",
        ),
        age_mass=report(
            "results/{galaxy}/scorecard/age_mass_recall.png",
            caption="../report/scorecard_age_mass.rst",
            category="Scorecard",
        ),
        summary_figure=report(
            "results/{galaxy}/scorecard/summary.png",
            caption="../report/scorecard_summary.rst",
            category="Scorecard",
        ),
    log:
        "results/{galaxy}/logs/scorecard.log",
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    script:
        "../scripts/scorecard.py"


rule diagnose_catalog:
    """Why the network missed each truth cluster of one galaxy and what each of its false
    candidates is (starclusters.scorecard.diagnose). The network only: the classical peer
    has no peaks or class map to diagnose."""
    input:
        unpack(diagnosis_inputs),
    output:
        diagnosis="results/{galaxy}/scorecard/{field}/cnn_diagnosis.parquet",
        false="results/{galaxy}/scorecard/{field}/cnn_false.parquet",
    log:
        "results/{galaxy}/logs/diagnose_catalog_{field}.log",
    wildcard_constraints:
        field="|".join(["training", *SYNTHETIC_FIELDS]),
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        scorecard=diagnosis_settings(),
        detect=catalog_settings(
            "class_threshold", "visibility_threshold", "derived_thresholds"
        ),
        bands=BANDS,
        role=lambda w: "training" if w.field == "training" else "validation",
        galaxy=lambda w: w.galaxy if w.field == "training" else w.field,
    script:
        "../scripts/diagnose_catalog.py"


rule diagnosis:
    """The network's misses and false candidates on every scored galaxy: counts per galaxy
    and the figure."""
    input:
        diagnosis=expand(
            "results/{{galaxy}}/scorecard/{field}/cnn_diagnosis.parquet",
            field=score_fields(),
        ),
        false=expand(
            "results/{{galaxy}}/scorecard/{field}/cnn_false.parquet",
            field=score_fields(),
        ),
    output:
        table="results/{galaxy}/scorecard/diagnosis.parquet",
        figure=report(
            "results/{galaxy}/scorecard/diagnosis.png",
            caption="../report/scorecard_diagnosis.rst",
            category="Scorecard",
        ),
    log:
        "results/{galaxy}/logs/diagnosis.log",
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    script:
        "../scripts/diagnosis.py"
