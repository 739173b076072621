"""Resuming after a killed run: remove Snakemake's stale lock when no Snakemake works here.

A Snakemake killed with ``kill -9`` (or a lost terminal) leaves its lock in
``.snakemake/locks/``; the next run refuses to start ("Directory cannot be locked") until
``snakemake --unlock``. ``make run`` calls :func:`main` first (``python -m
starclusters.locks [snakemake options]``): if a lock is there and no other Snakemake
process (nor one of its jobs) runs in this folder, it runs ``snakemake --unlock`` with the
given options; ``make run`` then passes ``--rerun-incomplete``, so the jobs the killed run
left half done are redone. While another Snakemake works here nothing is touched.

Processes are found in ``/proc`` (Linux); where it is missing the lock is left alone.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path


def lock_files(workdir: str | os.PathLike) -> list[Path]:
    """Snakemake's lock files in ``workdir`` (empty when it is not locked)."""
    folder = Path(workdir) / ".snakemake" / "locks"
    return sorted(folder.glob("*.lock")) if folder.is_dir() else []


def is_snakemake(argv: Sequence[str]) -> bool:
    """Whether a command line runs Snakemake (``snakemake ...``, ``python -m snakemake ...``)."""
    head = [os.path.basename(a) for a in argv[:3]]
    if "snakemake" in head:
        return True
    return any(a == "-m" and b == "snakemake" for a, b in zip(argv, argv[1:], strict=False))


def _ancestors(pid: int) -> set[int]:
    out = set()
    while pid > 1 and pid not in out:
        out.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])  # the field after the state
    return out


def snakemake_processes(workdir: str | os.PathLike) -> list[int] | None:
    """PIDs of Snakemake processes (and Snakemake-run jobs) whose working folder is
    ``workdir``, this process and its parents excluded; None where /proc is missing."""
    proc = Path("/proc")
    if not (proc / "self" / "cmdline").exists():
        return None
    here = os.path.realpath(workdir)
    mine = _ancestors(os.getpid())
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
            cwd = os.readlink(entry / "cwd")
        except OSError:  # gone, or another user's
            continue
        if cwd == here and is_snakemake([a for a in argv if a]):
            found.append(int(entry.name))
    return sorted(found)


def snakemake_command() -> list[str]:
    """The Snakemake of this Python environment."""
    exe = Path(sys.executable).with_name("snakemake")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "snakemake"]


def unlock_stale(
    workdir: str | os.PathLike,
    snakemake_args: Iterable[str] = (),
    *,
    processes: Callable[[str | os.PathLike], list[int] | None] = snakemake_processes,
    run: Callable[..., object] = subprocess.run,
) -> str:
    """Unlock ``workdir`` if it is locked and no Snakemake runs there; returns what was done.

    "unlocked", "not locked", "busy" (another Snakemake works here: left alone) or
    "unknown" (no /proc: left alone). ``snakemake --unlock`` gets ``snakemake_args``
    (e.g. ``--configfile``).
    """
    if not lock_files(workdir):
        return "not locked"
    others = processes(workdir)
    if others is None:
        return "unknown"
    if others:
        return "busy"
    run([*snakemake_command(), "--unlock", *snakemake_args], cwd=workdir, check=True)
    return "unlocked"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m starclusters.locks [snakemake options]``: unlock a stale lock here."""
    args = list(sys.argv[1:] if argv is None else argv)
    workdir = Path.cwd()
    done = unlock_stale(workdir, args)
    locks = ", ".join(str(p) for p in lock_files(workdir))
    if done == "unlocked":
        print(
            "starclusters.locks: a killed run had left .snakemake/locks; no Snakemake runs "
            "here, so it was unlocked (jobs it left half done rerun with --rerun-incomplete)",
            file=sys.stderr,
        )
    elif done == "busy":
        print(
            f"starclusters.locks: another Snakemake works in {workdir} (pid "
            f"{', '.join(map(str, snakemake_processes(workdir) or []))}); its lock ({locks}) "
            "is left alone: wait for it or stop it, then rerun",
            file=sys.stderr,
        )
    elif done == "unknown":
        print(
            f"starclusters.locks: cannot list processes here; if no Snakemake runs in "
            f"{workdir}, run `snakemake --unlock` and rerun",
            file=sys.stderr,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
