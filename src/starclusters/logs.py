"""Logging set-up for pipeline jobs: messages go to the rule's log file and to stderr."""

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
