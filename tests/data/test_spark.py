"""``read_table_spark``: a Spark DataFrame over exactly one version's files, recorded in runs."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import deltalake
import pandas as pd
import pyarrow as pa
import pytest

import cairn
from cairn import data
from cairn.data.pins import PINS_ENV, encode_pins
from cairn.data.spark import read_table_spark
from cairn.errors import (
    InvalidParameterError,
    InvalidStateError,
    TableNotFoundError,
    TableVersionError,
)

if TYPE_CHECKING:
    from pathlib import Path

slow = pytest.mark.slow
no_pandas_warning = pytest.mark.filterwarnings(
    "ignore:PySpark does not yet fully support pandas:FutureWarning"
)


def _frame(start: int, count: int, day: dt.date = dt.date(2024, 3, 1)) -> pd.DataFrame:
    ids = range(start, start + count)
    return pd.DataFrame(
        {
            "id": pd.array(ids, dtype="int64"),
            "city": [None if i % 5 == 0 else f"city {i % 3}" for i in ids],
            "price": [None if i % 7 == 0 else i * 1.5 for i in ids],
            "day": [day + dt.timedelta(days=i % 2) for i in ids],
        }
    )


def _rows_spark(frame: Any) -> list[dict[str, Any]]:
    return sorted((row.asDict() for row in frame.collect()), key=lambda row: row["id"])


def _rows_delta(uri: str, version: int) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = data.read_table(uri, version=version, as_arrow=True).to_pylist()
    return sorted(rows, key=lambda row: row["id"])


def _assert_every_version_matches(spark: Any, uri: str) -> int:
    """Each version reads the same from Spark as from delta-rs, row for row; returns the count."""
    latest = data.history(uri)[0].version
    for version in range(latest + 1):
        frame = read_table_spark(spark, uri, version)
        assert frame.columns == list(data.table_info(uri, version).schema), f"version {version}"
        assert _rows_spark(frame) == _rows_delta(uri, version), f"version {version}"
    return latest + 1


@slow
@no_pandas_warning
def test_every_version_of_a_table_equals_read_table(spark: Any, tmp_path: Path) -> None:
    uri = str(tmp_path / "listings")
    assert data.write_table(_frame(0, 40), uri) == 0
    assert data.write_table(_frame(40, 25), uri) == 1
    merged = _frame(65, 10).assign(rooms=pd.array(range(10), dtype="int64"))
    assert data.write_table(merged, uri, schema_mode="merge") == 2  # a column appears
    assert data.write_table(_frame(100, 7).assign(rooms=3), uri, mode="overwrite") == 3
    assert data.write_table(_frame(200, 5).assign(rooms=1), uri) == 4
    assert data.restore(uri, 1) == 5
    assert _assert_every_version_matches(spark, uri) == 6
    # Spot checks that the versions really differ, and old files get null for the new column.
    assert read_table_spark(spark, uri, 1).count() == 65
    assert read_table_spark(spark, uri, 2).where("rooms IS NULL").count() == 65
    assert read_table_spark(spark, uri, 3).count() == 7
    assert read_table_spark(spark, uri).count() == 65  # latest: the restored version 1


@slow
@no_pandas_warning
def test_partitioned_table_brings_partition_columns_back(spark: Any, tmp_path: Path) -> None:
    uri = str(tmp_path / "sales")
    first = _frame(0, 30)
    first["city"] = [["north", "south", "odd/=% *[x]{", None][i % 4] for i in range(30)]
    deltalake.write_deltalake(uri, first, partition_by=["city", "day"])
    second = _frame(30, 12)
    second["city"] = "north"
    assert data.write_table(second, uri) == 1
    assert data.write_table(first.head(5), uri, mode="overwrite") == 2
    assert _assert_every_version_matches(spark, uri) == 3
    frame = read_table_spark(spark, uri, 1)
    assert dict(frame.dtypes) == {
        "id": "bigint",
        "city": "string",
        "price": "double",
        "day": "date",
    }
    by_city = {row["city"]: row["count"] for row in frame.groupBy("city").count().collect()}
    assert by_city == {"north": 8 + 12, "south": 8, "odd/=% *[x]{": 7, None: 7}
    pruned = read_table_spark(spark, uri, 1, columns=["day", "city"]).where("city = 'south'")
    assert pruned.columns == ["day", "city"] and pruned.count() == 8


@slow
@no_pandas_warning
def test_an_empty_table_keeps_its_schema(spark: Any, tmp_path: Path) -> None:
    uri = str(tmp_path / "empty")
    schema = pa.schema([("id", pa.int64()), ("city", pa.string()), ("day", pa.date32())])
    deltalake.DeltaTable.create(uri, schema, partition_by=["day"])
    frame = read_table_spark(spark, uri, 0)
    assert frame.count() == 0
    assert frame.dtypes == [("id", "bigint"), ("city", "string"), ("day", "date")]
    data.write_table(pa.table({"id": [1], "city": ["x"], "day": [dt.date(2024, 1, 1)]}), uri)
    assert _rows_spark(read_table_spark(spark, uri)) == [
        {"id": 1, "city": "x", "day": dt.date(2024, 1, 1)}
    ]


@slow
@no_pandas_warning
def test_a_read_in_a_run_is_recorded_and_pins_are_honoured(
    spark: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    uri = str(tmp_path / "listings")
    data.write_table(_frame(0, 20), uri)
    data.write_table(_frame(20, 5), uri)
    with cairn.start_run() as run:
        assert read_table_spark(spark, uri, 0).count() == 20
        monkeypatch.setenv(PINS_ENV, encode_pins({uri: 0}))
        assert read_table_spark(spark, uri).count() == 20  # pinned, not the latest (25 rows)
        assert read_table_spark(spark, uri, 1).count() == 25  # a named version wins
    inputs = sorted(data.table_inputs(cairn.get_run(run.info.run_id)), key=lambda t: t.version)
    assert [(t.uri, t.version, t.role, t.num_rows) for t in inputs] == [
        (uri, 0, "input", 20),
        (uri, 1, "input", 25),
    ]
    assert inputs[0].digest == data.table_info(uri, 0).digest  # the same record read_table makes
    monkeypatch.delenv(PINS_ENV)
    read_table_spark(spark, uri)
    assert len(data.table_inputs(cairn.get_run(run.info.run_id))) == 2  # no run, nothing recorded


@slow
@no_pandas_warning
def test_bad_tables_and_versions_are_refused_clearly(spark: Any, tmp_path: Path) -> None:
    uri = str(tmp_path / "listings")
    data.write_table(_frame(0, 10), uri)
    data.write_table(_frame(10, 10), uri, mode="overwrite")
    with pytest.raises(TableVersionError, match="has no version 9; its latest version is 1"):
        read_table_spark(spark, uri, 9)
    with pytest.raises(InvalidParameterError, match="version 1 has no column"):
        read_table_spark(spark, uri, columns=["id", "nope"])
    with pytest.raises(TableNotFoundError, match="is not a Delta table"):
        read_table_spark(spark, tmp_path)
    # Version 0's only file removed, as VACUUM does once it is overwritten.
    (gone,) = set(_files(uri, 0)) - set(_files(uri, 1))
    os.remove(gone)
    with pytest.raises(TableVersionError, match=r"data files of .* at version 0 are gone"):
        read_table_spark(spark, uri, 0)
    assert read_table_spark(spark, uri, 1).count() == 10


def _files(uri: str, version: int) -> list[str]:
    return list(deltalake.DeltaTable(uri, version=version).file_uris())


@slow
def test_tables_whose_files_alone_are_not_the_rows_are_refused(spark: Any, tmp_path: Path) -> None:
    deletions = tmp_path / "with-deletion-vectors"
    data.write_table(_frame(0, 5), deletions)
    # What enabling deletion vectors on a Delta table commits (e.g. from Databricks).
    protocol = {
        "minReaderVersion": 3,
        "minWriterVersion": 7,
        "readerFeatures": ["deletionVectors"],
        "writerFeatures": ["deletionVectors"],
    }
    commit = deletions / "_delta_log" / f"{1:020d}.json"
    commit.write_text(
        json.dumps({"protocol": protocol})
        + "\n"
        + json.dumps({"commitInfo": {"timestamp": 1, "operation": "SET TBLPROPERTIES"}})
        + "\n"
    )
    with pytest.raises(
        InvalidStateError, match=r"uses deletion vectors .* cairn\.data\.read_table"
    ):
        read_table_spark(spark, deletions)
    assert read_table_spark(spark, deletions, 0).count() == 5  # before the upgrade: fine
    mapped = tmp_path / "with-column-mapping"
    deltalake.DeltaTable.create(
        str(mapped),
        pa.schema([("id", pa.int64())]),
        configuration={"delta.columnMapping.mode": "name"},
    )
    with pytest.raises(InvalidStateError, match="uses column mapping"):
        read_table_spark(spark, mapped)


def test_import_cairn_data_does_not_load_pyspark() -> None:
    code = (
        "import sys, cairn.data\n"
        "assert callable(cairn.data.read_table_spark)\n"
        "assert 'pyspark' not in sys.modules and 'deltalake' not in sys.modules, 'loaded'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
