"""The Slurm path: job resources from the config (dry runs through profiles/slurm) and the
tiny workflow on a real one-node Slurm cluster (tests/slurm/run_workflow.py; root on
Debian/Ubuntu only, docs/slurm.md)."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO, write_yaml
from test_workflow import snakemake, tiny_config

sys.path.insert(0, str(REPO / "tests" / "slurm"))
from cluster import unsupported_reason  # noqa: E402

PROFILE = REPO / "profiles" / "slurm"


def planned_resources(workdir: Path, config_path: Path, *targets: str) -> dict[str, list[dict]]:
    """Rule -> the threads and resources of each job a dry run through the profile lists
    (resources that need inputs not made yet read <TBD>). No cap on threads: a cluster."""
    result = snakemake(
        workdir, config_path, "-n", "--profile", str(PROFILE), "--cores", "256", *targets
    )
    jobs: dict[str, list[dict]] = {}
    for block in re.split(r"\n(?=(?:rule|checkpoint|localrule) \w+:)", result.stdout):
        head = re.match(r"(?:rule|checkpoint|localrule) (\w+):", block)
        found = re.search(r"^\s+resources: (.*)$", block, flags=re.MULTILINE)
        if not head or not found:
            continue
        job = dict(item.split("=", 1) for item in found[1].split(", "))
        threads = re.search(r"^\s+threads: (\d+)$", block, flags=re.MULTILINE)
        job["threads"] = threads[1] if threads else "1"
        jobs.setdefault(head[1], []).append(job)
    return jobs


def m83_workdir(tmp_path: Path, change=None) -> tuple[Path, Path]:
    """A working folder for dry runs of config/m83.yaml: empty stand-ins for the mosaics
    (a dry run only asks that they exist) and the comparison catalog."""
    config = yaml.safe_load((REPO / "config" / "m83.yaml").read_text())
    if change:
        change(config)
    for path in config["mosaic"]["files"].values():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).touch()
    catalog = tmp_path / config["analysis"]["comparison"]["path"]
    catalog.parent.mkdir(parents=True, exist_ok=True)
    catalog.write_bytes((REPO / config["analysis"]["comparison"]["path"]).read_bytes())
    return tmp_path, write_yaml(tmp_path / "m83.yaml", config)


def bank_mb(config: dict) -> float:
    """MB of the float32 mock bank and backgrounds that every training process holds."""
    m, b = config["mocks"], config["backgrounds"]
    n = m["n_shards"] * m["per_shard"] + b["n_shards"] * b["per_shard"]
    return n * len(config["bands"]) * config["window_px"] ** 2 * 4 / 2**20


def test_profile_names_only_the_account_and_partitions():
    """Everything else a job asks for comes from the rules (the config, the data size): a
    profile value would override it (the hang of issue 17: train at 16 CPUs / 128 GB)."""
    profile = yaml.safe_load((PROFILE / "config.yaml").read_text())
    defaults = profile["default-resources"]
    assert set(defaults) == {"slurm_account", "slurm_partition", "cpus_per_task"}
    assert defaults["cpus_per_task"] == "threads"
    for rule, resources in profile["set-resources"].items():
        assert set(resources) == {"slurm_partition"}, rule
    # sacct's "CANCELLED by <uid>" is not a failure to plugin 2.8.0: it would wait forever
    assert profile["slurm-status-command"] == "squeue"
    assert profile["retries"] >= 1


def test_every_rule_declares_memory_and_runtime():
    rules = "".join(p.read_text() for p in (REPO / "workflow" / "rules").glob("*.smk"))
    blocks = re.split(r"\n\s*(?=(?:rule|checkpoint) \w+:)", rules)[1:]
    for block in blocks:
        name = re.match(r"(?:rule|checkpoint) (\w+):", block)[1]
        assert re.search(r"^\s+mem_mb=", block, flags=re.MULTILINE), name
        assert re.search(r"^\s+runtime=", block, flags=re.MULTILINE), name


def test_thesis_preset_asks_for_what_training_needs(tmp_path):
    """config/m83.yaml: train on its GPU with the bank in memory, CPUs = threads."""
    workdir, config_path = m83_workdir(tmp_path)
    config = yaml.safe_load(config_path.read_text())
    jobs = planned_resources(workdir, config_path, "results/m83/model/test_metrics.parquet")
    (train,) = jobs["train"]
    (evaluate,) = jobs["evaluate_model"]
    assert evaluate["gpu"] == "1" and evaluate["slurm_partition"] == "gpu"
    assert evaluate["cpus_per_task"] == evaluate["threads"] == "2"
    assert train["gpu"] == "1" and train["nodes"] == "1"
    assert train["slurm_partition"] == "gpu"
    assert train["cpus_per_task"] == train["threads"] == "4"
    # the bank (6.1 GB) twice while it is read, the runtime, slack; not the old fixed 128 GB
    assert 2 * bank_mb(config) < int(train["mem_mb"]) < 4 * bank_mb(config)
    # 60 epochs x 500 steps x 512 images of the thesis network: hours, not the default
    assert 120 < int(train["runtime"]) < 24 * 60
    for rule in ("psf", "isochrones", "extinction"):
        for job in jobs[rule]:
            assert job["cpus_per_task"] == job["threads"] == "1"
            assert job["slurm_partition"] == "cpu"
            assert int(job["runtime"]) <= 30


def test_training_gpus_scale_the_train_job(tmp_path):
    """train.gpus: 4 -> one process per GPU, each with its threads and its copy of the bank."""

    def four_gpus(config):
        config["train"].update(gpus=4)

    workdir, config_path = m83_workdir(tmp_path, four_gpus)
    one = planned_resources(*m83_workdir(tmp_path / "one"), "results/m83/model/model.pt")
    (train,) = planned_resources(workdir, config_path, "results/m83/model/model.pt")["train"]
    (single,) = one["train"]
    assert train["gpu"] == "4" and train["cpus_per_task"] == "16"
    assert int(train["mem_mb"]) == pytest.approx(4 * int(single["mem_mb"]), abs=4)
    assert int(train["runtime"]) < int(single["runtime"])


def test_tiny_config_fits_a_two_cpu_node(tmp_path, default_config):
    """The tiny end-to-end config on the CPU: no job asks for a GPU, more than 2 CPUs or
    more than a few GB (the test cluster's node: 2 CPUs, ~20 GB)."""
    config = tiny_config(default_config)
    config_path = write_yaml(tmp_path / "config.yaml", config)
    jobs = planned_resources(tmp_path, config_path)
    assert {"train", "isochrones", "psf"} <= set(jobs)
    (train,) = jobs["train"]
    assert train["cpus_per_task"] == train["threads"] == "2"
    assert train["gpu"] == "0"
    assert int(train["mem_mb"]) < 4000
    for rule, listed in jobs.items():
        for job in listed:
            assert int(job["threads"]) <= 2, rule
            assert job["cpus_per_task"] == job["threads"], rule
            if job["mem_mb"] != "<TBD>":
                assert int(job["mem_mb"]) < 4000, rule
            assert job.get("gpu", "0") == "0", rule


@pytest.mark.slow
def test_tiny_workflow_on_a_one_node_slurm_cluster(tmp_path):
    """tests/slurm/run_workflow.py: install and start Slurm, run the tiny config through
    the profile with one tile job cancelled mid-run, rerun, compare with a local run, stop
    the daemons. ≈ 26 min on 2 busy cores (docs/slurm.md)."""
    reason = unsupported_reason()
    if reason:
        pytest.skip(f"needs a machine to install Slurm on: {reason}")
    if os.environ.get("STARCLUSTERS_SLURM_TEST", "1") == "0":
        pytest.skip("STARCLUSTERS_SLURM_TEST=0")
    result = subprocess.run(
        [
            sys.executable,
            str(REPO / "tests" / "slurm" / "run_workflow.py"),
            "--workdir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=80 * 60,
    )
    assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-4000:]
    assert "OK" in result.stdout.splitlines()[-1]
    assert math.isfinite(float(yaml.safe_load((tmp_path / "summary.json").read_text())["total_s"]))
