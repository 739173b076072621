"""CNN training (thesis §3.2): mocks composed on background cutouts on the fly."""


rule train:
    """Train the network; resumes from results/{galaxy}/model/checkpoint.pt after an interruption."""
    input:
        mocks=expand(
            "results/{{galaxy}}/mocks/shard_{shard}.fits",
            shard=range(config["mocks"]["n_shards"]),
        ),
        backgrounds=expand(
            "results/{{galaxy}}/backgrounds/shard_{shard}.fits",
            shard=range(config["backgrounds"]["n_shards"]),
        ),
        psfs=expand("results/{{galaxy}}/psf/{band}.fits", band=BANDS),
    output:
        model="results/{galaxy}/model/model.pt",
        history="results/{galaxy}/model/history.parquet",
        plot=report(
            "results/{galaxy}/model/training.png",
            caption="../report/training.rst",
            category="Network",
        ),
    log:
        "results/{galaxy}/logs/train.log",
    benchmark:
        "results/{galaxy}/benchmarks/train.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=lambda w: 1 if config["train"]["device"] == "cuda" else 0,
    params:
        config={
            "bands": BANDS,
            "window_px": config["window_px"],
            "pixel_scale_arcsec": config["pixel_scale_arcsec"],
            "psf": {"oversampling": PSF["oversampling"]},
            "model": config["model"],
            "train": config["train"],
        },
        seed=config["seed"],
        # not an output: Snakemake deletes a failed job's outputs, the checkpoint must survive
        checkpoint=lambda w: f"results/{w.galaxy}/model/checkpoint.pt",
    script:
        "../scripts/train.py"
