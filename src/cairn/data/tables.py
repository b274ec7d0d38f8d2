"""Versioned tables: write with schema enforcement, read any version, history and restore.

Reads and writes inside a run are recorded on it (see ``cairn.data.lineage``); a read without
an explicit version honours ``cairn runs reproduce``'s pins (``cairn.data.pins``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from cairn.data import delta
from cairn.data.lineage import current_run_id, record
from cairn.data.pins import pinned_version
from cairn.data.snapshot import TableSnapshot, describe
from cairn.errors import InvalidParameterError, SchemaMismatchError, TableNotFoundError

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    import pandas as pd
    import pyarrow as pa

__all__ = [
    "Commit",
    "history",
    "read_table",
    "restore",
    "table_info",
    "write_table",
]

RUN_ID_KEY = "cairn.run_id"  # commit metadata: the run that made the commit
USER_KEY = "userName"  # the Delta protocol's commitInfo user field

# Lossless widenings applied to incoming columns before the schema check.
_WIDENINGS = {
    ("byte", "short"),
    ("byte", "integer"),
    ("byte", "long"),
    ("short", "integer"),
    ("short", "long"),
    ("integer", "long"),
    ("byte", "double"),
    ("short", "double"),
    ("integer", "double"),
    ("float", "double"),
}

_ARROW = {
    "short": lambda: _pa().int16(),
    "integer": lambda: _pa().int32(),
    "long": lambda: _pa().int64(),
    "double": lambda: _pa().float64(),
}


def _pa() -> Any:
    import pyarrow

    return pyarrow


@dataclass(frozen=True, slots=True)
class Commit:
    """One entry of a table's transaction history."""

    version: int
    timestamp_ms: int
    operation: str
    user: str | None = None
    run_id: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    metrics: Mapping[str, Any] = field(default_factory=dict)

    @property
    def time(self) -> dt.datetime:
        return dt.datetime.fromtimestamp(self.timestamp_ms / 1000, dt.UTC)

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "timestamp_ms": self.timestamp_ms,
            "time": self.time.isoformat(),
            "operation": self.operation,
            "user": self.user,
            "run_id": self.run_id,
            "parameters": dict(self.parameters),
            "metrics": dict(self.metrics),
        }


def _commit(entry: Mapping[str, Any]) -> Commit:
    return Commit(
        version=int(entry["version"]),
        timestamp_ms=int(entry.get("timestamp") or 0),
        operation=str(entry.get("operation", "")),
        user=entry.get(USER_KEY),
        run_id=entry.get(RUN_ID_KEY),
        parameters=dict(entry.get("operationParameters") or {}),
        metrics=dict(entry.get("operationMetrics") or {}),
    )


def _uri(uri: str | os.PathLike[str]) -> str:
    text = delta.normalize_uri(uri)
    if "://" not in text and os.path.exists(text) and not os.path.isdir(text):
        raise TableNotFoundError(f"{text} is a file, not a Delta table folder")
    return text


def _require_table(uri: str) -> None:
    """Refuse a local folder that exists but is not a Delta table (never write into one)."""
    if "://" in uri or not os.path.isdir(uri):
        return
    if not os.path.isdir(os.path.join(uri, "_delta_log")) and any(os.scandir(uri)):
        raise TableNotFoundError(
            f"{uri} is a folder with files but no _delta_log: not a Delta table; "
            "write to an empty or new path"
        )


def _to_arrow(data: Any) -> pa.Table:
    import pyarrow as pa

    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    module = type(data).__module__
    if module.startswith("pandas"):
        return pa.Table.from_pandas(data, preserve_index=False)
    if hasattr(data, "__arrow_c_stream__"):
        return pa.table(data)
    raise InvalidParameterError(
        f"write_table takes a pandas DataFrame or an Arrow table, got {type(data).__name__}"
    )


def _conform(
    data: pa.Table, table_fields: Mapping[str, str], uri: str, version: int, merge: bool
) -> pa.Table:
    """Widen lossless columns to the table's types; refuse the rest naming every column."""
    incoming = delta.delta_schema_fields(data.schema)
    problems: list[str] = []
    for name, kind in incoming.items():
        expected = table_fields.get(name)
        if expected is None:
            if not merge:
                problems.append(
                    f"column '{name}' ({kind}) is not in the table "
                    '(pass schema_mode="merge" to add it)'
                )
        elif kind != expected:
            if (kind, expected) in _WIDENINGS:
                index = data.schema.get_field_index(name)
                data = data.set_column(index, name, data.column(index).cast(_ARROW[expected]()))
            else:
                problems.append(f"column '{name}': the table has {expected}, the data has {kind}")
    if not merge:
        problems.extend(
            f"column '{name}' ({kind}) is missing from the data"
            for name, kind in table_fields.items()
            if name not in incoming
        )
    if problems:
        raise SchemaMismatchError(
            f"Data does not match the schema of {uri} (version {version}, unchanged): "
            + "; ".join(problems)
        )
    return data


def _metadata() -> dict[str, str]:
    metadata = {}
    with contextlib.suppress(KeyError, OSError):  # no passwd entry (some containers)
        metadata[USER_KEY] = getpass.getuser()
    run_id = current_run_id()
    if run_id:
        metadata[RUN_ID_KEY] = run_id
    return metadata


def write_table(
    data: pd.DataFrame | pa.Table,
    uri: str | os.PathLike[str],
    *,
    mode: Literal["append", "overwrite"] = "append",
    schema_mode: Literal["merge"] | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> int:
    """Commit ``data`` to the Delta table at ``uri`` and return the new version.

    Args:
        data: a pandas DataFrame or an Arrow table.
        uri: a local folder or an object-store URI; created on the first write.
        mode: ``append`` adds rows; ``overwrite`` replaces the content (older versions stay
            readable until vacuumed).
        schema_mode: ``None`` refuses data whose columns differ from the table's (the error
            names each differing column and the table keeps its version); ``"merge"`` adds new
            columns.
        storage_options: credentials and options for object stores.

    Inside a run, the written version is recorded as an output of the run, and the commit
    carries the run id and user.
    """
    if mode not in ("append", "overwrite"):
        raise InvalidParameterError(f"mode must be 'append' or 'overwrite', got {mode!r}")
    if schema_mode not in (None, "merge"):
        raise InvalidParameterError(f"schema_mode must be None or 'merge', got {schema_mode!r}")
    target = _uri(uri)
    _require_table(target)
    arrow = _to_arrow(data)
    current = delta.open_if_exists(target, storage_options)
    if current is not None:
        fields = delta.delta_schema_fields(current.schema())
        arrow = _conform(arrow, fields, target, current.version(), merge=schema_mode == "merge")
    metadata = _metadata()
    version = delta.write(
        target,
        arrow,
        mode=mode,
        schema_mode=schema_mode,
        metadata=metadata,
        storage_options=storage_options,
        table=current,
    )
    if RUN_ID_KEY in metadata:
        snapshot = describe(
            delta.open_table(target, version, storage_options=storage_options), target
        )
        record(snapshot, "output", run_id=metadata[RUN_ID_KEY])
    return version


def _timestamp(value: dt.datetime | str) -> dt.datetime:
    if isinstance(value, dt.datetime):
        return value
    try:
        return dt.datetime.fromisoformat(value)
    except ValueError:
        raise InvalidParameterError(
            f"timestamp must be a datetime or an ISO 8601 string, got {value!r}"
        ) from None


def read_table(
    uri: str | os.PathLike[str],
    *,
    version: int | None = None,
    timestamp: dt.datetime | str | None = None,
    columns: Sequence[str] | None = None,
    as_arrow: bool = False,
    storage_options: Mapping[str, str] | None = None,
) -> Any:
    """Read one version of a Delta table as a pandas DataFrame (or an Arrow table).

    Args:
        uri: the table's folder or object-store URI.
        version: the version to read; default the version ``cairn runs reproduce`` pinned,
            else the latest.
        timestamp: read the last version committed at or before this time instead.
        columns: only these columns.
        as_arrow: return a ``pyarrow.Table`` instead of a DataFrame.
        storage_options: credentials and options for object stores.

    Inside a run, the version read (URI, version, schema hash, row count, content digest)
    is recorded as an input of the run.
    """
    if version is not None and timestamp is not None:
        raise InvalidParameterError("Pass version or timestamp, not both")
    target = _uri(uri)
    if version is None and timestamp is None:
        version = pinned_version(target)
    table = delta.open_table(
        target,
        version=version,
        timestamp=_timestamp(timestamp) if timestamp is not None else None,
        storage_options=storage_options,
    )
    if columns is not None:
        missing = [c for c in columns if c not in delta.delta_schema_fields(table.schema())]
        if missing:
            raise InvalidParameterError(
                f"{target} version {table.version()} has no column(s) {', '.join(missing)}"
            )
    arrow = delta.scan(table, target, columns)
    run_id = current_run_id()
    if run_id is not None:
        record(describe(table, target), "input", run_id=run_id)
    return arrow if as_arrow else arrow.to_pandas()


def table_info(
    uri: str | os.PathLike[str],
    version: int | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> TableSnapshot:
    """Describe a version (default latest) from the Delta log: rows, files, schema, digest."""
    target = _uri(uri)
    table = delta.open_table(target, version=version, storage_options=storage_options)
    snapshot = describe(table, target)
    latest = table if version is None else delta.open_table(target, storage_options=storage_options)
    for entry in delta.commit_history(latest, latest.version() - snapshot.version + 1):
        if int(entry["version"]) == snapshot.version:
            stamp = entry.get("timestamp")
            return replace(snapshot, timestamp_ms=int(stamp) if stamp else None)
    return snapshot


def history(
    uri: str | os.PathLike[str],
    limit: int | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> list[Commit]:
    """The table's commits, newest first: version, time, operation, user and run."""
    target = _uri(uri)
    table = delta.open_table(target, storage_options=storage_options)
    return [_commit(entry) for entry in delta.commit_history(table, limit)]


def restore(uri: str | os.PathLike[str], version: int) -> int:
    """Commit a new version whose content is ``version``'s; returns the new version.

    Nothing is lost: the versions in between stay in the history and readable.
    """
    target = _uri(uri)
    if isinstance(version, bool) or not isinstance(version, int) or version < 0:
        raise InvalidParameterError(f"A table version is a non-negative integer, got {version!r}")
    metadata = _metadata()
    new_version = delta.restore_version(target, version, metadata)
    if RUN_ID_KEY in metadata:
        record(
            describe(delta.open_table(target, new_version), target),
            "output",
            run_id=metadata[RUN_ID_KEY],
        )
    return new_version
