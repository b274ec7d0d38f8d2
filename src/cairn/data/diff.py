"""What changed between two versions of a table: schema, rows, column statistics, commits."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cairn.data import delta
from cairn.data.tables import Commit, _commit, _uri

if TYPE_CHECKING:
    import os
    from collections.abc import Mapping

    import pyarrow as pa

__all__ = ["ColumnStats", "SchemaChange", "TableDiff", "diff"]

_NUMERIC = {"byte", "short", "integer", "long", "float", "double"}


@dataclass(frozen=True, slots=True)
class ColumnStats:
    """Summary of one column in one version; numeric fields are None for other types."""

    type: str
    count: int
    nulls: int
    min: Any = None
    max: Any = None
    mean: float | None = None
    std: float | None = None
    distinct: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "type": self.type,
            "count": self.count,
            "nulls": self.nulls,
            "min": self.min,
            "max": self.max,
            "mean": self.mean,
            "std": self.std,
            "distinct": self.distinct,
        }


@dataclass(frozen=True, slots=True)
class SchemaChange:
    column: str
    change: str  # "added", "removed" or "type"
    old_type: str | None = None
    new_type: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "column": self.column,
            "change": self.change,
            "old_type": self.old_type,
            "new_type": self.new_type,
        }


@dataclass(frozen=True, slots=True)
class TableDiff:
    """Two versions of one table side by side, and the commits that lead from one to the other."""

    uri: str
    from_version: int
    to_version: int
    from_rows: int
    to_rows: int
    schema_changes: tuple[SchemaChange, ...] = ()
    columns: Mapping[str, tuple[ColumnStats | None, ColumnStats | None]] = field(
        default_factory=dict
    )
    commits: tuple[Commit, ...] = ()

    @property
    def shifted(self) -> list[str]:
        """Numeric columns whose distribution moved: mean off by over one old standard
        deviation, or spread changed more than twofold."""
        moved = []
        for name, (old, new) in self.columns.items():
            if old is None or new is None or old.mean is None or new.mean is None:
                continue
            old_std, new_std = old.std or 0.0, new.std or 0.0
            scale = old_std if old_std > 0 else max(abs(old.mean), 1e-12)
            if abs(new.mean - old.mean) > scale or (
                old_std > 0 and not 0.5 <= new_std / old_std <= 2.0
            ):
                moved.append(name)
        return moved

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "from_version": self.from_version,
            "to_version": self.to_version,
            "from_rows": self.from_rows,
            "to_rows": self.to_rows,
            "schema_changes": [c.to_dict() for c in self.schema_changes],
            "columns": {
                name: {
                    "from": old.to_dict() if old else None,
                    "to": new.to_dict() if new else None,
                }
                for name, (old, new) in self.columns.items()
            },
            "shifted": self.shifted,
            "commits": [c.to_dict() for c in self.commits],
        }


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _stats(column: pa.ChunkedArray, kind: str) -> ColumnStats:
    import pyarrow.compute as pc

    count, nulls = len(column), column.null_count
    if kind in _NUMERIC:
        bounds = pc.min_max(column)
        return ColumnStats(
            type=kind,
            count=count,
            nulls=nulls,
            min=_finite(bounds["min"].as_py()),
            max=_finite(bounds["max"].as_py()),
            mean=_finite(pc.mean(column).as_py()),
            std=_finite(pc.stddev(column, ddof=1).as_py()) if count - nulls > 1 else None,
        )
    distinct = None
    if kind in ("string", "boolean", "date"):
        distinct = pc.count_distinct(column).as_py()
    return ColumnStats(type=kind, count=count, nulls=nulls, distinct=distinct)


def diff(uri: str | os.PathLike[str], v1: int, v2: int) -> TableDiff:
    """Compare versions ``v1`` and ``v2`` of the table at ``uri``.

    Reads both versions (column statistics need the data); the commits listed are those after
    the older version up to and including the newer one.
    """
    target = _uri(uri)
    old_table = delta.open_table(target, version=v1)
    new_table = delta.open_table(target, version=v2)
    old_fields = delta.delta_schema_fields(old_table.schema())
    new_fields = delta.delta_schema_fields(new_table.schema())
    changes = [
        SchemaChange(n, "removed", old_type=k) for n, k in old_fields.items() if n not in new_fields
    ]
    changes += [
        SchemaChange(n, "added", new_type=k) for n, k in new_fields.items() if n not in old_fields
    ]
    changes += [
        SchemaChange(n, "type", old_type=k, new_type=new_fields[n])
        for n, k in old_fields.items()
        if n in new_fields and new_fields[n] != k
    ]
    old_data = delta.scan(old_table, target)
    new_data = delta.scan(new_table, target)
    columns: dict[str, tuple[ColumnStats | None, ColumnStats | None]] = {}
    for name in [*old_fields, *(n for n in new_fields if n not in old_fields)]:
        old = _stats(old_data.column(name), old_fields[name]) if name in old_fields else None
        new = _stats(new_data.column(name), new_fields[name]) if name in new_fields else None
        columns[name] = (old, new)
    low, high = sorted((v1, v2))
    latest = delta.open_table(target)
    commits = tuple(
        _commit(entry)
        for entry in delta.commit_history(latest, latest.version() - low)
        if low < int(entry["version"]) <= high
    )
    return TableDiff(
        uri=target,
        from_version=v1,
        to_version=v2,
        from_rows=old_data.num_rows,
        to_rows=new_data.num_rows,
        schema_changes=tuple(changes),
        columns=columns,
        commits=commits,
    )
