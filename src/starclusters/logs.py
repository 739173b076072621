"""Set-up for pipeline jobs: messages go to the rule's log file and to stderr; the job's
threads bound the compute pools it starts; the allocator keeps the memory it reuses."""

from __future__ import annotations

import logging
import os
import sys


def setup_logging(path: str | os.PathLike | None = None, level: int = logging.INFO) -> None:
    """Send ``logging`` output (and Python warnings) to ``path`` and to stderr."""
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if path:
        os.makedirs(os.path.dirname(os.fspath(path)) or ".", exist_ok=True)
        handlers.append(logging.FileHandler(path, mode="w"))
    logging.basicConfig(
        level=level,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        handlers=handlers,
        force=True,
    )
    logging.captureWarnings(True)

    def log_uncaught(kind, value, traceback):
        # The rule's log then says why the job failed, not only stderr.
        logging.getLogger("starclusters").critical(
            "%s: %s", kind.__name__, value, exc_info=(kind, value, traceback)
        )

    sys.excepthook = log_uncaught


#: Environment variables the OpenMP / BLAS pools read when they start (torch: its intra-op pool).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def use_threads(n: int) -> None:
    """Bound this job's compute threads to ``n`` (its rule's ``threads``).

    Pools that start later (torch imported on demand, e.g. by the population prior) read
    the environment; torch, if already imported, is set directly. Without this a one-thread
    job starts one thread per core, and two such jobs on two cores spin against each other
    (measured: 2x the wall time and as much system time as user time).
    """
    for name in THREAD_VARIABLES:
        os.environ[name] = str(int(n))
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(int(n))


#: glibc's mallopt parameters (<malloc.h>) and the values :func:`tune_allocator` sets: large
#: blocks from mmap only above 32 MiB (glibc's largest fixed threshold), freed memory at the
#: top of the heap kept up to 2 GiB, the heap grown 1 GiB at a time (address space only).
MALLOPT = {"M_MMAP_THRESHOLD": (-3, 32 * 2**20), "M_TRIM_THRESHOLD": (-1, 2**31 - 1)}
MALLOPT["M_TOP_PAD"] = (-2, 2**30)


def tune_allocator() -> bool:
    """Let glibc's malloc keep and reuse the memory a torch job frees (before torch runs).

    By default glibc hands large freed blocks back to the kernel, so each network pass
    faults in fresh zeroed pages: on the 2-core VM a fast-mode layer spent 9–10 s of 37 s
    in the kernel. With :data:`MALLOPT` the same maps took 25–28 s (system 1.5–2 s) and a
    training epoch 19–21 s instead of 23–24 s, with identical results; peak memory rose
    ~10 %. (PyTorch's CPU tuning guide gives the same cause for preferring jemalloc or
    tcmalloc.) False, changing nothing, where the C library is not glibc.
    """
    import ctypes

    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    return all(mallopt(param, value) == 1 for param, value in MALLOPT.values())


def setup_torch_job(path: str | os.PathLike | None, threads: int) -> None:
    """What every workflow job that runs the network does first: :func:`setup_logging` to
    ``path``, :func:`tune_allocator` before torch allocates, and :func:`use_threads` with
    the rule's ``threads``."""
    setup_logging(path)
    tune_allocator()
    use_threads(threads)
