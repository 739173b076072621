"""Galaxy mosaics (thesis §3.1.1, §4.1): a synthetic galaxy or downloaded HST images,
reprojected onto one north-up grid, and their mask."""

if MOSAIC["source"] == "synthetic":

    rule synthetic_galaxy:
        """An M83-like galaxy with a ground-truth cluster catalog, each band on its own WCS."""
        input:
            isochrones=galaxy_isochrones(MOSAIC["synthetic"]),
            extinction="results/{galaxy}/photometry/extinction.parquet",
            psfs=galaxy_psfs(MOSAIC["synthetic"]),
        output:
            bands=expand("results/{{galaxy}}/mosaic/raw/{band}.fits", band=BANDS),
            truth="results/{galaxy}/mosaic/raw/truth.parquet",
            arms="results/{galaxy}/mosaic/arms.parquet",
            contaminants="results/{galaxy}/mosaic/contaminants.parquet",
            preview=report(
                "results/{galaxy}/mosaic/synthetic.png",
                caption="../report/synthetic.rst",
                category="Mosaic",
            ),
            zoom=report(
                "results/{galaxy}/mosaic/synthetic_zoom.png",
                caption="../report/synthetic.rst",
                category="Mosaic",
            ),
        log:
            "results/{galaxy}/logs/synthetic_galaxy.log",
        benchmark:
            "results/{galaxy}/benchmarks/synthetic_galaxy.tsv"
        conda:
            "../../envs/science.yaml"
        resources:
            mem_mb=job_mem_mb(extra_mb=synthetic_extra_mb(MOSAIC["synthetic"])),
            runtime=job_runtime(),
        params:
            config=synthetic_config(),
            seed=config["seed"],
        script:
            "../scripts/synthetic_galaxy.py"


if MOSAIC["source"] == "files" and MOSAIC["download"]:

    rule download_band:
        """Fetch a band's public mosaic (checksum-verified); offline, says where to put it."""
        output:
            "results/{galaxy}/mosaic/raw/{band}.fits",
        log:
            "results/{galaxy}/logs/download_{band}.log",
        wildcard_constraints:
            band="|".join(MOSAIC["download"]),
        conda:
            "../../envs/science.yaml"
        resources:
            mem_mb=job_mem_mb(),
            runtime=job_runtime(),
        params:
            url=lambda w: MOSAIC["download"][w.band]["url"],
            sha256=lambda w: MOSAIC["download"][w.band].get("sha256"),
        script:
            "../scripts/download_band.py"


rule mosaic:
    """All bands on one north-up TAN grid (flux-conserving reprojection) and the mask."""
    input:
        unpack(mosaic_inputs),
    output:
        bands=expand("results/{{galaxy}}/mosaic/{band}.fits", band=BANDS),
        mask="results/{galaxy}/mosaic/mask.fits",
    log:
        "results/{galaxy}/logs/mosaic.log",
    benchmark:
        "results/{galaxy}/benchmarks/mosaic.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        mosaic=mosaic_settings(),
        pixel_scale_arcsec=config["pixel_scale_arcsec"],
        bands=BANDS,
    script:
        "../scripts/mosaic.py"


if MOSAIC["source"] == "synthetic":

    rule truth:
        """The synthetic clusters on the mosaic grid, with their visibility (thesis eq. 3.2)."""
        input:
            raw="results/{galaxy}/mosaic/raw/truth.parquet",
            bands=expand("results/{{galaxy}}/mosaic/{band}.fits", band=BANDS),
            isochrones=galaxy_isochrones(MOSAIC["synthetic"]),
            extinction="results/{galaxy}/photometry/extinction.parquet",
            psfs=galaxy_psfs(MOSAIC["synthetic"]),
        output:
            "results/{galaxy}/mosaic/truth.parquet",
        log:
            "results/{galaxy}/logs/truth.log",
        conda:
            "../../envs/science.yaml"
        resources:
            mem_mb=job_mem_mb(),
            runtime=job_runtime(),
        params:
            config=synthetic_config() | {"window_px": config["window_px"]},
        script:
            "../scripts/truth.py"
