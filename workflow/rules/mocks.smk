"""Mock-cluster bank (thesis §3.1.2–3.1.3): PSFs and sharded noise-free cluster stamps."""


rule psf:
    """Effective PSF of one band (GalSim HST model or the user's FITS PSF), kept as a file."""
    input:
        psf_inputs,
    output:
        "results/{galaxy}/psf/{band}.fits",
    log:
        "results/{galaxy}/logs/psf_{band}.log",
    benchmark:
        "results/{galaxy}/benchmarks/psf_{band}.tsv"
    wildcard_constraints:
        band="|".join(BANDS),
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        psf=psf_settings,
        filter_curve=lambda w: PHOT["filter_curves"][w.band],
        pixel_scale_arcsec=config["pixel_scale_arcsec"],
    script:
        "../scripts/psf.py"


rule observed_psf:
    """A synthetic galaxy's PSF where it differs from training's (mosaic.synthetic.psf_halo,
    psf_fwhm_scale): the same GalSim model with or without the halo, dilated."""
    output:
        "results/{galaxy}/psf/observed_halo{halo}_fwhm{scale}/{band}.fits",
    log:
        "results/{galaxy}/logs/observed_psf_halo{halo}_fwhm{scale}_{band}.log",
    wildcard_constraints:
        band="|".join(BANDS),
        halo="0|1",
        scale=r"[0-9.]+",
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        psf=psf_settings,
        filter_curve=lambda w: PHOT["filter_curves"][w.band],
        pixel_scale_arcsec=config["pixel_scale_arcsec"],
        halo=lambda w: w.halo == "1",
        fwhm_scale=lambda w: float(w.scale),
    script:
        "../scripts/psf.py"


rule mock_shard:
    """Noise-free mock clusters for one shard of the bank (thesis §3.1.2)."""
    input:
        isochrones="results/{galaxy}/photometry/isochrones.parquet",
        extinction="results/{galaxy}/photometry/extinction.parquet",
        psfs=expand("results/{{galaxy}}/psf/{band}.fits", band=BANDS),
    output:
        stamps="results/{galaxy}/mocks/shard_{shard}.fits",
        params="results/{galaxy}/mocks/shard_{shard}.parquet",
    log:
        "results/{galaxy}/logs/mock_shard_{shard}.log",
    benchmark:
        "results/{galaxy}/benchmarks/mock_shard_{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        "../../envs/science.yaml"
    resources:
        # the shard's stamps, twice
        mem_mb=job_mem_mb(extra_mb=2 * cube_mb(config["mocks"]["per_shard"])),
        runtime=job_runtime(work_s=mock_render_seconds(config["mocks"]["per_shard"])),
    params:
        config=mock_config(),
        seed=config["seed"],
    script:
        "../scripts/mock_shard.py"


rule star_group_shard:
    """Single stars, pairs and small groups of stars: training's hard negatives (class 0)."""
    input:
        isochrones="results/{galaxy}/photometry/isochrones.parquet",
        extinction="results/{galaxy}/photometry/extinction.parquet",
        psfs=expand("results/{{galaxy}}/psf/{band}.fits", band=BANDS),
    output:
        stamps="results/{galaxy}/mocks/star_groups/shard_{shard}.fits",
        params="results/{galaxy}/mocks/star_groups/shard_{shard}.parquet",
    log:
        "results/{galaxy}/logs/star_group_shard_{shard}.log",
    benchmark:
        "results/{galaxy}/benchmarks/star_group_shard_{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(extra_mb=2 * cube_mb(config["star_groups"]["per_shard"])),
        # a few stars per stamp: rendering, not star sampling, is the cost
        runtime=job_runtime(
            work_s=mock_render_seconds(config["star_groups"]["per_shard"])
        ),
    params:
        config=star_group_config(),
        seed=config["seed"],
    script:
        "../scripts/star_group_shard.py"


rule star_group_figure:
    """A gallery of the star groups beside the bank's colour-magnitude diagram."""
    input:
        stamps="results/{galaxy}/mocks/star_groups/shard_0.fits",
        table="results/{galaxy}/mocks/star_groups/shard_0.parquet",
        bank=expand(
            "results/{{galaxy}}/mocks/shard_{shard}.parquet",
            shard=range(config["mocks"]["n_shards"]),
        ),
        background="results/{galaxy}/backgrounds/shard_0.fits",
        background_table="results/{galaxy}/backgrounds/shard_0.parquet",
    output:
        report(
            "results/{galaxy}/mocks/star_groups.png",
            caption="../report/star_groups.rst",
            category="Mock bank",
        ),
    log:
        "results/{galaxy}/logs/star_group_figure.log",
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        bands=BANDS,
        seed=config["seed"],
    script:
        "../scripts/star_group_figure.py"


rule mock_figures:
    """Mock stamps on a mass × r_h grid (thesis Fig. 3.1) and the bank's colours (Fig. 3.3)."""
    input:
        isochrones="results/{galaxy}/photometry/isochrones.parquet",
        extinction="results/{galaxy}/photometry/extinction.parquet",
        psfs=expand("results/{{galaxy}}/psf/{band}.fits", band=BANDS),
        tables=expand(
            "results/{{galaxy}}/mocks/shard_{shard}.parquet",
            shard=range(config["mocks"]["n_shards"]),
        ),
        background="results/{galaxy}/backgrounds/shard_0.fits",
        background_table="results/{galaxy}/backgrounds/shard_0.parquet",
    output:
        grid=report(
            "results/{galaxy}/mocks/mock_grid.png",
            caption="../report/mock_grid.rst",
            category="Mock bank",
        ),
        colours=report(
            "results/{galaxy}/mocks/bank_colours.png",
            caption="../report/bank_colours.rst",
            category="Mock bank",
        ),
    log:
        "results/{galaxy}/logs/mock_figures.log",
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(SECONDS_PER_BANK_MB),
    params:
        config=mock_config(),
        seed=config["seed"],
    script:
        "../scripts/mock_figures.py"
