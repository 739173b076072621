"""Artificial-cluster tests (thesis §4.2.3, Figs. 4.1–4.3): fresh mocks on a regular grid,
injected with compose(), found by the same detection and peaks, matched back, recall.
Per layer (artificial.n_layers, each its own copy of the mosaic) under
artificial/layer_{layer}/; the layers pooled, the recall and the selection function in
artificial/."""


wildcard_constraints:
    layer=r"\d+",


rule artificial_grid:
    """A layer's injection sites: one every artificial.spacing_px px where the window is
    usable, the grid shifted by the layer's offset (none for layer 0)."""
    input:
        mask="results/{galaxy}/mosaic/mask.fits",
    output:
        grid="results/{galaxy}/artificial/layer_{layer}/grid.parquet",
    log:
        "results/{galaxy}/logs/artificial_grid_{layer}.log",
    benchmark:
        "results/{galaxy}/benchmarks/artificial_grid_{layer}.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        window_px=config["window_px"],
        spacing_px=ARTIFICIAL["spacing_px"],
        n_shards=ARTIFICIAL["n_shards"],
        seed=config["seed"],
        seed_offset=ARTIFICIAL["seed_offset"],
    script:
        "../scripts/artificial_grid.py"


rule artificial_shard:
    """Noise-free artificial mocks for one shard of a layer's sites, rendered by the bank's
    code from a seed stream the bank never uses (thesis §4.2.3), drawn as artificial.draw
    says (a fraction of them in the box of artificial.reference)."""
    input:
        grid="results/{galaxy}/artificial/layer_{layer}/grid.parquet",
        isochrones="results/{galaxy}/photometry/isochrones.parquet",
        extinction="results/{galaxy}/photometry/extinction.parquet",
        psfs=expand("results/{{galaxy}}/psf/{band}.fits", band=BANDS),
    output:
        stamps="results/{galaxy}/artificial/layer_{layer}/mock_shard_{shard}.fits",
        params="results/{galaxy}/artificial/layer_{layer}/mock_shard_{shard}.parquet",
    log:
        "results/{galaxy}/logs/artificial_shard_{layer}_{shard}.log",
    benchmark:
        "results/{galaxy}/benchmarks/artificial_shard_{layer}_{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        # about a bank shard's number of mocks per shard (config/m83.yaml)
        runtime=job_runtime(work_s=mock_render_seconds(config["mocks"]["per_shard"])),
    params:
        config=artificial_mock_config(),
        seed=config["seed"],
        seed_offset=ARTIFICIAL["seed_offset"],
        draw=ARTIFICIAL["draw"],
        reference=ARTIFICIAL["reference"],
    script:
        "../scripts/artificial_shard.py"


rule artificial_inject:
    """A copy of the mosaic with the layer's artificial mocks added by compose() (thesis
    Fig. 4.1), per band with the mosaic's header and WCS, and the injected mocks' table.
    """
    input:
        bands=expand("results/{{galaxy}}/mosaic/{band}.fits", band=BANDS),
        grid="results/{galaxy}/artificial/layer_{layer}/grid.parquet",
        shards=expand(
            "results/{{galaxy}}/artificial/layer_{{layer}}/mock_shard_{shard}.fits",
            shard=range(ARTIFICIAL["n_shards"]),
        ),
        tables=expand(
            "results/{{galaxy}}/artificial/layer_{{layer}}/mock_shard_{shard}.parquet",
            shard=range(ARTIFICIAL["n_shards"]),
        ),
        psfs=expand("results/{{galaxy}}/psf/{band}.fits", band=BANDS),
    output:
        bands=expand(
            "results/{{galaxy}}/artificial/layer_{{layer}}/{band}.fits", band=BANDS
        ),
        injected="results/{galaxy}/artificial/layer_{layer}/injected.parquet",
    log:
        "results/{galaxy}/logs/artificial_inject_{layer}.log",
    benchmark:
        "results/{galaxy}/benchmarks/artificial_inject_{layer}.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        bands=BANDS,
        pixel_scale_arcsec=config["pixel_scale_arcsec"],
        psf_oversampling=PSF["oversampling"],
        seed=config["seed"],
        seed_offset=ARTIFICIAL["seed_offset"],
    script:
        "../scripts/artificial_inject.py"


rule artificial_pool:
    """Every layer's matched mocks in one table, with galactocentric distance, arm distance,
    arm membership and the local background (the scorecard's annulus, last band, on the
    layer's injected mosaic: as the candidates' and truth clusters' are measured)."""
    input:
        unpack(artificial_pool_inputs),
    output:
        matches="results/{galaxy}/artificial/matches.parquet",
    log:
        "results/{galaxy}/logs/artificial_pool.log",
    benchmark:
        "results/{galaxy}/benchmarks/artificial_pool.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        arms=arms_config(),
        geometry=config["galaxy_geometry"],
        distance_mpc=PHOT["distance_mpc"],
        background_annulus_px=config["scorecard"]["background_annulus_px"],
    script:
        "../scripts/artificial_pool.py"


rule artificial_search_mask:
    """The mask the artificial detection runs with: beyond the search radius around every
    mock nothing is evaluated (the maps within it are those of a whole-mosaic search).
    """
    input:
        mask="results/{galaxy}/mosaic/mask.fits",
        grid="results/{galaxy}/artificial/layer_{layer}/grid.parquet",
    output:
        mask="results/{galaxy}/artificial/layer_{layer}/search_mask.fits",
    log:
        "results/{galaxy}/logs/artificial_search_mask_{layer}.log",
    benchmark:
        "results/{galaxy}/benchmarks/artificial_search_mask_{layer}.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        radius_px=artificial_search_radius(),
    script:
        "../scripts/artificial_search_mask.py"


if ARTIFICIAL["maps_jobs"] == "per_tile":

    rule artificial_tile:
        """Value maps of one tile of the injected mosaic: the detection stage's own tile
        function with the detect settings (whatever detect.mode says) and the tile plan of
        the mosaic (artificial.maps_jobs: per_tile)."""
        input:
            bands=expand(
                "results/{{galaxy}}/artificial/layer_{{layer}}/{band}.fits", band=BANDS
            ),
            mask="results/{galaxy}/artificial/layer_{layer}/search_mask.fits",
            model="results/{galaxy}/model/model.pt",
            plan="results/{galaxy}/detect/tiles.parquet",
        output:
            tile="results/{galaxy}/artificial/layer_{layer}/tiles/{t}.fits",
        log:
            "results/{galaxy}/logs/artificial_tile_{layer}_{t}.log",
        benchmark:
            "results/{galaxy}/benchmarks/artificial_tile_{layer}_{t}.tsv"
        wildcard_constraints:
            t=r"\d+",
        conda:
            "../../envs/torch.yaml"
        # as detect_tile: one thread per job, tiles side by side (docs/detection.md)
        threads: 1
        resources:
            mem_mb=tile_memory_mb(config),
            runtime=tile_runtime,
            gpu=detect_gpus(),
        params:
            config=detect_tile_config(),
        script:
            "../scripts/detect_tile.py"

    rule artificial_maps:
        """The injected mosaic's value maps as one file with the mosaic's WCS: its tiles
        merged."""
        input:
            tiles=artificial_tile_files,
            plan="results/{galaxy}/detect/tiles.parquet",
            mask="results/{galaxy}/artificial/layer_{layer}/search_mask.fits",
        output:
            maps="results/{galaxy}/artificial/layer_{layer}/maps.fits",
        log:
            "results/{galaxy}/logs/artificial_maps_{layer}.log",
        benchmark:
            "results/{galaxy}/benchmarks/artificial_maps_{layer}.tsv"
        conda:
            "../../envs/science.yaml"
        resources:
            mem_mb=job_mem_mb(),
            runtime=job_runtime(),
        params:
            tile_px=DETECT.tile_px,
        script:
            "../scripts/artificial_maps.py"

else:

    rule artificial_maps:
        """The injected mosaic's value maps as one file with the mosaic's WCS: the
        detection's tiles one after the other in one job (artificial.maps_jobs:
        per_layer, as validation_maps), the detect settings, the search mask."""
        input:
            bands=expand(
                "results/{{galaxy}}/artificial/layer_{{layer}}/{band}.fits", band=BANDS
            ),
            mask="results/{galaxy}/artificial/layer_{layer}/search_mask.fits",
            model="results/{galaxy}/model/model.pt",
        output:
            maps="results/{galaxy}/artificial/layer_{layer}/maps.fits",
        log:
            "results/{galaxy}/logs/artificial_maps_{layer}.log",
        benchmark:
            "results/{galaxy}/benchmarks/artificial_maps_{layer}.tsv"
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


rule artificial_peaks:
    """Peaks and candidates of the injected mosaic, with the detection's thresholds."""
    input:
        unpack(artificial_catalog_inputs),
    output:
        peaks="results/{galaxy}/artificial/layer_{layer}/peaks.parquet",
        candidates="results/{galaxy}/artificial/layer_{layer}/candidates.parquet",
        regions="results/{galaxy}/artificial/layer_{layer}/candidates.reg",
    log:
        "results/{galaxy}/logs/artificial_peaks_{layer}.log",
    benchmark:
        "results/{galaxy}/benchmarks/artificial_peaks_{layer}.tsv"
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


rule artificial_match:
    """A layer's injected mocks against its candidates within each match radius (thesis: 3
    and 6 px, one to one) and against all peaks (the nearest one's class and visibility).
    """
    input:
        injected="results/{galaxy}/artificial/layer_{layer}/injected.parquet",
        candidates="results/{galaxy}/artificial/layer_{layer}/candidates.parquet",
        peaks="results/{galaxy}/artificial/layer_{layer}/peaks.parquet",
    output:
        matches="results/{galaxy}/artificial/layer_{layer}/matches.parquet",
    log:
        "results/{galaxy}/logs/artificial_match_{layer}.log",
    benchmark:
        "results/{galaxy}/benchmarks/artificial_match_{layer}.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        radii_px=ARTIFICIAL["match_radii_px"],
    script:
        "../scripts/artificial_match.py"


rule artificial_recall:
    """Recall in space and against age, mass and A_V, on and off the arms (thesis Fig. 4.3),
    at the reference node, and the parameter errors of recovered mocks."""
    input:
        matches="results/{galaxy}/artificial/matches.parquet",
    output:
        recall="results/{galaxy}/artificial/recall.parquet",
        metrics="results/{galaxy}/artificial/metrics.parquet",
        recall_map=report(
            "results/{galaxy}/artificial/recall_map.png",
            caption="../report/artificial_recall_map.rst",
            category="Artificial clusters",
        ),
        recall_parameters=report(
            "results/{galaxy}/artificial/recall_parameters.png",
            caption="../report/artificial_recall_parameters.rst",
            category="Artificial clusters",
        ),
    log:
        "results/{galaxy}/logs/artificial_recall.log",
    benchmark:
        "results/{galaxy}/benchmarks/artificial_recall.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        artificial=artificial_recall_settings(),
        bank_cut=bank_cut_settings(),
    script:
        "../scripts/artificial_recall.py"


rule artificial_class_visibility:
    """Class against visibility of the recovered mocks' peaks among all peaks of the original
    mosaic, with the thresholds (thesis Fig. 4.2)."""
    input:
        matches="results/{galaxy}/artificial/matches.parquet",
        peaks="results/{galaxy}/detect/peaks.parquet",
        # the catalogue cut is the one its candidates were made with (metadata)
        candidates="results/{galaxy}/detect/candidates.parquet",
    output:
        report(
            "results/{galaxy}/artificial/class_visibility.png",
            caption="../report/artificial_class_visibility.rst",
            category="Artificial clusters",
        ),
    log:
        "results/{galaxy}/logs/artificial_class_visibility.log",
    benchmark:
        "results/{galaxy}/benchmarks/artificial_class_visibility.tsv"
    conda:
        "../../envs/science.yaml"
    resources:
        mem_mb=job_mem_mb(),
        runtime=job_runtime(),
    params:
        radii_px=ARTIFICIAL["match_radii_px"],
    script:
        "../scripts/artificial_class_visibility.py"


rule artificial_selection:
    """The selection function P(recovered | log t, log M, A_V, r_h, local background) fitted
    to the pooled injections, on a grid the analysis and users query, with its
    cross-validated calibration and its 50 % / 90 % completeness masses against age."""
    input:
        matches="results/{galaxy}/artificial/matches.parquet",
    output:
        selection="results/{galaxy}/artificial/selection.parquet",
        calibration="results/{galaxy}/artificial/selection_calibration.parquet",
        calibration_png=report(
            "results/{galaxy}/artificial/selection_calibration.png",
            caption="../report/artificial_selection_calibration.rst",
            category="Artificial clusters",
        ),
        contours_png=report(
            "results/{galaxy}/artificial/selection_contours.png",
            caption="../report/artificial_selection_contours.rst",
            category="Artificial clusters",
        ),
    log:
        "results/{galaxy}/logs/artificial_selection.log",
    benchmark:
        "results/{galaxy}/benchmarks/artificial_selection.tsv"
    conda:
        "../../envs/science.yaml"
    # the boosting's OpenMP threads spin-wait: one per job keeps it from stalling the others
    threads: 1
    resources:
        mem_mb=job_mem_mb(extra_mb=500.0),
        runtime=job_runtime(work_s=120.0),
    params:
        radius_px=ARTIFICIAL["match_radii_px"][0],
        seed=config["seed"],
    script:
        "../scripts/artificial_selection.py"
