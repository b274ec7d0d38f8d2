"""Read-only queries on the Delta table versions runs recorded, for the web UI's data pages.

A table version is a dataset whose source type is ``delta_table`` and whose source is
``{"path", "delta_table_version"}`` (written by ``cairn.data.lineage``); a run links to it as an
input tagged with its role (``input``: the run read it, ``output``: it wrote it). The server
shows a table's history and diffs only for paths found here, so a client can never make it
open a path no run recorded.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cairn.tracking.stores.sql import schema as t
from cairn.tracking.stores.sql.engine import translated_errors

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection, Engine

__all__ = ["DatasetViews", "RecordedTable", "TableUse"]

# The names cairn.data writes (cairn.data.snapshot.SOURCE_TYPE, cairn.data.lineage.ROLE_TAG);
# repeated here so the store does not import the data layer.
SOURCE_TYPE = "delta_table"
ROLE_TAG = "cairn.data.role"
MAX_USES = 2_000


@dataclass(frozen=True, slots=True)
class TableUse:
    """A run that read (role ``input``) or wrote (``output``) one version of a table."""

    version: int
    role: str
    run_id: str
    run_name: str | None
    experiment_id: str
    status: str
    start_time: int | None
    lifecycle_stage: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "role": self.role,
            "run_id": self.run_id,
            "run_name": self.run_name,
            "experiment_id": self.experiment_id,
            "status": self.status,
            "start_time": self.start_time,
            "lifecycle_stage": self.lifecycle_stage,
        }


@dataclass(slots=True)
class RecordedTable:
    """A table some run recorded: its versions, each with how many runs read and wrote it."""

    uri: str
    name: str
    versions: dict[int, dict[str, int]] = field(default_factory=dict)  # version -> role -> runs
    last_used: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "name": self.name,
            "versions": [
                {
                    "version": version,
                    "readers": roles.get("input", 0),
                    "writers": roles.get("output", 0),
                }
                for version, roles in sorted(self.versions.items(), reverse=True)
            ],
            "last_used": self.last_used,
        }


def _source(text: str) -> tuple[str, int] | None:
    """(path, version) of a Delta dataset source, or None when it is not one Cairn can read."""
    try:
        source = json.loads(text)
        path, version = source["path"], source["delta_table_version"]
    except (ValueError, TypeError, KeyError):
        return None
    if not isinstance(path, str) or not path or isinstance(version, bool):
        return None
    try:
        return path, int(version)
    except (TypeError, ValueError):
        return None


class DatasetViews:
    """Queries on one tracking database (the server's store engine)."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._url = engine.url.render_as_string(hide_password=True)

    def _datasets(self, conn: Connection) -> dict[str, tuple[str, int, str]]:
        """dataset uuid -> (path, version, name) of every recorded Delta table version."""
        ds = t.datasets
        rows = conn.execute(
            sa.select(ds.c.dataset_uuid, ds.c.source, ds.c.name).where(
                ds.c.source_type == SOURCE_TYPE
            )
        ).all()
        found = {}
        for uuid, source, name in rows:
            parsed = _source(source)
            if parsed is not None:
                found[uuid] = (*parsed, name)
        return found

    @staticmethod
    def _role() -> Any:
        rit = t.run_input_tags
        return sa.func.coalesce(rit.c.value, "input")

    @staticmethod
    def _with_role(select: Any) -> Any:
        ri, rit = t.run_inputs, t.run_input_tags
        return select.outerjoin(
            rit,
            sa.and_(
                rit.c.run_uuid == ri.c.run_uuid,
                rit.c.dataset_uuid == ri.c.dataset_uuid,
                rit.c.key == ROLE_TAG,
            ),
        )

    def tables(self) -> list[RecordedTable]:
        """Every recorded table, most recently used first."""
        ri, runs = t.run_inputs, t.runs
        with translated_errors(self._url), self._engine.connect() as conn:
            datasets = self._datasets(conn)
            if not datasets:
                return []
            role = self._role()
            query = self._with_role(
                sa.select(
                    ri.c.dataset_uuid,
                    role,
                    sa.func.count(ri.c.run_uuid),
                    sa.func.max(runs.c.start_time),
                )
                .select_from(ri)
                .join(runs, runs.c.run_uuid == ri.c.run_uuid)
            ).group_by(ri.c.dataset_uuid, role)
            counts = conn.execute(query).all()
        found: dict[str, RecordedTable] = {}
        for uuid, use_role, runs_count, last in counts:
            if uuid not in datasets:
                continue
            path, version, name = datasets[uuid]
            table = found.setdefault(path, RecordedTable(path, name))
            roles = table.versions.setdefault(version, {})
            roles[use_role] = roles.get(use_role, 0) + int(runs_count)
            if last is not None and (table.last_used is None or last > table.last_used):
                table.last_used = int(last)
        return sorted(found.values(), key=lambda x: (-(x.last_used or 0), x.uri))

    def is_recorded(self, uri: str) -> bool:
        """Whether some dataset record names exactly ``uri`` as its Delta table path."""
        with translated_errors(self._url), self._engine.connect() as conn:
            return any(path == uri for path, _, _ in self._datasets(conn).values())

    def uses(self, uri: str, limit: int = MAX_USES) -> tuple[str | None, list[TableUse]]:
        """The table's name (None when no run recorded ``uri``) and the runs that read or wrote
        its versions, newest first (at most ``limit``)."""
        ri, runs = t.run_inputs, t.runs
        with translated_errors(self._url), self._engine.connect() as conn:
            matching = {
                uuid: (version, name)
                for uuid, (path, version, name) in self._datasets(conn).items()
                if path == uri
            }
            if not matching:
                return None, []
            rows: Sequence[Any] = conn.execute(
                self._with_role(
                    sa.select(
                        ri.c.dataset_uuid,
                        self._role(),
                        runs.c.run_uuid,
                        runs.c.name,
                        runs.c.experiment_id,
                        runs.c.status,
                        runs.c.start_time,
                        runs.c.lifecycle_stage,
                    )
                    .select_from(ri)
                    .join(runs, runs.c.run_uuid == ri.c.run_uuid)
                )
                .where(ri.c.dataset_uuid.in_(list(matching)))
                .order_by(runs.c.start_time.desc(), runs.c.run_uuid)
                .limit(limit)
            ).all()
        name = next(iter(matching.values()))[1]
        return name, [
            TableUse(
                version=matching[row[0]][0],
                role=row[1],
                run_id=row[2],
                run_name=row[3],
                experiment_id=str(row[4]),
                status=row[5],
                start_time=row[6],
                lifecycle_stage=row[7],
            )
            for row in rows
        ]
