"""Progress of the value maps: windows done out of a total, with the rate and the time left.

One :class:`WindowProgress` counts the windows of one tile (a workflow tile job) or of every
tile of a whole image (``starclusters detect``, :func:`starclusters.detect.stage.detect_images`).
It shows a tqdm bar when stderr is a terminal and logs a line every :data:`LOG_EVERY_S`
seconds either way, so a log file or a batch job's output shows it too.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from tqdm import tqdm

log = logging.getLogger(__name__)

#: Seconds between progress lines in the log.
LOG_EVERY_S = 30.0


def format_duration(seconds: float) -> str:
    """``seconds`` as "1 h 02 min", "3 min 07 s" or "12 s" ("?" if not finite)."""
    if not seconds == seconds or seconds in (float("inf"), float("-inf")):
        return "?"
    total = max(int(round(seconds)), 0)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours} h {minutes:02d} min"
    if minutes:
        return f"{minutes} min {secs:02d} s"
    return f"{secs} s"


class WindowProgress:
    """Windows evaluated out of ``total``, named ``desc`` in the bar and the log lines.

    update(n) after each batch of n windows; every ``log_every_s`` seconds (and never more
    often) a log line "desc: done / total windows (percent), windows/s, ETA". The ETA is
    the windows left at the mean rate so far. ``clock`` (seconds) is for tests. Use as a
    context manager, or call :meth:`close`.
    """

    def __init__(
        self,
        total: int,
        desc: str,
        log_every_s: float = LOG_EVERY_S,
        clock: Callable[[], float] = time.perf_counter,
    ):
        self.total = int(total)
        self.desc = desc
        self.done = 0
        self.log_every_s = float(log_every_s)
        self._clock = clock
        self._start = self._last_log = clock()
        self._bar = tqdm(total=self.total, desc=desc, unit="window", disable=None)

    def rate_per_s(self) -> float:
        """Windows per second since the start (0 before the first window)."""
        elapsed = self._clock() - self._start
        return self.done / elapsed if elapsed > 0 else 0.0

    def eta_s(self) -> float:
        """Seconds left at the mean rate so far (inf before the first window)."""
        rate = self.rate_per_s()
        return (self.total - self.done) / rate if rate > 0 else float("inf")

    def line(self) -> str:
        """The progress line: done / total, percent, rate and ETA (once all are done: the
        time they took)."""
        percent = 100.0 * self.done / self.total if self.total else 100.0
        if self.done >= self.total:
            when = f"done in {format_duration(self._clock() - self._start)}"
        else:
            when = f"ETA {format_duration(self.eta_s())}"
        return (
            f"{self.desc}: {self.done:,} / {self.total:,} windows ({percent:.1f} %), "
            f"{self.rate_per_s():.0f} windows/s, {when}"
        )

    def update(self, n: int) -> None:
        """Count ``n`` more windows; log the line if log_every_s passed since the last."""
        self.done += int(n)
        self._bar.update(int(n))
        now = self._clock()
        if now - self._last_log >= self.log_every_s:
            self._last_log = now
            log.info("%s", self.line())

    def close(self) -> None:
        """Close the bar."""
        self._bar.close()

    def __enter__(self) -> WindowProgress:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


@contextmanager
def tile_progress(progress: WindowProgress | None, n: int, desc: str) -> Iterator[WindowProgress]:
    """``progress`` if given (shared by the tiles of an image), else a new one of ``n``
    windows named ``desc``, closed on the way out."""
    if progress is not None:
        yield progress
        return
    with WindowProgress(n, desc) as own:
        yield own
