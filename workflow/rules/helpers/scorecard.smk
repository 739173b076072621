"""The scorecard (scorecard.smk): scored methods, inputs, settings, outputs.

Included by common.smk before any rule, so that rules and the target `all` can call
these at parse time (and Snakemake's lint wants functions apart from rules)."""

#: Methods the scorecard compares: the network's candidates and the classical peer's
#: catalogs with its two SED fits (baseline.smk).
SCORE_METHODS = ("cnn",) + tuple(f"classical_{fit}" for fit in BASELINE_FITS)


def score_methods():
    """The scored methods; the network's only when it detects (not the regression network)."""
    return [m for m in SCORE_METHODS if m != "cnn" or detect_outputs()]


def field_reference_band(field):
    """The band of the truth's own grid (SyntheticGalaxySpec.reference_band) of a scored galaxy."""
    from starclusters.synthetic.spec import SyntheticGalaxySpec

    section = (
        MOSAIC["synthetic"]
        if field == "training"
        else SYNTHETIC_FIELDS[field]["synthetic"]
    )
    return SyntheticGalaxySpec.from_config(section).reference_band


def method_benchmarks(wildcards):
    """Benchmark files of the jobs that made a method's catalog from the mosaic."""
    from starclusters.io import read_table

    galaxy, field, method = wildcards.galaxy, wildcards.field, wildcards.method
    bench = f"results/{galaxy}/benchmarks"
    if method == "cnn" and field == "training":
        plan = checkpoints.detect_plan.get(galaxy=galaxy).output.plan
        tiles = [f"{bench}/detect_tile_{t}.tsv" for t in read_table(plan)["t"]]
        return tiles + [f"{bench}/merge_maps.tsv", f"{bench}/find_peaks.tsv"]
    if method == "cnn":
        return [
            f"{bench}/validation_maps_{field}.tsv",
            f"{bench}/validation_peaks_{field}.tsv",
        ]
    fit = method.removeprefix("classical_")
    if field == "training":
        return [
            f"{bench}/baseline_photometry.tsv",
            f"{bench}/baseline_catalog_{fit}.tsv",
        ]
    return [
        f"{bench}/validation_baseline_photometry_{field}.tsv",
        f"{bench}/validation_baseline_catalog_{field}_{fit}.tsv",
    ]


def score_inputs(wildcards):
    """score_catalog's inputs: the galaxy's truth, reference band and mask, the method's
    catalog and the benchmarks of the jobs that made it."""
    root = field_dir(wildcards.galaxy, wildcards.field)
    method = wildcards.method
    catalog = (
        f"{root}/detect/candidates.parquet"
        if method == "cnn"
        else f"{root}/baseline/catalog_{method.removeprefix('classical_')}.parquet"
    )
    return {
        "truth": f"{root}/mosaic/truth.parquet",
        "catalog": catalog,
        "image": f"{root}/mosaic/{field_reference_band(wildcards.field)}.fits",
        "mask": f"{root}/mosaic/mask.fits",
        "benchmarks": method_benchmarks(wildcards),
    }


def diagnosis_inputs(wildcards):
    """diagnose_catalog's inputs: a scored galaxy's truth, contaminants, mask and bands, and
    the network's maps, peaks and candidates of it."""
    root = field_dir(wildcards.galaxy, wildcards.field)
    return {
        "truth": f"{root}/mosaic/truth.parquet",
        "contaminants": f"{root}/mosaic/contaminants.parquet",
        "mask": f"{root}/mosaic/mask.fits",
        "bands": [f"{root}/mosaic/{band}.fits" for band in BANDS],
        "maps": f"{root}/detect/maps.fits",
        "peaks": f"{root}/detect/peaks.parquet",
        "candidates": f"{root}/detect/candidates.parquet",
    }


def diagnosis_settings():
    """The `scorecard` keys the diagnosis uses (its own and the match radius): the other
    keys rerun the scores, not the diagnosis."""
    return section_settings("scorecard", "match_radius_px", "diagnosis")


def score_settings():
    """The `scorecard` keys the scores use (the diagnosis' keys do not rerun them)."""
    return {k: v for k, v in config["scorecard"].items() if k != "diagnosis"}


def diagnosis_outputs():
    """The network's diagnosis: its misses and false candidates on every scored galaxy
    (none where the scorecard does not score the network: the regression network)."""
    if "cnn" not in score_methods() or not score_fields():
        return []
    names = ["diagnosis.parquet", "diagnosis.png"]
    return expand("results/{galaxy}/scorecard/{name}", galaxy=GALAXY, name=names)


def scorecard_outputs():
    """The scorecard's tables and figures (none without a galaxy that has a truth), with the
    network's diagnosis."""
    if not score_fields():
        return []
    names = ["scorecard.parquet", "summary.parquet", "recall_visibility.png"]
    names += ["parameters.png", "age_mass_recall.png", "summary.png"]
    out = expand("results/{galaxy}/scorecard/{name}", galaxy=GALAXY, name=names)
    return out + diagnosis_outputs()
