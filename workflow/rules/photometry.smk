"""Stellar photometry (thesis §2.1, §3.1.2): isochrones and extinction in the HST bands."""


rule isochrones:
    """PARSEC isochrones with absolute HST magnitudes on the configured age grid."""
    input:
        isochrone_inputs,
    output:
        "results/{galaxy}/photometry/isochrones.parquet",
    log:
        "results/{galaxy}/logs/isochrones.log",
    benchmark:
        "results/{galaxy}/benchmarks/isochrones.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        photometry={
            "isochrones": PHOT["isochrones"],
            "filter_curves": band_subset(PHOT["filter_curves"]),
        },
        model_version=PHOTOMETRY_MODEL_VERSION,
        bands=BANDS,
    script:
        "../scripts/isochrones.py"


rule observed_isochrones:
    """The isochrone table at a synthetic galaxy's own metallicity (mosaic.synthetic or a
    validation galaxy's metallicity_z), for robustness tests; the bank keeps the run's.
    """
    input:
        isochrone_inputs,
    output:
        "results/{galaxy}/photometry/observed_z{z}/isochrones.parquet",
    log:
        "results/{galaxy}/logs/observed_isochrones_z{z}.log",
    wildcard_constraints:
        z=r"[0-9.e-]+",
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        photometry=lambda w: {
            "isochrones": PHOT["isochrones"] | {"metallicity_z": float(w.z)},
            "filter_curves": band_subset(PHOT["filter_curves"]),
        },
        model_version=PHOTOMETRY_MODEL_VERSION,
        bands=BANDS,
    script:
        "../scripts/isochrones.py"


rule extinction:
    """Extinction A_band on the A_V grid, integrated over each filter (CCM89, R_V = 3.1)."""
    output:
        "results/{galaxy}/photometry/extinction.parquet",
    log:
        "results/{galaxy}/logs/extinction.log",
    benchmark:
        "results/{galaxy}/benchmarks/extinction.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        photometry={
            "extinction": PHOT["extinction"],
            "filter_curves": band_subset(PHOT["filter_curves"]),
        },
        model_version=PHOTOMETRY_MODEL_VERSION,
        bands=BANDS,
    script:
        "../scripts/extinction.py"


rule photometry_figures:
    """Isochrones and integrated cluster colours as the CNN's mocks will see them."""
    input:
        isochrones="results/{galaxy}/photometry/isochrones.parquet",
        extinction="results/{galaxy}/photometry/extinction.parquet",
    output:
        cmd=report(
            "results/{galaxy}/photometry/isochrones.png",
            caption="../report/isochrones.rst",
            category="Photometry",
        ),
        colours=report(
            "results/{galaxy}/photometry/cluster_colours.png",
            caption="../report/cluster_colours.rst",
            category="Photometry",
        ),
    log:
        "results/{galaxy}/logs/photometry_figures.log",
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        photometry={
            "distance_mpc": PHOT["distance_mpc"],
            "vega_zeropoint_mag": band_subset(PHOT["vega_zeropoint_mag"]),
            "magnitude_limits": band_subset(PHOT["magnitude_limits"]),
            "imf": PHOT["imf"],
        },
        bands=BANDS,
        seed=config["seed"],
    script:
        "../scripts/photometry_figures.py"
