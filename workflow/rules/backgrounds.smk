"""Background cutouts (thesis §3.1.4): windows of the prepared mosaic, sharded, with
train/val/test splits on disjoint spatial blocks."""


rule background_shard:
    """One shard of background cutouts (all bands) and their positions and splits."""
    input:
        bands=expand("results/{{galaxy}}/mosaic/{band}.fits", band=BANDS),
        mask="results/{galaxy}/mosaic/mask.fits",
    output:
        cutouts="results/{galaxy}/backgrounds/shard_{shard}.fits",
        table="results/{galaxy}/backgrounds/shard_{shard}.parquet",
    log:
        "results/{galaxy}/logs/background_shard_{shard}.log",
    benchmark:
        "results/{galaxy}/benchmarks/background_shard_{shard}.tsv"
    wildcard_constraints:
        shard=r"\d+",
    conda:
        "../../envs/science.yaml"
    resources:
        # the shard's cutouts, twice
        mem_mb=job_mem_mb(extra_mb=2 * cube_mb(config["backgrounds"]["per_shard"])),
        runtime=job_runtime(),
    params:
        # the number of shards changes which shards exist, not what one holds
        backgrounds={k: v for k, v in config["backgrounds"].items() if k != "n_shards"},
        window_px=config["window_px"],
        bands=BANDS,
        seed=config["seed"],
    script:
        "../scripts/background_shard.py"
