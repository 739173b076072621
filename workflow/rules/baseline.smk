"""The classical peer (docs/scorecard.md): what cluster surveys do without a CNN (LEGUS,
PHANGS-HST) — source detection, a concentration-index cut calibrated on the PSF and mocks,
aperture photometry with a local sky and aperture correction, SED fits on the project's
own SSP model — on the same mosaics and masks as the network: the training galaxy's and
each validation galaxy's."""


rule baseline_photometry:
    """Every source of the mosaic: position, aperture photometry, concentration index, r_h
    and the star/cluster selection (the CI cut calibrated on the PSFs and the mock bank).
    """
    input:
        bands=expand("results/{{galaxy}}/mosaic/{band}.fits", band=BANDS),
        mask="results/{galaxy}/mosaic/mask.fits",
        psfs=expand("results/{{galaxy}}/psf/{band}.fits", band=BANDS),
        bank_tables=expand(
            "results/{{galaxy}}/mocks/shard_{shard}.parquet",
            shard=range(config["mocks"]["n_shards"]),
        ),
        bank_stamps=expand(
            "results/{{galaxy}}/mocks/shard_{shard}.fits",
            shard=range(config["mocks"]["n_shards"]),
        ),
    output:
        "results/{galaxy}/baseline/photometry.parquet",
    log:
        "results/{galaxy}/logs/baseline_photometry.log",
    benchmark:
        "results/{galaxy}/benchmarks/baseline_photometry.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        bands=BANDS,
        photometry={"vega_zeropoint_mag": band_subset(PHOT["vega_zeropoint_mag"])}
        | bank_cut_settings(),
        baseline=config["baseline"],
        seed=config["seed"],
    script:
        "../scripts/baseline_photometry.py"


rule baseline_catalog:
    """The clusters' age, mass and A_V from an SED fit of their three bands: fit grid (χ² on
    the SSP grid) or library (kernel density over the mock bank's IMF-sampled photometry,
    in the spirit of cluster_slug); a catalog with the network's columns."""
    input:
        photometry="results/{galaxy}/baseline/photometry.parquet",
        isochrones="results/{galaxy}/photometry/isochrones.parquet",
        extinction="results/{galaxy}/photometry/extinction.parquet",
        bank_tables=expand(
            "results/{{galaxy}}/mocks/shard_{shard}.parquet",
            shard=range(config["mocks"]["n_shards"]),
        ),
        arms=catalog_inputs_arms,
    output:
        "results/{galaxy}/baseline/catalog_{fit}.parquet",
    log:
        "results/{galaxy}/logs/baseline_catalog_{fit}.log",
    benchmark:
        "results/{galaxy}/benchmarks/baseline_catalog_{fit}.tsv"
    wildcard_constraints:
        fit="|".join(BASELINE_FITS),
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        bands=BANDS,
        photometry=baseline_photometry_config(),
        baseline=config["baseline"],
        geometry=config["galaxy_geometry"],
        mocks=config["mocks"],
        seed=config["seed"],
    script:
        "../scripts/baseline_catalog.py"


use rule baseline_photometry as validation_baseline_photometry with:
    input:
        bands=expand(
            "results/{{galaxy}}/validation/{{name}}/mosaic/{band}.fits", band=BANDS
        ),
        mask="results/{galaxy}/validation/{name}/mosaic/mask.fits",
        psfs=expand("results/{{galaxy}}/psf/{band}.fits", band=BANDS),
        bank_tables=expand(
            "results/{{galaxy}}/mocks/shard_{shard}.parquet",
            shard=range(config["mocks"]["n_shards"]),
        ),
        bank_stamps=expand(
            "results/{{galaxy}}/mocks/shard_{shard}.fits",
            shard=range(config["mocks"]["n_shards"]),
        ),
    output:
        "results/{galaxy}/validation/{name}/baseline/photometry.parquet",
    log:
        "results/{galaxy}/logs/validation_baseline_photometry_{name}.log",
    benchmark:
        "results/{galaxy}/benchmarks/validation_baseline_photometry_{name}.tsv"


use rule baseline_catalog as validation_baseline_catalog with:
    input:
        photometry="results/{galaxy}/validation/{name}/baseline/photometry.parquet",
        isochrones="results/{galaxy}/photometry/isochrones.parquet",
        extinction="results/{galaxy}/photometry/extinction.parquet",
        bank_tables=expand(
            "results/{{galaxy}}/mocks/shard_{shard}.parquet",
            shard=range(config["mocks"]["n_shards"]),
        ),
        arms="results/{galaxy}/validation/{name}/mosaic/arms.parquet",
    output:
        "results/{galaxy}/validation/{name}/baseline/catalog_{fit}.parquet",
    log:
        "results/{galaxy}/logs/validation_baseline_catalog_{name}_{fit}.log",
    benchmark:
        "results/{galaxy}/benchmarks/validation_baseline_catalog_{name}_{fit}.tsv"
    params:
        bands=BANDS,
        photometry=baseline_photometry_config(),
        baseline=config["baseline"],
        geometry=validation_geometry(),
        mocks=config["mocks"],
        seed=config["seed"],
