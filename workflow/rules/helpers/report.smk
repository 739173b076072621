"""Population analysis (report.smk): settings, inputs, outputs.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""

ANALYSIS = config["analysis"]


def analysis_settings(*keys):
    """The named keys of the config's `analysis` section (each analysis rule gets only its own)."""
    return section_settings("analysis", *keys)


def analysis_artificial_inputs():
    """The recovered artificial clusters, when the workflow has the artificial-cluster stage."""
    outputs = globals().get("artificial_outputs")
    path = f"results/{GALAXY}/artificial/matches.parquet"
    return {"artificial": path} if outputs is not None and path in outputs() else {}


def population_log_mass_range():
    """[min, max] log10(M/M☉) of the population fits and the hard cut: the network's range."""
    return [
        config["mocks"]["log_mass_msun"]["min"],
        config["mocks"]["log_mass_msun"]["max"],
    ]


def population_log_age_range():
    """[min, max] log10(t/yr) of the population fits and the hard cut: the isochrone grid's."""
    grid = PHOT["isochrones"]["log_age_yr"]
    return [grid["min"], grid["max"]]


def population_figure_inputs(wildcards):
    """population_figures' inputs: the candidates, and for a completeness limit derived from
    the selection function (analysis.mass_function.completeness_log_mass_msun: selection)
    that function and the band the injections' local background was measured in."""
    inputs = {"candidates": f"results/{wildcards.galaxy}/detect/candidates.parquet"}
    if ANALYSIS["mass_function"]["completeness_log_mass_msun"] == "selection":
        inputs["selection"] = f"results/{wildcards.galaxy}/artificial/selection.parquet"
        inputs["image"] = f"results/{wildcards.galaxy}/mosaic/{BANDS[-1]}.fits"
    return inputs


def arm_profile_inputs(wildcards):
    """arm_profiles' inputs: candidates, arms, and the truth and artificial clusters if any."""
    inputs = {"candidates": f"results/{wildcards.galaxy}/detect/candidates.parquet"}
    inputs |= arm_inputs(wildcards) | analysis_artificial_inputs()
    if MOSAIC["source"] == "synthetic":
        inputs["truth"] = f"results/{wildcards.galaxy}/mosaic/truth.parquet"
    return inputs


def comparison_inputs(wildcards):
    """catalog_comparison's inputs: the candidates and the catalog (or the synthetic truth)."""
    inputs = {"candidates": f"results/{wildcards.galaxy}/detect/candidates.parquet"}
    if ANALYSIS["comparison"]["source"] == "truth":
        inputs["truth"] = f"results/{wildcards.galaxy}/mosaic/truth.parquet"
    else:
        inputs["catalog"] = ANALYSIS["comparison"]["path"]
    return inputs


def metrics_inputs(wildcards):
    """analysis_metrics' inputs: the fits, the arm peaks, the comparison, the truth."""
    out = f"results/{wildcards.galaxy}/analysis"
    inputs = {
        "mass_function": f"{out}/mass_function.parquet",
        "arm_peaks": f"{out}/arm_peaks.parquet",
        "candidates": f"results/{wildcards.galaxy}/detect/candidates.parquet",
    }
    if ANALYSIS["comparison"]["source"] != "none":
        inputs["comparison"] = f"{out}/comparison_summary.parquet"
    if MOSAIC["source"] == "synthetic":
        inputs["truth"] = f"results/{wildcards.galaxy}/mosaic/truth.parquet"
        inputs["arms"] = f"results/{wildcards.galaxy}/mosaic/arms.parquet"
    inputs["population_fits"] = [
        f"{out}/population_fit/{field}.parquet" for field in population_fit_fields()
    ]
    return inputs


def population_fit_fields():
    """The galaxies whose populations are fitted with the selection function: the training
    galaxy and every validation galaxy; none without the artificial-cluster test."""
    if not detect_outputs():
        return []
    return ["training", *VALIDATION]


def population_fit_inputs(wildcards):
    """population_fit's inputs: a galaxy's candidates and the band the local background is
    measured in, the training galaxy's selection function and artificial metrics, and for a
    scored galaxy its matched truth."""
    root = field_dir(wildcards.galaxy, wildcards.field)
    art = f"results/{wildcards.galaxy}/artificial"
    inputs = {
        "candidates": f"{root}/detect/candidates.parquet",
        "image": f"{root}/mosaic/{BANDS[-1]}.fits",
        "selection": f"{art}/selection.parquet",
        "artificial_metrics": f"{art}/metrics.parquet",
    }
    if (
        wildcards.field in score_fields()
    ):  # a galaxy with a truth: the selection checked on it
        inputs["truth_matched"] = (
            f"results/{wildcards.galaxy}/scorecard/{wildcards.field}/cnn_matched.parquet"
        )
    return inputs


def field_injected_population(field):
    """The population a synthetic galaxy injected (slope, M*, age index); {} for real data."""
    from starclusters.synthetic.spec import SyntheticGalaxySpec

    if field == "training" and MOSAIC["source"] != "synthetic":
        return {}
    section = (
        MOSAIC["synthetic"]
        if field == "training"
        else SYNTHETIC_FIELDS[field]["synthetic"]
    )
    spec = SyntheticGalaxySpec.from_config(section)
    return {
        "mass_function_slope": spec.mass_function_slope,
        "schechter_mass_msun": spec.schechter_mass_msun,
        "age_distribution_index": spec.age_distribution_index,
    }


def analysis_outputs():
    """Figures and tables of the population analysis. None without candidates (the
    regression network makes no value maps)."""
    if not candidate_outputs():
        return []
    names = ["parameters.png", "histograms.png", "radial.png", "arm_distance.png"]
    names += ["maps.png", "mass_function.parquet", "arm_profiles.parquet"]
    names += ["arm_peaks.parquet", "metrics.parquet"]
    if ANALYSIS["comparison"]["source"] != "none":
        names += ["comparison.parquet", "comparison_summary.parquet", "comparison.png"]
    for field in population_fit_fields():
        names += [f"population_fit/{field}.parquet", f"population_fit/{field}.png"]
    return expand("results/{galaxy}/analysis/{name}", galaxy=GALAXY, name=names)
