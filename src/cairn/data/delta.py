"""The one module that talks to ``deltalake`` (delta-rs): open, write, scan, history, restore.

Every delta-rs error is translated to Cairn's at this boundary, so callers see
``TableNotFoundError``, ``TableVersionError``, ``SchemaMismatchError`` or
``CommitConflictError`` with the table's URI in the message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import uuid
from typing import TYPE_CHECKING, Any, Literal

from cairn.errors import (
    CairnError,
    CommitConflictError,
    InvalidParameterError,
    SchemaMismatchError,
    StoreError,
    TableNotFoundError,
    TableVersionError,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    import pyarrow as pa
    from deltalake import DeltaTable

__all__ = [
    "WriteMode",
    "add_actions",
    "commit_history",
    "delta_schema_fields",
    "file_uris",
    "head",
    "normalize_uri",
    "open_if_exists",
    "open_table",
    "restore_version",
    "scan",
    "write",
]

WriteMode = Literal["append", "overwrite"]

# Concurrent appends are retried inside delta-rs; these are the attempts Cairn adds on top for
# the conflicts delta-rs gives up on (e.g. two writers racing on a brand-new table).
_COMMIT_ATTEMPTS = 5
_COMMIT_MARKER = "cairn.commit_id"


def normalize_uri(uri: str | os.PathLike[str]) -> str:
    """Local paths become absolute (``file://`` stripped); object-store URIs stay as given."""
    text = os.fspath(uri)
    if text.startswith("file://"):
        text = text[len("file://") :]
    if "://" in text:
        return text.rstrip("/")
    return os.path.abspath(os.path.expanduser(text))


@contextlib.contextmanager
def _translated(uri: str, version: int | None = None) -> Iterator[None]:
    """Turn delta-rs and filesystem errors into Cairn's, naming the table and version."""
    from deltalake import exceptions as dx

    at = f" at version {version}" if version is not None else ""
    try:
        yield
    except CairnError:
        raise
    except dx.TableNotFoundError:
        raise TableNotFoundError(
            f"{uri} is not a Delta table (no _delta_log with commits found there)"
        ) from None
    except dx.SchemaMismatchError as exc:
        raise SchemaMismatchError(f"Data does not match the schema of {uri}: {exc}") from None
    except dx.CommitFailedError as exc:
        raise CommitConflictError(
            f"Commit to {uri} conflicted with a concurrent writer and was not applied: {exc}. "
            "Re-read the table and retry."
        ) from None
    except FileNotFoundError as exc:
        raise TableVersionError(
            f"The data files of {uri}{at} are gone (the version was vacuumed or files were "
            f"deleted): {str(exc).splitlines()[0]}"
        ) from None
    except dx.DeltaError as exc:
        message = str(exc)
        if version is not None and ("version" in message.lower() or "log segment" in message):
            raise TableVersionError(
                f"{uri} has no version {version}: {message.splitlines()[0]}"
            ) from None
        raise StoreError(f"Delta table {uri}{at}: {message.splitlines()[0]}") from None


def open_if_exists(uri: str, storage_options: Mapping[str, str] | None = None) -> DeltaTable | None:
    """The table at its latest version, or None when nothing is committed at ``uri`` yet."""
    from deltalake import DeltaTable

    options = dict(storage_options or {}) or None
    with _translated(uri):
        if not DeltaTable.is_deltatable(uri, options):
            return None
    return open_table(uri, storage_options=storage_options)


def open_table(
    uri: str,
    version: int | None = None,
    timestamp: dt.datetime | None = None,
    storage_options: Mapping[str, str] | None = None,
) -> DeltaTable:
    """The table at ``version`` (or the last commit at or before ``timestamp``, or the latest)."""
    from deltalake import DeltaTable

    if version is not None and (isinstance(version, bool) or version < 0):
        raise InvalidParameterError(f"A table version is a non-negative integer, got {version!r}")
    options = dict(storage_options or {})
    try:
        with _translated(uri, version):
            table = DeltaTable(uri, version=version, storage_options=options)
    except TableVersionError:
        with _translated(uri):
            latest = DeltaTable(uri, storage_options=options).version()
        if version is not None and version > latest:
            raise TableVersionError(
                f"{uri} has no version {version}; its latest version is {latest}"
            ) from None
        raise TableVersionError(
            f"{uri} version {version} cannot be loaded: its log was cleaned up "
            f"(the oldest versions are gone); the latest version is {latest}"
        ) from None
    if timestamp is not None:
        _load_at(table, uri, timestamp)
    return table


def _load_at(table: DeltaTable, uri: str, timestamp: dt.datetime) -> None:
    if timestamp.tzinfo is None:
        timestamp = timestamp.astimezone()  # naive means local time, as users type it
    first = commit_history(table)[-1]  # the table is still at its latest version here
    first_at = dt.datetime.fromtimestamp(first["timestamp"] / 1000, dt.UTC)
    if timestamp < first_at:
        raise TableVersionError(
            f"{uri} did not exist at {timestamp.isoformat()}; its first commit (version "
            f"{first['version']}) is at {first_at.isoformat()}"
        )
    with _translated(uri):
        table.load_as_version(timestamp)


def scan(table: DeltaTable, uri: str, columns: Sequence[str] | None = None) -> pa.Table:
    """Read the table's current version into Arrow, optionally only some columns."""
    with _translated(uri, table.version()):
        return table.to_pyarrow_table(columns=list(columns) if columns is not None else None)


def head(table: DeltaTable, uri: str, rows: int) -> pa.Table:
    """Up to ``rows`` rows of the table's current version, opening only the files needed.

    Through delta-rs's own query engine: ``pyarrow.dataset`` would import pandas (~1 s).
    """
    import pyarrow as pa
    from deltalake import QueryBuilder

    with _translated(uri, table.version()):
        query = QueryBuilder().register("head", table)
        result = query.execute(f"SELECT * FROM head LIMIT {int(rows)}")
        return pa.RecordBatchReader.from_stream(result).read_all()


def add_actions(table: DeltaTable, uri: str) -> pa.Table:
    """One row per live data file: path, size_bytes, num_records and per-column statistics."""
    import pyarrow as pa

    with _translated(uri, table.version()):
        # Through the C stream, not pa.table(): that one imports pandas to rule out a DataFrame.
        return pa.RecordBatchReader.from_stream(table.get_add_actions(flatten=True)).read_all()


def file_uris(table: DeltaTable, uri: str) -> list[str]:
    with _translated(uri, table.version()):
        return list(table.file_uris())


def delta_schema_fields(schema: Any) -> dict[str, str]:
    """Column name -> Delta type name, for a Delta schema or an Arrow schema."""
    import deltalake

    if not isinstance(schema, deltalake.Schema):
        schema = deltalake.Schema.from_arrow(schema)
    return {field.name: _type_name(field.type) for field in schema.fields}


def _type_name(delta_type: Any) -> str:
    kind = getattr(delta_type, "type", None)
    if isinstance(kind, str) and kind not in ("struct", "array", "map"):
        return kind
    return str(delta_type)


def commit_history(table: DeltaTable, limit: int | None = None) -> list[dict[str, Any]]:
    """The table's commits, newest first, as delta-rs reports them.

    Only meaningful on a table loaded at its latest version: delta-rs numbers the entries
    down from the loaded version.
    """
    with _translated(table.table_uri):
        return list(table.history(limit))


def write(
    uri: str,
    data: pa.Table,
    *,
    mode: WriteMode,
    schema_mode: Literal["merge"] | None,
    metadata: Mapping[str, str],
    storage_options: Mapping[str, str] | None = None,
    table: DeltaTable | None = None,
) -> int:
    """Commit ``data`` to the table (creating it on first write); returns the new version.

    ``table`` is the table as the caller already opened it (None: it did not exist then).
    """
    from deltalake import CommitProperties, DeltaTable, write_deltalake

    marker = uuid.uuid4().hex
    properties = CommitProperties(custom_metadata={**metadata, _COMMIT_MARKER: marker})
    options = dict(storage_options or {}) or None
    target: DeltaTable | str = uri if table is None else table
    for attempt in range(_COMMIT_ATTEMPTS):
        try:
            with _translated(uri):
                if attempt and DeltaTable.is_deltatable(uri, options):
                    target = DeltaTable(uri, storage_options=options)  # lost a race: reload
                write_deltalake(
                    target,
                    data,
                    mode=mode,
                    schema_mode=schema_mode,
                    commit_properties=properties,
                    storage_options=options if isinstance(target, str) else None,
                )
            break
        except CommitConflictError:
            # An append commutes with any other append, so retrying it is always safe; an
            # overwrite that lost the race must not silently replace what the winner wrote.
            if mode != "append" or attempt == _COMMIT_ATTEMPTS - 1:
                raise
    if not isinstance(target, str):
        return target.version()
    # Created by this call, or by a racing writer just before it: find our commit by marker.
    for commit in commit_history(DeltaTable(uri, storage_options=options), 50):
        if commit.get(_COMMIT_MARKER) == marker:
            return int(commit["version"])
    raise StoreError(
        f"Wrote to {uri} but cannot find the commit in its history"
    )  # pragma: no cover


def restore_version(uri: str, version: int, metadata: Mapping[str, str]) -> int:
    """Commit a new version whose content is ``version``'s; returns the new version."""
    from deltalake import CommitProperties

    table = open_table(uri)
    latest = table.version()
    if version > latest:
        raise TableVersionError(f"{uri} has no version {version}; its latest is {latest}")
    with _translated(uri, version):
        table.restore(version, commit_properties=CommitProperties(custom_metadata=dict(metadata)))
        table.update_incremental()
        return table.version()
