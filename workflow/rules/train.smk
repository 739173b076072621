"""CNN training (thesis §3.2): mocks composed on background cutouts on the fly."""

import json
import shlex
import sys

from snakemake.settings.types import DeploymentMethod

#: The Python of the training processes: the conda env's with --use-conda, else the one
#: running Snakemake (a job's PATH need not lead to the venv, e.g. `.venv/bin/snakemake`).
TRAIN_PYTHON = (
    "python"
    if DeploymentMethod.CONDA in workflow.deployment_settings.deployment_method
    else shlex.quote(sys.executable)
)


rule train:
    """Train the network: one process, or one per GPU under torchrun (DDP) with train.gpus > 1;
    resumes from results/{galaxy}/model/checkpoint.pt after an interruption or preemption.
    """
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
        star_groups=star_group_shards(),
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
    # TORCH_THREADS on the CPU, TRAIN_THREADS_PER_GPU per GPU (helpers/train.smk)
    threads: train_threads()
    resources:
        # the Slurm profile requests all of them (sbatch --cpus-per-task, --mem, -t, --gpus)
        mem_mb=train_mem_mb,
        runtime=train_runtime,
        gpu=train_gpus(),
        nodes=1,  # torchrun --standalone: every GPU on one node
    params:
        config=json.dumps(
            network_job_config(config["model"], config["train"]), sort_keys=True
        ),
        seed=config["seed"],
        # not an output: Snakemake deletes a failed job's outputs, the checkpoint must survive
        checkpoint=lambda w: f"results/{w.galaxy}/model/checkpoint.pt",
        star_groups=star_group_argument,
        # torchrun (python -m torch.distributed.run) starts one process per GPU
        launcher=(
            f"{TRAIN_PYTHON} -m torch.distributed.run --standalone "
            f"--nproc_per_node={config['train']['gpus']}"
            if config["train"]["device"] == "cuda" and config["train"]["gpus"] > 1
            else TRAIN_PYTHON
        ),
    shell:
        "{params.launcher} -m starclusters.cli train"
        " --mocks {input.mocks:q} --backgrounds {input.backgrounds:q} --psfs {input.psfs:q}"
        " {params.star_groups}"
        " --config-json {params.config:q} --seed {params.seed}"
        " --checkpoint {params.checkpoint:q} --model {output.model:q}"
        " --history {output.history:q} --plot {output.plot:q} --log-file {log:q}"
        " --threads {threads}"


rule evaluate_model:
    """The trained network on held-out mocks and backgrounds (thesis §3.3.1, Figs. 3.10, 3.12)."""
    input:
        model="results/{galaxy}/model/model.pt",
        mocks=expand(
            "results/{{galaxy}}/mocks/shard_{shard}.fits",
            shard=range(config["mocks"]["n_shards"]),
        ),
        backgrounds=expand(
            "results/{{galaxy}}/backgrounds/shard_{shard}.fits",
            shard=range(config["backgrounds"]["n_shards"]),
        ),
        psfs=expand("results/{{galaxy}}/psf/{band}.fits", band=BANDS),
        star_groups=star_group_shards(),
    output:
        predictions="results/{galaxy}/model/test_predictions.parquet",
        metrics="results/{galaxy}/model/test_metrics.parquet",
        parameters=report(
            "results/{galaxy}/model/test_parameters.png",
            caption="../report/test_parameters.rst",
            category="Network",
        ),
        class_visibility=report(
            "results/{galaxy}/model/test_class_visibility.png",
            caption="../report/test_class_visibility.rst",
            category="Network",
        ),
        calibration=report(
            "results/{galaxy}/model/test_calibration.png",
            caption="../report/test_calibration.rst",
            category="Network",
        ),
    log:
        "results/{galaxy}/logs/evaluate_model.log",
    benchmark:
        "results/{galaxy}/benchmarks/evaluate_model.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: TORCH_THREADS
    resources:
        mem_mb=job_mem_mb(),
        runtime=evaluate_runtime,
        gpu=evaluate_gpus(),
    params:
        config=network_job_config(
            {"grids": config["model"].get("grids")},
            {
                "device": config["train"]["device"],
                "mock_split_fractions": config["train"].get("mock_split_fractions"),
            },
            evaluate=config["evaluate"],
        ),
        seed=config["seed"],
    script:
        "../scripts/evaluate_model.py"
