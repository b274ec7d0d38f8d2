"""Dataset inputs of runs: which datasets (and versions, by digest) a run read."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from cairn.entities import Dataset, DatasetInput
from cairn.tracking.stores.sql import schema as t

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection

__all__ = ["load", "record"]


def record(
    conn: Connection, run_id: str, datasets: Sequence[DatasetInput], upsert_tag: Any
) -> None:
    """Link each dataset to the run, creating it once per (experiment, name, digest)."""
    experiment_id = conn.execute(
        sa.select(t.runs.c.experiment_id).where(t.runs.c.run_uuid == run_id)
    ).scalar_one()
    ds, ri = t.datasets, t.run_inputs
    for item in datasets:
        dataset = item.dataset
        dataset_uuid = conn.execute(
            sa.select(ds.c.dataset_uuid).where(
                ds.c.experiment_id == experiment_id,
                ds.c.name == dataset.name,
                ds.c.digest == dataset.digest,
            )
        ).scalar()
        if dataset_uuid is None:
            dataset_uuid = uuid.uuid4().hex
            conn.execute(
                ds.insert().values(
                    dataset_uuid=dataset_uuid,
                    experiment_id=experiment_id,
                    name=dataset.name,
                    digest=dataset.digest,
                    source_type=dataset.source_type,
                    source=dataset.source,
                    schema=dataset.schema,
                    profile=dataset.profile,
                )
            )
        linked = conn.execute(
            sa.select(ri.c.run_uuid).where(
                ri.c.run_uuid == run_id, ri.c.dataset_uuid == dataset_uuid
            )
        ).first()
        if linked is None:
            conn.execute(ri.insert().values(run_uuid=run_id, dataset_uuid=dataset_uuid))
        if item.tags:
            stmt = upsert_tag
            conn.execute(
                stmt,
                [
                    {"run_uuid": run_id, "dataset_uuid": dataset_uuid, "key": k, "value": v}
                    for k, v in item.tags.items()
                ],
            )


def load(conn: Connection, run_ids: Sequence[str]) -> dict[str, list[DatasetInput]]:
    """The dataset inputs of each run, with their tags."""
    ds, ri, rit = t.datasets, t.run_inputs, t.run_input_tags
    found: dict[str, list[DatasetInput]] = {}
    rows = conn.execute(
        sa.select(ri.c.run_uuid, ds)
        .join(ds, ds.c.dataset_uuid == ri.c.dataset_uuid)
        .where(ri.c.run_uuid.in_(run_ids))
    ).all()
    if not rows:
        return found
    tags: dict[tuple[str, str], dict[str, str]] = {}
    for run_uuid, dataset_uuid, key, value in conn.execute(
        sa.select(rit.c.run_uuid, rit.c.dataset_uuid, rit.c.key, rit.c.value).where(
            rit.c.run_uuid.in_(run_ids)
        )
    ):
        tags.setdefault((run_uuid, dataset_uuid), {})[key] = value
    for row in rows:
        dataset = Dataset(
            row.name, row.digest, row.source_type, row.source, row.schema, row.profile
        )
        item = DatasetInput(dataset, tags.get((row.run_uuid, row.dataset_uuid), {}))
        found.setdefault(row.run_uuid, []).append(item)
    return found
