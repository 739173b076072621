"""The tiny workflow through profiles/slurm on a real one-node Slurm cluster.

    sudo .venv/bin/python tests/slurm/run_workflow.py [--workdir DIR] [--skip-local]

Root on Debian/Ubuntu. Steps, each timed in DIR/summary.json:

1. install Slurm, slurmdbd, munge and MariaDB with apt-get (unless present);
2. run the tiny config of tests/test_workflow.py locally (``--cores 2``), the reference;
3. start a one-node cluster (tests/slurm/cluster.py) and run the same config through a copy
   of profiles/slurm with only the account and partitions set (plus short status delays for
   a cluster that answers at once). Every job submitted is checked to fit the node, and the
   CPU count of each job against its rule's threads;
4. while that runs, ``scancel`` one detect_tile job once it runs: the profile's squeue
   status must see it CANCELLED and Snakemake resubmit it (``retries``) instead of waiting
   forever (plugin 2.8.0 with sacct does);
5. run again through the profile: it must finish with nothing left to do;
6. compare with the local run: the same files under results/ (logs and benchmarks aside),
   and every Parquet table equal within rtol 1e-5 (timing columns and rows aside);
7. stop every daemon started in 3 (by PID), also on failure.

Exit status 0 when every check passes; the reasons otherwise.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path[:0] = [str(HERE), str(REPO / "tests"), str(REPO / "src")]

import yaml  # noqa: E402
from cluster import (  # noqa: E402
    ACCOUNT,
    PARTITIONS,
    ROOT_PREFIX,
    OneNodeCluster,
    install,
    unsupported_reason,
)

#: The rule whose job is cancelled mid-run (one tile of the detection).
CANCEL_RULE = "detect_tile"
#: Timing columns and rows that differ between any two runs.
TIMING = re.compile(r"second|wall|elapsed|duration|_s$|^s$|rss", re.IGNORECASE)


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", flush=True)


def snakemake_cmd(workdir: Path, config_path: Path, *args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snakemake",
        "-s",
        str(REPO / "Snakefile"),
        "-d",
        str(workdir),
        "--configfile",
        str(config_path),
        *args,
    ]


def write_tiny_config(path: Path) -> Path:
    """The tiny end-to-end config of tests/test_workflow.py (its own helper)."""
    from conftest import write_yaml
    from test_workflow import tiny_config

    from starclusters.config import load_config

    return write_yaml(path, tiny_config(load_config(REPO / "config" / "config.yaml")))


def write_profile(folder: Path) -> Path:
    """profiles/slurm with the account and partitions of the test cluster: the edits the
    README asks for, nothing else of the resources. Added for a cluster on this machine:
    the first status check after 5 s (not 40) and a short latency wait."""
    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text())
    profile["default-resources"]["slurm_account"] = ACCOUNT
    profile["default-resources"]["slurm_partition"] = PARTITIONS[0]
    for rule in profile.get("set-resources", {}).values():
        if "slurm_partition" in rule:
            rule["slurm_partition"] = PARTITIONS[1]
    profile["slurm-init-seconds-before-status-checks"] = 5
    profile["latency-wait"] = 5
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def run_local(workdir: Path, config_path: Path) -> float:
    t0 = time.monotonic()
    with open(workdir / "snakemake.log", "w") as out:
        rc = subprocess.run(
            snakemake_cmd(workdir, config_path, "--cores", "2"),
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
        ).returncode
    if rc != 0:
        raise RuntimeError(f"local run failed ({rc}); see {workdir / 'snakemake.log'}")
    return time.monotonic() - t0


def queue(cluster: OneNodeCluster) -> list[dict]:
    """The cluster's jobs: id, state, comment (rule and wildcards), CPUs, memory, limit."""
    out = cluster.run(
        "squeue", "-h", "-t", "all", "-o", "%i|%T|%k|%C|%m|%l|%P|%r", check=False
    ).stdout
    keys = ("id", "state", "comment", "cpus", "mem", "limit", "partition", "reason")
    return [dict(zip(keys, line.split("|"), strict=False)) for line in out.splitlines() if line]


def mem_mb(text: str) -> float:
    """squeue's %m (e.g. 1250M, 2G) in MB."""
    units = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024**2}
    match = re.fullmatch(r"([\d.]+)([KMGT]?)", text.strip())
    return float(match[1]) * units.get(match[2] or "M", 1) if match else float("nan")


def run_on_cluster(
    cluster: OneNodeCluster, workdir: Path, config_path: Path, profile: Path, timeout_s: float
) -> dict:
    """The workflow through the profile, with one CANCEL_RULE job cancelled once it runs.
    Returns what was seen: the jobs (rule, CPUs, memory, limit), the cancelled job, seconds."""
    cmd = snakemake_cmd(workdir, config_path, "--profile", str(profile))
    log("$ " + " ".join(cmd))
    t0 = time.monotonic()
    out = open(workdir / "snakemake.log", "w")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(
        cmd,
        stdout=out,
        stderr=subprocess.STDOUT,
        cwd=workdir,
        env=cluster.env(),
        start_new_session=True,
    )
    jobs: dict[str, dict] = {}
    cancelled = None
    running_since: dict[str, float] = {}
    problems = []
    try:
        while proc.poll() is None:
            if time.monotonic() - t0 > timeout_s:
                problems.append(
                    f"no end after {timeout_s:.0f} s; queue:\n"
                    + "\n".join(str(j) for j in queue(cluster))
                )
                break
            for job in queue(cluster):
                rule = job["comment"].removeprefix("rule_").split("_wildcards_")[0]
                if job["id"] not in jobs:
                    jobs[job["id"]] = {**job, "rule": rule}
                    cpus = int(job["cpus"]) if job["cpus"].isdigit() else 0
                    if mem_mb(job["mem"]) > cluster.memory_mb or cpus > cluster.cpus:
                        problems.append(f"job {job} asks for more than the node has")
                if job["state"] == "RUNNING":
                    running_since.setdefault(job["id"], time.monotonic())
                if (
                    cancelled is None
                    and rule == CANCEL_RULE
                    and job["state"] == "RUNNING"
                    and time.monotonic() - running_since[job["id"]] > 5
                ):
                    cluster.run("scancel", job["id"])
                    cancelled = {**job, "at_s": round(time.monotonic() - t0, 1)}
                    log(f"scancel {job['id']} ({job['comment']}), running for 5 s")
            if problems:
                break
            time.sleep(2)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        out.close()
    seconds = time.monotonic() - t0
    text = (workdir / "snakemake.log").read_text(errors="replace")
    if proc.returncode != 0 and not problems:
        problems.append(f"snakemake exited {proc.returncode}; tail:\n{text[-4000:]}")
    return {
        "seconds": round(seconds, 1),
        "returncode": proc.returncode,
        "jobs": list(jobs.values()),
        "cancelled": cancelled,
        "problems": problems,
        "log": text,
    }


def check_cluster_run(seen: dict) -> list[str]:
    """What the run on the cluster must show: every job's CPUs = its rule's threads, the
    cancel seen as a failure and the job resubmitted, status from squeue throughout."""
    problems = list(seen["problems"])
    threads = {"train": 2, "evaluate_model": 2, "detection_gallery": 2}
    for job in seen["jobs"]:
        want = threads.get(job["rule"], 1)
        if job["cpus"] != str(want):
            problems.append(f"{job['rule']} job {job['id']}: {job['cpus']} CPUs, threads {want}")
        if job["limit"] in ("", "UNLIMITED", "INFINITE"):
            problems.append(f"{job['rule']} job {job['id']}: no time limit (runtime)")
    cancelled = seen["cancelled"]
    text = seen["log"]
    if cancelled is None:
        problems.append(f"no {CANCEL_RULE} job was seen running, none cancelled")
    else:
        noticed = rf"SLURM-job '{cancelled['id']}' failed, SLURM status is: 'CANCELLED"
        if not re.search(noticed, text):
            problems.append(f"the cancelled job {cancelled['id']} was not reported as failed")
        again = [
            j
            for j in seen["jobs"]
            if j["comment"] == cancelled["comment"] and j["id"] != cancelled["id"]
        ]
        if not again:
            problems.append(f"{cancelled['comment']} was not resubmitted after the cancel")
    if "Falling back to 'sacct'" in text:
        problems.append("the plugin fell back to sacct for job status")
    return problems


def read_table(path: Path):
    """A Parquet table without its timing rows (unit s or s/Mpx, metric wall_*)."""
    import pandas as pd

    table = pd.read_parquet(path)
    for col in ("unit", "metric"):
        if col in table:
            table = table[~table[col].astype(str).str.contains(TIMING, na=False)]
    return table.reset_index(drop=True)


def compare_tables(local: Path, slurm: Path, rtol: float = 1e-5) -> tuple[dict, list[str]]:
    """Every Parquet table under results/ (benchmarks aside) of both runs, column by column;
    timing columns and rows (unit s, s/Mpx; metric wall_*) left out. Returns per table
    "equal", "close (max rel. diff …)" or the difference, and the problems."""
    import numpy as np
    import pandas as pd

    report, problems = {}, []
    names = sorted(
        p.relative_to(local)
        for p in (local / "results").rglob("*.parquet")
        if "benchmarks" not in p.parts
    )
    for name in names:
        a, b = read_table(local / name), read_table(slurm / name)
        cols = [c for c in a.columns if not TIMING.search(str(c))]
        if list(a.columns) != list(b.columns) or len(a) != len(b):
            report[str(name)] = f"shape {a.shape} vs {b.shape}"
            problems.append(f"{name}: columns or rows differ")
            continue
        worst = 0.0
        bad = []
        for col in cols:
            x, y = a[col].to_numpy(), b[col].to_numpy()
            if pd.api.types.is_numeric_dtype(a[col]) and pd.api.types.is_numeric_dtype(b[col]):
                x, y = x.astype(float), y.astype(float)
                same_nan = np.isnan(x) == np.isnan(y)
                ok = np.isclose(x, y, rtol=rtol, atol=1e-8, equal_nan=True) & same_nan
                if not ok.all():
                    bad.append(col)
                with np.errstate(invalid="ignore", divide="ignore"):
                    rel = np.abs(x - y) / np.maximum(np.abs(x), 1e-12)
                worst = max(worst, float(np.nanmax(rel, initial=0.0)))
            elif not a[col].equals(b[col]):  # None and NaN equal to themselves
                bad.append(col)
        if bad:
            report[str(name)] = f"differs in {bad} (max rel. diff {worst:.2g})"
            problems.append(f"{name}: {report[str(name)]}")
        else:
            report[str(name)] = "equal" if worst == 0 else f"close (max rel. diff {worst:.2g})"
    return report, problems


def compare_files(local: Path, slurm: Path) -> list[str]:
    """The same result files in both runs (logs, benchmarks and checkpoints aside)."""

    def files(root):
        return {
            p.relative_to(root)
            for p in (root / "results").rglob("*")
            if p.is_file() and not {"logs", "benchmarks"} & set(p.parts)
        }

    a, b = files(local), files(slurm)
    return [f"only in the local run: {sorted(map(str, a - b))}"] * bool(a - b) + [
        f"only in the Slurm run: {sorted(map(str, b - a))}"
    ] * bool(b - a)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="where to work (default: a new temp folder)")
    parser.add_argument("--skip-local", action="store_true", help="no local run, no comparison")
    parser.add_argument(
        "--reference",
        type=Path,
        help="compare with this finished local run of the tiny config instead of running one",
    )
    parser.add_argument(
        "--timeout-min", type=float, default=50, help="limit of the run on the cluster"
    )
    args = parser.parse_args(argv)
    reason = unsupported_reason()
    if reason:
        log(f"cannot run here: {reason}")
        return 2
    work = args.workdir or Path(tempfile.mkdtemp(prefix="starclusters-slurm-"))
    work.mkdir(parents=True, exist_ok=True)
    summary: dict = {"workdir": str(work)}
    problems: list[str] = []
    t_all = time.monotonic()

    t0 = time.monotonic()
    install(log)
    summary["install_s"] = round(time.monotonic() - t0, 1)

    config_path = write_tiny_config(work / "tiny.yaml")
    local, slurm = args.reference or work / "local", work / "slurm"
    slurm.mkdir(exist_ok=True)
    if args.reference:
        done = subprocess.run(
            snakemake_cmd(local, config_path, "-n"), capture_output=True, text=True, cwd=local
        )
        if "Nothing to be done" not in done.stdout + done.stderr:
            log(f"--reference {local}: not a finished run of the tiny config")
            return 2
    elif not args.skip_local:
        local.mkdir(exist_ok=True)
        log("local run (--cores 2) ...")
        summary["local_s"] = round(run_local(local, config_path), 1)
        log(f"local run: {summary['local_s']:.0f} s")

    # the daemons need a folder every user can traverse (munged runs as munge)
    cluster = OneNodeCluster(Path(tempfile.mkdtemp(prefix=ROOT_PREFIX)), log=log)
    try:
        summary["cluster_start_s"] = round(cluster.start(), 1)
        profile = write_profile(work / "profile")
        seen = run_on_cluster(cluster, slurm, config_path, profile, args.timeout_min * 60)
        summary["slurm_run_s"] = seen["seconds"]
        summary["jobs"] = [
            {k: j[k] for k in ("id", "rule", "cpus", "mem", "limit", "partition")}
            for j in seen["jobs"]
        ]
        summary["cancelled"] = seen["cancelled"]
        problems += check_cluster_run(seen)
        log(f"run on the cluster: {seen['seconds']:.0f} s, {len(seen['jobs'])} jobs")
        if not problems:
            t0 = time.monotonic()
            rerun = subprocess.run(
                snakemake_cmd(slurm, config_path, "--profile", str(profile)),
                capture_output=True,
                text=True,
                cwd=slurm,
                env=cluster.env(),
                timeout=600,
            )
            summary["rerun_s"] = round(time.monotonic() - t0, 1)
            text = rerun.stdout + rerun.stderr
            (slurm / "rerun.log").write_text(text)
            if rerun.returncode != 0 or "Nothing to be done" not in text:
                problems.append(f"the rerun did not finish with nothing to do:\n{text[-3000:]}")
    except Exception as err:  # noqa: BLE001 (reported, daemons stopped below)
        problems.append(f"{type(err).__name__}: {err}")
    finally:
        cluster.stop()
        if problems:
            summary["cluster_root"] = str(cluster.root)  # its logs, for the reasons
        else:
            shutil.rmtree(cluster.root, ignore_errors=True)

    if not args.skip_local and not problems:
        problems += compare_files(local, slurm)
        report, table_problems = compare_tables(local, slurm)
        summary["tables"] = report
        problems += table_problems
    summary["total_s"] = round(time.monotonic() - t_all, 1)
    summary["problems"] = problems
    (work / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    log(f"summary: {work / 'summary.json'}")
    for problem in problems:
        log(f"PROBLEM: {problem}")
    log("OK" if not problems else f"{len(problems)} problem(s)")
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
