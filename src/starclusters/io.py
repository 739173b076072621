"""Reading and writing the pipeline's interchange files (Parquet tables, FITS images).

Every write is atomic: data go to a temporary file in the target directory that
is renamed into place only when complete, so a killed job never leaves a file
that looks finished.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from starclusters.errors import InputFileError

#: Parquet schema-metadata key under which :func:`write_table` stores its ``meta`` dict.
META_KEY = b"starclusters"


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` on success.

    On any exception the temporary file is removed and ``path`` is left untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    umask = os.umask(0)
    os.umask(umask)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_table(path: str | os.PathLike, table: pd.DataFrame, meta: Mapping | None = None) -> None:
    """Write ``table`` to Parquet atomically, with ``meta`` (JSON-able) in the schema metadata.

    Use ``meta`` for units of columns whose names cannot carry them, the
    method and the inputs that produced the table.
    """
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    if meta:
        merged = dict(arrow.schema.metadata or {})
        merged[META_KEY] = json.dumps(meta, default=str).encode()
        arrow = arrow.replace_schema_metadata(merged)
    with atomic_path(path) as tmp:
        pq.write_table(arrow, tmp)


def read_table(path: str | os.PathLike) -> pd.DataFrame:
    """Read a Parquet table written by :func:`write_table`; ``df.attrs['meta']`` holds its metadata."""
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file; run the stage that produces it first.")
    try:
        arrow = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as err:
        raise InputFileError(
            f"{path}: not a readable Parquet file ({err}); delete it and rerun."
        ) from err
    df = arrow.to_pandas()
    raw = (arrow.schema.metadata or {}).get(META_KEY)
    df.attrs["meta"] = json.loads(raw) if raw else {}
    return df


def write_cube(path: str | os.PathLike, cube, header_cards: Mapping | None = None) -> None:
    """Write an image cube (e.g. N × B × S × S float32) to FITS atomically.

    header_cards: key -> value or (value, comment), e.g. ``{"BUNIT": "counts/s"}``.
    """
    import numpy as np
    from astropy.io import fits

    hdu = fits.PrimaryHDU(np.asarray(cube))
    for key, value in (header_cards or {}).items():
        hdu.header[key] = value
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, overwrite=True)


def read_cube(path: str | os.PathLike):
    """Read a FITS cube written by :func:`write_cube`: (data, header)."""
    from astropy.io import fits

    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file; run the stage that produces it first.")
    try:
        with fits.open(path, memmap=False) as hdul:
            return hdul[0].data, hdul[0].header
    except OSError as err:
        raise InputFileError(
            f"{path}: not a readable FITS file ({err}); delete it and rerun."
        ) from err
