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


def rebuild_hint(path: str | os.PathLike) -> str:
    """What to do about a damaged file the workflow wrote: delete it, rerun, it is rebuilt."""
    return (
        f"delete it (`rm {path}`) and rerun (`make run` or `snakemake`): Snakemake rebuilds "
        "a missing file and everything made from it"
    )


#: What to do about a damaged file the user gave (an image, a PSF, a catalog).
USER_FILE_HINT = (
    "replace it with a complete, valid copy (check the path in the config or the command); "
    "if a pipeline stage wrote it, delete it and rerun"
)


def default_remedy(path: str | os.PathLike) -> str:
    """:func:`rebuild_hint` for a file under a ``results/`` folder (the workflow's), else
    :data:`USER_FILE_HINT`."""
    return rebuild_hint(path) if "results" in Path(path).parts else USER_FILE_HINT


def _damaged(path: Path, what: str, err: object, remedy: str | None) -> InputFileError:
    return InputFileError(f"{path}: {what} ({err}); {remedy or default_remedy(path)}")


def read_table(path: str | os.PathLike, remedy: str | None = None) -> pd.DataFrame:
    """Read a Parquet table written by :func:`write_table`; ``df.attrs['meta']`` holds its metadata.

    remedy: what the error message tells the user to do with a damaged file (default:
    :func:`default_remedy`). InputFileError naming the file if it is missing, truncated or
    not Parquet.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(f"{path}: no such file; run the stage that produces it first.")
    try:
        arrow = pq.read_table(path)
        df = arrow.to_pandas()
        raw = (arrow.schema.metadata or {}).get(META_KEY)
        df.attrs["meta"] = json.loads(raw) if raw else {}
    except Exception as err:  # pyarrow raises ArrowInvalid, OSError, ...; json ValueError
        raise _damaged(path, "not a readable Parquet file", err, remedy) from err
    return df


def write_cube(path: str | os.PathLike, cube, header_cards: Mapping | None = None) -> None:
    """Write an image cube (e.g. N × B × S × S float32) to FITS atomically.

    header_cards: key -> value or (value, comment), e.g. ``{"BUNIT": "counts/s"}``. The file
    carries the FITS CHECKSUM and DATASUM cards, which :func:`read_cube` verifies, so a
    shard damaged after it was written is refused before use.
    """
    import numpy as np
    from astropy.io import fits

    hdu = fits.PrimaryHDU(np.asarray(cube))
    for key, value in (header_cards or {}).items():
        hdu.header[key] = value
    with atomic_path(path) as tmp:
        hdu.writeto(tmp, overwrite=True, checksum=True)


def _check_complete(hdul, path: Path, size: int) -> None:
    """InputFileError if the file ends before the data its headers announce."""
    from astropy.io.fits import CompImageHDU

    for i, hdu in enumerate(hdul):
        info = hdu.fileinfo()
        # a compressed image's .size is the uncompressed one; its table spans datSpan
        stored = info["datSpan"] if isinstance(hdu, CompImageHDU) else getattr(hdu, "size", 0)
        end = info["datLoc"] + int(stored or 0)
        if end > size:
            raise InputFileError(f"HDU {i} needs {end} bytes, the file has {size}: truncated")
    # astropy drops an extension whose header the file ends inside without a word
    after = info["datLoc"] + info["datSpan"]
    if after < size:
        with open(path, "rb") as handle:
            handle.seek(after)
            if handle.read(8) == b"XTENSION":
                raise InputFileError(f"the file ends inside HDU {len(hdul)}'s header: truncated")


@contextmanager
def open_fits(
    path: str | os.PathLike, *, memmap: bool = False, remedy: str | None = None
) -> Iterator:
    """``astropy.io.fits.open`` that turns every way a file can be bad into one InputFileError.

    Missing, not FITS, a header that cannot be parsed, or truncated (a header announces more
    data than the file holds): InputFileError naming the file and what to do (``remedy``;
    default :func:`default_remedy`: delete and rerun for the workflow's files under
    ``results/``, replace for the user's). Yields the HDUList with every header read; no
    pixels are read.
    """
    import warnings

    from astropy.io import fits

    path = Path(path)
    if not path.is_file():
        raise InputFileError(
            f"{path}: no such file; "
            + (remedy or "run the stage that produces it first (`make run` or `snakemake`)")
        )
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            hdul = fits.open(path, memmap=memmap)
            n = len(hdul)  # reads every header
        truncated = [w for w in caught if "may have been truncated" in str(w.message)]
        if n == 0 or truncated:
            hdul.close()
            raise InputFileError("the file ends inside a header or its data: truncated")
        try:
            _check_complete(hdul, path, path.stat().st_size)
        except InputFileError:
            hdul.close()
            raise
    except Exception as err:  # astropy raises OSError, ValueError, TypeError, VerifyError...
        raise _damaged(path, "not a readable FITS file", err, remedy) from err
    with hdul:
        yield hdul


def read_fits_header(path: str | os.PathLike, hdu: int | str = 0, remedy: str | None = None):
    """A copy of the header of HDU ``hdu`` of ``path``; failures as in :func:`open_fits`."""
    path = Path(path)
    with open_fits(path, memmap=True, remedy=remedy) as hdul:
        try:
            return hdul[hdu].header.copy()
        except (KeyError, IndexError) as err:
            raise _damaged(path, f"no HDU {hdu!r}", err, remedy) from err


def read_cube(path: str | os.PathLike, ndim: int | None = None, remedy: str | None = None):
    """Read a FITS cube written by :func:`write_cube`: (data, header).

    Refused with an InputFileError naming the file and what to do (``remedy``, default
    :func:`default_remedy`) if it is missing, not FITS, truncated, its
    DATASUM card (written by :func:`write_cube`) does not match its pixels, it holds no
    data, or (``ndim`` given) its data have another number of axes.
    """
    path = Path(path)
    with open_fits(path, memmap=False, remedy=remedy) as hdul:
        primary = hdul[0]
        try:
            data = primary.data
            if "DATASUM" in primary.header and primary.verify_datasum() == 0:
                raise InputFileError("its pixels do not match the DATASUM card: damaged")
        except Exception as err:
            raise _damaged(path, "not a readable FITS cube", err, remedy) from err
        header = primary.header
    if data is None or (ndim is not None and data.ndim != ndim):
        found = None if data is None else data.shape
        raise _damaged(path, f"expected a {ndim or 'N'}-D cube", f"found shape {found}", remedy)
    return data, header
