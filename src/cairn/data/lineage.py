"""Run lineage for tables: which table versions a run read and wrote.

Each table version is one MLflow dataset (source type ``delta_table``, source
``{"path", "delta_table_version"}``), linked to the run as an input whose tags say whether the
run read or wrote it. Inputs go through ``runs/log-inputs``, so they work against a server.
"""

from __future__ import annotations

import json
import os
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cairn.data.snapshot import SOURCE_TYPE, TableSnapshot
from cairn.entities import Dataset, DatasetInput

if TYPE_CHECKING:
    from collections.abc import Mapping

    from cairn.entities import Run

__all__ = [
    "ROLE_TAG",
    "VERSION_TAG",
    "TableInput",
    "current_run_id",
    "log_input",
    "record",
    "table_inputs",
]

ROLE_TAG = "cairn.data.role"  # "input" (the run read it) or "output" (the run wrote it)
VERSION_TAG = "cairn.data.version"
READ_BACK_TAG = "cairn.data.read_back"  # an output the same run also read
CONTEXT_TAG = "mlflow.data.context"

_recorded: set[tuple[str, str, str]] = set()  # (run, digest, role) already sent by this process
_recorded_lock = threading.Lock()


@dataclass(frozen=True, slots=True)
class TableInput:
    """A table version as a run recorded it."""

    uri: str
    version: int
    role: str
    name: str
    digest: str
    num_rows: int | None
    schema_hash: str | None
    content_digest: str | None
    context: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "uri": self.uri,
            "version": self.version,
            "role": self.role,
            "name": self.name,
            "digest": self.digest,
            "num_rows": self.num_rows,
            "schema_hash": self.schema_hash,
            "content_digest": self.content_digest,
            "context": self.context,
        }


def current_run_id() -> str | None:
    """The fluent API's active run, else the run a launcher (``cairn run``) handed the job."""
    from cairn.tracking import fluent

    active = fluent.active_run()
    if active is not None:
        return active.info.run_id
    return os.environ.get(fluent.ENV_RUN_ID) or None


def record(
    snapshot: TableSnapshot,
    role: str,
    run_id: str | None = None,
    context: str | None = None,
    tags: Mapping[str, str] | None = None,
) -> bool:
    """Link ``snapshot`` to the run (the active one by default); False when there is no run."""
    run_id = run_id or current_run_id()
    if run_id is None:
        return False
    key = (run_id, snapshot.digest, role)
    with _recorded_lock:
        if key in _recorded and not tags and context is None:
            return True
        # One link per (run, version): a version this run wrote and then read back stays an
        # output (its tags would otherwise be overwritten), marked as read too.
        wrote_it = role == "input" and (run_id, snapshot.digest, "output") in _recorded
    all_tags = {ROLE_TAG: role, VERSION_TAG: str(snapshot.version), **(tags or {})}
    if wrote_it:
        all_tags[ROLE_TAG] = "output"
        all_tags[READ_BACK_TAG] = "true"
    if context:
        all_tags[CONTEXT_TAG] = context
    _client().log_inputs(run_id, [DatasetInput(snapshot.to_dataset(), all_tags)])
    with _recorded_lock:
        _recorded.add(key)
    return True


def _client() -> Any:
    from cairn.tracking import fluent

    return fluent._get_client()


def log_input(
    dataset: Dataset | str | os.PathLike[str],
    *,
    version: int | None = None,
    context: str | None = None,
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> None:
    """Record a dataset as an input of the active run (or ``run_id``).

    Args:
        dataset: a Delta table URI (its ``version``, default the latest, is described from the
            Delta log without reading data) or a ready ``cairn.entities.Dataset``.
        version: the table version the run used.
        context: what the run used it for (``training``, ``eval``...): MLflow's context tag.
        tags: more tags on the input.
        run_id: a run other than the active one.
    """
    from cairn.errors import InvalidParameterError
    from cairn.tracking import fluent

    run_id = run_id or current_run_id() or fluent._active_run_id()
    if isinstance(dataset, Dataset):
        all_tags = dict(tags or {})
        if context:
            all_tags[CONTEXT_TAG] = context
        _client().log_inputs(run_id, [DatasetInput(dataset, all_tags)])
        return
    if not isinstance(dataset, (str, os.PathLike)):
        raise InvalidParameterError(
            f"log_input takes a table URI or a cairn.entities.Dataset, got {type(dataset).__name__}"
        )
    from cairn.data import delta
    from cairn.data.snapshot import describe

    uri = delta.normalize_uri(dataset)
    snapshot = describe(delta.open_table(uri, version=version), uri)
    record(snapshot, "input", run_id=run_id, context=context, tags=tags)


def table_inputs(run: Run) -> list[TableInput]:
    """The Delta table versions the run recorded: inputs first, then by table and version."""
    found: list[TableInput] = []
    for item in run.inputs.dataset_inputs:
        dataset = item.dataset
        if dataset.source_type != SOURCE_TYPE:
            continue
        try:
            source = json.loads(dataset.source)
            profile = json.loads(dataset.profile) if dataset.profile else {}
        except ValueError:
            continue
        version = item.tags.get(VERSION_TAG, source.get("delta_table_version"))
        if version is None or "path" not in source:
            continue
        found.append(
            TableInput(
                uri=str(source["path"]),
                version=int(version),
                role=item.tags.get(ROLE_TAG, "input"),
                name=dataset.name,
                digest=dataset.digest,
                num_rows=profile.get("num_rows"),
                schema_hash=profile.get("schema_hash"),
                content_digest=profile.get("content_digest"),
                context=item.tags.get(CONTEXT_TAG),
            )
        )
    found.sort(key=lambda t: (t.role != "input", t.uri, t.version))  # stores keep no order
    return found
