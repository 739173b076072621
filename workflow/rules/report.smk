"""Population analysis of the candidates (thesis §4.3, Figs. 4.5–4.9), their comparison with
a catalog (§3.3, Figs. 3.15/3.17) and one table of measured (and, for the synthetic galaxy,
injected) numbers; every figure goes into `snakemake --report`."""


rule population_figures:
    """Parameter pairs coloured by age (Fig. 4.5), mass/size/density histograms with the
    mass-function fits (Fig. 4.6) and parameters against galactocentric distance (Fig. 4.8).
    """
    input:
        unpack(population_figure_inputs),
    output:
        pairs=report(
            "results/{galaxy}/analysis/parameters.png",
            caption="../report/analysis_parameters.rst",
            category="Analysis",
        ),
        histograms=report(
            "results/{galaxy}/analysis/histograms.png",
            caption="../report/analysis_histograms.rst",
            category="Analysis",
        ),
        radial=report(
            "results/{galaxy}/analysis/radial.png",
            caption="../report/analysis_radial.rst",
            category="Analysis",
        ),
        fits="results/{galaxy}/analysis/mass_function.parquet",
    log:
        "results/{galaxy}/logs/population_figures.log",
    benchmark:
        "results/{galaxy}/benchmarks/population_figures.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        analysis=analysis_settings(
            "age_groups_log_yr",
            "young_max_log_age_yr",
            "old_min_log_age_yr",
            "mass_function",
            "radial",
        ),
        log_mass_range_msun=population_log_mass_range(),
        log_age_range_yr=population_log_age_range(),
        background_annulus_px=config["scorecard"]["background_annulus_px"],
    script:
        "../scripts/analysis_population.py"


rule arm_profiles:
    """Counts against signed distance from the dust lanes per age group with Poisson bands
    (Fig. 4.7a), for the candidates, the synthetic truth and the recovered artificial
    clusters; the count peak of each group with a bootstrap error."""
    input:
        unpack(arm_profile_inputs),
    output:
        figure=report(
            "results/{galaxy}/analysis/arm_distance.png",
            caption="../report/analysis_arm_distance.rst",
            category="Analysis",
        ),
        profiles="results/{galaxy}/analysis/arm_profiles.parquet",
        peaks="results/{galaxy}/analysis/arm_peaks.parquet",
    log:
        "results/{galaxy}/logs/arm_profiles.log",
    benchmark:
        "results/{galaxy}/benchmarks/arm_profiles.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        analysis=analysis_settings("age_groups_log_yr", "arm_distance", "bootstrap"),
        arms=arms_config(),
        geometry=config["galaxy_geometry"],
        distance_mpc=PHOT["distance_mpc"],
        seed=config["seed"],
    script:
        "../scripts/analysis_arms.py"


rule spatial_maps:
    """The candidates over the mosaic coloured by distance from the lanes, age, A_V and
    density (Fig. 4.9)."""
    input:
        unpack(arm_inputs),
        candidates="results/{galaxy}/detect/candidates.parquet",
        band=f"results/{{galaxy}}/mosaic/{BANDS[len(BANDS) // 2]}.fits",
    output:
        report(
            "results/{galaxy}/analysis/maps.png",
            caption="../report/analysis_maps.rst",
            category="Analysis",
        ),
    log:
        "results/{galaxy}/logs/spatial_maps.log",
    benchmark:
        "results/{galaxy}/benchmarks/spatial_maps.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        analysis=analysis_settings("map_max_px", "map_min_log_mass_msun"),
        arms=arms_config(),
        geometry=config["galaxy_geometry"],
        distance_mpc=PHOT["distance_mpc"],
        band=BANDS[len(BANDS) // 2],
    script:
        "../scripts/analysis_maps.py"


if ANALYSIS["comparison"]["source"] != "none":

    rule catalog_comparison:
        """Candidates matched to a catalog (analysis.comparison): derived against catalog
        age, mass, A_V and size (Figs. 3.15/3.17)."""
        input:
            unpack(comparison_inputs),
        output:
            table="results/{galaxy}/analysis/comparison.parquet",
            summary="results/{galaxy}/analysis/comparison_summary.parquet",
            figure=report(
                "results/{galaxy}/analysis/comparison.png",
                caption="../report/analysis_comparison.rst",
                category="Analysis",
            ),
        log:
            "results/{galaxy}/logs/catalog_comparison.log",
        benchmark:
            "results/{galaxy}/benchmarks/catalog_comparison.tsv"
        conda:
            "../../envs/science.yaml"
        resources:
            mem_mb=job_mem_mb(),
            runtime=job_runtime(),
        params:
            comparison=ANALYSIS["comparison"],
            distance_mpc=PHOT["distance_mpc"],
        script:
            "../scripts/analysis_comparison.py"


rule population_fit:
    """The mass function and age distribution of one galaxy's candidates fitted by maximum
    likelihood with the artificial test's selection function in the likelihood (each
    candidate's detection probability at its own A_V, r_h and local background), instead of
    a hand-set mass cut."""
    input:
        unpack(population_fit_inputs),
    output:
        table="results/{galaxy}/analysis/population_fit/{field}.parquet",
        figure=report(
            "results/{galaxy}/analysis/population_fit/{field}.png",
            caption="../report/analysis_population_fit.rst",
            category="Analysis",
            subcategory="Population fits",
            labels={"galaxy": "{field}"},
        ),
    log:
        "results/{galaxy}/logs/population_fit_{field}.log",
    benchmark:
        "results/{galaxy}/benchmarks/population_fit_{field}.tsv"
    wildcard_constraints:
        field="|".join(["training", *VALIDATION]),
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(extra_mb=500.0),
        runtime=job_runtime(work_s=60.0),
    params:
        # of mass_function only the fixed slope: its mass cut is what this fit replaces
        analysis={
            "population_fit": ANALYSIS["population_fit"],
            "mass_function": {"slope": ANALYSIS["mass_function"]["slope"]},
        },
        log_mass_range_msun=population_log_mass_range(),
        log_age_range_yr=population_log_age_range(),
        background_annulus_px=config["scorecard"]["background_annulus_px"],
        radius_px=ARTIFICIAL["match_radii_px"][0],
        injected=lambda w: field_injected_population(w.field),
    script:
        "../scripts/population_fit.py"


rule analysis_metrics:
    """Mass-function slope and M*, count peaks across the arms and the catalog comparison in
    one table; for the synthetic galaxy with the same measured on its truth and the values
    it injected."""
    input:
        unpack(metrics_inputs),
    output:
        "results/{galaxy}/analysis/metrics.parquet",
    log:
        "results/{galaxy}/logs/analysis_metrics.log",
    benchmark:
        "results/{galaxy}/benchmarks/analysis_metrics.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        analysis=analysis_settings("age_groups_log_yr", "mass_function", "arm_distance"),
        log_mass_hi_msun=config["mocks"]["log_mass_msun"]["max"],
        log_age_grid_yr=PHOT["isochrones"]["log_age_yr"],
        seed=config["seed"],
    script:
        "../scripts/analysis_metrics.py"
