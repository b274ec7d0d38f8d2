"""Delta tables through cairn.data: writes, schema enforcement, time travel, history, restore."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import time
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cairn import data
from cairn.errors import (
    InvalidParameterError,
    SchemaMismatchError,
    TableNotFoundError,
    TableVersionError,
)

if TYPE_CHECKING:
    from pathlib import Path


def _frame(start: int, rows: int) -> pd.DataFrame:
    ids = np.arange(start, start + rows)
    return pd.DataFrame({"id": ids, "price": ids * 1.5, "city": [f"c{i % 3}" for i in ids]})


@pytest.fixture
def table(tmp_path: Path) -> str:
    uri = str(tmp_path / "listings")
    assert data.write_table(_frame(0, 10), uri) == 0
    assert data.write_table(_frame(10, 5), uri) == 1
    return uri


def test_versions_read_back_exactly(table: str) -> None:
    v0 = data.read_table(table, version=0)
    latest = data.read_table(table)
    assert len(v0) == 10 and len(latest) == 15
    pd.testing.assert_frame_equal(v0.sort_values("id").reset_index(drop=True), _frame(0, 10))
    assert sorted(latest["id"]) == list(range(15))


def test_read_as_arrow_and_selected_columns(table: str) -> None:
    arrow = data.read_table(table, version=1, columns=["id"], as_arrow=True)
    assert isinstance(arrow, pa.Table)
    assert arrow.column_names == ["id"] and arrow.num_rows == 15


def test_unknown_column_is_named(table: str) -> None:
    with pytest.raises(InvalidParameterError, match=r"no column\(s\) bedrooms"):
        data.read_table(table, columns=["id", "bedrooms"])


def test_overwrite_keeps_older_versions_readable(table: str) -> None:
    assert data.write_table(_frame(100, 2), table, mode="overwrite") == 2
    assert sorted(data.read_table(table)["id"]) == [100, 101]
    assert len(data.read_table(table, version=1)) == 15


def test_mismatched_schema_is_refused_naming_each_column(table: str) -> None:
    bad = pd.DataFrame({"id": ["x"], "rooms": [3]})
    with pytest.raises(SchemaMismatchError) as caught:
        data.write_table(bad, table)
    message = str(caught.value)
    assert "column 'id': the table has long, the data has string" in message
    assert "column 'rooms' (long) is not in the table" in message
    assert "column 'price' (double) is missing" in message
    assert "column 'city' (string) is missing" in message
    assert "version 1, unchanged" in message
    assert data.table_info(table).version == 1
    assert len(data.read_table(table)) == 15


def test_lossless_widening_is_accepted(table: str) -> None:
    narrow = pd.DataFrame(
        {
            "id": pd.array([50], dtype="int32"),
            "price": pd.array([2.5], dtype="float32"),
            "city": ["c9"],
        }
    )
    assert data.write_table(narrow, table) == 2
    read = data.read_table(table)
    assert read["id"].dtype == np.int64 and 50 in set(read["id"])


def test_lossy_narrowing_is_refused(table: str) -> None:
    frame = _frame(0, 1).astype({"id": "float64"})
    with pytest.raises(SchemaMismatchError, match="column 'id': the table has long, the data has"):
        data.write_table(frame, table)


def test_merge_adds_new_columns(table: str) -> None:
    wider = _frame(20, 2).assign(rooms=[2, 3])
    with pytest.raises(SchemaMismatchError, match='schema_mode="merge"'):
        data.write_table(wider, table)
    assert data.write_table(wider, table, schema_mode="merge") == 2
    read = data.read_table(table)
    assert read["rooms"].isna().sum() == 15 and set(read["rooms"].dropna()) == {2, 3}


def test_history_lists_commits_newest_first(table: str) -> None:
    data.write_table(_frame(0, 1), table, mode="overwrite")
    commits = data.history(table)
    assert [c.version for c in commits] == [2, 1, 0]
    assert commits[0].parameters["mode"] == "Overwrite"
    assert commits[1].metrics["num_added_rows"] == 5
    assert all(c.user for c in commits) and commits[0].run_id is None
    assert [c.version for c in data.history(table, limit=1)] == [2]


def test_read_by_timestamp(table: str) -> None:
    before = data.history(table)[0].time
    time.sleep(0.05)
    data.write_table(_frame(50, 1), table)
    assert len(data.read_table(table, timestamp=before)) == 15
    assert len(data.read_table(table, timestamp=before.isoformat())) == 15
    assert len(data.read_table(table, timestamp=dt.datetime.now(dt.UTC))) == 16


def test_timestamp_before_the_table_existed(table: str) -> None:
    with pytest.raises(TableVersionError, match="did not exist at 2001-01-01"):
        data.read_table(table, timestamp="2001-01-01T00:00:00+00:00")
    with pytest.raises(InvalidParameterError, match="ISO 8601"):
        data.read_table(table, timestamp="yesterday")
    with pytest.raises(InvalidParameterError, match="not both"):
        data.read_table(table, version=0, timestamp="2001-01-01")


def test_restore_commits_old_content_as_a_new_version(table: str) -> None:
    assert data.restore(table, 0) == 2
    assert len(data.read_table(table)) == 10
    assert len(data.read_table(table, version=1)) == 15  # nothing lost
    assert data.history(table, limit=1)[0].operation == "RESTORE"
    assert data.table_info(table, 2).content_digest == data.table_info(table, 0).content_digest
    with pytest.raises(TableVersionError, match=r"has no version 7; its latest is 2"):
        data.restore(table, 7)
    with pytest.raises(InvalidParameterError, match="non-negative integer"):
        data.restore(table, -1)


def test_missing_version(table: str) -> None:
    with pytest.raises(TableVersionError, match="has no version 9; its latest version is 1"):
        data.read_table(table, version=9)
    with pytest.raises(InvalidParameterError, match="non-negative integer"):
        data.read_table(table, version=-2)


def test_vacuumed_version_is_reported(table: str) -> None:
    from deltalake import DeltaTable

    data.write_table(_frame(0, 1), table, mode="overwrite")
    DeltaTable(table).vacuum(retention_hours=0, enforce_retention_duration=False, dry_run=False)
    with pytest.raises(TableVersionError, match="vacuumed"):
        data.read_table(table, version=0)
    assert len(data.read_table(table)) == 1


def test_non_delta_paths(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "data.csv").write_text("a\n1\n")
    with pytest.raises(TableNotFoundError, match="not a Delta table"):
        data.read_table(plain)
    with pytest.raises(TableNotFoundError, match="no _delta_log"):
        data.write_table(_frame(0, 1), plain)
    assert sorted(p.name for p in plain.iterdir()) == ["data.csv"]
    with pytest.raises(TableNotFoundError, match="is a file"):
        data.read_table(plain / "data.csv")
    with pytest.raises(TableNotFoundError, match="not a Delta table"):
        data.history(tmp_path / "missing")


def test_bad_arguments(table: str) -> None:
    with pytest.raises(InvalidParameterError, match="mode must be"):
        data.write_table(_frame(0, 1), table, mode="upsert")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="schema_mode must be"):
        data.write_table(_frame(0, 1), table, schema_mode="overwrite")  # type: ignore[arg-type]
    with pytest.raises(InvalidParameterError, match="pandas DataFrame or an Arrow table"):
        data.write_table([{"id": 1}], table)  # type: ignore[arg-type]


def test_table_info_comes_from_the_log(table: str) -> None:
    info = data.table_info(table, 0)
    assert (info.version, info.num_rows, info.num_files) == (0, 10, 1)
    assert info.schema == {"id": "long", "price": "double", "city": "string"}
    assert info.name == "listings" and info.size_bytes > 0 and info.timestamp_ms
    later = data.table_info(table)
    assert later.num_rows == 15 and later.schema_hash == info.schema_hash
    assert later.digest != info.digest and later.content_digest != info.content_digest


_APPENDER = """
import sys
import numpy as np
import pandas as pd
from cairn import data

uri, worker = sys.argv[1], int(sys.argv[2])
for n in range(15):
    ids = np.arange(worker * 100_000 + n * 7, worker * 100_000 + n * 7 + 7)
    frame = pd.DataFrame({"id": ids, "price": ids * 1.5, "city": [f"c{i % 3}" for i in ids]})
    data.write_table(frame, uri)
"""


def test_concurrent_appends_from_two_processes_lose_nothing(tmp_path: Path) -> None:
    uri = str(tmp_path / "shared")
    data.write_table(_frame(-1, 1), uri)
    workers = [
        subprocess.Popen([sys.executable, "-c", _APPENDER, uri, str(w)], stderr=subprocess.PIPE)
        for w in range(2)
    ]
    for process in workers:
        _, err = process.communicate(timeout=120)
        assert process.returncode == 0, err.decode()
    table = data.read_table(uri)
    assert len(table) == 1 + 2 * 15 * 7
    assert table["id"].is_unique
    assert data.table_info(uri).version == 30
