"""Validation galaxies (the scorecard's, docs/scorecard.md): synthetic galaxies that training
never sees, built by the training galaxy's generator with their own seed and structure, their
mosaic, truth and the trained network's candidates, each in results/{galaxy}/validation/{name}/.
The scripts are the training galaxy's own."""


rule validation_galaxy:
    """A validation galaxy with its ground-truth catalog, each band on its own WCS."""
    input:
        isochrones=lambda w: galaxy_isochrones(SYNTHETIC_FIELDS[w.name]["synthetic"]),
        extinction="results/{galaxy}/photometry/extinction.parquet",
        psfs=lambda w: galaxy_psfs(SYNTHETIC_FIELDS[w.name]["synthetic"]),
    output:
        bands=expand(
            "results/{{galaxy}}/validation/{{name}}/mosaic/raw/{band}.fits", band=BANDS
        ),
        truth="results/{galaxy}/validation/{name}/mosaic/raw/truth.parquet",
        arms="results/{galaxy}/validation/{name}/mosaic/arms.parquet",
        contaminants="results/{galaxy}/validation/{name}/mosaic/contaminants.parquet",
        preview=report(
            "results/{galaxy}/validation/{name}/mosaic/synthetic.png",
            caption="../report/validation_galaxy.rst",
            category="Scorecard",
            subcategory="Validation galaxies",
        ),
        zoom="results/{galaxy}/validation/{name}/mosaic/synthetic_zoom.png",
    log:
        "results/{galaxy}/logs/validation_galaxy_{name}.log",
    benchmark:
        "results/{galaxy}/benchmarks/validation_galaxy_{name}.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(
            extra_mb=lambda w: synthetic_extra_mb(
                SYNTHETIC_FIELDS[w.name]["synthetic"]
            )
        ),
        runtime=job_runtime(),
    params:
        config=lambda w: validation_synthetic_config(w.name),
        seed=lambda w: SYNTHETIC_FIELDS[w.name]["seed"],
    script:
        "../scripts/synthetic_galaxy.py"


rule validation_mosaic:
    """The validation galaxy's bands on one north-up TAN grid and its mask (the mosaic rule's
    settings)."""
    input:
        **{
            f"raw_{band}": f"results/{{galaxy}}/validation/{{name}}/mosaic/raw/{band}.fits"
            for band in BANDS
        },
        catalogs=[c["path"] for c in MOSAIC["mask"]["catalogs"]],
    output:
        bands=expand(
            "results/{{galaxy}}/validation/{{name}}/mosaic/{band}.fits", band=BANDS
        ),
        mask="results/{galaxy}/validation/{name}/mosaic/mask.fits",
    log:
        "results/{galaxy}/logs/validation_mosaic_{name}.log",
    benchmark:
        "results/{galaxy}/benchmarks/validation_mosaic_{name}.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        mosaic=mosaic_settings(own_files=False),
        pixel_scale_arcsec=config["pixel_scale_arcsec"],
        bands=BANDS,
    script:
        "../scripts/mosaic.py"


rule validation_truth:
    """The validation galaxy's clusters on its mosaic grid, with their visibility (eq. 3.2)."""
    input:
        raw="results/{galaxy}/validation/{name}/mosaic/raw/truth.parquet",
        bands=expand(
            "results/{{galaxy}}/validation/{{name}}/mosaic/{band}.fits", band=BANDS
        ),
        isochrones=lambda w: galaxy_isochrones(SYNTHETIC_FIELDS[w.name]["synthetic"]),
        extinction="results/{galaxy}/photometry/extinction.parquet",
        psfs=lambda w: galaxy_psfs(SYNTHETIC_FIELDS[w.name]["synthetic"]),
    output:
        "results/{galaxy}/validation/{name}/mosaic/truth.parquet",
    log:
        "results/{galaxy}/logs/validation_truth_{name}.log",
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        config=lambda w: validation_synthetic_config(w.name)
        | {"window_px": config["window_px"]},
    script:
        "../scripts/truth.py"


rule validation_maps:
    """The trained network's value maps of the validation galaxy (the detection settings;
    tiles one after the other in one job: these mosaics are small)."""
    input:
        bands=expand(
            "results/{{galaxy}}/validation/{{name}}/mosaic/{band}.fits", band=BANDS
        ),
        mask="results/{galaxy}/validation/{name}/mosaic/mask.fits",
        model="results/{galaxy}/model/model.pt",
    output:
        maps="results/{galaxy}/validation/{name}/detect/maps.fits",
    log:
        "results/{galaxy}/logs/validation_maps_{name}.log",
    benchmark:
        "results/{galaxy}/benchmarks/validation_maps_{name}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=tile_memory_mb(config),
        runtime=image_runtime,
        gpu=detect_gpus(),
    params:
        config=detect_tile_config(),
    script:
        "../scripts/image_maps.py"


rule validation_peaks:
    """Peaks and candidates of the validation galaxy, with the detection's thresholds."""
    input:
        unpack(
            lambda w: {
                "maps": f"results/{w.galaxy}/validation/{w.name}/detect/maps.fits",
                "arms": f"results/{w.galaxy}/validation/{w.name}/mosaic/arms.parquet",
            }
            | peak_job_inputs(
                w.galaxy, f"results/{w.galaxy}/validation/{w.name}/mosaic"
            )
        ),
    output:
        peaks="results/{galaxy}/validation/{name}/detect/peaks.parquet",
        candidates="results/{galaxy}/validation/{name}/detect/candidates.parquet",
        regions="results/{galaxy}/validation/{name}/detect/candidates.reg",
    log:
        "results/{galaxy}/logs/validation_peaks_{name}.log",
    benchmark:
        "results/{galaxy}/benchmarks/validation_peaks_{name}.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        detect=peak_settings(),
        geometry=validation_geometry(),
        distance_mpc=PHOT["distance_mpc"],
    script:
        "../scripts/find_peaks.py"
