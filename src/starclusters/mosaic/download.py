"""Fetching public mosaic files (real-data presets) with checksums, atomically."""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.error
import urllib.request
from pathlib import Path

from tqdm import tqdm

from starclusters.errors import InputFileError
from starclusters.io import atomic_path

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def sha256_of(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


def download(
    url: str,
    destination: str | os.PathLike,
    sha256: str | None = None,
    timeout_s: float = 60.0,
    progress: bool = True,
) -> Path:
    """Download ``url`` to ``destination`` atomically and check its SHA-256 when given.

    A file already at ``destination`` with the right checksum is kept. When the
    machine cannot reach ``url``, InputFileError says where to put the file by hand.
    """
    destination = Path(destination)
    if destination.exists() and (sha256 is None or sha256_of(destination) == sha256.lower()):
        log.info("%s is already there; not downloading", destination)
        return destination
    log.info("downloading %s -> %s", url, destination)
    try:
        with (
            urllib.request.urlopen(url, timeout=timeout_s) as response,
            atomic_path(destination) as tmp,
        ):
            total = int(response.headers.get("Content-Length") or 0) or None
            digest = hashlib.sha256()
            with (
                open(tmp, "wb") as out,
                tqdm(
                    total=total,
                    unit="B",
                    unit_scale=True,
                    desc=destination.name,
                    disable=not progress,
                ) as bar,
            ):
                for chunk in iter(lambda: response.read(_CHUNK), b""):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
            if sha256 is not None and digest.hexdigest() != sha256.lower():
                raise InputFileError(
                    f"{url}: checksum {digest.hexdigest()} differs from the configured {sha256}; "
                    "the file changed upstream or the download was corrupted"
                )
    except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
        raise InputFileError(
            f"cannot download {url} ({getattr(err, 'reason', err)}). If this machine is offline, "
            f"download the file elsewhere and put it at {destination.resolve()}"
        ) from err
    return destination
