"""What a table version is, from its Delta log alone: row count, schema, content digest.

Nothing here reads data files: counts and the digest come from the log's add actions (one per
data file, with its size and record count), so describing a billion-row version costs the same
as a tiny one. Data files are immutable and uniquely named, so the sorted list of
(path, size, records) identifies a version's content exactly; a restore that brings back
version 0's files gets version 0's content digest.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.entities import Dataset

if TYPE_CHECKING:
    from collections.abc import Mapping

    from deltalake import DeltaTable

__all__ = ["SOURCE_TYPE", "TableSnapshot", "describe", "table_name"]

SOURCE_TYPE = "delta_table"  # MLflow's DeltaDatasetSource type name, so its UI shows the source

# Delta primitive types -> MLflow column-spec types (what MLflow's dataset schema view expects).
_COLSPEC_TYPES = {
    "long": "long",
    "integer": "integer",
    "short": "integer",
    "byte": "integer",
    "double": "double",
    "float": "float",
    "string": "string",
    "boolean": "boolean",
    "binary": "binary",
    "timestamp": "datetime",
    "timestamp_ntz": "datetime",
    "date": "datetime",
}


@dataclass(frozen=True, slots=True)
class TableSnapshot:
    """One version of one table: where, which version, how big, what shape, what content."""

    uri: str
    version: int
    table_id: str
    name: str
    num_rows: int | None
    num_files: int
    size_bytes: int
    schema: Mapping[str, str] = field(default_factory=dict)  # column -> Delta type
    content_digest: str = ""
    timestamp_ms: int | None = None

    @property
    def schema_hash(self) -> str:
        text = json.dumps(list(self.schema.items()), separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    @property
    def digest(self) -> str:
        """Identity of this table version: one dataset record per (table, version)."""
        key = f"{self.table_id}\n{self.version}\n{self.content_digest}"
        return hashlib.sha256(key.encode()).hexdigest()[:20]

    def to_dataset(self) -> Dataset:
        """The MLflow dataset entity a run input or output carries."""
        source = {"path": self.uri, "delta_table_version": self.version}
        if self.table_id:
            source["delta_table_id"] = self.table_id
        colspec = [
            {"name": name, "type": _COLSPEC_TYPES.get(kind, "string")}
            for name, kind in self.schema.items()
        ]
        profile = {
            "num_rows": self.num_rows,
            "num_files": self.num_files,
            "size_bytes": self.size_bytes,
            "version": self.version,
            "schema_hash": self.schema_hash,
            "content_digest": self.content_digest,
        }
        return Dataset(
            name=self.name,
            digest=self.digest,
            source_type=SOURCE_TYPE,
            source=json.dumps(source),
            schema=json.dumps({"mlflow_colspec": colspec}),
            profile=json.dumps(profile),
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "name": self.name,
            "version": self.version,
            "table_id": self.table_id,
            "num_rows": self.num_rows,
            "num_files": self.num_files,
            "size_bytes": self.size_bytes,
            "schema": dict(self.schema),
            "schema_hash": self.schema_hash,
            "content_digest": self.content_digest,
            "digest": self.digest,
            "timestamp_ms": self.timestamp_ms,
        }


def table_name(uri: str, table: DeltaTable | None = None) -> str:
    """The table's own name if it has one, else the last segment of its URI."""
    if table is not None:
        name = table.metadata().name
        if name:
            return str(name)
    return os.path.basename(uri.rstrip("/")) or uri


def describe(table: DeltaTable, uri: str) -> TableSnapshot:
    """Summarise the table's loaded version from its log (no data file is opened)."""
    from cairn.data import delta

    actions = delta.add_actions(table, uri)
    paths = actions.column("path").to_pylist()
    sizes = actions.column("size_bytes").to_pylist()
    records = (
        actions.column("num_records").to_pylist()
        if "num_records" in actions.column_names
        else [None] * len(paths)
    )
    digest = hashlib.sha256()
    for path, size, count in sorted(zip(paths, sizes, records, strict=True)):
        digest.update(f"{path}\t{size}\t{count}\n".encode())
    num_rows: int | None = None
    if all(count is not None for count in records):
        num_rows = sum(int(count or 0) for count in records)
    metadata = table.metadata()
    return TableSnapshot(
        uri=uri,
        version=table.version(),
        table_id=str(metadata.id or ""),
        name=table_name(uri, table),
        num_rows=num_rows,
        num_files=len(paths),
        size_bytes=sum(int(size or 0) for size in sizes),
        schema=delta.delta_schema_fields(table.schema()),
        content_digest=digest.hexdigest(),
    )
