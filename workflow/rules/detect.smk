"""Detection (thesis §4.2.2): the trained network slid over the whole mosaic, tile by tile,
into value maps (exact mode; docs/detection.md)."""

from starclusters.detect.tiles import tile_memory_mb


checkpoint detect_plan:
    """The tiles (cores of detect.tile_px px, row-major); their number follows from the
    mosaic's shape, which is known only once the mosaic is built."""
    input:
        mask="results/{galaxy}/mosaic/mask.fits",
    output:
        plan="results/{galaxy}/detect/tiles.parquet",
    log:
        "results/{galaxy}/logs/detect_plan.log",
    benchmark:
        "results/{galaxy}/benchmarks/detect_plan.tsv"
    conda:
        "../../envs/torch.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        tile_px=DETECT.tile_px,
    script:
        "../scripts/detect_plan.py"


rule detect_tile:
    """Value maps of one tile's core: the network on the window centred on every
    detect.step_px-th pixel, read with a halo of window_px // 2 + step_px px."""
    input:
        bands=expand("results/{{galaxy}}/mosaic/{band}.fits", band=BANDS),
        mask="results/{galaxy}/mosaic/mask.fits",
        model="results/{galaxy}/model/model.pt",
        plan="results/{galaxy}/detect/tiles.parquet",
    output:
        tile="results/{galaxy}/detect/tiles/{t}.fits",
    log:
        "results/{galaxy}/logs/detect_tile_{t}.log",
    benchmark:
        "results/{galaxy}/benchmarks/detect_tile_{t}.tsv"
    wildcard_constraints:
        t=r"\d+",
    conda:
        "../../envs/torch.yaml"
    # tiles run side by side, one thread each: a small network gains little from more, and
    # on a busy machine spinning OpenMP threads slow it down many times (docs/detection.md)
    threads: 1
    resources:
        # starclusters.detect.tiles.tile_memory_bytes + 25 %; the Slurm profile requests both
        mem_mb=tile_memory_mb(config),
        runtime=tile_runtime,
        gpu=detect_gpus(),
    params:
        config=detect_tile_config(),
    script:
        "../scripts/detect_tile.py"


rule merge_maps:
    """The tiles' maps as one file with the mosaic's WCS (CLASS, VISIBILITY, LOG_AGE,
    LOG_MASS, AV, LOG_RH), and a figure of them."""
    input:
        tiles=detect_tile_files,
        plan="results/{galaxy}/detect/tiles.parquet",
        mask="results/{galaxy}/mosaic/mask.fits",
    output:
        maps="results/{galaxy}/detect/maps.fits",
        figure=report(
            "results/{galaxy}/detect/maps.png",
            caption="../report/detect_maps.rst",
            category="Detection",
        ),
    log:
        "results/{galaxy}/logs/merge_maps.log",
    benchmark:
        "results/{galaxy}/benchmarks/merge_maps.tsv"
    conda:
        "../../envs/torch.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        tile_px=DETECT.tile_px,
    script:
        "../scripts/merge_maps.py"


# --- peaks and candidates (thesis §4.2.2): catalog, regions, gallery, truth match


rule find_peaks:
    """Peaks of the smoothed class map with their weighted parameters, the candidates above
    the class and visibility thresholds, and their DS9 regions (thesis §4.2.2)."""
    input:
        unpack(catalog_inputs),
    output:
        peaks="results/{galaxy}/detect/peaks.parquet",
        candidates="results/{galaxy}/detect/candidates.parquet",
        regions="results/{galaxy}/detect/candidates.reg",
    log:
        "results/{galaxy}/logs/find_peaks.log",
    benchmark:
        "results/{galaxy}/benchmarks/find_peaks.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        detect=peak_settings(),
        geometry=config["galaxy_geometry"],
        distance_mpc=PHOT["distance_mpc"],
    script:
        "../scripts/find_peaks.py"


rule detection_gallery:
    """The best candidates' cut-outs and output grids (age × A_V over mass, mass, r_h) from
    the network run again on their windows, as thesis Fig. 3.21."""
    input:
        unpack(gallery_inputs),
    output:
        report(
            "results/{galaxy}/detect/gallery.png",
            caption="../report/detection_gallery.rst",
            category="Detection",
        ),
    log:
        "results/{galaxy}/logs/detection_gallery.log",
    benchmark:
        "results/{galaxy}/benchmarks/detection_gallery.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: TORCH_THREADS
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        detect=catalog_settings(
            "gallery_size", "gallery_field_arcsec", "match_radius_px"
        ),
        bands=BANDS,
        pixel_scale_arcsec=config["pixel_scale_arcsec"],
        zeropoints_mag=band_subset(PHOT["vega_zeropoint_mag"]),
    script:
        "../scripts/detection_gallery.py"


if MOSAIC["source"] == "synthetic":

    rule truth_match:
        """The candidates and peaks against the synthetic galaxy's clusters (≤ 3 px, one to
        one): recall and precision vs visibility, errors of the derived parameters.
        """
        input:
            truth="results/{galaxy}/mosaic/truth.parquet",
            candidates="results/{galaxy}/detect/candidates.parquet",
            peaks="results/{galaxy}/detect/peaks.parquet",
        output:
            table="results/{galaxy}/detect/truth_match.parquet",
            figure=report(
                "results/{galaxy}/detect/truth_match.png",
                caption="../report/truth_match.rst",
                category="Detection",
            ),
        log:
            "results/{galaxy}/logs/truth_match.log",
        benchmark:
            "results/{galaxy}/benchmarks/truth_match.tsv"
        conda:
            "../../envs/science.yaml"
        resources:
            mem_mb=job_mem_mb(),
            runtime=job_runtime(),
        params:
            # the thresholds: those the candidates were made with (their metadata)
            detect=catalog_settings("match_radius_px"),
        script:
            "../scripts/truth_match.py"
