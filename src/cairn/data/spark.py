"""Read one version of a Delta table from Spark: a DataFrame over exactly that version's files.

The Delta log (read on the driver through delta-rs) says which Parquet files make up the
version and what its schema is; Spark's own Parquet reader reads those files on the
executors, so the read scales with the cluster and needs no Delta connector on the JVM.
``pyspark`` is imported only when a read happens.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cairn.data import delta
from cairn.data.lineage import current_run_id, record
from cairn.data.pins import pinned_version
from cairn.data.snapshot import describe
from cairn.data.tables import _uri
from cairn.errors import InvalidParameterError, InvalidStateError, TableVersionError

if TYPE_CHECKING:
    import os
    from collections.abc import Sequence

    from deltalake import DeltaTable
    from pyspark.sql import DataFrame, SparkSession

__all__ = ["read_table_spark"]

# Reader features that change what a data file's rows mean: reading the files alone would be wrong.
_UNSUPPORTED_FEATURES = {
    "deletionVectors": "deletion vectors (rows deleted without rewriting their files)",
    "columnMapping": "column mapping (Parquet column names differ from the table's)",
}


def _quoted(name: str) -> str:
    """A column name as Spark's ``select`` takes it literally (dots and backticks included)."""
    return "`" + name.replace("`", "``") + "`"


def _check_readable(table: DeltaTable, uri: str) -> None:
    """Refuse tables whose data files alone do not give the version's rows."""
    features = set(table.protocol().reader_features or ())
    mode = table.metadata().configuration.get("delta.columnMapping.mode", "none")
    if mode != "none":
        features.add("columnMapping")
    found = [text for feature, text in _UNSUPPORTED_FEATURES.items() if feature in features]
    if found:
        raise InvalidStateError(
            f"{uri} version {table.version()} uses {' and '.join(found)}, which a Parquet read "
            "of its files cannot honour; read it with cairn.data.read_table, or with the "
            "delta-spark connector"
        )


def _check_layout(files: Sequence[str], uri: str, partition_columns: Sequence[str]) -> None:
    """Spark finds partition values in ``col=value/`` folders: every file must be laid out so."""
    expected = sorted(partition_columns)
    prefix = uri.rstrip("/") + "/"
    for path in files:
        folders = path[len(prefix) :].split("/")[:-1] if path.startswith(prefix) else None
        names = sorted(folder.partition("=")[0] for folder in folders or () if "=" in folder)
        if folders is None or names != expected or len(folders) != len(expected):
            raise InvalidStateError(
                f"{uri} is partitioned by {', '.join(partition_columns)} but its data file "
                f"{path} is not under {'/'.join(f'{c}=...' for c in partition_columns)}/ "
                "folders, which Spark needs to find the partition values; read it with "
                "cairn.data.read_table"
            )


def _parquet(reader: Any, files: Sequence[str], uri: str, version: int) -> Any:
    """Spark's Parquet read of ``files``; files gone since the commit are a TableVersionError."""
    from pyspark.errors import AnalysisException

    try:
        return reader.parquet(*files)
    except AnalysisException as exc:
        if exc.getCondition() != "PATH_NOT_FOUND":
            raise
        raise TableVersionError(
            f"The data files of {uri} at version {version} are gone (the version was vacuumed "
            f"or files were deleted): {str(exc).splitlines()[0]}"
        ) from None


def read_table_spark(
    spark: SparkSession,
    uri: str | os.PathLike[str],
    version: int | None = None,
    *,
    columns: Sequence[str] | None = None,
) -> DataFrame:
    """A Spark DataFrame of one version of a Delta table, read by Spark's Parquet reader.

    Args:
        spark: the session to read with.
        uri: the table's folder or object-store URI (as Spark's file system sees it too).
        version: the version to read; default the version ``cairn runs reproduce`` pinned,
            else the latest.
        columns: only these columns.

    The DataFrame covers exactly the version's data files, with the table's schema (so an
    empty table, and partition columns, come back as Delta declares them). Inside a run the
    version is recorded as an input of the run, described from the Delta log: no data is
    read on the driver.
    """
    from pyspark.sql.types import StructType

    target = _uri(uri)
    if version is None:
        version = pinned_version(target)
    table = delta.open_table(target, version=version)
    _check_readable(table, target)
    schema = StructType.fromJson(json.loads(table.schema().to_json()))
    if columns is not None:
        missing = [c for c in columns if c not in schema.fieldNames()]
        if missing:
            raise InvalidParameterError(
                f"{target} version {table.version()} has no column(s) {', '.join(missing)}"
            )
    files = delta.file_uris(table, target)
    frame: DataFrame
    if not files:
        frame = spark.createDataFrame([], schema)
    else:
        reader = spark.read.schema(schema)
        partition_columns = list(table.metadata().partition_columns)
        if partition_columns:
            _check_layout(files, target, partition_columns)
            reader = reader.option("basePath", target)
        frame = _parquet(reader, files, target, table.version())
    # Spark puts partition columns last; give the columns back in the table's order.
    names = schema.fieldNames() if columns is None else list(columns)
    frame = frame.select(*(_quoted(name) for name in names))
    run_id = current_run_id()
    if run_id is not None:
        record(describe(table, target), "input", run_id=run_id)
    return frame
