"""Atomic, self-describing interchange files."""

import pandas as pd
import pytest

from starclusters.errors import InputFileError
from starclusters.io import atomic_path, read_table, write_table


def test_table_round_trip_with_metadata(tmp_path):
    path = tmp_path / "sub" / "t.parquet"
    table = pd.DataFrame({"log_age_yr": [7.0, 8.0], "av_mag": [0.1, 0.2]})
    write_table(path, table, {"units": {"av_mag": "mag"}, "source": "test"})
    back = read_table(path)
    pd.testing.assert_frame_equal(back, table)
    assert back.attrs["meta"] == {"units": {"av_mag": "mag"}, "source": "test"}
    assert oct(path.stat().st_mode & 0o777) != oct(0o600)


def test_failed_write_leaves_nothing(tmp_path):
    path = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError), atomic_path(path) as tmp:
        tmp.write_bytes(b"half of a file")
        raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_failed_write_keeps_the_previous_file(tmp_path, monkeypatch):
    import starclusters.io as sio

    path = tmp_path / "out.parquet"
    write_table(path, pd.DataFrame({"a": [1]}))

    def dies_half_way(table, where):
        with open(where, "wb") as handle:
            handle.write(b"PAR1 half a file")
        raise KeyboardInterrupt  # as when a job is killed

    monkeypatch.setattr(sio.pq, "write_table", dies_half_way)
    with pytest.raises(KeyboardInterrupt):
        write_table(path, pd.DataFrame({"a": [2]}))
    monkeypatch.undo()
    assert read_table(path)["a"].tolist() == [1]
    assert [p.name for p in tmp_path.iterdir()] == ["out.parquet"]


def test_read_errors_name_the_file(tmp_path):
    with pytest.raises(InputFileError, match="missing.parquet"):
        read_table(tmp_path / "missing.parquet")
    junk = tmp_path / "junk.parquet"
    junk.write_text("not parquet")
    with pytest.raises(InputFileError, match="junk.parquet"):
        read_table(junk)
